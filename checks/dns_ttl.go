package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/miekg/dns"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "dns.ttl",
		Check: true,
		Doc:   "each DNS name's records and TTL at every authoritative server, www as CNAME or A, and the earliest safe switch time",
		New: func(n ast.Node) (any, error) {
			c := &DNSTTL{}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// DNSTTL asks each authoritative server of the zone directly (no resolver,
// no cache) for every runbook name, and warns while a TTL is above target.
type DNSTTL struct {
	// TTL overrides dns.ttl as the target (seconds).
	TTL uint32 `yaml:"ttl"`
}

type dnsServerView struct {
	server, nsName string
	serial         uint32
	names          map[string]*dnsq.NameRecords
	err            error
}

// Run queries every server in parallel and reports per name.
func (c *DNSTTL) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	target := c.TTL
	if target == 0 {
		target = env.DNS.TTL
	}
	if target == 0 {
		target = 300
	}
	zone := env.DNS.Zone
	auth, err := dnsAuthority(ctx, env)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: zone, Message: fmt.Sprintf("cannot find the authoritative servers: %v", err),
			Fix: "check dns.zone, or list the servers under dns.authoritative (host:port) in the runbook"}}, nil
	}
	names := dnsq.Names(auth.Zone, env.DNS.Names)
	cl := dnsClient(env)
	views := make([]dnsServerView, len(auth.Servers))
	var wg sync.WaitGroup
	for i, s := range auth.Servers {
		views[i] = dnsServerView{server: s, nsName: auth.Names[i], names: map[string]*dnsq.NameRecords{}}
		wg.Add(1)
		go func(v *dnsServerView) {
			defer wg.Done()
			ans, err := cl.Lookup(ctx, v.server, auth.Zone, dns.TypeSOA, false)
			if err != nil {
				v.err = err
				return
			}
			for _, rr := range ans.Records {
				if soa, ok := rr.(*dns.SOA); ok {
					v.serial = soa.Serial
				}
			}
			for _, n := range names {
				nr, err := cl.ReadName(ctx, v.server, n)
				if err != nil {
					v.err = err
					return
				}
				v.names[n] = nr
			}
		}(&views[i])
	}
	wg.Wait()

	var out []steps.Finding
	var ok []*dnsServerView
	for i := range views {
		v := &views[i]
		if v.err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: dnsServerLabel(v),
				Message: fmt.Sprintf("authoritative server does not answer properly: %s", dnsq.Reason(v.err)),
				Fix:     "check that the server runs and serves " + auth.Zone + ", or fix dns.authoritative"})
			continue
		}
		ok = append(ok, v)
	}
	if len(ok) == 0 {
		return out, nil
	}
	out = append(out, dnsSerialFinding(auth.Zone, ok))

	var maxTTL uint32
	for _, n := range names {
		fs, m := dnsNameFindings(auth.Zone, n, names, ok, target)
		out = append(out, fs...)
		maxTTL = max(maxTTL, m)
	}
	return append(out, dnsSwitchTimeFinding(env, target, maxTTL)), nil
}

func dnsServerLabel(v *dnsServerView) string {
	if v.nsName != "" {
		return v.server + " (" + v.nsName + ")"
	}
	return v.server
}

func dnsSerialFinding(zone string, vs []*dnsServerView) steps.Finding {
	var parts []string
	same := true
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s %d", dnsServerLabel(v), v.serial))
		same = same && v.serial == vs[0].serial
	}
	if same {
		return steps.Finding{Status: steps.Pass, Subject: zone,
			Message: fmt.Sprintf("%d authoritative server(s) answer, all at SOA serial %d", len(vs), vs[0].serial)}
	}
	return steps.Finding{Status: steps.Warn, Subject: zone,
		Message: "authoritative servers are at different SOA serials (" + strings.Join(parts, ", ") + "): a secondary has not caught up",
		Fix:     "wait for zone transfer (NOTIFY/refresh), or check the secondary's transfer log"}
}

// dnsNameFindings reports one name across servers and returns its largest
// address TTL.
func dnsNameFindings(zone, name string, names []string, vs []*dnsServerView, target uint32) ([]steps.Finding, uint32) {
	ref := vs[0].names[name]
	agree := true
	var detail []string
	for _, v := range vs {
		nr := v.names[name]
		agree = agree && nr.Same(ref)
		detail = append(detail, dnsServerLabel(v)+": "+nr.Summary())
	}
	n := len(vs)
	if !agree {
		return []steps.Finding{{Status: steps.Warn, Subject: name,
			Message: "authoritative servers disagree: " + strings.Join(detail, "; "),
			Fix:     "wait for the secondaries to transfer the zone (compare SOA serials), or correct the zone on the primary"}}, dnsMaxTTL(ref)
	}
	switch {
	case ref.NXDomain:
		return []steps.Finding{{Status: steps.Warn, Subject: name,
			Message: fmt.Sprintf("%s does not exist at the %d authoritative server(s)", name, n),
			Fix:     "remove it from dns.names, or create it before the migration"}}, 0
	case ref.CNAME != "":
		if slices.Contains(names, ref.CNAME) {
			what := "the apex " + zone
			if ref.CNAME != zone {
				what = ref.CNAME
			}
			return []steps.Finding{{Status: steps.Pass, Subject: name,
				Message: fmt.Sprintf("%s is a CNAME to %s (TTL %d s) at all %d server(s): only %s's records change at the switch", name, what, ref.CNAMETTL, n, ref.CNAME)}}, 0
		}
		return []steps.Finding{{Status: steps.Warn, Subject: name,
			Message: fmt.Sprintf("%s is a CNAME to %s, which is not among dns.names: the switch would not move it", name, ref.CNAME),
			Fix:     "add " + ref.CNAME + " to dns.names if it is yours, or switch it separately (a shell step, see docs/dns-shell.md)"}}, 0
	}
	var out []steps.Finding
	var m uint32
	for _, set := range ref.Sets() {
		if set.Empty() {
			continue
		}
		m = max(m, set.TTL)
		if set.TTL > target {
			out = append(out, steps.Finding{Status: steps.Warn, Subject: name,
				Message: fmt.Sprintf("%s %s at all %d server(s): TTL %d s is above the target %d s; after lowering it, the switch must wait %s for caches to drop the old TTL",
					name, set.Short(), n, set.TTL, target, dnsDuration(time.Duration(set.TTL)*time.Second)),
				Fix:       fmt.Sprintf("run the dns.set_ttl step days ahead (lowers %s %s to %d s)", name, set.Type, target),
				FixAction: "dns.set_ttl"})
			continue
		}
		out = append(out, steps.Finding{Status: steps.Pass, Subject: name,
			Message: fmt.Sprintf("%s %s at all %d server(s) (target %d s)", name, set.Short(), n, target)})
	}
	if len(out) == 0 {
		return []steps.Finding{{Status: steps.Warn, Subject: name,
			Message: fmt.Sprintf("%s has no A or AAAA record", name), Fix: "remove it from dns.names, or add its address"}}, 0
	}
	if name == "www."+zone {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: name,
			Message: fmt.Sprintf("%s has its own address records (not a CNAME to the apex): two records to switch", name)})
	}
	return out, m
}

// dnsSwitchTimeFinding says when the switch is safe: once the old TTL has
// run out after it was lowered, no resolver can still hold the old TTL.
func dnsSwitchTimeFinding(env *steps.Env, target, maxTTL uint32) steps.Finding {
	now := env.Clock()
	rec, at, ok := dnsLastRecord(env, "dns.set_ttl")
	if ok && rec.MaxPreviousTTL() > 0 {
		old := time.Duration(rec.MaxPreviousTTL()) * time.Second
		safe := at.Add(old)
		if now.Before(safe) {
			return steps.Finding{Status: steps.Warn, Subject: "switch time",
				Message: fmt.Sprintf("TTL lowered at %s; the old TTL (%d s) runs out at %s, in %s: switching earlier leaves caches on the old address for up to the old TTL",
					at.Local().Format(time.DateTime), rec.MaxPreviousTTL(), safe.Local().Format(time.DateTime), dnsDuration(safe.Sub(now))),
				Fix: "wait until " + safe.Local().Format(time.DateTime) + " before dns.switch"}
		}
		return steps.Finding{Status: steps.Pass, Subject: "switch time",
			Message: fmt.Sprintf("TTL lowered at %s; the old TTL (%d s) ran out at %s: safe to switch",
				at.Local().Format(time.DateTime), rec.MaxPreviousTTL(), safe.Local().Format(time.DateTime))}
	}
	if maxTTL > target {
		return steps.Finding{Status: steps.Warn, Subject: "switch time",
			Message: fmt.Sprintf("no TTL lowering in the journal: the earliest safe switch is %s after dns.set_ttl runs", dnsDuration(time.Duration(maxTTL)*time.Second)),
			Fix:     "run dns.set_ttl now", FixAction: "dns.set_ttl"}
	}
	return steps.Finding{Status: steps.Pass, Subject: "switch time",
		Message: fmt.Sprintf("all TTLs are at or below %d s: caches drop the old address within %d s of the switch (if the TTL was lowered outside decant, wait one old TTL after that)", target, maxTTL)}
}

func dnsMaxTTL(nr *dnsq.NameRecords) uint32 {
	var m uint32
	for _, s := range nr.Sets() {
		if !s.Empty() {
			m = max(m, s.TTL)
		}
	}
	return m
}
