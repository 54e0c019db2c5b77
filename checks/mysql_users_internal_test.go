package checks

import (
	"net"
	"testing"
)

func TestMySQLPreHostMatch(t *testing.T) {
	own := []net.IP{net.ParseIP("203.0.113.7"), net.ParseIP("10.1.2.3")}
	for pattern, want := range map[string]string{
		"203.0.113.7":               "203.0.113.7",
		"203.0.113.%":               "203.0.113.7",
		"10.1.2._":                  "10.1.2.3",
		"10.0.0.0/255.0.0.0":        "10.1.2.3",
		"192.168.%":                 "",
		"10.1.2.30":                 "",
		"203.0.113.0/255.255.255.0": "203.0.113.7",
	} {
		if got := mysqlPreHostMatch(pattern, own); got != want {
			t.Errorf("mysqlPreHostMatch(%q) = %q, want %q", pattern, got, want)
		}
	}
	for in, want := range map[string]int64{"512": 512, "10K": 10 << 10, "1.5G": 3 << 29, "2TiB": 2 << 40, "1P": 1 << 50, "": 0} {
		if got, err := mysqlPreParseSize(in); err != nil || got != want {
			t.Errorf("mysqlPreParseSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := mysqlPreParseSize("lots"); err == nil {
		t.Error("lots parsed")
	}
	if mysqlPreBytes(1536) != "1.5 KiB" || mysqlPreBytes(10) != "10 B" {
		t.Error("bytes")
	}
}
