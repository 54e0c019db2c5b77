package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/envfile"
	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "env.parity",
		Check: true,
		Doc:   "named .env files and environment variables: keys missing or different on the target (values shown as hashes, never in clear)",
		New: func(n ast.Node) (any, error) {
			c := &EnvParity{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if len(c.Files) == 0 && len(c.Vars) == 0 {
				return nil, steps.BadParam("files", "name env files (files:) or environment variables (vars:) to compare")
			}
			if len(c.Files) > 0 {
				if err := hostparity.CheckPairs("files", c.Files); err != nil {
					return nil, err
				}
			}
			return c, nil
		},
	})
}

// EnvParity compares env files and environment variables between two
// hosts key by key. Values are never shown: a keyed hash stands in for
// them (stable for the runbook, see envfile.Hasher).
type EnvParity struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Files are env files: a path (same on both hosts) or {from:, to:}.
	Files []hostparity.FilePair `yaml:"files"`
	// Vars are environment variable names looked up in a login shell's
	// environment on each host (sh -lc env: /etc/environment, profiles).
	Vars []string `yaml:"vars"`
	// MayDiffer are keys expected to differ on the new host (DB_HOST,
	// APP_URL of a staging copy): a difference is reported, not failed.
	MayDiffer []string `yaml:"may_differ"`
}

// Run reads both sides and compares.
func (c *EnvParity) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	src, err := env.Host(ctx, c.Source)
	if err != nil {
		return nil, err
	}
	dst, err := env.Host(ctx, c.Target)
	if err != nil {
		return nil, err
	}
	hash, err := envfile.NewHasher(env.StateDir)
	if err != nil {
		return nil, err
	}
	mayDiffer := map[string]bool{}
	for _, k := range c.MayDiffer {
		mayDiffer[k] = true
	}
	var out []steps.Finding
	for _, f := range c.Files {
		out = append(out, c.file(ctx, env, src, dst, hash, mayDiffer, f)...)
	}
	if len(c.Vars) > 0 {
		out = append(out, c.vars(ctx, src, dst, env, hash, mayDiffer)...)
	}
	return out, nil
}

func (c *EnvParity) file(ctx context.Context, env *steps.Env, src, dst hosts.Host, hash *envfile.Hasher, mayDiffer map[string]bool, f hostparity.FilePair) []steps.Finding {
	sp, dp := env.Path(c.Source, f.From), env.Path(c.Target, f.To)
	subject := f.To
	sf, serr := envParityRead(ctx, env, src, sp)
	if serr != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: subject, Message: fmt.Sprintf("cannot read %s on %s: %v", f.From, c.Source, serr),
			Fix: "check the path in the runbook (files:)"}}
	}
	df, derr := envParityRead(ctx, env, dst, dp)
	if errors.Is(derr, fs.ErrNotExist) {
		return []steps.Finding{{Status: steps.Fail, Subject: subject,
			Message:   fmt.Sprintf("%s is missing on %s (%d keys on %s)", f.To, c.Target, len(sf.Keys()), c.Source),
			Fix:       fmt.Sprintf("run the env.copy action for %s (keeps mode and owner, undoable)", f.From),
			FixAction: "env.copy"}}
	}
	if derr != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: subject, Message: fmt.Sprintf("cannot read %s on %s: %v", f.To, c.Target, derr)}}
	}
	d := envfile.Compare(sf, df)
	var bad, noted []string
	for _, k := range d.Missing {
		bad = append(bad, k+" missing")
	}
	for _, k := range d.Changed {
		sv, _ := sf.Get(k)
		dv, _ := df.Get(k)
		desc := fmt.Sprintf("%s differs (%s on %s, %s on %s)", k, hash.Sum(sv), c.Source, hash.Sum(dv), c.Target)
		if mayDiffer[k] {
			noted = append(noted, desc)
		} else {
			bad = append(bad, desc)
		}
	}
	var out []steps.Finding
	if len(bad) > 0 {
		out = append(out, steps.Finding{Status: steps.Fail, Subject: subject,
			Message: fmt.Sprintf("%s on %s: %d of %d keys missing or different: %s", f.To, c.Target, len(bad), len(sf.Keys()), hostparity.Limit(bad, 12)),
			Fix: fmt.Sprintf("copy the file with the env.copy action, or fix the keys by hand in %s (compare with `decant check` again); "+
				"list keys expected to differ under may_differ:", f.To),
			FixAction: "env.copy"})
	} else {
		msg := fmt.Sprintf("%s: all %d keys of %s present with the same values", f.To, len(sf.Keys()), c.Source)
		if len(noted) > 0 {
			msg += "; expected differences: " + hostparity.Limit(noted, 8)
		}
		out = append(out, steps.Finding{Status: steps.Pass, Subject: subject, Message: msg})
	}
	if len(d.Extra) > 0 {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: subject,
			Message: fmt.Sprintf("%s has keys the source lacks (left alone): %s", f.To, hostparity.Limit(d.Extra, 12))})
	}
	// Mode and owner matter: a world-readable .env leaks credentials, a
	// wrong owner stops PHP-FPM from reading it.
	ss, _ := src.Stat(ctx, sp)
	ds, _ := dst.Stat(ctx, dp)
	if ss.Exists && ds.Exists && (ss.Mode.Perm() != ds.Mode.Perm() || ss.UID != ds.UID || ss.GID != ds.GID) {
		out = append(out, steps.Finding{Status: steps.Warn, Subject: subject,
			Message: fmt.Sprintf("%s: mode/owner %04o %d:%d on %s but %04o %d:%d on %s", f.To, ss.Mode.Perm(), ss.UID, ss.GID, c.Source, ds.Mode.Perm(), ds.UID, ds.GID, c.Target),
			Fix:     fmt.Sprintf("chmod %04o %s && chown %d:%d %s   # on %s", ss.Mode.Perm(), hosts.Quote(f.To), ss.UID, ss.GID, hosts.Quote(f.To), c.Target)})
	}
	return out
}

// envParityRead reads and parses an env file, registering its secret-
// looking values for redaction before anything else can print them.
func envParityRead(ctx context.Context, env *steps.Env, h hosts.Host, p string) (*envfile.File, error) {
	b, err := h.ReadFile(ctx, p)
	if err != nil {
		return nil, err
	}
	f, err := envfile.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	env.Secrets.Add(envfile.Secretish(f)...)
	return f, nil
}

func (c *EnvParity) vars(ctx context.Context, src, dst hosts.Host, env *steps.Env, hash *envfile.Hasher, mayDiffer map[string]bool) []steps.Finding {
	se, err := envParityEnviron(ctx, src)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: "environment", Message: err.Error()}}
	}
	de, err := envParityEnviron(ctx, dst)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: "environment", Message: err.Error()}}
	}
	var out []steps.Finding
	names := append([]string(nil), c.Vars...)
	sort.Strings(names)
	for _, k := range names {
		sv, sok := se[k]
		dv, dok := de[k]
		for _, v := range []string{sv, dv} {
			if len(v) >= 8 {
				env.Secrets.Add(v)
			}
		}
		fix := fmt.Sprintf("set %s on %s where the app reads it (e.g. a line `%s=…` in /etc/environment, or Environment= in the service's unit)", k, c.Target, k)
		switch {
		case !sok && !dok:
			out = append(out, steps.Finding{Status: steps.Warn, Subject: "$" + k, Message: fmt.Sprintf("$%s is set on neither host's login environment: is it set by the web server or a unit instead?", k)})
		case !dok:
			out = append(out, steps.Finding{Status: steps.Fail, Subject: "$" + k, Message: fmt.Sprintf("$%s is set on %s (%s) but not on %s", k, c.Source, hash.Sum(sv), c.Target), Fix: fix})
		case !sok:
			out = append(out, steps.Finding{Status: steps.Pass, Subject: "$" + k, Message: fmt.Sprintf("$%s is set only on %s", k, c.Target)})
		case sv != dv && !mayDiffer[k]:
			out = append(out, steps.Finding{Status: steps.Fail, Subject: "$" + k, Message: fmt.Sprintf("$%s differs: %s on %s, %s on %s", k, hash.Sum(sv), c.Source, hash.Sum(dv), c.Target), Fix: fix})
		case sv != dv:
			out = append(out, steps.Finding{Status: steps.Pass, Subject: "$" + k, Message: fmt.Sprintf("$%s differs as expected (may_differ)", k)})
		default:
			out = append(out, steps.Finding{Status: steps.Pass, Subject: "$" + k, Message: fmt.Sprintf("$%s is the same on both hosts (%s)", k, hash.Sum(sv))})
		}
	}
	return out
}

// envParityEnviron is the environment a login shell gets on h.
func envParityEnviron(ctx context.Context, h hosts.Host) (map[string]string, error) {
	out, err := h.Output(ctx, "sh -lc 'env -0' </dev/null 2>/dev/null || env -0")
	if err != nil {
		return nil, fmt.Errorf("read the environment on %s: %w", h.Name(), err)
	}
	return envfile.ParseEnv0(out), nil
}
