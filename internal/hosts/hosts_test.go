package hosts_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/crypto/ssh"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
)

// theLab is one real lab (two MariaDBs and an sshd) shared by the package.
var theLab *lab.Lab

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dlh") // short: unix socket paths
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Logf: func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		return 1
	}
	defer l.RemoveAll()
	theLab = l
	return m.Run()
}

// emptySSHConfig isolates tests from the machine's ~/.ssh/config.
func emptySSHConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func labConfig(t *testing.T) hosts.SSHConfig {
	s := theLab.SSH
	return hosts.SSHConfig{
		Name:          "target",
		Address:       fmt.Sprintf("ssh://%s@127.0.0.1:%d", s.User, s.Port),
		KeyFile:       s.ClientKeyFile,
		KnownHosts:    s.KnownHostsFile,
		SSHConfigFile: emptySSHConfig(t),
	}
}

func dial(t *testing.T, c hosts.SSHConfig) *hosts.SSH {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := hosts.DialSSH(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// bothHosts runs f against the local host and the lab's sshd, which must
// behave the same.
func bothHosts(t *testing.T, f func(t *testing.T, h hosts.Host)) {
	t.Run("local", func(t *testing.T) { f(t, hosts.Local("source")) })
	t.Run("ssh", func(t *testing.T) { f(t, dial(t, labConfig(t))) })
}

func TestRun(t *testing.T) {
	bothHosts(t, func(t *testing.T, h hosts.Host) {
		ctx := context.Background()
		var out, errb bytes.Buffer
		err := h.Run(ctx, "echo out; echo oops >&2; exit 3", nil, &out, &errb)
		var ee *hosts.ExitError
		if !errors.As(err, &ee) || ee.Code != 3 {
			t.Fatalf("want ExitError code 3, got %#v", err)
		}
		if out.String() != "out\n" || errb.String() != "oops\n" || !strings.Contains(ee.Stderr, "oops") {
			t.Errorf("stdout %q stderr %q ExitError.Stderr %q", out.String(), errb.String(), ee.Stderr)
		}
		if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") {
			t.Errorf("error text: %v", err)
		}

		out.Reset()
		if err := h.Run(ctx, "tr a-z A-Z", strings.NewReader("secret stdin"), &out, nil); err != nil {
			t.Fatal(err)
		}
		if out.String() != "SECRET STDIN" {
			t.Errorf("stdin round trip: %q", out.String())
		}
		// stdin never appears in errors.
		err = h.Run(ctx, "cat >/dev/null; exit 1", strings.NewReader("hunter2"), nil, nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks stdin or is nil: %v", err)
		}

		tricky := `it's "$HOME" \ $(id) ; *`
		got, err := h.Output(ctx, "printf %s "+hosts.Quote(tricky))
		if err != nil || string(got) != tricky {
			t.Errorf("Quote round trip: %q, %v", got, err)
		}

		_, err = h.Output(ctx, "ls /nonexistent-decant")
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), "No such file") {
			t.Errorf("Output error should carry stderr: %v", err)
		}
	})
}

func TestFiles(t *testing.T) {
	bothHosts(t, func(t *testing.T, h hosts.Host) {
		ctx := context.Background()
		dir := t.TempDir()
		p := filepath.Join(dir, "my.cnf")
		data := []byte("[client]\npassword=s3cret\n")
		if err := h.WriteFile(ctx, p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := h.ReadFile(ctx, p)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile: %q, %v", got, err)
		}
		fi, err := h.Stat(ctx, p)
		if err != nil || !fi.Exists || fi.Mode != 0o600 || fi.Size != int64(len(data)) || fi.UID != os.Getuid() {
			t.Errorf("Stat: %+v, %v", fi, err)
		}
		// Replace with a wider mode; read-only must work too.
		if err := h.WriteFile(ctx, p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		if fi, _ := h.Stat(ctx, p); fi.Mode != 0o640 || fi.Size != 1 {
			t.Errorf("after rewrite: %+v", fi)
		}
		ro := filepath.Join(dir, "ro")
		if err := h.WriteFile(ctx, ro, []byte("ro"), 0o400); err != nil {
			t.Fatal(err)
		}
		if fi, _ := h.Stat(ctx, ro); fi.Mode != 0o400 {
			t.Errorf("read-only file: %+v", fi)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "decant-tmp") {
				t.Errorf("temp file left behind: %s", e.Name())
			}
		}
		if fi, _ := h.Stat(ctx, dir); !fi.Mode.IsDir() {
			t.Errorf("dir mode %v", fi.Mode)
		}

		_, err = h.ReadFile(ctx, filepath.Join(dir, "missing"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing file: %v", err)
		}
		fi, err = h.Stat(ctx, filepath.Join(dir, "missing"))
		if err != nil || fi.Exists {
			t.Errorf("Stat missing: %+v, %v", fi, err)
		}
		err = h.WriteFile(ctx, filepath.Join(dir, "nodir", "f"), data, 0o600)
		if !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("write into missing dir: %v", err)
		}
	})
}

func TestTunnelToMariaDB(t *testing.T) {
	h := dial(t, labConfig(t))
	mysql.RegisterDialContext("decant-test-target", func(ctx context.Context, addr string) (net.Conn, error) {
		return h.DialContext(ctx, "tcp", addr)
	})
	cfg := mysql.NewConfig()
	cfg.User = "root"
	cfg.Passwd = theLab.Target.RootPassword
	cfg.Net = "decant-test-target"
	cfg.Addr = theLab.Target.Addr // dialed by sshd on the "remote" side
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT VERSION()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != theLab.Target.Version {
		t.Errorf("version through tunnel %q, want %q", v, theLab.Target.Version)
	}
	// Several pooled connections over the one SSH connection.
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int
			if err := db.QueryRow("SELECT SLEEP(0.1) + 1").Scan(&n); err != nil || n != 1 {
				t.Errorf("parallel query: %d, %v", n, err)
			}
		}()
	}
	wg.Wait()
}

func labHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(theLab.SSH.HostPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyMismatch(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := hosts.AcceptHostKey(kh, theLab.SSH.Addr, other); err != nil {
		t.Fatal(err)
	}
	c := labConfig(t)
	c.KnownHosts = kh
	_, err := hosts.DialSSH(context.Background(), c)
	var he *hosts.HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("want *HostKeyError, got %v", err)
	}
	got, known := ssh.FingerprintSHA256(labHostKey(t)), ssh.FingerprintSHA256(other)
	if he.Unknown || he.Fingerprint != got || len(he.Want) != 1 || !strings.Contains(he.Want[0], known) {
		t.Errorf("HostKeyError %+v", he)
	}
	msg := err.Error()
	for _, s := range []string{got, known, "man-in-the-middle", "ssh-keygen -R '[127.0.0.1]:", kh} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q: %s", s, msg)
		}
	}
	t.Log(msg)
}

func TestHostKeyUnknownThenAccept(t *testing.T) {
	for _, name := range []string{"empty", "missing"} {
		t.Run(name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), ".ssh", "known_hosts")
			if name == "empty" {
				os.MkdirAll(filepath.Dir(kh), 0o700)
				if err := os.WriteFile(kh, []byte("# nothing\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := labConfig(t)
			c.KnownHosts = kh
			_, err := hosts.DialSSH(context.Background(), c)
			var he *hosts.HostKeyError
			if !errors.As(err, &he) || !he.Unknown {
				t.Fatalf("want unknown HostKeyError, got %v", err)
			}
			if he.Fingerprint != ssh.FingerprintSHA256(labHostKey(t)) || he.KeyType != ssh.KeyAlgoED25519 {
				t.Errorf("HostKeyError %+v", he)
			}
			if !strings.Contains(err.Error(), "is not in "+kh) {
				t.Errorf("message: %v", err)
			}
			if err := hosts.AcceptHostKey(kh, theLab.SSH.Addr, he.Key); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(kh); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("known_hosts mode: %v %v", st.Mode(), err)
			}
			h := dial(t, c)
			if out, err := h.Output(context.Background(), "echo ok"); err != nil || string(out) != "ok\n" {
				t.Errorf("after accept: %q %v", out, err)
			}
		})
	}
}

func TestSSHConfigAlias(t *testing.T) {
	s := theLab.SSH
	cfg := filepath.Join(t.TempDir(), "config")
	text := fmt.Sprintf("Host other\n  Port 1\n\nHost newbox\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n\nHost *\n  User nobody-else\n",
		s.Port, s.User, s.ClientKeyFile, s.KnownHostsFile)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	h := dial(t, hosts.SSHConfig{Name: "target", Address: "newbox", SSHConfigFile: cfg})
	u, host, port := h.Target()
	if u != s.User || host != "127.0.0.1" || port != s.Port {
		t.Errorf("Target() = %s %s %d", u, host, port)
	}
	if h.String() != fmt.Sprintf("%s@127.0.0.1:%d", s.User, s.Port) {
		t.Errorf("String() = %s", h.String())
	}
	out, err := h.Output(context.Background(), "id -un")
	if err != nil || strings.TrimSpace(string(out)) != s.User {
		t.Errorf("id -un: %q %v", out, err)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "")
	kf := filepath.Join(t.TempDir(), "id")
	writePEM(t, kf, blk.Bytes, blk.Type)
	c := labConfig(t)
	c.KeyFile = kf
	_, err := hosts.DialSSH(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), kf) {
		t.Fatalf("got %v", err)
	}
}

func TestCancelKillsRemoteCommand(t *testing.T) {
	bothHosts(t, func(t *testing.T, h hosts.Host) {
		marker := fmt.Sprintf("sleep 30.%d", time.Now().UnixNano()%1000000)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		// A pipeline: killing only sh would leave sleep behind.
		err := h.Run(ctx, marker+" | cat", nil, nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want DeadlineExceeded, got %v", err)
		}
		if d := time.Since(t0); d > 3*time.Second {
			t.Errorf("cancel took %s", d)
		}
		var left []byte
		for i := 0; i < 50; i++ {
			left, _ = exec.Command("pgrep", "-f", "^"+marker).Output()
			if len(left) == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(left) != 0 {
			t.Errorf("%q still running after cancel: pids %s", marker, left)
		}
	})
}

func TestConcurrentSessions(t *testing.T) {
	h := dial(t, labConfig(t))
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ { // more than maxSessions: calls must queue
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := h.Output(context.Background(), fmt.Sprintf("sleep 0.1; echo %d", i))
			if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(i) {
				t.Errorf("run %d: %q %v", i, out, err)
			}
		}()
	}
	wg.Wait()
}

func TestLinkCut(t *testing.T) {
	h := dial(t, labConfig(t))
	if _, err := h.Output(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background(), "sleep 4", nil, nil, nil) }()
	time.Sleep(200 * time.Millisecond)
	hosts.CutLink(h)
	select {
	case err := <-done:
		if !errors.Is(err, hosts.ErrConnectionLost) || !strings.Contains(err.Error(), "ssh target: connection lost") {
			t.Errorf("in-flight Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight Run hangs after the link was cut")
	}
	err := h.Run(context.Background(), "true", nil, nil, nil)
	if !errors.Is(err, hosts.ErrConnectionLost) {
		t.Errorf("later Run: %v", err)
	}
	if _, err := h.DialContext(context.Background(), "tcp", theLab.Target.Addr); !errors.Is(err, hosts.ErrConnectionLost) {
		t.Errorf("later Dial: %v", err)
	}
}

// freezeProxy forwards TCP to target until frozen; then it silently stops
// moving bytes, like a dead route, without closing anything.
type freezeProxy struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, a, b)
			mu.Unlock()
			go p.pipe(a, b)
			go p.pipe(b, a)
		}
	}()
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() { // hold the bytes, like a black-holed route
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestDeadLinkKeepalive(t *testing.T) {
	p := newFreezeProxy(t, theLab.SSH.Addr)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := hosts.AcceptHostKey(kh, p.ln.Addr().String(), labHostKey(t)); err != nil {
		t.Fatal(err)
	}
	c := labConfig(t)
	c.Address = fmt.Sprintf("%s@%s", theLab.SSH.User, p.ln.Addr())
	c.KnownHosts = kh
	c.KeepAlive = 200 * time.Millisecond
	h := dial(t, c)
	if _, err := h.Output(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // keepalives flow while healthy
	if _, err := h.Output(context.Background(), "true"); err != nil {
		t.Fatalf("healthy link declared dead: %v", err)
	}
	p.frozen.Store(true)
	t0 := time.Now()
	err := h.Run(context.Background(), "sleep 10", nil, nil, nil)
	if !errors.Is(err, hosts.ErrConnectionLost) {
		t.Errorf("want ErrConnectionLost, got %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("dead link detected after %s", d)
	}
	t.Logf("detected in %s: %v", time.Since(t0).Round(time.Millisecond), err)
	p.frozen.Store(false)
}

func TestRsyncShell(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("no rsync")
	}
	h := dial(t, labConfig(t))
	shell, cleanup, err := h.RsyncShell()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if !strings.Contains(shell, "StrictHostKeyChecking=yes") || !strings.Contains(shell, theLab.SSH.ClientKeyFile) {
		t.Errorf("shell: %s", shell)
	}
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	os.WriteFile(src, []byte("payload"), 0o644)
	u, host, _ := h.Target()
	out, err := exec.Command("rsync", "-a", "-e", shell, src, u+"@"+host+":"+dst).CombinedOutput()
	if err != nil {
		t.Fatalf("rsync -e %q: %v: %s", shell, err, out)
	}
	if b, _ := os.ReadFile(dst); string(b) != "payload" {
		t.Errorf("rsync copy: %q", b)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          "''",
		"plain/x.y": "plain/x.y",
		"a b":       "'a b'",
		"it's":      `'it'\''s'`,
		"$HOME":     "'$HOME'",
	} {
		if got := hosts.Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, a := range []string{"", "user@", "host:99999", "[::1"} {
		c := hosts.SSHConfig{Name: "x", Address: a, SSHConfigFile: emptySSHConfig(t)}
		if _, err := hosts.DialSSH(context.Background(), c); err == nil {
			t.Errorf("DialSSH(%q): no error", a)
		}
	}
}

func writePEM(t *testing.T, path string, b []byte, typ string) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
		t.Fatal(err)
	}
}
