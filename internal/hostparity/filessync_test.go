package hostparity_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/runbook"
)

const syncSteps = `  - name: prepare
    steps:
      - id: sync
        action: files.sync
        with: {paths: [/var/www/shop], exclude: [cache/]}
  - name: catchup
    steps:
      - id: sync-final
        action: files.sync
        with: {paths: [/var/www/shop], exclude: [cache/]}
`

// oldSite fills the source tree with what a real docroot holds: nested
// dirs, a hard link, a symlink, odd names, an xattr, private files owned
// by another user, and a cache that is excluded.
func oldSite(t *testing.T, root string) {
	t.Helper()
	write(t, root, "/var/www/shop/index.php", "<?php echo 'shop';", 0o644)
	write(t, root, "/var/www/shop/uploads/2024/photo one.jpg", strings.Repeat("J", 200<<10), 0o644)
	write(t, root, "/var/www/shop/uploads/2024/new\nline.txt", "odd name", 0o644)
	write(t, root, "/var/www/shop/private/key.pem", "PRIVATE", 0o600)
	write(t, root, "/var/www/shop/cache/x", "cache", 0o644)
	write(t, root, "/var/www/shop/same.txt", "same content", 0o600)
	base := filepath.Join(root, "var/www/shop")
	must(t, os.Chown(filepath.Join(base, "private/key.pem"), 33, 33))
	must(t, os.Link(filepath.Join(base, "index.php"), filepath.Join(base, "index-hardlink.php")))
	must(t, os.Symlink("uploads/2024", filepath.Join(base, "latest")))
	must(t, syscall.Setxattr(filepath.Join(base, "index.php"), "user.decant", []byte("tagged"), 0))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rsyncDelta is the done-when test: rsync --dry-run --checksum from the old
// tree to the new one, itemizing what it would still send.
func rsyncDelta(t *testing.T, w *world) string {
	t.Helper()
	out, err := exec.Command("rsync", "-aHAX", "--numeric-ids", "--delete", "--checksum", "--dry-run", "--exclude=cache/", "--out-format=%i %n",
		filepath.Join(w.old, "var/www/shop")+"/", filepath.Join(w.new, "var/www/shop")+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync check: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestFilesSyncOverExistingTarget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", syncSteps)
	oldSite(t, w.old)
	// The target already has a stale copy: a changed file, files the source
	// no longer has, a file whose mode differs, and its own cache.
	write(t, w.new, "/var/www/shop/index.php", "<?php echo 'old shop';", 0o644)
	write(t, w.new, "/var/www/shop/gone.html", "removed on the source", 0o644)
	write(t, w.new, "/var/www/shop/olddir/a/b.txt", "deep", 0o640)
	write(t, w.new, "/var/www/shop/same.txt", "same content", 0o644)
	write(t, w.new, "/var/www/shop/cache/y", "target cache", 0o644)
	must(t, os.Chtimes(filepath.Join(w.new, "var/www/shop/same.txt"), nowMinus(3600), nowMinus(3600)))
	before := snapshot(t, w.new)

	p := w.plan("sync")
	if p.Noop || p.Total < 200<<10 || !strings.Contains(p.Summary, "to delete") {
		t.Fatalf("plan: %+v", p)
	}
	if !strings.Contains(p.Summary, "4 to delete") {
		t.Errorf("plan should delete gone.html, olddir/a/b.txt, olddir/a/ and olddir/: %s", p.Summary)
	}
	w.run("sync")
	if d := rsyncDelta(t, w); d != "" {
		t.Fatalf("after sync rsync --checksum would still send:\n%s", d)
	}
	if b, _ := os.ReadFile(filepath.Join(w.new, "var/www/shop/cache/y")); string(b) != "target cache" {
		t.Fatal("an excluded directory was touched")
	}
	var x [16]byte
	if n, err := syscall.Getxattr(filepath.Join(w.new, "var/www/shop/index.php"), "user.decant", x[:]); err != nil || string(x[:n]) != "tagged" {
		t.Errorf("xattr not copied: %v", err)
	}
	a, _ := os.Stat(filepath.Join(w.new, "var/www/shop/index.php"))
	b, _ := os.Stat(filepath.Join(w.new, "var/www/shop/index-hardlink.php"))
	if !os.SameFile(a, b) {
		t.Error("hard link not kept")
	}
	// Progress came from rsync's own output, in bytes.
	evs, _ := runbook.ReadJournal(w.rbPath)
	prog := 0
	for _, ev := range evs {
		if ev.Type == runbook.EvProgress && ev.Step == "sync" && ev.Unit == "bytes" && ev.Total == p.Total {
			prog++
		}
	}
	if prog == 0 {
		t.Error("no byte progress events")
	}
	if p := w.plan("sync"); !p.Noop {
		t.Fatalf("plan after sync is not a no-op: %+v", p.Changes)
	}

	// The final delta during the freeze: one changed file, one new one.
	write(t, w.old, "/var/www/shop/uploads/2024/late.jpg", "late upload", 0o644)
	write(t, w.old, "/var/www/shop/index.php", "<?php echo 'shop v2';", 0o644)
	afterFirst := snapshot(t, w.new)
	w.run("sync-final")
	rc := receiptOf(t, w, "sync-final")
	if len(rc.Passes) != 1 || rc.Passes[0].Files != 2 || rc.Passes[0].Bytes > 1024 {
		t.Fatalf("final delta sent more than needed: %+v", rc.Passes)
	}
	if !strings.Contains(w.logs("sync-final"), "sent 2 files") {
		t.Errorf("final delta log:\n%s", w.logs("sync-final"))
	}
	if d := rsyncDelta(t, w); d != "" {
		t.Fatalf("after the final delta:\n%s", d)
	}
	w.undo("sync-final")
	sameTree(t, "target after undoing the final delta", afterFirst, snapshot(t, w.new))
	w.undo("sync")
	sameTree(t, "target after undoing both syncs", before, snapshot(t, w.new))
	if left, _ := filepath.Glob(filepath.Join(w.new, "var/www/.decant-backup-*")); len(left) != 0 {
		t.Fatalf("backup dirs left: %v", left)
	}
}

func TestFilesSyncIntoEmptyTarget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", syncSteps)
	oldSite(t, w.old)
	before := snapshot(t, w.new)
	p := w.plan("sync")
	if p.Noop || !strings.Contains(p.Changes[0].Before, "absent") {
		t.Fatalf("plan: %+v", p)
	}
	w.run("sync")
	if d := rsyncDelta(t, w); d != "" {
		t.Fatalf("after sync:\n%s", d)
	}
	st, _ := os.Stat(filepath.Join(w.new, "var/www/shop/private/key.pem"))
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 33 || st.Mode().Perm() != 0o600 {
		t.Fatalf("numeric owner / mode not kept: %d %o", sys.Uid, st.Mode().Perm())
	}
	w.undo("sync")
	sameTree(t, "target after undo", before, snapshot(t, w.new))
}

func receiptOf(t *testing.T, w *world, id string) actions.FilesSyncReceipt {
	t.Helper()
	var rc actions.FilesSyncReceipt
	if err := json.Unmarshal(w.e.State(id).Receipt, &rc); err != nil {
		t.Fatalf("receipt of %s: %v", id, err)
	}
	return rc
}

// A copy cut off half way (cancelled here; a dropped link or a killed
// decant in real life) resumes: the second attempt adds a pass, rsync only
// sends the rest, and undo unwinds both passes.
func TestFilesSyncInterruptedAndResumed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", `  - name: prepare
    steps:
      - id: sync
        action: files.sync
        with: {paths: [/var/www/shop], bwlimit: 100k}
`)
	write(t, w.old, "/var/www/shop/a-first.bin", strings.Repeat("a", 250<<10), 0o644)
	write(t, w.old, "/var/www/shop/b-second.bin", strings.Repeat("b", 500<<10), 0o644)
	write(t, w.new, "/var/www/shop/a-first.bin", "stale", 0o644)
	before := snapshot(t, w.new)
	// Cut the copy off once rsync reports its first bytes.
	sub := w.e.Subscribe(64, true)
	go func() {
		cut := false
		for ev := range sub.C {
			if !cut && ev.Type == runbook.EvProgress && ev.Step == "sync" && ev.Done > 0 {
				cut = true
				w.e.Cancel("sync")
			}
		}
	}()
	if err := w.e.Run(w.ctx(), "sync", nil); err == nil {
		t.Fatal("the throttled copy finished before it was cut off")
	}
	st := w.e.State("sync")
	if st.Status != runbook.StatusInterrupted && st.Status != runbook.StatusFailed && len(st.Checkpoint) == 0 {
		t.Fatalf("after the cut: %s, checkpoint %s", st.Status, st.Checkpoint)
	}
	// Resume without the throttle.
	w.reopen("", `  - name: prepare
    steps:
      - id: sync
        action: files.sync
        with: {paths: [/var/www/shop]}
`)
	w.run("sync")
	rc := receiptOf(t, w, "sync")
	if len(rc.Passes) != 2 || !rc.Passes[1].Done {
		t.Fatalf("passes after resume: %+v", rc.Passes)
	}
	if d := rsyncDelta(t, w); d != "" && d != ".d..t...... cache/" {
		t.Fatalf("after resume:\n%s", d)
	}
	w.undo("sync")
	sameTree(t, "target after undoing an interrupted and resumed sync", before, snapshot(t, w.new))
}
