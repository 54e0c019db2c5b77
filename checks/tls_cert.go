package checks

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/internal/webprobe"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "tls.cert",
		Check: true,
		Doc:   "for each domain, a TLS handshake with the NEW host's address and the domain as SNI: chain valid, names match, days to expiry",
		New: func(n ast.Node) (any, error) {
			c := &TLSCert{WarnDays: 21, FailDays: 7}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.FailDays < 0 || c.WarnDays < c.FailDays {
				return nil, steps.BadParam("warn_days", "must be at least fail_days (%d)", c.FailDays)
			}
			return c, nil
		},
	})
}

// TLSCert checks the certificate the new host serves for each domain,
// before DNS points anyone at it.
type TLSCert struct {
	// Domains default to settings.domains.
	Domains []string `yaml:"domains"`
	// Address is the new host's address ("203.0.113.7" for port 443, or
	// host:port); default the first dns.new_address.
	Address string `yaml:"address"`
	// CAFile adds trust roots (a private or lab CA) to the system ones.
	CAFile string `yaml:"ca_file"`
	// Via dials from this runbook host (through its SSH link) instead of
	// from here: for a new host whose firewall only lets the old one in.
	Via      string `yaml:"via"`
	WarnDays int    `yaml:"warn_days"`
	FailDays int    `yaml:"fail_days"`
}

// tlsAddress returns addr with port 443 unless it has one.
func tlsAddress(a string, port string) string {
	if a == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), port)
}

// Run does one handshake per domain.
func (c *TLSCert) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	domains := c.Domains
	if len(domains) == 0 {
		domains = env.Settings.Domains
	}
	if len(domains) == 0 {
		return []steps.Finding{{Status: steps.Fail, Message: "no domains to check: list them under settings.domains or this step's domains:"}}, nil
	}
	addr := c.Address
	if addr == "" && len(env.DNS.NewAddress) > 0 {
		addr = env.DNS.NewAddress[0]
	}
	addr = tlsAddress(addr, "443")
	if addr == "" {
		return []steps.Finding{{Status: steps.Fail, Message: "no address for the new host: set this step's address: or dns.new_address"}}, nil
	}
	roots, err := webprobe.Roots(c.CAFile)
	if err != nil {
		return nil, err
	}
	var dial webprobe.DialFunc
	if c.Via != "" {
		h, err := env.Host(ctx, c.Via)
		if err != nil {
			return nil, err
		}
		dial = h.DialContext
	}
	now := env.Clock()
	var out []steps.Finding
	for _, d := range domains {
		d = strings.TrimSuffix(d, ".")
		cert, err := webprobe.Handshake(ctx, addr, d, roots, dial, now)
		if err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: d, Message: fmt.Sprintf("no TLS for %s at %s: %v", d, addr, err),
				Fix: fmt.Sprintf("configure an HTTPS virtual host for %s on the new host (e.g. certbot --nginx -d %s, or copy the certificate and key from the old host)", d, d)})
			continue
		}
		days := cert.DaysLeft(now)
		desc := fmt.Sprintf("certificate for %s issued by %s, expires %s", strings.Join(cert.Names, ", "), cert.Issuer, cert.NotAfter.UTC().Format("2006-01-02"))
		switch {
		case cert.NameErr != "":
			out = append(out, steps.Finding{Status: steps.Fail, Subject: d,
				Message: fmt.Sprintf("%s at %s serves a %s: it does not cover %s", d, addr, desc, d),
				Fix:     fmt.Sprintf("issue a certificate covering %s on the new host: certbot certonly --webroot -w <docroot> -d %s (before the DNS switch: use DNS-01 or copy the old host's certificate)", d, d)})
		case days < 0:
			out = append(out, steps.Finding{Status: steps.Fail, Subject: d,
				Message: fmt.Sprintf("%s at %s serves an expired %s", d, addr, desc),
				Fix:     "renew it: certbot renew --cert-name " + d + " (or copy the old host's current certificate)"})
		case cert.ChainErr != "":
			out = append(out, steps.Finding{Status: steps.Fail, Subject: d,
				Message: fmt.Sprintf("%s at %s: the chain does not verify (%s); %s", d, addr, cert.ChainErr, desc),
				Fix:     "serve the full chain (fullchain.pem, not cert.pem: ssl_certificate / SSLCertificateFile) from a CA browsers trust"})
		case days < c.FailDays:
			out = append(out, steps.Finding{Status: steps.Fail, Subject: d,
				Message: fmt.Sprintf("%s at %s: only %d days left on the %s", d, addr, days, desc),
				Fix:     "renew it now: certbot renew --cert-name " + d})
		case days < c.WarnDays:
			out = append(out, steps.Finding{Status: steps.Warn, Subject: d,
				Message: fmt.Sprintf("%s at %s: %d days left on the %s; make sure renewal runs on the new host", d, addr, days, desc),
				Fix:     "certbot renew --dry-run   # on the new host"})
		default:
			out = append(out, steps.Finding{Status: steps.Pass, Subject: d,
				Message: fmt.Sprintf("%s at %s: chain valid, name matches, %d days left (%s)", d, addr, days, desc)})
		}
	}
	return out, nil
}
