package mysqlcompat

import "strings"

// Reserved words: an identifier spelled like one must be quoted with
// backticks. The lists below come from the MySQL and MariaDB manuals
// ("Keywords and Reserved Words"); the MariaDB 10.11 set is verified
// against the real server's parser by the package tests. For a live
// target decant asks the target's parser instead (see ProbeReserved).

// mysql55Reserved is the set MySQL 5.5 and MariaDB share.
const mysql55Reserved = `ACCESSIBLE ADD ALL ALTER ANALYZE AND AS ASC ASENSITIVE BEFORE BETWEEN BIGINT
BINARY BLOB BOTH BY CALL CASCADE CASE CHANGE CHAR CHARACTER CHECK COLLATE COLUMN CONDITION CONSTRAINT
CONTINUE CONVERT CREATE CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE
DATABASES DAY_HOUR DAY_MICROSECOND DAY_MINUTE DAY_SECOND DEC DECIMAL DECLARE DEFAULT DELAYED DELETE DESC
DESCRIBE DETERMINISTIC DISTINCT DISTINCTROW DIV DOUBLE DROP DUAL EACH ELSE ELSEIF ENCLOSED ESCAPED EXISTS
EXIT EXPLAIN FALSE FETCH FLOAT FLOAT4 FLOAT8 FOR FORCE FOREIGN FROM FULLTEXT GRANT GROUP HAVING
HIGH_PRIORITY HOUR_MICROSECOND HOUR_MINUTE HOUR_SECOND IF IGNORE IN INDEX INFILE INNER INOUT INSENSITIVE
INSERT INT INT1 INT2 INT3 INT4 INT8 INTEGER INTERVAL INTO IS ITERATE JOIN KEY KEYS KILL LEADING LEAVE LEFT
LIKE LIMIT LINEAR LINES LOAD LOCALTIME LOCALTIMESTAMP LOCK LONG LONGBLOB LONGTEXT LOOP LOW_PRIORITY
MASTER_SSL_VERIFY_SERVER_CERT MATCH MAXVALUE MEDIUMBLOB MEDIUMINT MEDIUMTEXT MIDDLEINT MINUTE_MICROSECOND
MINUTE_SECOND MOD MODIFIES NATURAL NOT NO_WRITE_TO_BINLOG NULL NUMERIC ON OPTIMIZE OPTION OPTIONALLY OR
ORDER OUT OUTER OUTFILE PRECISION PRIMARY PROCEDURE PURGE RANGE READ READS READ_WRITE REAL REFERENCES
REGEXP RELEASE RENAME REPEAT REPLACE REQUIRE RESIGNAL RESTRICT RETURN REVOKE RIGHT RLIKE SCHEMA SCHEMAS
SECOND_MICROSECOND SELECT SENSITIVE SEPARATOR SET SHOW SIGNAL SMALLINT SPATIAL SPECIFIC SQL SQLEXCEPTION
SQLSTATE SQLWARNING SQL_BIG_RESULT SQL_CALC_FOUND_ROWS SQL_SMALL_RESULT SSL STARTING STRAIGHT_JOIN TABLE
TERMINATED THEN TINYBLOB TINYINT TINYTEXT TO TRAILING TRIGGER TRUE UNDO UNION UNIQUE UNLOCK UNSIGNED
UPDATE USAGE USE USING UTC_DATE UTC_TIME UTC_TIMESTAMP VALUES VARBINARY VARCHAR VARCHARACTER VARYING WHEN
WHERE WHILE WITH WRITE XOR YEAR_MONTH ZEROFILL`

// wordDelta is a set of words that became reserved (add) or stopped being
// reserved (drop) in a release.
type wordDelta struct {
	f                   Flavor
	major, minor, patch int
	add, drop           string
}

var wordDeltas = []wordDelta{
	{MySQL, 5, 6, 0, "GET IO_AFTER_GTIDS IO_BEFORE_GTIDS MASTER_BIND PARTITION ONE_SHOT", ""},
	{MySQL, 5, 7, 0, "GENERATED OPTIMIZER_COSTS STORED VIRTUAL", "ONE_SHOT"},
	{MySQL, 8, 0, 11, `ADMIN CUBE CUME_DIST DENSE_RANK EMPTY EXCEPT FIRST_VALUE FUNCTION GROUPING GROUPS
		JSON_TABLE LAG LAST_VALUE LEAD NTH_VALUE NTILE OF OVER PERCENT_RANK PERSIST PERSIST_ONLY RANK
		RECURSIVE ROW ROWS ROW_NUMBER SYSTEM WINDOW`, ""},
	{MySQL, 8, 0, 12, "", "ADMIN"},
	{MySQL, 8, 0, 14, "LATERAL", ""},
	{MySQL, 8, 0, 17, "ARRAY MEMBER", ""},
	{MySQL, 8, 0, 19, "", "ARRAY"},
	{MySQL, 8, 0, 31, "FULL INTERSECT", ""},
	{MySQL, 8, 4, 0, "MANUAL PARALLEL QUALIFY TABLESAMPLE", ""},
	{MySQL, 9, 4, 0, "EXTERNAL LIBRARY", ""},
	// MariaDB accepts DATABASE and SCHEMA unquoted as names.
	{MariaDB, 5, 5, 0, "PARTITION PAGE_CHECKSUM PARSE_VCOL_EXPR", "DATABASE SCHEMA"},
	{MariaDB, 10, 0, 5, "CURRENT_ROLE DELETE_DOMAIN_ID DO_DOMAIN_IDS IGNORE_DOMAIN_IDS REF_SYSTEM_ID RETURNING STATS_AUTO_RECALC STATS_PERSISTENT STATS_SAMPLE_PAGES", ""},
	{MariaDB, 10, 2, 0, "OVER RECURSIVE ROWS ROW_NUMBER", ""},
	{MariaDB, 10, 3, 0, "EXCEPT INTERSECT", ""},
	{MariaDB, 10, 6, 0, "OFFSET", ""},
	// Verified against the 10.11 parser; the release that relaxed it is unknown.
	{MariaDB, 10, 11, 0, "", "OPTION"},
}

// ReservedWords returns the reserved words of version v, upper case.
func ReservedWords(v Version) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Fields(mysql55Reserved) {
		set[w] = true
	}
	for _, d := range wordDeltas {
		if d.f != v.Flavor || !v.AtLeast(d.major, d.minor, d.patch) {
			continue
		}
		for _, w := range strings.Fields(d.add) {
			set[w] = true
		}
		for _, w := range strings.Fields(d.drop) {
			delete(set, w)
		}
	}
	return set
}

// knownReserved is every word reserved in some version of either flavour:
// the candidates worth asking a live server's parser about.
var knownReserved = func() map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.Fields(mysql55Reserved) {
		set[w] = true
	}
	for _, d := range wordDeltas {
		for _, w := range strings.Fields(d.add) {
			set[w] = true
		}
	}
	return set
}()

// MaybeReserved reports whether word is reserved in any known version, so
// it is worth checking against a particular server.
func MaybeReserved(word string) bool { return knownReserved[strings.ToUpper(word)] }
