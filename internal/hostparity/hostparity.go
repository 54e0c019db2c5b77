// Package hostparity holds what the host-side checks (env, cron, services,
// TLS, HTTP parity) and actions (files.sync, cron.install, env.copy,
// service.ctl, http.smoke) share: parameter types that can differ per host,
// crontab access chosen per host, and the batch path probes. Its tests run
// every one of those kinds against the real lab (sshd, rsync, crontab, an
// init script, a pair of web servers).
package hostparity

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/decant-sh/decant/internal/cronfile"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

// PerHost is a parameter that may differ per host. In YAML it is a scalar
// (the same for every host) or a mapping from host name to value.
type PerHost map[string]string

// UnmarshalYAML accepts "value" or {source: a, target: b}.
func (p *PerHost) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		*p = PerHost{"*": s}
		return nil
	}
	var m map[string]string
	if err := unmarshal(&m); err != nil {
		return err
	}
	*p = m
	return nil
}

// For returns the value for host, or def.
func (p PerHost) For(host, def string) string {
	if v, ok := p[host]; ok && v != "" {
		return v
	}
	if v, ok := p["*"]; ok && v != "" {
		return v
	}
	return def
}

// FilePair is a file on the source and where it belongs on the target. In
// YAML: "/var/www/shop/.env" (same path on both) or {from: a, to: b}.
type FilePair struct {
	From string `yaml:"from" json:"from"`
	To   string `yaml:"to" json:"to"`
}

// UnmarshalYAML accepts a path or a from/to mapping.
func (f *FilePair) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		*f = FilePair{From: s, To: s}
		return nil
	}
	type plain FilePair
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	if p.To == "" {
		p.To = p.From
	}
	*f = FilePair(p)
	return nil
}

// CheckPairs validates file pairs: absolute paths, at least one.
func CheckPairs(key string, ps []FilePair) error {
	if len(ps) == 0 {
		return steps.BadParam(key, "list at least one file")
	}
	for _, p := range ps {
		if !path.IsAbs(p.From) || !path.IsAbs(p.To) {
			return steps.BadParam(key, "%q: use absolute paths", p.From)
		}
	}
	return nil
}

// HasRoot reports whether the host's files live under a root prefix.
func HasRoot(env *steps.Env, host string) bool {
	r := env.Conn.HostRoot(host)
	return r != "" && r != "/"
}

// CronParams are the crontab access parameters shared by cron.parity and
// cron.install.
type CronParams struct {
	// CrontabCmd is the crontab command per host ("sudo crontab", a
	// wrapper). Setting it selects the command even under a root prefix.
	CrontabCmd PerHost `yaml:"crontab_cmd"`
	// Spool is a spool directory per host (mapped through the host's root):
	// crontabs are read and written as files there.
	Spool PerHost `yaml:"spool"`
}

// Tab returns how to reach host's per-user crontabs: an explicit
// crontab_cmd wins, then an explicit spool; otherwise a host with a root
// prefix (a lab tree) uses the spool files under its root — the crontab
// binary would reach the machine's real spool — and a real host uses the
// crontab binary.
func (c CronParams) Tab(ctx context.Context, env *steps.Env, host string) (*cronfile.Tab, error) {
	h, err := env.Host(ctx, host)
	if err != nil {
		return nil, err
	}
	if cmd := c.CrontabCmd.For(host, ""); cmd != "" {
		return &cronfile.Tab{Host: h, Cmd: cmd}, nil
	}
	if sp := c.Spool.For(host, ""); sp != "" {
		return &cronfile.Tab{Host: h, Spool: env.Path(host, sp)}, nil
	}
	if HasRoot(env, host) {
		return &cronfile.Tab{Host: h, Spool: env.Path(host, cronfile.DefaultSpool)}, nil
	}
	return &cronfile.Tab{Host: h}, nil
}

// Exists reports, for each path (already mapped), whether it exists on h,
// with one command for the whole batch.
func Exists(ctx context.Context, h hosts.Host, paths []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(paths) == 0 {
		return out, nil
	}
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "if [ -e %s ] || [ -L %s ]; then echo 1; else echo 0; fi\n", hosts.Quote(p), hosts.Quote(p))
	}
	res, err := h.Output(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("look for paths on %s: %w", h.Name(), err)
	}
	lines := strings.Split(strings.TrimSpace(string(res)), "\n")
	if len(lines) != len(paths) {
		return nil, fmt.Errorf("look for paths on %s: %d answers for %d paths", h.Name(), len(lines), len(paths))
	}
	for i, p := range paths {
		out[p] = lines[i] == "1"
	}
	return out, nil
}

// ListDir lists the plain entries of dir on h (sorted; "" when missing).
func ListDir(ctx context.Context, h hosts.Host, dir string) ([]string, bool, error) {
	res, err := h.Output(ctx, "if [ -d "+hosts.Quote(dir)+" ]; then echo yes; ls -1A -- "+hosts.Quote(dir)+"; else echo no; fi")
	if err != nil {
		return nil, false, fmt.Errorf("list %s on %s: %w", dir, h.Name(), err)
	}
	lines := strings.Split(strings.TrimRight(string(res), "\n"), "\n")
	if len(lines) == 0 || lines[0] != "yes" {
		return nil, false, nil
	}
	var out []string
	for _, l := range lines[1:] {
		if l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out, true, nil
}

// CronDName reports whether cron would read a file of this name in
// /etc/cron.d (run-parts naming: no dots, no editor backups).
func CronDName(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Limit joins at most n items, saying how many more there are.
func Limit(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// MissingDirs lists dir and its ancestors that do not exist on h, deepest
// first: what `mkdir -p dir` is about to create.
func MissingDirs(ctx context.Context, h hosts.Host, dir string) ([]string, error) {
	out, err := h.Output(ctx, `d=`+hosts.Quote(dir)+`; while [ ! -e "$d" ] && [ "$d" != / ]; do printf '%s\n' "$d"; d=$(dirname -- "$d"); done`)
	if err != nil {
		return nil, fmt.Errorf("look at %s on %s: %w", dir, h.Name(), err)
	}
	var dirs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			dirs = append(dirs, l)
		}
	}
	return dirs, nil
}

// RemoveDirs removes directories an action created, deepest first, as long
// as they are empty (something else may have put files there since).
func RemoveDirs(ctx context.Context, h hosts.Host, dirs []string) {
	for _, d := range dirs {
		_ = h.Run(ctx, "rmdir -- "+hosts.Quote(d)+" 2>/dev/null", nil, nil, nil)
	}
}

// MTimes reads the modification times (seconds.nanoseconds, as stat
// prints them) of paths on h; missing paths are left out.
func MTimes(ctx context.Context, h hosts.Host, paths []string) (map[string]string, error) {
	out := map[string]string{}
	if len(paths) == 0 {
		return out, nil
	}
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "stat -c '%%.9Y' -- %s 2>/dev/null || echo -\n", hosts.Quote(p))
	}
	res, err := h.Output(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("read times on %s: %w", h.Name(), err)
	}
	lines := strings.Split(strings.TrimSpace(string(res)), "\n")
	for i, p := range paths {
		if i < len(lines) && lines[i] != "-" {
			out[p] = lines[i]
		}
	}
	return out, nil
}

// SetMTimes puts modification times back (after undo touched a directory
// by removing or renaming files in it). Paths are applied longest first,
// so a parent's time is set after its children changed.
func SetMTimes(ctx context.Context, h hosts.Host, times map[string]string) error {
	if len(times) == 0 {
		return nil
	}
	paths := make([]string, 0, len(times))
	for p := range times {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "[ -e %s ] && touch -h -m -d @%s -- %s\n", hosts.Quote(p), hosts.Quote(times[p]), hosts.Quote(p))
	}
	b.WriteString("true\n")
	if err := h.Run(ctx, b.String(), nil, nil, nil); err != nil {
		return fmt.Errorf("restore times on %s: %w", h.Name(), err)
	}
	return nil
}
