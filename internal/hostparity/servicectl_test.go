package hostparity_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/svcctl"
)

func workerAlive(t *testing.T, pidfile string) bool {
	t.Helper()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && syscall.Kill(pid, 0) == nil
}

// waitUntil polls cond with a deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The init-script path for real: an LSB script under the target's root
// starts a background worker; service.ctl starts, stops, reloads, enables
// and disables it through the lab sshd, and undo puts each state back.
func TestServiceCtlInitScript(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", `  - name: freeze
    steps:
      - {id: start, action: service.ctl, with: {service: shop-worker, do: start}}
      - {id: stop, action: service.ctl, with: {service: shop-worker, do: stop}}
      - {id: reload, action: service.ctl, with: {service: shop-worker, do: reload}}
      - {id: restart, action: service.ctl, with: {service: shop-worker, do: restart}}
      - {id: enable, action: service.ctl, with: {service: shop-worker, do: enable}}
      - {id: disable, action: service.ctl, with: {service: shop-worker, do: disable}}
`)
	run := filepath.Join(w.new, "run")
	write(t, w.new, "/etc/init.d/shop-worker", svcctl.LabScript("shop-worker", run), 0o755)
	must(t, os.MkdirAll(filepath.Join(w.new, "etc/rc2.d"), 0o755))
	must(t, os.Symlink("../init.d/shop-worker", filepath.Join(w.new, "etc/rc2.d/K01shop-worker")))
	pidfile := filepath.Join(run, "shop-worker.pid")
	t.Cleanup(func() { _ = exec.Command(filepath.Join(w.new, "etc/init.d/shop-worker"), "stop").Run() })

	p := w.plan("start")
	if p.Noop || !strings.Contains(p.Summary, "init script") || p.Changes[0].Before != "stopped, disabled" || p.Changes[0].After != "running, disabled" {
		t.Fatalf("plan: %+v", p)
	}
	w.run("start")
	waitUntil(t, "the worker to run", func() bool { return workerAlive(t, pidfile) })
	if p := w.plan("start"); !p.Noop {
		t.Fatalf("start on a running service is not a no-op: %+v", p)
	}
	w.undo("start")
	if workerAlive(t, pidfile) {
		t.Fatal("undo of start left the worker running")
	}

	// Stop a running worker; undo starts it again.
	must(t, exec.Command(filepath.Join(w.new, "etc/init.d/shop-worker"), "start").Run())
	waitUntil(t, "the worker to run", func() bool { return workerAlive(t, pidfile) })
	w.run("stop")
	if workerAlive(t, pidfile) {
		t.Fatal("stop left it running")
	}
	w.undo("stop")
	waitUntil(t, "undo of stop to start it", func() bool { return workerAlive(t, pidfile) })

	// Reload signals the running process; undo has nothing to do.
	w.run("reload")
	waitUntil(t, "the reload to arrive", func() bool {
		b, _ := os.ReadFile(filepath.Join(run, "shop-worker.reloads"))
		return strings.Contains(string(b), "reload")
	})
	w.undo("reload")
	if !workerAlive(t, pidfile) || !strings.Contains(w.logs("reload"), "nothing to undo") {
		t.Fatalf("undo of reload: %s", w.logs("reload"))
	}
	old, _ := os.ReadFile(pidfile)
	w.run("restart")
	waitUntil(t, "a new worker", func() bool {
		b, _ := os.ReadFile(pidfile)
		return workerAlive(t, pidfile) && string(b) != string(old)
	})

	// Enable turns the K link into an S link; undo turns it back.
	before := snapshot(t, filepath.Join(w.new, "etc"))
	w.run("enable")
	if _, err := os.Lstat(filepath.Join(w.new, "etc/rc2.d/S01shop-worker")); err != nil {
		t.Fatal("enable did not make an S link")
	}
	if p := w.plan("disable"); p.Noop || p.Changes[0].After != "running, disabled" {
		t.Fatalf("disable plan: %+v", p)
	}
	w.undo("enable")
	sameTree(t, "rc links after undo", before, snapshot(t, filepath.Join(w.new, "etc")))
}
