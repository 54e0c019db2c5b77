package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "dns.set_ttl",
		Doc:  "lower the TTL of the names' A/AAAA records days before the switch (RFC 2136 update with TSIG, undoable)",
		New: func(n ast.Node) (any, error) {
			a := &DNSSetTTL{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.TTL > 604800 {
				return nil, steps.BadParam("ttl", "%d is over a week; want seconds, e.g. 300", a.TTL)
			}
			return a, nil
		},
	})
}

// DNSSetTTL lowers the TTL of the address records the switch will change,
// so that at cut-over resolvers drop the old address within the new TTL.
type DNSSetTTL struct {
	// TTL in seconds (default dns.ttl, else 300).
	TTL uint32 `yaml:"ttl"`
}

func (a *DNSSetTTL) target(env *steps.Env) uint32 {
	switch {
	case a.TTL > 0:
		return a.TTL
	case env.DNS.TTL > 0:
		return env.DNS.TTL
	}
	return 300
}

// Plan reads the A/AAAA RRsets from the primary; those above the target
// TTL are lowered, values kept. A CNAME name follows its target.
func (a *DNSSetTTL) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	target := a.target(env)
	key, err := dnsLoadKey(env)
	if err != nil {
		return nil, err
	}
	cl := dnsClient(env)
	primary, err := dnsPrimary(ctx, env, cl)
	if err != nil {
		return nil, err
	}
	zone := dnsq.Names(env.DNS.Zone, nil)[0]
	names := dnsq.Names(zone, env.DNS.Names)
	recs, err := dnsReadNames(ctx, cl, primary, names)
	if err != nil {
		return nil, err
	}
	data := dnsPlanData{Zone: zone, Primary: primary}
	var notes, lowered []string
	for _, n := range names {
		nr := recs[n]
		switch {
		case nr.NXDomain:
			notes = append(notes, n+" does not exist")
			continue
		case nr.CNAME != "":
			notes = append(notes, fmt.Sprintf("%s is a CNAME to %s", n, nr.CNAME))
			continue
		}
		for _, set := range nr.Sets() {
			if set.Empty() || set.TTL <= target {
				continue
			}
			to := set
			to.TTL = target
			data.Changes = append(data.Changes, dnsq.Change{From: set, To: to})
			lowered = append(lowered, fmt.Sprintf("%s %s (%d s)", n, set.Type, set.TTL))
		}
	}
	summary := fmt.Sprintf("lower the TTL of %s to %d s at %s", strings.Join(lowered, ", "), target, primary)
	if len(data.Changes) == 0 {
		summary = fmt.Sprintf("the TTLs in %s are already at or below %d s", zone, target)
	}
	if len(notes) > 0 {
		summary += " (" + strings.Join(notes, "; ") + ")"
	}
	return dnsMakePlan(summary, data, key)
}

// Do checkpoints the previous RRsets and sends the update.
func (a *DNSSetTTL) Do(ctx context.Context, env *steps.Env, plan *steps.Plan, r steps.Reporter) (any, error) {
	return dnsApply(ctx, env, plan, r)
}

// Undo restores the previous TTLs while the records are still what decant set.
func (a *DNSSetTTL) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	return dnsRevert(ctx, env, receipt, r)
}
