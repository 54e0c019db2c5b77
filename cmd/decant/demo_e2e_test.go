package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// decant demo without a terminal rehearses the whole migration on its own
// lab, undoes it, stops every server and leaves the transcript behind.
func TestDemoPlain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	r := run(t, "", "demo", "--plain", "--dir", dir)
	if r.Code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	md, err := os.ReadFile(filepath.Join(dir, "transcript.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mysql.copy", "dns.switch", "files.sync", "Undo history"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	if !strings.Contains(r.Stdout, "transcript: "+filepath.Join(dir, "transcript.md")) {
		t.Errorf("demo did not say where the transcript went:\n%s", r.Stdout)
	}
	// Every step was undone: nothing is left on the new side but empty dirs.
	filepath.WalkDir(filepath.Join(dir, "new"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left on the new host after undo: %s", p)
		}
		return nil
	})
	// The secrets of the demo's env file and accounts are not in the journal.
	j, _ := os.ReadFile(filepath.Join(dir, "demo.yaml.decant", "journal.jsonl"))
	for _, s := range []string{"demo-db-password-123", "shop-demo-pass-456"} {
		if strings.Contains(string(j), s) || strings.Contains(string(md), s) {
			t.Errorf("secret %q leaked", s)
		}
	}
	// The servers are gone.
	var l struct {
		Source, Target struct{ PID int }
		SSH            struct{ PID int }
	}
	b, err := os.ReadFile(filepath.Join(dir, "lab", "lab.json"))
	if err == nil {
		json.Unmarshal(b, &l)
		for _, pid := range []int{l.Source.PID, l.Target.PID, l.SSH.PID} {
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				t.Errorf("pid %d still running after the demo", pid)
			}
		}
	}
}
