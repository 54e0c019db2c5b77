package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/labtest"
)

// decant check exits 2 while the lab's target lacks the debian-sys-maint
// grant and 0 after the offered fix ran; undo brings the failure back.
func TestDebianSysMaintCheckFixUndo(t *testing.T) {
	src := fmt.Sprintf(`name: debian-sys-maint e2e
hosts:
  source: {address: local}
  target:
    address: %q
    key: %q
    known_hosts: %q
mysql:
  source: {host: source, address: %q, options: %q}
  target: {host: target, address: %q, options: %q, debian_cnf: %q}
phases:
  - name: preflight
    steps:
      - check: mysql.debian_sys_maint
      - check: mysql.version
      - check: mysql.triggers
      - action: mysql.fix_debian_sys_maint
`, labtest.SSHHost(theLab), theLab.SSH.ClientKeyFile, theLab.SSH.KnownHostsFile,
		theLab.Source.Addr, theLab.Source.OptionFile, theLab.Target.Addr, theLab.Target.OptionFile, theLab.Target.DebianCnf)
	rb := filepath.Join(t.TempDir(), "rb.yaml")
	os.WriteFile(rb, []byte(src), 0o600)

	r := run(t, "", "check", rb)
	if r.Code != 2 || !strings.Contains(r.Stdout, "1045") || !strings.Contains(r.Stdout, "fix action: mysql.fix_debian_sys_maint") {
		t.Fatalf("check before the fix: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// A failing check blocks the actions of its phase, except the fix it
	// offers; once the fix ran, the check runs again and passes.
	r = run(t, "", "run", "--plain", "--yes", rb)
	if r.Code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "check", rb)
	if r.Code != 0 || !strings.Contains(r.Stdout, "allows several triggers per table and event") {
		t.Fatalf("check after the fix: exit %d, want 0\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	pw := password(t, theLab.Target.DebianCnf)
	j, _ := os.ReadFile(rb + ".decant/journal.jsonl")
	if strings.Contains(string(j), pw) {
		t.Fatal("debian.cnf password in the journal")
	}
	r = run(t, "", "undo", "--yes", rb)
	if r.Code != 0 {
		t.Fatalf("undo: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "check", rb)
	if r.Code != 2 {
		t.Fatalf("check after undo: exit %d, want 2\n%s", r.Code, r.Stdout)
	}
}
