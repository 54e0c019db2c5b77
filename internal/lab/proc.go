package lab

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process this Go process started; waiting on it reaps the zombie
// so that "PID gone" really means gone.
type proc struct {
	pid  int
	done chan struct{}
	err  error // valid after done is closed
}

// startDetached starts argv in its own session (so it survives the caller
// and a terminal's ^C) with stdin from /dev/null and stdout/stderr written
// to a fresh logPath (a file, not a pipe, so the child never gets SIGPIPE
// after we exit; fresh, so startup errors are read from this attempt only).
func startDetached(argv []string, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// target is a lab process to stop.
type target struct {
	name string
	pid  int
	mark string // substring expected in /proc/PID/cmdline
	p    *proc  // non-nil when we are its parent
	tree bool   // also stop descendants (sshd's per-connection children)
}

func (t *target) alive() bool {
	if t.p != nil {
		return !t.p.exited()
	}
	return pidAlive(t.pid) && cmdlineHas(t.pid, t.mark)
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (t *target) stop(grace time.Duration) error {
	if !t.alive() {
		return nil
	}
	pids := []int{t.pid}
	if t.tree {
		// Collect children first: once the listener dies they are
		// reparented and can no longer be found by parent PID.
		pids = append(pids, descendants(t.pid)...)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	if waitGone(pids, t.p, grace) {
		return nil
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if waitGone(pids, t.p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("lab: %s (pid %d) did not exit after SIGKILL", t.name, t.pid)
}

func waitGone(pids []int, p *proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		gone := true
		for i, pid := range pids {
			if i == 0 && p != nil {
				if !p.exited() {
					gone = false
				}
				continue
			}
			if pidAlive(pid) {
				gone = false
			}
		}
		if gone {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) STATE ppid ...; comm may contain spaces or ')'.
	i := bytes.LastIndexByte(st, ')')
	if i < 0 || i+2 >= len(st) {
		return true
	}
	return st[i+2] != 'Z' && st[i+2] != 'X'
}

func cmdlineHas(pid int, mark string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), []byte(mark))
}

// descendants returns all processes below pid, found via /proc/*/stat.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], n)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		c := children[queue[0]]
		queue = queue[1:]
		out = append(out, c...)
		queue = append(queue, c...)
	}
	return out
}

// freePort asks the kernel for a free loopback port. It can be taken again
// before the server binds it; callers retry on a bind failure.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a log file, joined with " | " so an error
// stays on one line.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " | ")
}
