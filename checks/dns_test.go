package checks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/checks"
	"github.com/decant-sh/decant/internal/dnslab"
	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
)

func dnsStartLab(t *testing.T, o dnslab.Options) *dnslab.Lab {
	t.Helper()
	o.Dir = t.TempDir()
	o.Zone = "shop.test."
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := dnslab.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

func dnsEnv(l *dnslab.Lab) *steps.Env {
	return &steps.Env{
		DNS: steps.DNSConfig{
			Zone: "shop.test.", Primary: l.Primary, Authoritative: l.Authoritative(), TSIGKey: l.KeyFile,
			TTL: 300, Resolvers: l.Resolvers, ResolversMode: "replace", Timeout: time.Second,
		},
		Secrets: secret.NewSet(),
	}
}

// dnsFind returns the findings about subject whose message contains text.
func dnsFind(fs []steps.Finding, subject, text string) *steps.Finding {
	for i := range fs {
		if (subject == "" || fs[i].Subject == subject) && strings.Contains(fs[i].Message, text) {
			return &fs[i]
		}
	}
	return nil
}

func dnsMust(t *testing.T, fs []steps.Finding, st steps.Status, subject, text string) *steps.Finding {
	t.Helper()
	f := dnsFind(fs, subject, text)
	if f == nil || f.Status != st {
		var all []string
		for _, f := range fs {
			all = append(all, fmt.Sprintf("  %s [%s] %s", f.Status, f.Subject, f.Message))
		}
		t.Fatalf("no %s finding on %q containing %q; have:\n%s", st, subject, text, strings.Join(all, "\n"))
	}
	return f
}

func dnsRunCheck(t *testing.T, kind string, env *steps.Env) []steps.Finding {
	t.Helper()
	k, ok := steps.Lookup(kind)
	if !ok || !k.Check {
		t.Fatalf("%s is not a registered check", kind)
	}
	impl, err := k.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := impl.(steps.Check).Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDNSTTLCheck(t *testing.T) {
	l := dnsStartLab(t, dnslab.Options{Secondary: true, Records: []string{"@ 3600 IN A 192.0.2.10", "www 3600 IN CNAME @"}})
	env := dnsEnv(l)

	fs := dnsRunCheck(t, "dns.ttl", env)
	dnsMust(t, fs, steps.Pass, "shop.test.", "2 authoritative server(s) answer, all at SOA serial")
	f := dnsMust(t, fs, steps.Warn, "shop.test.", "TTL 3600 s is above the target 300 s")
	if f.FixAction != "dns.set_ttl" {
		t.Fatalf("fix action %q", f.FixAction)
	}
	dnsMust(t, fs, steps.Pass, "www.shop.test.", "CNAME to the apex shop.test.")
	dnsMust(t, fs, steps.Warn, "switch time", "no TTL lowering in the journal")

	// The secondary lags: the servers disagree.
	l.PauseSync(true)
	if err := l.Set("@ 300 IN A 192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	fs = dnsRunCheck(t, "dns.ttl", env)
	dnsMust(t, fs, steps.Warn, "shop.test.", "different SOA serials")
	dnsMust(t, fs, steps.Warn, "shop.test.", "authoritative servers disagree")
	l.PauseSync(false)

	// www with its own A record: two records to switch.
	if err := l.Delete("www", dns.TypeCNAME); err != nil {
		t.Fatal(err)
	}
	if err := l.Set("www 300 IN A 192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	fs = dnsRunCheck(t, "dns.ttl", env)
	dnsMust(t, fs, steps.Pass, "www.shop.test.", "two records to switch")
	dnsMust(t, fs, steps.Pass, "shop.test.", "A 192.0.2.10 (TTL 300)")

	// The journal says the TTL was lowered from 3600 s at t0.
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	raw, _ := json.Marshal(dnsq.Receipt{Zone: "shop.test.", Time: t0,
		Previous: []dnsq.RRset{{Name: "shop.test.", Type: "A", TTL: 3600, Values: []string{"192.0.2.10"}}},
		New:      []dnsq.RRset{{Name: "shop.test.", Type: "A", TTL: 300, Values: []string{"192.0.2.10"}}}})
	env.History = []steps.Record{{StepID: "lower-ttl", Kind: "dns.set_ttl", Time: t0, Receipt: raw}}
	env.Now = func() time.Time { return t0.Add(10 * time.Minute) }
	fs = dnsRunCheck(t, "dns.ttl", env)
	f = dnsMust(t, fs, steps.Warn, "switch time", "runs out at")
	if !strings.Contains(f.Message, "in 50m0s") {
		t.Fatalf("switch time: %s", f.Message)
	}
	env.Now = func() time.Time { return t0.Add(61 * time.Minute) }
	dnsMust(t, dnsRunCheck(t, "dns.ttl", env), steps.Pass, "switch time", "safe to switch")

	// An authoritative server that does not answer is a failure, not a crash.
	env.DNS.Authoritative = append(env.DNS.Authoritative, dnsClosedPort(t))
	env.DNS.Timeout = 300 * time.Millisecond
	dnsMust(t, dnsRunCheck(t, "dns.ttl", env), steps.Fail, "", "does not answer properly: connection refused")
}

// dnsClosedPort is a loopback UDP port with nothing listening.
func dnsClosedPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// dnsRcodeServer is a real DNS server on loopback that answers every query
// with rcode, as a broken resolver would.
func dnsRcodeServer(t *testing.T, rcode int) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			_ = w.WriteMsg(m)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestDNSPropagationResolverFailures(t *testing.T) {
	l := dnsStartLab(t, dnslab.Options{Resolvers: 1, Records: []string{"@ 30 IN A 192.0.2.10", "www 30 IN CNAME @"}})
	env := dnsEnv(l)
	env.DNS.Timeout = 300 * time.Millisecond
	// A socket that reads nothing: queries time out.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	closed := dnsClosedPort(t)
	servfail := dnsRcodeServer(t, dns.RcodeServerFailure)
	refused := dnsRcodeServer(t, dns.RcodeRefused)
	env.DNS.Resolvers = []string{l.Resolvers[0], closed, silent.LocalAddr().String(), servfail, refused}
	env.DNS.NewAddress = []string{"203.0.113.20"}
	env.DNS.OldAddress = []string{"192.0.2.10"}

	start := time.Now()
	rep, err := checks.Propagation(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("one report took %s: resolvers are not queried in parallel", took)
	}
	t.Log("\n" + rep.Table())
	want := map[string]string{
		closed:                      "connection refused",
		silent.LocalAddr().String(): "timeout",
		servfail:                    "SERVFAIL",
		refused:                     "REFUSED",
	}
	for _, row := range rep.Rows {
		if row.Resolver == l.Resolvers[0] {
			if row.State != checks.PropOld || row.Answer[0] != "192.0.2.10" {
				t.Fatalf("lab resolver row %+v", row)
			}
			continue
		}
		if row.State != checks.PropError || !strings.Contains(row.Error, want[row.Resolver]) {
			t.Fatalf("row %+v: want error %q", row, want[row.Resolver])
		}
	}
	if rep.AllAgree() {
		t.Fatal("AllAgree with failing resolvers")
	}
	fs := dnsRunCheck(t, "dns.propagation", env)
	for addr, reason := range want {
		dnsMust(t, fs, steps.Warn, addr+" (runbook)", reason)
	}
	// Not switched (no dns.switch in the journal): the old answer is expected.
	dnsMust(t, fs, steps.Pass, "shop.test. A", "not switched yet")
}

// TestDNSDoneWhen is the acceptance test: on the lab, lower the TTL,
// switch, watch resolvers with different cache states lag and catch up at
// the predicted time, then undo both and find the zone as it was.
func TestDNSDoneWhen(t *testing.T) {
	l := dnsStartLab(t, dnslab.Options{Resolvers: 3, Secondary: true,
		Records: []string{"@ 60 IN A 192.0.2.10", "www 60 IN CNAME @", "@ 60 IN MX 10 mail", "mail 60 IN A 192.0.2.25"}})
	ctx := context.Background()
	env := dnsEnv(l)
	env.DNS.TTL = 8
	env.DNS.OldAddress = []string{"192.0.2.10"}
	env.DNS.NewAddress = []string{"203.0.113.20"}
	zone0, secondary0 := l.Zone(), l.SecondaryZone()
	resA, resB, resC := l.Resolvers[0], l.Resolvers[1], l.Resolvers[2]

	dnsMust(t, dnsRunCheck(t, "dns.ttl", env), steps.Warn, "shop.test.", "TTL 60 s is above the target 8 s")

	// Lower the TTL.
	setTTL := &actions.DNSSetTTL{}
	ttlReceipt := dnsDo(t, env, setTTL)
	raw, _ := json.Marshal(ttlReceipt)
	env.History = append(env.History, steps.Record{StepID: "lower-ttl", Kind: "dns.set_ttl", Time: time.Now(), Receipt: raw})
	fs := dnsRunCheck(t, "dns.ttl", env)
	dnsMust(t, fs, steps.Pass, "shop.test.", "A 192.0.2.10 (TTL 8)")
	dnsMust(t, fs, steps.Warn, "switch time", "the old TTL (60 s) runs out")
	env.Now = func() time.Time { return time.Now().Add(61 * time.Second) }
	dnsMust(t, dnsRunCheck(t, "dns.ttl", env), steps.Pass, "switch time", "safe to switch")
	env.Now = nil

	// Warm the caches differently: A now, B never, C about 3 s later.
	cl := &dnsq.Client{Timeout: time.Second}
	dnsWarm(t, cl, resA)
	deadline := time.Now().Add(10 * time.Second)
	for dnsTTLAt(t, cl, resA) > 5 {
		if time.Now().After(deadline) {
			t.Fatal("resolver A's TTL does not count down")
		}
		dnsPause(100 * time.Millisecond)
	}
	dnsWarm(t, cl, resC)

	// Switch.
	sw := &actions.DNSSwitch{}
	sw.UseDNS(env.DNS)
	if sw.ConfirmText() != "shop.test" {
		t.Fatalf("ConfirmText %q", sw.ConfirmText())
	}
	swReceipt := dnsDo(t, env, sw)
	raw, _ = json.Marshal(swReceipt)
	env.History = append(env.History, steps.Record{StepID: "switch-dns", Kind: "dns.switch", Time: time.Now(), Receipt: raw})
	for _, srv := range l.Authoritative() {
		nr, err := cl.ReadName(ctx, srv, "shop.test.")
		if err != nil || nr.A.Values[0] != "203.0.113.20" || nr.A.TTL != 8 {
			t.Fatalf("%s after switch: %+v %v", srv, nr, err)
		}
	}

	rep, err := checks.Propagation(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Table())
	expiry := map[string]time.Time{}
	for _, row := range rep.Rows {
		switch row.Resolver {
		case resB:
			if row.State != checks.PropNew {
				t.Fatalf("cold resolver B should show the new address: %+v", row)
			}
		case resA, resC:
			if row.State != checks.PropOld || row.Answer[0] != "192.0.2.10" || row.TTL == 0 {
				t.Fatalf("warm resolver should lag with the old address: %+v", row)
			}
			if e, ok := expiry[row.Resolver]; !ok || row.Expires.After(e) {
				expiry[row.Resolver] = row.Expires
			}
		}
	}
	if !expiry[resA].Before(expiry[resC]) {
		t.Fatalf("A was warmed first and should expire first: A %s, C %s", expiry[resA], expiry[resC])
	}
	if !rep.LastExpiry().Equal(expiry[resC]) || rep.AllAgree() {
		t.Fatalf("ETA %s, want C's expiry %s", rep.LastExpiry(), expiry[resC])
	}
	lagging := dnsMust(t, rep.Findings(), steps.Warn, "shop.test. A", "2 of 3 resolvers still serve a stale answer")
	t.Log(lagging.Message)

	// Watch, as --watch does, until all agree; note when each lagging
	// resolver flips and compare with the predicted expiry.
	flipped := map[string]time.Time{}
	deadline = time.Now().Add(20 * time.Second)
	for {
		rep, err := checks.Propagation(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range []string{resA, resC} {
			if _, done := flipped[res]; done {
				continue
			}
			all := true
			for _, row := range rep.Rows {
				all = all && (row.Resolver != res || row.State == checks.PropNew)
			}
			if all {
				flipped[res] = rep.Time
			}
		}
		if rep.AllAgree() {
			dnsMust(t, rep.Findings(), steps.Pass, "shop.test. A", "all 3 resolvers show the new address 203.0.113.20")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolvers never agreed:\n%s", rep.Table())
		}
		dnsPause(200 * time.Millisecond)
	}
	for _, res := range []string{resA, resC} {
		d := flipped[res].Sub(expiry[res])
		t.Logf("%s: predicted expiry %s, flipped %s (%+v)", res, expiry[res].Format("15:04:05.000"), flipped[res].Format("15:04:05.000"), d)
		if d < -2*time.Second || d > 2*time.Second {
			t.Fatalf("%s flipped %v away from the predicted expiry", res, d)
		}
	}

	// Undo both, newest first: the zone is exactly as before.
	r := &dnsRecorder{}
	raw, _ = json.Marshal(swReceipt)
	if err := sw.Undo(ctx, env, raw, r); err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(ttlReceipt)
	if err := setTTL.Undo(ctx, env, raw, r); err != nil {
		t.Fatal(err)
	}
	dnsSameZone(t, zone0, l.Zone())
	dnsSameZone(t, secondary0, l.SecondaryZone())
}

func dnsDo(t *testing.T, env *steps.Env, a steps.Action) any {
	t.Helper()
	ctx := context.Background()
	plan, err := a.Plan(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Noop {
		t.Fatalf("unexpected no-op plan: %s", plan.Summary)
	}
	t.Logf("plan: %s\n%s", plan.Summary, strings.Join(plan.Commands, "\n"))
	r := &dnsRecorder{}
	receipt, err := a.Do(ctx, env, plan, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.checkpoints) != 1 {
		t.Fatalf("Do checkpointed %d times", len(r.checkpoints))
	}
	return receipt
}

func dnsWarm(t *testing.T, cl *dnsq.Client, resolver string) {
	t.Helper()
	for _, n := range []string{"shop.test.", "www.shop.test."} {
		ans, err := cl.Lookup(context.Background(), resolver, n, dns.TypeA, true)
		if err != nil || len(ans.Values()) == 0 || ans.Values()[0] != "192.0.2.10" {
			t.Fatalf("warm %s %s: %+v %v", resolver, n, ans, err)
		}
	}
}

func dnsTTLAt(t *testing.T, cl *dnsq.Client, resolver string) uint32 {
	t.Helper()
	ans, err := cl.Lookup(context.Background(), resolver, "shop.test.", dns.TypeA, true)
	if err != nil {
		t.Fatal(err)
	}
	return ans.TTL()
}

// dnsPause spaces polls; every wait in these tests polls a condition with a
// deadline, this only sets the polling rate.
func dnsPause(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	<-tm.C
}

func dnsSameZone(t *testing.T, before, after []dns.RR) {
	t.Helper()
	norm := func(rrs []dns.RR) string {
		var out []string
		for _, rr := range rrs {
			rr = dns.Copy(rr)
			if soa, ok := rr.(*dns.SOA); ok {
				soa.Serial = 0 // every accepted update bumps it, by design
			}
			out = append(out, rr.String())
		}
		return strings.Join(out, "\n")
	}
	if b, a := norm(before), norm(after); b != a {
		t.Fatalf("zone differs:\nbefore:\n%s\nafter:\n%s", b, a)
	}
}

type dnsRecorder struct {
	mu          sync.Mutex
	logs        []string
	checkpoints []json.RawMessage
}

func (r *dnsRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *dnsRecorder) Progress(done, total int64, unit string) {}
func (r *dnsRecorder) Checkpoint(v any) error {
	b, err := json.Marshal(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, b)
	return err
}
func (r *dnsRecorder) Resume(v any) bool { return false }
