package discover

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Links inside a tree resolve inside it, whether absolute or climbing
// above its root with "..": a fixture never reads the machine's /etc.
func TestRootFSLinksStayInside(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "etc/app/enabled"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/app/real.conf"), []byte("inside"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("tree-host"), 0o644))
	must(os.Symlink("/etc/app/real.conf", filepath.Join(root, "etc/app/enabled/abs.conf")))
	must(os.Symlink("../../../../../../etc/hostname", filepath.Join(root, "etc/app/enabled/climb.conf")))
	must(os.Symlink("/etc/app", filepath.Join(root, "etc/applink")))
	fsys := newRootFS(root)
	for name, want := range map[string]string{
		"/etc/app/enabled/abs.conf":   "inside",
		"/etc/app/enabled/climb.conf": "tree-host",
		"/etc/applink/real.conf":      "inside",
	} {
		b, err := fsys.ReadFile(name)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	got, err := fsys.Glob("/etc/applink/enabled/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/applink/enabled/abs.conf", "/etc/applink/enabled/climb.conf"}; !reflect.DeepEqual(got, want) {
		t.Errorf("glob %v, want %v", got, want)
	}
	if _, err := fsys.ReadFile("/etc/missing"); err == nil || err.Error() != "open /etc/missing: no such file or directory" {
		t.Errorf("missing file error %v: want the tree path", err)
	}
}
