package cli

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd(ios *IO) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "Print decant's man page (roff), or write one page per command with --dir",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "DECANT", Section: "1", Source: "decant " + version}
			if dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				return doc.GenManTree(root, hdr, dir)
			}
			return doc.GenMan(root, hdr, ios.Out)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write decant.1, decant-run.1, ... into this directory")
	return cmd
}
