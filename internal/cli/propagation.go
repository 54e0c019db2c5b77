package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/decant-sh/decant/checks"
	"github.com/decant-sh/decant/internal/secret"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// PropagationOptions are decant propagation's flags.
type PropagationOptions struct {
	Runbook  string
	Watch    bool
	Interval time.Duration
	Deadline time.Duration
}

func newPropagationCmd(ios *IO) *cobra.Command {
	o := &PropagationOptions{}
	cmd := &cobra.Command{
		Use:   "propagation [RUNBOOK]",
		Short: "Show what each resolver answers for the runbook's DNS names; --watch until all agree",
		Long: `Query every resolver (the system's, the public ones, the runbook's) for the
runbook's DNS names in parallel and print a table: answer, remaining TTL,
whether it shows the new address, and when the last stale cache expires.
It does not take the runbook's lock, so it can run beside decant run.
Exit code: 0 when every resolver shows the new address, 1 otherwise.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Runbook = runbookArg(args)
			return runPropagation(cmd.Context(), ios, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "refresh until all resolvers agree or the deadline passes")
	cmd.Flags().DurationVar(&o.Interval, "interval", 5*time.Second, "time between refreshes with --watch")
	cmd.Flags().DurationVar(&o.Deadline, "deadline", 30*time.Minute, "give up watching after this long")
	return cmd
}

func runPropagation(ctx context.Context, ios *IO, o *PropagationOptions) error {
	rb, err := runbook.Load(o.Runbook)
	if err != nil {
		return err
	}
	sec := secret.NewSet()
	conn := runbook.NewConnector(rb, sec, nil)
	defer conn.Close()
	env := &steps.Env{Runbook: rb.Path, StateDir: runbook.StateDir(rb.Path), DNS: rb.DNS, Settings: rb.Settings, Secrets: sec, Conn: conn}
	deadline := time.Now().Add(o.Deadline)
	for {
		rep, err := checks.Propagation(ctx, env)
		if err != nil {
			return err
		}
		fmt.Fprintf(ios.Out, "%s\n%s", time.Now().Format(time.RFC3339), rep.Table())
		if rep.AllAgree() {
			return nil
		}
		if !o.Watch || time.Now().After(deadline) {
			if o.Watch {
				fmt.Fprintf(ios.Out, "deadline of %s passed; %d resolvers still lag\n", o.Deadline, len(rep.Lagging()))
			}
			return &exitError{code: ExitWarn}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Interval):
		}
	}
}
