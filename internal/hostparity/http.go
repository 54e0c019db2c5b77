package hostparity

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/internal/webprobe"
)

// HTTPParams are the parameters http.parity and http.smoke share.
type HTTPParams struct {
	// URLs to fetch; default https://DOMAIN/ for each settings.domains.
	URLs []string `yaml:"urls"`
	// Old and New say where the two servers answer: an address (ports 80
	// and 443) or {http: host:port, https: host:port}. Defaults: the first
	// dns.old_address and dns.new_address.
	Old webprobe.Endpoint `yaml:"old"`
	New webprobe.Endpoint `yaml:"new"`
	// CAFile adds trust roots (a private or lab CA).
	CAFile string `yaml:"ca_file"`
	// Via fetches from this runbook host, through its SSH link.
	Via string `yaml:"via"`
	// StrictBody fails (instead of warning) when only the body differs.
	StrictBody bool `yaml:"strict_body"`
	// Timeout per request; default 15s.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate checks the URLs.
func (p *HTTPParams) Validate() error {
	for _, u := range p.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return steps.BadParam("urls", "%q is not an http:// or https:// URL", u)
		}
	}
	return nil
}

// Resolved fills defaults from the runbook and reports what is missing.
func (p HTTPParams) Resolved(env *steps.Env) (HTTPParams, error) {
	if len(p.URLs) == 0 {
		for _, d := range env.Settings.Domains {
			p.URLs = append(p.URLs, "https://"+strings.TrimSuffix(d, ".")+"/")
		}
	}
	if len(p.URLs) == 0 {
		return p, errors.New("no URLs to fetch: list them under urls: or settings.domains")
	}
	if p.Old.IsZero() && len(env.DNS.OldAddress) > 0 {
		p.Old = webprobe.EndpointAt(env.DNS.OldAddress[0])
	}
	if p.New.IsZero() && len(env.DNS.NewAddress) > 0 {
		p.New = webprobe.EndpointAt(env.DNS.NewAddress[0])
	}
	if p.New.IsZero() {
		return p, errors.New("no address for the new server: set new: or dns.new_address")
	}
	if p.Old.IsZero() {
		return p, errors.New("no address for the old server: set old: or dns.old_address")
	}
	return p, nil
}

// Compare fetches every URL from both servers (four URLs at a time) and
// returns one verdict per URL, in the order of the URLs.
func (p HTTPParams) Compare(ctx context.Context, env *steps.Env) ([]webprobe.Verdict, error) {
	roots, err := webprobe.Roots(p.CAFile)
	if err != nil {
		return nil, err
	}
	base := webprobe.Request{Roots: roots, Timeout: p.Timeout}
	if p.Via != "" {
		h, err := env.Host(ctx, p.Via)
		if err != nil {
			return nil, fmt.Errorf("fetch via %s: %w", p.Via, err)
		}
		base.Dial = h.DialContext
	}
	out := make([]webprobe.Verdict, len(p.URLs))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, u := range p.URLs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = webprobe.Pair(ctx, u, p.Old, p.New, base, p.StrictBody)
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}

// VerdictLine describes a verdict in one line for logs and findings.
func VerdictLine(v webprobe.Verdict) string {
	s := fmt.Sprintf("%s: %s", v.URL, v.Why)
	if v.Level != "pass" && v.New.Err == "" {
		s += fmt.Sprintf(" [old %s, new %s]", answer(v.Old), answer(v.New))
	}
	return s
}

func answer(r webprobe.Result) string {
	if r.Err != "" {
		return "no answer"
	}
	s := fmt.Sprint(r.Status)
	if r.Location != "" {
		s += " → " + r.Location
	}
	if r.BodyHash != "" {
		s += " body " + r.BodyHash
	}
	return s
}

// CurlConnectTo is curl's --connect-to argument sending rawURL's requests
// to addr (host:port), for a Fix the operator can paste.
func CurlConnectTo(rawURL, addr string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return addr
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Hostname() + ":" + port + ":" + addr
}
