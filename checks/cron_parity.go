package checks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/cronfile"
	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "cron.parity",
		Check: true,
		Doc:   "every user's crontab, /etc/crontab, /etc/cron.d and systemd timers: jobs missing on the target and jobs whose paths are missing there",
		New: func(n ast.Node) (any, error) {
			c := &CronParity{Source: "source", Target: "target"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// CronParity compares scheduled jobs between two hosts.
type CronParity struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Users limits the per-user crontabs compared; default every user with
	// a crontab on the source.
	Users []string `yaml:"users"`
	// NoSystem skips /etc/crontab and /etc/cron.d.
	NoSystem bool `yaml:"no_system"`
	// NoTimers skips systemd timers.
	NoTimers bool `yaml:"no_timers"`
	// CronD is the cron.d directory (default /etc/cron.d).
	CronD                 string `yaml:"cron_d"`
	hostparity.CronParams `yaml:",inline"`
}

// cronJob is one source job with where it came from.
type cronJob struct {
	where string // "crontab of www-data", "/etc/cron.d/shop"
	line  cronfile.Line
}

// Run compares crontabs, system cron files and timers.
func (c *CronParity) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	src, err := env.Host(ctx, c.Source)
	if err != nil {
		return nil, err
	}
	dst, err := env.Host(ctx, c.Target)
	if err != nil {
		return nil, err
	}
	var out []steps.Finding
	var jobs []cronJob
	f, j, err := c.users(ctx, env)
	if err != nil {
		return nil, err
	}
	out, jobs = append(out, f...), append(jobs, j...)
	if !c.NoSystem {
		f, j, err := c.system(ctx, env, src, dst)
		if err != nil {
			return nil, err
		}
		out, jobs = append(out, f...), append(jobs, j...)
	}
	pf, err := c.paths(ctx, env, src, dst, jobs)
	if err != nil {
		return nil, err
	}
	out = append(out, pf...)
	if !c.NoTimers {
		tf, err := c.timers(ctx, env, src, dst)
		if err != nil {
			return nil, err
		}
		out = append(out, tf...)
	}
	return out, nil
}

func (c *CronParity) users(ctx context.Context, env *steps.Env) ([]steps.Finding, []cronJob, error) {
	st, err := c.Tab(ctx, env, c.Source)
	if err != nil {
		return nil, nil, err
	}
	dt, err := c.Tab(ctx, env, c.Target)
	if err != nil {
		return nil, nil, err
	}
	users := c.Users
	if len(users) == 0 {
		if users, err = st.Users(ctx); err != nil {
			return nil, nil, err
		}
	}
	if len(users) == 0 {
		return []steps.Finding{{Status: steps.Pass, Subject: "crontabs", Message: fmt.Sprintf("no user has a crontab on %s (read through %s)", c.Source, st.Mode())}}, nil, nil
	}
	var out []steps.Finding
	var jobs []cronJob
	for _, u := range users {
		subject := "crontab of " + u
		sc, ok, err := st.Read(ctx, u)
		if err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: subject, Message: err.Error()})
			continue
		}
		if !ok {
			out = append(out, steps.Finding{Status: steps.Pass, Subject: subject, Message: fmt.Sprintf("%s has no crontab on %s", u, c.Source)})
			continue
		}
		env.Secrets.Add(cronfile.Secrets(sc)...)
		entries := cronfile.Entries(cronfile.Parse(sc, false))
		for _, e := range entries {
			jobs = append(jobs, cronJob{where: subject, line: e})
		}
		dc, _, err := dt.Read(ctx, u)
		if err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: subject, Message: err.Error(),
				Fix: fmt.Sprintf("create the user %s on %s (useradd), then install its crontab", u, c.Target)})
			continue
		}
		env.Secrets.Add(cronfile.Secrets(dc)...)
		out = append(out, cronCompare(subject, c.Source, c.Target, entries, dc, false,
			fmt.Sprintf("run the cron.install action (users: [%s]); by hand: crontab -l -u %s on %s, then crontab -u %s - on %s", u, u, c.Source, u, c.Target)))
	}
	return out, jobs, nil
}

// cronCompare reports source entries missing from the target's content.
func cronCompare(subject, srcName, dstName string, entries []cronfile.Line, dstContent string, system bool, fix string) steps.Finding {
	have := map[string]bool{}
	for _, l := range cronfile.Entries(cronfile.Parse(dstContent, system)) {
		have[l.Key()] = true
	}
	var missing []string
	for _, e := range entries {
		if !have[e.Key()] {
			missing = append(missing, fmt.Sprintf("%q", e.Key()))
		}
	}
	if len(missing) > 0 {
		return steps.Finding{Status: steps.Fail, Subject: subject,
			Message: fmt.Sprintf("%d of %d jobs of %s are missing on %s: %s", len(missing), len(entries), subject, dstName, hostparity.Limit(missing, 5)),
			Fix:     fix, FixAction: "cron.install"}
	}
	return steps.Finding{Status: steps.Pass, Subject: subject, Message: fmt.Sprintf("all %d jobs of %s are on %s", len(entries), subject, dstName)}
}

func (c *CronParity) system(ctx context.Context, env *steps.Env, src, dst hosts.Host) ([]steps.Finding, []cronJob, error) {
	cronD := c.CronD
	if cronD == "" {
		cronD = "/etc/cron.d"
	}
	files := []string{"/etc/crontab"}
	names, _, err := hostparity.ListDir(ctx, src, env.Path(c.Source, cronD))
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if hostparity.CronDName(n) {
			files = append(files, path.Join(cronD, n))
		}
	}
	var out []steps.Finding
	var jobs []cronJob
	for _, f := range files {
		sb, err := src.ReadFile(ctx, env.Path(c.Source, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: f, Message: err.Error()})
			continue
		}
		env.Secrets.Add(cronfile.Secrets(string(sb))...)
		entries := cronfile.Entries(cronfile.Parse(string(sb), true))
		for _, e := range entries {
			jobs = append(jobs, cronJob{where: f, line: e})
		}
		db, err := dst.ReadFile(ctx, env.Path(c.Target, f))
		if errors.Is(err, fs.ErrNotExist) {
			if len(entries) == 0 {
				continue
			}
			out = append(out, steps.Finding{Status: steps.Fail, Subject: f,
				Message:   fmt.Sprintf("%s (%d jobs) is missing on %s", f, len(entries), c.Target),
				Fix:       fmt.Sprintf("run the cron.install action with cron_d: [%s]; by hand: scp it to %s, owned by root, mode 0644", f, c.Target),
				FixAction: "cron.install"})
			continue
		}
		if err != nil {
			out = append(out, steps.Finding{Status: steps.Fail, Subject: f, Message: err.Error()})
			continue
		}
		env.Secrets.Add(cronfile.Secrets(string(db))...)
		out = append(out, cronCompare(f, c.Source, c.Target, entries, string(db), true,
			fmt.Sprintf("run the cron.install action with cron_d: [%s] (merges the missing lines)", f)))
	}
	return out, jobs, nil
}

// paths reports jobs whose commands name a path that exists on the source
// but not on the target (a script, a docroot, a log directory).
func (c *CronParity) paths(ctx context.Context, env *steps.Env, src, dst hosts.Host, jobs []cronJob) ([]steps.Finding, error) {
	type ref struct {
		job  cronJob
		path string // the path to look for (a redirection's directory)
	}
	var refs []ref
	seen := map[string]bool{}
	var list []string
	for _, j := range jobs {
		for _, p := range cronfile.CommandPaths(j.line.Command) {
			want := p.Path
			if p.Output {
				want = path.Dir(p.Path)
			}
			refs = append(refs, ref{j, want})
			if !seen[want] {
				seen[want] = true
				list = append(list, want)
			}
		}
	}
	if len(list) == 0 {
		return nil, nil
	}
	sort.Strings(list)
	mapped := func(host string) []string {
		var out []string
		for _, p := range list {
			out = append(out, env.Path(host, p))
		}
		return out
	}
	onSrc, err := hostparity.Exists(ctx, src, mapped(c.Source))
	if err != nil {
		return nil, err
	}
	onDst, err := hostparity.Exists(ctx, dst, mapped(c.Target))
	if err != nil {
		return nil, err
	}
	byPath := map[string][]string{}
	for _, r := range refs {
		if onSrc[env.Path(c.Source, r.path)] && !onDst[env.Path(c.Target, r.path)] {
			desc := fmt.Sprintf("%s (%s)", r.job.where, r.job.line.Schedule)
			if !cronContains(byPath[r.path], desc) {
				byPath[r.path] = append(byPath[r.path], desc)
			}
		}
	}
	var out []steps.Finding
	var missing []string
	for p := range byPath {
		missing = append(missing, p)
	}
	sort.Strings(missing)
	for _, p := range missing {
		out = append(out, steps.Finding{Status: steps.Fail, Subject: p,
			Message: fmt.Sprintf("%s is used by jobs (%s) and exists on %s but not on %s: the job would fail there", p, hostparity.Limit(byPath[p], 3), c.Source, c.Target),
			Fix:     fmt.Sprintf("copy it (files.sync with paths: [%s]) or install the package that provides it on %s", p, c.Target)})
	}
	if len(out) == 0 {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: "job paths",
			Message: fmt.Sprintf("every path the jobs use (%d) that exists on %s also exists on %s", len(list), c.Source, c.Target)})
	}
	return out, nil
}

func cronContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// timers compares the locally defined systemd timers (unit files in
// /etc/systemd/system, where admins put their own; packaged ones come with
// their packages) and, when systemd runs, the active ones.
func (c *CronParity) timers(ctx context.Context, env *steps.Env, src, dst hosts.Host) ([]steps.Finding, error) {
	list := func(h hosts.Host, host string) ([]string, bool, error) {
		names, ok, err := hostparity.ListDir(ctx, h, env.Path(host, "/etc/systemd/system"))
		var out []string
		for _, n := range names {
			if strings.HasSuffix(n, ".timer") {
				out = append(out, n)
			}
		}
		if !hostparity.HasRoot(env, host) {
			// Active timers, packaged ones included, when systemd runs.
			res, _ := h.Output(ctx, "[ -d /run/systemd/system ] && systemctl list-timers --all --no-legend --plain 2>/dev/null | awk '{for(i=1;i<=NF;i++) if ($i ~ /\\.timer$/) print $i}'; true")
			for _, n := range strings.Fields(string(res)) {
				if !cronContains(out, n) {
					out = append(out, n)
				}
			}
		}
		sort.Strings(out)
		return out, ok, err
	}
	st, _, err := list(src, c.Source)
	if err != nil {
		return nil, err
	}
	if len(st) == 0 {
		return []steps.Finding{{Status: steps.Pass, Subject: "systemd timers", Message: fmt.Sprintf("no systemd timers on %s", c.Source)}}, nil
	}
	dt, _, err := list(dst, c.Target)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, t := range st {
		if !cronContains(dt, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return []steps.Finding{{Status: steps.Fail, Subject: "systemd timers",
			Message: fmt.Sprintf("%d of %d timers of %s are missing on %s: %s", len(missing), len(st), c.Source, c.Target, hostparity.Limit(missing, 6)),
			Fix:     fmt.Sprintf("copy /etc/systemd/system/%s and its .service to %s, then: systemctl daemon-reload && systemctl enable --now %s", missing[0], c.Target, missing[0])}}, nil
	}
	return []steps.Finding{{Status: steps.Pass, Subject: "systemd timers", Message: fmt.Sprintf("all %d timers of %s are on %s", len(st), c.Source, c.Target)}}, nil
}
