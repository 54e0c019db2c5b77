package cronfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/decant-sh/decant/internal/hosts"
)

// DefaultSpool is Debian's per-user crontab directory.
const DefaultSpool = "/var/spool/cron/crontabs"

// Tab reads and writes the per-user crontabs of one host, either through
// the crontab binary (the normal way: it checks syntax, sets owner and mode
// and tells cron) or as files in a spool directory (for a lab whose target
// lives under a root prefix on a machine that has its own root crontab).
type Tab struct {
	Host hosts.Host
	// Cmd is the crontab command, "crontab" by default; it may be a wrapper
	// ("sudo crontab"). Used when Spool is "".
	Cmd string
	// Spool, when set, is the spool directory as a path on Host (already
	// mapped through the host's root): crontabs are the files in it.
	Spool string
}

// Mode describes how the tab is accessed, for plans and logs.
func (t *Tab) Mode() string {
	if t.Spool != "" {
		return "spool files in " + t.Spool
	}
	return "`" + t.cmd() + "`"
}

func (t *Tab) cmd() string {
	if t.Cmd == "" {
		return "crontab"
	}
	return t.Cmd
}

// Users lists the users that have a crontab, sorted.
func (t *Tab) Users(ctx context.Context) ([]string, error) {
	var script string
	if t.Spool != "" {
		script = "ls -1A -- " + hosts.Quote(t.Spool) + " 2>/dev/null || true"
	} else {
		// Ask crontab about every account rather than listing the spool:
		// that works with a wrapper command and needs no read access to it.
		script = `getent passwd | cut -d: -f1 | while IFS= read -r u; do ` + t.cmd() + ` -l -u "$u" >/dev/null 2>&1 </dev/null && printf '%s\n' "$u"; done; true`
	}
	out, err := t.Host.Output(ctx, script)
	if err != nil {
		return nil, fmt.Errorf("list crontabs on %s: %w", t.Host.Name(), err)
	}
	var users []string
	seen := map[string]bool{}
	for _, u := range strings.Split(string(out), "\n") {
		u = strings.TrimSpace(u)
		if u == "" || strings.HasPrefix(u, ".") || strings.HasPrefix(u, "tmp.") || strings.Contains(u, ".decant-tmp.") || seen[u] {
			continue
		}
		seen[u] = true
		users = append(users, u)
	}
	sort.Strings(users)
	return users, nil
}

// Read returns user's crontab and whether it exists.
func (t *Tab) Read(ctx context.Context, user string) (string, bool, error) {
	if t.Spool != "" {
		b, err := t.Host.ReadFile(ctx, path.Join(t.Spool, user))
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("read crontab of %s: %w", user, err)
		}
		return StripHeader(string(b)), true, nil
	}
	var out, errb bytes.Buffer
	err := t.Host.Run(ctx, t.cmd()+" -l -u "+hosts.Quote(user), nil, &out, &errb)
	if err != nil {
		if strings.Contains(errb.String(), "no crontab for") {
			return "", false, nil
		}
		return "", false, fmt.Errorf("read crontab of %s on %s: %w", user, t.Host.Name(), err)
	}
	return out.String(), true, nil
}

// Write installs content as user's crontab.
func (t *Tab) Write(ctx context.Context, user, content string) error {
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	if t.Spool == "" {
		var errb bytes.Buffer
		if err := t.Host.Run(ctx, t.cmd()+" -u "+hosts.Quote(user)+" -", strings.NewReader(content), nil, &errb); err != nil {
			return fmt.Errorf("install crontab of %s on %s: %w", user, t.Host.Name(), err)
		}
		return nil
	}
	// Check the syntax with the real crontab when the host has one, as
	// installing through it would.
	check := "if command -v crontab >/dev/null 2>&1; then crontab -n - >/dev/null; fi"
	if err := t.Host.Run(ctx, check, strings.NewReader(content), nil, nil); err != nil {
		return fmt.Errorf("crontab of %s does not pass `crontab -n`: %w", user, err)
	}
	if err := t.Host.Run(ctx, "mkdir -p -- "+hosts.Quote(t.Spool), nil, nil, nil); err != nil {
		return fmt.Errorf("create spool %s: %w", t.Spool, err)
	}
	p := path.Join(t.Spool, user)
	if err := t.Host.WriteFile(ctx, p, []byte(header+content), 0o600); err != nil {
		return fmt.Errorf("write crontab of %s: %w", user, err)
	}
	// As crontab(1) does; a user unknown on this machine keeps the login
	// user as owner (lab roots hold accounts the machine may not have).
	_ = t.Host.Run(ctx, "chown "+hosts.Quote(user)+":crontab "+hosts.Quote(p)+" 2>/dev/null || chown "+hosts.Quote(user)+" "+hosts.Quote(p)+" 2>/dev/null || true", nil, nil, nil)
	return nil
}

// Remove deletes user's crontab; a missing one is not an error.
func (t *Tab) Remove(ctx context.Context, user string) error {
	if t.Spool != "" {
		if err := t.Host.Run(ctx, "rm -f -- "+hosts.Quote(path.Join(t.Spool, user)), nil, nil, nil); err != nil {
			return fmt.Errorf("remove crontab of %s: %w", user, err)
		}
		return nil
	}
	var errb bytes.Buffer
	err := t.Host.Run(ctx, t.cmd()+" -r -u "+hosts.Quote(user), nil, nil, &errb)
	if err != nil && !strings.Contains(errb.String(), "no crontab for") {
		return fmt.Errorf("remove crontab of %s on %s: %w", user, t.Host.Name(), err)
	}
	return nil
}

// header is what Debian's crontab(1) writes at the top of a spool file;
// `crontab -l` hides it.
const header = "# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (decant installed this crontab)\n# (Cron version -- decant)\n"

// StripHeader removes the three-line header crontab(1) puts in spool files.
func StripHeader(s string) string {
	if !strings.HasPrefix(s, "# DO NOT EDIT THIS FILE") {
		return s
	}
	lines := strings.SplitN(s, "\n", 4)
	if len(lines) == 4 && strings.HasPrefix(lines[1], "# (") && strings.HasPrefix(lines[2], "# (") {
		return lines[3]
	}
	return s
}

// Command is the crontab command used when Spool is "".
func (t *Tab) Command() string { return t.cmd() }
