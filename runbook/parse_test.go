package runbook_test

import (
	"errors"
	"strings"
	"testing"

	_ "github.com/decant-sh/decant/checks"
	"github.com/decant-sh/decant/runbook"
)

const goodHeader = `name: test
hosts:
  source: {address: local}
  target: {address: "ssh://deploy@127.0.0.1:2222"}
`

func TestParseGood(t *testing.T) {
	src := goodHeader + `mysql:
  source: {host: source, socket: /run/mysqld/mysqld.sock}
phases:
  - name: preflight
    steps:
      - check: ssh.reachable
        with: {host: target}
  - name: prepare
    steps:
      - id: marker
        shell: target
        run: touch /tmp/x
        undo: rm -f /tmp/x
      - shell: source
        run: echo hi
`
	rb, err := runbook.Parse("good.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, s := range rb.Steps() {
		ids = append(ids, s.ID)
	}
	if got := strings.Join(ids, ","); got != "preflight/ssh.reachable,marker,prepare/shell" {
		t.Fatalf("ids = %s", got)
	}
	if rb.Settings.FreezeBudget.Seconds() != 90 || rb.DNS.TTL != 300 {
		t.Fatalf("defaults not applied: %+v %+v", rb.Settings, rb.DNS)
	}
	if s := rb.Step("marker"); s.Line != 14 || s.Host != "target" || s.Undo != "rm -f /tmp/x" {
		t.Fatalf("marker step = %+v", s)
	}
}

// Each bad runbook must be refused before anything runs, with file:line and
// a one-line reason.
func TestParseBad(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"syntax", "name: x\nhosts: [\n", "bad.yaml:2:"},
		{"unknown top key", goodHeader + "phasez: []\n", `bad.yaml:5:1: unknown field "phasez"`},
		{"unknown step key", goodHeader + "phases:\n  - name: p\n    steps:\n      - check: ssh.reachable\n        colour: red\n", `bad.yaml:9:9: unknown field "colour"`},
		{"unknown kind", goodHeader + "phases:\n  - name: p\n    steps:\n      - check: ssh.reachabel\n", `bad.yaml:8:16: unknown check kind "ssh.reachabel" (did you mean "ssh.reachable"?)`},
		{"missing host", goodHeader + "phases:\n  - name: p\n    steps:\n      - shell: newbox\n        run: ls\n", `bad.yaml:8:16: shell step runs on host "newbox", which is not defined under hosts`},
		{"bad param", goodHeader + "phases:\n  - name: p\n    steps:\n      - check: ssh.reachable\n        with: {host: target, tols: [x]}\n", `bad.yaml:9:30: ssh.reachable: unknown field "tols"`},
		{"bad value type", goodHeader + "settings:\n  parallel: lots\nphases:\n  - name: p\n    steps:\n      - shell: source\n        run: ls\n", "bad.yaml:6:13:"},
		{"bad duration", goodHeader + "settings:\n  freeze_budget: soon\nphases:\n  - name: p\n    steps:\n      - shell: source\n        run: ls\n", "bad.yaml:6:18:"},
		{"bad address", "name: x\nhosts:\n  target: {address: \"ftp://x\"}\nphases:\n  - name: p\n    steps:\n      - shell: target\n        run: ls\n", `bad.yaml:3:21: hosts.target.address: scheme "ftp" not supported`},
		{"no phases", goodHeader, "bad.yaml:1:1: no phases"},
		{"two kinds", goodHeader + "phases:\n  - name: p\n    steps:\n      - check: ssh.reachable\n        shell: source\n", "bad.yaml:8:9: a step needs exactly one of check:, action: or shell:"},
		{"shell without run", goodHeader + "phases:\n  - name: p\n    steps:\n      - shell: source\n", "bad.yaml:8:9: shell step needs run:"},
		{"duplicate id", goodHeader + "phases:\n  - name: p\n    steps:\n      - {id: a, shell: source, run: ls}\n      - {id: a, shell: source, run: ls}\n", `bad.yaml:9:14: step id "a" is used twice`},
		{"check as action", goodHeader + "phases:\n  - name: p\n    steps:\n      - action: ssh.reachable\n", `bad.yaml:8:17: "ssh.reachable" is a check, not a action`},
		{"mysql host missing", goodHeader + "mysql:\n  source: {host: old, socket: /x}\nphases:\n  - name: p\n    steps:\n      - shell: source\n        run: ls\n", `bad.yaml:6:12: mysql.source: host "old" is not defined under hosts`},
		{"dns bad ip", goodHeader + "dns:\n  new_address: [not-an-ip]\nphases:\n  - name: p\n    steps:\n      - shell: source\n        run: ls\n", `is not an IP address`},
		{"empty", "", "bad.yaml: empty runbook"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runbook.Parse("bad.yaml", []byte(c.src))
			if err == nil {
				t.Fatal("parsed without error")
			}
			var probs runbook.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error is %T, want Problems: %v", err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error = %q\nwant it to contain %q", msg, c.want)
			}
			for _, p := range probs {
				if strings.Contains(p.Error(), "\n") {
					t.Fatalf("problem spans lines: %q", p.Error())
				}
			}
		})
	}
}

func TestTemplatesParse(t *testing.T) {
	for _, name := range runbook.Templates() {
		b, err := runbook.Template(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := runbook.Parse(name+".yaml", b); err != nil {
			t.Errorf("template %s: %v", name, err)
		}
	}
	if _, err := runbook.Template("nope"); err == nil || !strings.Contains(err.Error(), "lamp") {
		t.Fatalf("unknown template error = %v", err)
	}
}
