package checks

import (
	"strings"
	"testing"

	"github.com/decant-sh/decant/internal/schema"
	"github.com/decant-sh/decant/internal/steps"
)

// An old server (one trigger per table and event) with an AFTER INSERT
// trigger leaves no room for capture: a failure naming the table; a newer
// one passes with the same triggers.
func TestMySQLTriggerFindings(t *testing.T) {
	objs := []*schema.Object{
		{Kind: schema.KindTrigger, DB: "shop", Name: "orders_ai", Table: "orders", Timing: "AFTER", Event: "INSERT"},
		{Kind: schema.KindTrigger, DB: "shop", Name: "decant_cap_x", Table: "items", Timing: "AFTER", Event: "INSERT"},
	}
	old := &schema.Server{Flavor: schema.MariaDB, Version: "10.1.48-MariaDB", Major: 10, Minor: 1, Patch: 48}
	fs := mysqlTriggerFindings(old, objs)
	if steps.Worst(fs) != steps.Fail || len(fs) != 1 || fs[0].Subject != "shop.orders" || !strings.Contains(fs[0].Fix, "timestamp:") {
		t.Fatalf("old server: %+v", fs)
	}
	cur := &schema.Server{Flavor: schema.MariaDB, Version: "10.11.6-MariaDB", Major: 10, Minor: 11, Patch: 6}
	fs = mysqlTriggerFindings(cur, objs)
	if steps.Worst(fs) != steps.Pass || !strings.Contains(fs[0].Message, "1 existing trigger") {
		t.Fatalf("current server: %+v", fs)
	}
}
