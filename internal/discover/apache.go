package discover

import (
	"bufio"
	"bytes"
	"path"
	"strings"
)

// apacheLayouts are where Apache's main file lives: Debian's apache2 and
// Red Hat's httpd, each with its default ServerRoot.
var apacheLayouts = []struct{ main, serverRoot string }{
	{"/etc/apache2/apache2.conf", "/etc/apache2"},
	{"/etc/httpd/conf/httpd.conf", "/etc/httpd"},
}

// apacheParser reads an Apache configuration from its main file, following
// Include/IncludeOptional, and collects <VirtualHost> sections. It knows
// the few directives that say where a site lives (ServerName, ServerAlias,
// DocumentRoot, SSLEngine) and skips every other one.
type apacheParser struct {
	fs         rootFS
	p          *part
	serverRoot string
	depth      int
	seen       map[string]int // include stack, to stop loops
	cur        *VHost         // the <VirtualHost> being read, across includes
	vhosts     []VHost
	// The main server, used when there is no <VirtualHost> at all (a Red
	// Hat httpd.conf with only DocumentRoot).
	mainName, mainRoot, mainFile string
	mainLine                     int
}

// apacheVHosts finds the Apache configuration in the tree and returns its
// virtual hosts; found is false when there is no Apache configuration.
func (d *discoverer) apacheVHosts(p *part) (vhosts []VHost, found bool) {
	for _, l := range apacheLayouts {
		if !d.fs.Exists(l.main) {
			continue
		}
		ap := &apacheParser{fs: d.fs, p: p, serverRoot: l.serverRoot, seen: map[string]int{}}
		ap.file(l.main, true)
		if len(ap.vhosts) == 0 && ap.mainRoot != "" {
			v := VHost{Server: "apache", File: ap.mainFile, Line: ap.mainLine, DocRoot: ap.mainRoot}
			if ap.mainName != "" {
				v.Names = []string{ap.mainName}
			}
			ap.vhosts = append(ap.vhosts, v)
		}
		return ap.vhosts, true
	}
	// A tree with sites but no main file (a partial copy): read the sites.
	for _, dir := range []string{"/etc/apache2/sites-enabled", "/etc/httpd/conf.d"} {
		if !d.fs.Exists(dir) {
			continue
		}
		p.note("apache: no main configuration file; read %s directly", dir)
		ap := &apacheParser{fs: d.fs, p: p, serverRoot: path.Dir(dir), seen: map[string]int{}}
		ap.include(dir+"/*", true)
		return ap.vhosts, true
	}
	return nil, false
}

// file parses one file; optional files may be missing without a problem.
func (ap *apacheParser) file(name string, required bool) {
	if ap.seen[name] > 0 || ap.depth > 20 {
		ap.p.problem("apache: %s includes itself; skipped the loop", name)
		return
	}
	data, err := ap.fs.ReadFile(name)
	if err != nil {
		if required {
			ap.p.problem("apache: %v", err)
		}
		return
	}
	ap.seen[name]++
	ap.depth++
	defer func() { ap.seen[name]--; ap.depth-- }()
	for _, ll := range apacheLines(data) {
		ap.directive(name, ll.no, ll.text)
	}
}

// directive handles one logical line.
func (ap *apacheParser) directive(file string, line int, text string) {
	if strings.HasPrefix(text, "</") {
		if strings.EqualFold(strings.TrimSuffix(strings.TrimPrefix(text, "</"), ">"), "virtualhost") && ap.cur != nil {
			ap.vhosts = append(ap.vhosts, *ap.cur)
			ap.cur = nil
		}
		return
	}
	if strings.HasPrefix(text, "<") {
		f := apacheWords(strings.TrimSuffix(text[1:], ">"))
		if len(f) > 0 && strings.EqualFold(f[0], "virtualhost") {
			if ap.cur != nil {
				ap.p.problem("apache: %s:%d: <VirtualHost> inside another one", file, line)
			}
			ap.cur = &VHost{Server: "apache", File: file, Line: line, Listen: f[1:]}
			for _, a := range ap.cur.Listen {
				if strings.HasSuffix(a, ":443") {
					ap.cur.TLS = true
				}
			}
		}
		return
	}
	words := apacheWords(text)
	if len(words) == 0 {
		return
	}
	args := words[1:]
	switch strings.ToLower(words[0]) {
	case "serverroot":
		if len(args) > 0 {
			ap.serverRoot = args[0]
		}
	case "include", "includeoptional":
		optional := strings.EqualFold(words[0], "includeoptional")
		for _, a := range args {
			ap.include(a, optional)
		}
	case "servername":
		if len(args) == 0 {
			return
		}
		name := apacheHostName(args[0])
		if ap.cur == nil {
			ap.mainName = name
			return
		}
		ap.cur.Names = append([]string{name}, ap.cur.Names...)
	case "serveralias":
		if ap.cur != nil {
			for _, a := range args {
				ap.cur.Names = append(ap.cur.Names, apacheHostName(a))
			}
		}
	case "documentroot":
		if len(args) == 0 {
			return
		}
		root := path.Clean(args[0])
		if !path.IsAbs(root) {
			root = path.Join(ap.serverRoot, root)
		}
		if ap.cur == nil {
			ap.mainRoot, ap.mainFile, ap.mainLine = root, file, line
			return
		}
		ap.cur.DocRoot = root
	case "sslengine":
		if ap.cur != nil && len(args) > 0 && strings.EqualFold(args[0], "on") {
			ap.cur.TLS = true
		}
	}
}

// include expands an Include argument: relative to ServerRoot, a glob, or
// a directory (every file under it, in order), as Apache does.
func (ap *apacheParser) include(arg string, optional bool) {
	if !path.IsAbs(arg) {
		arg = path.Join(ap.serverRoot, arg)
	}
	matches, err := ap.fs.Glob(arg)
	if err != nil {
		ap.p.problem("apache: include %s: %v", arg, err)
		return
	}
	if len(matches) == 0 {
		if !optional && !strings.ContainsAny(arg, "*?[") {
			ap.p.problem("apache: include %s: no such file", arg)
		}
		return
	}
	for _, m := range matches {
		fi, err := ap.fs.Stat(m)
		if err != nil {
			ap.p.problem("apache: %v", err)
			continue
		}
		if fi.IsDir() {
			ap.include(m+"/*", true)
			continue
		}
		ap.file(m, true)
	}
}

type apacheLine struct {
	no   int
	text string
}

// apacheLines joins continuation lines (a trailing backslash) and drops
// comments and blank lines; each logical line keeps its first line number.
func apacheLines(data []byte) []apacheLine {
	var out []apacheLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	no, start := 0, 0
	var acc strings.Builder
	for sc.Scan() {
		no++
		l := strings.TrimSpace(sc.Text())
		if acc.Len() == 0 {
			start = no
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
		}
		if strings.HasSuffix(l, "\\") {
			acc.WriteString(strings.TrimSuffix(l, "\\"))
			acc.WriteByte(' ')
			continue
		}
		acc.WriteString(l)
		out = append(out, apacheLine{start, strings.TrimSpace(acc.String())})
		acc.Reset()
	}
	if acc.Len() > 0 {
		out = append(out, apacheLine{start, strings.TrimSpace(acc.String())})
	}
	return out
}

// apacheWords splits a directive's arguments on blanks, honouring double
// and single quotes and backslash escapes inside them.
func apacheWords(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(s) && (s[i+1] == quote || s[i+1] == '\\') {
				i++
				cur.WriteByte(s[i])
			} else if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// apacheHostName strips a scheme and a port: ServerName takes
// [scheme://]name[:port].
func apacheHostName(s string) string {
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s[:i], ":") {
		s = s[:i]
	}
	return strings.ToLower(s)
}
