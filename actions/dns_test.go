package actions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/dnslab"
	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

// dnsTestReporter records what an action tells the engine; onCheckpoint runs
// at each Checkpoint so a test can look at the zone at that moment.
type dnsTestReporter struct {
	mu           sync.Mutex
	logs         []string
	checkpoints  []json.RawMessage
	resume       json.RawMessage
	onCheckpoint func()
}

func (r *dnsTestReporter) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *dnsTestReporter) Progress(done, total int64, unit string) {}

func (r *dnsTestReporter) Checkpoint(receipt any) error {
	b, err := json.Marshal(receipt)
	if err != nil {
		return err
	}
	if r.onCheckpoint != nil {
		r.onCheckpoint()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, b)
	return nil
}

func (r *dnsTestReporter) Resume(v any) bool {
	if r.resume == nil {
		return false
	}
	return json.Unmarshal(r.resume, v) == nil
}

func dnsStartLab(t *testing.T, records ...string) *dnslab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := dnslab.Start(ctx, dnslab.Options{Dir: t.TempDir(), Zone: "shop.test.", Records: records})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

func dnsTestEnv(l *dnslab.Lab, names ...string) *steps.Env {
	return &steps.Env{
		DNS: steps.DNSConfig{
			Zone: "shop.test.", Names: names, Primary: l.Primary, Authoritative: l.Authoritative(),
			TSIGKey: l.KeyFile, TTL: 300, Timeout: time.Second,
		},
		Secrets: secret.NewSet(),
	}
}

// dnsSameZone compares zones record by record; the SOA serial is left out
// because every accepted update bumps it, by design.
func dnsSameZone(t *testing.T, before, after []dns.RR) {
	t.Helper()
	norm := func(rrs []dns.RR) []string {
		var out []string
		for _, rr := range rrs {
			rr = dns.Copy(rr)
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = 0
			}
			out = append(out, rr.String())
		}
		return out
	}
	b, a := norm(before), norm(after)
	if strings.Join(b, "\n") != strings.Join(a, "\n") {
		t.Fatalf("zone differs:\nbefore:\n%s\nafter:\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
	}
}

func dnsRRsetAt(t *testing.T, l *dnslab.Lab, name string, qtype uint16) dnsq.RRset {
	t.Helper()
	return dnsq.NewRRset(name, qtype, l.Zone())
}

func TestDNSSetTTLDoUndo(t *testing.T) {
	l := dnsStartLab(t,
		"@ 3600 IN A 192.0.2.10", "www 3600 IN CNAME @",
		"api 1800 IN A 192.0.2.10", "api 1800 IN AAAA 2001:db8::10", "low 60 IN A 192.0.2.10")
	env := dnsTestEnv(l, "@", "www", "api", "low")
	ctx := context.Background()
	before := l.Zone()

	act := &actions.DNSSetTTL{}
	plan, err := act.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Noop || len(plan.Changes) != 3 {
		t.Fatalf("plan: %+v", plan)
	}
	script := strings.Join(plan.Commands, "\n")
	t.Logf("%s\n%s", plan.Summary, script)
	for _, want := range []string{"prereq yxrrset shop.test. IN A 192.0.2.10", "update add shop.test. 300 IN A 192.0.2.10",
		"update add api.shop.test. 300 IN AAAA 2001:db8::10"} {
		if !strings.Contains(script, want) {
			t.Fatalf("plan commands lack %q:\n%s", want, script)
		}
	}
	if !strings.Contains(plan.Summary, "www.shop.test. is a CNAME to shop.test.") {
		t.Fatalf("summary: %s", plan.Summary)
	}
	if strings.Contains(script, l.Key.Secret) {
		t.Fatal("plan shows the TSIG secret")
	}

	r := &dnsTestReporter{}
	r.onCheckpoint = func() {
		// The checkpoint must be journaled before the zone changes.
		if got := dnsRRsetAt(t, l, "shop.test.", dns.TypeA); got.TTL != 3600 {
			t.Errorf("zone already changed at checkpoint time: %+v", got)
		}
	}
	receipt, err := act.Do(ctx, env, plan, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.checkpoints) != 1 {
		t.Fatalf("checkpoints: %d", len(r.checkpoints))
	}
	rc := receipt.(dnsq.Receipt)
	if len(rc.Previous) != 3 || rc.Previous[0].TTL != 3600 || rc.New[0].TTL != 300 {
		t.Fatalf("receipt %+v", rc)
	}
	for _, n := range []string{"shop.test.", "api.shop.test."} {
		if got := dnsRRsetAt(t, l, n, dns.TypeA); got.TTL != 300 || got.Values[0] != "192.0.2.10" {
			t.Fatalf("%s after set_ttl: %+v", n, got)
		}
	}
	if got := dnsRRsetAt(t, l, "low.shop.test.", dns.TypeA); got.TTL != 60 {
		t.Fatalf("a TTL under the target was touched: %+v", got)
	}
	if !strings.Contains(strings.Join(env.Secrets.Values(), " "), l.Key.Secret) {
		t.Fatal("the TSIG secret is not registered for redaction")
	}
	for _, line := range r.logs {
		if strings.Contains(line, l.Key.Secret) {
			t.Fatalf("log line shows the secret: %s", line)
		}
	}

	again, err := act.Plan(ctx, env)
	if err != nil || !again.Noop {
		t.Fatalf("second plan should be a no-op: %+v %v", again, err)
	}

	raw, _ := json.Marshal(receipt)
	if err := act.Undo(ctx, env, raw, &dnsTestReporter{}); err != nil {
		t.Fatal(err)
	}
	dnsSameZone(t, before, l.Zone())
	// Undo again (a resumed undo): nothing left to do, no error.
	if err := act.Undo(ctx, env, raw, &dnsTestReporter{}); err != nil {
		t.Fatal(err)
	}
}

func TestDNSUpdateRefusedWithBadKey(t *testing.T) {
	l := dnsStartLab(t, "@ 3600 IN A 192.0.2.10")
	env := dnsTestEnv(l)
	bad := *l.Key
	bad.Secret = "YmFkLWJhZC1iYWQtYmFkLWJhZC1iYWQtYmFkLWJhZC0="
	env.DNS.TSIGKey = filepath.Join(t.TempDir(), "bad.key")
	if err := dnsq.WriteKeyFile(env.DNS.TSIGKey, &bad); err != nil {
		t.Fatal(err)
	}
	before := l.Zone()
	act := &actions.DNSSetTTL{}
	plan, err := act.Plan(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = act.Do(context.Background(), env, plan, &dnsTestReporter{})
	if err == nil || !strings.Contains(err.Error(), "NOTAUTH") || !strings.Contains(err.Error(), "TSIG key rejected") ||
		!strings.Contains(err.Error(), "refused by "+l.Primary) {
		t.Fatalf("want a NOTAUTH refusal, got %v", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), bad.Secret) {
		t.Fatal("error shows the secret")
	}
	dnsSameZone(t, before, l.Zone())
}

func TestDNSKeyFileReadableByOthers(t *testing.T) {
	l := dnsStartLab(t, "@ 3600 IN A 192.0.2.10")
	env := dnsTestEnv(l)
	if err := os.Chmod(l.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := (&actions.DNSSetTTL{}).Plan(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestDNSSwitchPrerequisiteFailure(t *testing.T) {
	l := dnsStartLab(t, "@ 300 IN A 192.0.2.10", "www 300 IN CNAME @")
	env := dnsTestEnv(l)
	env.DNS.OldAddress = []string{"192.0.2.10"}
	env.DNS.NewAddress = []string{"203.0.113.20"}
	ctx := context.Background()
	act := &actions.DNSSwitch{}
	plan, err := act.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	// Someone edits the record in the provider's panel between plan and do.
	if err := l.Set("@ 300 IN A 198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	_, err = act.Do(ctx, env, plan, &dnsTestReporter{})
	if !dnsq.PrerequisiteFailed(err) || !strings.Contains(err.Error(), "198.51.100.7") {
		t.Fatalf("want a prerequisite failure naming the new value, got %v", err)
	}
	t.Log(err)
	if got := dnsRRsetAt(t, l, "shop.test.", dns.TypeA); got.Values[0] != "198.51.100.7" {
		t.Fatalf("the other change was clobbered: %+v", got)
	}
	// A fresh plan refuses too: the value is neither old nor new.
	if _, err := act.Plan(ctx, env); err == nil || !strings.Contains(err.Error(), "neither dns.old_address") {
		t.Fatalf("plan on a foreign value: %v", err)
	}
}

func TestDNSSwitchUndoRefusedAfterForeignChange(t *testing.T) {
	l := dnsStartLab(t, "@ 300 IN A 192.0.2.10")
	env := dnsTestEnv(l, "@")
	env.DNS.NewAddress = []string{"203.0.113.20"}
	ctx := context.Background()
	act := &actions.DNSSwitch{}
	plan, err := act.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := act.Do(ctx, env, plan, &dnsTestReporter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Set("@ 300 IN A 198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(receipt)
	err = act.Undo(ctx, env, raw, &dnsTestReporter{})
	if err == nil || !strings.Contains(err.Error(), "undo refused") || !strings.Contains(err.Error(), "198.51.100.7") {
		t.Fatalf("want a refused undo, got %v", err)
	}
	t.Log(err)
	if got := dnsRRsetAt(t, l, "shop.test.", dns.TypeA); got.Values[0] != "198.51.100.7" {
		t.Fatalf("undo clobbered a foreign change: %+v", got)
	}
}

func TestDNSSwitchSeparateWWWAndIPv6(t *testing.T) {
	l := dnsStartLab(t, "@ 120 IN A 192.0.2.10", "www 120 IN A 192.0.2.10", "@ 120 IN MX 10 mail")
	env := dnsTestEnv(l)
	env.DNS.OldAddress = []string{"192.0.2.10"}
	env.DNS.NewAddress = []string{"203.0.113.20", "2001:DB8::20"}
	ctx := context.Background()
	before := l.Zone()

	k, ok := steps.Lookup("dns.switch")
	if !ok || !k.Dangerous {
		t.Fatal("dns.switch is not registered as dangerous")
	}
	impl, err := k.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	act := impl.(*actions.DNSSwitch)
	act.UseDNS(env.DNS)
	if got := act.ConfirmText(); got != "shop.test" {
		t.Fatalf("ConfirmText = %q", got)
	}
	plan, err := act.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	// Two names, each A changed and AAAA added: four RRsets.
	if len(plan.Changes) != 4 {
		t.Fatalf("plan changes: %+v", plan.Changes)
	}
	receipt, err := act.Do(ctx, env, plan, &dnsTestReporter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"shop.test.", "www.shop.test."} {
		a, aaaa := dnsRRsetAt(t, l, n, dns.TypeA), dnsRRsetAt(t, l, n, dns.TypeAAAA)
		if a.Values[0] != "203.0.113.20" || a.TTL != 120 || aaaa.Values[0] != "2001:db8::20" || aaaa.TTL != 120 {
			t.Fatalf("%s after switch: %+v %+v", n, a, aaaa)
		}
	}
	if p, err := act.Plan(ctx, env); err != nil || !p.Noop {
		t.Fatalf("plan after switch should be a no-op: %+v %v", p, err)
	}
	raw, _ := json.Marshal(receipt)
	if err := act.Undo(ctx, env, raw, &dnsTestReporter{}); err != nil {
		t.Fatal(err)
	}
	dnsSameZone(t, before, l.Zone())
}

func TestDNSResumeAfterCrash(t *testing.T) {
	l := dnsStartLab(t, "@ 300 IN A 192.0.2.10")
	env := dnsTestEnv(l, "@")
	env.DNS.NewAddress = []string{"203.0.113.20"}
	ctx := context.Background()
	act := &actions.DNSSwitch{}
	plan, err := act.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	first := &dnsTestReporter{}
	receipt, err := act.Do(ctx, env, plan, first)
	if err != nil {
		t.Fatal(err)
	}
	// The process "died" after the update landed: the retry finds the
	// checkpoint, sees the zone already switched and sends nothing.
	serial := dnsRRsetAt(t, l, "shop.test.", dns.TypeSOA)
	retry := &dnsTestReporter{resume: first.checkpoints[0]}
	got, err := act.Do(ctx, env, plan, retry)
	if err != nil {
		t.Fatal(err)
	}
	if len(retry.checkpoints) != 0 || !strings.Contains(strings.Join(retry.logs, "\n"), "already applied") {
		t.Fatalf("retry resent: %v", retry.logs)
	}
	if a, b := got.(dnsq.Receipt), receipt.(dnsq.Receipt); !a.New[0].Equal(b.New[0]) {
		t.Fatalf("receipts differ: %+v %+v", a, b)
	}
	if now := dnsRRsetAt(t, l, "shop.test.", dns.TypeSOA); !now.Equal(serial) {
		t.Fatal("the retry changed the zone")
	}
}

func TestDNSParams(t *testing.T) {
	k, _ := steps.Lookup("dns.set_ttl")
	if k.Check || k.Doc == "" {
		t.Fatalf("kind %+v", k)
	}
	if _, ok := steps.Lookup("dns.switch"); !ok {
		t.Fatal("dns.switch not registered")
	}
	env := &steps.Env{DNS: steps.DNSConfig{Zone: "shop.test.", TSIGKey: ""}, Secrets: secret.NewSet()}
	_, err := (&actions.DNSSetTTL{}).Plan(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "docs/dns-shell.md") {
		t.Fatalf("missing key: %v", err)
	}
}
