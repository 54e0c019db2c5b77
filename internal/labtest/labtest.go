// Package labtest shares one real lab (MariaDB servers, sshd) between the
// tests of a package, and builds the decant binary for end-to-end tests.
package labtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/mysqlx"
)

// Main starts a lab for the package's tests, runs them, and stops it.
// Call it from TestMain: os.Exit(labtest.Main(m, &theLab, opts)).
func Main(m *testing.M, out **lab.Lab, o lab.Options) int {
	dir, err := os.MkdirTemp("", "decant-lab-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "labtest:", err)
		return 1
	}
	o.Dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	l, err := lab.Start(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labtest: start lab:", err)
		os.RemoveAll(dir)
		return 1
	}
	*out = l
	code := m.Run()
	if err := l.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "labtest: stop lab:", err)
	}
	if code == 0 {
		_ = l.RemoveAll()
		os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "labtest: lab files kept in", dir)
	}
	return code
}

// RepoRoot finds the module root from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildDecant builds the binary (with -race when the tests run with it)
// into dir and returns its path.
func BuildDecant(dir string) (string, error) {
	bin := filepath.Join(dir, "decant")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/decant")
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// SSHHost returns the runbook address of the lab sshd.
func SSHHost(l *lab.Lab) string {
	return fmt.Sprintf("ssh://%s@%s", l.SSH.User, l.SSH.Addr)
}

// Indent indents text for YAML block embedding.
func Indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

// MainWithDecant builds the decant binary into *bin, then runs the tests
// with a shared lab (as Main); the binary is removed afterwards.
func MainWithDecant(m *testing.M, out **lab.Lab, bin *string, o lab.Options) int {
	dir, err := os.MkdirTemp("", "decant-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "labtest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = BuildDecant(dir); err != nil {
		fmt.Fprintln(os.Stderr, "labtest:", err)
		return 1
	}
	return Main(m, out, o)
}

// Header is the top of a runbook on the lab: the source is this machine,
// the target the lab sshd, and both MySQL endpoints the lab's servers, the
// target reached through the SSH tunnel as in production. Phases follow.
func Header(l *lab.Lab, name string) string {
	return fmt.Sprintf(`name: %s
hosts:
  source: {address: local}
  target:
    address: %q
    key: %q
    known_hosts: %q
mysql:
  source: {host: source, socket: %q, options: %q}
  target: {host: target, address: %q, options: %q, debian_cnf: %q}
`, name, SSHHost(l), l.SSH.ClientKeyFile, l.SSH.KnownHostsFile, l.Source.Socket, l.Source.OptionFile,
		l.Target.Addr, l.Target.OptionFile, l.Target.DebianCnf)
}

// Result is what a run of the real binary produced.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the decant binary bin with args and stdin and returns its exit
// code and output; only a failure to start it fails the test.
func Run(t testing.TB, bin, stdin string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return Result{code, out.String(), errb.String()}
}

// Password is the password in a my.cnf-style option file (the lab's), for
// tests that check it never leaks.
func Password(t testing.TB, optionFile string) string {
	t.Helper()
	b, err := os.ReadFile(optionFile)
	if err != nil {
		t.Fatal(err)
	}
	pw := mysqlx.ParseOptions(b).Password
	if pw == "" {
		t.Fatalf("no password in %s", optionFile)
	}
	return pw
}
