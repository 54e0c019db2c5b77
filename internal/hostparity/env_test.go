package hostparity_test

import (
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/steps"
)

const envSecret = "sk_live_9f8e7d6c5b4a3210ffee"

func TestEnvParity(t *testing.T) {
	t.Setenv("DECANT_LAB_SOURCE_ONLY", "only-here-value")
	w := newWorld(t, "", `  - name: preflight
    steps:
      - id: env
        check: env.parity
        with:
          files: [/var/www/shop/.env]
          vars: [DECANT_LAB_NOWHERE, DECANT_LAB_SOURCE_ONLY]
          may_differ: [APP_URL]
`)
	write(t, w.old, "/var/www/shop/.env", "APP_ENV=production\nAPP_URL=https://shop.example.test\nSTRIPE_SECRET="+envSecret+"\nDB_PASSWORD='hunter2hunter2'\n", 0o640)
	fs := w.check("env")
	if steps.Worst(fs) != steps.Fail || !has(fs, steps.Fail, "missing on target", "4 keys") {
		t.Fatalf("missing file:\n%s", findings(fs))
	}
	if fs[0].FixAction != "env.copy" {
		t.Fatalf("fix action %q", fs[0].FixAction)
	}
	// A copy with one changed secret, one missing key and an expected difference.
	write(t, w.new, "/var/www/shop/.env", "APP_ENV=production\nAPP_URL=https://new.shop.example.test\nSTRIPE_SECRET=sk_live_other_value_000000\nEXTRA=1\n", 0o644)
	fs = w.check("env")
	if !has(fs, steps.Fail, "2 of 4 keys", "DB_PASSWORD missing", "STRIPE_SECRET differs (h:") || !has(fs, steps.Pass, "EXTRA") ||
		!has(fs, steps.Warn, "mode/owner 0640") {
		t.Fatalf("differences:\n%s", findings(fs))
	}
	for _, f := range fs {
		if strings.Contains(f.Message, "APP_URL") && f.Status == steps.Fail {
			t.Fatalf("may_differ key failed: %s", f.Message)
		}
	}
	write(t, w.new, "/var/www/shop/.env", read(t, w.old, "/var/www/shop/.env"), 0o640)
	fs = w.check("env")
	if !has(fs, steps.Pass, "all 4 keys") || has(fs, steps.Fail, ".env") {
		t.Fatalf("same file:\n%s", findings(fs))
	}
	if !has(fs, steps.Warn, "DECANT_LAB_NOWHERE", "neither") {
		t.Fatalf("unset var:\n%s", findings(fs))
	}
	if !has(fs, steps.Fail, "$DECANT_LAB_SOURCE_ONLY is set on source (h:", "not on target") {
		t.Fatalf("source-only var:\n%s", findings(fs))
	}
	// Values never reach the journal: neither the secret nor the others.
	j := w.journal()
	for _, v := range []string{envSecret, "hunter2hunter2", "sk_live_other_value", "only-here-value"} {
		if strings.Contains(j, v) {
			t.Fatalf("journal shows a value %q", v)
		}
	}
}
