package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/decant-sh/decant/internal/dnslab"
)

// A dns.propagation check that finds a resolver still serving the old
// address refreshes live until the cache expires and every resolver agrees.
func TestPropagationRefreshesLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := dnslab.Start(ctx, dnslab.Options{Dir: t.TempDir(), Zone: "shop.test.", Resolvers: 1,
		Records: []string{"@ 3 IN A 192.0.2.10"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	// Warm the resolver's cache with the old address; the UI switches the
	// record at the authoritative server.
	m := new(dns.Msg)
	m.SetQuestion("shop.test.", dns.TypeA)
	if _, err := dns.Exchange(m, l.Resolvers[0]); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yaml")
	src := fmt.Sprintf(`name: watch
hosts:
  source: {address: local}
dns:
  zone: shop.test.
  names: [shop.test.]
  authoritative: [%q]
  primary: %q
  tsig_key: %q
  old_address: [192.0.2.10]
  new_address: [198.51.100.7]
  resolvers: [%q]
  resolvers_mode: replace
  timeout: 1s
phases:
  - name: cutover
    steps:
      - action: dns.switch
      - check: dns.propagation
`, l.Primary, l.Primary, l.KeyFile, l.Resolvers[0])
	os.WriteFile(rb, []byte(src), 0o600)
	h := startUI(t, rb, dir, 100, 30)
	h.keys("n")
	h.waitText("Type shop.test to go on")
	h.typeText("shop.test")
	h.keys("enter")
	h.waitFor("switched", func(s string) bool { return hasMark(s, "dns.switch", "✓") })
	h.keys("n")
	h.waitText("resolvers still lag; refreshing every 5s")
	h.waitFor("propagated", func(s string) bool {
		return strings.Contains(s, "every resolver shows the new address") && hasMark(s, "dns.propagation", "✓")
	})
	if n := h.e.State("cutover/dns.propagation").Attempts; n < 2 {
		t.Fatalf("the check ran %d times: it did not refresh", n)
	}
}
