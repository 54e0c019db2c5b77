package discover

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/decant-sh/decant/internal/dnsq"
)

// DomainNames returns the names the virtual hosts serve that can be in
// public DNS: lower case, canonical (trailing dot), without wildcards, IP
// addresses, "localhost" or single labels; sorted by zone-ish order (the
// apex before its subdomains).
func DomainNames(vhosts []VHost) []string {
	var out []string
	for _, v := range vhosts {
		for _, n := range v.Names {
			// nginx's ".example.com" is example.com and its subdomains.
			n = strings.TrimPrefix(strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), ".")), ".")
			switch {
			case n == "", strings.ContainsAny(n, "*~$^()[]\\ /"), net.ParseIP(n) != nil,
				!strings.Contains(n, "."), n == "localhost", strings.HasSuffix(n, ".localhost"),
				strings.HasSuffix(n, ".local"):
				continue
			}
			out = append(out, n+".")
		}
	}
	out = uniqSorted(out)
	sort.SliceStable(out, func(i, j int) bool { return reverseLabels(out[i]) < reverseLabels(out[j]) })
	return out
}

// reverseLabels turns www.shop.test. into test.shop.www so that sorting
// groups names by zone with the apex first.
func reverseLabels(n string) string {
	l := dns.SplitDomainName(n)
	for i, j := 0, len(l)-1; i < j; i, j = i+1, j-1 {
		l[i], l[j] = l[j], l[i]
	}
	return strings.Join(l, ".")
}

// domains lists the vhosts' names and, unless DNS is skipped, asks a
// resolver for each name's zone (the owner of the SOA in the answer),
// the zone's name servers and the name's current addresses.
func (d *discoverer) domains(ctx context.Context, vhosts []VHost, p *part) []Domain {
	names := DomainNames(vhosts)
	out := make([]Domain, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	if len(names) == 0 {
		return out
	}
	o := d.o.DNS
	if o.Skip {
		p.note("dns: not asked (--no-dns): zones and name servers unknown")
		return out
	}
	resolvers := o.Resolvers
	if len(resolvers) == 0 {
		rs, err := dnsq.SystemResolvers(d.fs.real("/etc/resolv.conf"))
		if err != nil {
			p.problem("dns: %v", err)
			return out
		}
		for _, r := range rs {
			resolvers = append(resolvers, r.Addr)
		}
	}
	if len(resolvers) == 0 {
		p.problem("dns: no resolver to ask (none in /etc/resolv.conf)")
		return out
	}
	c := &dnsq.Client{Timeout: o.Timeout}
	if o.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	ns := map[string][]string{}
	for i := range out {
		dom := &out[i]
		zone, unreachable, err := findZone(ctx, c, resolvers, dom.Name)
		if err != nil {
			p.problem("dns: zone of %s: %v", dom.Name, err)
			if unreachable {
				// No resolver answers at all: asking for every other name
				// would only repeat the wait.
				p.problem("dns: stopped asking: no resolver answered (%s)", strings.Join(resolvers, ", "))
				return out
			}
			continue
		}
		dom.Zone = zone
		if _, ok := ns[zone]; !ok {
			ans, err := lookupAny(ctx, c, resolvers, zone, dns.TypeNS)
			if err != nil {
				p.problem("dns: NS of %s: %v", zone, err)
			}
			var list []string
			if ans != nil {
				for _, rr := range ans.Records {
					list = append(list, dns.CanonicalName(rr.(*dns.NS).Ns))
				}
			}
			sort.Strings(list)
			ns[zone] = list
		}
		dom.NS = ns[zone]
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			ans, err := lookupAny(ctx, c, resolvers, dom.Name, qt)
			if err != nil {
				p.problem("dns: %s of %s: %v", dns.TypeToString[qt], dom.Name, err)
				continue
			}
			dom.Addresses = append(dom.Addresses, ans.Values()...)
			if len(ans.CNAMEs) > 0 {
				dom.CNAME = dns.CanonicalName(ans.CNAMEs[0].Target)
			}
		}
	}
	return out
}

// findZone asks for name's SOA: the answer holds the apex's SOA (for the
// apex itself, or after a CNAME) or, for a name below it, the authority
// section does; either way the SOA's owner is the zone.
// unreachable is set when no resolver replied at all.
func findZone(ctx context.Context, c *dnsq.Client, resolvers []string, name string) (zone string, unreachable bool, err error) {
	var errs []error
	replied := false
	for _, r := range resolvers {
		m, _, err := c.Query(ctx, r, name, dns.TypeSOA, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		replied = true
		if m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError {
			errs = append(errs, &dnsq.RcodeError{Server: dnsq.HostPort(r), Name: name, Rcode: m.Rcode})
			continue
		}
		for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
			for _, rr := range sec {
				if soa, ok := rr.(*dns.SOA); ok {
					return dns.CanonicalName(soa.Hdr.Name), false, nil
				}
			}
		}
		errs = append(errs, errors.New("no SOA in the answer: the name is in no zone the resolver knows"))
	}
	return "", !replied, errors.Join(errs...)
}

// lookupAny asks the resolvers in turn and returns the first answer.
func lookupAny(ctx context.Context, c *dnsq.Client, resolvers []string, name string, qt uint16) (*dnsq.Answer, error) {
	var errs []error
	for _, r := range resolvers {
		ans, err := c.Lookup(ctx, r, name, qt, true)
		if err == nil {
			return ans, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
