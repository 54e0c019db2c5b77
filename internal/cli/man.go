package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd(ios *IO) *cobra.Command {
	return &cobra.Command{
		Use:    "man",
		Short:  "Print decant's man page (roff) to stdout",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			root.DisableAutoGenTag = true
			return doc.GenMan(root, &doc.GenManHeader{Title: "DECANT", Section: "1", Source: "decant " + version}, ios.Out)
		},
	}
}
