// Package cli wires decant's subcommands: flags, the runbook, the engine and
// a renderer. Each command has an options struct and a run function that
// tests call directly; errors map to exit codes in one place.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/decant-sh/decant/runbook"
)

// Exit codes. check uses 0/1/2 for pass/warn/fail.
const (
	ExitOK      = 0
	ExitWarn    = 1
	ExitFail    = 2
	ExitUsage   = 64
	ExitStopped = 3
	ExitSignal  = 130
)

// exitError carries an exit code; its message (if any) is printed once.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// IO holds the process's streams and whether each is a terminal.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	InTTY    bool
	OutTTY   bool
	stdinBuf *bufio.Reader
}

// Stdin returns a buffered stdin for prompts, or nil when there is no
// terminal to ask on.
func (s *IO) Stdin() *bufio.Reader {
	if !s.InTTY || s.In == nil {
		return nil
	}
	if s.stdinBuf == nil {
		s.stdinBuf = bufio.NewReader(s.In)
	}
	return s.stdinBuf
}

func isTTY(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Main runs decant with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ios := &IO{In: stdin, Out: stdout, Err: stderr, InTTY: isTTY(stdin), OutTTY: isTTY(stdout)}
	if os.Getenv("DECANT_ASSUME_TTY_IN") == "1" {
		// Lets tests answer prompts through a pipe as an operator would.
		ios.InTTY = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	root := newRoot(ios)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	return exitCode(ctx, err, stderr)
}

func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "decant: "+ee.msg)
		}
		return ee.code
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "decant: interrupted; state is in the journal, run again to resume")
		return ExitSignal
	}
	var probs runbook.Problems
	if errors.As(err, &probs) {
		fmt.Fprintln(stderr, probs.Error())
		return ExitUsage
	}
	fmt.Fprintln(stderr, "decant: "+firstLine(err.Error()))
	return ExitFail
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func newRoot(ios *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "decant",
		Short: "Move a live server to a new one, step by step, with undo",
		Long: `decant walks you through moving a server: MySQL/MariaDB databases with users
and grants, web files, crontabs, env files, services, and DNS. It runs
preflight checks, runs each action with live logs and per-step undo, keeps a
crash-safe journal so a dropped link or a killed process resumes where it
stopped, and exports the run as a transcript.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newInitCmd(ios),
		newRunCmd(ios),
		newCheckCmd(ios),
		newUndoCmd(ios),
		newTranscriptCmd(ios),
		newRunbookCmd(ios),
		newNoteCmd(ios),
		newPropagationCmd(ios),
		newLabCmd(ios),
		newDemoCmd(ios),
		newVersionCmd(ios),
		newManCmd(ios),
	)
	return root
}

// defaultRunbook is used when no RUNBOOK argument is given.
const defaultRunbook = "decant.yaml"

func runbookArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return defaultRunbook
}
