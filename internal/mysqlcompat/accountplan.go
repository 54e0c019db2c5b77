package mysqlcompat

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/decant-sh/decant/internal/secret"
)

// AccountState says what mysql.copy_users does with one source account.
type AccountState string

// Account states.
const (
	// AccountCreate: missing on the target; it will be created.
	AccountCreate AccountState = "create"
	// AccountPresent: on the target with the same authentication and grants.
	AccountPresent AccountState = "present"
	// AccountDiffers: on the target, but not the same; left alone.
	AccountDiffers AccountState = "differs"
	// AccountCannot: cannot be carried over (plugin, role support).
	AccountCannot AccountState = "cannot"
)

// PlannedAccount is one source account and what to do with it.
type PlannedAccount struct {
	Account Account
	State   AccountState
	// Reason explains differs and cannot; Fix says how to resolve it.
	Reason, Fix string
	// Statements create the account on the target, in order. They hold
	// password hashes: secret, never journal them.
	Statements []string `json:"-"`
	// Grants are the source's grant lines, without password clauses.
	Grants []string
	// Dropped are privileges or lines the target does not know, left out.
	Dropped []string
	// Deferred are grants on tables or routines the target does not have
	// yet: re-run mysql.copy_users after the copy to apply them.
	Deferred []string `json:"-"`
	// Notes are lossy translations worth telling (plugin mapped, ...).
	Notes []string
}

// AccountPlan is what mysql.copy_users will do.
type AccountPlan struct {
	Source, Target Version
	Accounts       []PlannedAccount
	// System are the system accounts left alone (not named).
	System []string
	// TargetNameResolve is false when the target runs with
	// skip_name_resolve, so host-name patterns never match there.
	TargetNameResolve bool
}

// AccountSelection picks accounts by name: "user@host" or "user" (any host).
type AccountSelection struct {
	// Accounts, when set, are the only ones considered; naming a system
	// account here includes it.
	Accounts []string
	// Exclude removes accounts.
	Exclude []string
}

func (s AccountSelection) match(list []string, a Account) bool {
	for _, n := range list {
		n = strings.TrimSpace(n)
		u, h, hasHost := strings.Cut(n, "@")
		u, h = strings.Trim(u, "'`\""), strings.Trim(h, "'`\"")
		if u == a.User && (!hasHost || h == a.Host) {
			return true
		}
	}
	return false
}

// Selected reports whether a is chosen, and whether it was named.
func (s AccountSelection) Selected(a Account) (ok, named bool) {
	if s.match(s.Exclude, a) {
		return false, false
	}
	if len(s.Accounts) > 0 {
		named = s.match(s.Accounts, a)
		return named, named
	}
	return !IsSystemAccount(a.User), false
}

// PlanAccounts compares the source's accounts with the target's and
// writes, in the target's syntax, the statements that create the missing
// ones. Every password hash read is added to secrets.
func PlanAccounts(ctx context.Context, src, tgt Querier, sel AccountSelection, secrets *secret.Set) (*AccountPlan, error) {
	sv, err := ReadVersion(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	prof, err := LiveProfile(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	plan := &AccountPlan{Source: sv, Target: prof.Version, TargetNameResolve: prof.NameResolve}
	srcAccts, err := ListAccounts(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if sv.HasGlobalPriv() {
		if locked, err := LockedAccounts(ctx, src); err == nil {
			for i := range srcAccts {
				srcAccts[i].Locked = locked[AccountName(srcAccts[i].User, srcAccts[i].Host)]
			}
		}
	}
	tgtAccts, err := ListAccounts(ctx, tgt)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	onTarget := map[string]Account{}
	for _, a := range tgtAccts {
		onTarget[a.Name()] = a
	}
	for _, a := range srcAccts {
		// MySQL 8 prints binary hashes in hex (print_identified_with_as_hex).
		secrets.Add(a.Auth, fmt.Sprintf("%X", a.Auth), fmt.Sprintf("%x", a.Auth))
	}
	// Roles first: users' grants may name them.
	sort.SliceStable(srcAccts, func(i, j int) bool { return srcAccts[i].IsRole && !srcAccts[j].IsRole })
	for _, a := range srcAccts {
		ok, _ := sel.Selected(a)
		if !ok {
			if IsSystemAccount(a.User) && !a.IsRole {
				plan.System = append(plan.System, a.Name())
			}
			continue
		}
		pa := PlannedAccount{Account: a}
		grants, err := ShowGrants(ctx, src, a)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		for _, g := range grants {
			pa.Grants = append(pa.Grants, StripIdentified(g))
		}
		if t, ok := onTarget[a.Name()]; ok {
			tg, err := ShowGrants(ctx, tgt, t)
			if err != nil {
				return nil, fmt.Errorf("target: %w", err)
			}
			diff := compareAccount(a, t, pa.Grants, tg, sv, prof.Version)
			if len(diff) == 0 {
				pa.State = AccountPresent
			} else {
				pa.State, pa.Reason = AccountDiffers, strings.Join(diff, "; ")
				pa.Fix = "compare SHOW GRANTS FOR " + a.Name() + " on both servers and align them by hand (mysql.copy_users leaves existing accounts alone)"
			}
			plan.Accounts = append(plan.Accounts, pa)
			continue
		}
		if err := planCreate(ctx, src, tgt, prof, sv, &pa); err != nil {
			return nil, err
		}
		plan.Accounts = append(plan.Accounts, pa)
	}
	return plan, nil
}

// compareAccount lists how the target's account differs from the source's.
func compareAccount(s, t Account, sGrants, tGrants []string, sv, tv Version) []string {
	var diff []string
	if MapPlugin(s.Plugin, sv, tv) != strings.ToLower(t.Plugin) {
		diff = append(diff, fmt.Sprintf("plugin %s on the source, %s on the target", s.Plugin, t.Plugin))
	} else if s.Auth != t.Auth {
		diff = append(diff, "a different password")
	}
	have := map[string]bool{}
	for _, g := range tGrants {
		have[normalizeGrant(StripIdentified(g))] = true
	}
	var missing []string
	for _, g := range sGrants {
		if !have[normalizeGrant(g)] {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		diff = append(diff, "grants missing on the target: "+strings.Join(missing, "; "))
	}
	return diff
}

// normalizeGrant makes grant lines from two servers comparable: quotes
// removed, keywords upper-cased.
func normalizeGrant(g string) string {
	var parts []string
	for _, t := range tokenize(g) {
		switch t.kind {
		case tokIdent, tokString:
			parts = append(parts, "<"+unquote(t)+">")
		case tokWord:
			parts = append(parts, t.upper())
		default:
			parts = append(parts, t.text)
		}
	}
	return strings.Join(parts, " ")
}

var setDefaultRoleFor = regexp.MustCompile(`(?i)^SET DEFAULT ROLE (.+) FOR (.+)$`)

// planCreate fills pa with the statements that create it on the target.
func planCreate(ctx context.Context, src, tgt Querier, prof *Profile, sv Version, pa *PlannedAccount) error {
	a, tv := pa.Account, prof.Version
	q := Quoter{NoBackslashEscapes: false}
	if qs, err := SessionQuoter(ctx, tgt); err == nil {
		q = qs
	}
	pa.State = AccountCreate
	if a.IsRole {
		if !tv.Is(MySQL, 8, 0, 0) && !tv.Is(MariaDB, 10, 0, 5) {
			pa.State, pa.Reason = AccountCannot, "roles need MySQL 8.0 or MariaDB 10.0.5 on the target"
			pa.Fix = "grant the role's privileges to its members directly"
			return nil
		}
		pa.Statements = append(pa.Statements, "CREATE ROLE "+a.SQL(q))
	} else {
		plugin := MapPlugin(a.Plugin, sv, tv)
		if plugin != strings.ToLower(a.Plugin) {
			pa.Notes = append(pa.Notes, fmt.Sprintf("authentication %s becomes %s on %s", a.Plugin, plugin, tv.Flavor.Name()))
		}
		switch prof.Plugin(plugin) {
		case Unsupported:
			pa.State = AccountCannot
			pa.Reason = fmt.Sprintf("its authentication plugin %s does not exist on %s, so its password cannot be carried over", a.Plugin, tv)
			pa.Fix = fmt.Sprintf("give it a password with a supported plugin on the source (ALTER USER %s IDENTIFIED WITH %s BY '...'), or create it by hand on the target",
				a.Name(), defaultPlugin(tv))
			return nil
		case Loadable:
			pa.State = AccountCannot
			pa.Reason = fmt.Sprintf("its authentication plugin %s is not enabled on the target", plugin)
			pa.Fix = pluginInstall(tv, plugin) + "  -- on the target, then re-run"
			return nil
		}
		stmt, err := createUserSQL(ctx, src, q, a, plugin, sv, tv, pa)
		if err != nil {
			return err
		}
		pa.Statements = append(pa.Statements, stmt)
	}
	for _, line := range pa.Grants {
		g := ParseGrant(line)
		if m := setDefaultRoleFor.FindStringSubmatch(line); m != nil {
			if sv.Flavor != tv.Flavor && tv.Flavor == MySQL {
				line = "SET DEFAULT ROLE " + m[1] + " TO " + m[2]
			}
			pa.Statements = append(pa.Statements, line)
			continue
		}
		if len(g.Privileges) == 0 && !g.IsRoleGrant() {
			pa.Statements = append(pa.Statements, line)
			continue
		}
		if sv.Flavor != tv.Flavor && tv.Is(MySQL, 8, 0, 0) && len(g.Privileges) == 1 && g.Privileges[0] == "USAGE" {
			// CREATE USER already gives USAGE; MySQL 8 refuses resource
			// limits in GRANT.
			if strings.Contains(strings.ToUpper(line), "MAX_") {
				pa.Dropped = append(pa.Dropped, "resource limits: "+line)
			}
			continue
		}
		kept, ok := g.Without(func(p string) bool { return !prof.KnowsPrivilege(p) })
		for _, p := range g.Privileges {
			if !prof.KnowsPrivilege(p) {
				pa.Dropped = append(pa.Dropped, fmt.Sprintf("privilege %s (unknown on %s) from: %s", p, tv, line))
			}
		}
		if !ok {
			continue
		}
		if missing := missingGrantObject(ctx, tgt, g); missing != "" {
			pa.Deferred = append(pa.Deferred, kept+"  -- "+missing+" is not on the target yet")
			continue
		}
		pa.Statements = append(pa.Statements, kept)
	}
	return nil
}

// createUserSQL writes CREATE USER for a in the target's syntax: the
// source's own SHOW CREATE USER when both are the same flavour and the
// target is not older, else built from the plugin and hash.
func createUserSQL(ctx context.Context, src Querier, q Quoter, a Account, plugin string, sv, tv Version, pa *PlannedAccount) (string, error) {
	if sv.Flavor == tv.Flavor && sv.Cmp(tv) <= 0 && sv.HasShowCreateUser() {
		if db, ok := src.(*sql.DB); ok && sv.Is(MySQL, 8, 0, 17) {
			// caching_sha2_password hashes hold binary bytes; ask for hex,
			// on one connection so the setting applies to the SHOW.
			conn, err := db.Conn(ctx)
			if err != nil {
				return "", fmt.Errorf("source: %w", err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "SET SESSION print_identified_with_as_hex = ON"); err != nil {
				return "", fmt.Errorf("source: %w", err)
			}
			src = conn
		}
		s, err := ShowCreateUser(ctx, src, a)
		if err != nil {
			return "", fmt.Errorf("source: %w", err)
		}
		return s, nil
	}
	if strings.Contains(strings.ToUpper(a.Auth), " OR ") {
		pa.Notes = append(pa.Notes, "only the first of its authentication methods is carried over")
	}
	acct := a.SQL(q)
	var b strings.Builder
	b.WriteString("CREATE USER " + acct)
	auth := a.Auth
	if plugin == "auth_socket" || plugin == "unix_socket" {
		auth = ""
	}
	switch {
	case tv.Flavor == MariaDB && tv.AtLeast(10, 2, 0):
		b.WriteString(" IDENTIFIED VIA " + plugin)
		if auth != "" {
			b.WriteString(" USING " + q.String(auth))
		}
	case tv.Flavor == MariaDB || !tv.AtLeast(5, 7, 6):
		if (plugin == "mysql_native_password" || plugin == "mysql_old_password") && auth != "" {
			b.WriteString(" IDENTIFIED BY PASSWORD " + q.String(auth))
		} else {
			kw := "WITH"
			if tv.Flavor == MariaDB {
				kw = "VIA"
			}
			b.WriteString(" IDENTIFIED " + kw + " " + plugin)
			if auth != "" {
				b.WriteString(" AS " + q.String(auth))
			}
		}
	default:
		b.WriteString(" IDENTIFIED WITH " + plugin)
		if auth != "" {
			b.WriteString(" AS " + q.String(auth))
		}
	}
	if a.Locked && (tv.Is(MySQL, 5, 7, 6) || tv.Is(MariaDB, 10, 4, 2)) {
		b.WriteString(" ACCOUNT LOCK")
	}
	return b.String(), nil
}

// missingGrantObject returns the table or routine a grant names that the
// target does not have ("" when it is there or the grant is database-wide).
func missingGrantObject(ctx context.Context, tgt Querier, g Grant) string {
	toks := tokenize(g.rest)
	if len(toks) < 2 {
		return ""
	}
	i := 1 // after ON
	kind := "TABLE"
	if toks[i].kind == tokWord {
		switch toks[i].upper() {
		case "TABLE", "PROCEDURE", "FUNCTION", "PACKAGE":
			kind = toks[i].upper()
			i++
		}
	}
	if i+2 >= len(toks) || toks[i+1].text != "." || toks[i+2].text == "*" {
		return ""
	}
	db, obj := unquote(toks[i]), unquote(toks[i+2])
	var n int
	var err error
	if kind == "TABLE" {
		err = tgt.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", db, obj).Scan(&n)
	} else {
		err = tgt.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ?", db, obj).Scan(&n)
	}
	if err != nil || n > 0 {
		return ""
	}
	return strings.ToLower(kind) + " " + db + "." + obj
}
