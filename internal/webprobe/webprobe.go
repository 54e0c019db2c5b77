// Package webprobe fetches a URL from one chosen server — dialing a given
// address instead of resolving the URL's host, with the real Host header
// and SNI — and describes the answer (status, redirect, title, body hash)
// so an old and a new server can be compared before DNS moves. It also
// inspects a server's TLS certificate for a domain.
package webprobe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// DialFunc opens a TCP connection (net.Dialer.DialContext, or a host's
// DialContext to connect from that host through SSH).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Request says what to fetch and from which server.
type Request struct {
	URL string
	// Addr is the host:port to connect to instead of the URL's host.
	Addr string
	// Dial connects; default a net.Dialer.
	Dial DialFunc
	// Roots verifies HTTPS servers; nil means the system roots.
	Roots *x509.CertPool
	// Timeout bounds the whole request; default 15s.
	Timeout time.Duration
	// MaxBody is how much of the body is hashed; default 16 MiB.
	MaxBody int64
}

// Result describes one answer. Err is set when there was no HTTP answer
// (connection refused, TLS failure, timeout).
type Result struct {
	URL      string `json:"url"`
	Addr     string `json:"addr"`
	Status   int    `json:"status,omitempty"`
	Location string `json:"location,omitempty"` // absolute redirect target
	Title    string `json:"title,omitempty"`
	BodyHash string `json:"body_hash,omitempty"` // sha256, 12 hex digits
	Size     int64  `json:"size,omitempty"`
	Err      string `json:"error,omitempty"`
}

// Fetch performs one GET without following redirects.
func Fetch(ctx context.Context, rq Request) Result {
	res := Result{URL: rq.URL, Addr: rq.Addr}
	u, err := url.Parse(rq.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		res.Err = fmt.Sprintf("bad URL %q", rq.URL)
		return res
	}
	if rq.Timeout == 0 {
		rq.Timeout = 15 * time.Second
	}
	if rq.MaxBody == 0 {
		rq.MaxBody = 16 << 20
	}
	dial := rq.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: rq.Timeout}).DialContext
	}
	addr := rq.Addr
	if addr == "" {
		addr = hostPort(u)
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{ServerName: u.Hostname(), RootCAs: rq.Roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: rq.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rq.URL, nil)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	req.Header.Set("User-Agent", "decant-smoke/1")
	resp, err := cl.Do(req)
	if err != nil {
		res.Err = shortErr(err)
		return res
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	if loc := resp.Header.Get("Location"); loc != "" {
		if l, err := u.Parse(loc); err == nil {
			res.Location = l.String()
		} else {
			res.Location = loc
		}
	}
	h := sha256.New()
	head := &capped{max: 64 << 10}
	n, err := io.Copy(io.MultiWriter(h, head), io.LimitReader(resp.Body, rq.MaxBody))
	res.Size = n
	if err != nil {
		res.Err = "read body: " + shortErr(err)
	}
	res.BodyHash = hex.EncodeToString(h.Sum(nil))[:12]
	if strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "html") || resp.Header.Get("Content-Type") == "" {
		res.Title = Title(head.b)
	}
	return res
}

type capped struct {
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		if len(p) > room {
			c.b = append(c.b, p[:room]...)
		} else {
			c.b = append(c.b, p...)
		}
	}
	return len(p), nil
}

var titleRe = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// Title returns the page's <title>, unescaped, with blanks collapsed.
func Title(body []byte) string {
	m := titleRe.FindSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// shortErr drops the "Get \"url\": " prefix net/http puts on errors.
func shortErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Cert is what a TLS handshake showed of a server's certificate.
type Cert struct {
	Addr       string    `json:"addr"`
	ServerName string    `json:"server_name"`
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	Names      []string  `json:"names"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	// ChainErr is why the chain does not verify against the roots ("" = ok).
	ChainErr string `json:"chain_error,omitempty"`
	// NameErr is why the certificate does not cover ServerName ("" = ok).
	NameErr string `json:"name_error,omitempty"`
}

// DaysLeft is the number of whole days until the certificate expires.
func (c *Cert) DaysLeft(now time.Time) int {
	return int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
}

// Handshake connects to addr with serverName as SNI and inspects the
// certificate chain the server sends, without trusting it: chain and name
// are verified separately so each problem is reported on its own.
func Handshake(ctx context.Context, addr, serverName string, roots *x509.CertPool, dial DialFunc, now time.Time) (*Cert, error) {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 15 * time.Second}).DialContext
	}
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	} else {
		_ = raw.SetDeadline(time.Now().Add(15 * time.Second))
	}
	conn := tls.Client(raw, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402 -- verified below, piece by piece
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake with %s (SNI %s): %w", addr, serverName, err)
	}
	chain := conn.ConnectionState().PeerCertificates
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s sent no certificate", addr)
	}
	leaf := chain[0]
	c := &Cert{Addr: addr, ServerName: serverName, Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(),
		Names: leaf.DNSNames, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	for _, ip := range leaf.IPAddresses {
		c.Names = append(c.Names, ip.String())
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
		c.ChainErr = err.Error()
	}
	if err := leaf.VerifyHostname(serverName); err != nil {
		c.NameErr = err.Error()
	}
	return c, nil
}

// Roots returns the system roots plus the PEM certificates in files.
func Roots(files ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range files {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", f)
		}
	}
	return pool, nil
}

// Endpoint is where one server answers, per scheme. In a runbook it is
// written as an address ("203.0.113.7": ports 80 and 443) or as a mapping
// ({http: "127.0.0.1:8080", https: "127.0.0.1:8443"}) for odd ports.
type Endpoint struct {
	HTTP  string `yaml:"http" json:"http,omitempty"`
	HTTPS string `yaml:"https" json:"https,omitempty"`
}

// UnmarshalYAML accepts the scalar and the mapping form.
func (e *Endpoint) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		*e = EndpointAt(s)
		return nil
	}
	type plain Endpoint
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*e = Endpoint(p)
	return nil
}

// EndpointAt is the endpoint of a server at address a (ports 80 and 443).
func EndpointAt(a string) Endpoint {
	a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	if a == "" {
		return Endpoint{}
	}
	return Endpoint{HTTP: net.JoinHostPort(a, "80"), HTTPS: net.JoinHostPort(a, "443")}
}

// IsZero reports an endpoint with no address at all.
func (e Endpoint) IsZero() bool { return e.HTTP == "" && e.HTTPS == "" }

// AddrFor returns the address serving rawURL's scheme ("" when unknown).
func (e Endpoint) AddrFor(rawURL string) string {
	if strings.HasPrefix(strings.ToLower(rawURL), "https:") {
		return e.HTTPS
	}
	return e.HTTP
}

// String shows the endpoint in plans and findings.
func (e Endpoint) String() string {
	switch {
	case e.HTTP != "" && e.HTTPS != "":
		return "http " + e.HTTP + ", https " + e.HTTPS
	case e.HTTPS != "":
		return "https " + e.HTTPS
	}
	return "http " + e.HTTP
}

// Diff is one way the new server's answer differs from the old one's.
type Diff struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

// Verdict compares the two answers for one URL.
type Verdict struct {
	URL   string `json:"url"`
	Old   Result `json:"old"`
	New   Result `json:"new"`
	Level string `json:"level"` // "pass", "warn" or "fail"
	// Why is a one-line explanation for the operator.
	Why   string `json:"why"`
	Diffs []Diff `json:"diffs,omitempty"`
}

// Compare judges the new answer against the old one: any error or 4xx/5xx
// on the new side fails, as does a different status, redirect target or
// title. A different body alone is a warning (pages carry timestamps and
// CSRF tokens) unless strictBody is set.
func Compare(old, nw Result, strictBody bool) Verdict {
	v := Verdict{URL: nw.URL, Old: old, New: nw, Level: "pass"}
	var fails, warns []string
	if nw.Err != "" {
		v.Level, v.Why = "fail", "the new server gave no answer: "+nw.Err
		return v
	}
	if old.Err != "" {
		warns = append(warns, "the old server gave no answer to compare with: "+old.Err)
		if nw.Status >= 400 {
			fails = append(fails, fmt.Sprintf("the new server answers %d", nw.Status))
		}
	} else {
		switch {
		case old.Status != nw.Status:
			v.Diffs = append(v.Diffs, Diff{"status", fmt.Sprint(old.Status), fmt.Sprint(nw.Status)})
			fails = append(fails, fmt.Sprintf("status %d on the old server, %d on the new one", old.Status, nw.Status))
		case nw.Status >= 400:
			fails = append(fails, fmt.Sprintf("the new server answers %d (the old one too)", nw.Status))
		}
		if old.Location != nw.Location {
			v.Diffs = append(v.Diffs, Diff{"redirect", old.Location, nw.Location})
			fails = append(fails, fmt.Sprintf("redirect differs: old → %q, new → %q", old.Location, nw.Location))
		}
		if old.Title != nw.Title {
			v.Diffs = append(v.Diffs, Diff{"title", old.Title, nw.Title})
			fails = append(fails, fmt.Sprintf("title differs: old %q, new %q", old.Title, nw.Title))
		}
		if old.BodyHash != nw.BodyHash {
			v.Diffs = append(v.Diffs, Diff{"body", fmt.Sprintf("sha256 %s (%d bytes)", old.BodyHash, old.Size), fmt.Sprintf("sha256 %s (%d bytes)", nw.BodyHash, nw.Size)})
			if strictBody {
				fails = append(fails, "the body differs")
			} else if len(fails) == 0 {
				warns = append(warns, "same status and title but the body differs (dynamic content?)")
			}
		}
	}
	switch {
	case len(fails) > 0:
		v.Level, v.Why = "fail", strings.Join(fails, "; ")
	case len(warns) > 0:
		v.Level, v.Why = "warn", strings.Join(warns, "; ")
	default:
		v.Why = fmt.Sprintf("same answer: %d", nw.Status)
		if nw.Location != "" {
			v.Why += " → " + nw.Location
		}
		if nw.Title != "" {
			v.Why += fmt.Sprintf(" %q", nw.Title)
		}
	}
	return v
}

// Pair fetches rawURL from both servers concurrently and compares.
func Pair(ctx context.Context, rawURL string, old, nw Endpoint, base Request, strictBody bool) Verdict {
	ro, rn := base, base
	ro.URL, rn.URL = rawURL, rawURL
	ro.Addr, rn.Addr = old.AddrFor(rawURL), nw.AddrFor(rawURL)
	var o Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		if ro.Addr == "" {
			o = Result{URL: rawURL, Err: "no old address for this scheme"}
			return
		}
		o = Fetch(ctx, ro)
	}()
	var n Result
	if rn.Addr == "" {
		n = Result{URL: rawURL, Err: "no new address for this scheme"}
	} else {
		n = Fetch(ctx, rn)
	}
	<-done
	return Compare(o, n, strictBody)
}
