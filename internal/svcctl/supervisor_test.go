package svcctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/hosts"
)

// The supervisor path for real: a private supervisord (Debian's
// supervisor package, see scripts/deps) with its own socket and one
// program, driven through supervisorctl -c.
func TestSupervisor(t *testing.T) {
	if _, err := exec.LookPath("supervisord"); err != nil {
		t.Fatal("supervisord is not installed: run scripts/deps")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "supervisord.conf")
	prog := fmt.Sprintf(`/bin/sh -c 'trap "echo reload >> %s/reloads" HUP; while :; do sleep 0.2 & wait $!; done'`, dir)
	cfg := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock
[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock
[program:shop-queue]
command=%[2]s
autostart=false
startsecs=0
`, dir, prog)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := exec.Command("supervisord", "-c", conf)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.Process.Kill()
		_ = d.Wait()
	})
	ctx := context.Background()
	s := &Service{Host: hosts.Local("target"), Name: "shop-queue", Supervisorctl: "supervisorctl -c " + conf, InitDir: filepath.Join(dir, "none")}
	waitFor(t, "supervisord to answer", func() bool {
		_, err := s.Detect(ctx)
		return err == nil
	})
	if s.Manager != Supervisor {
		t.Fatalf("detected %q", s.Manager)
	}
	st, err := s.State(ctx)
	if err != nil || st.Running || st.Enabled != "" {
		t.Fatalf("initial %+v %v", st, err)
	}
	var out bytes.Buffer
	if err := s.Do(ctx, "start", &out); err != nil {
		t.Fatalf("start: %v %s", err, out.String())
	}
	waitFor(t, "RUNNING", func() bool { st, _ := s.State(ctx); return st.Running })
	if err := s.Do(ctx, "reload", &out); err != nil {
		t.Fatalf("reload: %v %s", err, out.String())
	}
	waitFor(t, "the HUP", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "reloads"))
		return strings.Contains(string(b), "reload")
	})
	if err := s.Do(ctx, "stop", &out); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.State(ctx); st.Running {
		t.Fatalf("after stop %+v", st)
	}
	if _, err := s.Command("enable"); err == nil || !strings.Contains(err.Error(), "autostart") {
		t.Fatalf("enable on supervisor: %v", err)
	}
}
