package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultDir is where `decant lab` keeps its lab: $DECANT_LAB_DIR, else
// /tmp/decant-lab.
func DefaultDir() string {
	if d := os.Getenv("DECANT_LAB_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "decant-lab")
}

const usage = `usage: decant lab up|down|status [--dir DIR]

  up      start two MariaDB servers (source, target) and an sshd on loopback,
          detached, then exit; --no-ssh, --ssh-user U,
          --target-debian-sys-maint
  down    stop the lab's processes by PID; --rm also deletes DIR
  status  show whether the lab's processes are running (exit 1 if not)

DIR defaults to $DECANT_LAB_DIR or /tmp/decant-lab.
`

// Main implements `decant lab`; args are the words after "lab". It returns
// the process exit code. Errors go to stderr, everything else to stdout.
func Main(args []string, stdout io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	fset := flag.NewFlagSet("lab "+args[0], flag.ContinueOnError)
	fset.SetOutput(os.Stderr)
	dir := fset.String("dir", DefaultDir(), "lab directory")
	noSSH := fset.Bool("no-ssh", false, "up: do not start sshd")
	dsm := fset.Bool("target-debian-sys-maint", false, "up: also create debian-sys-maint on the target")
	rm := fset.Bool("rm", false, "down: delete the lab directory too")
	sshUser := fset.String("ssh-user", "", "up: user sshd logs in (default: current user)")
	if err := fset.Parse(args[1:]); err != nil {
		return 2
	}
	var err error
	code := 0
	switch args[0] {
	case "up":
		err = cliUp(stdout, Options{Dir: *dir, NoSSH: *noSSH, TargetDebianSysMaint: *dsm, SSHUser: *sshUser})
	case "down":
		err = cliDown(stdout, *dir, *rm)
	case "status":
		code, err = cliStatus(stdout, *dir)
	default:
		fmt.Fprintf(os.Stderr, "lab: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return code
}

func cliUp(w io.Writer, o Options) error {
	dir := o.Dir
	// ^C during startup cancels it; Start then stops what it started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	if old, err := Load(dir); err == nil {
		if old.Running() {
			return fmt.Errorf("a lab is already running in %s: decant lab down --dir %s", old.Dir, old.Dir)
		}
		// A stopped lab is disposable: start afresh rather than fail on
		// its leftover data directories.
		fmt.Fprintf(w, "removing the stopped lab in %s\n", old.Dir)
		if err := old.RemoveAll(); err != nil {
			return err
		}
	}
	l, err := Start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lab up in %s: %s\n", time.Since(t0).Round(time.Millisecond), filepath.Join(l.Dir, JSONFile))
	printLab(w, l)
	fmt.Fprintf(w, "stop with: decant lab down --dir %s\n", l.Dir)
	return nil
}

func printLab(w io.Writer, l *Lab) {
	for _, m := range []*MariaDB{l.Source, l.Target} {
		if m == nil {
			continue
		}
		fmt.Fprintf(w, "  %-6s %s  %s  pid %d  %s\n", m.Name, m.Version, m.Addr, m.PID, state(m.PID, m.Addr))
		fmt.Fprintf(w, "         mariadb --defaults-file=%s\n", m.OptionFile)
		fmt.Fprintf(w, "         debian.cnf: %s\n", m.DebianCnf)
	}
	if s := l.SSH; s != nil {
		fmt.Fprintf(w, "  sshd   %s  user %s  pid %d  %s\n", s.Addr, s.User, s.PID, state(s.PID, s.Addr))
		fmt.Fprintf(w, "         ssh -p %d -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes %s@127.0.0.1\n",
			s.Port, s.ClientKeyFile, s.KnownHostsFile, s.User)
	}
}

func state(pid int, addr string) string {
	switch {
	case !pidAlive(pid):
		return "[stopped]"
	case !dialTCP(addr):
		return "[running, port closed]"
	default:
		return "[running]"
	}
}

func cliDown(w io.Writer, dir string, rm bool) error {
	l, err := Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "no lab in %s\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	if rm {
		err = l.RemoveAll()
	} else {
		err = l.Stop()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "lab in %s stopped\n", l.Dir)
	return nil
}

func cliStatus(w io.Writer, dir string) (int, error) {
	l, err := Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "no lab in %s\n", dir)
		return 1, nil
	}
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(w, "lab in %s (started %s)\n", l.Dir, l.Started.Format(time.RFC3339))
	printLab(w, l)
	if !l.Running() {
		return 1, nil
	}
	return 0, nil
}
