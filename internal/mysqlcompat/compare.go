package mysqlcompat

import (
	"fmt"
	"sort"
	"strings"
)

// Severity of an incompatibility.
type Severity string

// Severities: Warn works but behaves differently or needs care; Fail
// breaks the copy or the application until fixed.
const (
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Issue is one kind of incompatibility with every object it was found in.
type Issue struct {
	// ID is stable (docs, tests): "reserved-words", "zero-dates", ...
	ID       string
	Severity Severity
	// Title says what was found, for a first-timer.
	Title string
	// Objects are where: "table shop.rank", "account 'app'@'%'".
	Objects []string
	// Why explains the consequence on the target.
	Why string
	// Fix is the command or SQL that resolves it (for the first object
	// when it depends on the object).
	Fix string
}

// Source is what Compare needs from the source: its inventory and,
// optionally, which identifiers its own parser reserves (probed).
type Source struct {
	*Inventory
	// Reserved overrides the release tables for the source's reserved
	// words (from ProbeReservedWords); nil uses the tables.
	Reserved map[string]bool
}

func (s Source) reserved(w string) bool {
	u := strings.ToUpper(w)
	if r, ok := s.Reserved[u]; ok {
		return r
	}
	return ReservedWords(s.Version)[u]
}

// Identifiers lists the names in the inventory that could clash with
// reserved words: schemas, tables, views, columns, routines, triggers, events.
func (inv *Inventory) Identifiers() []string {
	var out []string
	for _, s := range inv.Schemas {
		out = append(out, s.Name)
	}
	for _, t := range inv.Tables {
		out = append(out, t.Name)
	}
	for _, c := range inv.Columns {
		out = append(out, c.Name)
	}
	for _, o := range inv.Objects {
		out = append(out, o.Name)
	}
	return out
}

// Compare lists the incompatibilities between what the source holds and
// what the target accepts, most severe first. An empty list means none
// found in this data.
func Compare(src Source, t *Profile) []Issue {
	inv := src.Inventory
	var out []Issue
	add := func(is Issue) {
		if len(is.Objects) > 0 {
			out = append(out, is)
		}
	}
	tn := t.Version.String()
	mysql8 := t.Version.Is(MySQL, 8, 0, 0)

	// Reserved words (MySQL Shell: reservedKeywords).
	{
		is := Issue{ID: "reserved-words", Severity: Warn,
			Title: "names that are reserved words on " + tn,
			Why:   "SQL that does not quote these names with backticks fails there with error 1064; decant's copy quotes them, the application's queries may not",
		}
		cache := map[string]bool{}
		bad := func(w string) bool {
			u := strings.ToUpper(w)
			if r, ok := cache[u]; ok {
				return r
			}
			r := t.Reserved(u) && !src.reserved(u)
			cache[u] = r
			return r
		}
		for _, s := range inv.Schemas {
			if bad(s.Name) {
				is.Objects = append(is.Objects, "database "+s.Name)
			}
		}
		for _, tb := range inv.Tables {
			if bad(tb.Name) {
				is.Objects = append(is.Objects, strings.ToLower(kindOf(tb.Type))+" "+tb.Schema+"."+tb.Name)
				if is.Fix == "" {
					is.Fix = fmt.Sprintf("quote it in every query (`%s`), or rename it: RENAME TABLE %s.%s TO %s.%s;",
						tb.Name, QuoteIdent(tb.Schema), QuoteIdent(tb.Name), QuoteIdent(tb.Schema), QuoteIdent(tb.Name+"_"))
				}
			}
		}
		for _, c := range inv.Columns {
			if bad(c.Name) {
				is.Objects = append(is.Objects, "column "+c.Schema+"."+c.Table+"."+c.Name)
				if is.Fix == "" {
					is.Fix = fmt.Sprintf("quote it in every query (`%s`), or rename it: ALTER TABLE %s.%s RENAME COLUMN %s TO %s;",
						c.Name, QuoteIdent(c.Schema), QuoteIdent(c.Table), QuoteIdent(c.Name), QuoteIdent(c.Name+"_"))
				}
			}
		}
		for _, o := range inv.Objects {
			if o.Kind != "VIEW" && bad(o.Name) {
				is.Objects = append(is.Objects, strings.ToLower(o.Kind)+" "+o.Schema+"."+o.Name)
			}
		}
		add(is)
	}

	// sql_mode values the target removed (obsoleteSqlModeFlags, maxdbSqlModeFlags).
	{
		is := Issue{ID: "sql-mode-removed", Severity: Warn,
			Title: "sql_mode values " + tn + " does not accept",
			Why:   "SET sql_mode with these values fails there: remove them from the application's session settings and from stored objects before re-creating them",
		}
		if bad := missingModes(inv.SQLMode, t); len(bad) > 0 {
			is.Objects = append(is.Objects, "global sql_mode ("+strings.Join(bad, ",")+")")
			is.Fix = "on the target use sql_mode = '" + strings.Join(keepModes(inv.SQLMode, t), ",") + "'"
		}
		for _, o := range inv.Objects {
			if o.Kind == "VIEW" {
				continue
			}
			if bad := missingModes(o.SQLMode, t); len(bad) > 0 {
				is.Objects = append(is.Objects, fmt.Sprintf("%s %s.%s (%s)", strings.ToLower(o.Kind), o.Schema, o.Name, strings.Join(bad, ",")))
				if is.Fix == "" {
					is.Fix = "re-create them after SET SESSION sql_mode = '" + strings.Join(keepModes(o.SQLMode, t), ",") + "'"
				}
			}
		}
		add(is)
	}

	// Zero dates under the target's strict mode (zeroDates).
	if zeroDatesRejected(t.SQLMode) {
		def := Issue{ID: "zero-date-defaults", Severity: Fail,
			Title: "columns whose DEFAULT is a zero date, which " + tn + " rejects with its sql_mode " + t.SQLMode,
			Why:   "CREATE TABLE fails there with error 1067 (Invalid default value) unless the session relaxes sql_mode, and inserts using the default fail",
		}
		for _, c := range inv.Columns {
			if isTemporal(c.DataType) && c.Default.Valid && strings.HasPrefix(strings.Trim(c.Default.String, "'"), "0000-00-00") {
				def.Objects = append(def.Objects, "column "+c.Schema+"."+c.Table+"."+c.Name+" DEFAULT "+c.Default.String)
				if def.Fix == "" {
					def.Fix = fmt.Sprintf("ALTER TABLE %s.%s ALTER COLUMN %s SET DEFAULT NULL;  -- after making it NULLable, or pick a real date",
						QuoteIdent(c.Schema), QuoteIdent(c.Table), QuoteIdent(c.Name))
				}
			}
		}
		add(def)
		rows := Issue{ID: "zero-dates", Severity: Warn,
			Title: "rows holding zero dates ('0000-00-00'), which " + tn + " rejects with its sql_mode " + t.SQLMode,
			Why:   "the copy must relax sql_mode to load them, and the application's own writes of zero dates will fail there",
		}
		for _, z := range inv.ZeroDates {
			rows.Objects = append(rows.Objects, fmt.Sprintf("column %s.%s.%s (%d rows)", z.Schema, z.Table, z.Column, z.Rows))
			if rows.Fix == "" {
				rows.Fix = fmt.Sprintf("UPDATE %s.%s SET %s = NULL WHERE %s = '0000-00-00';  -- or keep NO_ZERO_DATE out of the target's sql_mode",
					QuoteIdent(z.Schema), QuoteIdent(z.Table), QuoteIdent(z.Column), QuoteIdent(z.Column))
			}
		}
		add(rows)
	}

	// utf8mb3 on MySQL 8, where it is deprecated (utf8mb3).
	if mysql8 {
		is := Issue{ID: "utf8mb3", Severity: Warn,
			Title: "utf8/utf8mb3 character set, deprecated on " + tn,
			Why:   "utf8mb3 stores no emoji or other 4-byte characters and will be removed; utf8 is to become an alias of utf8mb4",
		}
		for _, s := range inv.Schemas {
			if isUTF8mb3(s.Charset) {
				is.Objects = append(is.Objects, "database "+s.Name)
			}
		}
		for _, c := range inv.Columns {
			if isUTF8mb3(c.Charset) {
				is.Objects = append(is.Objects, "column "+c.Schema+"."+c.Table+"."+c.Name)
				if is.Fix == "" {
					is.Fix = fmt.Sprintf("ALTER TABLE %s.%s CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;", QuoteIdent(c.Schema), QuoteIdent(c.Table))
				}
			}
		}
		add(is)
	}

	// Collations the target lacks.
	{
		is := Issue{ID: "collations", Severity: Fail,
			Title: "collations " + tn + " does not have",
			Why:   "CREATE DATABASE/TABLE fails there with error 1273 (Unknown collation)",
		}
		seen := map[string]bool{}
		note := func(obj, coll string) {
			if coll == "" || t.HasCollation(coll) {
				return
			}
			is.Objects = append(is.Objects, obj+" ("+coll+")")
			if !seen[coll] && is.Fix == "" {
				is.Fix = "convert to a collation both servers have, e.g. ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4 COLLATE " + replacementCollation(coll, t)
			}
			seen[coll] = true
		}
		for _, s := range inv.Schemas {
			note("database "+s.Name, s.Collation)
		}
		for _, tb := range inv.Tables {
			if tb.Type != "VIEW" {
				note("table "+tb.Schema+"."+tb.Name, tb.Collation)
			}
		}
		for _, c := range inv.Columns {
			note("column "+c.Schema+"."+c.Table+"."+c.Name, c.Collation)
		}
		add(is)
	}

	// Authentication plugins of the source's accounts (authMethodUsage).
	{
		fail := Issue{ID: "auth-plugins", Severity: Fail,
			Title: "accounts whose authentication plugin " + tn + " does not have",
			Why:   "these accounts cannot be re-created with their password there; they need a new password with a supported plugin",
		}
		warn := Issue{ID: "auth-plugins-loadable", Severity: Warn,
			Title: "accounts whose authentication plugin " + tn + " ships but has not enabled",
			Why:   "decant's mysql.copy_users cannot create them until the plugin is enabled on the target",
		}
		for _, a := range inv.Accounts {
			if IsSystemAccount(a.User) || a.IsRole {
				continue
			}
			plugin := MapPlugin(a.Plugin, inv.Version, t.Version)
			switch t.Plugin(plugin) {
			case Unsupported:
				fail.Objects = append(fail.Objects, "account "+a.Name()+" ("+a.Plugin+")")
				if fail.Fix == "" {
					fail.Fix = fmt.Sprintf("ALTER USER %s IDENTIFIED WITH %s BY '<new password>';  -- on the source, then re-run",
						AccountName(a.User, a.Host), defaultPlugin(t.Version))
				}
			case Loadable:
				warn.Objects = append(warn.Objects, "account "+a.Name()+" ("+plugin+")")
				if warn.Fix == "" {
					warn.Fix = pluginInstall(t.Version, plugin)
				}
			}
		}
		add(fail)
		add(warn)
	}

	// System variables configured on the source that the target lacks (removedSysVars, sysVars).
	{
		is := Issue{ID: "variables", Severity: Warn,
			Title: "server settings in the source's configuration that " + tn + " does not have",
			Why:   "copying these lines into the target's my.cnf stops it from starting (unknown variable)",
		}
		var names []string
		for n := range inv.Configured {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if miss, repl := t.MissingVariable(inv.Version, n); miss {
				o := n + "=" + inv.Configured[n]
				if repl != "" {
					o += " (now " + repl + ")"
				}
				is.Objects = append(is.Objects, "variable "+o)
			}
		}
		if len(is.Objects) > 0 {
			is.Fix = "leave these out of the target's my.cnf (use the replacement where one is named)"
		}
		add(is)
	}

	// Engines and table types the target lacks (pluginUsage, nonNativePartitioning).
	{
		fail := Issue{ID: "engines", Severity: Fail,
			Title: "tables using storage engines or table types " + tn + " does not have",
			Why:   "CREATE TABLE fails there, or silently falls back to the default engine without NO_ENGINE_SUBSTITUTION",
		}
		warn := Issue{ID: "engines-loadable", Severity: Warn,
			Title: "tables using storage engines " + tn + " ships but has not enabled",
			Why:   "the copy cannot create them until the engine is enabled on the target",
		}
		for _, tb := range inv.Tables {
			name := tb.Schema + "." + tb.Name
			switch {
			case tb.Type == "VIEW":
				continue
			case tb.Type == "SEQUENCE" && t.Version.Flavor == MySQL:
				fail.Objects = append(fail.Objects, "sequence "+name)
				if fail.Fix == "" {
					fail.Fix = "replace the sequence with an AUTO_INCREMENT column (NEXTVAL/NEXT VALUE FOR do not exist on MySQL)"
				}
				continue
			case tb.Type == "SYSTEM VERSIONED" && t.Version.Flavor == MySQL:
				fail.Objects = append(fail.Objects, "system-versioned table "+name)
				if fail.Fix == "" {
					fail.Fix = fmt.Sprintf("ALTER TABLE %s.%s DROP SYSTEM VERSIONING;  -- keep the history in a table of its own first if it is needed", QuoteIdent(tb.Schema), QuoteIdent(tb.Name))
				}
				continue
			}
			if tb.Engine == "" {
				continue
			}
			switch t.Engine(tb.Engine) {
			case Unsupported:
				fail.Objects = append(fail.Objects, "table "+name+" ("+tb.Engine+")")
				if fail.Fix == "" {
					fail.Fix = fmt.Sprintf("ALTER TABLE %s.%s ENGINE=InnoDB;", QuoteIdent(tb.Schema), QuoteIdent(tb.Name))
				}
			case Loadable:
				warn.Objects = append(warn.Objects, "table "+name+" ("+tb.Engine+")")
				if warn.Fix == "" {
					warn.Fix = engineInstall(t.Version, strings.ToUpper(tb.Engine))
				}
			}
			if mysql8 && strings.Contains(strings.ToLower(tb.CreateOptions), "partitioned") &&
				!strings.EqualFold(tb.Engine, "InnoDB") && !strings.HasPrefix(strings.ToUpper(tb.Engine), "NDB") {
				fail.Objects = append(fail.Objects, "partitioned table "+name+" ("+tb.Engine+": "+tn+" partitions InnoDB only)")
			}
		}
		add(fail)
		add(warn)
	}

	// Column types the target lacks.
	{
		missing := missingTypes(t.Version)
		is := Issue{ID: "types", Severity: Fail,
			Title: "column types " + tn + " does not have",
			Why:   "CREATE TABLE fails there",
		}
		for _, c := range inv.Columns {
			if alt, ok := missing[c.DataType]; ok {
				is.Objects = append(is.Objects, "column "+c.Schema+"."+c.Table+"."+c.Name+" ("+c.DataType+")")
				if is.Fix == "" {
					is.Fix = "change it to " + alt + " before the copy"
				}
			}
		}
		add(is)
	}

	// Literal defaults on TEXT/BLOB/JSON/GEOMETRY (columnsWhichCannotHaveDefaults).
	if t.Version.Flavor == MySQL {
		is := Issue{ID: "text-defaults", Severity: Fail,
			Title: "TEXT/BLOB/JSON/GEOMETRY columns with a DEFAULT value, which " + tn + " does not allow as a literal",
			Why:   "CREATE TABLE fails there with error 1101",
		}
		for _, c := range inv.Columns {
			if noLiteralDefault(c.DataType) && c.Default.Valid && c.Default.String != "NULL" {
				is.Objects = append(is.Objects, "column "+c.Schema+"."+c.Table+"."+c.Name+" DEFAULT "+c.Default.String)
				if is.Fix == "" {
					if t.Version.AtLeast(8, 0, 13) {
						is.Fix = fmt.Sprintf("on the target write the default as an expression: ALTER TABLE %s.%s ALTER COLUMN %s SET DEFAULT (%s);",
							QuoteIdent(c.Schema), QuoteIdent(c.Table), QuoteIdent(c.Name), c.Default.String)
					} else {
						is.Fix = fmt.Sprintf("ALTER TABLE %s.%s ALTER COLUMN %s DROP DEFAULT;", QuoteIdent(c.Schema), QuoteIdent(c.Table), QuoteIdent(c.Name))
					}
				}
			}
		}
		add(is)
	}

	// Functions MySQL 8.0 removed, GROUP BY ASC/DESC (removedFunctions, groupbyAscSyntax).
	if mysql8 && !inv.Version.Is(MySQL, 8, 0, 0) {
		fn := Issue{ID: "removed-functions", Severity: Fail,
			Title: "views, routines, triggers and events calling functions " + tn + " removed",
			Why:   "they fail to be created or to run there",
		}
		gb := Issue{ID: "group-by-order", Severity: Fail,
			Title: "views, routines, triggers and events using GROUP BY ... ASC/DESC, which " + tn + " removed",
			Why:   "they fail to be created there with error 1064",
		}
		for _, o := range inv.Objects {
			var used []string
			seen := map[string]bool{}
			for _, f := range FunctionCalls(o.Body) {
				if repl, ok := removedFunctions8[f]; ok && !seen[f] {
					seen[f] = true
					if repl != "" {
						f += " (use " + repl + ")"
					}
					used = append(used, f)
				}
			}
			if len(used) > 0 {
				fn.Objects = append(fn.Objects, fmt.Sprintf("%s %s.%s: %s", strings.ToLower(o.Kind), o.Schema, o.Name, strings.Join(used, ", ")))
				fn.Fix = "rewrite them with the replacement functions named, on the source, before the copy"
			}
			if t.Version.AtLeast(8, 0, 13) && GroupByOrder(o.Body) {
				gb.Objects = append(gb.Objects, fmt.Sprintf("%s %s.%s", strings.ToLower(o.Kind), o.Schema, o.Name))
				gb.Fix = "replace GROUP BY x DESC with GROUP BY x ORDER BY x DESC"
			}
		}
		add(fn)
		add(gb)
	}

	// Names MySQL 8 refuses (foreignKeyLength, invalid57Names).
	if mysql8 {
		is := Issue{ID: "names", Severity: Fail,
			Title: "names " + tn + " refuses",
			Why:   "CREATE TABLE fails there",
		}
		for _, k := range inv.ForeignKeys {
			if len(k.Name) > 64 {
				is.Objects = append(is.Objects, "foreign key "+k.Schema+"."+k.Table+"."+k.Name+" (longer than 64 characters)")
			}
		}
		for _, tb := range inv.Tables {
			if strings.HasPrefix(tb.Name, "#mysql50#") {
				is.Objects = append(is.Objects, "table "+tb.Schema+"."+tb.Name+" (pre-5.1 file name encoding)")
			}
		}
		if len(is.Objects) > 0 {
			is.Fix = "rename them on the source (ALTER TABLE ... DROP FOREIGN KEY / ADD CONSTRAINT with a shorter name; mysqlcheck --fix-table-names)"
		}
		add(is)
	}

	// DEFINERs that do not exist on the target (orphanedObjects, by account).
	if t.Accounts != nil {
		missing := Issue{ID: "definers", Severity: Fail,
			Title: "views, routines, triggers and events whose DEFINER account will not exist on the target",
			Why:   "they are created there but fail when used, with error 1449 (The user specified as a definer does not exist)",
		}
		orphan := Issue{ID: "definers-orphaned", Severity: Warn,
			Title: "views, routines, triggers and events whose DEFINER account does not exist on the source either",
			Why:   "they already fail on the source with error 1449 when used; the copy keeps them as they are",
		}
		onSource := map[string]Account{}
		for _, a := range inv.Accounts {
			onSource[AccountName(a.User, a.Host)] = a
		}
		for _, o := range inv.Objects {
			user, host, ok := SplitDefiner(o.Definer)
			if !ok {
				continue
			}
			name := AccountName(user, host)
			if t.Accounts[name] {
				continue
			}
			obj := fmt.Sprintf("%s %s.%s (DEFINER %s)", strings.ToLower(o.Kind), o.Schema, o.Name, name)
			a, exists := onSource[name]
			switch {
			case !exists:
				orphan.Objects = append(orphan.Objects, obj)
				orphan.Fix = fmt.Sprintf("create the account or re-create the object with an existing DEFINER, e.g. ALTER DEFINER=CURRENT_USER VIEW %s.%s AS ...",
					QuoteIdent(o.Schema), QuoteIdent(o.Name))
			case IsSystemAccount(a.User) || a.IsRole:
				missing.Objects = append(missing.Objects, obj)
				missing.Fix = "name the account in mysql.copy_users (accounts: [\"" + user + "@" + host + "\"]) so it is copied, or create it on the target"
			}
			// Other accounts are created by mysql.copy_users.
		}
		add(missing)
		add(orphan)
	}

	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity == Fail && out[j].Severity != Fail })
	return out
}

// SplitDefiner splits a DEFINER as information_schema shows it (user@host,
// the host after the last @).
func SplitDefiner(d string) (user, host string, ok bool) {
	i := strings.LastIndexByte(d, '@')
	if i < 0 {
		return "", "", false
	}
	return strings.Trim(d[:i], "`'"), strings.Trim(d[i+1:], "`'"), true
}

// MapPlugin returns the plugin an account of src should use on tgt:
// MariaDB's unix_socket and MySQL's auth_socket mean the same thing.
func MapPlugin(plugin string, src, tgt Version) string {
	p := strings.ToLower(plugin)
	if src.Flavor == tgt.Flavor {
		return p
	}
	switch {
	case p == "unix_socket" && tgt.Flavor == MySQL:
		return "auth_socket"
	case p == "auth_socket" && tgt.Flavor == MariaDB:
		return "unix_socket"
	}
	return p
}

func defaultPlugin(v Version) string {
	if v.Is(MySQL, 8, 0, 0) {
		return "caching_sha2_password"
	}
	return "mysql_native_password"
}

func kindOf(tableType string) string {
	switch tableType {
	case "VIEW":
		return "VIEW"
	case "SEQUENCE":
		return "SEQUENCE"
	}
	return "TABLE"
}

func splitModes(m string) []string {
	var out []string
	for _, x := range strings.Split(m, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, strings.ToUpper(x))
		}
	}
	return out
}

func missingModes(mode string, t *Profile) []string {
	var bad []string
	for _, m := range splitModes(mode) {
		if !t.HasSQLMode(m) {
			bad = append(bad, m)
		}
	}
	return bad
}

func keepModes(mode string, t *Profile) []string {
	var keep []string
	for _, m := range splitModes(mode) {
		if t.HasSQLMode(m) {
			keep = append(keep, m)
		}
	}
	return keep
}

// zeroDatesRejected reports whether a sql_mode makes zero dates an error.
func zeroDatesRejected(mode string) bool {
	strict, zero := false, false
	for _, m := range splitModes(mode) {
		switch m {
		case "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES":
			strict = true
		case "NO_ZERO_DATE", "NO_ZERO_IN_DATE":
			zero = true
		case "TRADITIONAL":
			strict, zero = true, true
		}
	}
	return strict && zero
}

func isTemporal(t string) bool { return t == "date" || t == "datetime" || t == "timestamp" }

func isUTF8mb3(cs string) bool {
	cs = strings.ToLower(cs)
	return cs == "utf8" || cs == "utf8mb3"
}

func noLiteralDefault(t string) bool {
	switch t {
	case "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return false
}

// replacementCollation suggests a collation the target has for one it lacks.
func replacementCollation(c string, t *Profile) string {
	for _, cand := range []string{"utf8mb4_uca1400_ai_ci", "utf8mb4_0900_ai_ci", "utf8mb4_unicode_520_ci", "utf8mb4_unicode_ci", "utf8mb4_general_ci"} {
		if cand != c && t.HasCollation(cand) {
			return cand
		}
	}
	return "utf8mb4_general_ci"
}
