package actions

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/internal/webprobe"
)

func init() {
	steps.Register(steps.Kind{
		Name: "http.smoke",
		Doc:  "after deploy, before the DNS switch: fetch URLs from the NEW host with the real Host header and SNI, compare status, redirect and body hash with the old host, show a diff summary",
		New: func(n ast.Node) (any, error) {
			a := &HTTPSmoke{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if err := a.Validate(); err != nil {
				return nil, err
			}
			return a, nil
		},
	})
}

// HTTPSmoke is the smoke test gate before the DNS switch: it changes
// nothing, and fails when the new host answers differently.
type HTTPSmoke struct {
	hostparity.HTTPParams `yaml:",inline"`
}

// HTTPSmokeReceipt keeps the comparison for the transcript.
type HTTPSmokeReceipt struct {
	Passed  int                `json:"passed"`
	Warned  int                `json:"warned"`
	Failed  int                `json:"failed"`
	Results []webprobe.Verdict `json:"results"`
}

// Plan lists the URLs and the two servers; fetching is left to Do.
func (a *HTTPSmoke) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	p, err := a.Resolved(env)
	if err != nil {
		return nil, err
	}
	plan := &steps.Plan{Summary: fmt.Sprintf("fetch %d URLs from the new server (%s) and the old one (%s), compare", len(p.URLs), p.New, p.Old)}
	for _, u := range p.URLs {
		plan.Commands = append(plan.Commands, fmt.Sprintf("GET %s via %s (old: %s)", u, p.New.AddrFor(u), p.Old.AddrFor(u)))
	}
	plan.Total, plan.Unit = int64(len(p.URLs)), "URLs"
	return plan, nil
}

// Do fetches, logs a diff summary, and fails if any URL failed.
func (a *HTTPSmoke) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	p, err := a.Resolved(env)
	if err != nil {
		return nil, err
	}
	vs, err := p.Compare(ctx, env)
	if err != nil {
		return nil, err
	}
	rc := HTTPSmokeReceipt{Results: vs}
	for _, v := range vs {
		switch v.Level {
		case "pass":
			rc.Passed++
		case "warn":
			rc.Warned++
		default:
			rc.Failed++
		}
		r.Logf("%-4s %s", httpSmokeLabel(v.Level), hostparity.VerdictLine(v))
		for _, d := range v.Diffs {
			r.Logf("       %-8s old: %-40s new: %s", d.Field, d.Old, d.New)
		}
	}
	r.Progress(int64(len(vs)), int64(len(vs)), "URLs")
	r.Logf("smoke test: %d same, %d differ in body only, %d failed (of %d URLs)", rc.Passed, rc.Warned, rc.Failed, len(vs))
	if rc.Failed > 0 {
		return rc, fmt.Errorf("%d of %d URLs answer differently or with an error on the new host: do not switch DNS yet", rc.Failed, len(vs))
	}
	return rc, nil
}

func httpSmokeLabel(s string) string {
	switch s {
	case "pass":
		return "SAME"
	case "warn":
		return "BODY"
	}
	return "FAIL"
}

// Undo has nothing to revert: the smoke test only reads.
func (a *HTTPSmoke) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	r.Logf("the smoke test changed nothing: nothing to undo")
	return nil
}
