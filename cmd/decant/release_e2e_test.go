package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What the release archives ship: version info, completions, man pages.
func TestVersionCompletionsMan(t *testing.T) {
	if r := run(t, "", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "decant ") || !strings.Contains(r.stdout, "commit") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := run(t, "", "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "decant") {
			t.Fatalf("completion %s: exit %d", sh, r.code)
		}
	}
	dir := t.TempDir()
	if r := run(t, "", "man", "--dir", dir); r.code != 0 {
		t.Fatalf("man: exit %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "decant-run.1"))
	if err != nil || !strings.Contains(string(b), ".TH \"DECANT\"") || !strings.Contains(string(b), "on-interrupted") {
		t.Fatalf("decant-run.1: %v\n%s", err, b)
	}
	if r := run(t, "", "runbook", "show", "lamp"); r.code != 0 || !strings.Contains(r.stdout, "mysql.copy") {
		t.Fatalf("runbook show lamp: exit %d", r.code)
	}
}
