package dnsq

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Names turns the runbook's names into canonical FQDNs. A name is taken as
// absolute when it ends in a dot or in the zone itself ("www.shop.test"),
// else relative to the zone; "@" is the apex. No names means apex and www.
func Names(zone string, names []string) []string {
	zone = dns.CanonicalName(zone)
	if len(names) == 0 {
		return []string{zone, "www." + zone}
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		var abs string
		switch {
		case n == "" || n == "@":
			abs = zone
		case dns.IsFqdn(n) || dns.IsSubDomain(zone, dns.CanonicalName(n)):
			abs = dns.CanonicalName(n)
		default:
			abs = dns.CanonicalName(n + "." + zone)
		}
		if !seen[abs] {
			seen[abs] = true
			out = append(out, abs)
		}
	}
	return out
}

// ExpandPath resolves "~/" against the home directory and a relative path
// against base's directory (the runbook's), so a runbook's tsig_key works
// whatever directory decant is started in.
func ExpandPath(p, base string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(filepath.Dir(base), p)
}

// NameRecords is what one server holds for a name: a CNAME, or its own
// address RRsets.
type NameRecords struct {
	Name string `json:"name"`
	// CNAME is the target when the name is an alias ("" otherwise).
	CNAME    string `json:"cname,omitempty"`
	CNAMETTL uint32 `json:"cname_ttl,omitempty"`
	A        RRset  `json:"a"`
	AAAA     RRset  `json:"aaaa"`
	NXDomain bool   `json:"nxdomain,omitempty"`
}

// Same reports whether two servers hold the same records (TTLs included).
func (n *NameRecords) Same(o *NameRecords) bool {
	return n.CNAME == o.CNAME && n.CNAMETTL == o.CNAMETTL && n.NXDomain == o.NXDomain &&
		n.A.Equal(o.A) && n.AAAA.Equal(o.AAAA)
}

// Summary is a short description: "CNAME shop.test. (TTL 300)" or
// "A 192.0.2.10 (TTL 3600); AAAA (none)".
func (n *NameRecords) Summary() string {
	switch {
	case n.NXDomain:
		return "does not exist (NXDOMAIN)"
	case n.CNAME != "":
		return "CNAME " + n.CNAME + " (TTL " + strconv.FormatUint(uint64(n.CNAMETTL), 10) + ")"
	case n.AAAA.Empty():
		return n.A.Short()
	case n.A.Empty():
		return n.AAAA.Short()
	}
	return n.A.Short() + "; " + n.AAAA.Short()
}

// Sets returns the address RRsets (A, AAAA), empty ones included.
func (n *NameRecords) Sets() []RRset { return []RRset{n.A, n.AAAA} }

// ReadName asks an authoritative server directly (RD off) for name's A and
// AAAA records, noticing a CNAME instead.
func (c *Client) ReadName(ctx context.Context, server, name string) (*NameRecords, error) {
	name = dns.CanonicalName(name)
	nr := &NameRecords{Name: name, A: RRset{Name: name, Type: "A"}, AAAA: RRset{Name: name, Type: "AAAA"}}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		ans, err := c.Lookup(ctx, server, name, t, false)
		if err != nil {
			return nil, err
		}
		if ans.NXDomain {
			nr.NXDomain = true
			return nr, nil
		}
		if len(ans.CNAMEs) > 0 {
			nr.CNAME = dns.CanonicalName(ans.CNAMEs[0].Target)
			nr.CNAMETTL = ans.CNAMEs[0].Hdr.Ttl
			return nr, nil
		}
		set := NewRRset(name, t, ans.Records)
		if t == dns.TypeA {
			nr.A = set
		} else {
			nr.AAAA = set
		}
	}
	return nr, nil
}
