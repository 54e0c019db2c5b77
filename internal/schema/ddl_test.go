package schema

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

func server(flavor Flavor, major, minor int, colls ...string) *Server {
	s := &Server{Flavor: flavor, Major: major, Minor: minor, Collations: map[string]string{}, DefaultCollation: map[string]string{},
		Engines: map[string]bool{"innodb": true, "memory": true, "myisam": true}}
	for _, c := range colls {
		cs, _, _ := strings.Cut(c, "_")
		s.Collations[c] = cs
		if s.DefaultCollation[cs] == "" {
			s.DefaultCollation[cs] = c
		}
	}
	return s
}

func TestMapMySQL8TableIntoMariaDB(t *testing.T) {
	src := server(MySQL, 8, 0, "utf8mb4_0900_ai_ci", "utf8mb4_bin", "utf8mb4_general_ci", "latin1_swedish_ci")
	dst := server(MariaDB, 10, 6, "utf8mb4_general_ci", "utf8mb4_unicode_520_ci", "utf8mb4_unicode_ci", "utf8mb4_bin", "latin1_swedish_ci")
	m := NewMapper(src, dst)
	ddl := "CREATE TABLE `utf8mb4_0900_ai_ci` (\n" +
		"  `id` int NOT NULL,\n" +
		"  `name` varchar(20) COLLATE utf8mb4_0900_ai_ci DEFAULT 'utf8mb4_0900_ai_ci',\n" +
		"  `hidden` int DEFAULT NULL /*!80023 INVISIBLE */,\n" +
		"  `g` point NOT NULL /*!80003 SRID 4326 */,\n" +
		"  PRIMARY KEY (`id`)\n" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci /*!80016 DEFAULT ENCRYPTION='N' */"
	out, ds := m.DDL("shop.t", ddl)
	if strings.Contains(out, "COLLATE utf8mb4_0900_ai_ci") || strings.Contains(out, "COLLATE=utf8mb4_0900_ai_ci") {
		t.Errorf("collation not mapped:\n%s", out)
	}
	if !strings.Contains(out, "COLLATE=utf8mb4_unicode_520_ci") {
		t.Errorf("want utf8mb4_unicode_520_ci:\n%s", out)
	}
	// Identifiers and string values are left alone.
	if !strings.HasPrefix(out, "CREATE TABLE `utf8mb4_0900_ai_ci`") || !strings.Contains(out, "DEFAULT 'utf8mb4_0900_ai_ci'") {
		t.Errorf("rewrote an identifier or a string:\n%s", out)
	}
	if strings.Contains(out, "ENCRYPTION") || strings.Contains(out, "SRID") || !strings.Contains(out, "DEFAULT NULL INVISIBLE") {
		t.Errorf("versioned comments not handled:\n%s", out)
	}
	var msgs []string
	for _, d := range ds {
		msgs = append(msgs, d.String())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"utf8mb4_0900_ai_ci → utf8mb4_unicode_520_ci", "ENCRYPTION", "SRID"} {
		if !strings.Contains(all, want) {
			t.Errorf("decisions lack %q:\n%s", want, all)
		}
	}
}

func TestMapMariaDBIntoMySQL8(t *testing.T) {
	src := server(MariaDB, 10, 11, "utf8mb4_uca1400_ai_ci", "utf8mb4_nopad_bin", "utf8mb3_general_ci")
	dst := server(MySQL, 8, 0, "utf8mb4_0900_ai_ci", "utf8mb4_0900_bin", "utf8mb4_bin", "utf8mb3_general_ci")
	dst.Engines = map[string]bool{"innodb": true}
	m := NewMapper(src, dst)
	ddl := "CREATE TABLE `t` (\n  `id` uuid NOT NULL,\n  `ip` inet6 DEFAULT NULL,\n  `s` text COLLATE utf8mb4_nopad_bin,\n" +
		"  PRIMARY KEY (`id`)\n) ENGINE=Aria DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci PAGE_CHECKSUM=1 TRANSACTIONAL=1"
	out, _ := m.DDL("x.t", ddl)
	for _, want := range []string{"`id` char(36) NOT NULL", "`ip` varchar(39)", "COLLATE utf8mb4_0900_bin", "ENGINE=InnoDB", "COLLATE=utf8mb4_0900_ai_ci"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PAGE_CHECKSUM") || strings.Contains(out, "TRANSACTIONAL") {
		t.Errorf("Aria options kept:\n%s", out)
	}
	mode, dropped := m.SQLMode("STRICT_TRANS_TABLES,NO_AUTO_CREATE_USER,SIMULTANEOUS_ASSIGNMENT")
	if mode != "STRICT_TRANS_TABLES" || strings.Join(dropped, ",") != "NO_AUTO_CREATE_USER,SIMULTANEOUS_ASSIGNMENT" {
		t.Errorf("SQLMode = %q, %v", mode, dropped)
	}
}

func TestMapUtf8mb3IntoOldServer(t *testing.T) {
	src := server(MariaDB, 10, 6, "utf8mb3_general_ci")
	dst := server(MySQL, 5, 7, "utf8_general_ci", "utf8_unicode_ci")
	m := NewMapper(src, dst)
	out, _ := m.DDL("x.t", "CREATE TABLE `t` (`a` varchar(3) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci) DEFAULT CHARSET=utf8mb3")
	if want := "CREATE TABLE `t` (`a` varchar(3) CHARACTER SET utf8 COLLATE utf8_general_ci) DEFAULT CHARSET=utf8"; out != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

func TestDisableEvent(t *testing.T) {
	in := "CREATE DEFINER=`root`@`localhost` EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS '2024-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE COMMENT 'x' DO DELETE FROM t"
	out, ok := DisableEvent(in)
	if !ok || !strings.Contains(out, "NOT PRESERVE DISABLE COMMENT 'x' DO DELETE") {
		t.Fatalf("DisableEvent = %q, %v", out, ok)
	}
}

func TestSortViews(t *testing.T) {
	a := &Object{Kind: KindView, DB: "d", Name: "a", Create: "CREATE VIEW `a` AS select `d`.`b`.`x` AS `x` from `d`.`b`"}
	b := &Object{Kind: KindView, DB: "d", Name: "b", Create: "CREATE VIEW `b` AS select `d`.`c`.`x` AS `x` from `d`.`c`"}
	c := &Object{Kind: KindView, DB: "d", Name: "c", Create: "CREATE VIEW `c` AS select 1 AS `x` from `d`.`t`"}
	got := SortViews([]*Object{a, b, c})
	if got[0] != c || got[1] != b || got[2] != a {
		t.Fatalf("order: %s %s %s", got[0].Name, got[1].Name, got[2].Name)
	}
}

func TestTupleJSON(t *testing.T) {
	in := []Range{{Lo: nil, Hi: Tuple{"10", "a\x00\xff"}}, {Lo: Tuple{"é"}, Hi: nil}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `{"hex":"6100ff"}`) {
		t.Fatalf("binary value not hex: %s", b)
	}
	var out []Range
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out[0].Hi.Equal(in[0].Hi) || out[0].Lo != nil || !out[1].Lo.Equal(in[1].Lo) || out[1].Hi != nil {
		t.Fatalf("round trip: %+v", out)
	}
}

func TestKeyWhere(t *testing.T) {
	k := Key{Cols: []Column{{Name: "a", DataType: "int"}, {Name: "b", DataType: "varbinary", Charset: "binary"}}}
	w, args := k.Where(Range{Lo: Tuple{"1", "x"}, Hi: Tuple{"5", "y"}})
	want := "((`a` > ?) OR (`a` = ? AND `b` > ?)) AND ((`a` < ?) OR (`a` = ? AND `b` <= ?))"
	if w != want {
		t.Fatalf("where:\n got %s\nwant %s", w, want)
	}
	if len(args) != 6 || args[0] != int64(1) || string(args[2].([]byte)) != "x" {
		t.Fatalf("args %#v", args)
	}
	if w, _ := k.Where(Range{}); w != "1=1" {
		t.Fatalf("all: %s", w)
	}
	in, args := k.In([]Tuple{{"1", "x"}, {"2", "y"}})
	if in != "((`a` = ? AND `b` = ?) OR (`a` = ? AND `b` = ?))" || len(args) != 4 {
		t.Fatalf("in: %s %v", in, args)
	}
}

// Chunks finished out of order merge into ranges; a resumed tracker hands
// out exactly the gaps, and finishing them completes the table.
func TestTracker(t *testing.T) {
	tr := NewTracker(nil)
	gaps := tr.Gaps()
	if len(gaps) != 1 || !gaps[0].All() {
		t.Fatalf("fresh gaps %v", gaps)
	}
	c := []Range{{nil, Tuple{"10"}}, {Tuple{"10"}, Tuple{"20"}}, {Tuple{"20"}, Tuple{"30"}}, {Tuple{"30"}, Tuple{"40"}}, {Tuple{"40"}, nil}}
	tr.Finish(0, 1, c[1])
	tr.Finish(0, 3, c[3])
	tr.Finish(0, 0, c[0])
	done := tr.Done()
	if len(done) != 2 || done[0].Lo != nil || !done[0].Hi.Equal(Tuple{"20"}) || !done[1].Lo.Equal(Tuple{"30"}) || !done[1].Hi.Equal(Tuple{"40"}) {
		t.Fatalf("done %v", done)
	}
	// Resume from the journal's ranges.
	b, _ := json.Marshal(done)
	var back []Range
	json.Unmarshal(b, &back)
	tr2 := NewTracker(back)
	gaps = tr2.Gaps()
	if len(gaps) != 2 || !gaps[0].Lo.Equal(Tuple{"20"}) || !gaps[0].Hi.Equal(Tuple{"30"}) || !gaps[1].Lo.Equal(Tuple{"40"}) || gaps[1].Hi != nil {
		t.Fatalf("resumed gaps %v", gaps)
	}
	tr2.Finish(1, 0, Range{Tuple{"40"}, Tuple{"45"}})
	tr2.Finish(1, 1, Range{Tuple{"45"}, nil})
	if tr2.Complete() {
		t.Fatal("complete with a gap left")
	}
	tr2.Finish(0, 0, gaps[0])
	if !tr2.Complete() {
		t.Fatalf("not complete: %v", tr2.Done())
	}
	// A tracker that starts with a gap before the first done range.
	tr3 := NewTracker([]Range{{Tuple{"5"}, Tuple{"9"}}})
	g := tr3.Gaps()
	if len(g) != 2 || g[0].Lo != nil || !g[0].Hi.Equal(Tuple{"5"}) || !g[1].Lo.Equal(Tuple{"9"}) {
		t.Fatalf("gaps %v", g)
	}
	tr3.Finish(1, 0, g[1])
	tr3.Finish(0, 0, g[0])
	if !tr3.Complete() {
		t.Fatalf("not complete: %v", tr3.Done())
	}
}

func TestIntSteps(t *testing.T) {
	s := &intSteps{}
	s.min, s.max, s.step = bigInt("1"), bigInt("100"), bigInt("30")
	var cur Tuple
	var got []string
	for i := 0; i < 10; i++ {
		hi, err := s.Next(context.Background(), cur, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, hi.String())
		if hi == nil {
			break
		}
		cur = hi
	}
	if strings.Join(got, " ") != "30 60 90 ∞" {
		t.Fatalf("steps %v", got)
	}
	// A gap end caps the chunk.
	hi, _ := s.Next(context.Background(), Tuple{"30"}, Tuple{"45"})
	if !hi.Equal(Tuple{"45"}) {
		t.Fatalf("capped: %v", hi)
	}
}

func bigInt(s string) *big.Int {
	b, _ := new(big.Int).SetString(s, 10)
	return b
}

// An old server allows one trigger per table, timing and event: existing
// triggers in the capture slots are findings; newer servers have none.
func TestCaptureConflicts(t *testing.T) {
	objs := []*Object{
		{Kind: KindTrigger, DB: "shop", Name: "audit_ins", Table: "orders", Timing: "AFTER", Event: "INSERT"},
		{Kind: KindTrigger, DB: "shop", Name: "check_ins", Table: "orders", Timing: "BEFORE", Event: "INSERT"},
		{Kind: KindTrigger, DB: "shop", Name: "decant_cap_x_d", Table: "orders", Timing: "BEFORE", Event: "DELETE"},
	}
	old := &Server{Flavor: MySQL, Major: 5, Minor: 6, Patch: 40}
	ds := CaptureConflicts(old, objs, "decant_cap_")
	if len(ds) != 1 || ds[0].Object != "shop.orders" || !strings.Contains(ds[0].Message, "audit_ins") || !ds[0].Problem {
		t.Fatalf("MySQL 5.6: %+v", ds)
	}
	for _, s := range []*Server{{Flavor: MySQL, Major: 5, Minor: 7, Patch: 2}, {Flavor: MariaDB, Major: 10, Minor: 2, Patch: 3}} {
		if ds := CaptureConflicts(s, objs, "decant_cap_"); len(ds) != 0 {
			t.Fatalf("%s: %+v", s, ds)
		}
	}
	if ds := CaptureConflicts(&Server{Flavor: MariaDB, Major: 10, Minor: 1}, objs, ""); len(ds) != 2 {
		t.Fatalf("MariaDB 10.1 without skip: %+v", ds)
	}
}

func TestSplitSecondaryKeys(t *testing.T) {
	in := "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  `s` varchar(9),\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`s`),\n" +
		"  KEY `k_1` (`k`),\n  KEY `we``ird` (`s`(4)) COMMENT 'x',\n  FULLTEXT KEY `f` (`s`)\n) ENGINE=InnoDB"
	out, adds := SplitSecondaryKeys(in)
	want := "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  `s` varchar(9),\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`s`),\n  FULLTEXT KEY `f` (`s`)\n) ENGINE=InnoDB"
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if len(adds) != 2 || adds[0] != "ADD KEY `k_1` (`k`)" || adds[1] != "ADD KEY `we``ird` (`s`(4)) COMMENT 'x'" {
		t.Fatalf("adds %q", adds)
	}
	if IndexName(adds[1]) != "we`ird" {
		t.Fatalf("name %q", IndexName(adds[1]))
	}
	// The last line before ")" loses its comma.
	out, _ = SplitSecondaryKeys("CREATE TABLE `t` (\n  `id` int,\n  PRIMARY KEY (`id`),\n  KEY `k` (`id`)\n) ENGINE=InnoDB")
	if out != "CREATE TABLE `t` (\n  `id` int,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB" {
		t.Fatalf("got %s", out)
	}
}
