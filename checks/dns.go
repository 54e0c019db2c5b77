package checks

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/steps"
)

// dnsClient builds the DNS client with the runbook's per-query timeout.
func dnsClient(env *steps.Env) *dnsq.Client {
	return &dnsq.Client{Timeout: env.DNS.Timeout}
}

// dnsSystemResolvers are the addresses from resolv.conf, used only to find
// NS and SOA-MNAME addresses when the runbook does not list them.
func dnsSystemResolvers() []string {
	rs, err := dnsq.SystemResolvers("")
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Addr)
	}
	return out
}

// dnsAuthority finds the zone's authoritative servers (dns.authoritative or NS).
func dnsAuthority(ctx context.Context, env *steps.Env) (*dnsq.Authority, error) {
	if env.DNS.Zone == "" {
		return nil, errors.New("dns.zone is not set in the runbook")
	}
	return dnsClient(env).FindAuthority(ctx, env.DNS.Zone, env.DNS.Authoritative, dnsSystemResolvers())
}

// dnsLastRecord returns the newest journal record of kind that was not
// undone, with its receipt decoded as an RFC 2136 receipt.
func dnsLastRecord(env *steps.Env, kind string) (*dnsq.Receipt, time.Time, bool) {
	hist := env.Records()
	for i := len(hist) - 1; i >= 0; i-- {
		rec := hist[i]
		if rec.Kind != kind || rec.Undone {
			continue
		}
		var r dnsq.Receipt
		if len(rec.Receipt) > 0 {
			if err := json.Unmarshal(rec.Receipt, &r); err != nil {
				continue
			}
		}
		at := r.Time
		if at.IsZero() {
			at = rec.Time
		}
		return &r, at, true
	}
	return nil, time.Time{}, false
}

// dnsDuration renders a wait the way an operator reads it: "42s", "3m20s",
// "1h2m0s"; seconds stop mattering past an hour.
func dnsDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}
