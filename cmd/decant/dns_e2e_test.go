package main_test

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

// The real binary lowers the TTL and switches the record on a real
// authoritative server (TSIG-signed RFC 2136), the propagation command shows
// the resolvers, and undo puts the zone back exactly as it was.
func TestDNSPlainRunPropagationUndo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := dnslab.Start(ctx, dnslab.Options{Dir: t.TempDir(), Zone: "shop.test.", Resolvers: 2,
		Records: []string{"@ 3600 IN A 192.0.2.10", "www 3600 IN CNAME @"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	before := zoneNoSOA(l) // the SOA serial moves with every update
	dir := t.TempDir()
	rb := filepath.Join(dir, "dns.yaml")
	src := fmt.Sprintf(`name: dns e2e
hosts:
  source: {address: local}
dns:
  zone: shop.test.
  names: [shop.test., www.shop.test.]
  primary: %q
  authoritative: [%q]
  tsig_key: %q
  ttl: 60
  old_address: [192.0.2.10]
  new_address: [198.51.100.7]
  resolvers: [%q, %q]
  resolvers_mode: replace
  timeout: 1s
phases:
  - name: prepare
    steps:
      - action: dns.set_ttl
  - name: cutover
    steps:
      - check: dns.ttl
      - action: dns.switch
`, l.Primary, l.Primary, l.KeyFile, l.Resolvers[0], l.Resolvers[1])
	os.WriteFile(rb, []byte(src), 0o600)

	// Warm one resolver so it keeps the old answer after the switch.
	r := run(t, "", "propagation", rb)
	if r.Code != 1 || !strings.Contains(r.Stdout, "192.0.2.10") {
		t.Fatalf("propagation before: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "run", "--plain", rb)
	if r.Code != 3 || !strings.Contains(r.Stdout, `--confirm shop.test`) {
		t.Fatalf("switch without the typed domain: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "TTL lowered at") || !strings.Contains(r.Stdout, "wait until") {
		t.Fatalf("dns.ttl does not use the journal's record of the TTL lowering:\n%s", r.Stdout)
	}
	r = run(t, "", "run", "--plain", "--confirm", "shop.test", "--waive", "dns.ttl=lab: old TTL not waited out", rb)
	if r.Code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "propagation", rb)
	if r.Code != 1 || !strings.Contains(r.Stdout, "old") {
		t.Fatalf("propagation right after the switch should show cached old answers: exit %d\n%s", r.Code, r.Stdout)
	}
	key, _ := os.ReadFile(l.KeyFile)
	j, _ := os.ReadFile(rb + ".decant/journal.jsonl")
	if secret := tsigSecret(string(key)); secret == "" || strings.Contains(string(j), secret) {
		t.Fatal("TSIG secret in the journal (or not found in the key file)")
	}
	r = run(t, "", "undo", "--yes", rb)
	if r.Code != 0 {
		t.Fatalf("undo: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if after := zoneNoSOA(l); after != before {
		t.Fatalf("zone after undo differs:\nbefore %s\nafter  %s", before, after)
	}
}

func tsigSecret(keyFile string) string {
	i := strings.Index(keyFile, "secret")
	if i < 0 {
		return ""
	}
	rest := keyFile[i+len("secret"):]
	rest = strings.TrimLeft(rest, " \t\"")
	if j := strings.IndexAny(rest, "\";"); j > 0 {
		return rest[:j]
	}
	return ""
}

func zoneNoSOA(l *dnslab.Lab) string {
	var out []string
	for _, rr := range l.Zone() {
		if rr.Header().Rrtype != dns.TypeSOA {
			out = append(out, rr.String())
		}
	}
	return strings.Join(out, "\n")
}
