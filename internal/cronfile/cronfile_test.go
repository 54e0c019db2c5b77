package cronfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/hosts"
)

func TestParse(t *testing.T) {
	src := "MAILTO=ops@example.com\n# nightly\n*/5  *\t* * * php   /var/www/shop/artisan schedule:run >> /var/log/shop/cron.log 2>&1\n@daily /usr/local/bin/backup.sh\n\nbroken line\n"
	ls := Parse(src, false)
	kinds := []LineKind{}
	for _, l := range ls {
		kinds = append(kinds, l.Kind)
	}
	if !reflect.DeepEqual(kinds, []LineKind{Env, Comment, Entry, Entry, Blank, Bad}) {
		t.Fatalf("kinds %v", kinds)
	}
	e := ls[2]
	if e.Schedule != "*/5 * * * *" || e.Command != "php   /var/www/shop/artisan schedule:run >> /var/log/shop/cron.log 2>&1" {
		t.Fatalf("%+v", e)
	}
	if e.Key() != "*/5 * * * * php /var/www/shop/artisan schedule:run >> /var/log/shop/cron.log 2>&1" {
		t.Fatalf("key %q", e.Key())
	}
	sys := Parse("17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n@reboot www-data /opt/worker start\n", true)
	if sys[0].User != "root" || sys[0].Command != "cd / && run-parts --report /etc/cron.hourly" || sys[1].User != "www-data" || sys[1].Schedule != "@reboot" {
		t.Fatalf("%+v", sys)
	}
}

func TestCommandPaths(t *testing.T) {
	got := CommandPaths(`cd /var/www/shop && FOO=/etc/shop.conf /usr/bin/php artisan --config=/etc/x.ini "/opt/my app/run" >>/var/log/shop/cron.log 2>/dev/null; echo % /not/a/path`)
	want := []PathRef{{"/var/www/shop", false}, {"/etc/shop.conf", false}, {"/usr/bin/php", false}, {"/etc/x.ini", false},
		{"/opt/my app/run", false}, {"/var/log/shop/cron.log", true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	got = CommandPaths(`/usr/local/bin/job > /tmp/out.log 2>&1`)
	if !reflect.DeepEqual(got, []PathRef{{"/usr/local/bin/job", false}, {"/tmp/out.log", true}}) {
		t.Fatalf("%v", got)
	}
}

func TestMergeAndDisable(t *testing.T) {
	dst := "# target's own\n0 1 * * * /usr/bin/true\n"
	src := "PATH=/usr/bin:/bin\n0 1 * * *   /usr/bin/true\n*/5 * * * * /opt/job\n"
	out, n := Merge(dst, src, false, "# decant: from source")
	if n != 1 || out != dst+"# decant: from source\nPATH=/usr/bin:/bin\n*/5 * * * * /opt/job\n"+BlockEnd+"\n" {
		t.Fatalf("n=%d\n%s", n, out)
	}
	again, n := Merge(out, src, false, "# decant: from source")
	if n != 0 || again != out {
		t.Fatal("merge is not idempotent")
	}
	dis, n := Disable(src, false, map[string]bool{"*/5 * * * * /opt/job": true})
	if n != 1 || !strings.Contains(dis, DisabledPrefix+"*/5 * * * * /opt/job") || len(Entries(Parse(dis, false))) != 1 {
		t.Fatalf("%d %q", n, dis)
	}
}

// The spool mode writes a real spool file that the real crontab binary
// accepts, reads it back without the header, and lists and removes it.
func TestTabSpool(t *testing.T) {
	ctx := context.Background()
	spool := filepath.Join(t.TempDir(), "crontabs")
	tab := &Tab{Host: hosts.Local("target"), Spool: spool}
	if _, ok, err := tab.Read(ctx, "root"); ok || err != nil {
		t.Fatalf("read missing: %v %v", ok, err)
	}
	content := "*/5 * * * * /opt/job\n"
	if err := tab.Write(ctx, "root", content); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(spool, "root"))
	if !strings.HasPrefix(string(raw), "# DO NOT EDIT") {
		t.Fatalf("spool file %q", raw)
	}
	got, ok, err := tab.Read(ctx, "root")
	if err != nil || !ok || got != content {
		t.Fatalf("read back %q %v %v", got, ok, err)
	}
	if err := tab.Write(ctx, "root", "bad line\n"); err == nil {
		t.Fatal("crontab -n accepted a bad line")
	}
	users, err := tab.Users(ctx)
	if err != nil || !reflect.DeepEqual(users, []string{"root"}) {
		t.Fatalf("users %v %v", users, err)
	}
	if err := tab.Remove(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tab.Read(ctx, "root"); ok {
		t.Fatal("still there")
	}
}

// The command mode drives the real crontab binary; a wrapper runs it in a
// private mount namespace with a temporary spool bind-mounted over the real
// one, so the machine's own crontabs are never touched.
func TestTabCommand(t *testing.T) {
	ctx := context.Background()
	cmd, spool := NamespacedCrontab(t)
	tab := &Tab{Host: hosts.Local("target"), Cmd: cmd}
	if _, ok, err := tab.Read(ctx, "root"); ok || err != nil {
		t.Fatalf("read missing: %v %v", ok, err)
	}
	if err := tab.Write(ctx, "root", "0 3 * * * /opt/nightly"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(spool, "root")); err != nil || !strings.Contains(string(b), "/opt/nightly") {
		t.Fatalf("spool: %q %v", b, err)
	}
	got, ok, err := tab.Read(ctx, "root")
	if err != nil || !ok || got != "0 3 * * * /opt/nightly\n" {
		t.Fatalf("read back %q %v %v", got, ok, err)
	}
	users, err := tab.Users(ctx)
	if err != nil || !reflect.DeepEqual(users, []string{"root"}) {
		t.Fatalf("users %v %v", users, err)
	}
	if err := tab.Write(ctx, "root", "nonsense\n"); err == nil {
		t.Fatal("crontab accepted nonsense")
	}
	if err := tab.Remove(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Remove(ctx, "root"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if out, _ := hosts.Local("x").Output(ctx, "crontab -l 2>&1"); !strings.Contains(string(out), "no crontab") {
		t.Logf("note: the machine's root crontab: %s", out)
	}
}

// NamespacedCrontab writes a crontab wrapper for tests; see TestTabCommand.
func NamespacedCrontab(t *testing.T) (cmd, spool string) {
	t.Helper()
	dir := t.TempDir()
	spool = filepath.Join(dir, "crontabs")
	if err := os.Mkdir(spool, 0o1730); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(dir, "crontab-ns")
	script := fmt.Sprintf("#!/bin/sh\nexec unshare -m sh -c 'mount --bind %s %s && exec crontab \"$@\"' crontab \"$@\"\n", spool, DefaultSpool)
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w, spool
}
