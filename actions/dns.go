package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

// dnsPlanData is what a DNS action's Plan hands to Do: exactly what decant
// saw, so Do's prerequisite refuses an update if the zone moved since.
type dnsPlanData struct {
	Zone    string        `json:"zone"`
	Primary string        `json:"primary"`
	Changes []dnsq.Change `json:"changes"`
}

func dnsClient(env *steps.Env) *dnsq.Client {
	return &dnsq.Client{Timeout: env.DNS.Timeout}
}

// dnsLoadKey reads the runbook's TSIG key and registers its secret for
// redaction before anything could log it.
func dnsLoadKey(env *steps.Env) (*dnsq.Key, error) {
	if env.DNS.TSIGKey == "" {
		return nil, errors.New("dns.tsig_key is not set: RFC 2136 updates need a TSIG key file (0600); without RFC 2136 at your provider use a shell step, see docs/dns-shell.md")
	}
	k, err := dnsq.LoadKey(dnsq.ExpandPath(env.DNS.TSIGKey, env.Runbook))
	if err != nil {
		return nil, err
	}
	env.Secrets.Add(k.Secret)
	return k, nil
}

// dnsPrimary is where updates go: dns.primary, else the SOA MNAME.
func dnsPrimary(ctx context.Context, env *steps.Env, cl *dnsq.Client) (string, error) {
	if env.DNS.Zone == "" {
		return "", errors.New("dns.zone is not set in the runbook")
	}
	if env.DNS.Primary != "" {
		return dnsq.HostPort(env.DNS.Primary), nil
	}
	var system []string
	if rs, err := dnsq.SystemResolvers(""); err == nil {
		for _, r := range rs {
			system = append(system, r.Addr)
		}
	}
	auth, err := cl.FindAuthority(ctx, env.DNS.Zone, env.DNS.Authoritative, system)
	if err != nil {
		return "", err
	}
	return cl.Primary(ctx, auth, "", system)
}

// dnsReadNames reads every name's records from the primary.
func dnsReadNames(ctx context.Context, cl *dnsq.Client, primary string, names []string) (map[string]*dnsq.NameRecords, error) {
	out := map[string]*dnsq.NameRecords{}
	for _, n := range names {
		nr, err := cl.ReadName(ctx, primary, n)
		if err != nil {
			return nil, fmt.Errorf("read %s from the primary: %w", n, err)
		}
		out[n] = nr
	}
	return out, nil
}

// dnsCurrent reads the RRsets named by sets (their values ignored) from the
// primary as they are now.
func dnsCurrent(ctx context.Context, cl *dnsq.Client, primary string, sets []dnsq.RRset) ([]dnsq.RRset, error) {
	out := make([]dnsq.RRset, 0, len(sets))
	for _, s := range sets {
		ans, err := cl.Lookup(ctx, primary, s.Name, s.Qtype(), false)
		if err != nil {
			return nil, fmt.Errorf("read %s %s from the primary: %w", s.Name, s.Type, err)
		}
		// A CNAME's target records are not the name's own: NewRRset drops them.
		out = append(out, dnsq.NewRRset(s.Name, s.Qtype(), ans.Records))
	}
	return out, nil
}

func dnsAllEqual(a, b []dnsq.RRset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func dnsShort(sets []dnsq.RRset) string {
	var parts []string
	for _, s := range sets {
		parts = append(parts, s.Name+" "+s.Short())
	}
	return strings.Join(parts, "; ")
}

// dnsMakePlan renders changes for the operator: one Change per RRset and the
// equivalent nsupdate script in zone-file syntax.
func dnsMakePlan(summary string, data dnsPlanData, key *dnsq.Key) (*steps.Plan, error) {
	p := &steps.Plan{Summary: summary, Noop: len(data.Changes) == 0}
	for _, ch := range data.Changes {
		before, after := strings.TrimPrefix(ch.From.Short(), ch.From.Type+" "), strings.TrimPrefix(ch.To.Short(), ch.To.Type+" ")
		p.Changes = append(p.Changes, steps.Change{What: ch.From.Name + " " + ch.From.Type, Before: before, After: after})
	}
	if !p.Noop {
		p.Commands = dnsq.UpdateScript(data.Primary, data.Zone, key, data.Changes)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	p.Data = raw
	return p, nil
}

// dnsApply is Do for both DNS actions: checkpoint the exact previous RRsets,
// then send one signed update whose prerequisite is what Plan saw.
func dnsApply(ctx context.Context, env *steps.Env, plan *steps.Plan, r steps.Reporter) (any, error) {
	if plan == nil || len(plan.Data) == 0 {
		return nil, errors.New("no plan data: the plan must run before the update")
	}
	var data dnsPlanData
	if err := json.Unmarshal(plan.Data, &data); err != nil {
		return nil, fmt.Errorf("plan data: %w", err)
	}
	key, err := dnsLoadKey(env)
	if err != nil {
		return nil, err
	}
	cl := dnsClient(env)
	var earlier dnsq.Receipt
	if r.Resume(&earlier) && len(earlier.New) > 0 {
		// The process died after the checkpoint: the update may have landed.
		if cur, err := dnsCurrent(ctx, cl, earlier.Primary, earlier.New); err == nil && dnsAllEqual(cur, earlier.New) {
			r.Logf("an earlier attempt already applied the update: %s", dnsShort(cur))
			return earlier, nil
		}
	}
	rc := dnsq.Receipt{Zone: data.Zone, Primary: data.Primary, Time: env.Clock()}
	for _, ch := range data.Changes {
		rc.Previous = append(rc.Previous, ch.From)
		rc.New = append(rc.New, ch.To)
	}
	if len(data.Changes) == 0 {
		r.Logf("nothing to change in %s", data.Zone)
		return rc, nil
	}
	if err := r.Checkpoint(rc); err != nil {
		return nil, err
	}
	for _, ch := range data.Changes {
		r.Logf("update %s", ch.Describe())
	}
	r.Logf("sending the update for %s to %s, signed with key %s", data.Zone, data.Primary, key)
	if err := cl.Update(ctx, data.Primary, data.Zone, key, data.Changes); err != nil {
		if dnsq.PrerequisiteFailed(err) {
			if cur, cerr := dnsCurrent(ctx, cl, data.Primary, rc.Previous); cerr == nil {
				return nil, fmt.Errorf("%w; the primary now holds %s; nothing was changed: run the plan again", err, dnsShort(cur))
			}
		}
		return nil, err
	}
	cur, err := dnsCurrent(ctx, cl, data.Primary, rc.New)
	if err != nil {
		return rc, fmt.Errorf("update accepted but cannot read it back: %w", err)
	}
	if !dnsAllEqual(cur, rc.New) {
		return rc, fmt.Errorf("update accepted but the primary serves %s instead of %s", dnsShort(cur), dnsShort(rc.New))
	}
	r.Logf("the primary now serves %s", dnsShort(cur))
	return rc, nil
}

// dnsRevert is Undo for both DNS actions: put back the previous RRsets, but
// only while the zone still holds what decant set.
func dnsRevert(ctx context.Context, env *steps.Env, raw json.RawMessage, r steps.Reporter) error {
	var rc dnsq.Receipt
	if err := json.Unmarshal(raw, &rc); err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	if len(rc.New) == 0 {
		r.Logf("nothing was changed in %s", rc.Zone)
		return nil
	}
	key, err := dnsLoadKey(env)
	if err != nil {
		return err
	}
	cl := dnsClient(env)
	cur, err := dnsCurrent(ctx, cl, rc.Primary, rc.Previous)
	if err != nil {
		return err
	}
	if dnsAllEqual(cur, rc.Previous) {
		r.Logf("%s already holds the previous records: %s", rc.Zone, dnsShort(cur))
		return nil
	}
	changes := make([]dnsq.Change, len(rc.New))
	for i := range rc.New {
		changes[i] = dnsq.Change{From: rc.New[i], To: rc.Previous[i]}
		r.Logf("restore %s", changes[i].Describe())
	}
	if err := cl.Update(ctx, rc.Primary, rc.Zone, key, changes); err != nil {
		if dnsq.PrerequisiteFailed(err) {
			return fmt.Errorf("undo refused, the zone changed since decant set it: %w; the primary now holds %s, decant had set %s; to restore anyway: %s",
				err, dnsShort(cur), dnsShort(rc.New), strings.Join(dnsq.UpdateScript(rc.Primary, rc.Zone, nil, dnsForce(cur, rc.Previous)), "; "))
		}
		return err
	}
	after, err := dnsCurrent(ctx, cl, rc.Primary, rc.Previous)
	if err != nil {
		return fmt.Errorf("undo accepted but cannot read it back: %w", err)
	}
	if !dnsAllEqual(after, rc.Previous) {
		return fmt.Errorf("undo accepted but the primary serves %s instead of %s", dnsShort(after), dnsShort(rc.Previous))
	}
	r.Logf("the primary serves the previous records again: %s", dnsShort(after))
	return nil
}

// dnsForce builds changes from the current state to want, for the manual
// command offered when undo is refused.
func dnsForce(cur, want []dnsq.RRset) []dnsq.Change {
	out := make([]dnsq.Change, len(want))
	for i := range want {
		out[i] = dnsq.Change{From: cur[i], To: want[i]}
	}
	return out
}

// dnsTTLFor picks the TTL for a new RRset: the old one's, else a sibling's,
// else the runbook's.
func dnsTTLFor(cur dnsq.RRset, sibling dnsq.RRset, fallback uint32) uint32 {
	switch {
	case !cur.Empty():
		return cur.TTL
	case !sibling.Empty():
		return sibling.TTL
	case fallback > 0:
		return fallback
	}
	return 300
}
