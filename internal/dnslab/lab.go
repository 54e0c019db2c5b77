// Package dnslab is a disposable DNS world on loopback for tests and the
// demo: an authoritative primary (miekg/dns) that accepts TSIG-signed RFC 2136
// updates, an optional secondary kept in sync by the lab, and real unbound
// resolvers caching in front of them, so propagation lag is real.
package dnslab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/decant-sh/decant/internal/dnsq"
	"github.com/miekg/dns"
)

// Options configure a lab.
type Options struct {
	// Dir holds the key file and each resolver's config and log (required).
	Dir string
	// Zone is the test zone's apex, e.g. "shop.test.".
	Zone string
	// Records are zone-file lines, relative to Zone ("@ 60 IN A 192.0.2.10").
	// A SOA and two NS records are added when missing.
	Records []string
	// Resolvers is how many unbound processes to start (0: none).
	Resolvers int
	// Secondary starts a second authoritative server holding a copy of the
	// zone, refreshed by the lab after every change on the primary.
	Secondary bool
	// KeyName and Algorithm name the TSIG key (default "decant-lab." and
	// hmac-sha256).
	KeyName, Algorithm string
	// Unbound is the unbound binary (default DefaultUnbound).
	Unbound string
}

// Lab is a running DNS lab. Stop it when done.
type Lab struct {
	// Origin is the zone apex, canonical.
	Origin string
	// Primary and Secondary are the authoritative servers (host:port);
	// Secondary is "" unless asked for.
	Primary, Secondary string
	// KeyFile is the TSIG key in BIND syntax, mode 0600; Key is its content.
	KeyFile string
	Key     *dnsq.Key
	// Resolvers are the unbound addresses (host:port), in start order.
	Resolvers []string

	primary, secondary *authServer
	resolvers          []*resolver

	syncMu sync.Mutex
	paused bool
}

// Start builds the zone, starts the servers and the resolvers, and writes
// the key file. On error everything started so far is stopped.
func Start(ctx context.Context, o Options) (l *Lab, err error) {
	if o.Dir == "" {
		return nil, errors.New("dnslab: Options.Dir is required")
	}
	if o.Zone == "" {
		o.Zone = "shop.test."
	}
	origin := dns.CanonicalName(o.Zone)
	rrs, err := parseRecords(origin, o.Records)
	if err != nil {
		return nil, err
	}
	key, err := newKey(o.KeyName, o.Algorithm)
	if err != nil {
		return nil, err
	}
	l = &Lab{Origin: origin, Key: key, KeyFile: filepath.Join(o.Dir, "tsig.key")}
	defer func() {
		if err != nil {
			l.Stop()
			l = nil
		}
	}()
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := dnsq.WriteKeyFile(l.KeyFile, key); err != nil {
		return nil, fmt.Errorf("dnslab: key file: %w", err)
	}
	secrets := map[string]string{key.Name: key.Secret}
	pz := newMemZone(origin, rrs)
	if l.primary, err = startAuth(pz, secrets, true, l.changed); err != nil {
		return nil, err
	}
	l.Primary = l.primary.addr
	stubs := []string{l.Primary}
	if o.Secondary {
		// The secondary refuses updates, like a real one without
		// update-forwarding; the lab copies the zone to it.
		if l.secondary, err = startAuth(newMemZone(origin, rrs), secrets, false, nil); err != nil {
			return nil, err
		}
		l.Secondary = l.secondary.addr
	}
	bin := o.Unbound
	if bin == "" {
		bin = DefaultUnbound
	}
	for i := 0; i < o.Resolvers; i++ {
		// Only the primary is a stub address: with both, unbound would pick
		// one at random and a test pausing the secondary's sync would flap.
		r, err := startUnbound(ctx, bin, filepath.Join(o.Dir, fmt.Sprintf("unbound%d", i)), origin, stubs)
		if err != nil {
			return nil, err
		}
		l.resolvers = append(l.resolvers, r)
		l.Resolvers = append(l.Resolvers, r.addr)
	}
	return l, nil
}

// Stop stops the resolvers (by PID) and the servers.
func (l *Lab) Stop() {
	if l == nil {
		return
	}
	var wg sync.WaitGroup
	for _, r := range l.resolvers {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop() }()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.primary.stop(ctx)
	l.secondary.stop(ctx)
}

// Authoritative lists the authoritative servers, primary first.
func (l *Lab) Authoritative() []string {
	if l.Secondary == "" {
		return []string{l.Primary}
	}
	return []string{l.Primary, l.Secondary}
}

// ResolverPIDs are the unbound processes' PIDs, in Resolvers order.
func (l *Lab) ResolverPIDs() []int {
	out := make([]int, 0, len(l.resolvers))
	for _, r := range l.resolvers {
		out = append(out, r.cmd.Process.Pid)
	}
	return out
}

// Zone is a sorted deep copy of the primary's records, for comparing the
// zone record by record before and after a run.
func (l *Lab) Zone() []dns.RR { return l.primary.zone.snapshot() }

// SecondaryZone is the secondary's copy (nil without a secondary).
func (l *Lab) SecondaryZone() []dns.RR {
	if l.secondary == nil {
		return nil
	}
	return l.secondary.zone.snapshot()
}

// Set replaces RRsets on the primary behind decant's back, as another admin
// or a provider's web panel would: every RRset named by lines (zone-file
// syntax, relative to the zone) is replaced by those lines. The serial is
// bumped.
func (l *Lab) Set(lines ...string) error {
	rrs, err := parseRecords(l.Origin, lines)
	if err != nil {
		return err
	}
	var upd []dns.RR
	seen := map[rrKey]bool{}
	for _, rr := range rrs {
		h := rr.Header()
		if k := (rrKey{dns.CanonicalName(h.Name), h.Rrtype}); !seen[k] {
			seen[k] = true
			upd = append(upd, &dns.ANY{Hdr: dns.RR_Header{Name: k.name, Rrtype: k.rtype, Class: dns.ClassANY}})
		}
	}
	upd = append(upd, rrs...)
	return l.apply(upd)
}

// Delete removes name's RRset of type rtype on the primary behind decant's back.
func (l *Lab) Delete(name string, rtype uint16) error {
	return l.apply([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: l.abs(name), Rrtype: rtype, Class: dns.ClassANY}}})
}

func (l *Lab) apply(upd []dns.RR) error {
	rc, changed := l.primary.zone.update(nil, upd)
	if rc != dns.RcodeSuccess {
		return fmt.Errorf("dnslab: change refused: %s", dns.RcodeToString[rc])
	}
	if changed {
		l.changed()
	}
	return nil
}

// PauseSync stops (true) or resumes (false) copying the primary's changes to
// the secondary, so tests can make the authoritative servers disagree.
// Resuming copies at once.
func (l *Lab) PauseSync(pause bool) {
	l.syncMu.Lock()
	l.paused = pause
	l.syncMu.Unlock()
	if !pause {
		l.changed()
	}
}

// changed copies the primary's zone to the secondary unless paused.
func (l *Lab) changed() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.paused || l.secondary == nil {
		return
	}
	l.secondary.zone.load(l.primary.zone.snapshot())
}

func (l *Lab) abs(name string) string {
	if name == "" || name == "@" {
		return l.Origin
	}
	if dns.IsFqdn(name) {
		return dns.CanonicalName(name)
	}
	return dns.CanonicalName(name + "." + l.Origin)
}

// parseRecords reads zone-file lines and adds a SOA and NS records when the
// caller gave none, so a lab zone is always a valid zone.
func parseRecords(origin string, lines []string) ([]dns.RR, error) {
	rrs, err := parseLines(origin, lines)
	if err != nil {
		return nil, err
	}
	hasSOA, hasNS := false, false
	for _, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			hasSOA = true
		case dns.TypeNS:
			hasNS = hasNS || rr.Header().Name == origin
		}
	}
	var extra []string
	if !hasSOA {
		// MINIMUM 5: negative answers are cached briefly in tests.
		extra = append(extra, "@ 60 IN SOA ns1 hostmaster 2024010101 60 30 600 5")
	}
	if !hasNS {
		extra = append(extra, "@ 60 IN NS ns1", "@ 60 IN NS ns2", "ns1 60 IN A 127.0.0.1", "ns2 60 IN A 127.0.0.1")
	}
	more, err := parseLines(origin, extra)
	return append(rrs, more...), err
}

func parseLines(origin string, lines []string) ([]dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(strings.Join(lines, "\n")+"\n"), origin, "")
	zp.SetDefaultTTL(60)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, canon(rr))
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("dnslab: records: %w", err)
	}
	return rrs, nil
}

func newKey(name, alg string) (*dnsq.Key, error) {
	if name == "" {
		name = "decant-lab."
	}
	if alg == "" {
		alg = "hmac-sha256"
	}
	a, err := dnsq.Algorithm(alg)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	return &dnsq.Key{Name: dns.CanonicalName(name), Algorithm: a, Secret: base64.StdEncoding.EncodeToString(raw)}, nil
}
