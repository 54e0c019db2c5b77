// Package lab starts a disposable migration lab on loopback: two real
// MariaDB servers (an "old" source and a "new" target) and a real sshd that
// stands for the new host. Tests and `decant demo` use it so that every code
// path runs against real services instead of mocks.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configures Start.
type Options struct {
	// Dir is the root directory for everything (created with mode 0700). Required.
	Dir string
	// SSHUser is the login user sshd accepts; default: the current user.
	SSHUser string
	// NoSSH skips starting sshd.
	NoSSH bool
	// NoMariaDB skips starting the two MariaDB servers (for SSH-only tests).
	NoMariaDB bool
	// TargetDebianSysMaint also creates debian-sys-maint on the target. By
	// default it is missing there, reproducing the classic error 1045 seen
	// after an --all-databases import on a Debian host.
	TargetDebianSysMaint bool
	// SocketDir holds the unix sockets; default: Dir/<name>/run when the
	// path is short enough, else a fresh short directory under os.TempDir()
	// (unix socket paths must be < 108 bytes).
	SocketDir string
	// Logf receives progress lines; optional.
	Logf func(format string, args ...any)
}

// Lab is a running (or stopped) lab, as described by Dir/lab.json.
type Lab struct {
	Dir    string   `json:"dir"`
	Source *MariaDB `json:"source,omitempty"` // the "old" server
	Target *MariaDB `json:"target,omitempty"` // the "new" server
	SSH    *SSHD    `json:"ssh,omitempty"`    // sshd standing for the new host

	// SocketDir is a directory outside Dir created for short socket paths;
	// Stop removes it. Empty when sockets live inside Dir.
	SocketDir string `json:"socket_dir,omitempty"`
	// Started is when Start finished.
	Started time.Time `json:"started"`

	logf  func(format string, args ...any)
	mu    sync.Mutex
	procs map[int]*proc // processes this Go process started (so it can reap them)
}

// MariaDB describes one lab database server.
type MariaDB struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"` // 127.0.0.1:PORT
	Port    int    `json:"port"`
	Socket  string `json:"socket"`
	DataDir string `json:"datadir"`
	PID     int    `json:"pid"`
	// RootPassword is kept only in OptionFile (0600); Load reads it back.
	RootPassword string `json:"-"`
	// OptionFile is a 0600 my.cnf-style [client] file for root over TCP.
	OptionFile string `json:"option_file"`
	// DebianCnf is this server's Debian-style /etc/mysql/debian.cnf.
	DebianCnf string `json:"debian_cnf"`
	// Version is SELECT VERSION(), e.g. "10.11.6-MariaDB-0+deb12u1".
	Version string `json:"version"`
	// ErrorLog is the mariadbd --log-error file.
	ErrorLog string `json:"error_log"`

	created bool // this Start created DataDir
}

// SSHD describes the lab sshd.
type SSHD struct {
	Addr string `json:"addr"` // 127.0.0.1:PORT
	Port int    `json:"port"`
	PID  int    `json:"pid"`
	User string `json:"user"`
	// HostKeyFile is the sshd host private key.
	HostKeyFile string `json:"host_key_file"`
	// HostPublicKey is the host key as an authorized_keys line.
	HostPublicKey string `json:"host_public_key"`
	// ClientKeyFile is an ed25519 OpenSSH private key (0600) authorized for User.
	ClientKeyFile string `json:"client_key_file"`
	// KnownHostsFile holds "[127.0.0.1]:PORT ssh-ed25519 ..." for the host key.
	KnownHostsFile string `json:"known_hosts_file"`
	// ConfigFile is the generated sshd_config.
	ConfigFile string `json:"config_file"`
	// LogFile receives sshd's -e output.
	LogFile string `json:"log_file"`
}

// JSONFile is the name of the lab description written inside Dir.
const JSONFile = "lab.json"

// Start starts both MariaDB servers and sshd in parallel and writes
// Dir/lab.json. The processes are detached (own session) so they outlive
// the caller; on failure everything already started is stopped again.
func Start(ctx context.Context, o Options) (*Lab, error) {
	if o.Dir == "" {
		return nil, errors.New("lab: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: create dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, JSONFile)); err == nil {
		if old, err := Load(dir); err == nil && old.Running() {
			return nil, fmt.Errorf("lab: a lab is already running in %s (stop it first)", dir)
		}
	}
	l := &Lab{Dir: dir, logf: o.Logf, procs: map[int]*proc{}}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	start := time.Now()

	sockDir := o.SocketDir
	if sockDir == "" && !o.NoMariaDB {
		// "/run/target.sock" is the longest suffix we add under Dir/<name>.
		if len(filepath.Join(dir, "target", "run", "mysqld.sock")) >= 100 {
			sockDir, err = os.MkdirTemp("", "dl")
			if err != nil {
				return nil, fmt.Errorf("lab: socket dir: %w", err)
			}
			l.SocketDir = sockDir
		}
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	if !o.NoMariaDB {
		for _, name := range []string{"source", "target"} {
			m := &MariaDB{Name: name}
			if name == "source" {
				l.Source = m
			} else {
				l.Target = m
			}
			withDSM := name == "source" || o.TargetDebianSysMaint
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.startMariaDB(ctx, m, sockDir, withDSM); err != nil {
					fail(err)
				}
			}()
		}
	}
	if !o.NoSSH {
		u := o.SSHUser
		if u == "" {
			if u, err = currentUser(); err != nil {
				return nil, fmt.Errorf("lab: current user: %w", err)
			}
		}
		l.SSH = &SSHD{User: u}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.startSSHD(ctx, l.SSH); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		l.abort()
		return nil, errors.Join(errs...)
	}
	l.Started = time.Now()
	if err := l.save(); err != nil {
		l.abort()
		return nil, err
	}
	l.logf("lab: started in %s (%s)", time.Since(start).Round(time.Millisecond), l.summary())
	return l, nil
}

func (l *Lab) summary() string {
	s := ""
	for _, m := range []*MariaDB{l.Source, l.Target} {
		if m != nil {
			s += fmt.Sprintf("%s %s pid %d; ", m.Name, m.Addr, m.PID)
		}
	}
	if l.SSH != nil {
		s += fmt.Sprintf("sshd %s pid %d", l.SSH.Addr, l.SSH.PID)
	}
	return s
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: encode %s: %w", JSONFile, err)
	}
	p := filepath.Join(l.Dir, JSONFile)
	if err := os.WriteFile(p+".tmp", append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("lab: write %s: %w", p, err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("lab: write %s: %w", p, err)
	}
	return nil
}

// Load reads dir/lab.json written by Start, so another process (`decant lab
// down`, the demo) can use or stop a lab. Passwords are read back from the
// 0600 option files.
func Load(dir string) (*Lab, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		return nil, fmt.Errorf("lab: load: %w", err)
	}
	l := &Lab{logf: func(string, ...any) {}, procs: map[int]*proc{}}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("lab: load %s: %w", filepath.Join(dir, JSONFile), err)
	}
	for _, m := range []*MariaDB{l.Source, l.Target} {
		if m == nil {
			continue
		}
		pw, err := readOptionPassword(m.OptionFile)
		if err != nil {
			return nil, fmt.Errorf("lab: load %s password: %w", m.Name, err)
		}
		m.RootPassword = pw
	}
	return l, nil
}

// Running reports whether any lab process is still alive.
func (l *Lab) Running() bool {
	for _, t := range l.targets() {
		if t.alive() {
			return true
		}
	}
	return false
}

// Stop stops every lab process: SIGTERM by PID, then SIGKILL after 10s.
// It is idempotent and leaves Dir in place (see RemoveAll).
func (l *Lab) Stop() error {
	ts := l.targets()
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.stop(10 * time.Second)
		}()
	}
	wg.Wait()
	if l.SocketDir != "" {
		_ = os.RemoveAll(l.SocketDir)
	}
	return errors.Join(errs...)
}

// abort undoes a failed Start: stop what started and delete the data
// directories (so the same Dir can be retried), keeping the logs that the
// error message points to.
func (l *Lab) abort() {
	_ = l.Stop()
	for _, m := range []*MariaDB{l.Source, l.Target} {
		if m != nil && m.created {
			_ = os.RemoveAll(m.DataDir)
		}
	}
}

// RemoveAll stops the lab and deletes Dir.
func (l *Lab) RemoveAll() error {
	err := l.Stop()
	if rerr := os.RemoveAll(l.Dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("lab: remove %s: %w", l.Dir, rerr))
	}
	return err
}

// targets lists the processes of the lab with what identifies them in
// /proc/PID/cmdline, so a stale PID reused by another process is not killed.
func (l *Lab) targets() []*target {
	var ts []*target
	for _, m := range []*MariaDB{l.Source, l.Target} {
		if m != nil && m.PID > 0 {
			ts = append(ts, &target{name: "mariadb " + m.Name, pid: m.PID, mark: "--datadir=" + m.DataDir, p: l.proc(m.PID)})
		}
	}
	if l.SSH != nil && l.SSH.PID > 0 {
		ts = append(ts, &target{name: "sshd", pid: l.SSH.PID, mark: l.SSH.ConfigFile, p: l.proc(l.SSH.PID), tree: true})
	}
	return ts
}

func (l *Lab) proc(pid int) *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.procs[pid]
}

func (l *Lab) addProc(p *proc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.procs == nil {
		l.procs = map[int]*proc{}
	}
	l.procs[p.pid] = p
}

// randomPassword returns 26 base32 characters ([A-Z2-7]), so it needs no
// quoting in option files or SQL string literals.
func randomPassword() string { return rand.Text() }
