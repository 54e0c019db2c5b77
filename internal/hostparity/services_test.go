package hostparity_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/hostparity"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/steps"
)

func TestServicesParity(t *testing.T) {
	t.Parallel()
	// Listening sockets and processes are the machine's, shared by both
	// lab hosts and by other tests: only the trees differ here.
	w := newWorld(t, "", `  - name: preflight
    steps:
      - id: svc
        check: services.parity
        with: {no_listen: true}
`)
	write(t, w.old, "/etc/systemd/system/shop-queue.service", "[Service]\nExecStart=/usr/bin/php artisan queue:work\n", 0o644)
	write(t, w.old, "/etc/supervisor/conf.d/shop.conf", "[program:shop-mailer]\ncommand=/usr/bin/php artisan mail:work\n", 0o644)
	write(t, w.old, "/etc/init.d/shop-worker", "#!/bin/sh\n", 0o755)
	if err := os.Symlink("../init.d/shop-worker", filepath.Join(w.old, "etc/rc2.d/S01shop-worker")); err != nil {
		if err := os.MkdirAll(filepath.Join(w.old, "etc/rc2.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../init.d/shop-worker", filepath.Join(w.old, "etc/rc2.d/S01shop-worker")); err != nil {
			t.Fatal(err)
		}
	}
	fs := w.check("svc")
	for _, want := range [][]string{
		{"1 of 1 local unit files", "shop-queue.service"},
		{"1 of 1 supervisor programs", "shop-mailer"},
		{"1 of 1 boot-time init services", "shop-worker"},
	} {
		if !has(fs, steps.Fail, want...) {
			t.Errorf("no failure %q:\n%s", want, findings(fs))
		}
	}
	// Apache and nginx are not on this machine: absent on both is a pass.
	// PHP (php-cli, from scripts/deps) is: same version and extensions.
	if !has(fs, steps.Pass, "Apache is installed on neither host") || !has(fs, steps.Pass, "nginx is installed on neither host") {
		t.Errorf("absent tools:\n%s", findings(fs))
	}
	if !has(fs, steps.Pass, "PHP 8.") || !has(fs, steps.Pass, "PHP extensions of source are on target") {
		t.Errorf("php:\n%s", findings(fs))
	}
	write(t, w.new, "/etc/systemd/system/shop-queue.service", "x", 0o644)
	write(t, w.new, "/etc/supervisor/conf.d/shop.conf", read(t, w.old, "/etc/supervisor/conf.d/shop.conf"), 0o644)
	os.MkdirAll(filepath.Join(w.new, "etc/rc3.d"), 0o755)
	os.Symlink("../init.d/shop-worker", filepath.Join(w.new, "etc/rc3.d/S02shop-worker"))
	fs = w.check("svc")
	if steps.Worst(fs) != steps.Pass {
		t.Fatalf("after catching up:\n%s", findings(fs))
	}
	// The target's PHP binary is another one, which does not exist there:
	// PHP present only on the source fails.
	w.reopen("", `  - name: preflight
    steps:
      - id: svc
        check: services.parity
        with: {no_listen: true, php: {target: /usr/bin/php-not-installed}}
`)
	if fs := w.check("svc"); !has(fs, steps.Fail, "PHP 8.", "installed on source but not on target") {
		t.Fatalf("php only on the source:\n%s", findings(fs))
	}
}

// The real ss and ps output of this machine parse: a listener this test
// opens is found under this process's name, and a queue runner started
// with a telling argv is found by the default patterns.
func TestInventoryOfThisMachine(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx := context.Background()
	h := hosts.Local("source")
	runner := "php /var/www/shop/artisan queue:work --sleep=3"
	// bash execs sleep under that argv: the pid we started is the runner.
	cmd := exec.Command("bash", "-c", `exec -a "`+runner+`" sleep 60`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var inv *hostparity.Inventory
	for i := 0; i < 50; i++ {
		inv, err = hostparity.CollectInventory(ctx, h, func(p string) string { return p }, hostparity.InventoryParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Runners) > 0 {
			break
		}
	}
	comm := filepath.Base(os.Args[0])
	if len(comm) > 15 {
		comm = comm[:15]
	}
	found := false
	for name, addrs := range inv.Listen {
		for _, a := range addrs {
			if a == ln.Addr().String() && name == comm {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("listener %s of %s not found in %v", ln.Addr(), comm, inv.Listen)
	}
	if !strings.Contains(strings.Join(inv.Runners, ","), "artisan queue:work") {
		t.Errorf("queue runner not found: %v", inv.Runners)
	}
}
