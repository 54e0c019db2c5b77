package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHConfig says how to reach a host over SSH.
type SSHConfig struct {
	// Name is the runbook name, e.g. "target".
	Name string
	// Address is "ssh://user@host:port", "user@host:port", "host", or a
	// Host alias from the ssh config file (HostName, User, Port,
	// IdentityFile and UserKnownHostsFile are honoured).
	Address string
	// KeyFile is the private key; default: IdentityFile from the config,
	// else ssh-agent via SSH_AUTH_SOCK, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
	KeyFile string
	// KnownHosts is the known_hosts file; default from the config, else
	// ~/.ssh/known_hosts.
	KnownHosts string
	// Timeout bounds TCP dial plus handshake; default 15s.
	Timeout time.Duration
	// KeepAlive is the keepalive@openssh.com interval; the link is declared
	// lost after three unanswered intervals. Default 15s.
	KeepAlive time.Duration
	// SSHConfigFile overrides ~/.ssh/config (tests use their own).
	SSHConfigFile string
}

// maxSessions stays under OpenSSH's default MaxSessions (10) so parallel
// Run calls queue instead of failing with "administratively prohibited".
const maxSessions = 8

// SSH is a Host reached over one SSH connection; every Run is a session
// multiplexed on it and every DialContext a direct-tcpip channel.
type SSH struct {
	name       string
	ep         endpoint
	keyFile    string // the key file that authenticated, "" when the agent did
	hostKey    ssh.PublicKey
	conn       net.Conn
	client     *ssh.Client
	sem        chan struct{}
	closed     atomic.Bool
	deadOnce   sync.Once
	dead       chan struct{} // closed when the connection is gone
	deadReason error
}

var _ Host = (*SSH)(nil)

// DialSSH connects, verifies the host key against known_hosts (an unknown
// or changed key returns *HostKeyError), authenticates with a key and
// starts the keepalive that detects a dead link.
func DialSSH(ctx context.Context, c SSHConfig) (*SSH, error) {
	label := "ssh " + c.Name
	if c.Name == "" {
		label = "ssh " + c.Address
	}
	ep, err := resolve(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	who := fmt.Sprintf("%s@%s", ep.user, ep.hostport())

	auth, keyFile, closeAgent, err := authMethods(ep)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer closeAgent()
	hk, err := newHostKeyChecker(ep.knownHosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	cfg := &ssh.ClientConfig{
		User:              ep.user,
		Auth:              auth,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(ep.hostport()),
		Timeout:           c.Timeout,
	}

	conn, client, err := handshake(ctx, ep.hostport(), cfg, c.Timeout)
	if err != nil && hk.err == nil && len(cfg.HostKeyAlgorithms) > 0 && strings.Contains(err.Error(), "no common algorithm for host key") {
		// The server no longer offers the key type we know: let it offer
		// anything so the operator sees a real mismatch, not a kex error.
		cfg.HostKeyAlgorithms = nil
		conn, client, err = handshake(ctx, ep.hostport(), cfg, c.Timeout)
	}
	if err != nil {
		if hk.err != nil {
			return nil, fmt.Errorf("%s: %w", label, hk.err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: connect %s: %w", label, who, ctx.Err())
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			how := "ssh-agent"
			if keyFile != "" {
				how = "key " + keyFile
			}
			return nil, fmt.Errorf("%s: login as %s with %s refused: %w", label, who, how, err)
		}
		return nil, fmt.Errorf("%s: connect %s: %w", label, who, err)
	}
	s := &SSH{
		name:    c.Name,
		ep:      ep,
		keyFile: keyFile,
		hostKey: hk.key,
		conn:    conn,
		client:  client,
		sem:     make(chan struct{}, maxSessions),
		dead:    make(chan struct{}),
	}
	go func() {
		err := client.Wait()
		if err == nil {
			err = io.EOF
		}
		s.markDead(err)
	}()
	go s.keepalive(c.KeepAlive)
	return s, nil
}

func handshake(ctx context.Context, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (net.Conn, *ssh.Client, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	stop()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, ssh.NewClient(cc, chans, reqs), nil
}

// authMethods picks keys as described on SSHConfig.KeyFile. It returns the
// file that will be used (for RsyncShell) and a func closing the agent.
func authMethods(ep endpoint) ([]ssh.AuthMethod, string, func(), error) {
	noop := func() {}
	var encrypted []string
	for _, f := range ep.keyFiles {
		signer, err := loadKey(f)
		if err == nil {
			return []ssh.AuthMethod{ssh.PublicKeys(signer)}, f, noop, nil
		}
		var pe *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pe):
			encrypted = append(encrypted, f)
		case ep.explicit:
			return nil, "", noop, fmt.Errorf("key file: %w", err)
		}
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if ac, err := net.Dial("unix", sock); err == nil {
			ag := agent.NewClient(ac)
			if keys, err := ag.List(); err == nil && len(keys) > 0 {
				// The agent knows the key file's public half; ssh -i will
				// find the agent too, so keep the file for RsyncShell.
				kf := ""
				if len(encrypted) > 0 {
					kf = encrypted[0]
				}
				return []ssh.AuthMethod{ssh.PublicKeysCallback(ag.Signers)}, kf, func() { ac.Close() }, nil
			}
			ac.Close()
		}
	}
	if len(encrypted) > 0 {
		return nil, "", noop, fmt.Errorf("key %s is passphrase-protected and no ssh-agent holds it: run ssh-add %s", encrypted[0], Quote(encrypted[0]))
	}
	if len(ep.keyFiles) == 0 {
		for _, f := range defaultKeyFiles() {
			if signer, err := loadKey(f); err == nil {
				return []ssh.AuthMethod{ssh.PublicKeys(signer)}, f, noop, nil
			}
		}
	}
	return nil, "", noop, errors.New("no usable SSH key: set a key file, an IdentityFile in ~/.ssh/config, or start ssh-agent")
}

func loadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// keepalive pings the server; an error or three intervals without a reply
// mean the link is dead, and closing the client fails every pending call.
func (s *SSH) keepalive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := s.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-s.dead:
			return
		case err := <-reply:
			if err != nil {
				s.markDead(err)
				s.client.Close()
				return
			}
		case <-time.After(3 * every):
			s.markDead(fmt.Errorf("no keepalive reply for %s", 3*every))
			s.client.Close()
			return
		}
	}
}

// Alive reports whether the connection still works; a host that is not
// alive must be dialed again (the connector does so on next use).
func (s *SSH) Alive() bool { return s.lostErr() == nil }

func (s *SSH) markDead(reason error) {
	s.deadOnce.Do(func() {
		s.deadReason = reason
		close(s.dead)
	})
}

// lostErr returns the error to report when the connection is gone, or nil.
func (s *SSH) lostErr() error {
	select {
	case <-s.dead:
	default:
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("%s: connection closed: %w", s.label(), net.ErrClosed)
	}
	return fmt.Errorf("%s: %w: %v", s.label(), ErrConnectionLost, s.deadReason)
}

// lostAfter waits briefly for the connection monitor: a session failing
// without an exit status is usually the link dying, reported a moment later.
func (s *SSH) lostAfter(d time.Duration) error {
	select {
	case <-s.dead:
		return s.lostErr()
	case <-time.After(d):
		return nil
	}
}

func (s *SSH) label() string {
	if s.name == "" {
		return "ssh " + s.String()
	}
	return "ssh " + s.name
}

// Name is the runbook name given in SSHConfig.
func (s *SSH) Name() string { return s.name }

// String is "user@host:port".
func (s *SSH) String() string { return fmt.Sprintf("%s@%s", s.ep.user, s.ep.hostport()) }

// Client exposes the underlying connection for protocols built on it.
func (s *SSH) Client() *ssh.Client { return s.client }

// HostKey is the verified host key of the server.
func (s *SSH) HostKey() ssh.PublicKey { return s.hostKey }

// Target returns the resolved login user, host and port (after ssh config
// aliases), e.g. to build rsync's "user@host:path" destination.
func (s *SSH) Target() (user, host string, port int) { return s.ep.user, s.ep.host, s.ep.port }

// RsyncShell returns a command for `rsync -e` that logs in exactly as this
// connection did: same key, same known_hosts with strict checking, no
// prompts and no ~/.ssh/config surprises. Call cleanup when rsync is done.
func (s *SSH) RsyncShell() (cmd string, cleanup func(), err error) {
	if err := s.lostErr(); err != nil {
		return "", func() {}, err
	}
	parts := []string{"ssh", "-F", "none", "-p", strconv.Itoa(s.ep.port), "-l", Quote(s.ep.user)}
	if s.keyFile != "" {
		parts = append(parts, "-i", Quote(s.keyFile), "-o", "IdentitiesOnly=yes")
	}
	parts = append(parts,
		"-o", Quote("UserKnownHostsFile="+s.ep.knownHosts),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=15",
		"-o", "ServerAliveInterval=15",
	)
	return strings.Join(parts, " "), func() {}, nil
}

// Run runs cmd with sh -c on the host; see Host.Run.
func (s *SSH) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	wrap := func(err error) error { return fmt.Errorf("%s: run %q: %w", s.label(), shortCmd(cmd), err) }
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if err := s.lostErr(); err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return wrap(ctx.Err())
	case <-s.dead:
		return s.lostErr()
	}
	sess, err := s.client.NewSession()
	if err != nil {
		if lerr := s.lostAfter(time.Second); lerr != nil {
			return lerr
		}
		return wrap(err)
	}
	defer sess.Close()
	if stdout == nil {
		stdout = io.Discard
	}
	sess.Stdout = stdout
	tail := &tailBuffer{max: 4096}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	pid := newPIDSniffer(errw)
	sess.Stderr = pid
	var stdinW io.WriteCloser
	if stdin != nil {
		// Our own copy, not Session.Stdin: Session.Wait would otherwise
		// wait for a stdin that never ends even after the command exited.
		if stdinW, err = sess.StdinPipe(); err != nil {
			return wrap(err)
		}
	}
	// The login shell (whatever it is) execs sh, which reports its PID on
	// stderr (sshd made it a process group leader, so cancelling can kill
	// the group) and execs sh -c cmd: same semantics as Local.
	wrapper := "exec sh -c " + Quote("echo "+pidMarker+"$$ >&2; exec sh -c \"$1\"") + " sh " + Quote(cmd)
	if err := sess.Start(wrapper); err != nil {
		if lerr := s.lostAfter(time.Second); lerr != nil {
			return lerr
		}
		return wrap(err)
	}
	if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, stdin)
			stdinW.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// Closing the channel alone would leave the command running.
		// sshd can signal the session's process group itself, but refuses
		// to for root logins ("session signalling requires privilege
		// separation"), so also kill the group from a second session.
		_ = sess.Signal(ssh.SIGKILL)
		s.killGroup(pid)
		sess.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		return wrap(ctx.Err())
	case <-s.dead:
		return s.lostErr()
	}
	if err == nil {
		return nil
	}
	var xe *ssh.ExitError
	if errors.As(err, &xe) {
		return &ExitError{Host: s.label(), Cmd: cmd, Code: xe.ExitStatus(), Signal: xe.Signal(), Stderr: tail.String()}
	}
	if lerr := s.lostAfter(time.Second); lerr != nil {
		return lerr
	}
	return wrap(err)
}

// Output runs cmd and returns its stdout; see Host.Output.
func (s *SSH) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := s.Run(ctx, cmd, nil, &out, nil)
	return out.Bytes(), err
}

// ReadFile reads a remote file with cat; see Host.ReadFile.
func (s *SSH) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var out bytes.Buffer
	err := s.Run(ctx, "LC_ALL=C cat -- "+Quote(path), nil, &out, nil)
	if err != nil {
		if pe := fileError("open", path, err); pe != nil {
			return nil, fmt.Errorf("%s: %w", s.label(), pe)
		}
		return nil, err
	}
	return out.Bytes(), nil
}

// WriteFile writes a remote file atomically; see Host.WriteFile.
func (s *SSH) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	p := path
	if strings.HasPrefix(p, "-") {
		p = "./" + p // keep mktemp from reading it as an option
	}
	q := Quote(p)
	// fd 3 is opened while the file is still 0600, so a read-only mode
	// (0400) does not stop the write; the trap removes a leftover temp.
	script := "umask 077; export LC_ALL=C; t=$(mktemp " + Quote(p+".decant-tmp.XXXXXX") + ") || exit 1; " +
		`trap 'rm -f "$t"' EXIT; ` +
		"exec 3>\"$t\" || exit 1; " +
		"if [ -e " + q + " ]; then chown --reference=" + q + " \"$t\" 2>/dev/null || :; fi; " +
		"chmod " + unixPerm(mode) + " \"$t\" && cat >&3 && exec 3>&- && mv -f \"$t\" " + q
	err := s.Run(ctx, script, bytes.NewReader(data), nil, nil)
	if err != nil {
		if pe := fileError("write", path, err); pe != nil {
			return fmt.Errorf("%s: %w", s.label(), pe)
		}
		var xe *ExitError
		if errors.As(err, &xe) {
			// Do not show the script: report the operation instead.
			return fmt.Errorf("%s: write %s: exit status %d: %s", s.label(), path, xe.Code, oneLine(xe.Stderr, 300))
		}
		return err
	}
	return nil
}

// Stat describes a remote path with GNU stat; see Host.Stat.
func (s *SSH) Stat(ctx context.Context, path string) (FileInfo, error) {
	out, err := s.Output(ctx, "LC_ALL=C stat -L -c '%f %s %u %g' -- "+Quote(path))
	if err != nil {
		if pe := fileError("stat", path, err); pe != nil {
			if errors.Is(pe, fs.ErrNotExist) {
				return FileInfo{}, nil
			}
			return FileInfo{}, fmt.Errorf("%s: %w", s.label(), pe)
		}
		return FileInfo{}, err
	}
	f := strings.Fields(string(out))
	if len(f) != 4 {
		return FileInfo{}, fmt.Errorf("%s: stat %s: unexpected output %q", s.label(), path, out)
	}
	raw, err1 := strconv.ParseUint(f[0], 16, 32)
	size, err2 := strconv.ParseInt(f[1], 10, 64)
	uid, err3 := strconv.Atoi(f[2])
	gid, err4 := strconv.Atoi(f[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return FileInfo{}, fmt.Errorf("%s: stat %s: unexpected output %q", s.label(), path, out)
	}
	return FileInfo{Mode: modeFromUnix(uint32(raw)), Size: size, UID: uid, GID: gid, Exists: true}, nil
}

// DialContext opens a direct-tcpip channel: addr is dialed by sshd on the
// host, which is how decant reaches a MySQL bound to the host's loopback.
func (s *SSH) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := s.lostErr(); err != nil {
		return nil, err
	}
	c, err := s.client.DialContext(ctx, network, addr)
	if err != nil {
		if lerr := s.lostAfter(100 * time.Millisecond); lerr != nil {
			return nil, lerr
		}
		return nil, fmt.Errorf("%s: dial %s through the SSH tunnel: %w", s.label(), addr, err)
	}
	return c, nil
}

// Close closes the connection; pending and later calls fail.
func (s *SSH) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.client.Close()
	s.markDead(net.ErrClosed)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// killGroup kills the remote process group whose leader's PID the sniffer
// saw, waiting up to a second for that PID to arrive.
func (s *SSH) killGroup(p *pidSniffer) {
	var pid int
	select {
	case <-p.known:
		pid = p.pid
	case <-time.After(time.Second):
	case <-s.dead:
	}
	if pid <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sess, err := s.client.NewSession()
	if err != nil {
		return
	}
	defer sess.Close()
	done := make(chan struct{})
	go func() {
		_ = sess.Run(fmt.Sprintf("kill -KILL -- -%d 2>/dev/null || kill -KILL %d 2>/dev/null", pid, pid))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// pidMarker prefixes the line carrying the remote shell's PID on stderr.
const pidMarker = "decant-pid:"

// pidSniffer passes stderr through to w, except for the marker line
// carrying the remote PID. Lines before it (a chatty .bashrc) pass too.
type pidSniffer struct {
	w     io.Writer
	buf   []byte
	found bool
	pid   int // valid once known is closed
	known chan struct{}
}

func newPIDSniffer(w io.Writer) *pidSniffer {
	return &pidSniffer{w: w, known: make(chan struct{})}
}

func (p *pidSniffer) Write(b []byte) (int, error) {
	if p.found {
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			if len(p.buf) > 64<<10 { // no marker: give up sniffing
				p.found = true
				_, err := p.w.Write(p.buf)
				p.buf = nil
				return len(b), err
			}
			return len(b), nil
		}
		line := p.buf[:i+1]
		if rest, ok := bytes.CutPrefix(line, []byte(pidMarker)); ok {
			p.pid, _ = strconv.Atoi(string(bytes.TrimSpace(rest)))
			p.found = true
			close(p.known)
			remain := p.buf[i+1:]
			p.buf = nil
			if len(remain) > 0 {
				if _, err := p.w.Write(remain); err != nil {
					return len(b), err
				}
			}
			return len(b), nil
		}
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
