package main_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/decant-sh/decant/runbook"
)

// After the SSH link dies, retrying a step in the same process dials the
// host again instead of failing on the dead connection forever.
func TestRetryRedialsAfterLinkDrop(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "m")
	path, _ := runbookFor(t, theLab.SSH.KnownHostsFile, `  - name: p
    steps:
      - {id: first, shell: target, run: "true"}
      - {id: second, shell: target, run: "touch `+marker+`"}
`)
	rb, err := runbook.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := runbook.Open(rb, runbook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.Run(ctx, "first", nil); err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, pid := range childrenOf(theLab.SSH.PID) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		t.Fatal("no sshd child to kill")
	}
	// The first try may meet the dead link; the retry must get through.
	var last error
	for i := 0; i < 2; i++ {
		if last = e.Run(ctx, "second", nil); last == nil {
			break
		}
		t.Logf("attempt %d: %v", i+1, last)
	}
	if last != nil {
		t.Fatalf("retry after the link dropped: %v", last)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the step did not run on the target")
	}
}
