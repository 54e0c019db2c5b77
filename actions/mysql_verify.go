package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/rowcopy"
	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name: "mysql.verify",
		Doc:  "compare every copied table on both servers: row counts and chunked CRC32 checksums of the raw bytes; lists the rows that differ and fails the step",
		New: func(n ast.Node) (any, error) {
			a := &MySQLVerify{}
			if err := steps.DecodeParams(n, a); err != nil {
				return nil, err
			}
			if a.Parallel < 0 || a.Parallel > 64 {
				return nil, steps.BadParam("parallel", "%d: want 1 to 64", a.Parallel)
			}
			for _, e := range a.Exclude {
				if !strings.Contains(e, ".") {
					return nil, steps.BadParam("exclude", "%q: want db.table", e)
				}
			}
			return a, nil
		},
	})
}

// MySQLVerify checks that the target holds the same rows as the source.
// It changes nothing; a mismatch fails the step, so run it after the
// freeze and the final catch-up, when the source no longer changes.
type MySQLVerify struct {
	Source    string   `yaml:"source"`
	Target    string   `yaml:"target"`
	Databases []string `yaml:"databases"` // default: every user database on the source
	Exclude   []string `yaml:"exclude"`   // "db.table" not compared (e.g. excluded from the copy)
	// Parallel is the number of chunks compared at once (default
	// settings.parallel, else cores); ChunkRows / ChunkMiB size them.
	Parallel  int   `yaml:"parallel"`
	ChunkRows int64 `yaml:"chunk_rows"`
	ChunkMiB  int64 `yaml:"chunk_mib"`
	// MaxListed is how many differing rows are listed per table (default 20).
	MaxListed int `yaml:"max_listed"`
}

// MySQLVerifyReceipt is the verdict: totals and the tables that differ.
type MySQLVerifyReceipt struct {
	Tables  int                   `json:"tables"`
	Rows    int64                 `json:"rows"`
	Chunks  int                   `json:"chunks"`
	Seconds float64               `json:"seconds"`
	Failed  []*rowcopy.TableCheck `json:"failed,omitempty"`
	Extra   []string              `json:"extra_on_target,omitempty"`
}

func (a *MySQLVerify) copyView() *MySQLCopy {
	return &MySQLCopy{Source: a.Source, Target: a.Target, Databases: a.Databases, Exclude: a.Exclude, Parallel: a.Parallel}
}

// Plan says what will be compared.
func (a *MySQLVerify) Plan(ctx context.Context, env *steps.Env) (*steps.Plan, error) {
	s, err := a.copyView().read(ctx, env)
	if err != nil {
		return nil, err
	}
	var n int
	var bytes, rows int64
	for _, t := range s.tables {
		if !mysqlContains(a.Exclude, t.FullName()) {
			n++
			bytes += t.DataLength
			rows += t.Rows
		}
	}
	sName, tName := a.copyView().endpoints()
	return &steps.Plan{
		Summary: fmt.Sprintf("compare %d tables (~%d rows, %s) on %s and %s, chunk by chunk", n, rows, mysqlMiB(bytes), sName, tName),
		Commands: []string{"per chunk, on both servers at once: SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', <every column as bytes>, <NULL flags>))) FROM <table> WHERE <key range>",
			"per differing chunk: the same per row, to list the rows that differ"},
		Changes: []steps.Change{{What: "nothing: read-only; a difference fails the step"}},
		Total:   bytes,
		Unit:    "bytes",
	}, nil
}

// Do compares and fails when any table differs.
func (a *MySQLVerify) Do(ctx context.Context, env *steps.Env, _ *steps.Plan, r steps.Reporter) (any, error) {
	cv := a.copyView()
	s, err := cv.read(ctx, env)
	if err != nil {
		return nil, err
	}
	var tables []*schema.Table
	for _, t := range s.tables {
		if !mysqlContains(a.Exclude, t.FullName()) {
			tables = append(tables, t)
		}
	}
	start := time.Now()
	checks, err := rowcopy.Verify(ctx, s.src, s.dst, tables, rowcopy.VerifyOptions{
		Parallel: cv.parallel(env), ChunkRows: a.ChunkRows, ChunkBytes: a.ChunkMiB << 20, MaxListed: a.MaxListed,
		Logf: r.Logf, Progress: func(done, total int64) { r.Progress(done, total, "bytes") },
	})
	if err != nil {
		return nil, err
	}
	rc := &MySQLVerifyReceipt{Tables: len(checks), Seconds: time.Since(start).Seconds()}
	for _, c := range checks {
		rc.Rows += c.SourceRows
		rc.Chunks += c.Chunks
		if !c.OK() {
			rc.Failed = append(rc.Failed, c)
			r.Logf("DIFFERS %s", c.Summary())
		} else {
			r.Logf("ok %s", c.Summary())
		}
	}
	// Tables on the target the source does not have are worth a word.
	for _, db := range s.databases {
		names, err := schema.TableNames(ctx, s.dst, db)
		if err != nil {
			return rc, err
		}
		for n, typ := range names {
			if typ != "BASE TABLE" {
				continue
			}
			found := false
			for _, t := range s.tables {
				found = found || (t.DB == db && t.Name == n)
			}
			if !found {
				rc.Extra = append(rc.Extra, db+"."+n)
				r.Logf("note: %s.%s is on the target only", db, n)
			}
		}
	}
	r.Logf("verified %d tables, %d rows in %d chunks in %.1fs", rc.Tables, rc.Rows, rc.Chunks, rc.Seconds)
	if len(rc.Failed) > 0 {
		var names []string
		for _, c := range rc.Failed {
			names = append(names, c.Table)
		}
		return rc, fmt.Errorf("%d table(s) differ: %s (rows listed above; run mysql.catchup, or copy again, then verify again)", len(rc.Failed), mysqlList(names, 6))
	}
	return rc, nil
}

// Undo has nothing to revert: verify only reads.
func (a *MySQLVerify) Undo(ctx context.Context, env *steps.Env, receipt json.RawMessage, r steps.Reporter) error {
	r.Logf("mysql.verify changed nothing: nothing to undo")
	return nil
}
