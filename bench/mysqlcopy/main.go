// Command mysqlcopy benchmarks decant's mysql.copy against the classic
// pipelines on the same data in one run: `mysqldump --single-transaction |
// ssh | mysql`, and mydumper → ssh → myloader at the same thread count.
// It also times mysql.verify against pt-table-checksum. For each it prints
// seconds, MiB/s of table data, peak RSS and CPU seconds of the client
// processes, and decant's ratio to it.
//
//	go run ./bench/mysqlcopy                 # ~1 GiB
//	go run ./bench/mysqlcopy -scale 4        # ~4 GiB
//
// The lab (two MariaDB servers and an sshd on loopback) is kept in -lab
// and reused by the next run, with its dataset; -down stops it at the end.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/decant-sh/decant/bench/benchlab"
	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/lab"
)

type result struct {
	name  string
	usage benchlab.Usage
	// server is the CPU both MariaDB servers used meanwhile.
	server time.Duration
	err    error
}

func main() {
	labDir := flag.String("lab", filepath.Join(os.TempDir(), "decant-bench-lab"), "lab directory (reused when running)")
	scale := flag.Float64("scale", 1, "dataset size in GiB of table data (about)")
	threads := flag.Int("threads", 4, "threads for every tool (decant parallel, mydumper/myloader --threads; 4 is their default)")
	methods := flag.String("methods", "decant,dump,mydumper,verify,pt-table-checksum", "what to run")
	extra := flag.String("decant-with", "", "extra mysql.copy parameters, e.g. 'chunk_mib: 32, loader: insert'")
	repeat := flag.Int("repeat", 1, "run each copy method this many times, in rotation, and keep the fastest (a shared machine is noisy)")
	down := flag.Bool("down", false, "stop the lab at the end")
	flag.Parse()
	if err := run(*labDir, *scale, *threads, *methods, *extra, *down, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(labDir string, scale float64, threads int, methods, extra string, down bool, repeat int) error {
	ctx := context.Background()
	l, err := benchlab.Open(ctx, labDir)
	if err != nil {
		return err
	}
	if down {
		defer l.Stop()
	}
	src, err := benchlab.DB(ctx, l.Source)
	if err != nil {
		return err
	}
	dst, err := benchlab.DB(ctx, l.Target)
	if err != nil {
		return err
	}
	ds, err := benchlab.Build(ctx, src, scale)
	if err != nil {
		return err
	}
	work := filepath.Join(labDir, "work")
	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	decant, err := benchlab.BuildDecant(work)
	if err != nil {
		return err
	}
	want, err := counts(ctx, src)
	if err != nil {
		return err
	}
	benchlab.Logf("dataset: %d tables, %d rows, %.0f MiB of table data; %d threads", ds.Tables, ds.Rows, ds.MiB(), threads)
	best := map[string]*result{}
	var order []string
	has := func(m string) bool { return strings.Contains(","+methods+",", ","+m+",") }
	servers := func() time.Duration { return benchlab.ProcCPU(l.Source.PID) + benchlab.ProcCPU(l.Target.PID) }
	measure := func(name string, f func() (benchlab.Usage, error)) {
		if err := benchlab.ResetTarget(ctx, dst); err != nil {
			benchlab.Logf("reset target: %v", err)
		}
		// Each method starts from an empty target and a settled server.
		time.Sleep(3 * time.Second)
		s0 := servers()
		u, err := f()
		srv := servers() - s0
		if err == nil {
			var got string
			got, err = counts(ctx, dst)
			if err == nil && got != want {
				err = fmt.Errorf("target rows differ from the source:\n%s\nvs\n%s", got, want)
			}
		}
		if err != nil {
			benchlab.Logf("%s: %v", name, err)
		} else {
			benchlab.Logf("%s: %.1fs, CPU %.1fs, peak RSS %.0f MiB, servers' CPU %.1fs", name, u.Wall.Seconds(), u.CPU.Seconds(), float64(u.MaxRSS)/(1<<20), srv.Seconds())
		}
		r := &result{name, u, srv, err}
		if b, ok := best[name]; !ok {
			best[name] = r
			order = append(order, name)
		} else if b.err != nil || (err == nil && u.Wall < b.usage.Wall) {
			best[name] = r
		}
	}
	decantName := fmt.Sprintf("decant mysql.copy (parallel %d)", threads)
	for i := 0; i < repeat; i++ {
		if has("dump") {
			measure("mysqldump | ssh | mysql", func() (benchlab.Usage, error) { return dumpPipe(ctx, l, work) })
		}
		if has("mydumper") {
			measure(fmt.Sprintf("mydumper → ssh → myloader (%d threads)", threads), func() (benchlab.Usage, error) { return mydumper(ctx, l, work, threads) })
		}
		if has("decant") {
			with := fmt.Sprintf("databases: [%s], parallel: %d", benchlab.Database, threads)
			if extra != "" {
				with += ", " + extra
			}
			measure(decantName, func() (benchlab.Usage, error) { return decantStep(ctx, l, work, decant, "mysql.copy", with) })
		}
	}
	var results []result
	for _, n := range order {
		results = append(results, *best[n])
	}
	if has("decant") {
		// Leave decant's copy on the target for verify.
		if r := best[decantName]; r != nil && len(order) > 0 && order[len(order)-1] != decantName {
			measure(decantName+" (again, for verify)", func() (benchlab.Usage, error) {
				with := fmt.Sprintf("databases: [%s], parallel: %d", benchlab.Database, threads)
				return decantStep(ctx, l, work, decant, "mysql.copy", with)
			})
		}
	}
	var verify []result
	if has("verify") && has("decant") {
		u, err := decantStep(ctx, l, work, decant, "mysql.verify", fmt.Sprintf("databases: [%s], parallel: %d", benchlab.Database, threads))
		verify = append(verify, result{name: "decant mysql.verify (both servers)", usage: u, err: err})
	}
	if has("pt-table-checksum") {
		u, err := ptChecksum(ctx, l, src)
		verify = append(verify, result{name: "pt-table-checksum (source only)", usage: u, err: err})
	}
	report(ds, threads, repeat, results, verify)
	return nil
}

// counts is every table's exact row count, as one string.
func counts(ctx context.Context, db *sql.DB) (string, error) {
	var out []string
	for _, t := range []string{"sbtest1", "sbtest2", "sbtest3", "sbtest4", "sbtest5", "sbtest6", "sbtest7", "sbtest8", "docs"} {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+benchlab.Database+"."+t).Scan(&n); err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("%s=%d", t, n))
	}
	return strings.Join(out, " "), nil
}

func logFile(work, name string) *os.File {
	f, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		return os.Stderr
	}
	return f
}

func dumpPipe(ctx context.Context, l *lab.Lab, work string) (benchlab.Usage, error) {
	remote := filepath.Join(work, "dump-remote.time")
	ssh := "ssh " + strings.Join(quoteAll(benchlab.SSHArgs(l)), " ")
	pipe := "mysqldump --defaults-file=" + hosts.Quote(l.Source.OptionFile) + " --single-transaction --databases " + benchlab.Database +
		" | " + ssh + " " + hosts.Quote(benchlab.TimeWrap(remote, "mysql --defaults-file="+hosts.Quote(l.Target.OptionFile)))
	benchlab.Logf("dump: %s", pipe)
	lf := logFile(work, "dump")
	defer lf.Close()
	u, err := benchlab.Run(ctx, "bash", []string{"-c", "set -o pipefail; " + pipe}, lf, lf)
	if err != nil {
		return u, err
	}
	r, err := benchlab.ReadTime(remote)
	if err != nil {
		return u, err
	}
	r.Wall = 0
	u.Add(r)
	return u, nil
}

func mydumper(ctx context.Context, l *lab.Lab, work string, threads int) (benchlab.Usage, error) {
	out, in := filepath.Join(work, "mydumper-out"), filepath.Join(work, "myloader-in")
	os.RemoveAll(out)
	os.RemoveAll(in)
	os.MkdirAll(in, 0o700)
	lf := logFile(work, "mydumper")
	defer lf.Close()
	t := fmt.Sprint(threads)
	var total benchlab.Usage
	// 1. Export.
	u, err := benchlab.Run(ctx, "mydumper", []string{"--defaults-file=" + l.Source.OptionFile, "-B", benchlab.Database, "-o", out,
		"--threads", t, "--rows", "100000", "--trx-consistency-only", "-v", "1"}, lf, lf)
	total.Add(u)
	if err != nil {
		return total, err
	}
	benchlab.Logf("mydumper: export %.1fs", u.Wall.Seconds())
	// 2. Transfer.
	remote := filepath.Join(work, "tar-remote.time")
	ssh := "ssh " + strings.Join(quoteAll(benchlab.SSHArgs(l)), " ")
	pipe := "tar -C " + hosts.Quote(out) + " -cf - . | " + ssh + " " + hosts.Quote(benchlab.TimeWrap(remote, "tar -C "+hosts.Quote(in)+" -xf -"))
	u, err = benchlab.Run(ctx, "sh", []string{"-c", pipe}, lf, lf)
	total.Add(u)
	if err != nil {
		return total, err
	}
	if r, err := benchlab.ReadTime(remote); err == nil {
		r.Wall = 0
		total.Add(r)
	}
	benchlab.Logf("mydumper: transfer %.1fs", u.Wall.Seconds())
	// 3. Load.
	remote = filepath.Join(work, "myloader-remote.time")
	args := append(benchlab.SSHArgs(l), benchlab.TimeWrap(remote, "myloader --defaults-file="+hosts.Quote(l.Target.OptionFile)+" -d "+hosts.Quote(in)+" --threads "+t+" -o -v 1"))
	u, err = benchlab.Run(ctx, "ssh", args, lf, lf)
	total.Add(u)
	if err != nil {
		return total, err
	}
	if r, err := benchlab.ReadTime(remote); err == nil {
		r.Wall = 0
		total.Add(r)
	}
	benchlab.Logf("mydumper: load %.1fs", u.Wall.Seconds())
	os.RemoveAll(out)
	os.RemoveAll(in)
	return total, nil
}

func decantStep(ctx context.Context, l *lab.Lab, work, decant, kind, with string) (benchlab.Usage, error) {
	rb, err := benchlab.Runbook(work, l, fmt.Sprintf("      - action: %s\n        with: {%s}\n", kind, with))
	if err != nil {
		return benchlab.Usage{}, err
	}
	lf := logFile(work, strings.ReplaceAll(kind, ".", "-"))
	defer lf.Close()
	benchlab.Logf("%s: decant run --plain %s (log %s)", kind, rb, lf.Name())
	return benchlab.Run(ctx, decant, []string{"run", "--plain", "--yes", rb}, lf, lf)
}

func ptChecksum(ctx context.Context, l *lab.Lab, src *sql.DB) (benchlab.Usage, error) {
	if _, err := exec.LookPath("pt-table-checksum"); err != nil {
		return benchlab.Usage{}, fmt.Errorf("pt-table-checksum is not installed (apt-get install percona-toolkit)")
	}
	defer src.ExecContext(ctx, "DROP DATABASE IF EXISTS percona")
	dsn := fmt.Sprintf("h=127.0.0.1,P=%d,u=root,F=%s", l.Source.Port, l.Source.OptionFile)
	lf, _ := os.CreateTemp("", "pt-table-checksum-*.log")
	defer lf.Close()
	benchlab.Logf("pt-table-checksum (log %s)", lf.Name())
	u, err := benchlab.Run(ctx, "pt-table-checksum", []string{"--no-check-binlog-format", "--recursion-method=none",
		"--no-check-replication-filters", "--databases", benchlab.Database, dsn}, lf, lf)
	// It exits non-zero when it finds differences or warnings; with no
	// replicas there is nothing to differ, so only a failed run counts.
	if err != nil {
		if ee, ok := errorsAsExit(err); ok && ee < 64 && u.Wall > time.Second {
			err = nil
		}
	}
	return u, err
}

func errorsAsExit(err error) (int, bool) {
	for e := err; e != nil; {
		if ee, ok := e.(*exec.ExitError); ok {
			return ee.ExitCode(), true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return 0, false
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = hosts.Quote(a)
	}
	return out
}

func report(ds benchlab.Dataset, threads, repeat int, copies, verify []result) {
	fmt.Printf("\nMySQL copy benchmark: %.0f MiB of table data (%d rows, %d tables), %d threads, %d cores, best of %d\n\n",
		ds.MiB(), ds.Rows, ds.Tables, threads, runtime.NumCPU(), repeat)
	var dec *result
	for i := range copies {
		if strings.HasPrefix(copies[i].name, "decant") {
			dec = &copies[i]
		}
	}
	fmt.Printf("%-44s %9s %9s %13s %9s %12s %14s\n", "method", "seconds", "MiB/s", "peak RSS MiB", "CPU s", "server CPU s", "decant speedup")
	for _, r := range copies {
		if r.err != nil {
			fmt.Printf("%-44s FAILED: %v\n", r.name, r.err)
			continue
		}
		ratio := "-"
		if dec != nil && dec.err == nil && dec != &r && !strings.HasPrefix(r.name, "decant") {
			ratio = fmt.Sprintf("%.2fx", r.usage.Wall.Seconds()/dec.usage.Wall.Seconds())
		}
		fmt.Printf("%-44s %9.1f %9.1f %13.0f %9.1f %12.1f %14s\n", r.name, r.usage.Wall.Seconds(), ds.MiB()/r.usage.Wall.Seconds(),
			float64(r.usage.MaxRSS)/(1<<20), r.usage.CPU.Seconds(), r.server.Seconds(), ratio)
	}
	if dec != nil && dec.err == nil {
		fmt.Printf("\ndecant's own process: %.2f cores on average (CPU %.1fs over %.1fs), peak RSS %.0f MiB\n",
			dec.usage.CPU.Seconds()/dec.usage.Wall.Seconds(), dec.usage.CPU.Seconds(), dec.usage.Wall.Seconds(), float64(dec.usage.MaxRSS)/(1<<20))
	}
	if len(verify) > 0 {
		fmt.Println()
		for _, r := range verify {
			if r.err != nil {
				fmt.Printf("%-44s FAILED: %v\n", r.name, r.err)
				continue
			}
			fmt.Printf("%-44s %9.1f s %9.1f MiB/s, CPU %.1fs, peak RSS %.0f MiB\n", r.name, r.usage.Wall.Seconds(), ds.MiB()/r.usage.Wall.Seconds(),
				r.usage.CPU.Seconds(), float64(r.usage.MaxRSS)/(1<<20))
		}
	}
}
