package envfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := "# comment\n" +
		"APP_ENV=production\n" +
		"export APP_KEY=base64:abc==\n" +
		"DB_PASSWORD='s3cr#t'\n" +
		"GREETING=\"hello\\nworld \\\"x\\\"\"\n" +
		"EMPTY=\n" +
		"INLINE=value # trailing comment\n" +
		"MULTI=\"line1\nline2\"\n" +
		"APP_ENV=staging\n" +
		"  SPACED = yes\n"
	f, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"APP_ENV": "staging", "APP_KEY": "base64:abc==", "DB_PASSWORD": "s3cr#t",
		"GREETING": "hello\nworld \"x\"", "EMPTY": "", "INLINE": "value", "MULTI": "line1\nline2", "SPACED": "yes",
	}
	for k, v := range want {
		got, ok := f.Get(k)
		if !ok || got != v {
			t.Errorf("%s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if len(f.Keys()) != len(want) {
		t.Errorf("keys %v, want %d", f.Keys(), len(want))
	}
}

func TestParseErrorHidesText(t *testing.T) {
	_, err := Parse([]byte("OK=1\nthis-is-the-secret-line\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse([]byte("A=\"open\n")); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

func TestHasherStableAndPrivate(t *testing.T) {
	dir := t.TempDir()
	h1, err := NewHasher(dir)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewHasher(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Sum("x") != h2.Sum("x") || h1.Sum("x") == h1.Sum("y") {
		t.Fatal("hash not stable per state dir or not distinguishing")
	}
	st, err := os.Stat(filepath.Join(dir, HashKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	other, _ := NewHasher(t.TempDir())
	if other.Sum("x") == h1.Sum("x") {
		t.Fatal("different runbooks share hashes")
	}
	if h1.Sum("") != "(empty)" || !strings.HasPrefix(h1.Sum("v"), "h:") {
		t.Fatal("format")
	}
}

func TestCompareAndSecretish(t *testing.T) {
	a, _ := Parse([]byte("A=1\nB=2\nAPI_TOKEN=tok1\nURL=mysql://u:p@db/x\n"))
	b, _ := Parse([]byte("A=1\nB=3\nC=4\n"))
	d := Compare(a, b)
	if strings.Join(d.Missing, ",") != "API_TOKEN,URL" || strings.Join(d.Changed, ",") != "B" || strings.Join(d.Extra, ",") != "C" || strings.Join(d.Same, ",") != "A" {
		t.Fatalf("%+v", d)
	}
	s := strings.Join(Secretish(a), " ")
	if !strings.Contains(s, "tok1") || !strings.Contains(s, "mysql://u:p@db/x") || strings.Contains(s, " 2 ") {
		t.Fatalf("secretish %q", s)
	}
}

func TestParseEnv0(t *testing.T) {
	m := ParseEnv0([]byte("A=1\x00B=x=y\x00\x00"))
	if m["A"] != "1" || m["B"] != "x=y" || len(m) != 2 {
		t.Fatal(m)
	}
}
