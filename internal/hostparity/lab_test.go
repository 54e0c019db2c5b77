package hostparity_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/decant-sh/decant/checks"
	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(labtest.Main(m, &theLab, lab.Options{NoMariaDB: true}))
}

// world is one test's lab: an "old" tree for the source (local) and a "new"
// tree for the target (reached through the lab sshd), and an engine over a
// runbook whose hosts point at them.
type world struct {
	t        *testing.T
	dir      string
	old, new string // the hosts' root: dirs
	rbPath   string
	e        *runbook.Engine
}

// newWorld writes a runbook with the given extra top-level YAML (settings,
// dns) and phases, and opens an engine on it.
func newWorld(t *testing.T, top, phases string) *world {
	t.Helper()
	w := newTrees(t)
	w.reopen(top, phases)
	return w
}

// newTrees makes the two trees; reopen then writes the runbook.
func newTrees(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.old, w.new = filepath.Join(w.dir, "old"), filepath.Join(w.dir, "new")
	for _, d := range []string{w.old, w.new} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.rbPath = filepath.Join(w.dir, "rb.yaml")
	return w
}

// reopen rewrites the runbook and opens a fresh engine on the same journal.
func (w *world) reopen(top, phases string) {
	w.t.Helper()
	if w.e != nil {
		w.e.Close()
	}
	src := fmt.Sprintf(`name: host parity lab
hosts:
  source: {address: local, root: %q}
  target:
    address: %q
    key: %q
    known_hosts: %q
    root: %q
%s
phases:
%s
`, w.old, labtest.SSHHost(theLab), theLab.SSH.ClientKeyFile, theLab.SSH.KnownHostsFile, w.new, top, phases)
	if err := os.WriteFile(w.rbPath, []byte(src), 0o600); err != nil {
		w.t.Fatal(err)
	}
	rb, err := runbook.Load(w.rbPath)
	if err != nil {
		w.t.Fatalf("runbook: %v\n%s", err, src)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.e = e
	w.t.Cleanup(func() { e.Close() })
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	w.t.Cleanup(cancel)
	return ctx
}

// check runs a check step and returns its findings.
func (w *world) check(id string) []steps.Finding {
	w.t.Helper()
	err := w.e.Run(w.ctx(), id, nil)
	if err != nil && !errors.Is(err, runbook.ErrCheckFailed) {
		w.t.Fatalf("check %s: %v", id, err)
	}
	return w.e.State(id).Findings
}

// run runs an action step and fails the test on error.
func (w *world) run(id string) {
	w.t.Helper()
	if err := w.e.Run(w.ctx(), id, nil); err != nil {
		w.t.Fatalf("run %s: %v\n%s", id, err, w.logs(id))
	}
}

func (w *world) undo(id string) {
	w.t.Helper()
	if err := w.e.Undo(w.ctx(), id); err != nil {
		w.t.Fatalf("undo %s: %v\n%s", id, err, w.logs(id))
	}
}

func (w *world) plan(id string) *steps.Plan {
	w.t.Helper()
	p, err := w.e.Plan(w.ctx(), id)
	if err != nil {
		w.t.Fatalf("plan %s: %v", id, err)
	}
	return p
}

// logs returns the step's log lines from the journal.
func (w *world) logs(id string) string {
	evs, err := runbook.ReadJournal(w.rbPath)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, ev := range evs {
		if ev.Step == id && (ev.Type == runbook.EvLog || ev.Type == runbook.EvFailed || ev.Type == runbook.EvUndoFailed) {
			b.WriteString(ev.Message + "\n")
		}
	}
	return b.String()
}

// journal returns the whole journal file's text.
func (w *world) journal() string {
	b, err := os.ReadFile(runbook.JournalPath(w.rbPath))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

// write creates a file (and its directories) under a root.
func write(t *testing.T, root, p, content string, mode fs.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// findings summarises findings one per line for failure messages.
func findings(fs []steps.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s: %s | fix: %s\n", f.Status, f.Subject, f.Message, f.Fix)
	}
	return b.String()
}

// has reports a finding with status st whose message contains every part.
func has(fs []steps.Finding, st steps.Status, parts ...string) bool {
	for _, f := range fs {
		if f.Status != st {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(f.Message, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// snapshot describes every path under dir: type, mode, owner, size, mtime
// and content, so two snapshots compare file by file.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %o %d:%d", fi.Mode().Type(), fi.Mode().Perm(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %d %d %q", fi.Size(), fi.ModTime().UnixNano(), b)
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.IsDir():
			desc += fmt.Sprintf(" mtime %d", fi.ModTime().UnixNano())
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test with the differences between two snapshots.
func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range before {
		if a, ok := after[k]; !ok {
			diffs = append(diffs, "missing: "+k)
		} else if a != v {
			diffs = append(diffs, fmt.Sprintf("changed: %s\n    was %s\n    now %s", k, v, a))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added: "+k)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

func nowMinus(sec int) time.Time { return time.Now().Add(-time.Duration(sec) * time.Second) }
