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
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// localHost runs everything on this machine.
type localHost struct {
	name string
}

// Local returns the machine decant runs on as a Host named name.
func Local(name string) Host { return &localHost{name: name} }

func (h *localHost) Name() string   { return h.name }
func (h *localHost) String() string { return "local" }
func (h *localHost) label() string  { return "local " + h.name }

func (h *localHost) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	// Own process group, so cancelling kills the whole pipeline and not
	// just sh (dash does not exec the last command).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding our pipes open must not block Wait forever.
	c.WaitDelay = 2 * time.Second
	c.Stdin = stdin
	c.Stdout = stdout
	tail := &tailBuffer{max: 4096}
	if stderr != nil {
		c.Stderr = io.MultiWriter(stderr, tail)
	} else {
		c.Stderr = tail
	}
	err := c.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: run %q: %w", h.label(), shortCmd(cmd), ctx.Err())
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		e := &ExitError{Host: h.label(), Cmd: cmd, Code: xe.ExitCode(), Stderr: tail.String()}
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Code = 128 + int(ws.Signal())
			e.Signal = signalName(ws.Signal())
		}
		return e
	}
	return fmt.Errorf("%s: run %q: %w", h.label(), shortCmd(cmd), err)
}

func (h *localHost) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out bytes.Buffer
	err := h.Run(ctx, cmd, nil, &out, nil)
	return out.Bytes(), err
}

func (h *localHost) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.label(), err)
	}
	return b, nil
}

func (h *localHost) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%s: write %s: %w", h.label(), path, err)
		}
	}()
	// CreateTemp makes the file 0600 whatever the umask.
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".decant-tmp.*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if st, err := os.Stat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			_ = f.Chown(int(sys.Uid), int(sys.Gid)) // best effort, as for remote hosts
		}
	}
	if err := f.Chmod(mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (h *localHost) Stat(ctx context.Context, path string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileInfo{}, nil
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("%s: %w", h.label(), err)
	}
	fi := FileInfo{Mode: st.Mode(), Size: st.Size(), Exists: true}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.UID, fi.GID = int(sys.Uid), int(sys.Gid)
	}
	return fi, nil
}

func (h *localHost) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.label(), err)
	}
	return c, nil
}

func (h *localHost) Close() error { return nil }

// signalName gives the SSH-style name ("KILL") of a signal.
func signalName(s syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
		syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
		syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
		syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
		syscall.SIGUSR2: "USR2",
	}
	if n, ok := names[s]; ok {
		return n
	}
	return fmt.Sprintf("%d", int(s))
}
