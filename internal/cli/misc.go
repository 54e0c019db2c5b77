package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/steps"
	"github.com/decant-sh/decant/runbook"
)

// Build information, set by the release build (-ldflags -X).
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func init() { runbook.Version = version }

func newVersionCmd(ios *IO) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print decant's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(ios.Out, "decant %s (commit %s, built %s)\n", version, commit, date)
		},
	}
}

func newRunbookCmd(ios *IO) *cobra.Command {
	cmd := &cobra.Command{Use: "runbook", Short: "Show built-in runbooks, list step kinds, validate a runbook"}
	cmd.AddCommand(&cobra.Command{
		Use:   "show [NAME]",
		Short: "Print a built-in runbook template (lamp)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "lamp"
			if len(args) > 0 {
				name = args[0]
			}
			b, err := runbook.Template(name)
			if err != nil {
				return &exitError{code: ExitUsage, msg: err.Error()}
			}
			_, err = ios.Out.Write(b)
			return err
		},
	}, &cobra.Command{
		Use:   "kinds",
		Short: "List the check and action kinds a runbook can use",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			for _, k := range steps.Kinds() {
				t := "action"
				if k.Check {
					t = "check "
				}
				fmt.Fprintf(ios.Out, "%s  %-26s %s\n", t, k.Name, k.Doc)
			}
			fmt.Fprintf(ios.Out, "shell   %-26s %s\n", "shell", "run: a command on a named host, with an optional undo: command")
		},
	}, &cobra.Command{
		Use:   "validate RUNBOOK",
		Short: "Parse and validate a runbook; print problems as file:line:col: reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rb, err := runbook.Load(args[0])
			if err != nil {
				return err
			}
			n := len(rb.Steps())
			fmt.Fprintf(ios.Out, "%s: ok (%d phases, %d steps)\n", args[0], len(rb.Phases), n)
			return nil
		},
	})
	return cmd
}

func newLabCmd(ios *IO) *cobra.Command {
	return &cobra.Command{
		Use:                "lab up|down|status [--dir DIR]",
		Short:              "Start or stop the local lab (two MariaDB servers, sshd, DNS) used by tests and the demo",
		Hidden:             false,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := lab.Main(args, ios.Out); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
