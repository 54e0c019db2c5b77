// Package cronfile parses crontabs (per-user ones and the system ones with a
// user field: /etc/crontab, /etc/cron.d/*), normalises entries so two hosts
// can be compared, finds the paths a job's command points at, and reads and
// writes per-user crontabs on a host (with the crontab binary or as spool
// files under a lab root).
package cronfile

import (
	"strings"
)

// LineKind says what a crontab line is.
type LineKind int

// Line kinds.
const (
	Blank LineKind = iota
	Comment
	Env   // NAME=value
	Entry // a job
	Bad   // unparseable
)

// Line is one line of a crontab.
type Line struct {
	Kind LineKind
	Raw  string
	No   int
	// Entry fields.
	Schedule string // "*/5 * * * *" or "@daily", single-spaced
	User     string // system crontabs only
	Command  string
	// Env fields.
	Name, Value string
}

// Key is the normalised form used to compare entries across hosts:
// schedule, user and command with runs of blanks collapsed.
func (l Line) Key() string {
	switch l.Kind {
	case Entry:
		parts := []string{l.Schedule}
		if l.User != "" {
			parts = append(parts, l.User)
		}
		return strings.Join(append(parts, strings.Join(strings.Fields(l.Command), " ")), " ")
	case Env:
		return l.Name + "=" + l.Value
	}
	return strings.TrimSpace(l.Raw)
}

var specials = map[string]bool{"@reboot": true, "@yearly": true, "@annually": true, "@monthly": true,
	"@weekly": true, "@daily": true, "@midnight": true, "@hourly": true}

// Parse reads a crontab. system is true for /etc/crontab and /etc/cron.d
// files, whose entries carry a user name after the schedule.
func Parse(content string, system bool) []Line {
	if content == "" {
		return nil
	}
	var out []Line
	for i, raw := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
		l := Line{Raw: raw, No: i + 1}
		t := strings.TrimSpace(raw)
		switch {
		case t == "":
			l.Kind = Blank
		case strings.HasPrefix(t, "#"):
			l.Kind = Comment
		default:
			l = parseJob(l, t, system)
		}
		out = append(out, l)
	}
	return out
}

func parseJob(l Line, t string, system bool) Line {
	f := strings.Fields(t)
	if name, val, ok := strings.Cut(t, "="); ok && !strings.ContainsAny(name, " \t*@/") && name != "" {
		l.Kind, l.Name, l.Value = Env, strings.TrimSpace(name), strings.TrimSpace(val)
		return l
	}
	n := 5
	if specials[strings.ToLower(f[0])] {
		n = 1
	}
	need := n + 1
	if system {
		need++
	}
	if len(f) < need {
		l.Kind = Bad
		return l
	}
	l.Kind = Entry
	l.Schedule = strings.Join(f[:n], " ")
	rest := f[n:]
	if system {
		l.User = rest[0]
	}
	// The command keeps its own spacing: skip exactly the leading fields.
	cmd := t
	skip := n
	if system {
		skip++
	}
	for k := 0; k < skip; k++ {
		cmd = strings.TrimLeft(cmd, " \t")
		j := strings.IndexAny(cmd, " \t")
		cmd = cmd[j:]
	}
	l.Command = strings.TrimSpace(cmd)
	return l
}

// Entries returns the job lines of a parsed crontab.
func Entries(lines []Line) []Line {
	var out []Line
	for _, l := range lines {
		if l.Kind == Entry {
			out = append(out, l)
		}
	}
	return out
}

// PathRef is an absolute path a job's command mentions.
type PathRef struct {
	Path string
	// Output is true for a redirection target (> file): the job creates it,
	// so only its directory has to exist beforehand.
	Output bool
}

// CommandPaths lists the absolute paths in a cron command: programs,
// scripts, arguments and redirection targets. The part after an unescaped
// '%' is the job's stdin, not command text, and is ignored; /dev and /proc
// paths are skipped.
func CommandPaths(cmd string) []PathRef {
	if i := unescapedPercent(cmd); i >= 0 {
		cmd = cmd[:i]
	}
	var out []PathRef
	seen := map[string]bool{}
	words := shellWords(cmd)
	for i, w := range words {
		isOut := false
		if i > 0 && (words[i-1] == ">" || words[i-1] == ">>" || words[i-1] == "2>" || words[i-1] == "2>>" || words[i-1] == "&>") {
			isOut = true
		}
		// KEY=/path assignments and --opt=/path options mention paths too.
		if j := strings.IndexByte(w, '='); j > 0 && !strings.HasPrefix(w, "/") {
			w = w[j+1:]
		}
		for _, p := range []string{">>", ">", "2>", "<"} {
			if strings.HasPrefix(w, p+"/") {
				isOut = p != "<"
				w = strings.TrimPrefix(w, p)
				break
			}
		}
		if !strings.HasPrefix(w, "/") || strings.ContainsAny(w, "*?$`[") {
			continue
		}
		w = strings.TrimRight(w, ")};")
		if w == "/" || strings.HasPrefix(w, "/dev/") || w == "/dev" || strings.HasPrefix(w, "/proc/") {
			continue
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, PathRef{Path: w, Output: isOut})
		}
	}
	return out
}

func unescapedPercent(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '%' {
			return i
		}
	}
	return -1
}

// shellWords splits a command into words and operators, honouring quotes;
// it is a reader for path discovery, not a shell.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	has := false
	flush := func() {
		if has {
			out = append(out, cur.String())
		}
		cur.Reset()
		has = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			has = true
			i += j + 1
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			has = true
			i += j + 1
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			has = true
		case c == ' ' || c == '\t':
			flush()
		case c == ';' || c == '|' || c == '&' || c == '(' || c == ')' || c == '`':
			flush()
			if c == '&' && i+1 < len(s) && s[i+1] == '>' {
				out = append(out, "&>")
				i++
			}
		case c == '>' || c == '<':
			op := string(c)
			if has && cur.String() == "2" {
				op = "2" + op
				cur.Reset()
				has = false
			}
			flush()
			if c == '>' && i+1 < len(s) && s[i+1] == '>' {
				op += ">"
				i++
			}
			if i+1 < len(s) && s[i+1] == '&' { // 2>&1
				i++
				for i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
					i++
				}
				continue
			}
			out = append(out, op)
		default:
			cur.WriteByte(c)
			has = true
		}
	}
	flush()
	return out
}

// Merge adds to dst the entries (and the variable assignments before them)
// of src that dst lacks, in a block marked with header, and returns the
// result and the number of entries added. Lines of dst are kept as they
// are; when dst already has every entry of src, it is returned unchanged.
func Merge(dst, src string, system bool, header string) (string, int) {
	have := map[string]bool{}
	for _, l := range Parse(dst, system) {
		if l.Kind == Entry {
			have[l.Key()] = true
		}
	}
	var block []string
	var pendingEnv []string
	added := 0
	for _, l := range Parse(src, system) {
		switch l.Kind {
		case Env:
			pendingEnv = append(pendingEnv, l.Raw)
		case Entry:
			if have[l.Key()] {
				continue
			}
			// Variables set above a job apply to it: carry them along.
			block = append(block, pendingEnv...)
			pendingEnv = nil
			block = append(block, l.Raw)
			have[l.Key()] = true
			added++
		}
	}
	if added == 0 {
		return dst, 0
	}
	out := dst
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	out += header + "\n" + strings.Join(block, "\n") + "\n" + BlockEnd + "\n"
	return out, added
}

// BlockEnd closes a block Merge added.
const BlockEnd = "# decant: end"

// DisabledPrefix marks a job decant commented out on the source so it does
// not run twice after the cut-over.
const DisabledPrefix = "#decant-disabled# "

// Disable comments out the entries of content whose keys are in keys and
// returns the new content and how many lines it disabled.
func Disable(content string, system bool, keys map[string]bool) (string, int) {
	lines := strings.Split(content, "\n")
	n := 0
	for i, l := range Parse(content, system) {
		if l.Kind == Entry && keys[l.Key()] {
			lines[i] = DisabledPrefix + lines[i]
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

// Secrets picks credentials out of job lines (-pSECRET, --password=,
// MYSQL_PWD=, tokens in URLs) so they are redacted if a line is ever shown.
func Secrets(content string) []string {
	var out []string
	for _, w := range strings.Fields(content) {
		lw := strings.ToLower(w)
		switch {
		case strings.HasPrefix(w, "-p") && len(w) > 2 && !strings.HasPrefix(w, "--"):
			out = append(out, w[2:])
		case strings.Contains(lw, "password=") || strings.Contains(lw, "pwd=") || strings.Contains(lw, "token=") || strings.Contains(lw, "secret=") || strings.Contains(lw, "key="):
			if _, v, ok := strings.Cut(w, "="); ok {
				out = append(out, strings.Trim(v, `'"`))
			}
		case strings.Contains(w, "://") && strings.Contains(w, "@"):
			if i := strings.Index(w, "://"); i >= 0 {
				if cred, _, ok := strings.Cut(w[i+3:], "@"); ok {
					if _, pw, ok := strings.Cut(cred, ":"); ok {
						out = append(out, pw)
					}
				}
			}
		}
	}
	return out
}
