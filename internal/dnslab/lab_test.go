package dnslab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/miekg/dns"
)

func startLab(t *testing.T, o Options) *Lab {
	t.Helper()
	o.Dir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

func TestLabServesAndUpdates(t *testing.T) {
	l := startLab(t, Options{
		Zone:      "shop.test.",
		Records:   []string{"@ 30 IN A 192.0.2.10", "www 30 IN CNAME @"},
		Resolvers: 1,
		Secondary: true,
	})
	ctx := context.Background()
	c := &dnsq.Client{Timeout: time.Second}

	for _, srv := range l.Authoritative() {
		ans, err := c.Lookup(ctx, srv, "www.shop.test.", dns.TypeA, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ans.Authoritative || len(ans.CNAMEs) != 1 || ans.Values()[0] != "192.0.2.10" || ans.TTL() != 30 {
			t.Fatalf("%s: www answer %+v", srv, ans)
		}
	}
	ans, err := c.Lookup(ctx, l.Resolvers[0], "www.shop.test.", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Values()[0] != "192.0.2.10" {
		t.Fatalf("resolver answer %v", ans.Values())
	}
	// Nothing outside the lab zone is resolved: the root is refused.
	if _, err := c.Lookup(ctx, l.Resolvers[0], "example.com.", dns.TypeA, true); err == nil {
		t.Fatal("resolver answered outside the lab zone")
	}

	before := l.Zone()
	from := dnsq.RRset{Name: "shop.test.", Type: "A", TTL: 30, Values: []string{"192.0.2.10"}}
	to := dnsq.RRset{Name: "shop.test.", Type: "A", TTL: 30, Values: []string{"203.0.113.20"}}
	if err := c.Update(ctx, l.Primary, l.Origin, l.Key, []dnsq.Change{{From: from, To: to}}); err != nil {
		t.Fatal(err)
	}
	after := l.Zone()
	if serial(before)+1 != serial(after) {
		t.Fatalf("serial %d -> %d", serial(before), serial(after))
	}
	sec, err := c.Lookup(ctx, l.Secondary, "shop.test.", dns.TypeA, false)
	if err != nil || sec.Values()[0] != "203.0.113.20" {
		t.Fatalf("secondary not in sync: %v %v", sec, err)
	}
	// The same update again: its prerequisite no longer holds.
	err = c.Update(ctx, l.Primary, l.Origin, l.Key, []dnsq.Change{{From: from, To: to}})
	if !dnsq.PrerequisiteFailed(err) {
		t.Fatalf("want prerequisite failure, got %v", err)
	}
	t.Log(err)
	// Updates to the secondary are refused.
	err = c.Update(ctx, l.Secondary, l.Origin, l.Key, []dnsq.Change{{From: to, To: from}})
	if err == nil {
		t.Fatal("secondary accepted an update")
	}
	t.Log(err)
}

func serial(rrs []dns.RR) uint32 {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

func TestLabRefusesBadUpdates(t *testing.T) {
	l := startLab(t, Options{Zone: "shop.test.", Records: []string{"@ 30 IN A 192.0.2.10"}})
	ctx := context.Background()
	c := &dnsq.Client{Timeout: time.Second}
	before := l.Zone()
	from := dnsq.RRset{Name: "shop.test.", Type: "A", TTL: 30, Values: []string{"192.0.2.10"}}
	to := dnsq.RRset{Name: "shop.test.", Type: "A", TTL: 30, Values: []string{"203.0.113.20"}}
	ch := []dnsq.Change{{From: from, To: to}}

	wrong := *l.Key
	wrong.Secret = "d3JvbmctZDNKdmJtY3RkM0p2Ym1jdGQzSnZibWM9PQ=="
	err := c.Update(ctx, l.Primary, l.Origin, &wrong, ch)
	var ue *dnsq.UpdateError
	if !errors.As(err, &ue) || ue.Rcode != dns.RcodeNotAuth {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := *l.Key
	unknown.Name = "someone-else."
	if err := c.Update(ctx, l.Primary, l.Origin, &unknown, ch); !errors.As(err, &ue) || ue.Rcode != dns.RcodeNotAuth {
		t.Fatalf("unknown key: %v", err)
	}
	// Unsigned: refused.
	m, _ := dnsq.BuildUpdate(l.Origin, ch)
	r, _, err := c.Exchange(ctx, m, l.Primary, nil)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned: %v %v", r, err)
	}
	// Another zone: NOTAUTH.
	if err := c.Update(ctx, l.Primary, "other.test.", l.Key, nil); !errors.As(err, &ue) || ue.Rcode != dns.RcodeNotAuth {
		t.Fatalf("other zone: %v", err)
	}
	// "Must not exist" on an existing RRset: YXRRSET.
	err = c.Update(ctx, l.Primary, l.Origin, l.Key, []dnsq.Change{{From: dnsq.RRset{Name: "shop.test.", Type: "A"}, To: to}})
	if !errors.As(err, &ue) || ue.Rcode != dns.RcodeYXRrset {
		t.Fatalf("nxrrset prereq: %v", err)
	}
	// A record outside the zone: NOTZONE.
	out := dnsq.RRset{Name: "x.other.", Type: "A", TTL: 5, Values: []string{"192.0.2.1"}}
	err = c.Update(ctx, l.Primary, l.Origin, l.Key, []dnsq.Change{{From: dnsq.RRset{Name: "x.other.", Type: "A"}, To: out}})
	if !errors.As(err, &ue) || ue.Rcode != dns.RcodeNotZone {
		t.Fatalf("notzone: %v", err)
	}
	if after := l.Zone(); !sameZone(before, after) {
		t.Fatalf("refused updates changed the zone:\n%v\n%v", before, after)
	}
}

func sameZone(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// An update too big for a plain UDP datagram goes over TCP.
func TestLabLargeUpdateOverTCP(t *testing.T) {
	l := startLab(t, Options{Zone: "shop.test.", Records: []string{"pool 30 IN A 192.0.2.1"}})
	ctx := context.Background()
	c := &dnsq.Client{Timeout: time.Second}
	to := dnsq.RRset{Name: "pool.shop.test.", Type: "A", TTL: 30}
	for i := 1; i <= 60; i++ {
		to.Values = append(to.Values, fmt.Sprintf("198.51.100.%d", i))
	}
	slices.Sort(to.Values)
	from := dnsq.RRset{Name: "pool.shop.test.", Type: "A", TTL: 30, Values: []string{"192.0.2.1"}}
	if m, _ := dnsq.BuildUpdate(l.Origin, []dnsq.Change{{From: from, To: to}}); m.Len() < 600 {
		t.Fatalf("update too small to need TCP: %d bytes", m.Len())
	}
	if err := c.Update(ctx, l.Primary, l.Origin, l.Key, []dnsq.Change{{From: from, To: to}}); err != nil {
		t.Fatal(err)
	}
	nr, err := c.ReadName(ctx, l.Primary, "pool.shop.test.")
	if err != nil {
		t.Fatal(err)
	}
	if !nr.A.Equal(to) {
		t.Fatalf("got %d values", len(nr.A.Values))
	}
}
