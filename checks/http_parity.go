package checks

import (
	"context"
	"fmt"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "http.parity",
		Check: true,
		Doc:   "fetch URLs from the old and the new server with the same Host header: status, redirect, <title> and body hash compared; 4xx/5xx on the new side fails",
		New: func(n ast.Node) (any, error) {
			c := &HTTPParity{}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if err := c.Validate(); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// HTTPParity compares the old and new servers' answers for a list of URLs,
// dialing each server's address directly (never DNS) with the URL's host as
// Host header and SNI.
type HTTPParity struct {
	hostparity.HTTPParams `yaml:",inline"`
}

// Run fetches and compares.
func (c *HTTPParity) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	p, err := c.Resolved(env)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Message: err.Error()}}, nil
	}
	vs, err := p.Compare(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []steps.Finding
	for _, v := range vs {
		f := steps.Finding{Status: steps.Status(v.Level), Subject: v.URL, Message: hostparity.VerdictLine(v)}
		if v.Level == "fail" {
			f.Fix = fmt.Sprintf("compare by hand: curl -sk -o /dev/null -w '%%{http_code} %%{redirect_url}\\n' --connect-to %s %s   (old: --connect-to %s); then sync the files (files.sync) or the web server config",
				hostparity.CurlConnectTo(v.URL, p.New.AddrFor(v.URL)), v.URL, hostparity.CurlConnectTo(v.URL, p.Old.AddrFor(v.URL)))
		}
		out = append(out, f)
	}
	return out, nil
}
