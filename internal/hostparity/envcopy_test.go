package hostparity_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/decant-sh/decant/internal/steps"
)

func TestEnvCopy(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "", `  - name: prepare
    steps:
      - id: env-copy
        action: env.copy
        with:
          files: [/var/www/shop/.env, {from: /etc/shop/worker.env, to: /srv/worker/conf/worker.env}]
      - id: env-check
        check: env.parity
        with:
          files: [/var/www/shop/.env, {from: /etc/shop/worker.env, to: /srv/worker/conf/worker.env}]
`)
	const oldTargetSecret = "previous-target-secret-42"
	write(t, w.old, "/var/www/shop/.env", "APP_ENV=production\nAPP_KEY=base64:"+envSecret+"\nDB_PASSWORD=\"quoted pass 123\"\n", 0o640)
	if err := os.Chown(filepath.Join(w.old, "var/www/shop/.env"), 33, 33); err != nil {
		t.Fatal(err)
	}
	write(t, w.old, "/etc/shop/worker.env", "QUEUE_TOKEN=tok_abcdef123456\n", 0o600)
	write(t, w.new, "/var/www/shop/.env", "APP_ENV=staging\nAPP_KEY="+oldTargetSecret+"\nLEFTOVER=1\n", 0o644)
	before := snapshot(t, w.new)

	p := w.plan("env-copy")
	if p.Noop || len(p.Changes) != 2 {
		t.Fatalf("plan %+v", p)
	}
	c := p.Changes[0]
	for _, want := range []string{"adds DB_PASSWORD", "changes APP_ENV h:", "APP_KEY h:", "drops LEFTOVER", "0644 root:root → 0640 www-data:www-data"} {
		if !strings.Contains(c.After, want) {
			t.Errorf("plan change lacks %q: %+v", want, c)
		}
	}
	if !strings.Contains(p.Changes[1].Before, "absent") {
		t.Errorf("second file: %+v", p.Changes[1])
	}

	w.run("env-copy")
	if got := read(t, w.new, "/var/www/shop/.env"); got != read(t, w.old, "/var/www/shop/.env") {
		t.Fatalf("content not copied: %q", got)
	}
	st, _ := os.Stat(filepath.Join(w.new, "var/www/shop/.env"))
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 33 || sys.Gid != 33 {
		t.Fatalf("mode/owner %o %d:%d", st.Mode().Perm(), sys.Uid, sys.Gid)
	}
	if fs := w.check("env-check"); steps.Worst(fs) != steps.Pass {
		t.Fatalf("parity after copy:\n%s", findings(fs))
	}
	if p := w.plan("env-copy"); !p.Noop {
		t.Fatalf("second plan is not a no-op: %+v", p)
	}

	w.undo("env-copy")
	sameTree(t, "target after undo", before, snapshot(t, w.new))

	// Backups were 0600 under the state dir and are gone after undo; no
	// value ever reached the journal.
	j := w.journal()
	for _, v := range []string{envSecret, "quoted pass 123", "tok_abcdef123456", oldTargetSecret} {
		if strings.Contains(j, v) {
			t.Errorf("journal shows the value %q", v)
		}
	}
	left, _ := filepath.Glob(filepath.Join(w.rbPath+".decant", "env.copy-*"))
	if len(left) != 0 {
		t.Errorf("backups left after undo: %v", left)
	}
}
