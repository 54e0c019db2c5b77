package dnslab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// DefaultUnbound is Debian's unbound binary.
const DefaultUnbound = "/usr/sbin/unbound"

// resolver is one unbound process caching in front of the lab's servers.
type resolver struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// unboundConf is a config for unbound 1.17 running in the foreground as the
// current user, without chroot, talking only to loopback: the whole root is
// refused so a stray query can never leave the machine, and the lab zone is
// a stub pointing at its authoritative servers.
const unboundConf = `server:
	interface: 127.0.0.1
	port: {{PORT}}
	interface-automatic: no
	do-ip6: no
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "{{DIR}}"
	pidfile: "{{DIR}}/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	num-threads: 1
	so-reuseport: no
	outgoing-range: 64
	msg-cache-size: 1m
	rrset-cache-size: 1m
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	auto-trust-anchor-file: ""
	cache-min-ttl: 0
	cache-max-negative-ttl: 5
	prefetch: no
	serve-expired: no
	qname-minimisation: no
	local-zone: "." refuse
	local-zone: "test." nodefault
	local-zone: "{{ZONE}}" transparent
remote-control:
	control-enable: no
stub-zone:
	name: "{{ZONE}}"
{{STUBS}}`

// freePort finds a loopback port free for both UDP and TCP. unbound binds it
// a moment later; startUnbound retries if someone took it in between.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port")
}

func startUnbound(ctx context.Context, bin, dir, zone string, stubs []string) (*resolver, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		var sb strings.Builder
		for _, s := range stubs {
			host, p, _ := net.SplitHostPort(s)
			fmt.Fprintf(&sb, "\tstub-addr: %s@%s\n", host, p)
		}
		conf := strings.NewReplacer("{{PORT}}", fmt.Sprint(port), "{{DIR}}", dir,
			"{{ZONE}}", dns.CanonicalName(zone), "{{STUBS}}", sb.String()).Replace(unboundConf)
		confPath := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		logf, err := os.OpenFile(filepath.Join(dir, "unbound.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-d", "-c", confPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		// Own process group: a Ctrl-C on the test run reaches us, and we stop
		// unbound by its PID, not by name.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("dnslab: start %s: %w", bin, err)
		}
		r := &resolver{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, cmd: cmd, done: make(chan struct{})}
		go func() {
			_ = cmd.Wait()
			logf.Close()
			close(r.done)
		}()
		if err := r.waitReady(ctx, 10*time.Second); err != nil {
			r.stop()
			log, _ := os.ReadFile(filepath.Join(dir, "unbound.log"))
			lastErr = fmt.Errorf("dnslab: unbound on %s: %w; log:\n%s", r.addr, err, strings.TrimSpace(string(log)))
			continue
		}
		return r, nil
	}
	return nil, lastErr
}

// waitReady polls unbound with a query that touches no cache entry of the
// zone (version.server CH TXT) until it answers or the deadline passes.
func (r *resolver) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cl := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("version.server.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, _, err := cl.ExchangeContext(ctx, m, r.addr); err == nil {
			return nil
		}
		select {
		case <-r.done:
			return errors.New("unbound exited")
		case <-ctx.Done():
			return fmt.Errorf("not answering after %s", limit)
		case <-tick.C:
		}
	}
}

// stop ends unbound by its PID: SIGTERM, then SIGKILL after 5s.
func (r *resolver) stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}
