package checks_test

import (
	"os"
	"strings"
	"testing"

	"github.com/decant-sh/decant/runbook"
)

// The runbook in docs/dns-shell.md must stay valid as the parser evolves.
func TestDNSShellDocRunbookParses(t *testing.T) {
	doc, err := os.ReadFile("../docs/dns-shell.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("no yaml block in docs/dns-shell.md")
	}
	rb, err := runbook.Parse("dns-shell.md", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	sw := rb.Step("switch-dns")
	if sw == nil || sw.Undo == "" || sw.ConfirmText != "example.com" {
		t.Fatalf("switch-dns step: %+v", sw)
	}
	if low := rb.Step("lower-ttl"); low == nil || low.Undo == "" {
		t.Fatalf("lower-ttl step: %+v", low)
	}
}
