package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/decant-sh/decant/internal/lab"
	"github.com/decant-sh/decant/internal/labtest"
)

var (
	theLab *lab.Lab
	decant string
)

func TestMain(m *testing.M) { os.Exit(labtest.MainWithDecant(m, &theLab, &decant, lab.Options{})) }

// runbookFor writes a runbook whose target is the lab's sshd and whose
// target MySQL option file (with the root password) is the lab's.
func runbookFor(t *testing.T, knownHosts, phases string) (path, work string) {
	t.Helper()
	work = t.TempDir()
	src := fmt.Sprintf(`name: e2e migration
hosts:
  source: {address: local}
  target:
    address: %q
    key: %q
    known_hosts: %q
mysql:
  target:
    host: target
    address: %q
    options: %q
phases:
%s
`, labtest.SSHHost(theLab), theLab.SSH.ClientKeyFile, knownHosts, theLab.Target.Addr, theLab.Target.OptionFile, phases)
	path = filepath.Join(work, "rb.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, work
}

func journalLines(t *testing.T, rb string) []map[string]any {
	t.Helper()
	f, err := os.Open(rb + ".decant/journal.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// A plain run of a check and a shell step with undo on the lab's target over
// SSH; undo reverts it; the transcript shows it with secrets redacted.
func TestPlainRunUndoTranscript(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	rb, work := runbookFor(t, theLab.SSH.KnownHostsFile, fmt.Sprintf(`  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target, tools: [sh, cat]}
  - name: prepare
    steps:
      - id: marker
        shell: target
        run: echo created > %[1]s && cat %[2]s
        undo: rm %[1]s
`, marker, theLab.Target.OptionFile))
	r := run(t, "", "run", "--plain", rb)
	if r.Code != 0 {
		t.Fatalf("run exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("shell step did not run on the target: %v", err)
	}
	for _, want := range []string{"preflight/ssh.reachable", "PASS", "marker", "done", "[REDACTED]"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("plain output lacks %q:\n%s", want, r.Stdout)
		}
	}
	// Every line is timestamped.
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if _, err := time.Parse(time.RFC3339, strings.Fields(l)[0]); err != nil {
			t.Errorf("line without timestamp: %q", l)
		}
	}
	secret := password(t, theLab.Target.OptionFile)

	r = run(t, "", "undo", "--yes", rb)
	if r.Code != 0 {
		t.Fatalf("undo exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("undo left the marker: %v", err)
	}
	for _, format := range []string{"md", "json"} {
		out := filepath.Join(work, "t."+format)
		r = run(t, "", "transcript", rb, "--format", format, "-o", out)
		if r.Code != 0 {
			t.Fatalf("transcript exit %d: %s", r.Code, r.Stderr)
		}
		b, _ := os.ReadFile(out)
		if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
			t.Errorf("transcript mode %v", fi.Mode())
		}
		s := string(b)
		if strings.Contains(s, secret) {
			t.Fatalf("%s transcript leaks the password", format)
		}
		for _, want := range []string{"marker", "undone", "ssh.reachable", "e2e migration"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s transcript lacks %q", format, want)
			}
		}
	}
	j, _ := os.ReadFile(rb + ".decant/journal.jsonl")
	if bytes.Contains(j, []byte(secret)) {
		t.Fatal("journal leaks the password")
	}
	if !bytes.Contains(j, []byte("[REDACTED]")) {
		t.Fatal("journal shows no redaction: the test does not test anything")
	}
	if fi, _ := os.Stat(rb + ".decant/journal.jsonl"); fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v", fi.Mode())
	}
}

// SIGKILL the real binary in the middle of an action, then resume: the
// finished step is not redone, the interrupted one is retried, and every
// record written before the kill is still there, in order.
func TestKillMidActionAndResume(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "counter")
	flag := filepath.Join(dir, "flag")
	rb, _ := runbookFor(t, theLab.SSH.KnownHostsFile, fmt.Sprintf(`  - name: move
    steps:
      - id: first
        shell: target
        run: echo x >> %[1]s
        undo: rm -f %[1]s
      - id: slow
        shell: target
        run: if [ -f %[2]s ]; then echo resumed; else touch %[2]s; echo begin; sleep 120; fi
        undo: rm -f %[2]s
      - id: last
        shell: source
        run: echo last
`, counter, flag))
	cmd := exec.Command(decant, "run", "--plain", rb)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(readFile(rb+".decant/journal.jsonl"), `"msg":"begin"`) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("action never started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := readFile(rb + ".decant/journal.jsonl")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	r := run(t, "", "run", "--plain", rb)
	if r.Code != 3 || !strings.Contains(r.Stderr+r.Stdout, "--on-interrupted") {
		t.Fatalf("resume without a choice: exit %d, want 3 and a hint\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "run", "--plain", "--on-interrupted=retry", rb)
	if r.Code != 0 {
		t.Fatalf("resume exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	after := readFile(rb + ".decant/journal.jsonl")
	if !strings.HasPrefix(after, before) {
		t.Fatal("journal lost or rewrote records written before the kill")
	}
	if got := readFile(counter); got != "x\n" {
		t.Fatalf("finished step ran again: counter = %q", got)
	}
	var types []string
	for _, ev := range journalLines(t, rb) {
		if ev["step"] == "slow" {
			types = append(types, ev["type"].(string))
		}
	}
	got := strings.Join(types, " ")
	// The first process: planned, started, checkpoint, log; the next two
	// sessions record the interruption and the retry.
	want := "step.planned step.started step.checkpoint step.log step.interrupted step.planned step.started step.checkpoint step.log step.finished"
	if got != want {
		t.Fatalf("slow step events:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(r.Stdout, "resumed") || !strings.Contains(r.Stdout, "last") {
		t.Fatalf("resume did not finish the run:\n%s", r.Stdout)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// A host key that differs from known_hosts stops the run with one clear
// line naming both fingerprints, and nothing runs on the target.
func TestHostKeyMismatch(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "known_hosts")
	// A syntactically valid line for the lab's host:port with another key.
	line := fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", theLab.SSH.Port)
	if err := os.WriteFile(other, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "marker")
	rb, _ := runbookFor(t, other, fmt.Sprintf(`  - name: prepare
    steps:
      - shell: target
        run: touch %s
`, marker))
	r := run(t, "", "run", "--plain", rb)
	if r.Code == 0 {
		t.Fatal("run succeeded against a mismatching host key")
	}
	all := r.Stdout + r.Stderr
	if !strings.Contains(all, "does not match known_hosts") || !strings.Contains(all, "SHA256:") {
		t.Fatalf("no clear host key message:\n%s", all)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the step ran despite the bad host key")
	}
	// The preflight check reports it as a failure with exit code 2.
	rb2, _ := runbookFor(t, other, "  - name: preflight\n    steps:\n      - check: ssh.reachable\n")
	r = run(t, "", "check", rb2)
	if r.Code != 2 || !strings.Contains(r.Stdout, "does not match known_hosts") {
		t.Fatalf("check exit %d:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestCheckExitCodesAndJSON(t *testing.T) {
	rb, _ := runbookFor(t, theLab.SSH.KnownHostsFile, `  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target, tools: [sh]}
      - id: tools
        check: ssh.reachable
        with: {host: target, tools: [no-such-tool-decant]}
`)
	r := run(t, "", "check", "--json", rb)
	if r.Code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var doc struct {
		Status string
		Checks []struct {
			ID       string
			Status   string
			Findings []struct{ Status, Message, Fix string }
		}
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.Stdout)
	}
	if doc.Status != "fail" || len(doc.Checks) != 2 || doc.Checks[0].Status != "pass" || doc.Checks[1].Status != "fail" {
		t.Fatalf("doc = %+v", doc)
	}
	if f := doc.Checks[1].Findings; !strings.Contains(f[len(f)-1].Message, "no-such-tool-decant") || f[len(f)-1].Fix == "" {
		t.Fatalf("findings = %+v", f)
	}
	r = run(t, "", "check", "--waive", "tools=installed at cut-over", rb)
	if r.Code != 1 {
		t.Fatalf("waived check: exit %d, want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = run(t, "", "transcript", rb)
	if !strings.Contains(r.Stdout, "installed at cut-over") {
		t.Fatalf("waiver reason not in transcript:\n%s", r.Stdout)
	}
}

func TestMalformedRunbookCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("name: x\nphases:\n  - name: p\n    steps:\n      - chek: ssh.reachable\n"), 0o600)
	r := run(t, "", "run", "--plain", path)
	if r.Code != 64 {
		t.Fatalf("exit %d, want 64", r.Code)
	}
	want := path + `:5:9: unknown field "chek"`
	if strings.TrimSpace(r.Stderr) != want {
		t.Fatalf("stderr = %q, want %q", r.Stderr, want)
	}
	if _, err := os.Stat(path + ".decant"); err == nil {
		t.Fatal("a malformed runbook created state")
	}
}

func TestUnreachableHost(t *testing.T) {
	rb, _ := runbookFor(t, theLab.SSH.KnownHostsFile, "  - name: p\n    steps:\n      - check: ssh.reachable\n")
	// Point the target at a closed loopback port.
	b, _ := os.ReadFile(rb)
	os.WriteFile(rb, bytes.Replace(b, []byte(theLab.SSH.Addr), []byte("127.0.0.1:1"), 1), 0o600)
	r := run(t, "", "check", rb)
	if r.Code != 2 || !strings.Contains(r.Stdout, "cannot reach target") {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// Confirmations come from stdin when there is someone to ask, from --yes
// otherwise; without either the run stops before the step.
func TestPlainConfirmations(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "confirmed")
	rb, _ := runbookFor(t, theLab.SSH.KnownHostsFile, fmt.Sprintf(`  - name: p
    steps:
      - id: risky
        shell: target
        run: touch %s
        confirm: true
`, marker))
	r := run(t, "", "run", "--plain", rb)
	if r.Code != 3 || !strings.Contains(r.Stdout, "pass --yes") {
		t.Fatalf("no tty, no --yes: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	cmd := exec.Command(decant, "run", "--plain", rb)
	cmd.Env = append(os.Environ(), "DECANT_ASSUME_TTY_IN=1")
	cmd.Stdin = strings.NewReader("n\n")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "Run risky") || !strings.Contains(string(out), "not confirmed") {
		t.Fatalf("refusal on stdin:\n%s", out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("step ran although refused")
	}
	cmd = exec.Command(decant, "run", "--plain", rb)
	cmd.Env = append(os.Environ(), "DECANT_ASSUME_TTY_IN=1")
	cmd.Stdin = strings.NewReader("y\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("confirmed run: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("confirmed step did not run")
	}
}

func run(t *testing.T, stdin string, args ...string) labtest.Result {
	t.Helper()
	return labtest.Run(t, decant, stdin, args...)
}

func password(t *testing.T, optionFile string) string { return labtest.Password(t, optionFile) }
