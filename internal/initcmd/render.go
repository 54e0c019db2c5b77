package initcmd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/decant-sh/decant/runbook"
)

// fill is one discovered value put into the steps that take it. Steps are
// matched by kind prefix; whether a kind takes the key is left to its own
// strict parameter decoding: the key is added, the runbook validated, and
// the change kept only when it validates. So the rules follow whatever
// parameters the registered kinds have today.
type fill struct {
	prefixes []string
	key      string
	value    []string
	// drop removes matching steps instead (the operator kept none of
	// what they act on); why says so in the note.
	drop bool
	why  string
	// what names the value in notes.
	what string
}

func (f fill) matches(kind string) bool {
	for _, p := range f.prefixes {
		if strings.HasPrefix(kind, p) || kind == strings.TrimSuffix(p, ".") {
			return true
		}
	}
	return false
}

// Render fills a runbook template with the answers. It returns the runbook
// text, notes on what it left out or could not fill, and an error when the
// result does not validate (runbook.Parse) or a top-level value is unusable.
//
// Each step is validated on its own (the top sections with that one step),
// so one step the template leaves incomplete does not block the others; a
// step still invalid after filling is removed with a note.
func Render(tmpl []byte, a Answers) ([]byte, []string, error) {
	r := &renderer{}
	doc, err := parseDoc(tmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("template: %w", err)
	}
	if err := r.top(doc, a); err != nil {
		return nil, nil, err
	}
	cur := doc.bytes()
	if err := topValid(cur); err != nil {
		return nil, nil, fmt.Errorf("the runbook does not validate: %w", err)
	}
	cur = r.steps(cur, a)
	if _, err := runbook.Parse("decant.yaml", cur); err != nil {
		return nil, r.notes, fmt.Errorf("the runbook does not validate: %w", err)
	}
	return cur, r.notes, nil
}

type renderer struct {
	notes []string
}

func (r *renderer) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// top sets the sections above the phases: name, hosts, mysql, dns,
// settings.
func (r *renderer) top(doc *yamlDoc, a Answers) error {
	var errs []error
	set := func(path string, v any) {
		if err := doc.set(path, v); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Name != "" {
		set("$.name", a.Name)
	}
	if a.Target == "" {
		return errors.New("no target host: give its address (ssh://user@host:port)")
	}
	set("$.hosts.target.address", a.Target)
	for _, kv := range []struct{ key, val string }{{"key", a.Key}, {"known_hosts", a.KnownHosts}, {"root", a.TargetRoot}} {
		if kv.val != "" {
			set("$.hosts.target."+kv.key, kv.val)
		}
	}
	if a.SourceRoot != "" {
		set("$.hosts.source.root", a.SourceRoot)
	}

	if m := a.MySQL; m != nil {
		src := yaml.MapSlice{{Key: "host", Value: "source"}}
		if m.Socket != "" {
			src = append(src, yaml.MapItem{Key: "socket", Value: m.Socket})
		} else {
			src = append(src, yaml.MapItem{Key: "address", Value: m.Address})
		}
		if m.OptionFile != "" {
			src = append(src, yaml.MapItem{Key: "options", Value: m.OptionFile})
		} else if m.User != "" && m.User != "root" {
			src = append(src, yaml.MapItem{Key: "user", Value: m.User})
		}
		if m.Datadir != "" && a.SourceRoot == "" {
			src = append(src, yaml.MapItem{Key: "datadir", Value: strings.TrimSuffix(m.Datadir, "/")})
		}
		set("$.mysql.source", src)
	} else if doc.node("$.mysql.source") != nil {
		r.note("mysql.source is the template's example: decant init could not log in to MySQL; edit it")
	}
	if a.TargetMySQLAddress != "" {
		doc.del("$.mysql.target.socket")
		set("$.mysql.target.address", a.TargetMySQLAddress)
	}
	if a.TargetMySQLOptions != "" {
		set("$.mysql.target.options", a.TargetMySQLOptions)
	}

	if len(a.Domains) > 0 {
		set("$.settings.domains", trimDots(a.Domains))
		zone := a.Zone
		if zone == "" {
			zone = MainZone(nil, a.Domains)
		}
		names := InZone(a.Domains, zone)
		if other := len(a.Domains) - len(names); other > 0 {
			r.note("dns: %d name(s) outside %s are left out of dns.names (one zone per runbook)", other, zone)
		}
		set("$.dns.zone", zone)
		set("$.dns.names", names)
		// The template's example addresses must not survive into a real
		// runbook: an unknown address is left empty, with a note.
		set("$.dns.old_address", nonNil(a.OldAddress))
		set("$.dns.new_address", nonNil(a.NewAddress))
		if len(a.NewAddress) == 0 {
			r.note("dns.new_address is empty: fill in the new server's address before the cut-over")
		}
	} else if doc.node("$.dns") != nil {
		r.note("dns: no domain kept: the dns section is the template's example")
	}
	if a.TSIGKey != "" {
		set("$.dns.tsig_key", a.TSIGKey)
	}
	if len(a.Authoritative) > 0 {
		set("$.dns.authoritative", a.Authoritative)
	}
	if len(a.Resolvers) > 0 {
		set("$.dns.resolvers", a.Resolvers)
		set("$.dns.resolvers_mode", "replace")
	}
	return errors.Join(errs...)
}

// steps fills the steps' with: maps, one step and one rule at a time, each
// change validated before it is kept.
func (r *renderer) steps(cur []byte, a Answers) []byte {
	rules := r.rules(a)
	used := make([]bool, len(rules))
	remove := func(s stepRef, format string, args ...any) {
		if next, ok := edited(cur, func(d *yamlDoc) error { d.deleteStep(s); return nil }); ok {
			r.note("removed step %s: "+format, append([]any{s.label()}, args...)...)
			cur = next
		}
	}
	for i := 0; ; i++ {
		doc, err := parseDoc(cur)
		if err != nil {
			return cur
		}
		refs := doc.steps()
		if i >= len(refs) {
			break
		}
		s := refs[i]
		dropped := false
		for ri, f := range rules {
			if !f.matches(s.kind) {
				continue
			}
			withKey := s.path() + ".with." + f.key
			if f.drop {
				// With a key, only the steps taking it go (mysql.freeze
				// stays when no database is kept; mysql.copy does not).
				if f.key != "" {
					if _, takes := tryStep(cur, s, func(d *yamlDoc) error { return d.set(withKey, []string{"x"}) }); !takes {
						continue
					}
				}
				remove(s, "%s", f.why)
				used[ri], dropped = true, true
				break
			}
			had := doc.node(withKey) != nil
			var edit func(d *yamlDoc) error
			switch {
			case len(f.value) > 0:
				edit = func(d *yamlDoc) error { return d.set(withKey, f.value) }
			case had:
				edit = func(d *yamlDoc) error { d.del(withKey); return nil }
			default:
				continue
			}
			next, ok := tryStep(cur, s, edit)
			switch {
			case ok && len(f.value) == 0:
				r.note("step %s: no %s kept: its with.%s is removed and the kind's default applies (see decant runbook kinds)", s.label(), f.what, f.key)
				cur = next
			case ok:
				cur, used[ri] = next, true
			case had && len(f.value) == 0:
				// The template's example cannot stay and the step cannot
				// go without it: the step acts on nothing here.
				remove(s, "no %s kept", f.what)
				dropped = true
			}
			if dropped {
				break
			}
		}
		if dropped {
			i--
			continue
		}
		if problem := stepProblem(cur, s); problem != "" {
			remove(s, "%s", problem)
			i--
		}
	}
	var unused []string
	for ri, f := range rules {
		if !used[ri] && !f.drop && len(f.value) > 0 {
			unused = append(unused, fmt.Sprintf("%s (%s %s)", f.what, strings.Join(f.prefixes, "*/")+"*", f.key))
		}
	}
	if len(unused) > 0 {
		r.note("no step of the template takes: %s", strings.Join(unused, ", "))
	}
	return cur
}

// rules lists what goes where, from the answers.
func (r *renderer) rules(a Answers) []fill {
	var rules []fill
	switch {
	case a.MySQL != nil && len(a.Databases) == 0:
		rules = append(rules, fill{prefixes: []string{"mysql."}, key: "databases", drop: true, why: "no database kept"})
	case a.MySQL != nil:
		rules = append(rules, fill{prefixes: []string{"mysql."}, key: "databases", value: a.Databases, what: "databases"})
	}
	if len(a.Domains) == 0 {
		rules = append(rules, fill{prefixes: []string{"dns.", "tls.", "http."}, drop: true, why: "no domain kept"})
	}
	rules = append(rules,
		fill{prefixes: []string{"files.", "rsync."}, key: "paths", value: a.SiteDirs, what: "web directories"},
		fill{prefixes: []string{"env."}, key: "files", value: a.EnvFiles, what: "env files"},
		fill{prefixes: []string{"cron."}, key: "users", value: a.CronUsers, what: "users' crontabs"},
		fill{prefixes: []string{"cron."}, key: "cron_d", value: a.CronFiles, what: "system cron files"},
		fill{prefixes: []string{"services."}, key: "ignore", value: serviceNames(a.Ignored), what: "unticked services"},
		fill{prefixes: []string{"http."}, key: "urls", value: a.URLs, what: "key URLs"},
	)
	return rules
}

// edited applies edit to a fresh parse of cur.
func edited(cur []byte, edit func(*yamlDoc) error) ([]byte, bool) {
	doc, err := parseDoc(cur)
	if err != nil {
		return nil, false
	}
	if err := edit(doc); err != nil {
		return nil, false
	}
	return doc.bytes(), true
}

// tryStep applies an edit inside step s and returns the result if s then
// validates.
func tryStep(cur []byte, s stepRef, edit func(*yamlDoc) error) ([]byte, bool) {
	next, ok := edited(cur, edit)
	if !ok || stepProblem(next, s) != "" {
		return nil, false
	}
	return next, true
}

// stepProblem validates step s alone: the runbook's top sections with a
// single phase holding only s. It returns the first problem, or "".
func stepProblem(text []byte, s stepRef) string {
	doc, err := parseDoc(text)
	if err != nil {
		return err.Error()
	}
	if !doc.only(s) {
		return "step not found"
	}
	if _, err := runbook.Parse("decant.yaml", doc.bytes()); err != nil {
		var probs runbook.Problems
		if errors.As(err, &probs) && len(probs) > 0 {
			return probs[0].Msg
		}
		return err.Error()
	}
	return ""
}

// topValid validates the sections above the phases, with one harmless step.
func topValid(text []byte) error {
	doc, err := parseDoc(text)
	if err != nil {
		return err
	}
	one := []yaml.MapSlice{{{Key: "name", Value: "check"}, {Key: "steps", Value: []yaml.MapSlice{{{Key: "shell", Value: "source"}, {Key: "run", Value: "true"}}}}}}
	if err := doc.set("$.phases", one); err != nil {
		return err
	}
	_, err = runbook.Parse("decant.yaml", doc.bytes())
	return err
}

// serviceNames turns "unit nginx" entries into the names services.parity
// matches ("nginx").
func serviceNames(entries []string) []string {
	var out []string
	for _, e := range entries {
		_, name, ok := strings.Cut(e, " ")
		if !ok {
			name = e
		}
		out = append(out, name)
	}
	return uniq(out)
}

func trimDots(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(n, ".")
	}
	return out
}

// nonNil returns s, or an empty list, so YAML gets [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
