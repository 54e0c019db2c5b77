package schema

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Decision is a change made to a definition so the target accepts it, or a
// problem the operator must know about. Decisions are logged and kept in
// receipts: nothing is changed silently.
type Decision struct {
	Object  string `json:"object"`
	Message string `json:"message"`
	// Problem marks what needs the operator (a definer missing on the
	// target, an unsupported feature), as opposed to a mapping done.
	Problem bool `json:"problem,omitempty"`
}

func (d Decision) String() string { return d.Object + ": " + d.Message }

// Mapper rewrites definitions from the source server's dialect into the
// target's.
type Mapper struct {
	Src, Dst *Server
}

// NewMapper returns a mapper from src to dst.
func NewMapper(src, dst *Server) *Mapper { return &Mapper{Src: src, Dst: dst} }

// collationCandidates lists replacements to try, best first, for a
// collation the target lacks.
func collationCandidates(c string) []string {
	cs, rest, _ := strings.Cut(c, "_")
	var out []string
	switch {
	case strings.Contains(rest, "0900"):
		// MySQL 8's UCA 9.0.0 collations: MariaDB 10.10+ has UCA 14.0.0.
		suffix := rest[strings.Index(rest, "0900")+len("0900"):] // _ai_ci, _as_cs, _bin
		switch suffix {
		case "_bin":
			out = append(out, cs+"_nopad_bin", cs+"_bin")
		case "_as_cs":
			out = append(out, cs+"_uca1400_as_cs", cs+"_bin")
		default:
			out = append(out, cs+"_uca1400"+suffix, cs+"_uca1400_ai_ci", cs+"_unicode_520_ci", cs+"_unicode_ci", cs+"_general_ci")
		}
	case strings.HasPrefix(rest, "uca1400"):
		// MariaDB's UCA 14 into MySQL 8 (or older MariaDB).
		suffix := rest[len("uca1400"):]
		if strings.HasSuffix(suffix, "_as_cs") {
			out = append(out, cs+"_0900_as_cs", cs+"_bin")
		} else if strings.HasSuffix(suffix, "_bin") {
			out = append(out, cs+"_0900_bin", cs+"_bin")
		} else {
			out = append(out, cs+"_0900_ai_ci", cs+"_unicode_520_ci", cs+"_unicode_ci", cs+"_general_ci")
		}
	case strings.Contains(rest, "nopad_"):
		out = append(out, cs+"_"+strings.Replace(rest, "nopad_", "", 1))
		if rest == "nopad_bin" {
			out = append([]string{cs + "_0900_bin"}, out...)
		}
	}
	// utf8mb3 is called utf8 on older servers, and the other way round.
	switch cs {
	case "utf8mb3":
		out = append(out, "utf8_"+rest)
	case "utf8":
		out = append(out, "utf8mb3_"+rest)
	}
	return out
}

// Collation returns the collation to use on the target for c and whether
// it differs. The empty string means the target has nothing for c's
// character set.
func (m *Mapper) Collation(c string) (string, bool) {
	lc := strings.ToLower(c)
	if m.Dst.HasCollation(lc) {
		return lc, false
	}
	for _, cand := range collationCandidates(lc) {
		if m.Dst.HasCollation(cand) {
			return cand, true
		}
	}
	cs, _, _ := strings.Cut(lc, "_")
	if cs == "utf8mb3" {
		if d := m.Dst.DefaultCollation["utf8"]; d != "" {
			return d, true
		}
	}
	if d := m.Dst.DefaultCollation[cs]; d != "" {
		return d, true
	}
	return "", true
}

// Charset returns the name the target uses for charset cs.
func (m *Mapper) Charset(cs string) string {
	lc := strings.ToLower(cs)
	if _, ok := m.Dst.DefaultCollation[lc]; ok || len(m.Dst.DefaultCollation) == 0 {
		return lc
	}
	switch lc {
	case "utf8mb3":
		if _, ok := m.Dst.DefaultCollation["utf8"]; ok {
			return "utf8"
		}
	case "utf8":
		if _, ok := m.Dst.DefaultCollation["utf8mb3"]; ok {
			return "utf8mb3"
		}
	}
	return lc
}

var (
	wordRe       = regexp.MustCompile(`(?i)\b[a-z0-9]+_[a-z0-9_]+\b`)
	charsetRe    = regexp.MustCompile(`(?i)\b(CHARSET|CHARACTER SET)(\s*=?\s*)(utf8mb3|utf8)\b`)
	versionedRe  = regexp.MustCompile(`/\*!(\d{5,6})\s?(.*?)\*/`)
	engineRe     = regexp.MustCompile(`(?i)\bENGINE\s*=\s*(\w+)`)
	ariaOptsRe   = regexp.MustCompile(`(?i)\s+(PAGE_CHECKSUM|TRANSACTIONAL|PAGE_COMPRESSED|PAGE_COMPRESSION_LEVEL|IETF_QUOTES)\s*=\s*'?\w+'?`)
	mariaTypeRe  = regexp.MustCompile("(?im)^(\\s*`(?:[^`]|``)+`\\s+)(uuid|inet6|inet4)\\b")
	sridRe       = regexp.MustCompile(`(?i)\s*/\*!80003 SRID \d+ \*/|\s+SRID \d+\b`)
	eventStateRe = regexp.MustCompile(`(?is)^(.*?\bON COMPLETION\s+(?:NOT\s+)?PRESERVE\s+)(ENABLE|DISABLE ON SLAVE|DISABLE ON REPLICA|DISABLE)\b`)
)

// mapOutside applies f to the parts of s outside quotes and backticks, so
// identifiers and string values are never rewritten.
func mapOutside(s string, f func(string) string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(s); i++ {
		q := s[i]
		if q != '`' && q != '\'' && q != '"' {
			continue
		}
		b.WriteString(f(s[start:i]))
		j := i + 1
		for j < len(s) {
			if s[j] == '\\' && q != '`' {
				j += 2
				continue
			}
			if s[j] == q {
				if j+1 < len(s) && s[j+1] == q {
					j += 2
					continue
				}
				break
			}
			j++
		}
		if j >= len(s) {
			j = len(s) - 1
		}
		b.WriteString(s[i : j+1])
		start = j + 1
		i = j
	}
	if start < len(s) {
		b.WriteString(f(s[start:]))
	}
	return b.String()
}

// DDL rewrites one CREATE statement (table, view, routine, trigger or
// event) for the target and says what it changed. object names it in the
// decisions ("shop.orders").
func (m *Mapper) DDL(object, ddl string) (string, []Decision) {
	var ds []Decision
	seen := map[string]bool{}
	note := func(problem bool, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !seen[msg] {
			seen[msg] = true
			ds = append(ds, Decision{Object: object, Message: msg, Problem: problem})
		}
	}
	out := mapOutside(ddl, func(seg string) string {
		seg = wordRe.ReplaceAllStringFunc(seg, func(w string) string {
			lw := strings.ToLower(w)
			if _, isColl := m.Src.Collations[lw]; !isColl && !looksLikeCollation(lw) {
				return w
			}
			if m.Dst.HasCollation(lw) {
				return w
			}
			to, _ := m.Collation(lw)
			if to == "" {
				note(true, "collation %s has no equivalent on the target (%s)", lw, m.Dst)
				return w
			}
			note(false, "collation %s → %s (the target, %s, has no %s)", lw, to, m.Dst, lw)
			return to
		})
		seg = charsetRe.ReplaceAllStringFunc(seg, func(w string) string {
			sm := charsetRe.FindStringSubmatch(w)
			to := m.Charset(sm[3])
			if strings.EqualFold(to, sm[3]) {
				return w
			}
			note(false, "character set %s → %s", strings.ToLower(sm[3]), to)
			return sm[1] + sm[2] + to
		})
		return seg
	})
	if m.Dst.Flavor == MariaDB {
		// MariaDB runs every /*!NNNNN */ comment below its own version, so
		// MySQL 8-only table options must go.
		out = versionedRe.ReplaceAllStringFunc(out, func(c string) string {
			sm := versionedRe.FindStringSubmatch(c)
			v, _ := strconv.Atoi(sm[1])
			if v < 80000 || v >= 100000 {
				return c
			}
			body := strings.TrimSpace(sm[2])
			if strings.EqualFold(body, "INVISIBLE") {
				return "INVISIBLE"
			}
			note(false, "dropped the MySQL 8 option %q (MariaDB does not have it)", body)
			return ""
		})
		if sridRe.MatchString(out) {
			out = sridRe.ReplaceAllString(out, "")
			note(true, "dropped SRID column attributes: MariaDB spatial columns do not restrict the SRID")
		}
	}
	if m.Dst.Flavor == MySQL {
		out = mariaTypeRe.ReplaceAllStringFunc(out, func(s string) string {
			sm := mariaTypeRe.FindStringSubmatch(s)
			typ := strings.ToLower(sm[2])
			to := map[string]string{"uuid": "char(36)", "inet6": "varchar(39)", "inet4": "varchar(15)"}[typ]
			note(false, "MariaDB type %s → %s (MySQL has no %s; values are copied in their text form)", typ, to, typ)
			return sm[1] + to
		})
		if ariaOptsRe.MatchString(out) {
			out = ariaOptsRe.ReplaceAllString(out, "")
			note(false, "dropped MariaDB-only table options (PAGE_CHECKSUM, TRANSACTIONAL, ...)")
		}
	}
	replaced := false
	out = engineRe.ReplaceAllStringFunc(out, func(s string) string {
		sm := engineRe.FindStringSubmatch(s)
		e := strings.ToLower(sm[1])
		if len(m.Dst.Engines) == 0 || m.Dst.Engines[e] {
			return s
		}
		note(false, "engine %s → InnoDB (the target does not offer %s)", sm[1], sm[1])
		replaced = true
		return "ENGINE=InnoDB"
	})
	if replaced && ariaOptsRe.MatchString(out) {
		// Aria's table options go with the engine.
		out = ariaOptsRe.ReplaceAllString(out, "")
	}
	return out, ds
}

// looksLikeCollation catches collations the source did not list (objects
// read from a dump, tests): charset_..._ci/_cs/_bin.
func looksLikeCollation(w string) bool {
	if !(strings.HasSuffix(w, "_ci") || strings.HasSuffix(w, "_cs") || strings.HasSuffix(w, "_bin")) {
		return false
	}
	cs, _, _ := strings.Cut(w, "_")
	switch cs {
	case "utf8mb4", "utf8mb3", "utf8", "latin1", "latin2", "ascii", "binary", "cp1250", "cp1251", "cp1256", "cp1257",
		"ucs2", "utf16", "utf16le", "utf32", "gbk", "gb2312", "gb18030", "big5", "sjis", "cp932", "ujis", "eucjpms", "euckr",
		"greek", "hebrew", "tis620", "koi8r", "koi8u", "swe7", "hp8", "dec8", "cp850", "cp852", "cp866", "keybcs2", "macce",
		"macroman", "armscii8", "geostd8", "latin5", "latin7":
		return true
	}
	return false
}

// DisableEvent rewrites a CREATE EVENT statement so the event is created
// DISABLED; it reports false when the statement's state clause is not
// where SHOW CREATE EVENT puts it.
func DisableEvent(create string) (string, bool) {
	sm := eventStateRe.FindStringSubmatchIndex(create)
	if sm == nil {
		return create, false
	}
	return create[:sm[4]] + "DISABLE" + create[sm[5]:], true
}

var (
	mysql8Modes = []string{"REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE", "ONLY_FULL_GROUP_BY",
		"NO_UNSIGNED_SUBTRACTION", "NO_DIR_IN_CREATE", "ANSI", "NO_AUTO_VALUE_ON_ZERO", "NO_BACKSLASH_ESCAPES",
		"STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "NO_ZERO_IN_DATE", "NO_ZERO_DATE", "ALLOW_INVALID_DATES",
		"ERROR_FOR_DIVISION_BY_ZERO", "TRADITIONAL", "HIGH_NOT_PRECEDENCE", "NO_ENGINE_SUBSTITUTION",
		"PAD_CHAR_TO_FULL_LENGTH", "TIME_TRUNCATE_FRACTIONAL"}
	// Modes MySQL 8.0 removed, which 5.7 and MariaDB still have.
	legacyModes = []string{"NO_AUTO_CREATE_USER", "NO_FIELD_OPTIONS", "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "DB2",
		"MAXDB", "MSSQL", "MYSQL323", "MYSQL40", "ORACLE", "POSTGRESQL"}
	mariaModes = []string{"EMPTY_STRING_IS_NULL", "SIMULTANEOUS_ASSIGNMENT", "TIME_ROUND_FRACTIONAL"}
)

// validModes is the set of sql_mode words the target accepts.
func (m *Mapper) validModes() map[string]bool {
	ok := map[string]bool{}
	for _, w := range mysql8Modes {
		ok[w] = true
	}
	if m.Dst.Flavor == MariaDB || !m.Dst.AtLeast(8, 0, 0) {
		for _, w := range legacyModes {
			ok[w] = true
		}
	}
	if m.Dst.Flavor == MariaDB {
		delete(ok, "TIME_TRUNCATE_FRACTIONAL")
		for _, w := range mariaModes {
			ok[w] = true
		}
	} else if !m.Dst.AtLeast(8, 0, 0) {
		delete(ok, "TIME_TRUNCATE_FRACTIONAL")
	}
	return ok
}

// SQLMode keeps the sql_mode words the target knows and returns the ones
// it dropped, sorted.
func (m *Mapper) SQLMode(mode string) (string, []string) {
	ok := m.validModes()
	var keep, drop []string
	for _, w := range strings.Split(mode, ",") {
		w = strings.TrimSpace(strings.ToUpper(w))
		if w == "" {
			continue
		}
		if ok[w] {
			keep = append(keep, w)
		} else {
			drop = append(drop, w)
		}
	}
	sort.Strings(drop)
	return strings.Join(keep, ","), drop
}

var plainKeyRe = regexp.MustCompile("^\\s*KEY `")

// SplitSecondaryKeys takes the plain (non-unique, non-fulltext, non-
// spatial) secondary indexes out of a SHOW CREATE TABLE statement and
// returns them as ALTER TABLE clauses ("ADD KEY ..."): a table loads
// faster without them and builds them afterwards by sorting.
func SplitSecondaryKeys(create string) (string, []string) {
	lines := strings.Split(create, "\n")
	var keep, adds []string
	for _, l := range lines {
		if plainKeyRe.MatchString(l) {
			adds = append(adds, "ADD "+strings.TrimSuffix(strings.TrimSpace(l), ","))
			continue
		}
		keep = append(keep, l)
	}
	if len(adds) == 0 {
		return create, nil
	}
	// The line before the closing parenthesis must not end with a comma.
	for i := 1; i < len(keep); i++ {
		if strings.HasPrefix(keep[i], ")") {
			keep[i-1] = strings.TrimSuffix(keep[i-1], ",")
			break
		}
	}
	return strings.Join(keep, "\n"), adds
}

// IndexName is the name in an "ADD KEY `name` (...)" clause.
func IndexName(add string) string {
	i := strings.IndexByte(add, '`')
	if i < 0 {
		return ""
	}
	rest := add[i+1:]
	var b strings.Builder
	for j := 0; j < len(rest); j++ {
		if rest[j] == '`' {
			if j+1 < len(rest) && rest[j+1] == '`' {
				b.WriteByte('`')
				j++
				continue
			}
			break
		}
		b.WriteByte(rest[j])
	}
	return b.String()
}
