// Package initcmd is `decant init`: it discovers what runs on this host
// (internal/discover), lets the operator confirm or edit each part in a huh
// form (or takes everything with --yes), fills the built-in runbook
// template with the result, validates it and writes it 0600.
package initcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/decant-sh/decant/internal/discover"
	"github.com/decant-sh/decant/runbook"
)

// Options are decant init's flags.
type Options struct {
	Out      string // runbook file; "-" prints it
	Force    bool   // replace an existing file
	Yes      bool   // take everything discovered, ask nothing
	Template string // built-in template name (default "lamp") or a file

	Name                           string
	Target, Key, KnownHosts        string
	TargetRoot                     string
	TargetMySQL, TargetMySQLOption string
	NewAddress                     []string
	TSIGKey                        string

	Root         string   // discovery root (default "/")
	MySQLOptions []string // extra option files to try first
	NoMySQL      bool
	NoDNS        bool
	NoServices   bool
	// Resolvers are asked during discovery and are the only ones the
	// runbook watches; DNSServers are the zone's authoritative servers.
	Resolvers  []string
	DNSServers []string

	// Interactive says a terminal can show the form; Accessible asks for
	// huh's line-by-line prompts instead (screen readers, plain pipes).
	Interactive bool
	Accessible  bool
}

// UsageError is a wrong invocation (exit 64 in the CLI).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrAborted is returned when the operator leaves the form or declines to
// write the runbook.
var ErrAborted = errors.New("nothing written")

// Run discovers, asks (unless Yes), renders and writes the runbook.
// Progress and the summary go to msg; the runbook itself to out when
// Options.Out is "-".
func Run(ctx context.Context, o Options, in io.Reader, out, msg io.Writer) error {
	if o.Out == "" {
		o.Out = "decant.yaml"
	}
	if o.Template == "" {
		o.Template = "lamp"
	}
	if !o.Yes && !o.Interactive {
		return &UsageError{"--yes required when not running interactively (and --target with it)"}
	}
	if o.Yes && o.Target == "" {
		return &UsageError{"--target is required with --yes: the new host, e.g. ssh://deploy@203.0.113.7:22"}
	}
	if o.Out != "-" && !o.Force {
		if _, err := os.Stat(o.Out); err == nil {
			return &UsageError{fmt.Sprintf("%s already exists; use --force to replace it, or --out another file", o.Out)}
		}
	}
	tmpl, err := loadTemplate(o.Template)
	if err != nil {
		return &UsageError{err.Error()}
	}

	fmt.Fprintf(msg, "decant init: looking at this host (%s)…\n", orDefault(o.Root, "/"))
	rep, err := discover.Discover(ctx, discover.Options{
		Root:       o.Root,
		MySQL:      discover.MySQLOptions{Skip: o.NoMySQL, OptionFiles: o.MySQLOptions},
		DNS:        discover.DNSOptions{Skip: o.NoDNS, Resolvers: o.Resolvers},
		NoServices: o.NoServices,
	})
	if err != nil {
		return &UsageError{err.Error()}
	}
	Summary(msg, rep)

	a := Defaults(rep)
	a.Target, a.Key, a.KnownHosts, a.TargetRoot = o.Target, o.Key, o.KnownHosts, o.TargetRoot
	a.TargetMySQLAddress, a.TargetMySQLOptions = o.TargetMySQL, o.TargetMySQLOption
	a.TSIGKey, a.NewAddress = o.TSIGKey, o.NewAddress
	a.Resolvers, a.Authoritative = o.Resolvers, o.DNSServers
	if o.Name != "" {
		a.Name = o.Name
	}
	if !o.Yes {
		if a, err = Ask(ctx, rep, a, o, in, msg); err != nil {
			return err
		}
	}
	if len(a.NewAddress) == 0 {
		if ip := TargetIP(a.Target); ip != "" && publicIP(ip) {
			a.NewAddress = []string{ip}
		}
	}

	text, notes, err := Render(tmpl, a)
	for _, n := range notes {
		fmt.Fprintln(msg, "note: "+n)
	}
	if err != nil {
		return err
	}
	text = append(header(rep), text...)
	if o.Out == "-" {
		_, err := out.Write(text)
		return err
	}
	if err := writeNew(o.Out, text, o.Force); err != nil {
		return err
	}
	rb, err := runbook.Load(o.Out)
	if err != nil {
		return fmt.Errorf("%s was written but does not load: %w", o.Out, err)
	}
	fmt.Fprintf(msg, "wrote %s (%d phases, %d steps)\n", o.Out, len(rb.Phases), len(rb.Steps()))
	if _, err := os.Stat(o.Out + ".decant"); err == nil {
		fmt.Fprintf(msg, "note: %s.decant holds the journal of an earlier run; decant run resumes it: remove it for a fresh start\n", o.Out)
	}
	fmt.Fprintf(msg, "next: read it, then run the preflight checks: decant check %s\n", o.Out)
	return nil
}

// loadTemplate reads a built-in template by name, or a template file (an
// operator's own runbook shape) when name is a path.
func loadTemplate(name string) ([]byte, error) {
	if strings.ContainsAny(name, "/.") {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		return b, nil
	}
	return runbook.Template(name)
}

// header puts what discovery could not read at the top of the runbook,
// where the operator editing it will see it.
func header(rep *discover.Report) []byte {
	if len(rep.Problems) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# decant init could not read everything on this host; check by hand:\n")
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "#   - %s\n", strings.ReplaceAll(p, "\n", " "))
	}
	return []byte(b.String())
}

// writeNew writes the file 0600 through a temporary file in the same
// directory; without force it refuses to replace an existing file, even
// one created since the first check.
func writeNew(path string, data []byte, force bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".decant-init-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if force {
		err = os.Rename(tmp, path)
	} else if err = os.Link(tmp, path); errors.Is(err, os.ErrExist) {
		return &UsageError{fmt.Sprintf("%s already exists; use --force to replace it", path)}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// publicIP reports whether ip could be in public DNS: not loopback,
// private or link-local.
func publicIP(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.IsGlobalUnicast() && !ip.IsPrivate()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Summary prints what discovery found, for the operator to read before
// the form (or instead of it with --yes).
func Summary(w io.Writer, rep *discover.Report) {
	section := func(title string, n int) bool {
		if n == 0 {
			return false
		}
		fmt.Fprintf(w, "\n%s\n", title)
		return true
	}
	if m := rep.MySQL; m != nil {
		where := m.Address
		if m.Socket != "" {
			where = m.Socket
		}
		via := "as " + m.User
		if m.OptionFile != "" {
			via = "with " + m.OptionFile
		}
		fmt.Fprintf(w, "\nMySQL %s at %s (%s): %d database(s)\n", m.Version, where, via, len(m.Databases))
		for _, d := range m.Databases {
			fmt.Fprintf(w, "  %-30s %10s  %d tables\n", d.Name, discover.Size(d.Bytes), d.Tables)
		}
	}
	if ws := rep.WebServer; ws != nil {
		var parts []string
		for _, p := range []struct{ name, v string }{{"Apache", ws.Apache}, {"nginx", ws.Nginx}, {"PHP", ws.PHP}} {
			if p.v != "" {
				parts = append(parts, p.name+" "+p.v)
			}
		}
		fmt.Fprintf(w, "\nWeb stack: %s\n", strings.Join(parts, ", "))
	}
	if section("Web sites", len(rep.VHosts)) {
		for _, v := range rep.VHosts {
			names := strings.Join(v.Names, " ")
			if names == "" {
				names = "(default)"
			}
			root := v.DocRoot
			if root == "" {
				root = "(no docroot)"
			}
			tls := ""
			if v.TLS {
				tls = ", TLS"
			}
			fmt.Fprintf(w, "  %-6s %s -> %s  (%s:%d%s)\n", v.Server, names, root, v.File, v.Line, tls)
		}
	}
	if section("Env files (key names only)", len(rep.EnvFiles)) {
		for _, e := range rep.EnvFiles {
			fmt.Fprintf(w, "  %s  %d keys\n", e.Path, len(e.Keys))
		}
	}
	if section("Crontabs", len(rep.Crontabs)) {
		for _, c := range rep.Crontabs {
			who := "system"
			if c.User != "" {
				who = "user " + c.User
			}
			fmt.Fprintf(w, "  %-32s %-16s %d jobs\n", c.Path, who, c.Jobs)
		}
	}
	all := rep.Services.AllServices()
	if section("Services and workers", len(all)) {
		for _, s := range all {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if section("Domains", len(rep.Domains)) {
		for _, d := range rep.Domains {
			line := "  " + d.Name
			if d.Zone != "" {
				line += "  zone " + d.Zone
			}
			if len(d.NS) > 0 {
				line += "  NS " + strings.Join(d.NS, " ")
			}
			if d.CNAME != "" {
				line += "  CNAME " + d.CNAME
			}
			if len(d.Addresses) > 0 {
				line += "  " + strings.Join(d.Addresses, " ")
			}
			fmt.Fprintln(w, line)
		}
	}
	if section("Could not read", len(rep.Problems)) {
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "  - %s\n", p)
		}
	}
	if section("Not here", len(rep.Notes)) {
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	fmt.Fprintln(w)
}
