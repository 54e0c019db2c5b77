package webprobe_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/decant-sh/decant/internal/weblab"
	"github.com/decant-sh/decant/internal/webprobe"
)

func startLab(t *testing.T) *weblab.Lab {
	t.Helper()
	dir := t.TempDir()
	oldRoot, newRoot := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	for _, r := range []string{oldRoot, newRoot} {
		if err := os.MkdirAll(filepath.Join(r, "var/www/shop"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	page := "<html><head><title>Shop &amp; Co</title></head><body>hello</body></html>"
	os.WriteFile(filepath.Join(oldRoot, "var/www/shop/index.html"), []byte(page), 0o644)
	os.WriteFile(filepath.Join(newRoot, "var/www/shop/index.html"), []byte(page), 0o644)
	os.WriteFile(filepath.Join(oldRoot, "var/www/shop/about.html"), []byte("<title>About</title>"), 0o644)
	l, err := weblab.Start(weblab.Options{Dir: dir, Vhosts: map[string]string{"shop.example.test": "/var/www/shop", "www.shop.example.test": "/var/www/shop"},
		OldRoot: oldRoot, NewRoot: newRoot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestFetchAndCompare(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	old := webprobe.Endpoint{HTTP: l.Old.HTTPAddr, HTTPS: l.Old.HTTPSAddr}
	nw := webprobe.Endpoint{HTTP: l.New.HTTPAddr, HTTPS: l.New.HTTPSAddr}
	base := webprobe.Request{Roots: l.CA.Pool(), Timeout: 5 * time.Second}

	v := webprobe.Pair(ctx, "https://shop.example.test/", old, nw, base, true)
	if v.Level != "pass" || v.New.Status != 200 || v.New.Title != "Shop & Co" || v.New.BodyHash != v.Old.BodyHash {
		t.Fatalf("same site: %+v", v)
	}
	// A page only the old server has: 404 on the new one fails.
	v = webprobe.Pair(ctx, "http://shop.example.test/about.html", old, nw, base, false)
	if v.Level != "fail" || v.New.Status != 404 || !strings.Contains(v.Why, "404") {
		t.Fatalf("missing page: %+v", v)
	}
	// A redirect the new server lacks.
	l.Old.Redirect("www.shop.example.test", "/", "https://shop.example.test/", http.StatusMovedPermanently)
	v = webprobe.Pair(ctx, "https://www.shop.example.test/", old, nw, base, false)
	if v.Level != "fail" || v.Old.Location != "https://shop.example.test/" || v.Diffs[0].Field != "status" {
		t.Fatalf("redirect: %+v", v)
	}
	// Unknown CA: no answer from the new side is a failure with the reason.
	r := webprobe.Fetch(ctx, webprobe.Request{URL: "https://shop.example.test/", Addr: l.New.HTTPSAddr, Timeout: 5 * time.Second})
	if r.Err == "" || !strings.Contains(r.Err, "certificate") {
		t.Fatalf("untrusted cert accepted: %+v", r)
	}
}

func TestHandshake(t *testing.T) {
	l := startLab(t)
	ctx := context.Background()
	now := time.Now()
	c, err := webprobe.Handshake(ctx, l.New.HTTPSAddr, "shop.example.test", l.CA.Pool(), nil, now)
	if err != nil || c.ChainErr != "" || c.NameErr != "" || c.DaysLeft(now) < 88 {
		t.Fatalf("good cert: %+v %v", c, err)
	}
	c, _ = webprobe.Handshake(ctx, l.New.HTTPSAddr, "other.example.test", l.CA.Pool(), nil, now)
	if c.NameErr == "" || c.ChainErr != "" {
		t.Fatalf("wrong name: %+v", c)
	}
	c, _ = webprobe.Handshake(ctx, l.New.HTTPSAddr, "shop.example.test", nil, nil, now)
	if c.ChainErr == "" {
		t.Fatalf("unknown CA: %+v", c)
	}
	cert, _ := l.CA.Issue([]string{"shop.example.test"}, now.Add(-48*time.Hour), now.Add(-time.Hour))
	l.New.SetCert(cert)
	c, _ = webprobe.Handshake(ctx, l.New.HTTPSAddr, "shop.example.test", l.CA.Pool(), nil, now)
	if c.ChainErr == "" || c.DaysLeft(now) >= 0 {
		t.Fatalf("expired: %+v", c)
	}
}

func TestEndpointYAML(t *testing.T) {
	var p struct {
		A webprobe.Endpoint `yaml:"a"`
		B webprobe.Endpoint `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 203.0.113.7\nb: {https: '127.0.0.1:8443'}\n"), &p); err != nil {
		t.Fatal(err)
	}
	if p.A.HTTP != "203.0.113.7:80" || p.A.HTTPS != "203.0.113.7:443" || p.B.HTTPS != "127.0.0.1:8443" || p.B.HTTP != "" {
		t.Fatalf("%+v", p)
	}
	if webprobe.EndpointAt("2001:db8::1").HTTPS != "[2001:db8::1]:443" {
		t.Fatal("v6")
	}
}
