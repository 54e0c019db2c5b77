package checks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/miekg/dns"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "dns.propagation",
		Check: true,
		Doc:   "what each resolver (system, public, runbook) answers for the DNS names, its remaining TTL, and when the last stale cache expires",
		New: func(n ast.Node) (any, error) {
			c := &DNSPropagation{}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// DNSPropagation is the dns.propagation check: one Propagation report turned
// into findings. For a live view call Propagation repeatedly.
type DNSPropagation struct{}

// Run takes one snapshot of the resolvers.
func (c *DNSPropagation) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	rep, err := Propagation(ctx, env)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: env.DNS.Zone, Message: err.Error(),
			Fix: "check dns.resolvers and dns.resolvers_mode in the runbook"}}, nil
	}
	return rep.Findings(), nil
}

// PropState is what a resolver's answer means for the migration.
type PropState string

// Row states: shows the new address, still the old one, something else
// (neither, or a mix), no record, no usable answer; PropAnswer is any answer
// when the runbook has no new_address to compare with.
const (
	PropNew     PropState = "new"
	PropOld     PropState = "old"
	PropOther   PropState = "other"
	PropMissing PropState = "missing"
	PropError   PropState = "error"
	PropAnswer  PropState = "answer"
)

// PropagationRow is one resolver's answer for one name and address type.
type PropagationRow struct {
	Resolver string `json:"resolver"` // host:port
	Label    string `json:"label"`    // system, Google, runbook, ...
	Name     string `json:"name"`
	Type     string `json:"type"` // A or AAAA
	// Answer holds the addresses, after following any CNAME.
	Answer []string  `json:"answer,omitempty"`
	CNAME  []string  `json:"cname,omitempty"`
	TTL    uint32    `json:"ttl"` // remaining TTL in the resolver's cache
	State  PropState `json:"state"`
	// Error is the reason for PropError: "timeout", "SERVFAIL", "REFUSED", ...
	Error string `json:"error,omitempty"`
	// Expires is when this resolver drops a stale answer (zero unless stale).
	Expires time.Time     `json:"expires,omitzero"`
	RTT     time.Duration `json:"rtt"`
}

// Stale reports whether the row shows an answer that is not the new one.
func (r PropagationRow) Stale() bool {
	return r.State == PropOld || r.State == PropOther || r.State == PropMissing
}

// PropagationReport is one snapshot of every resolver for every name.
type PropagationReport struct {
	Time time.Time `json:"time"`
	// Want and Old are the runbook's new and old addresses.
	Want []string `json:"want,omitempty"`
	Old  []string `json:"old,omitempty"`
	// Switched is set when the journal holds a dns.switch that was not undone.
	Switched bool             `json:"switched"`
	Rows     []PropagationRow `json:"rows"`
}

// Propagation asks every resolver (see dns.resolvers_mode) for every name in
// parallel. Failures of single resolvers are rows, not errors; the error is
// for a configuration that cannot be queried at all. Call it repeatedly for
// a live view or --watch.
func Propagation(ctx context.Context, env *steps.Env) (PropagationReport, error) {
	cfg := env.DNS
	rep := PropagationReport{Time: env.Clock(), Want: cfg.NewAddress, Old: cfg.OldAddress}
	_, _, rep.Switched = dnsLastRecord(env, "dns.switch")
	if cfg.Zone == "" {
		return rep, fmt.Errorf("dns.zone is not set in the runbook")
	}
	var system []dnsq.Resolver
	if !strings.EqualFold(cfg.ResolversMode, "replace") {
		// A host without resolv.conf still has the public and runbook ones.
		system, _ = dnsq.SystemResolvers("")
	}
	resolvers, err := dnsq.ResolverList(cfg.ResolversMode, system, cfg.Resolvers)
	if err != nil {
		return rep, err
	}
	if len(resolvers) == 0 {
		return rep, fmt.Errorf("no resolvers to watch: dns.resolvers is empty and dns.resolvers_mode is replace")
	}
	types := dnsWatchTypes(cfg.NewAddress, cfg.OldAddress)
	names := dnsq.Names(cfg.Zone, cfg.Names)
	for _, res := range resolvers {
		for _, n := range names {
			for _, t := range types {
				rep.Rows = append(rep.Rows, PropagationRow{Resolver: res.Addr, Label: res.Label, Name: n, Type: dns.TypeToString[t]})
			}
		}
	}
	cl := dnsClient(env)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range rep.Rows {
		wg.Add(1)
		sem <- struct{}{}
		go func(row *PropagationRow) {
			defer wg.Done()
			defer func() { <-sem }()
			dnsFillRow(ctx, cl, row, rep.Time, cfg.NewAddress, cfg.OldAddress, len(cfg.NewAddress) > 0)
		}(&rep.Rows[i])
	}
	wg.Wait()
	return rep, nil
}

// dnsWatchTypes picks A and/or AAAA from the address families the runbook
// mentions (A alone when it mentions none).
func dnsWatchTypes(lists ...[]string) []uint16 {
	v4, v6 := false, false
	for _, l := range lists {
		for _, a := range l {
			if ip := net.ParseIP(a); ip != nil && ip.To4() == nil {
				v6 = true
			} else {
				v4 = true
			}
		}
	}
	switch {
	case v6 && v4:
		return []uint16{dns.TypeA, dns.TypeAAAA}
	case v6:
		return []uint16{dns.TypeAAAA}
	}
	return []uint16{dns.TypeA}
}

// dnsFamily keeps the addresses of one family, normalised and sorted.
func dnsFamily(addrs []string, qtype uint16) []string {
	var out []string
	for _, a := range addrs {
		ip := net.ParseIP(strings.TrimSpace(a))
		if ip == nil {
			continue
		}
		if (ip.To4() != nil) == (qtype == dns.TypeA) {
			out = append(out, ip.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func dnsFillRow(ctx context.Context, cl *dnsq.Client, row *PropagationRow, now time.Time, want, old []string, configured bool) {
	qtype := dns.StringToType[row.Type]
	ans, err := cl.Lookup(ctx, row.Resolver, row.Name, qtype, true)
	if err != nil {
		row.State = PropError
		var rc *dnsq.RcodeError
		if errors.As(err, &rc) {
			row.Error = dns.RcodeToString[rc.Rcode]
		} else {
			row.Error = dnsq.Reason(err)
		}
		return
	}
	row.RTT = ans.RTT
	for _, cn := range ans.CNAMEs {
		row.CNAME = append(row.CNAME, cn.Target)
	}
	for _, v := range ans.Values() {
		if ip := net.ParseIP(v); ip != nil {
			row.Answer = append(row.Answer, ip.String())
		}
	}
	slices.Sort(row.Answer)
	if len(ans.Records) > 0 {
		row.TTL = ans.TTL()
	} else {
		row.TTL = ans.NegTTL
	}
	w, o := dnsFamily(want, qtype), dnsFamily(old, qtype)
	switch {
	case configured && slices.Equal(row.Answer, w):
		row.State = PropNew
	case !configured && len(row.Answer) > 0:
		// Without new_address there is nothing to compare to; the report
		// then only asks that all resolvers say the same.
		row.State = PropAnswer
	case len(row.Answer) == 0:
		row.State = PropMissing
	case dnsIntersects(row.Answer, o) || len(o) == 0:
		row.State = PropOld
	default:
		row.State = PropOther
	}
	if row.Stale() {
		row.Expires = now.Add(time.Duration(row.TTL)*time.Second + dnsTTLSlack)
	}
}

// dnsTTLSlack pads each expiry: TTLs count whole seconds and resolvers
// (unbound, BIND) still serve a record during its last second at TTL 0, so
// a cache really lets go up to a second after "now + TTL".
const dnsTTLSlack = time.Second

func dnsIntersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// AllAgree reports whether every resolver answered and all show the new
// address (or, without dns.new_address, all give the same answer).
func (r PropagationReport) AllAgree() bool {
	if len(r.Rows) == 0 {
		return false
	}
	configured := len(r.Want) > 0
	first := map[string]string{}
	for _, row := range r.Rows {
		if row.State == PropError {
			return false
		}
		if configured {
			if row.State != PropNew {
				return false
			}
			continue
		}
		k := row.Name + " " + row.Type
		v := strings.Join(row.Answer, ",")
		if f, ok := first[k]; ok && f != v {
			return false
		}
		first[k] = v
	}
	return true
}

// LastExpiry is when the last stale cache among the rows expires (zero when
// none is stale): the propagation ETA.
func (r PropagationReport) LastExpiry() time.Time {
	var last time.Time
	for _, row := range r.Rows {
		if row.Stale() && row.Expires.After(last) {
			last = row.Expires
		}
	}
	return last
}

// ETA is the time from the report until LastExpiry.
func (r PropagationReport) ETA() time.Duration {
	last := r.LastExpiry()
	if last.IsZero() {
		return 0
	}
	return last.Sub(r.Time)
}

// Lagging lists the rows still serving a stale answer.
func (r PropagationReport) Lagging() []PropagationRow {
	var out []PropagationRow
	for _, row := range r.Rows {
		if row.Stale() {
			out = append(out, row)
		}
	}
	return out
}

// Table renders the report for the plain mode: one row per resolver, name
// and type, then a summary line.
func (r PropagationReport) Table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOLVER\tNAME\tTYPE\tANSWER\tTTL\tSTATE\tEXPIRES")
	rows := slices.Clone(r.Rows)
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Name != rows[j].Name {
			return rows[i].Name < rows[j].Name
		}
		return rows[i].Type < rows[j].Type
	})
	for _, row := range rows {
		answer := strings.Join(row.Answer, ",")
		if row.State == PropError {
			answer = row.Error
		} else if answer == "" {
			answer = "-"
		}
		if len(row.CNAME) > 0 {
			answer = "CNAME " + strings.Join(row.CNAME, " ") + " > " + answer
		}
		ttl, expires := "-", "-"
		if row.State != PropError {
			ttl = fmt.Sprintf("%ds", row.TTL)
		}
		if row.Stale() {
			expires = "in " + dnsDuration(row.Expires.Sub(r.Time))
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Resolver, row.Label, row.Name, row.Type, answer, ttl, row.State, expires)
	}
	tw.Flush()
	b.WriteString(r.Summary())
	b.WriteString("\n")
	return b.String()
}

// Summary is one line: how many rows show the new answer and the ETA.
func (r PropagationReport) Summary() string {
	var nNew, nStale, nErr int
	for _, row := range r.Rows {
		switch {
		case row.State == PropNew:
			nNew++
		case row.State == PropError:
			nErr++
		default:
			nStale++
		}
	}
	s := fmt.Sprintf("%s: %d/%d answers show the new address", r.Time.Local().Format(time.TimeOnly), nNew, len(r.Rows))
	if len(r.Want) == 0 {
		s = fmt.Sprintf("%s: %d answers (no dns.new_address to compare with)", r.Time.Local().Format(time.TimeOnly), len(r.Rows))
	}
	if nErr > 0 {
		s += fmt.Sprintf(", %d without a usable answer", nErr)
	}
	if last := r.LastExpiry(); nStale > 0 && !last.IsZero() && len(r.Want) > 0 {
		s += fmt.Sprintf("; last stale cache expires in %s (at %s)", dnsDuration(r.ETA()), last.Local().Format(time.TimeOnly))
	}
	if r.AllAgree() {
		s += "; all agree"
	}
	return s
}

// Findings turns the report into check findings: one per name and type, and
// one per resolver that gave no usable answer.
func (r PropagationReport) Findings() []steps.Finding {
	var out []steps.Finding
	errSeen := map[string]bool{}
	for _, row := range r.Rows {
		if row.State != PropError || errSeen[row.Resolver+row.Error] {
			continue
		}
		errSeen[row.Resolver+row.Error] = true
		out = append(out, steps.Finding{Status: steps.Warn, Subject: row.Resolver + " (" + row.Label + ")",
			Message: fmt.Sprintf("resolver gave no usable answer for %s %s: %s", row.Name, row.Type, row.Error),
			Fix:     "check the address in dns.resolvers, or ignore a resolver this host cannot reach"})
	}
	type group struct {
		rows []PropagationRow
	}
	var keys []string
	groups := map[string]*group{}
	for _, row := range r.Rows {
		if row.State == PropError {
			continue
		}
		k := row.Name + " " + row.Type
		if groups[k] == nil {
			groups[k] = &group{}
			keys = append(keys, k)
		}
		groups[k].rows = append(groups[k].rows, row)
	}
	for _, k := range keys {
		out = append(out, r.dnsGroupFinding(k, groups[k].rows))
	}
	return out
}

func (r PropagationReport) dnsGroupFinding(subject string, rows []PropagationRow) steps.Finding {
	answers := map[string][]string{}
	var stale []PropagationRow
	var last time.Time
	for _, row := range rows {
		a := strings.Join(row.Answer, ",")
		if a == "" {
			a = "(none)"
		}
		answers[a] = append(answers[a], row.Resolver)
		if row.Stale() {
			stale = append(stale, row)
			if row.Expires.After(last) {
				last = row.Expires
			}
		}
	}
	if len(r.Want) == 0 {
		if len(answers) == 1 {
			for a := range answers {
				return steps.Finding{Status: steps.Pass, Subject: subject, Message: fmt.Sprintf("all %d resolvers answer %s", len(rows), a)}
			}
		}
		var parts []string
		for a, rs := range answers {
			parts = append(parts, fmt.Sprintf("%s from %s", a, strings.Join(rs, " ")))
		}
		sort.Strings(parts)
		return steps.Finding{Status: steps.Warn, Subject: subject, Message: "resolvers disagree: " + strings.Join(parts, "; ")}
	}
	if len(stale) == 0 {
		return steps.Finding{Status: steps.Pass, Subject: subject,
			Message: fmt.Sprintf("all %d resolvers show the new address %s", len(rows), strings.Join(rows[0].Answer, ", "))}
	}
	if !r.Switched && len(stale) == len(rows) {
		return steps.Finding{Status: steps.Pass, Subject: subject,
			Message: fmt.Sprintf("not switched yet: %d resolvers answer %s", len(rows), strings.Join(dnsKeys(answers), " / "))}
	}
	var lag []string
	for _, row := range stale {
		lag = append(lag, fmt.Sprintf("%s %s (TTL %d s)", row.Resolver, strings.Join(row.Answer, ","), row.TTL))
	}
	return steps.Finding{Status: steps.Warn, Subject: subject,
		Message: fmt.Sprintf("%d of %d resolvers still serve a stale answer: %s; the last cache expires in %s (at %s)",
			len(stale), len(rows), strings.Join(lag, ", "), dnsDuration(last.Sub(r.Time)), last.Local().Format(time.TimeOnly)),
		Fix: "wait for the caches to expire; decant check --watch shows the countdown"}
}

func dnsKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
