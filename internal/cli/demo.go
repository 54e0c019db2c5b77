package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/decant-sh/decant/internal/demo"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/runbook"
	"github.com/decant-sh/decant/runbook/plain"
	"github.com/decant-sh/decant/tui"
)

// DemoOptions are decant demo's flags.
type DemoOptions struct {
	Dir   string
	Plain bool
	Keep  bool
}

func newDemoCmd(ios *IO) *cobra.Command {
	o := &DemoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Rehearse a whole migration on a disposable local lab",
		Long: `Start a local lab (two MariaDB servers with a small shop database, an SSH
server standing for the new host, a DNS zone with caching resolvers, a
docroot, crontab and env file on the old side), write a runbook for it and
open it, so you can rehearse a whole migration, cut-over and undo included.
The servers are stopped on exit; the runbook, journal and transcript stay.
Without a terminal (or with --plain) it runs every step, undoes them all and
prints the transcript's path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runDemo(cmd.Context(), ios, o) },
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to put the lab and runbook (default: a new temp dir)")
	cmd.Flags().BoolVar(&o.Plain, "plain", false, "run and undo everything in plain mode, no TUI")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "leave the MariaDB servers and sshd running on exit, to inspect them (stop with: decant lab down --dir DIR/lab)")
	return cmd
}

func runDemo(ctx context.Context, ios *IO, o *DemoOptions) error {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "decant-demo-"); err != nil {
			return err
		}
	}
	logf := func(f string, a ...any) { fmt.Fprintf(ios.Err, "demo: "+f+"\n", a...) }
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	d, err := demo.Start(sctx, dir, logf)
	cancel()
	if err != nil {
		return err
	}
	if !o.Keep {
		defer d.Stop()
	}
	logf("runbook: %s", d.Runbook)
	var runErr error
	if !o.Plain && ios.OutTTY && ios.InTTY && tui.Available() {
		runErr = runTUI(ctx, ios, &RunOptions{Runbook: d.Runbook, demo: !o.Keep})
	} else {
		runErr = demoPlain(ctx, ios, d)
	}
	out := filepath.Join(dir, "transcript.md")
	if err := runTranscript(&IO{Out: ios.Out, Err: ios.Err}, &TranscriptOptions{Runbook: d.Runbook, Format: "md", Output: out}); err == nil {
		fmt.Fprintf(ios.Out, "transcript: %s\n", out)
	}
	if o.Keep {
		fmt.Fprintf(ios.Out, "the MariaDB servers and sshd still run (the DNS and web servers lived in this process); stop them with: decant lab down --dir %s\n", filepath.Join(dir, "lab"))
	} else {
		fmt.Fprintln(ios.Out, "the demo's servers are stopped; run decant demo again for a fresh lab (--keep leaves them running)")
	}
	return runErr
}

// demoPlain runs every step, then undoes them all: the whole rehearsal.
func demoPlain(ctx context.Context, ios *IO, d *demo.Demo) error {
	rb, err := runbook.Load(d.Runbook)
	if err != nil {
		return err
	}
	drv := &plain.Driver{Out: ios.Out, Yes: true, Confirm: []string{demo.Domain}}
	sec := secret.NewSet()
	e, err := runbook.Open(rb, runbook.Options{Conn: runbook.NewConnector(rb, sec, nil), Secrets: sec})
	if err != nil {
		return err
	}
	drv.Engine = e
	wait := drv.Attach()
	err = applyWaivers(e, []string{"dns.ttl=demo: not waiting for the old TTL to run out"})
	if err == nil {
		err = drv.Run(ctx)
	}
	if err == nil {
		err = drv.UndoAll(ctx, nil)
	}
	cerr := e.Close()
	wait()
	return finish(ctx, ios, e, err, cerr)
}
