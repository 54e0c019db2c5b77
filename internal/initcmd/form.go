package initcmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"

	"charm.land/huh/v2"

	"github.com/decant-sh/decant/internal/discover"
)

// Ask shows the form: one group per part, everything discovered ticked,
// and the target host. It returns the answers as edited.
func Ask(ctx context.Context, rep *discover.Report, a Answers, o Options, in io.Reader, w io.Writer) (Answers, error) {
	f := newForm(rep, a)
	form := huh.NewForm(f.groups...).WithInput(in).WithOutput(w)
	if o.Accessible {
		// huh's prompts each wrap the input in a new bufio.Scanner; one
		// line per Read keeps the next answers for the next prompt.
		form = form.WithAccessible(true).WithInput(&lineReader{r: in})
	}
	if err := form.RunWithContext(ctx); err != nil {
		if errors.Is(err, huh.ErrUserAborted) {
			return a, ErrAborted
		}
		return a, fmt.Errorf("form: %w", err)
	}
	if !f.write {
		return a, ErrAborted
	}
	return f.answers(rep, a), nil
}

// form holds the values the fields edit.
type form struct {
	groups []*huh.Group

	name, target, key, newAddr, zone, tsig string
	dbs, sites, envs, crons, services      []string
	domains                                []string
	write                                  bool
}

func newForm(rep *discover.Report, a Answers) *form {
	f := &form{
		name: a.Name, target: a.Target, key: a.Key, zone: a.Zone, tsig: a.TSIGKey,
		newAddr: strings.Join(a.NewAddress, " "), write: true,
		// The selections start as the defaults, so a field the operator
		// never touches still holds them.
		dbs: append([]string(nil), a.Databases...), sites: append([]string(nil), a.SiteDirs...),
		envs: append([]string(nil), a.EnvFiles...), services: append([]string(nil), a.Services...),
		domains: append([]string(nil), a.Domains...),
	}
	for _, u := range a.CronUsers {
		f.crons = append(f.crons, "user:"+u)
	}
	for _, c := range a.CronFiles {
		f.crons = append(f.crons, "file:"+c)
	}
	f.groups = append(f.groups, huh.NewGroup(
		huh.NewInput().Title("The new server").
			Description("How decant reaches it over SSH: ssh://user@host:port, user@host or an ~/.ssh/config alias.").
			Value(&f.target).Validate(orKeep(a.Target, validTarget)),
		huh.NewInput().Title("SSH private key for it (optional)").
			Description("Empty: ssh-agent, then ~/.ssh/id_*.").
			Value(&f.key).Validate(optionalFile),
		huh.NewInput().Title("A name for this migration").Value(&f.name).Validate(orKeep(a.Name, required("a name"))),
	).Title("Target"))

	if m := rep.MySQL; m != nil && len(m.Databases) > 0 {
		var opts []huh.Option[string]
		for _, d := range m.Databases {
			label := fmt.Sprintf("%s  (%s, %d tables)", d.Name, discover.Size(d.Bytes), d.Tables)
			opts = append(opts, huh.NewOption(label, d.Name).Selected(contains(a.Databases, d.Name)))
		}
		f.groups = append(f.groups, huh.NewGroup(huh.NewMultiSelect[string]().
			Title("Databases to move").
			Description(fmt.Sprintf("MySQL %s. Users and grants follow the databases.", m.Version)).
			Options(opts...).Value(&f.dbs)))
	}
	if sites := siteOptions(rep, a); len(sites) > 0 {
		f.groups = append(f.groups, huh.NewGroup(huh.NewMultiSelect[string]().
			Title("Web directories to copy").
			Description("Each site's directory (the app around its docroot).").
			Options(sites...).Value(&f.sites)))
	}
	if len(rep.EnvFiles) > 0 {
		var opts []huh.Option[string]
		for _, e := range rep.EnvFiles {
			label := fmt.Sprintf("%s  (%d keys: %s)", e.Path, len(e.Keys), limit(e.Keys, 4))
			opts = append(opts, huh.NewOption(label, e.Path).Selected(contains(a.EnvFiles, e.Path)))
		}
		f.groups = append(f.groups, huh.NewGroup(huh.NewMultiSelect[string]().
			Title("Env files to carry over").Description("Values are never shown or logged.").
			Options(opts...).Value(&f.envs)))
	}
	if len(rep.Crontabs) > 0 {
		var opts []huh.Option[string]
		for _, c := range rep.Crontabs {
			label := fmt.Sprintf("%s  (%d jobs)", c.Path, c.Jobs)
			val, sel := "file:"+c.Path, contains(a.CronFiles, c.Path)
			if c.User != "" {
				label = fmt.Sprintf("crontab of %s  (%d jobs)", c.User, c.Jobs)
				val, sel = "user:"+c.User, contains(a.CronUsers, c.User)
			}
			opts = append(opts, huh.NewOption(label, val).Selected(sel))
		}
		f.groups = append(f.groups, huh.NewGroup(huh.NewMultiSelect[string]().
			Title("Crontabs").Options(opts...).Value(&f.crons)))
	}
	if all := rep.Services.AllServices(); len(all) > 0 {
		var opts []huh.Option[string]
		for _, s := range all {
			opts = append(opts, huh.NewOption(s, s).Selected(contains(a.Services, s)))
		}
		f.groups = append(f.groups, huh.NewGroup(huh.NewMultiSelect[string]().
			Title("Services and workers the new host must run").
			Description("Unticked ones are ignored by the services check.").
			Options(opts...).Value(&f.services)))
	}
	if len(rep.Domains) > 0 {
		var opts []huh.Option[string]
		for _, d := range rep.Domains {
			label := d.Name
			if len(d.Addresses) > 0 {
				label += "  " + strings.Join(d.Addresses, " ")
			}
			opts = append(opts, huh.NewOption(label, d.Name).Selected(contains(a.Domains, d.Name)))
		}
		f.groups = append(f.groups, huh.NewGroup(
			huh.NewMultiSelect[string]().Title("Domains to switch").Options(opts...).Value(&f.domains),
			huh.NewInput().Title("DNS zone").Description("The zone holding them, e.g. example.com.").Value(&f.zone),
			huh.NewInput().Title("New server's public address(es)").
				Description("What the names will point to after the switch; space separated.").
				Value(&f.newAddr).Validate(validIPs),
			huh.NewInput().Title("TSIG key file for DNS updates (optional)").
				Description("0600, BIND key-file syntax; needed to lower the TTL and switch the records.").
				Value(&f.tsig).Validate(optionalFile),
		).Title("DNS"))
	}
	f.groups = append(f.groups, huh.NewGroup(huh.NewConfirm().Title("Write the runbook?").Value(&f.write)))
	return f
}

// answers folds the form's values back into a.
func (f *form) answers(rep *discover.Report, a Answers) Answers {
	a.Name = cmp.Or(strings.TrimSpace(f.name), a.Name)
	a.Target = cmp.Or(strings.TrimSpace(f.target), a.Target)
	a.Key, a.TSIGKey = strings.TrimSpace(f.key), strings.TrimSpace(f.tsig)
	if rep.MySQL != nil && len(rep.MySQL.Databases) > 0 {
		a.Databases = f.dbs
	}
	if len(siteOptions(rep, a)) > 0 {
		a.SiteDirs = f.sites
	}
	if len(rep.EnvFiles) > 0 {
		a.EnvFiles = f.envs
	}
	if len(rep.Crontabs) > 0 {
		a.CronUsers, a.CronFiles = nil, nil
		for _, c := range f.crons {
			if u, ok := strings.CutPrefix(c, "user:"); ok {
				a.CronUsers = append(a.CronUsers, u)
			} else {
				a.CronFiles = append(a.CronFiles, strings.TrimPrefix(c, "file:"))
			}
		}
	}
	if all := rep.Services.AllServices(); len(all) > 0 {
		a.Services, a.Ignored = f.services, nil
		for _, s := range all {
			if !contains(f.services, s) {
				a.Ignored = append(a.Ignored, s)
			}
		}
	}
	if len(rep.Domains) > 0 {
		a.Domains = f.domains
		a.Zone = strings.TrimSpace(f.zone)
		if a.Zone != "" && !strings.HasSuffix(a.Zone, ".") {
			a.Zone += "."
		}
		if a.Zone == "" {
			a.Zone = MainZone(rep.Domains, a.Domains)
		}
		a.OldAddress = OldAddresses(rep.Domains, a.Zone, a.Domains)
		a.NewAddress = strings.Fields(f.newAddr)
	}
	return a
}

// siteOptions lists the site directories with the names they serve.
func siteOptions(rep *discover.Report, a Answers) []huh.Option[string] {
	names := map[string][]string{}
	var dirs []string
	for _, v := range rep.VHosts {
		if v.DocRoot == "" {
			continue
		}
		d := SiteDir(v.DocRoot)
		if _, ok := names[d]; !ok {
			dirs = append(dirs, d)
		}
		names[d] = uniq(append(names[d], v.Names...))
	}
	var opts []huh.Option[string]
	for _, d := range sortedCopy(dirs) {
		label := d
		if len(names[d]) > 0 {
			label += "  (" + limit(names[d], 3) + ")"
		}
		opts = append(opts, huh.NewOption(label, d).Selected(contains(a.SiteDirs, d)))
	}
	return opts
}

// orKeep accepts an empty answer when there is a default to keep: huh's
// accessible prompts validate the typed line before falling back to it.
func orKeep(def string, validate func(string) error) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" && def != "" {
			return nil
		}
		return validate(s)
	}
}

func validTarget(s string) error {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return errors.New("give the new server's address")
	case s == "local":
		return errors.New("the target is the NEW server, not this one")
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "ssh" || u.Hostname() == "" {
			return errors.New("want ssh://user@host:port")
		}
	case strings.ContainsAny(s, " \t/"):
		return errors.New("want ssh://user@host:port, user@host or an ~/.ssh/config alias")
	}
	return nil
}

func optionalFile(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			s = h + s[1:]
		}
	}
	if _, err := os.Stat(s); err != nil {
		return fmt.Errorf("%s: no such file", s)
	}
	return nil
}

func validIPs(s string) error {
	for _, f := range strings.Fields(s) {
		if net.ParseIP(f) == nil {
			return fmt.Errorf("%q is not an IP address", f)
		}
	}
	return nil
}

func required(what string) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("give %s", what)
		}
		return nil
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// limit joins at most n items.
func limit(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" +%d", len(items)-n)
}

// lineReader returns at most one line per Read.
type lineReader struct {
	r   io.Reader
	buf []byte
}

func (l *lineReader) Read(p []byte) (int, error) {
	for {
		if i := indexNL(l.buf); i >= 0 || len(l.buf) >= len(p) {
			n := len(l.buf)
			if i >= 0 {
				n = i + 1
			}
			n = copy(p, l.buf[:n])
			l.buf = l.buf[n:]
			return n, nil
		}
		chunk := make([]byte, 256)
		n, err := l.r.Read(chunk)
		l.buf = append(l.buf, chunk[:n]...)
		if err != nil {
			if len(l.buf) > 0 {
				n := copy(p, l.buf)
				l.buf = l.buf[n:]
				return n, nil
			}
			return 0, err
		}
	}
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
