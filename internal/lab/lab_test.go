package lab

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	dir := t.TempDir() // long path: exercises the short socket dir fallback
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = l.Stop()
		}
	})

	for _, m := range []*MariaDB{l.Source, l.Target} {
		if len(m.Socket) >= 108 {
			t.Errorf("%s socket path too long: %s", m.Name, m.Socket)
		}
		if !strings.Contains(m.Version, "MariaDB") {
			t.Errorf("%s version %q", m.Name, m.Version)
		}
		for _, f := range []string{m.OptionFile, m.DebianCnf} {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
			}
		}
		db, err := l.RootDB(m)
		if err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRow("SELECT VERSION()").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != m.Version {
			t.Errorf("%s: version %q, lab.json says %q", m.Name, v, m.Version)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM mysql.user WHERE User='debian-sys-maint' AND Host='localhost'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		want := 0
		if m == l.Source {
			want = 1
		}
		if n != want {
			t.Errorf("%s: %d debian-sys-maint accounts, want %d", m.Name, n, want)
		}
		db.Close()
	}

	// debian.cnf works against the source over the socket, and reproduces
	// error 1045 on the target.
	for _, m := range []*MariaDB{l.Source, l.Target} {
		err := pingDebianCnf(t, m)
		if m == l.Source && err != nil {
			t.Errorf("source debian.cnf login: %v", err)
		}
		var me *mysql.MySQLError
		if m == l.Target && !(errors.As(err, &me) && me.Number == 1045) {
			t.Errorf("target debian.cnf login: got %v, want error 1045", err)
		}
	}

	// The password never reaches lab.json, but Load recovers it.
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(l.Source.RootPassword)) {
		t.Error("lab.json contains the root password")
	}
	l2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Target.RootPassword != l.Target.RootPassword || !l2.Running() {
		t.Errorf("Load: password or running state not recovered")
	}

	// SSH with known_hosts verification, exec and a tunnel to the target.
	khCB, err := knownhosts.New(l.SSH.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(l.SSH.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", l.SSH.Addr, &ssh.ClientConfig{
		User: l.SSH.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: khCB, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("id -un")
	if err != nil || strings.TrimSpace(string(out)) != l.SSH.User {
		t.Errorf("id -un: %q, %v", out, err)
	}
	tc, err := c.Dial("tcp", l.Target.Addr)
	if err != nil {
		t.Fatalf("direct-tcpip to target: %v", err)
	}
	greeting := make([]byte, 16)
	if _, err := tc.Read(greeting); err != nil {
		t.Errorf("read MariaDB greeting through tunnel: %v", err)
	}
	tc.Close()
	// Leave a command running so Stop must take down sshd's children too.
	sleeper, _ := c.NewSession()
	if err := sleeper.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	kids := descendants(l.SSH.PID)
	if len(kids) == 0 {
		t.Error("expected sshd children for the open connection")
	}

	pids := append([]int{l.Source.PID, l.Target.PID, l.SSH.PID}, kids...)
	t0 := time.Now()
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("stop took %s", time.Since(t0).Round(time.Millisecond))
	c.Close()
	for _, pid := range pids {
		if pidAlive(pid) {
			t.Errorf("pid %d still alive after Stop", pid)
		}
	}
	if l.Running() || l2.Running() {
		t.Error("Running() after Stop")
	}
	if err := l2.Stop(); err != nil { // idempotent, also from a loaded copy
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(l.Source.DataDir); err != nil {
		t.Errorf("Stop removed the data dir: %v", err)
	}
}

func pingDebianCnf(t *testing.T, m *MariaDB) error {
	t.Helper()
	b, err := os.ReadFile(m.DebianCnf)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "unix"
	inClient := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			inClient = line == "[client]"
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !inClient {
			continue
		}
		switch strings.TrimSpace(k) {
		case "user":
			cfg.User = strings.TrimSpace(v)
		case "password":
			cfg.Passwd = strings.TrimSpace(v)
		case "socket":
			cfg.Addr = strings.TrimSpace(v)
		}
	}
	if cfg.User != "debian-sys-maint" || cfg.Addr != m.Socket || cfg.Passwd == "" {
		t.Fatalf("%s: unexpected debian.cnf:\n%s", m.Name, b)
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	return db.Ping()
}

func TestStartFailsCleanly(t *testing.T) {
	// A file where Dir should be: Start must fail with one clear error.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: f})
	if err == nil || !strings.Contains(err.Error(), "lab:") {
		t.Fatalf("got %v", err)
	}
}

func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	dir, err := os.MkdirTemp("", "dlcli")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var out bytes.Buffer
	if code := Main([]string{"up", "--dir", dir, "--no-ssh"}, &out); code != 0 {
		t.Fatalf("up: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "mariadb --defaults-file=") {
		t.Errorf("up output: %s", out.String())
	}
	out.Reset()
	if code := Main([]string{"status", "--dir", dir}, &out); code != 0 {
		t.Errorf("status: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := Main([]string{"down", "--dir", dir}, &out); code != 0 {
		t.Errorf("down: exit %d: %s", code, out.String())
	}
	if code := Main([]string{"status", "--dir", dir}, &out); code != 1 {
		t.Errorf("status after down: exit %d: %s", code, out.String())
	}
}
