package mysqlcompat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Profile is what a target server accepts. A static profile ("mysql-8.0")
// knows only what the release notes say; a live one (LiveProfile) adds
// what the real server reports: its sql_mode, plugins, engines,
// collations, variables, accounts, and its parser's reserved words.
type Profile struct {
	Name    string
	Version Version
	Live    bool
	// SQLMode is the target's global sql_mode (live) or the release's default.
	SQLMode string

	reserved    map[string]bool
	probed      map[string]bool // live parser answers: word → reserved
	modes       map[string]bool
	plugins     map[string]Support
	engines     map[string]Support
	collations  map[string]bool // nil: static rules
	variables   map[string]bool // nil: static rules
	privileges  map[string]bool // nil: unknown
	Accounts    map[string]bool // AccountName keys; nil: unknown
	NameResolve bool            // false when skip_name_resolve is ON
}

// StaticProfile returns the profile of release v from tables alone.
func StaticProfile(v Version) *Profile {
	name := strings.ToLower(v.Flavor.Name()) + "-" + v.Series()
	if v.Patch != 999 {
		name = fmt.Sprintf("%s.%d", name, v.Patch)
	}
	return &Profile{
		Name: name, Version: v, SQLMode: defaultSQLMode(v),
		reserved: ReservedWords(v), modes: sqlModes(v), plugins: authPlugins(v), engines: engines(v),
		NameResolve: true,
	}
}

// NamedProfile parses a profile name ("mysql-8.0", "mariadb-10.11.6").
func NamedProfile(name string) (*Profile, error) {
	v, err := ParseProfileName(name)
	if err != nil {
		return nil, err
	}
	return StaticProfile(v), nil
}

// LiveProfile builds the profile of a running server.
func LiveProfile(ctx context.Context, q Querier) (*Profile, error) {
	v, err := ReadVersion(ctx, q)
	if err != nil {
		return nil, err
	}
	p := StaticProfile(v)
	p.Name, p.Live = "target "+v.String(), true
	if err := q.QueryRowContext(ctx, "SELECT @@GLOBAL.sql_mode").Scan(&p.SQLMode); err != nil {
		return nil, fmt.Errorf("read target sql_mode: %w", err)
	}
	var snr sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT @@GLOBAL.skip_name_resolve").Scan(&snr); err == nil {
		p.NameResolve = snr.String == "0" || strings.EqualFold(snr.String, "OFF")
	}
	if p.variables, err = variableNames(ctx, q); err != nil {
		return nil, err
	}
	p.collations = map[string]bool{}
	if err := scanRows(ctx, q, "SELECT LOWER(COLLATION_NAME) FROM information_schema.COLLATIONS", nil, func(r *sql.Rows) error {
		var c string
		if err := r.Scan(&c); err != nil {
			return err
		}
		p.collations[c] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list target collations: %w", err)
	}
	// MariaDB 10.10+ lists charset-independent names (uca1400_ai_ci) there
	// and the full ones (utf8mb4_uca1400_ai_ci) only here.
	if v.Is(MariaDB, 10, 10, 0) {
		_ = scanRows(ctx, q, "SELECT LOWER(FULL_COLLATION_NAME) FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY", nil, func(r *sql.Rows) error {
			var c string
			if err := r.Scan(&c); err != nil {
				return err
			}
			p.collations[c] = true
			return nil
		})
	}
	p.engines = map[string]Support{}
	if err := scanRows(ctx, q, "SELECT UPPER(ENGINE), SUPPORT FROM information_schema.ENGINES", nil, func(r *sql.Rows) error {
		var e, s string
		if err := r.Scan(&e, &s); err != nil {
			return err
		}
		if s == "YES" || s == "DEFAULT" {
			p.engines[e] = Available
		} else {
			p.engines[e] = Loadable
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list target engines: %w", err)
	}
	// MySQL refuses CREATE TABLE with engines listed here, installed or not.
	var disabled sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT @@GLOBAL.disabled_storage_engines").Scan(&disabled); err == nil {
		for _, e := range strings.Split(disabled.String, ",") {
			if e = strings.ToUpper(strings.TrimSpace(e)); e != "" {
				p.engines[e] = Unsupported
			}
		}
	}
	p.plugins = map[string]Support{}
	if err := scanRows(ctx, q, "SELECT LOWER(PLUGIN_NAME) FROM information_schema.PLUGINS WHERE PLUGIN_TYPE = 'AUTHENTICATION' AND PLUGIN_STATUS = 'ACTIVE'", nil, func(r *sql.Rows) error {
		var n string
		if err := r.Scan(&n); err != nil {
			return err
		}
		p.plugins[n] = Available
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list target plugins: %w", err)
	}
	// mysql_native_password and (MySQL) caching_sha2_password are built in
	// and always listed; loadable ones come from ALL_PLUGINS (MariaDB) or
	// the release tables.
	if v.Flavor == MariaDB {
		_ = scanRows(ctx, q, `SELECT LOWER(PLUGIN_NAME), UPPER(PLUGIN_TYPE) FROM information_schema.ALL_PLUGINS
			WHERE PLUGIN_TYPE IN ('AUTHENTICATION','STORAGE ENGINE') AND PLUGIN_STATUS <> 'ACTIVE'`, nil, func(r *sql.Rows) error {
			var n, t string
			if err := r.Scan(&n, &t); err != nil {
				return err
			}
			if t == "AUTHENTICATION" && p.plugins[n] == Unsupported {
				p.plugins[n] = Loadable
			}
			if t == "STORAGE ENGINE" && p.engines[strings.ToUpper(n)] == Unsupported {
				p.engines[strings.ToUpper(n)] = Loadable
			}
			return nil
		})
	} else {
		for n, s := range authPlugins(v) {
			if s == Loadable && p.plugins[n] == Unsupported {
				p.plugins[n] = Loadable
			}
		}
	}
	p.privileges = map[string]bool{}
	if err := scanRows(ctx, q, "SHOW PRIVILEGES", nil, func(r *sql.Rows) error {
		var priv, context, comment sql.NullString
		if err := r.Scan(&priv, &context, &comment); err != nil {
			return err
		}
		p.privileges[strings.ToUpper(priv.String)] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list target privileges: %w", err)
	}
	accts, err := ListAccounts(ctx, q)
	if err != nil {
		return nil, err
	}
	p.SetAccounts(accts)
	return p, nil
}

// SetAccounts records the accounts that exist on the target.
func (p *Profile) SetAccounts(accts []Account) {
	p.Accounts = map[string]bool{}
	for _, a := range accts {
		p.Accounts[AccountName(a.User, a.Host)] = true
		if a.IsRole {
			p.Accounts["'"+a.User+"'"] = true
		}
	}
}

// Reserved reports whether word must be quoted on the target.
func (p *Profile) Reserved(word string) bool {
	w := strings.ToUpper(word)
	if r, ok := p.probed[w]; ok {
		return r
	}
	return p.reserved[w]
}

// HasSQLMode reports whether the target accepts the sql_mode value.
func (p *Profile) HasSQLMode(m string) bool { return p.modes[strings.ToUpper(strings.TrimSpace(m))] }

// Plugin says whether the target can authenticate with plugin.
func (p *Profile) Plugin(name string) Support { return p.plugins[strings.ToLower(name)] }

// Engine says whether the target has the storage engine.
func (p *Profile) Engine(name string) Support { return p.engines[strings.ToUpper(name)] }

// HasCollation reports whether the target knows the collation.
func (p *Profile) HasCollation(name string) bool {
	n := strings.ToLower(name)
	if p.collations == nil || n == "" {
		return hasCollationStatic(p.Version, n)
	}
	if p.collations[n] {
		return true
	}
	// utf8 and utf8mb3 name the same charset on servers that know both.
	for _, alt := range []string{strings.Replace(n, "utf8mb3_", "utf8_", 1), strings.Replace(n, "utf8_", "utf8mb3_", 1)} {
		if p.collations[alt] {
			return true
		}
	}
	return false
}

// MissingVariable reports whether a variable a source of version src has
// configured does not exist on the target, with its replacement if known.
func (p *Profile) MissingVariable(src Version, name string) (bool, string) {
	miss, repl := missingVariable(src, p.Version, name)
	if p.variables != nil {
		miss = !p.variables[strings.ToLower(name)]
	}
	return miss, repl
}

// KnowsPrivilege reports whether the target knows a privilege name; true
// when the target's list is unknown.
func (p *Profile) KnowsPrivilege(priv string) bool {
	if p.privileges == nil {
		return true
	}
	u := strings.ToUpper(strings.TrimSpace(priv))
	switch u {
	case "ALL", "ALL PRIVILEGES", "USAGE", "GRANT OPTION", "PROXY":
		return true
	}
	return p.privileges[u] || p.privileges[strings.ReplaceAll(u, " ", "_")]
}

// ProbeReserved asks the live target's parser which of words are
// reserved; the answers override the release tables.
func (p *Profile) ProbeReserved(ctx context.Context, q Querier, words []string) error {
	if !p.Live {
		return nil
	}
	got, err := ProbeReservedWords(ctx, q, words)
	if err != nil {
		return err
	}
	p.probed = got
	return nil
}

// ProbeReservedWords asks a server's parser which of words are reserved,
// with SELECT 1 AS word, ... batched (a syntax error splits the batch in
// two). Only plain words reserved in some known release are asked about;
// the result maps each asked word (upper case) to the answer.
func ProbeReservedWords(ctx context.Context, q Querier, words []string) (map[string]bool, error) {
	seen := map[string]bool{}
	var cand []string
	for _, w := range words {
		u := strings.ToUpper(w)
		if seen[u] || !MaybeReserved(u) || !plainWord(u) {
			continue
		}
		seen[u] = true
		cand = append(cand, u)
	}
	sort.Strings(cand)
	out := map[string]bool{}
	return out, probeWords(ctx, q, cand, out)
}

func probeWords(ctx context.Context, q Querier, words []string, out map[string]bool) error {
	if len(words) == 0 {
		return nil
	}
	var sel []string
	for _, w := range words {
		sel = append(sel, "1 AS "+w)
	}
	rows, err := q.QueryContext(ctx, "SELECT "+strings.Join(sel, ", "))
	if err == nil {
		rows.Close()
		for _, w := range words {
			out[w] = false
		}
		return nil
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1064 {
		return fmt.Errorf("ask the server's parser about reserved words: %w", err)
	}
	if len(words) == 1 {
		out[words[0]] = true
		return nil
	}
	half := len(words) / 2
	if err := probeWords(ctx, q, words[:half], out); err != nil {
		return err
	}
	return probeWords(ctx, q, words[half:], out)
}

func plainWord(w string) bool {
	if w == "" || w[0] >= '0' && w[0] <= '9' {
		return false
	}
	for i := 0; i < len(w); i++ {
		if !(w[i] == '_' || w[i] >= 'A' && w[i] <= 'Z' || w[i] >= '0' && w[i] <= '9') {
			return false
		}
	}
	return true
}
