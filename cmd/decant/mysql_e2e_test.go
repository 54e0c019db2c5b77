package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/labtest"
	"github.com/decant-sh/decant/internal/mysqlx"
	"github.com/decant-sh/decant/internal/secret"
)

// mysqlE2ERunbook copies database db from the lab's source (local socket)
// to its target (through the lab sshd's tunnel), slowly enough to be cut
// in the middle, then verifies.
func mysqlE2ERunbook(t *testing.T, db string) string {
	t.Helper()
	src := labtest.Header(theLab, "mysql e2e") + fmt.Sprintf(`phases:
  - name: move
    steps:
      - id: copy
        action: mysql.copy
        with: {databases: [%s], chunk_rows: 400, parallel: 2, max_rate_mib: 0.4, bulk_mib: 0}
      - id: verify
        action: mysql.verify
        with: {databases: [%s]}
`, db, db)
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mysqlE2ESetup(t *testing.T, db string) {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		addr, pw string
		stmts    []string
	}{
		{theLab.Target.Addr, theLab.Target.RootPassword, []string{"DROP DATABASE IF EXISTS " + db}},
		{theLab.Source.Addr, theLab.Source.RootPassword, []string{"DROP DATABASE IF EXISTS " + db, "CREATE DATABASE " + db,
			"CREATE TABLE " + db + ".big (id int NOT NULL PRIMARY KEY, name varchar(60) CHARACTER SET utf8mb4, body varbinary(200), KEY name (name))",
			"INSERT INTO " + db + ".big SELECT seq, CONCAT('row ', seq, ' — ünïcode'), RANDOM_BYTES(100) FROM " + db + ".seq_1_to_24000",
			"ANALYZE TABLE " + db + ".big"}},
	} {
		conn, err := mysqlx.Open(ctx, hosts.Local("test"), mysqlx.Endpoint{Name: "test", Address: m.addr, User: "root", Password: m.pw}, secret.NewSet())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.stmts {
			if _, err := conn.Exec(s); err != nil {
				conn.Close()
				t.Fatalf("%s: %v", s, err)
			}
		}
		conn.Close()
	}
}

// mysqlE2EProgress waits until the journal shows the copy step has
// checkpointed finished chunks, and returns the rows they hold.
func mysqlE2EProgress(t *testing.T, rb string, cmd *exec.Cmd, out *bytes.Buffer) int64 {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if rows := mysqlE2ECheckpointRows(rb); rows >= 2000 {
			return rows
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the copy never checkpointed a chunk:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mysqlE2ECheckpointRows(rb string) int64 {
	b, _ := os.ReadFile(rb + ".decant/journal.jsonl")
	var best int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		var ev struct {
			Type    string `json:"type"`
			Step    string `json:"step"`
			Receipt struct {
				Tables []struct {
					Rows int64 `json:"rows"`
				} `json:"tables"`
			} `json:"receipt"`
		}
		if json.Unmarshal(line, &ev) != nil || ev.Type != "step.checkpoint" || ev.Step != "copy" {
			continue
		}
		var n int64
		for _, tb := range ev.Receipt.Tables {
			n += tb.Rows
		}
		best = max(best, n)
	}
	return best
}

var mysqlE2ERowsCopied = regexp.MustCompile(`rows copied: (\d+) rows`)

// mysqlE2EFinish reruns the runbook and checks that the copy resumed (it
// copied fewer rows than the table holds) and that verify passed.
func mysqlE2EFinish(t *testing.T, rb string, args ...string) {
	t.Helper()
	r := run(t, "", append(append([]string{"run", "--plain"}, args...), rb)...)
	if r.Code != 0 {
		t.Fatalf("resumed run: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "resuming an interrupted copy") {
		t.Fatalf("the second run did not resume:\n%s", r.Stdout)
	}
	m := mysqlE2ERowsCopied.FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no row count in:\n%s", r.Stdout)
	}
	n, _ := strconv.Atoi(m[1])
	if n <= 0 || n >= 24000 {
		t.Fatalf("the resumed copy read %d rows of 24000: it did not start at the first unfinished chunk\n%s", n, r.Stdout)
	}
	if !strings.Contains(r.Stdout, "ok mysql_e2e") && !strings.Contains(r.Stdout, "24000 rows match") {
		t.Fatalf("verify did not pass:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "1 secondary index(es) built") {
		t.Fatalf("the deferred index was not built after the resume:\n%s", r.Stdout)
	}
	t.Logf("resumed copy read %d of 24000 rows", n)
}

// Cutting the SSH link in the middle of a copy stops the step; running
// again resumes at the first unfinished chunk, and verify finds every row
// once.
func TestMySQLCopyResumesAfterLinkCut(t *testing.T) {
	mysqlE2ESetup(t, "e2e_cut")
	rb := mysqlE2ERunbook(t, "e2e_cut")
	cmd := exec.Command(decant, "run", "--plain", rb)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mysqlE2EProgress(t, rb, cmd, &out)
	// Kill the sshd process serving decant's connection: the link dies as
	// if the network had dropped it.
	killed := 0
	for _, pid := range childrenOf(theLab.SSH.PID) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	if killed == 0 {
		cmd.Process.Kill()
		t.Fatal("no sshd child to kill")
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("the run survived a dead link:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "copy") || !strings.Contains(strings.ToLower(out.String()), "fail") {
		t.Fatalf("no failed copy in the output:\n%s", out.String())
	}
	mysqlE2EFinish(t, rb)
}

// SIGKILL of the real binary in the middle of a copy; the retry resumes.
func TestMySQLCopyResumesAfterSIGKILL(t *testing.T) {
	mysqlE2ESetup(t, "e2e_kill")
	rb := mysqlE2ERunbook(t, "e2e_kill")
	cmd := exec.Command(decant, "run", "--plain", rb)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mysqlE2EProgress(t, rb, cmd, &out)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	mysqlE2EFinish(t, rb, "--on-interrupted=retry")
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name is in parentheses and may contain spaces.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, p)
			}
		}
	}
	return out
}
