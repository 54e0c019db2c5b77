package runbook

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"

	"github.com/decant-sh/decant/actions"
	"github.com/decant-sh/decant/internal/steps"
)

// Problem is one thing wrong with a runbook, located at file:line:col.
type Problem struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (p *Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in one runbook; Error prints one per line.
type Problems []*Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

type rawFile struct {
	Name     string                         `yaml:"name"`
	Notes    string                         `yaml:"notes"`
	Hosts    map[string]HostSpec            `yaml:"hosts"`
	MySQL    map[string]steps.MySQLEndpoint `yaml:"mysql"`
	DNS      steps.DNSConfig                `yaml:"dns"`
	Settings steps.Settings                 `yaml:"settings"`
	Phases   []rawPhase                     `yaml:"phases"`
}

type rawPhase struct {
	Name  string    `yaml:"name"`
	Steps []rawStep `yaml:"steps"`
}

type rawStep struct {
	ID          string        `yaml:"id"`
	Title       string        `yaml:"title"`
	Check       string        `yaml:"check"`
	Action      string        `yaml:"action"`
	Shell       string        `yaml:"shell"`
	Run         string        `yaml:"run"`
	Undo        string        `yaml:"undo"`
	With        ast.Node      `yaml:"with"`
	Confirm     bool          `yaml:"confirm"`
	ConfirmText string        `yaml:"confirm_text"`
	Timeout     time.Duration `yaml:"timeout"`
}

// Load reads and validates a runbook file.
func Load(path string) (*Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	return Parse(path, data)
}

// Parse validates runbook source; name is used in file:line messages. On
// error it returns Problems (all semantic problems, or the first syntax one).
func Parse(name string, data []byte) (*Runbook, error) {
	p := &parseState{file: name, src: data}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Problems{p.fromYAMLError(err)}
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, Problems{{File: name, Msg: "empty runbook: expected name, hosts and phases"}}
	}
	if len(f.Docs) > 1 {
		return nil, Problems{p.at(f.Docs[1], "more than one YAML document; a runbook is one document")}
	}
	p.ast = f
	var raw rawFile
	if err := yaml.NodeToValue(f.Docs[0].Body, &raw, yaml.DisallowUnknownField()); err != nil {
		return nil, Problems{p.fromYAMLError(err)}
	}
	rb := p.build(&raw)
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	if abs, err := filepath.Abs(name); err == nil {
		rb.Path = abs
	}
	return rb, nil
}

type parseState struct {
	file     string
	src      []byte
	ast      *ast.File
	problems Problems
}

func (p *parseState) fromYAMLError(err error) *Problem {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return &Problem{File: p.file, Line: pos.Line, Col: pos.Column, Msg: oneLine(ye.GetMessage())}
	}
	pr := &Problem{File: p.file, Msg: oneLine(err.Error())}
	// Errors from a field's own parser (time.ParseDuration) carry no
	// position; find the offending value in the source to point at it.
	if m := quotedRe.FindStringSubmatch(pr.Msg); m != nil && p.src != nil {
		for _, tk := range lexer.Tokenize(string(p.src)) {
			if tk.Value == m[1] {
				pr.Line, pr.Col = tk.Position.Line, tk.Position.Column
				break
			}
		}
	}
	return pr
}

var quotedRe = regexp.MustCompile(`"([^"]+)"`)

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func (p *parseState) at(n ast.Node, format string, args ...any) *Problem {
	pr := &Problem{File: p.file, Msg: fmt.Sprintf(format, args...)}
	// A mapping's own token is its first ':'; point at its first key instead,
	// which is where a reader's eye goes.
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		n = m.Values[0].Key
	}
	if m, ok := n.(*ast.MappingValueNode); ok {
		n = m.Key
	}
	if n != nil && n.GetToken() != nil {
		pr.Line = n.GetToken().Position.Line
		pr.Col = n.GetToken().Position.Column
	}
	return pr
}

// node finds the AST node at a YAML path such as $.phases[0].steps[1].check;
// when the exact key is missing it walks up to the nearest existing parent.
func (p *parseState) node(path string) ast.Node {
	for path != "" && path != "$" {
		yp, err := yaml.PathString(path)
		if err == nil {
			if n, err := yp.FilterFile(p.ast); err == nil && n != nil {
				return n
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return p.ast.Docs[0].Body
}

func (p *parseState) add(path, format string, args ...any) {
	p.problems = append(p.problems, p.at(p.node(path), format, args...))
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/#-]*$`)

func (p *parseState) build(raw *rawFile) *Runbook {
	rb := &Runbook{
		Name:     strings.TrimSpace(raw.Name),
		Notes:    raw.Notes,
		Hosts:    map[string]HostSpec{},
		MySQL:    map[string]steps.MySQLEndpoint{},
		DNS:      raw.DNS,
		Settings: raw.Settings,
	}
	if rb.Name == "" {
		p.add("$.name", "name is required: a short title for this migration")
	}
	for name, h := range raw.Hosts {
		h.Name = name
		path := "$.hosts." + name
		if !idRe.MatchString(name) {
			p.add(path, "host name %q: use letters, digits, '.', '_' or '-'", name)
		}
		if err := checkAddress(h.Address); err != nil {
			p.add(path+".address", "hosts.%s.address: %v", name, err)
		}
		if h.Key != "" {
			if _, err := os.Stat(expandHome(h.Key)); err != nil {
				p.add(path+".key", "hosts.%s.key: %s: no such file", name, h.Key)
			}
		}
		if h.Root != "" && !strings.HasPrefix(h.Root, "/") {
			p.add(path+".root", "hosts.%s.root must be an absolute path, got %q", name, h.Root)
		}
		rb.Hosts[name] = h
	}
	if _, ok := rb.Hosts["source"]; !ok {
		rb.Hosts["source"] = HostSpec{Name: "source", Address: "local"}
	}
	for name, ep := range raw.MySQL {
		ep.Name = name
		path := "$.mysql." + name
		if ep.Host == "" {
			ep.Host = name
		}
		if _, ok := rb.Hosts[ep.Host]; !ok {
			p.add(path, "mysql.%s: host %q is not defined under hosts", name, ep.Host)
		}
		if ep.Socket == "" && ep.Address == "" {
			p.add(path, "mysql.%s: give socket (on %s) or address (host:port as seen from %s)", name, ep.Host, ep.Host)
		}
		if ep.Address != "" {
			if _, port, err := net.SplitHostPort(ep.Address); err != nil {
				p.add(path+".address", "mysql.%s.address %q: want host:port", name, ep.Address)
			} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				p.add(path+".address", "mysql.%s.address %q: bad port", name, ep.Address)
			}
		}
		rb.MySQL[name] = ep
	}
	p.checkDNS(&rb.DNS)
	if rb.Settings.FreezeBudget < 0 {
		p.add("$.settings.freeze_budget", "settings.freeze_budget must not be negative")
	}
	if rb.Settings.FreezeBudget == 0 {
		rb.Settings.FreezeBudget = 90 * time.Second
	}
	if rb.Settings.Parallel < 0 || rb.Settings.Parallel > 64 {
		p.add("$.settings.parallel", "settings.parallel must be between 1 and 64, got %d", rb.Settings.Parallel)
	}
	if len(raw.Phases) == 0 {
		p.add("$", "no phases: a runbook needs at least one phase with steps")
	}
	seenPhase := map[string]bool{}
	seenID := map[string]bool{}
	for i, rp := range raw.Phases {
		ppath := fmt.Sprintf("$.phases[%d]", i)
		name := strings.TrimSpace(rp.Name)
		if name == "" {
			p.add(ppath, "phase %d has no name", i+1)
			name = fmt.Sprintf("phase%d", i+1)
		} else if seenPhase[name] {
			p.add(ppath+".name", "phase %q appears twice", name)
		}
		seenPhase[name] = true
		if len(rp.Steps) == 0 {
			p.add(ppath, "phase %q has no steps", name)
		}
		ph := &Phase{Name: name}
		for j, rs := range rp.Steps {
			st := p.buildStep(rb, name, fmt.Sprintf("%s.steps[%d]", ppath, j), rs)
			if st == nil {
				continue
			}
			if st.ID == "" {
				st.ID = name + "/" + st.Kind
				for n := 2; seenID[st.ID]; n++ {
					st.ID = fmt.Sprintf("%s/%s#%d", name, st.Kind, n)
				}
			} else if seenID[st.ID] {
				p.add(fmt.Sprintf("%s.steps[%d].id", ppath, j), "step id %q is used twice; ids must be unique", st.ID)
			}
			seenID[st.ID] = true
			ph.Steps = append(ph.Steps, st)
		}
		rb.Phases = append(rb.Phases, ph)
	}
	return rb
}

func (p *parseState) buildStep(rb *Runbook, phase, path string, rs rawStep) *Step {
	st := &Step{ID: rs.ID, Title: rs.Title, Phase: phase, Confirm: rs.Confirm || rs.ConfirmText != "", ConfirmText: rs.ConfirmText, Timeout: rs.Timeout, params: rs.With}
	st.Line = p.node(path).GetToken().Position.Line
	n := 0
	for _, s := range []string{rs.Check, rs.Action, rs.Shell} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		p.add(path, "a step needs exactly one of check:, action: or shell:")
		return nil
	}
	if rs.ID != "" && !idRe.MatchString(rs.ID) {
		p.add(path+".id", "step id %q: use letters, digits, '.', '_', '/', '#' or '-'", rs.ID)
	}
	if rs.Timeout < 0 {
		p.add(path+".timeout", "timeout must not be negative")
	}
	switch {
	case rs.Shell != "":
		st.Type, st.Kind, st.Host, st.Run, st.Undo = TypeShell, "shell", rs.Shell, rs.Run, rs.Undo
		if _, ok := rb.Hosts[rs.Shell]; !ok {
			p.add(path+".shell", "shell step runs on host %q, which is not defined under hosts (have: %s)", rs.Shell, hostList(rb))
		}
		if strings.TrimSpace(rs.Run) == "" {
			p.add(path, "shell step needs run: (the command to run on %s)", rs.Shell)
		}
		if rs.With != nil {
			p.add(path+".with", "shell steps take run: and undo:, not with:")
		}
		st.Impl = &actions.Shell{Host: rs.Shell, Command: rs.Run, UndoCmd: rs.Undo}
		return st
	case rs.Check != "":
		st.Type, st.Kind = TypeCheck, rs.Check
	default:
		st.Type, st.Kind = TypeAction, rs.Action
	}
	if rs.Run != "" || rs.Undo != "" {
		p.add(path, "run: and undo: belong to shell steps; %s %q takes with:", st.Type, st.Kind)
	}
	kpath := path + "." + string(st.Type)
	k, ok := steps.Lookup(st.Kind)
	if !ok {
		p.add(kpath, "unknown %s kind %q%s", st.Type, st.Kind, suggest(st.Kind, st.Type == TypeCheck))
		return nil
	}
	if k.Check != (st.Type == TypeCheck) {
		other := "action"
		if k.Check {
			other = "check"
		}
		p.add(kpath, "%q is a %s, not a %s: write `%s: %s`", st.Kind, other, st.Type, other, st.Kind)
		return nil
	}
	impl, err := k.New(rs.With)
	if err != nil {
		var ye yaml.Error
		var pe *steps.ParamError
		switch {
		case errors.As(err, &ye) && ye.GetToken() != nil:
			pr := p.fromYAMLError(err)
			pr.Msg = st.Kind + ": " + pr.Msg
			p.problems = append(p.problems, pr)
		case errors.As(err, &pe) && pe.Key != "":
			p.add(path+".with."+pe.Key, "%s: with.%s: %s", st.Kind, pe.Key, pe.Msg)
		default:
			p.add(path+".with", "%s: %v", st.Kind, oneLine(err.Error()))
		}
		return nil
	}
	st.Impl = impl
	// Some kinds take defaults from the runbook's sections (dns.switch asks
	// for the zone's apex to be typed).
	if u, ok := impl.(interface{ UseDNS(steps.DNSConfig) }); ok {
		u.UseDNS(rb.DNS)
	}
	if k.Dangerous {
		st.Confirm = true
	}
	if d, ok := impl.(steps.Dangerous); ok {
		st.Confirm = true
		if st.ConfirmText == "" {
			st.ConfirmText = d.ConfirmText()
		}
	}
	return st
}

func (p *parseState) checkDNS(d *steps.DNSConfig) {
	if d.TTL == 0 {
		d.TTL = 300
	}
	if d.TTL > 604800 {
		p.add("$.dns.ttl", "dns.ttl %d is over a week; want seconds, e.g. 300", d.TTL)
	}
	if d.Zone != "" && !strings.HasSuffix(d.Zone, ".") {
		d.Zone += "."
	}
	switch d.ResolversMode {
	case "", "extend", "replace":
	default:
		p.add("$.dns.resolvers_mode", "dns.resolvers_mode must be extend or replace, got %q", d.ResolversMode)
	}
	for i, a := range append(append([]string{}, d.OldAddress...), d.NewAddress...) {
		if net.ParseIP(a) == nil {
			p.add("$.dns", "dns address %q (entry %d) is not an IP address", a, i+1)
		}
	}
	if d.Timeout == 0 {
		d.Timeout = 2 * time.Second
	}
	if d.Timeout < 0 {
		p.add("$.dns.timeout", "dns.timeout must be positive")
	}
	if d.TSIGKey != "" {
		if _, err := os.Stat(expandHome(d.TSIGKey)); err != nil {
			p.add("$.dns.tsig_key", "dns.tsig_key: %s: no such file", d.TSIGKey)
		}
	}
}

func checkAddress(a string) error {
	if a == "" || a == "local" {
		return nil
	}
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return fmt.Errorf("%q is not a valid address", a)
		}
		if u.Scheme != "ssh" {
			return fmt.Errorf("scheme %q not supported: want ssh://user@host:port, user@host or an ~/.ssh/config alias", u.Scheme)
		}
		if u.Hostname() == "" {
			return fmt.Errorf("%q has no host", a)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q: bad port %q", a, p)
			}
		}
		return nil
	}
	if strings.ContainsAny(a, " \t/") {
		return fmt.Errorf("%q: want local, ssh://user@host:port, user@host or an ~/.ssh/config alias", a)
	}
	return nil
}

func hostList(rb *Runbook) string {
	var names []string
	for n := range rb.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// suggest offers the closest registered kind for a typo.
func suggest(kind string, check bool) string {
	best, bestD := "", 4
	for _, k := range steps.Kinds() {
		if k.Check != check {
			continue
		}
		if d := levenshtein(kind, k.Name); d < bestD {
			best, bestD = k.Name, d
		}
	}
	if best == "" {
		return " (see `decant runbook kinds`)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[2:])
		}
	}
	return p
}
