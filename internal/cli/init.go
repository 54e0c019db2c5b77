package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/decant-sh/decant/internal/initcmd"
)

func newInitCmd(ios *IO) *cobra.Command {
	o := &initcmd.Options{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Discover what runs on this (old) server and write a runbook for moving it",
		Long: `Run on the OLD server. decant init finds the MySQL/MariaDB databases with
their sizes (through the local socket and ~/.my.cnf or /etc/mysql/debian.cnf),
the Apache and nginx virtual hosts with their names and docroots, env files
in those docroots (key names only), crontabs, running services and queue
workers, and the domains with their name servers. A form lets you confirm or
edit each part and give the new server; the runbook is built from the
built-in lamp template, validated, and written 0600.

Without a terminal, --yes takes everything found: 
  decant init --yes --target ssh://deploy@203.0.113.7:22 --out decant.yaml

What could not be read (no nginx, no MySQL access) is listed, never fatal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Interactive = ios.InTTY && (ios.OutTTY || o.Accessible)
			msg := ios.Out
			if o.Out == "-" {
				msg = ios.Err
			}
			err := initcmd.Run(cmd.Context(), *o, ios.In, ios.Out, msg)
			var ue *initcmd.UsageError
			switch {
			case errors.As(err, &ue):
				return &exitError{code: ExitUsage, msg: ue.Msg}
			case errors.Is(err, initcmd.ErrAborted):
				return &exitError{code: ExitStopped, msg: "init: nothing written"}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Out, "out", "o", defaultRunbook, "runbook file to write (- prints it)")
	f.BoolVar(&o.Force, "force", false, "replace an existing runbook file")
	f.BoolVarP(&o.Yes, "yes", "y", false, "take everything discovered without asking (needs --target)")
	f.StringVar(&o.Target, "target", "", "the new server: ssh://user@host:port, user@host or an ~/.ssh/config alias")
	f.StringVar(&o.Key, "key", "", "SSH private key for the new server")
	f.StringVar(&o.KnownHosts, "known-hosts", "", "known_hosts file for the new server (default ~/.ssh/known_hosts)")
	f.StringVar(&o.TargetRoot, "target-root", "", "prefix for every path on the new server (labs)")
	f.StringVar(&o.TargetMySQL, "target-mysql", "", "the new server's MySQL as host:port seen from it (default 127.0.0.1:3306)")
	f.StringVar(&o.TargetMySQLOption, "target-mysql-options", "", "option file on the new server with its MySQL login (default /etc/mysql/debian.cnf)")
	f.StringArrayVar(&o.NewAddress, "new-address", nil, "the new server's public IP for DNS (repeatable; default the --target IP when public)")
	f.StringVar(&o.TSIGKey, "tsig-key", "", "TSIG key file (0600) for RFC 2136 DNS updates")
	f.StringVar(&o.Name, "name", "", "the migration's name (default: first domain to the new server)")
	f.StringVar(&o.Root, "root", "/", "read this server's configuration under DIR (a mounted copy, a lab tree)")
	f.StringArrayVar(&o.MySQLOptions, "mysql-options", nil, "MySQL option file to try first (repeatable)")
	f.BoolVar(&o.NoMySQL, "no-mysql", false, "do not look for databases")
	f.BoolVar(&o.NoDNS, "no-dns", false, "do not look up zones and name servers")
	f.BoolVar(&o.NoServices, "no-services", false, "do not list services and workers")
	f.StringArrayVar(&o.Resolvers, "resolver", nil, "DNS resolver to ask, now and to watch propagation on, instead of the system's and public ones (host:port, repeatable)")
	f.StringArrayVar(&o.DNSServers, "dns-server", nil, "the zone's authoritative server to ask instead of its NS records (host:port, repeatable)")
	f.StringVar(&o.Template, "template", "lamp", "built-in runbook template to fill, or a runbook file of your own to use as one")
	f.BoolVar(&o.Accessible, "accessible", false, "ask with plain line-by-line prompts instead of the form")
	return cmd
}
