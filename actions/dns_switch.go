package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/miekg/dns"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:      "dns.switch",
		Doc:       "switch the names' A/AAAA records from dns.old_address to dns.new_address, TTL kept (RFC 2136 with TSIG, undoable; asks for the domain to be typed)",
		Dangerous: true,
		New: func(n ast.Node) (any, error) {
			a := &DNSSwitch{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			return a, nil
		},
	})
}

// DNSSwitch is the cut-over: it points the names at the new server. A name
// that is a CNAME to another switched name (www to the apex) is left alone.
type DNSSwitch struct {
	// Zone is the apex the operator types to confirm; it defaults to
	// dns.zone through UseDNS and must match it.
	Zone string `yaml:"zone"`
}

// UseDNS gives the step the runbook's dns: section before ConfirmText is
// asked (the parser knows it, the step's parameters do not).
func (a *DNSSwitch) UseDNS(cfg steps.DNSConfig) {
	if a.Zone == "" {
		a.Zone = cfg.Zone
	}
}

// ConfirmText is the zone apex without the trailing dot: the cut-over asks
// for the domain to be typed.
func (a *DNSSwitch) ConfirmText() string {
	return strings.TrimSuffix(strings.TrimSpace(a.Zone), ".")
}

// Plan reads the names from the primary and computes the new RRsets.
func (a *DNSSwitch) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	cfg := env.DNS
	if a.Zone != "" && cfg.Zone != "" && !strings.EqualFold(dns.CanonicalName(a.Zone), dns.CanonicalName(cfg.Zone)) {
		return nil, fmt.Errorf("dns.switch zone %s does not match dns.zone %s", a.Zone, cfg.Zone)
	}
	if len(cfg.NewAddress) == 0 {
		return nil, fmt.Errorf("dns.new_address is not set: decant does not know where to point %s", cfg.Zone)
	}
	key, err := dnsLoadKey(env)
	if err != nil {
		return nil, err
	}
	cl := dnsClient(env)
	primary, err := dnsPrimary(ctx, env, cl)
	if err != nil {
		return nil, err
	}
	zone := dnsq.Names(cfg.Zone, nil)[0]
	names := dnsq.Names(zone, cfg.Names)
	recs, err := dnsReadNames(ctx, cl, primary, names)
	if err != nil {
		return nil, err
	}
	data := dnsPlanData{Zone: zone, Primary: primary}
	var notes []string
	for _, n := range names {
		nr := recs[n]
		switch {
		case nr.NXDomain:
			notes = append(notes, n+" does not exist")
			continue
		case nr.CNAME != "" && slices.Contains(names, nr.CNAME):
			notes = append(notes, fmt.Sprintf("%s follows as CNAME to %s", n, nr.CNAME))
			continue
		case nr.CNAME != "":
			return nil, fmt.Errorf("%s is a CNAME to %s, which decant does not switch: add %s to dns.names, or switch it with a shell step (docs/dns-shell.md)", n, nr.CNAME, nr.CNAME)
		}
		chs, err := dnsSwitchName(nr, cfg)
		if err != nil {
			return nil, err
		}
		data.Changes = append(data.Changes, chs...)
	}
	var parts []string
	for _, ch := range data.Changes {
		parts = append(parts, fmt.Sprintf("%s %s %s -> %s", ch.From.Name, ch.From.Type, dnsValues(ch.From), dnsValues(ch.To)))
	}
	summary := fmt.Sprintf("switch %s at %s", strings.Join(parts, ", "), primary)
	if len(data.Changes) == 0 {
		summary = fmt.Sprintf("%s already points to %s", zone, strings.Join(cfg.NewAddress, ", "))
	}
	if len(notes) > 0 {
		summary += " (" + strings.Join(notes, "; ") + ")"
	}
	return dnsMakePlan(summary, data, key)
}

// dnsSwitchName computes the A and AAAA changes for one name. A current value
// that is neither old nor new means someone else manages this record: refuse
// rather than overwrite it.
func dnsSwitchName(nr *dnsq.NameRecords, cfg steps.DNSConfig) ([]dnsq.Change, error) {
	var out []dnsq.Change
	sets := map[uint16]dnsq.RRset{dns.TypeA: nr.A, dns.TypeAAAA: nr.AAAA}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		cur, sibling := sets[t], sets[dns.TypeA+dns.TypeAAAA-t]
		want := dnsAddrFamily(cfg.NewAddress, t)
		if slices.Equal(cur.Values, want) {
			continue
		}
		if old := dnsAddrFamily(cfg.OldAddress, t); len(cfg.OldAddress) > 0 {
			for _, v := range cur.Values {
				if !slices.Contains(old, v) && !slices.Contains(want, v) {
					return nil, fmt.Errorf("%s %s holds %s, which is neither dns.old_address (%s) nor dns.new_address (%s): check the zone or the runbook",
						nr.Name, cur.Type, v, strings.Join(cfg.OldAddress, ", "), strings.Join(cfg.NewAddress, ", "))
				}
			}
		}
		to := dnsq.RRset{Name: nr.Name, Type: cur.Type, TTL: dnsTTLFor(cur, sibling, cfg.TTL), Values: want}
		out = append(out, dnsq.Change{From: cur, To: to})
	}
	return out, nil
}

// dnsAddrFamily keeps the addresses of the RR type's family, written the
// way the zone shows them (net.IP's form, as miekg/dns prints), sorted.
func dnsAddrFamily(addrs []string, t uint16) []string {
	var out []string
	for _, a := range addrs {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil || (ip.To4() != nil) != (t == dns.TypeA) {
			continue
		}
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func dnsValues(s dnsq.RRset) string {
	if s.Empty() {
		return "(none)"
	}
	return strings.Join(s.Values, ",")
}

// Do checkpoints the previous RRsets and sends the update.
func (a *DNSSwitch) Do(ctx context.Context, env *steps.Env, plan *steps.Plan, r steps.Reporter) (any, error) {
	return dnsApply(ctx, env, plan, r)
}

// Undo points the names back at the old address while they still hold the
// new one.
func (a *DNSSwitch) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	return dnsRevert(ctx, env, receipt, r)
}
