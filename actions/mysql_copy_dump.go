package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/rowcopy"
	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

// mysqlConnArgs are a client's connection options for an endpoint as seen
// from its host: the option file first (credentials never on argv), then
// the socket or the TCP address.
func mysqlConnArgs(ep steps.MySQLEndpoint) ([]string, error) {
	if ep.Options == "" {
		return nil, fmt.Errorf("mysql endpoint %q has no options: file; dump mode passes credentials through it, never on the command line", ep.Name)
	}
	args := []string{"--defaults-extra-file=" + hosts.Quote(ep.Options)}
	if ep.User != "" {
		args = append(args, "--user="+hosts.Quote(ep.User))
	}
	switch {
	case ep.Socket != "":
		args = append(args, "--socket="+hosts.Quote(ep.Socket))
	case ep.Address != "":
		host, port, err := net.SplitHostPort(ep.Address)
		if err != nil {
			return nil, fmt.Errorf("mysql endpoint %q: address %q: %w", ep.Name, ep.Address, err)
		}
		args = append(args, "--protocol=tcp", "--host="+hosts.Quote(host), "--port="+hosts.Quote(port))
	}
	return args, nil
}

// dumpCommands returns the mysqldump command for one database on the
// source host and the mysql command that loads it on the target host.
func (a *MySQLCopy) dumpCommands(env *steps.Env) (func(db string) string, string, error) {
	sName, tName := a.endpoints()
	sep, ok := env.Conn.MySQLEndpoint(sName)
	if !ok {
		return nil, "", fmt.Errorf("no mysql endpoint %q in the runbook", sName)
	}
	tep, ok := env.Conn.MySQLEndpoint(tName)
	if !ok {
		return nil, "", fmt.Errorf("no mysql endpoint %q in the runbook", tName)
	}
	sArgs, err := mysqlConnArgs(sep)
	if err != nil {
		return nil, "", err
	}
	tArgs, err := mysqlConnArgs(tep)
	if err != nil {
		return nil, "", err
	}
	dump := func(db string) string {
		return "mysqldump " + strings.Join(sArgs, " ") +
			" --single-transaction --quick --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --databases " + hosts.Quote(db)
	}
	return dump, "mysql " + strings.Join(tArgs, " ") + " --default-character-set=utf8mb4", nil
}

// mysqlDumpState marks a database done in dump mode (a dump cannot resume
// inside a database).
func mysqlDumpState(db string) string { return db + ".*" }

// doDump runs the classic pipeline per database: mysqldump on the source
// host, its output streamed through decant (which counts the bytes) into
// mysql on the target host.
func (a *MySQLCopy) doDump(ctx context.Context, env *steps.Env, s *mysqlCopySource, rc *MySQLCopyReceipt, r steps.Reporter) (any, error) {
	sName, tName := a.endpoints()
	sep, _ := env.Conn.MySQLEndpoint(sName)
	tep, _ := env.Conn.MySQLEndpoint(tName)
	dump, client, err := a.dumpCommands(env)
	if err != nil {
		return rc, err
	}
	sh, err := env.Host(ctx, sep.Host)
	if err != nil {
		return rc, err
	}
	th, err := env.Host(ctx, tep.Host)
	if err != nil {
		return rc, err
	}
	// mysqldump --databases drops and recreates each table: refuse to
	// touch tables this step did not create.
	for _, t := range s.tables {
		if s.dstTables[t.DB][t.Name] != "" && !rc.createdTable(t.FullName()) {
			return rc, fmt.Errorf("the target already has %s and this step did not create it; mysqldump would replace it: drop it there first, or use mode: native with existing: keep", t.FullName())
		}
	}
	var total int64
	perDB := map[string]int64{}
	for _, t := range s.tables {
		total += t.DataLength
		perDB[t.DB] += t.DataLength
	}
	var done int64
	start := time.Now()
	for _, db := range s.databases {
		st := mysqlDumpState(db)
		if mysqlCompleteTable(rc, st) {
			done += perDB[db]
			continue
		}
		// Journal everything the dump will create before it runs.
		if !s.dstDBs[db] && !rc.createdDatabase(db) {
			rc.CreatedDatabases = append(rc.CreatedDatabases, db)
		} else if s.dstDBs[db] && !rc.existingDatabase(db) && !rc.createdDatabase(db) {
			rc.ExistingDatabases = append(rc.ExistingDatabases, db)
		}
		for _, t := range s.tables {
			if t.DB == db && !rc.createdTable(t.FullName()) {
				rc.CreatedTables = append(rc.CreatedTables, t.FullName())
			}
		}
		for _, o := range s.objects {
			if o.DB == db && !rc.createdObject(o) {
				rc.CreatedObjects = append(rc.CreatedObjects, MySQLObjectRef{Kind: o.Kind, DB: o.DB, Name: o.Name})
			}
		}
		rc.Phase = "data"
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		r.Logf("dump %s: %s | %s", db, dump(db), client)
		n, err := mysqlPipe(ctx, sh, dump(db), th, client, r, func(sent int64) {
			d := done + sent
			tot := max(total, d+1)
			r.Progress(d, tot, "bytes")
		})
		rc.Bytes += n
		if err != nil {
			return rc, fmt.Errorf("dump %s: %w", db, err)
		}
		done += n
		rc.Tables = append(rc.Tables, rowcopy.TableState{Table: st, Complete: true, Bytes: n})
		if err := r.Checkpoint(rc); err != nil {
			return rc, err
		}
		r.Logf("dump %s: %s loaded", db, mysqlMiB(n))
	}
	rc.Seconds += time.Since(start).Seconds()
	rc.Phase = "done"
	if len(rc.DisabledEvents) == 0 {
		for _, o := range s.objects {
			if o.Kind == schema.KindEvent && strings.EqualFold(o.Status, "ENABLED") {
				rc.decide(r, schema.Decision{Object: o.FullName(), Problem: true,
					Message: "dump mode creates events as they are: this one is enabled on the target and may change its data before the cut-over"})
			}
		}
	}
	r.Progress(total, total, "bytes")
	r.Logf("dump finished: %s in %.1fs", mysqlMiB(rc.Bytes), rc.Seconds)
	return rc, r.Checkpoint(rc)
}

func mysqlCompleteTable(rc *MySQLCopyReceipt, name string) bool {
	for _, t := range rc.Tables {
		if t.Table == name && t.Complete {
			return true
		}
	}
	return false
}

// countingWriter counts bytes on their way from mysqldump to mysql.
type countingWriter struct {
	w     io.Writer
	n     atomic.Int64
	onAdd func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	total := c.n.Add(int64(n))
	if c.onAdd != nil {
		c.onAdd(total)
	}
	return n, err
}

// mysqlPipe runs producer on one host into consumer on another, streaming
// through this process. The first failure stops both.
func mysqlPipe(ctx context.Context, ph hosts.Host, producer string, ch hosts.Host, consumer string, r steps.Reporter, progress func(int64)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw, onAdd: progress}
	var perr, cerr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		e := steps.NewLineWriter(r, "mysqldump: ")
		perr = ph.Run(ctx, producer, nil, cw, e)
		e.Flush()
		pw.CloseWithError(perr)
		if perr != nil {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		e := steps.NewLineWriter(r, "mysql: ")
		cerr = ch.Run(ctx, consumer, pr, nil, e)
		e.Flush()
		pr.CloseWithError(errors.New("the loading side stopped"))
		if cerr != nil {
			cancel()
		}
	}()
	wg.Wait()
	switch {
	case cerr != nil:
		return cw.n.Load(), fmt.Errorf("load on the target: %w", cerr)
	case perr != nil:
		return cw.n.Load(), fmt.Errorf("mysqldump on the source: %w", perr)
	}
	return cw.n.Load(), nil
}
