package hostparity_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/cronfile"
	"github.com/decant-sh/decant/internal/svcctl"
	"github.com/decant-sh/decant/runbook"
)

// The done-when scenario of the host-side actions, on the lab: sync the
// docroot, install crontabs and env files, start the worker, smoke-test the
// new web server; then undo everything and find the target exactly as it
// was, with no secret in the journal or the transcript.
func TestMigrationHostSide(t *testing.T) {
	t.Parallel()
	w := newTrees(t)
	l := startWeb(t, w)
	ends := strings.Split(webWith(l), "|")
	w.reopen(webTop(l), fmt.Sprintf(`  - name: prepare
    steps:
      - {id: env, action: env.copy, with: {files: [/var/www/shop/.env]}}
      - {id: cron, action: cron.install, with: {users: [www-data], cron_d: [/etc/cron.d/shop]}}
      - {id: sync, action: files.sync, with: {paths: [/var/www/shop], exclude: [.env]}}
      - {id: worker, action: service.ctl, with: {service: shop-worker, do: start}}
  - name: verify
    steps:
      - id: smoke
        action: http.smoke
        with:
          urls: [https://shop.example.test/, https://shop.example.test/about.html, http://www.shop.example.test/]
          old: %s
          new: %s
          ca_file: %q
`, ends[0], ends[1], l.CA.File))
	oldSite(t, w.old)
	write(t, w.old, "/var/www/shop/index.html", "<title>Shop</title>welcome", 0o644)
	write(t, w.old, "/var/www/shop/about.html", "<title>About</title>", 0o644)
	write(t, w.old, "/var/www/shop/.env", "APP_KEY=base64:"+envSecret+"\nDB_PASSWORD=MigrationSecret77\n", 0o640)
	write(t, w.old, "/var/spool/cron/crontabs/www-data", "*/5 * * * * php /var/www/shop/artisan schedule:run --token=CronToken55\n", 0o600)
	write(t, w.old, "/etc/cron.d/shop", "0 1 * * * root /var/www/shop/bin/nightly\n", 0o644)
	l.Old.Redirect("www.shop.example.test", "/", "https://shop.example.test/", http.StatusMovedPermanently)
	l.New.Redirect("www.shop.example.test", "/", "https://shop.example.test/", http.StatusMovedPermanently)
	// The worker's pid and heartbeat files are its own doing: outside the tree.
	run := filepath.Join(w.dir, "run")
	write(t, w.new, "/etc/init.d/shop-worker", svcctl.LabScript("shop-worker", run), 0o755)
	t.Cleanup(func() { _ = exec.Command(filepath.Join(w.new, "etc/init.d/shop-worker"), "stop").Run() })
	// The new host has its own crontab line and an old index page.
	write(t, w.new, "/var/spool/cron/crontabs/www-data", "0 0 * * * /usr/local/bin/target-job\n", 0o600)
	write(t, w.new, "/var/www/shop/index.html", "<title>Welcome to nginx!</title>", 0o644)
	before := snapshot(t, w.new)

	// Before the sync the smoke test fails and says why.
	if err := w.e.Run(w.ctx(), "smoke", nil); err == nil || !strings.Contains(w.logs("smoke"), "title differs") {
		t.Fatalf("smoke test before sync: %v\n%s", err, w.logs("smoke"))
	}
	for _, id := range []string{"env", "cron", "sync", "worker", "smoke"} {
		w.run(id)
	}
	if !strings.Contains(w.logs("smoke"), "3 same, 0 differ in body only, 0 failed") {
		t.Fatalf("smoke log:\n%s", w.logs("smoke"))
	}
	// .env came through env.copy, which keeps content, mode and owner but
	// not the time.
	if d := rsyncDelta(t, w); d != ".f..t...... .env" && d != "" {
		t.Fatalf("rsync --checksum after the sync:\n%s", d)
	}
	if read(t, w.new, "/var/www/shop/.env") != read(t, w.old, "/var/www/shop/.env") {
		t.Fatal("env file")
	}
	if !strings.Contains(cronfile.StripHeader(read(t, w.new, "/var/spool/cron/crontabs/www-data")), "schedule:run") {
		t.Fatal("crontab")
	}
	waitUntil(t, "the worker", func() bool { return workerAlive(t, filepath.Join(run, "shop-worker.pid")) })

	// Undo in reverse order, as `decant undo` does.
	undoable := w.e.Undoable()
	if strings.Join(undoable, ",") != "smoke,worker,sync,cron,env" {
		t.Fatalf("undo order %v", undoable)
	}
	for _, id := range undoable {
		w.undo(id)
	}
	if workerAlive(t, filepath.Join(run, "shop-worker.pid")) {
		t.Fatal("worker still running after undo")
	}
	sameTree(t, "target after undoing the migration", before, snapshot(t, w.new))

	// Secrets: none in the journal, none in the transcript.
	evs, err := runbook.ReadJournal(w.rbPath)
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := runbook.BuildTranscript(w.e.RB, evs, nil).WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{envSecret, "MigrationSecret77", "CronToken55"} {
		if strings.Contains(w.journal(), s) || strings.Contains(md.String(), s) {
			t.Errorf("secret %q leaked into the journal or transcript", s)
		}
	}
}
