package actions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.freeze",
		Doc:  "put the source in read_only (and super_read_only where it exists) within a time budget; a watchdog on its host lifts it at the deadline even if decant dies",
		New: func(n ast.Node) (any, error) {
			a := &MySQLFreeze{Endpoint: "source", Wait: 10 * time.Second}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Budget < 0 || a.Budget > 0 && a.Budget < time.Second {
				return nil, steps.BadParam("budget", "must be at least 1s")
			}
			if a.Wait < 0 {
				return nil, steps.BadParam("wait", "must not be negative")
			}
			return a, nil
		},
	})
	steps.Register(steps.Kind{
		Name: "mysql.unfreeze",
		Doc:  "end a mysql.freeze: restore read_only as it was, or (keep_read_only) keep the old server read-only and stop its budget watchdog",
		New: func(n ast.Node) (any, error) {
			a := &MySQLUnfreeze{Endpoint: "source"}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			return a, nil
		},
	})
}

// MySQLFreeze stops writes on a server with read_only for at most a budget
// (settings.freeze_budget). Two things enforce the budget: a timer in
// decant that lifts the freeze and says so (logging every second frozen),
// and a watchdog process started on the server's host before the freeze,
// which lifts it at the deadline if decant is gone. mysql.unfreeze or undo
// ends both.
type MySQLFreeze struct {
	Endpoint string `yaml:"endpoint"`
	// Budget overrides settings.freeze_budget.
	Budget time.Duration `yaml:"budget"`
	// Wait is how long to wait for transactions that have written rows to
	// end once read_only is on (default 10s).
	Wait time.Duration `yaml:"wait"`
	// KillWriters kills the sessions still holding written rows after
	// Wait instead of lifting the freeze and failing.
	KillWriters bool `yaml:"kill_writers"`
}

// MySQLFreezeReceipt records the values before the freeze and the watchdog.
type MySQLFreezeReceipt struct {
	Endpoint string `json:"endpoint"`
	Host     string `json:"host"`
	// ReadOnly and SuperReadOnly are the values before; SuperReadOnly is
	// nil on servers without it (MariaDB).
	ReadOnly      bool          `json:"read_only"`
	SuperReadOnly *bool         `json:"super_read_only,omitempty"`
	Frozen        time.Time     `json:"frozen,omitempty"`
	Budget        time.Duration `json:"budget"`
	Deadline      time.Time     `json:"deadline"`
	// WatchdogDir is a directory on Host holding the watchdog's "armed"
	// marker; WatchdogPID is its process (group) id there.
	WatchdogDir string `json:"watchdog_dir"`
	WatchdogPID int    `json:"watchdog_pid,omitempty"`
	// StateFile is the local copy of this receipt mysql.unfreeze reads.
	StateFile string `json:"state_file"`
}

type mysqlFreezeState struct {
	ep       steps.MySQLEndpoint
	readOnly bool
	superRO  *bool
	version  mysqlcompat.Version
	bypass   []string // accounts read_only does not stop
	writers  []mysqlFreezeWriter
	budget   time.Duration
}

type mysqlFreezeWriter struct {
	ID      int64
	User    string
	Host    string
	Seconds int64
	Rows    int64
}

func (w mysqlFreezeWriter) String() string {
	return fmt.Sprintf("session %d (%s@%s, %d rows written, open %ds)", w.ID, w.User, w.Host, w.Rows, w.Seconds)
}

func (a *MySQLFreeze) budget(env *steps.Env) time.Duration {
	if a.Budget > 0 {
		return a.Budget
	}
	if env.Settings.FreezeBudget > 0 {
		return env.Settings.FreezeBudget
	}
	return 90 * time.Second
}

func (a *MySQLFreeze) inspect(ctx context.Context, env *steps.Env, db mysqlcompat.Querier) (*mysqlFreezeState, error) {
	ep, ok := env.Conn.MySQLEndpoint(a.Endpoint)
	if !ok {
		return nil, fmt.Errorf("no mysql endpoint %q in the runbook", a.Endpoint)
	}
	st := &mysqlFreezeState{ep: ep, budget: a.budget(env)}
	var err error
	if st.version, err = mysqlcompat.ReadVersion(ctx, db); err != nil {
		return nil, err
	}
	if st.readOnly, err = mysqlFreezeBool(ctx, db, "@@GLOBAL.read_only"); err != nil {
		return nil, err
	}
	if st.version.HasSuperReadOnly() {
		v, err := mysqlFreezeBool(ctx, db, "@@GLOBAL.super_read_only")
		if err != nil {
			return nil, err
		}
		st.superRO = &v
	}
	if st.writers, err = mysqlFreezeWriters(ctx, db); err != nil {
		return nil, err
	}
	if st.superRO == nil {
		// Without super_read_only, accounts with SUPER (or, on MariaDB
		// 10.11+, READ_ONLY ADMIN) can still write.
		priv := "'SUPER'"
		if st.version.Is(mysqlcompat.MariaDB, 10, 11, 0) {
			priv = "'READ_ONLY ADMIN'"
		} else if st.version.Is(mysqlcompat.MariaDB, 10, 5, 2) {
			priv = "'SUPER','READ_ONLY ADMIN'"
		}
		rows, err := db.QueryContext(ctx, "SELECT DISTINCT GRANTEE FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ("+priv+")")
		if err == nil {
			for rows.Next() {
				var g string
				if rows.Scan(&g) == nil {
					u, _, _ := strings.Cut(strings.Trim(g, "'"), "'@'")
					if !mysqlcompat.IsSystemAccount(u) {
						st.bypass = append(st.bypass, g)
					}
				}
			}
			rows.Close()
		}
	}
	return st, nil
}

// Plan shows the values that change, the watchdog and who can still write.
func (a *MySQLFreeze) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	db, err := env.MySQL(ctx, a.Endpoint)
	if err != nil {
		return nil, err
	}
	st, err := a.inspect(ctx, env, db)
	if err != nil {
		return nil, err
	}
	if st.readOnly && (st.superRO == nil || *st.superRO) {
		return &steps.Plan{Noop: true, Summary: fmt.Sprintf("%s is already read-only", a.Endpoint)}, nil
	}
	p := &steps.Plan{Summary: fmt.Sprintf("freeze writes on %s (%s) for at most %s", a.Endpoint, st.version, st.budget)}
	p.Changes = append(p.Changes, steps.Change{What: "read_only", Before: mysqlFreezeOnOff(st.readOnly), After: "ON"})
	p.Commands = append(p.Commands, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", mysqlFreezeSeconds(a.Wait)))
	if st.superRO != nil {
		p.Changes = append(p.Changes, steps.Change{What: "super_read_only", Before: mysqlFreezeOnOff(*st.superRO), After: "ON"})
		p.Commands = append(p.Commands, "SET GLOBAL super_read_only = ON")
	} else {
		p.Commands = append(p.Commands, "SET GLOBAL read_only = ON")
	}
	p.Changes = append(p.Changes, steps.Change{What: "budget watchdog on " + st.ep.Host,
		After: fmt.Sprintf("restores read_only after %s unless mysql.unfreeze or undo runs first", st.budget)})
	if len(st.bypass) > 0 {
		p.Changes = append(p.Changes, steps.Change{What: "accounts read_only does not stop (they hold SUPER/READ_ONLY ADMIN)",
			After: strings.Join(st.bypass, ", ") + ": make sure the application does not use them"})
	}
	for _, w := range st.writers {
		p.Changes = append(p.Changes, steps.Change{What: "open write transaction", Before: w.String(),
			After: fmt.Sprintf("waited for up to %s, then %s", a.Wait, map[bool]string{true: "killed", false: "the freeze is lifted and the step fails"}[a.KillWriters])})
	}
	return p, nil
}

// Do arms the watchdog, sets read_only, waits for write transactions and
// starts the budget timer.
func (a *MySQLFreeze) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	db, err := env.MySQL(ctx, a.Endpoint)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st, err := a.inspect(ctx, env, conn)
	if err != nil {
		return nil, err
	}
	if st.readOnly && (st.superRO == nil || *st.superRO) {
		r.Logf("%s is already read-only: nothing to freeze", a.Endpoint)
		return nil, nil
	}
	h, err := env.Host(ctx, st.ep.Host)
	if err != nil {
		return nil, err
	}
	rc := MySQLFreezeReceipt{Endpoint: a.Endpoint, Host: st.ep.Host, ReadOnly: st.readOnly, SuperReadOnly: st.superRO,
		StateFile: mysqlFreezeStatePath(env, a.Endpoint)}
	client, err := mysqlFreezeClient(ctx, h, st.ep)
	if err != nil {
		return nil, err
	}
	// The watchdog must be able to log in before there is anything to lift.
	if out, err := h.Output(ctx, client+" -e 'SELECT 1' 2>&1"); err != nil {
		return nil, fmt.Errorf("the watchdog cannot log in to %s with the endpoint's options: %v %s", a.Endpoint, err, strings.TrimSpace(string(out)))
	}
	dir, err := h.Output(ctx, "mktemp -d \"${TMPDIR:-/tmp}/decant-freeze.XXXXXX\"")
	if err != nil {
		return nil, fmt.Errorf("make the watchdog's directory on %s: %w", st.ep.Host, err)
	}
	rc.WatchdogDir = strings.TrimSpace(string(dir))
	rc.Budget, rc.Deadline = st.budget, env.Clock().Add(st.budget)
	if err := r.Checkpoint(rc); err != nil {
		return nil, err
	}
	// Armed before the freeze: if decant dies right after SET GLOBAL, the
	// watchdog still lifts it. Restoring values that were never changed
	// does no harm.
	pid, err := mysqlFreezeStartWatchdog(ctx, h, rc, client, st.budget)
	if err != nil {
		return rc, err
	}
	rc.WatchdogPID = pid
	if err := r.Checkpoint(rc); err != nil {
		return rc, err
	}
	r.Logf("watchdog armed on %s (pid %d): it restores read_only at %s unless the freeze ends first", st.ep.Host, pid, rc.Deadline.UTC().Format(time.RFC3339))

	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION lock_wait_timeout = %d", mysqlFreezeSeconds(a.Wait))); err != nil {
		return rc, err
	}
	set := "SET GLOBAL read_only = ON"
	if st.superRO != nil {
		set = "SET GLOBAL super_read_only = ON" // implies read_only
	}
	if _, err := conn.ExecContext(ctx, set); err != nil {
		_ = mysqlFreezeEnd(ctx, env, rc, true, r)
		return rc, fmt.Errorf("%s: %w", set, err)
	}
	rc.Frozen = env.Clock()
	r.Logf("%s: writes are frozen on %s (budget %s)", set, a.Endpoint, st.budget)

	// Transactions that wrote rows before the freeze end now: they commit
	// (admin sessions) or fail at COMMIT. Wait for them to be gone. InnoDB
	// refreshes INNODB_TRX only when it was last read over 100ms ago, and
	// inspect just read it: poll slower than that.
	deadline := time.Now().Add(a.Wait)
	for {
		select {
		case <-ctx.Done():
			_ = mysqlFreezeEnd(ctx, env, rc, true, r)
			return rc, ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
		ws, err := mysqlFreezeWriters(ctx, conn)
		if err != nil {
			_ = mysqlFreezeEnd(ctx, env, rc, true, r)
			return rc, err
		}
		if len(ws) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var names []string
			for _, w := range ws {
				names = append(names, w.String())
			}
			if !a.KillWriters {
				_ = mysqlFreezeEnd(ctx, env, rc, true, r)
				return rc, fmt.Errorf("write transactions still open after %s: %s; the freeze was lifted. Retry later, kill them (KILL %d), or set kill_writers: true",
					a.Wait, strings.Join(names, "; "), ws[0].ID)
			}
			for _, w := range ws {
				r.Logf("KILL %d: %s", w.ID, w)
				if _, err := conn.ExecContext(ctx, fmt.Sprintf("KILL %d", w.ID)); err != nil {
					r.Logf("KILL %d: %v", w.ID, err)
				}
			}
			deadline = time.Now().Add(5 * time.Second)
			a.KillWriters = false
		}
	}
	if err := mysqlFreezeSaveState(rc); err != nil {
		_ = mysqlFreezeEnd(ctx, env, rc, true, r)
		return rc, err
	}
	mysqlFreezeStartTimer(env, rc, r)
	return rc, nil
}

// Undo ends the freeze: stops the timer and the watchdog and restores
// the values from before.
func (a *MySQLFreeze) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	var rc MySQLFreezeReceipt
	if err := json.Unmarshal(receipt, &rc); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	return mysqlFreezeEnd(ctx, env, rc, true, r)
}

// MySQLUnfreeze ends the freeze the last mysql.freeze on Endpoint started.
type MySQLUnfreeze struct {
	Endpoint string `yaml:"endpoint"`
	// KeepReadOnly stops the budget (timer and watchdog) but leaves the
	// server read-only: after a verified cut-over the old server should
	// refuse stray writes.
	KeepReadOnly bool `yaml:"keep_read_only"`
}

// MySQLUnfreezeReceipt is what mysql.unfreeze did.
type MySQLUnfreezeReceipt struct {
	Endpoint string             `json:"endpoint"`
	Freeze   MySQLFreezeReceipt `json:"freeze"`
	Kept     bool               `json:"kept_read_only,omitempty"`
}

// Plan reads the freeze's state file.
func (a *MySQLUnfreeze) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	rc, err := mysqlFreezeLoadState(mysqlFreezeStatePath(env, a.Endpoint))
	if err != nil {
		return nil, err
	}
	if rc == nil {
		return &steps.Plan{Noop: true, Summary: "no freeze by decant is active on " + a.Endpoint}, nil
	}
	p := &steps.Plan{Summary: "end the freeze of " + a.Endpoint}
	p.Changes = append(p.Changes, steps.Change{What: "budget watchdog on " + rc.Host, Before: fmt.Sprintf("armed (pid %d, deadline %s)", rc.WatchdogPID, rc.Deadline.UTC().Format(time.RFC3339)), After: "stopped"})
	if a.KeepReadOnly {
		p.Summary = "stop the freeze budget of " + a.Endpoint + " and keep it read-only"
		p.Changes = append(p.Changes, steps.Change{What: "read_only", Before: "ON", After: "ON (kept)"})
	} else {
		p.Changes = append(p.Changes, steps.Change{What: "read_only", Before: "ON", After: mysqlFreezeOnOff(rc.ReadOnly)})
		if rc.SuperReadOnly != nil {
			p.Changes = append(p.Changes, steps.Change{What: "super_read_only", Before: "ON", After: mysqlFreezeOnOff(*rc.SuperReadOnly)})
		}
	}
	return p, nil
}

// Do stops the timer and the watchdog, and restores read_only unless kept.
func (a *MySQLUnfreeze) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	rc, err := mysqlFreezeLoadState(mysqlFreezeStatePath(env, a.Endpoint))
	if err != nil {
		return nil, err
	}
	if rc == nil {
		r.Logf("no freeze by decant is active on %s", a.Endpoint)
		return nil, nil
	}
	out := MySQLUnfreezeReceipt{Endpoint: a.Endpoint, Freeze: *rc, Kept: a.KeepReadOnly}
	if err := r.Checkpoint(out); err != nil {
		return nil, err
	}
	return out, mysqlFreezeEnd(ctx, env, *rc, !a.KeepReadOnly, r)
}

// Undo of an unfreeze does not freeze again: a freeze needs a fresh budget.
func (a *MySQLUnfreeze) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	r.Logf("nothing to undo: to freeze writes again, run mysql.freeze (it starts a new budget)")
	return nil
}

// mysqlFreezeEnd stops the in-process timer and the host watchdog, then
// restores the values from before the freeze when restore is set.
func mysqlFreezeEnd(ctx context.Context, env *steps.Env, rc MySQLFreezeReceipt, restore bool, r steps.Reporter) error {
	mysqlFreezeStopTimer(rc.StateFile)
	var errs []error
	if rc.WatchdogDir != "" {
		h, err := env.Host(ctx, rc.Host)
		if err != nil {
			errs = append(errs, err)
		} else {
			if lifted, err := h.Output(ctx, "cat "+hosts.Quote(rc.WatchdogDir+"/lifted")+" 2>/dev/null || true"); err == nil && len(strings.TrimSpace(string(lifted))) > 0 {
				r.Logf("the watchdog on %s already lifted the freeze at %s (budget used up while decant was not running)", rc.Host, strings.TrimSpace(string(lifted)))
			}
			if werr, err := h.Output(ctx, "cat "+hosts.Quote(rc.WatchdogDir+"/error")+" 2>/dev/null || true"); err == nil && len(strings.TrimSpace(string(werr))) > 0 {
				r.Logf("the watchdog on %s reported: %s", rc.Host, strings.TrimSpace(string(werr)))
			}
			if err := mysqlFreezeDisarm(ctx, h, rc); err != nil {
				errs = append(errs, err)
			} else {
				r.Logf("watchdog on %s stopped", rc.Host)
			}
		}
	}
	if restore {
		db, err := env.MySQL(ctx, rc.Endpoint)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, s := range mysqlFreezeRestoreSQL(rc) {
			if _, err := db.ExecContext(ctx, s); err != nil {
				return errors.Join(append(errs, fmt.Errorf("%s: %w", s, err))...)
			}
			r.Logf("%s", s)
		}
		if rc.Frozen.IsZero() {
			r.Logf("freeze of %s lifted", rc.Endpoint)
		} else {
			r.Logf("freeze of %s lifted after %s", rc.Endpoint, env.Clock().Sub(rc.Frozen).Round(time.Second))
		}
	}
	if rc.StateFile != "" {
		if err := os.Remove(rc.StateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mysqlFreezeRestoreSQL restores the values before the freeze;
// super_read_only must go off before read_only can.
func mysqlFreezeRestoreSQL(rc MySQLFreezeReceipt) []string {
	var out []string
	if rc.SuperReadOnly != nil {
		out = append(out, "SET GLOBAL super_read_only = OFF")
	}
	out = append(out, "SET GLOBAL read_only = "+mysqlFreezeOnOff(rc.ReadOnly))
	if rc.SuperReadOnly != nil && *rc.SuperReadOnly {
		out = append(out, "SET GLOBAL super_read_only = ON")
	}
	return out
}

// mysqlFreezeClient is the mysql client command line the watchdog uses,
// with the endpoint's option file (never a password on argv).
func mysqlFreezeClient(ctx context.Context, h hosts.Host, ep steps.MySQLEndpoint) (string, error) {
	bin, err := h.Output(ctx, "command -v mariadb || command -v mysql")
	if err != nil || strings.TrimSpace(string(bin)) == "" {
		return "", fmt.Errorf("the freeze watchdog needs the mysql or mariadb client on %s: apt-get install mariadb-client (or mysql-client)", h.Name())
	}
	var b strings.Builder
	b.WriteString(hosts.Quote(strings.TrimSpace(strings.Split(string(bin), "\n")[0])))
	if ep.Options != "" {
		opt := hosts.Quote(ep.Options)
		if rest, ok := strings.CutPrefix(ep.Options, "~/"); ok {
			opt = `"$HOME"/` + hosts.Quote(rest)
		}
		b.WriteString(" --defaults-file=" + opt)
	} else {
		b.WriteString(" --no-defaults")
	}
	if ep.User != "" {
		b.WriteString(" --user=" + hosts.Quote(ep.User))
	}
	switch {
	case ep.Socket != "":
		b.WriteString(" --protocol=SOCKET --socket=" + hosts.Quote(ep.Socket))
	case ep.Address != "":
		host, port, err := net.SplitHostPort(ep.Address)
		if err != nil {
			return "", fmt.Errorf("mysql.%s.address: %w", ep.Name, err)
		}
		b.WriteString(" --protocol=TCP --host=" + hosts.Quote(host) + " --port=" + hosts.Quote(port))
	}
	b.WriteString(" --batch --skip-column-names --connect-timeout=10")
	return b.String(), nil
}

// mysqlFreezeStartWatchdog starts, in its own session on h, a shell that
// sleeps for the budget and then, if the "armed" marker is still there,
// restores the values from before the freeze and writes "lifted".
func mysqlFreezeStartWatchdog(ctx context.Context, h hosts.Host, rc MySQLFreezeReceipt, client string, budget time.Duration) (int, error) {
	dir := hosts.Quote(rc.WatchdogDir)
	sql := strings.Join(mysqlFreezeRestoreSQL(rc), "; ")
	script := fmt.Sprintf(`date -u +%%FT%%TZ > %[1]s/armed
sleep %[2]d
if [ -f %[1]s/armed ]; then
  if %[3]s -e %[4]s 2>%[1]s/error; then date -u +%%FT%%TZ > %[1]s/lifted; fi
  rm -f %[1]s/armed
fi`, dir, mysqlFreezeSeconds(budget), client, hosts.Quote(sql))
	launch := "sh -c " + hosts.Quote(script) + " </dev/null >/dev/null 2>&1 & echo $!"
	if out, _ := h.Output(ctx, "command -v setsid"); strings.TrimSpace(string(out)) != "" {
		// Its own session: no SIGHUP when the SSH session ends, and a
		// process group undo can kill as a whole.
		launch = "setsid " + launch
	}
	out, err := h.Output(ctx, launch)
	if err != nil {
		return 0, fmt.Errorf("start the freeze watchdog on %s: %w", h.Name(), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("start the freeze watchdog on %s: unexpected output %q", h.Name(), string(out))
	}
	// Wait until it has written its marker, so a disarm cannot race it.
	for i := 0; i < 100; i++ {
		if fi, err := h.Stat(ctx, rc.WatchdogDir+"/armed"); err == nil && fi.Exists {
			return pid, nil
		}
		select {
		case <-ctx.Done():
			return pid, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return pid, fmt.Errorf("the freeze watchdog on %s did not start", h.Name())
}

// mysqlFreezeDisarm removes the marker (so the watchdog does nothing even
// if it survives) and kills the watchdog's process group, after checking
// the PID still belongs to it.
func mysqlFreezeDisarm(ctx context.Context, h hosts.Host, rc MySQLFreezeReceipt) error {
	dir := hosts.Quote(rc.WatchdogDir)
	cmd := "rm -f " + dir + "/armed"
	if rc.WatchdogPID > 0 {
		cmd += fmt.Sprintf("; if tr '\\0' ' ' </proc/%[1]d/cmdline 2>/dev/null | grep -qF %[2]s; then kill -TERM -- -%[1]d 2>/dev/null || kill -TERM %[1]d 2>/dev/null; fi",
			rc.WatchdogPID, hosts.Quote(rc.WatchdogDir))
	}
	if strings.HasPrefix(filepath.Base(rc.WatchdogDir), "decant-freeze.") {
		cmd += "; rm -rf " + dir
	}
	cmd += "; true"
	if _, err := h.Output(ctx, cmd); err != nil {
		return fmt.Errorf("stop the freeze watchdog on %s: %w", h.Name(), err)
	}
	return nil
}

// The in-process budget timer: one per frozen endpoint (its state file).
var (
	mysqlFreezeMu     sync.Mutex
	mysqlFreezeTimers = map[string]*mysqlFreezeTimer{}
)

type mysqlFreezeTimer struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// mysqlFreezeStartTimer logs a line per second frozen and lifts the freeze
// itself when the budget is used up.
func mysqlFreezeStartTimer(env *steps.Env, rc MySQLFreezeReceipt, r steps.Reporter) {
	t := &mysqlFreezeTimer{stop: make(chan struct{}), done: make(chan struct{})}
	mysqlFreezeMu.Lock()
	if old := mysqlFreezeTimers[rc.StateFile]; old != nil {
		old.once.Do(func() { close(old.stop) })
	}
	mysqlFreezeTimers[rc.StateFile] = t
	mysqlFreezeMu.Unlock()
	budget := rc.Budget
	go func() {
		defer close(t.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		// The watchdog on the host fires at the same deadline; lifting a
		// little earlier here makes decant the one that says so.
		timer := time.NewTimer(time.Until(rc.Deadline) - 500*time.Millisecond)
		defer timer.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				r.Logf("frozen %s of %s budget", time.Since(rc.Frozen).Round(time.Second), budget.Round(time.Second))
			case <-timer.C:
				mysqlFreezeMu.Lock()
				if mysqlFreezeTimers[rc.StateFile] == t {
					delete(mysqlFreezeTimers, rc.StateFile)
				}
				mysqlFreezeMu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := mysqlFreezeEnd(ctx, env, rc, true, r)
				cancel()
				if err != nil {
					r.Logf("freeze budget of %s used up, but lifting the freeze failed: %v; the watchdog on %s retries at the deadline", budget, err, rc.Host)
					return
				}
				r.Logf("freeze budget of %s used up before the catch-up and verify finished: decant lifted the freeze on %s; writes are back on, run the freeze again later", budget, rc.Endpoint)
				return
			}
		}
	}()
}

// mysqlFreezeStopTimer stops the timer for a state file, if running here.
func mysqlFreezeStopTimer(stateFile string) {
	mysqlFreezeMu.Lock()
	t := mysqlFreezeTimers[stateFile]
	delete(mysqlFreezeTimers, stateFile)
	mysqlFreezeMu.Unlock()
	if t != nil {
		t.once.Do(func() { close(t.stop) })
		<-t.done
	}
}

func mysqlFreezeStatePath(env *steps.Env, endpoint string) string {
	return filepath.Join(env.StateDir, "mysql-freeze-"+endpoint+".json")
}

func mysqlFreezeSaveState(rc MySQLFreezeReceipt) error {
	if err := os.MkdirAll(filepath.Dir(rc.StateFile), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	tmp := rc.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, rc.StateFile)
}

func mysqlFreezeLoadState(path string) (*MySQLFreezeReceipt, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rc MySQLFreezeReceipt
	if err := json.Unmarshal(b, &rc); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &rc, nil
}

// mysqlFreezeWriters lists other sessions' transactions that wrote rows.
func mysqlFreezeWriters(ctx context.Context, q mysqlcompat.Querier) ([]mysqlFreezeWriter, error) {
	rows, err := q.QueryContext(ctx, `SELECT t.trx_mysql_thread_id, COALESCE(p.USER,''), COALESCE(p.HOST,''),
		COALESCE(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()),0), t.trx_rows_modified
		FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
		WHERE t.trx_rows_modified > 0 AND t.trx_mysql_thread_id <> CONNECTION_ID()`)
	if err != nil {
		return nil, fmt.Errorf("list open write transactions: %w", err)
	}
	defer rows.Close()
	var out []mysqlFreezeWriter
	for rows.Next() {
		var w mysqlFreezeWriter
		if err := rows.Scan(&w.ID, &w.User, &w.Host, &w.Seconds, &w.Rows); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func mysqlFreezeBool(ctx context.Context, q mysqlcompat.Querier, expr string) (bool, error) {
	var v sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT "+expr).Scan(&v); err != nil {
		return false, fmt.Errorf("read %s: %w", expr, err)
	}
	return v.String == "1" || strings.EqualFold(v.String, "ON"), nil
}

func mysqlFreezeOnOff(b bool) string {
	if b {
		return "ON"
	}
	return "OFF"
}

func mysqlFreezeSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
