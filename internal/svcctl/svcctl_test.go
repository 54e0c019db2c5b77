package svcctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidAlive(pidfile string) bool {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && syscall.Kill(pid, 0) == nil
}

// The init-script path for real: an LSB script starting a background
// process, driven through start, reload, stop, enable and disable.
func TestInitScript(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	initDir, rcDir, run := filepath.Join(root, "etc/init.d"), filepath.Join(root, "etc"), filepath.Join(root, "run")
	os.MkdirAll(initDir, 0o755)
	os.MkdirAll(filepath.Join(rcDir, "rc2.d"), 0o755)
	os.WriteFile(filepath.Join(initDir, "labworker"), []byte(LabScript("labworker", run)), 0o755)
	s := &Service{Host: hosts.Local("target"), Name: "labworker", InitDir: initDir, RCDir: rcDir}
	t.Cleanup(func() { _ = s.Do(context.Background(), "stop", &bytes.Buffer{}) })
	why, err := s.Detect(ctx)
	if err != nil || s.Manager != Init {
		t.Fatalf("detect: %v %v %s", s.Manager, err, why)
	}
	st, err := s.State(ctx)
	if err != nil || st.Running || st.Enabled != "disabled" {
		t.Fatalf("initial state %+v %v", st, err)
	}
	var out bytes.Buffer
	if err := s.Do(ctx, "start", &out); err != nil {
		t.Fatalf("start: %v %s", err, out.String())
	}
	pidfile := filepath.Join(run, "labworker.pid")
	waitFor(t, "worker to run", func() bool { return pidAlive(pidfile) })
	if st, _ := s.State(ctx); !st.Running || !Satisfied("start", st) {
		t.Fatalf("after start %+v", st)
	}
	if err := s.Do(ctx, "reload", &out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload to be seen", func() bool {
		b, _ := os.ReadFile(filepath.Join(run, "labworker.reloads"))
		return strings.Contains(string(b), "reload")
	})
	if err := s.Do(ctx, "stop", &out); err != nil {
		t.Fatal(err)
	}
	if pidAlive(pidfile) {
		t.Fatal("still running after stop")
	}
	if st, _ := s.State(ctx); st.Running {
		t.Fatalf("after stop %+v", st)
	}
	if err := s.Do(ctx, "enable", &out); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(rcDir, "rc2.d/S01labworker")); err != nil || !strings.HasSuffix(l, "init.d/labworker") {
		t.Fatalf("enable link: %q %v", l, err)
	}
	if st, _ := s.State(ctx); st.Enabled != "enabled" {
		t.Fatalf("after enable %+v", st)
	}
	if err := s.Do(ctx, "disable", &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rcDir, "rc2.d/K01labworker")); err != nil {
		t.Fatal("disable did not turn S into K")
	}
	if st, _ := s.State(ctx); st.Enabled != "disabled" {
		t.Fatalf("after disable %+v", st)
	}
	if err := s.Do(ctx, "enable", &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(rcDir, "rc2.d/S01labworker")); err != nil {
		t.Fatal("enable did not turn K back into S")
	}
	missing := &Service{Host: hosts.Local("target"), Name: "nope", InitDir: initDir}
	if _, err := missing.Detect(ctx); err == nil || !strings.Contains(err.Error(), "no service") {
		t.Fatalf("missing service: %v", err)
	}
}
