// Package hosts is how decant reaches a machine: the local one, or one over
// a single multiplexed SSH connection that also carries the MySQL tunnel.
// Both kinds offer the same small set of operations (run a shell command,
// read/write/stat a file, dial a TCP address) with the same semantics.
package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"
)

// Host is a machine decant acts on: the local one or one reached over SSH.
type Host interface {
	// Name is the runbook name, e.g. "target".
	Name() string
	// String is "local" or "user@host:port".
	String() string
	// Run runs cmd with sh -c. stdin, stdout and stderr are optional (nil:
	// empty input, output discarded). A non-zero exit returns *ExitError.
	// Cancelling ctx kills the command and returns an error wrapping ctx.Err().
	Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error
	// Output runs cmd and returns its stdout; the error carries trimmed stderr.
	Output(ctx context.Context, cmd string) ([]byte, error)
	// ReadFile returns a file's contents; a missing file gives an error
	// matching errors.Is(err, fs.ErrNotExist).
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile replaces path atomically (temp file in the same directory,
	// then rename). The temp file is created 0600 and gets mode before any
	// data is written, so secrets are never readable by others; an existing
	// file's owner is kept where permitted.
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error
	// Stat describes path (following symlinks); a missing path is
	// FileInfo{Exists: false} with a nil error.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// DialContext connects to addr as seen from the host: locally with a
	// net.Dialer, over SSH through a direct-tcpip channel (the MySQL tunnel).
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// Close releases the connection; the Host is unusable afterwards.
	Close() error
}

// FileInfo is what Stat reports about a path.
type FileInfo struct {
	Mode     fs.FileMode
	Size     int64
	UID, GID int
	Exists   bool
}

// ExitError reports a command that ran and exited non-zero (or was killed
// by a signal). It never includes the command's stdin.
type ExitError struct {
	Host   string // e.g. "ssh target" or "local source"
	Cmd    string
	Code   int    // exit status; 128+N when killed by signal N
	Signal string // e.g. "KILL" when killed by a signal
	Stderr string // last few KB of stderr
}

// Error is one line: host, command, exit status and the end of stderr.
func (e *ExitError) Error() string {
	status := fmt.Sprintf("exit status %d", e.Code)
	if e.Signal != "" {
		status = "killed by signal " + e.Signal
	}
	msg := fmt.Sprintf("%s: run %q: %s", e.Host, shortCmd(e.Cmd), status)
	if s := oneLine(e.Stderr, 300); s != "" {
		msg += ": " + s
	}
	return msg
}

// ErrConnectionLost is wrapped by errors from an SSH host whose link died
// (keepalive unanswered, TCP reset, server gone).
var ErrConnectionLost = errors.New("connection lost")

// Quote single-quotes s for a POSIX shell. Strings made only of safe
// characters are returned unchanged to keep commands readable in logs.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shortCmd keeps error messages on one readable line.
func shortCmd(cmd string) string {
	const max = 200
	if len(cmd) > max {
		return cmd[:max] + "…"
	}
	return cmd
}

// oneLine collapses whitespace and keeps the last max bytes, where the
// useful part of an error message usually is.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// fileError turns the stderr of a failed cat/mktemp/stat (run with LC_ALL=C)
// into an *fs.PathError with the matching errno, so callers can use
// errors.Is(err, fs.ErrNotExist) on remote files as on local ones.
func fileError(op, path string, err error) error {
	var ee *ExitError
	if !errors.As(err, &ee) {
		return nil
	}
	for _, m := range []struct {
		text  string
		errno syscall.Errno
	}{
		{"No such file or directory", syscall.ENOENT},
		{"Permission denied", syscall.EACCES},
		{"Is a directory", syscall.EISDIR},
		{"Not a directory", syscall.ENOTDIR},
		{"Read-only file system", syscall.EROFS},
		{"No space left on device", syscall.ENOSPC},
	} {
		if strings.Contains(ee.Stderr, m.text) {
			return &fs.PathError{Op: op, Path: path, Err: m.errno}
		}
	}
	return nil
}

// modeFromUnix converts a raw st_mode to an fs.FileMode.
func modeFromUnix(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// unixPerm is the chmod argument for mode (permission and special bits).
func unixPerm(mode fs.FileMode) string {
	p := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return fmt.Sprintf("%04o", p)
}
