package discover

import (
	"fmt"
	"path"
	"strings"
)

const nginxMain = "/etc/nginx/nginx.conf"

// nginxDirective is one directive: name, arguments and, for block
// directives (server { ... }), the directives inside.
type nginxDirective struct {
	name  string
	args  []string
	block []nginxDirective
	isBlk bool
	file  string
	line  int
}

// nginxParser reads nginx's configuration, expanding includes in place.
type nginxParser struct {
	fs     rootFS
	p      *part
	prefix string // relative includes are taken from the main file's directory
	seen   map[string]int
	depth  int
}

// nginxVHosts finds nginx's configuration in the tree and returns its
// server blocks; found is false when there is none.
func (d *discoverer) nginxVHosts(p *part) (vhosts []VHost, found bool) {
	np := &nginxParser{fs: d.fs, p: p, prefix: path.Dir(nginxMain), seen: map[string]int{}}
	var top []nginxDirective
	switch {
	case d.fs.Exists(nginxMain):
		top = np.file(nginxMain)
	case d.fs.Exists("/etc/nginx/sites-enabled") || d.fs.Exists("/etc/nginx/conf.d"):
		p.note("nginx: no %s; read sites-enabled and conf.d directly", nginxMain)
		top = append(np.include("/etc/nginx/conf.d/*.conf"), np.include("/etc/nginx/sites-enabled/*")...)
	default:
		return nil, false
	}
	var walk func(ds []nginxDirective)
	walk = func(ds []nginxDirective) {
		for _, dir := range ds {
			switch {
			case dir.name == "server" && dir.isBlk:
				vhosts = append(vhosts, nginxServer(dir))
			case dir.name == "stream" || dir.name == "mail":
				// Their server blocks are TCP proxies, not web sites.
			case dir.isBlk:
				walk(dir.block)
			}
		}
	}
	walk(top)
	return vhosts, true
}

// nginxServer reads a server block: names, root (or location /'s root),
// listen addresses and TLS.
func nginxServer(s nginxDirective) VHost {
	v := VHost{Server: "nginx", File: s.file, Line: s.line}
	var locRoot string
	for _, d := range s.block {
		switch d.name {
		case "server_name":
			for _, n := range d.args {
				if n != "" && n != "_" && n != `""` {
					v.Names = append(v.Names, strings.ToLower(n))
				}
			}
		case "root":
			if len(d.args) > 0 {
				v.DocRoot = path.Clean(d.args[0])
			}
		case "listen":
			if len(d.args) > 0 {
				v.Listen = append(v.Listen, d.args[0])
			}
			for _, a := range d.args[1:] {
				if a == "ssl" || a == "quic" {
					v.TLS = true
				}
			}
		case "ssl":
			if len(d.args) > 0 && d.args[0] == "on" {
				v.TLS = true
			}
		case "location":
			if locRoot != "" || len(d.args) == 0 || d.args[len(d.args)-1] != "/" {
				continue
			}
			for _, ld := range d.block {
				if (ld.name == "root" || ld.name == "alias") && len(ld.args) > 0 {
					locRoot = path.Clean(ld.args[0])
				}
			}
		}
	}
	if v.DocRoot == "" {
		v.DocRoot = locRoot
	}
	return v
}

// file parses one file into directives, expanding includes.
func (np *nginxParser) file(name string) []nginxDirective {
	if np.seen[name] > 0 || np.depth > 20 {
		np.p.problem("nginx: %s includes itself; skipped the loop", name)
		return nil
	}
	data, err := np.fs.ReadFile(name)
	if err != nil {
		np.p.problem("nginx: %v", err)
		return nil
	}
	np.seen[name]++
	np.depth++
	defer func() { np.seen[name]--; np.depth-- }()
	toks, err := nginxTokens(string(data))
	if err != nil {
		np.p.problem("nginx: %s:%v", name, err)
		return nil
	}
	ds, rest, err := np.parse(name, toks, false)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d: unexpected %q", rest[0].line, rest[0].text)
	}
	if err != nil {
		np.p.problem("nginx: %s:%v", name, err)
	}
	return ds
}

// include expands an include argument (a glob, relative to the main
// file's directory when not absolute).
func (np *nginxParser) include(arg string) []nginxDirective {
	if !path.IsAbs(arg) {
		arg = path.Join(np.prefix, arg)
	}
	matches, err := np.fs.Glob(arg)
	if err != nil {
		np.p.problem("nginx: include %s: %v", arg, err)
		return nil
	}
	if len(matches) == 0 && !strings.ContainsAny(arg, "*?[") {
		np.p.problem("nginx: include %s: no such file", arg)
	}
	var out []nginxDirective
	for _, m := range matches {
		if fi, err := np.fs.Stat(m); err == nil && fi.IsDir() {
			continue
		}
		out = append(out, np.file(m)...)
	}
	return out
}

// parse reads directives until the end of toks or, inside a block, the
// closing brace (which it consumes).
func (np *nginxParser) parse(file string, toks []nginxToken, inBlock bool) ([]nginxDirective, []nginxToken, error) {
	var out []nginxDirective
	for len(toks) > 0 {
		t := toks[0]
		switch t.text {
		case "}":
			if t.quoted {
				break
			}
			if !inBlock {
				return out, toks, nil
			}
			return out, toks[1:], nil
		case ";", "{":
			if !t.quoted {
				return out, toks, fmt.Errorf("%d: unexpected %q", t.line, t.text)
			}
		}
		d := nginxDirective{name: t.text, file: file, line: t.line}
		toks = toks[1:]
		for {
			if len(toks) == 0 {
				return out, nil, fmt.Errorf("%d: %s: missing ';' or '{'", d.line, d.name)
			}
			a := toks[0]
			toks = toks[1:]
			if !a.quoted && a.text == ";" {
				break
			}
			if !a.quoted && a.text == "{" {
				d.isBlk = true
				var err error
				d.block, toks, err = np.parse(file, toks, true)
				if err != nil {
					return out, toks, err
				}
				break
			}
			if !a.quoted && a.text == "}" {
				return out, toks, fmt.Errorf("%d: %s: missing ';'", d.line, d.name)
			}
			d.args = append(d.args, a.text)
		}
		if d.name == "include" && !d.isBlk {
			for _, a := range d.args {
				out = append(out, np.include(a)...)
			}
			continue
		}
		out = append(out, d)
	}
	if inBlock {
		return out, nil, fmt.Errorf("end of file inside a block: missing '}'")
	}
	return out, nil, nil
}

type nginxToken struct {
	text   string
	line   int
	quoted bool
}

// nginxTokens splits nginx syntax into words, ';', '{' and '}'; '#' starts
// a comment outside quotes; "${var}" stays inside its word.
func nginxTokens(s string) ([]nginxToken, error) {
	var out []nginxToken
	line := 1
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			out = append(out, nginxToken{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			start := line
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("%d: unterminated quote", start)
				}
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteString(nginxUnescape(s[i+1]))
					i += 2
					continue
				}
				if s[i] == c {
					i++
					break
				}
				if s[i] == '\n' {
					line++
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, nginxToken{text: b.String(), line: start, quoted: true})
		default:
			var b strings.Builder
			for i < len(s) {
				c := s[i]
				if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '{' || c == '}' {
					break
				}
				if c == '$' && i+1 < len(s) && s[i+1] == '{' {
					j := strings.IndexByte(s[i:], '}')
					if j < 0 {
						return nil, fmt.Errorf("%d: unterminated ${", line)
					}
					b.WriteString(s[i : i+j+1])
					i += j + 1
					continue
				}
				if c == '\\' && i+1 < len(s) {
					b.WriteString(nginxUnescape(s[i+1]))
					i += 2
					continue
				}
				b.WriteByte(c)
				i++
			}
			out = append(out, nginxToken{text: b.String(), line: line})
		}
	}
	return out, nil
}

// nginxUnescape is what nginx makes of a backslash before c: quotes,
// backslash and t/r/n are unescaped; anything else keeps its backslash
// (regular expressions such as \.php$ rely on it).
func nginxUnescape(c byte) string {
	switch c {
	case '"', '\'', '\\':
		return string(c)
	case 't':
		return "\t"
	case 'r':
		return "\r"
	case 'n':
		return "\n"
	}
	return "\\" + string(c)
}
