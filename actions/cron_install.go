package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/cronfile"
	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "cron.install",
		Doc:  "install the source's crontabs (per user, plus chosen /etc/cron.d files) on the target, merged with what is there; optionally disable them on the source so jobs do not run twice",
		New: func(n ast.Node) (any, error) {
			a := &CronInstall{Source: "source", Target: "target", Mode: "merge"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Mode != "merge" && a.Mode != "replace" {
				return nil, steps.BadParam("mode", "%q: use merge (keep the target's own jobs) or replace", a.Mode)
			}
			for _, f := range a.CronD {
				if !path.IsAbs(f) {
					return nil, steps.BadParam("cron_d", "%q: use absolute paths (/etc/cron.d/shop)", f)
				}
			}
			return a, nil
		},
	})
}

// CronInstall installs crontabs and system cron files on the target.
//
// Previous contents are kept for undo in 0600 files under the runbook's
// state directory rather than in the receipt: crontab lines often carry
// credentials (mysqldump -p…, curl tokens), and the journal and transcript
// are shared with the team. The receipt holds paths and SHA-256 sums only.
type CronInstall struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Users whose crontabs to install; default every user with one on the source.
	Users []string `yaml:"users"`
	// CronD are system cron files to install (/etc/cron.d/shop, /etc/crontab).
	CronD []string `yaml:"cron_d"`
	// Mode is merge (add the jobs the target lacks, keep its own) or replace.
	Mode string `yaml:"mode"`
	// DisableSource comments the installed jobs out on the source (marked
	// "#decant-disabled# ") so they do not run on both hosts after the
	// cut-over: put this step in the cut-over phase.
	DisableSource         bool `yaml:"disable_source"`
	hostparity.CronParams `yaml:",inline"`
}

// CronInstallReceipt lists every crontab and file changed, as it was before.
type CronInstallReceipt struct {
	Changes []CronUndo `json:"changes"`
}

// CronUndo is one changed crontab or file.
type CronUndo struct {
	What string `json:"what"`
	// A per-user crontab reached through the crontab command: User and Cmd
	// (undo reinstalls the backup with it, or removes the crontab).
	User string `json:"user,omitempty"`
	Cmd  string `json:"cmd,omitempty"`
	// Otherwise a file (system cron file, or a spool file in a lab root).
	hostparity.FileUndo
}

// cronChange is one planned write.
type cronChange struct {
	what    string
	host    string
	h       hosts.Host
	tab     *cronfile.Tab // per-user crontab, or nil for a file
	user    string
	path    string // file path (mapped); spool file for a spool tab
	content string
	existed bool
	mode    fs.FileMode // for files
	owner   string
	summary string
}

func (a *CronInstall) header(env *steps.Env) string {
	return "# decant: jobs from " + a.Source + " (" + env.Clock().UTC().Format("2006-01-02") + ")"
}

func (a *CronInstall) compute(ctx context.Context, env *steps.Env) ([]*cronChange, error) {
	src, err := env.Host(ctx, a.Source)
	if err != nil {
		return nil, err
	}
	dst, err := env.Host(ctx, a.Target)
	if err != nil {
		return nil, err
	}
	st, err := a.Tab(ctx, env, a.Source)
	if err != nil {
		return nil, err
	}
	dt, err := a.Tab(ctx, env, a.Target)
	if err != nil {
		return nil, err
	}
	users := a.Users
	if len(users) == 0 {
		if users, err = st.Users(ctx); err != nil {
			return nil, err
		}
	}
	var out []*cronChange
	header := a.header(env)
	for _, u := range users {
		sc, ok, err := st.Read(ctx, u)
		if err != nil {
			return nil, err
		}
		if !ok {
			if len(a.Users) > 0 {
				return nil, fmt.Errorf("%s has no crontab on %s", u, a.Source)
			}
			continue
		}
		env.Secrets.Add(cronfile.Secrets(sc)...)
		dc, dok, err := dt.Read(ctx, u)
		if err != nil {
			return nil, err
		}
		env.Secrets.Add(cronfile.Secrets(dc)...)
		c := &cronChange{what: "crontab of " + u + " on " + a.Target, host: a.Target, h: dst, tab: dt, user: u, existed: dok}
		if dt.Spool != "" {
			c.path = path.Join(dt.Spool, u)
		}
		a.merge(c, dc, sc, false, header)
		if c.content != dc || !dok {
			out = append(out, c)
		}
		if a.DisableSource {
			if d := a.disable(sc, false, c.content, "crontab of "+u+" on "+a.Source); d != nil {
				d.host, d.h, d.tab, d.user, d.existed = a.Source, src, st, u, true
				if st.Spool != "" {
					d.path = path.Join(st.Spool, u)
				}
				out = append(out, d)
			}
		}
	}
	for _, f := range a.CronD {
		sp, dp := env.Path(a.Source, f), env.Path(a.Target, f)
		sb, err := src.ReadFile(ctx, sp)
		if err != nil {
			return nil, fmt.Errorf("read %s on %s: %w", f, a.Source, err)
		}
		env.Secrets.Add(cronfile.Secrets(string(sb))...)
		mode, _, _, owner, err := envCopyStat(ctx, src, sp)
		if err != nil {
			return nil, err
		}
		db, err := dst.ReadFile(ctx, dp)
		existed := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s on %s: %w", f, a.Target, err)
		}
		env.Secrets.Add(cronfile.Secrets(string(db))...)
		c := &cronChange{what: f + " on " + a.Target, host: a.Target, h: dst, path: dp, existed: existed, mode: mode, owner: owner}
		if existed {
			a.merge(c, string(db), string(sb), true, header)
		} else {
			c.content, c.summary = string(sb), fmt.Sprintf("new file with %d jobs", len(cronfile.Entries(cronfile.Parse(string(sb), true))))
		}
		if c.content != string(db) || !existed {
			out = append(out, c)
		}
		if a.DisableSource {
			if d := a.disable(string(sb), true, c.content, f+" on "+a.Source); d != nil {
				d.host, d.h, d.path, d.existed, d.mode, d.owner = a.Source, src, sp, true, mode, owner
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// merge sets c.content to what the target should hold.
func (a *CronInstall) merge(c *cronChange, dst, src string, system bool, header string) {
	if a.Mode == "replace" {
		c.content = src
		c.summary = fmt.Sprintf("replaced by %s's %d jobs", a.Source, len(cronfile.Entries(cronfile.Parse(src, system))))
		return
	}
	merged, n := cronfile.Merge(dst, src, system, header)
	c.content = merged
	c.summary = fmt.Sprintf("%d jobs added, %d kept", n, len(cronfile.Entries(cronfile.Parse(dst, system))))
}

// disable comments out, in the source content, the jobs the target will
// have; nil when none is left to disable.
func (a *CronInstall) disable(src string, system bool, target, what string) *cronChange {
	keys := map[string]bool{}
	for _, l := range cronfile.Entries(cronfile.Parse(target, system)) {
		keys[l.Key()] = true
	}
	out, n := cronfile.Disable(src, system, keys)
	if n == 0 {
		return nil
	}
	return &cronChange{what: what, content: out, summary: fmt.Sprintf("%d jobs commented out (%s)", n, strings.TrimSpace(cronfile.DisabledPrefix))}
}

// Plan lists each crontab and file to write; job lines are not shown (they
// may carry credentials), only counts.
func (a *CronInstall) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	cs, err := a.compute(ctx, env)
	if err != nil {
		return nil, err
	}
	p := &steps.Plan{}
	if len(cs) == 0 {
		p.Noop = true
		p.Summary = "every job of " + a.Source + " is already on " + a.Target
		return p, nil
	}
	for _, c := range cs {
		before := "absent"
		if c.existed {
			before = "present"
		}
		p.Changes = append(p.Changes, steps.Change{What: c.what, Before: before, After: c.summary})
		if c.tab != nil && c.tab.Spool == "" {
			p.Commands = append(p.Commands, fmt.Sprintf("%s -u %s -   # on %s", c.tab.Mode(), c.user, c.host))
		} else {
			p.Commands = append(p.Commands, fmt.Sprintf("write %s on %s", c.path, c.host))
		}
	}
	p.Summary = fmt.Sprintf("install %d crontabs/cron files (%s)", len(cs), a.Mode)
	return p, nil
}

// Do backs everything up, journals, then writes target first and the
// source's disabled jobs last.
func (a *CronInstall) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	cs, err := a.compute(ctx, env)
	if err != nil {
		return nil, err
	}
	var rc CronInstallReceipt
	for i, c := range cs {
		u := CronUndo{What: c.what}
		if c.tab != nil && c.tab.Spool == "" {
			u.User, u.Cmd = c.user, c.tab.Command()
			u.Host, u.Existed = c.host, c.existed
			if c.existed {
				old, _, err := c.tab.Read(ctx, c.user)
				if err != nil {
					return rc, err
				}
				name := fmt.Sprintf("cron.install-%s-%d-%s.crontab", env.RunID, i, c.user)
				if u.Backup, err = hostparity.WriteBackup(env.StateDir, name, []byte(old)); err != nil {
					return rc, err
				}
				u.SHA256 = hostparity.SHA256Hex([]byte(old))
			}
		} else {
			name := fmt.Sprintf("cron.install-%s-%d-%s.bak", env.RunID, i, path.Base(c.path))
			if u.FileUndo, err = hostparity.SaveFile(ctx, c.h, c.host, c.path, env.StateDir, name); err != nil {
				return rc, err
			}
		}
		rc.Changes = append(rc.Changes, u)
	}
	if err := r.Checkpoint(rc); err != nil {
		return rc, err
	}
	for _, c := range cs {
		if c.tab != nil {
			if err := c.tab.Write(ctx, c.user, c.content); err != nil {
				return rc, err
			}
		} else {
			if err := c.h.Run(ctx, "mkdir -p -- "+hosts.Quote(path.Dir(c.path)), nil, nil, nil); err != nil {
				return rc, err
			}
			if err := c.h.WriteFile(ctx, c.path, []byte(c.content), c.mode); err != nil {
				return rc, err
			}
			// cron ignores cron.d files not owned by root or writable by others.
			if err := c.h.Run(ctx, "chown "+hosts.Quote(c.owner)+" "+hosts.Quote(c.path)+" 2>/dev/null || chown root:root "+hosts.Quote(c.path), nil, nil, nil); err != nil {
				return rc, err
			}
		}
		r.Logf("%s: %s", c.what, c.summary)
	}
	return rc, nil
}

// Undo restores every crontab and file as it was, newest change first.
func (a *CronInstall) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc CronInstallReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read cron.install receipt: %w", err)
	}
	for i := len(rc.Changes) - 1; i >= 0; i-- {
		u := rc.Changes[i]
		h, err := env.Host(ctx, u.Host)
		if err != nil {
			return err
		}
		if u.Cmd != "" {
			tab := &cronfile.Tab{Host: h, Cmd: u.Cmd}
			if !u.Existed {
				if err := tab.Remove(ctx, u.User); err != nil {
					return err
				}
				r.Logf("%s: removed (there was none before)", u.What)
				continue
			}
			data, err := u.BackupData()
			if err != nil {
				return err
			}
			env.Secrets.Add(cronfile.Secrets(string(data))...)
			if err := tab.Write(ctx, u.User, string(data)); err != nil {
				return err
			}
			r.Logf("%s: previous crontab reinstalled", u.What)
			continue
		}
		if err := u.Restore(ctx, h); err != nil {
			return err
		}
		if u.Existed {
			r.Logf("%s: previous content restored", u.What)
		} else {
			r.Logf("%s: removed (it did not exist before)", u.What)
		}
	}
	for _, u := range rc.Changes {
		u.Forget()
	}
	return nil
}
