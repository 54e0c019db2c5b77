package dnsq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// Authority is what decant knows of a zone's authoritative side.
type Authority struct {
	Zone string
	// Servers are the authoritative servers as host:port, each queried
	// directly; Names holds the NS name each came from ("" when configured).
	Servers []string
	Names   []string
	// SOA as the first answering server holds it.
	SOA *dns.SOA
}

// FindAuthority finds zone's authoritative servers: the configured list when
// given, else the NS set looked up through resolvers, each NS name resolved
// to its addresses on port 53. The SOA comes from the first server answering.
func (c *Client) FindAuthority(ctx context.Context, zone string, configured []string, resolvers []string) (*Authority, error) {
	zone = dns.CanonicalName(zone)
	a := &Authority{Zone: zone}
	if len(configured) > 0 {
		for _, s := range configured {
			a.Servers = append(a.Servers, HostPort(s))
			a.Names = append(a.Names, "")
		}
	} else {
		nsAns, err := c.firstAnswer(ctx, resolvers, zone, dns.TypeNS)
		if err != nil {
			return nil, fmt.Errorf("NS of %s: %w", zone, err)
		}
		if len(nsAns.Records) == 0 {
			return nil, fmt.Errorf("NS of %s: no NS records; is %s the zone apex?", zone, zone)
		}
		for _, rr := range nsAns.Records {
			host := dns.CanonicalName(rr.(*dns.NS).Ns)
			addrs, err := c.resolveHost(ctx, resolvers, host)
			if err != nil {
				return nil, fmt.Errorf("address of name server %s: %w", host, err)
			}
			for _, ip := range addrs {
				a.Servers = append(a.Servers, net.JoinHostPort(ip, "53"))
				a.Names = append(a.Names, host)
			}
		}
	}
	var errs []error
	for _, s := range a.Servers {
		ans, err := c.Lookup(ctx, s, zone, dns.TypeSOA, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(ans.Records) > 0 {
			a.SOA = ans.Records[0].(*dns.SOA)
			break
		}
	}
	if a.SOA == nil {
		return a, fmt.Errorf("SOA of %s: no authoritative server answered: %w", zone, errors.Join(errs...))
	}
	return a, nil
}

// Primary is where updates go: configured when given, else the SOA MNAME
// resolved through resolvers, on port 53.
func (c *Client) Primary(ctx context.Context, a *Authority, configured string, resolvers []string) (string, error) {
	if configured != "" {
		return HostPort(configured), nil
	}
	if a == nil || a.SOA == nil {
		return "", errors.New("no SOA to take the primary (MNAME) from; set dns.primary in the runbook")
	}
	mname := dns.CanonicalName(a.SOA.Ns)
	for i, n := range a.Names {
		if n == mname {
			return a.Servers[i], nil
		}
	}
	addrs, err := c.resolveHost(ctx, resolvers, mname)
	if err != nil {
		return "", fmt.Errorf("primary %s (SOA MNAME): %w; set dns.primary in the runbook", mname, err)
	}
	return net.JoinHostPort(addrs[0], "53"), nil
}

// firstAnswer asks resolvers in order until one answers.
func (c *Client) firstAnswer(ctx context.Context, resolvers []string, name string, qtype uint16) (*Answer, error) {
	if len(resolvers) == 0 {
		return nil, errors.New("no resolver to ask")
	}
	var errs []error
	for _, r := range resolvers {
		ans, err := c.Lookup(ctx, r, name, qtype, true)
		if err == nil {
			return ans, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (c *Client) resolveHost(ctx context.Context, resolvers []string, host string) ([]string, error) {
	if ip := net.ParseIP(strings.TrimSuffix(host, ".")); ip != nil {
		return []string{ip.String()}, nil
	}
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		ans, err := c.firstAnswer(ctx, resolvers, host, t)
		if err != nil {
			if t == dns.TypeA {
				return nil, err
			}
			continue
		}
		out = append(out, ans.Values()...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no A or AAAA record", host)
	}
	return out, nil
}
