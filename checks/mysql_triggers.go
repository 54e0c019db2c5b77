package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

// The names decant's own change capture uses (actions/mysql_copy.go).
const (
	mysqlTriggersCaptureDB     = "decant_capture"
	mysqlTriggersCapturePrefix = "decant_cap_"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "mysql.triggers",
		Check: true,
		Doc:   "existing triggers on the source that leave no room for mysql.capture's change-capture triggers (servers with one trigger per event)",
		New: func(n ast.Node) (any, error) {
			c := &MySQLTriggers{Source: "source"}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			return c, nil
		},
	})
}

// MySQLTriggers finds, before the copy, the tables whose existing triggers
// would make mysql.capture refuse: MySQL before 5.7.2 and MariaDB before
// 10.2.3 allow one trigger per table, timing and event.
type MySQLTriggers struct {
	Source    string   `yaml:"source"`
	Databases []string `yaml:"databases"` // default: every user database
}

// Run reads the source's triggers and reports the conflicts.
func (c *MySQLTriggers) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	db, err := env.MySQL(ctx, c.Source)
	if err != nil {
		return nil, err
	}
	srv, err := schema.Probe(ctx, db)
	if err != nil {
		return nil, err
	}
	dbs := c.Databases
	if len(dbs) == 0 {
		if dbs, err = schema.Databases(ctx, db, mysqlTriggersCaptureDB); err != nil {
			return nil, err
		}
	}
	objs, err := schema.LoadObjects(ctx, db, dbs)
	if err != nil {
		return nil, err
	}
	return mysqlTriggerFindings(srv, objs), nil
}

// mysqlTriggerFindings turns the capture conflicts into findings.
func mysqlTriggerFindings(srv *schema.Server, objs []*schema.Object) []steps.Finding {
	n := 0
	for _, o := range objs {
		if o.Kind == schema.KindTrigger && !strings.HasPrefix(o.Name, mysqlTriggersCapturePrefix) {
			n++
		}
	}
	conflicts := schema.CaptureConflicts(srv, objs, mysqlTriggersCapturePrefix)
	if len(conflicts) == 0 {
		msg := fmt.Sprintf("%s allows several triggers per table and event: change capture sits next to the %d existing trigger(s)", srv, n)
		if !srv.MultipleTriggers() {
			msg = fmt.Sprintf("%s allows one trigger per table and event, and no existing trigger takes a slot change capture needs", srv)
		}
		return []steps.Finding{{Status: steps.Pass, Subject: "triggers", Message: msg}}
	}
	var out []steps.Finding
	for _, d := range conflicts {
		out = append(out, steps.Finding{Status: steps.Fail, Subject: d.Object, Message: d.Message,
			Fix: fmt.Sprintf("in mysql.capture, add `timestamp: {%s: <a column updated on every write>}` for this table, or exclude it and copy it again during the freeze", d.Object)})
	}
	return out
}
