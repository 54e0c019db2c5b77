package mysqlcompat

import "strings"

// tokKind classifies a token of MySQL SQL text.
type tokKind int

const (
	tokWord   tokKind = iota // keyword or unquoted identifier
	tokString                // '...' or "..." literal
	tokIdent                 // `quoted identifier`
	tokPunct                 // one punctuation character
	tokNumber
)

// token is one lexeme with its byte span in the source text.
type token struct {
	kind       tokKind
	text       string // as written (quotes included)
	start, end int
}

// upper is the token text upper-cased (for words).
func (t token) upper() string { return strings.ToUpper(t.text) }

// tokenize splits SQL text into tokens, skipping whitespace and comments
// (-- , # and /* */; the bodies of /*!NNNNN ... */ version comments are
// tokenized). It never fails: an unterminated quote runs to the end.
func tokenize(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '#' || c == '-' && strings.HasPrefix(s[i:], "-- ") || strings.HasPrefix(s[i:], "--\n"):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*!"):
			i += 3
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += end + 4
			}
		case c == '*' && strings.HasPrefix(s[i:], "*/"):
			i += 2 // end of a version comment
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(s) {
				if s[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(s))
			k := tokString
			if c == '`' {
				k = tokIdent
			}
			out = append(out, token{k, s[i:end], i, end})
			i = end
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] == '.') {
				j++
			}
			out = append(out, token{tokNumber, s[i:j], i, j})
			i = j
		case isWordByte(c) || c >= 0x80:
			j := i
			for j < len(s) && (isWordByte(s[j]) || s[j] >= 0x80) {
				j++
			}
			out = append(out, token{tokWord, s[i:j], i, j})
			i = j
		default:
			out = append(out, token{tokPunct, s[i : i+1], i, i + 1})
			i++
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// unquote returns the value of a quoted token (identifier or string).
func unquote(t token) string {
	s := t.text
	if len(s) < 2 {
		return s
	}
	q := s[0]
	if q != '\'' && q != '"' && q != '`' {
		return s
	}
	s = s[1 : len(s)-1]
	s = strings.ReplaceAll(s, string([]byte{q, q}), string(q))
	if q != '`' {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case '0':
					b.WriteByte(0)
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	return s
}

// FunctionCalls returns the upper-cased names of the functions called in
// SQL text (a word directly followed by "("), not counting qualified
// names (db.f()) or words inside strings and comments.
func FunctionCalls(sql string) []string {
	toks := tokenize(sql)
	var out []string
	for i, t := range toks {
		if t.kind != tokWord || i+1 >= len(toks) || toks[i+1].text != "(" || toks[i+1].start != t.end {
			continue
		}
		if i > 0 && toks[i-1].text == "." {
			continue
		}
		out = append(out, t.upper())
	}
	return out
}

// GroupByOrder reports whether SQL text uses GROUP BY ... ASC|DESC, which
// MySQL 8.0.13 removed (MySQL Shell's groupByAscSyntax check).
func GroupByOrder(sql string) bool {
	toks := tokenize(sql)
	in := false
	depth, gbDepth := 0, 0
	for i, t := range toks {
		switch {
		case t.text == "(":
			depth++
		case t.text == ")":
			depth--
			if in && depth < gbDepth {
				in = false
			}
		case t.text == ";":
			in = false
		case t.kind != tokWord:
		case t.upper() == "GROUP" && i+1 < len(toks) && strings.EqualFold(toks[i+1].text, "BY"):
			in, gbDepth = true, depth
		case in && depth == gbDepth && (t.upper() == "ORDER" || t.upper() == "HAVING" || t.upper() == "LIMIT" ||
			t.upper() == "WINDOW" || t.upper() == "UNION" || t.upper() == "WITH"):
			in = false
		case in && depth == gbDepth && (t.upper() == "ASC" || t.upper() == "DESC"):
			return true
		}
	}
	return false
}
