package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What the release archives ship: version info, completions, man pages.
func TestVersionCompletionsMan(t *testing.T) {
	if r := run(t, "", "version"); r.Code != 0 || !strings.HasPrefix(r.Stdout, "decant ") || !strings.Contains(r.Stdout, "commit") {
		t.Fatalf("version: %d %q", r.Code, r.Stdout)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := run(t, "", "completion", sh); r.Code != 0 || !strings.Contains(r.Stdout, "decant") {
			t.Fatalf("completion %s: exit %d", sh, r.Code)
		}
	}
	dir := t.TempDir()
	if r := run(t, "", "man", "--dir", dir); r.Code != 0 {
		t.Fatalf("man: exit %d %s", r.Code, r.Stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "decant-run.1"))
	if err != nil || !strings.Contains(string(b), ".TH \"DECANT\"") || !strings.Contains(string(b), "on-interrupted") {
		t.Fatalf("decant-run.1: %v\n%s", err, b)
	}
	if r := run(t, "", "runbook", "show", "lamp"); r.Code != 0 || !strings.Contains(r.Stdout, "mysql.copy") {
		t.Fatalf("runbook show lamp: exit %d", r.Code)
	}
}
