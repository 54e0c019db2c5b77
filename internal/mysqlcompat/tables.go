package mysqlcompat

import "strings"

// Support says whether a server offers a plugin, engine or feature.
type Support int

// Support levels. Loadable means the server ships it but it must be
// installed or enabled first (INSTALL SONAME, a server option).
const (
	Unsupported Support = iota
	Loadable
	Available
)

// sqlModes lists the sql_mode values version v accepts.
func sqlModes(v Version) map[string]bool {
	set := map[string]bool{}
	add := func(s string) {
		for _, m := range strings.Fields(s) {
			set[m] = true
		}
	}
	add(`REAL_AS_FLOAT PIPES_AS_CONCAT ANSI_QUOTES IGNORE_SPACE ONLY_FULL_GROUP_BY NO_UNSIGNED_SUBTRACTION
		NO_DIR_IN_CREATE ANSI NO_AUTO_VALUE_ON_ZERO NO_BACKSLASH_ESCAPES STRICT_TRANS_TABLES STRICT_ALL_TABLES
		NO_ZERO_IN_DATE NO_ZERO_DATE ALLOW_INVALID_DATES ERROR_FOR_DIVISION_BY_ZERO TRADITIONAL
		HIGH_NOT_PRECEDENCE NO_ENGINE_SUBSTITUTION PAD_CHAR_TO_FULL_LENGTH`)
	if v.Flavor == MariaDB || !v.AtLeast(8, 0, 0) {
		add(`POSTGRESQL ORACLE MSSQL DB2 MAXDB NO_KEY_OPTIONS NO_TABLE_OPTIONS NO_FIELD_OPTIONS MYSQL323
			MYSQL40 NO_AUTO_CREATE_USER`)
	}
	switch {
	case v.Flavor == MySQL && v.AtLeast(8, 0, 0):
		add("TIME_TRUNCATE_FRACTIONAL")
	case v.Flavor == MariaDB:
		add("IGNORE_BAD_TABLE_OPTIONS")
		if v.AtLeast(10, 3, 0) {
			add("EMPTY_STRING_IS_NULL SIMULTANEOUS_ASSIGNMENT")
		}
		if v.AtLeast(10, 4, 0) {
			add("TIME_ROUND_FRACTIONAL")
		}
	}
	return set
}

// defaultSQLMode is the global sql_mode of a fresh install of v.
func defaultSQLMode(v Version) string {
	switch {
	case v.Is(MySQL, 8, 0, 0):
		return "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
	case v.Is(MySQL, 5, 7, 5):
		return "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
	case v.Is(MySQL, 5, 6, 6):
		return "NO_ENGINE_SUBSTITUTION"
	case v.Is(MariaDB, 10, 2, 4):
		return "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
	case v.Is(MariaDB, 10, 1, 7):
		return "NO_ENGINE_SUBSTITUTION,NO_AUTO_CREATE_USER"
	}
	return ""
}

// authPlugins lists the server-side authentication plugins of v.
func authPlugins(v Version) map[string]Support {
	p := map[string]Support{}
	if v.Flavor == MariaDB {
		p["mysql_native_password"] = Available
		p["mysql_old_password"] = Available
		p["unix_socket"] = Loadable
		if v.AtLeast(10, 4, 0) {
			p["unix_socket"] = Available
		}
		p["pam"] = Loadable
		if v.AtLeast(10, 1, 22) {
			p["ed25519"] = Loadable
		}
		if v.AtLeast(10, 1, 11) {
			p["gssapi"] = Loadable
		}
		if v.AtLeast(11, 6, 0) {
			p["parsec"] = Loadable
		}
		return p
	}
	p["mysql_native_password"] = Available
	switch {
	case v.AtLeast(9, 0, 0):
		delete(p, "mysql_native_password")
	case v.AtLeast(8, 4, 0):
		// Shipped but off unless mysql_native_password=ON is set.
		p["mysql_native_password"] = Loadable
	}
	if !v.AtLeast(5, 7, 5) {
		p["mysql_old_password"] = Available
	}
	if v.AtLeast(5, 6, 6) && !v.AtLeast(9, 0, 0) {
		p["sha256_password"] = Available
	}
	if v.AtLeast(8, 0, 3) {
		p["caching_sha2_password"] = Available
	}
	if v.AtLeast(5, 5, 10) {
		p["auth_socket"] = Loadable
	}
	if v.Percona() {
		p["auth_pam"] = Loadable
		p["auth_pam_compat"] = Loadable
	}
	// MySQL Enterprise plugins.
	for _, n := range []string{"authentication_pam", "authentication_ldap_simple", "authentication_ldap_sasl", "authentication_windows"} {
		p[n] = Loadable
	}
	if v.AtLeast(8, 0, 26) {
		p["authentication_kerberos"] = Loadable
	}
	if v.AtLeast(8, 0, 27) && !v.AtLeast(8, 4, 0) {
		p["authentication_fido"] = Loadable
	}
	if v.AtLeast(8, 2, 0) {
		p["authentication_webauthn"] = Loadable
	}
	return p
}

// pluginInstall is how to enable a loadable authentication plugin.
func pluginInstall(v Version, plugin string) string {
	if v.Flavor == MariaDB {
		lib := map[string]string{"ed25519": "auth_ed25519", "gssapi": "auth_gssapi", "pam": "auth_pam",
			"unix_socket": "auth_socket", "parsec": "auth_parsec"}[plugin]
		if lib != "" {
			return "INSTALL SONAME '" + lib + "';"
		}
		return ""
	}
	switch plugin {
	case "mysql_native_password":
		return "add mysql_native_password=ON under [mysqld] in the target's my.cnf and restart it"
	case "auth_socket":
		return "INSTALL PLUGIN auth_socket SONAME 'auth_socket.so';"
	}
	return "INSTALL PLUGIN " + plugin + " SONAME '" + plugin + ".so';"
}

// engines lists the storage engines of v (upper case).
func engines(v Version) map[string]Support {
	e := map[string]Support{}
	for _, n := range []string{"INNODB", "MYISAM", "MEMORY", "CSV", "MRG_MYISAM", "PERFORMANCE_SCHEMA"} {
		e[n] = Available
	}
	if v.Flavor == MariaDB {
		e["ARIA"] = Available
		e["SEQUENCE"] = Available
		for _, n := range []string{"ARCHIVE", "BLACKHOLE", "FEDERATED", "CONNECT", "ROCKSDB", "SPIDER", "OQGRAPH", "MROONGA", "COLUMNSTORE"} {
			e[n] = Loadable
		}
		if v.AtLeast(10, 5, 0) {
			e["S3"] = Loadable
		}
		if !v.AtLeast(10, 6, 0) {
			e["TOKUDB"] = Loadable
		}
		return e
	}
	e["ARCHIVE"] = Available
	e["BLACKHOLE"] = Available
	// FEDERATED is compiled in but disabled unless --federated is given.
	e["FEDERATED"] = Loadable
	return e
}

// engineInstall is how to enable a loadable engine on v.
func engineInstall(v Version, engine string) string {
	if v.Flavor == MariaDB {
		lib := map[string]string{"FEDERATED": "ha_federatedx", "ARCHIVE": "ha_archive", "BLACKHOLE": "ha_blackhole",
			"CONNECT": "ha_connect", "ROCKSDB": "ha_rocksdb", "SPIDER": "ha_spider", "OQGRAPH": "ha_oqgraph",
			"MROONGA": "ha_mroonga", "S3": "ha_s3", "TOKUDB": "ha_tokudb"}[engine]
		if lib != "" {
			return "INSTALL SONAME '" + lib + "';  (the plugin package must be installed, e.g. mariadb-plugin-" + strings.ToLower(strings.TrimPrefix(lib, "ha_")) + ")"
		}
		return ""
	}
	if engine == "FEDERATED" {
		return "add federated under [mysqld] in the target's my.cnf and restart it"
	}
	return ""
}

// removedVar is a system variable a release removed, with its replacement.
type removedVar struct {
	f                   Flavor
	major, minor, patch int
	names               string // name or name=replacement
}

// removedVars follows MySQL Shell's upgrade checker (removedSysVars) for
// MySQL and the MariaDB release notes for MariaDB.
var removedVars = []removedVar{
	{MySQL, 8, 0, 11, `date_format datetime_format group_replication_allow_local_disjoint_gtids_join have_crypt
		ignore_builtin_innodb ignore_db_dirs innodb_checksums=innodb_checksum_algorithm
		innodb_disable_resize_buffer_pool_debug innodb_file_format innodb_file_format_check
		innodb_file_format_max innodb_large_prefix innodb_locks_unsafe_for_binlog
		innodb_stats_sample_pages=innodb_stats_transient_sample_pages innodb_support_xa
		innodb_undo_logs=innodb_rollback_segments log_warnings=log_error_verbosity
		log_builtin_as_identified_by_password log_error_filter_rules max_tmp_tables multi_range_count
		old_passwords query_cache_limit query_cache_min_res_unit query_cache_size query_cache_type
		query_cache_wlock_invalidate secure_auth show_compatibility_56 sync_frm time_format
		tx_isolation=transaction_isolation tx_read_only=transaction_read_only`},
	{MySQL, 8, 0, 13, `metadata_locks_cache_size metadata_locks_hash_instances log_syslog_facility=syseventlog.facility
		log_syslog_include_pid=syseventlog.include_pid log_syslog_tag=syseventlog.tag log_syslog`},
	{MySQL, 8, 0, 16, "internal_tmp_disk_storage_engine"},
	{MySQL, 8, 2, 0, "expire_logs_days=binlog_expire_logs_seconds"},
	{MySQL, 8, 3, 0, `slave_rows_search_algorithms log_bin_use_v1_row_events relay_log_info_file master_info_file
		transaction_write_set_extraction relay_log_info_repository master_info_repository group_replication_ip_whitelist`},
	{MySQL, 8, 4, 0, `old new binlog_transaction_dependency_tracking group_replication_recovery_complete_at
		profiling profiling_history_size avoid_temporal_upgrade show_old_temporals
		default_authentication_plugin=authentication_policy`},
	{MariaDB, 10, 2, 0, "innodb_additional_mem_pool_size innodb_use_sys_malloc innodb_mirrored_log_groups"},
	{MariaDB, 10, 3, 0, `innodb_file_format innodb_file_format_check innodb_file_format_max innodb_large_prefix
		innodb_support_xa innodb_use_trim innodb_instrument_semaphores`},
	{MariaDB, 10, 5, 0, "innodb_checksums=innodb_checksum_algorithm innodb_stats_sample_pages=innodb_stats_transient_sample_pages innodb_undo_logs"},
	{MariaDB, 10, 6, 0, `innodb_locks_unsafe_for_binlog innodb_log_files_in_group innodb_page_cleaners
		innodb_thread_concurrency innodb_commit_concurrency innodb_concurrency_tickets innodb_replication_delay
		innodb_thread_sleep_delay innodb_adaptive_max_sleep_delay innodb_log_optimize_ddl
		innodb_background_scrub_data_uncompressed innodb_background_scrub_data_compressed
		innodb_background_scrub_data_interval innodb_background_scrub_data_check_interval
		innodb_scrub_log innodb_scrub_log_speed innodb_buffer_pool_instances innodb_idle_flush_pct`},
	{MariaDB, 11, 0, 0, "innodb_change_buffering innodb_defragment innodb_defragment_n_pages innodb_defragment_stats_accuracy innodb_defragment_fill_factor innodb_defragment_fill_factor_n_recs innodb_defragment_frequency"},
}

// flavourOnlyVars are variables (or prefixes ending in "_") only one flavour has.
var flavourOnlyVars = map[Flavor]string{
	MariaDB: `aria_ wsrep_ mroonga_ rocksdb_ spider_ connect_ s3_ binlog_annotate_row_events gtid_domain_id
		gtid_strict_mode gtid_slave_pos gtid_binlog_pos log_slow_verbosity max_statement_time old_mode
		thread_pool_idle_timeout thread_pool_oversubscribe thread_pool_stall_limit innodb_encrypt_tables
		innodb_encrypt_log userstat use_stat_tables optimizer_use_condition_selectivity`,
	MySQL: `mysqlx_ validate_password caching_sha2_password_ group_replication_ innodb_dedicated_server
		log_error_verbosity default_authentication_plugin authentication_policy sha256_password_
		transaction_write_set_extraction persisted_globals_load admin_address admin_port
		binlog_transaction_dependency_tracking replica_ source_ innodb_redo_log_capacity`,
}

// missingVariable reports whether static knowledge says target t has no
// variable name that a source of flavour src configures, with its replacement.
func missingVariable(src, t Version, name string) (missing bool, replacement string) {
	name = strings.ToLower(name)
	for _, r := range removedVars {
		if r.f != t.Flavor || !t.AtLeast(r.major, r.minor, r.patch) {
			continue
		}
		for _, n := range strings.Fields(r.names) {
			old, repl, _ := strings.Cut(n, "=")
			if old == name {
				return true, repl
			}
		}
	}
	if src.Flavor != t.Flavor {
		for _, n := range strings.Fields(flavourOnlyVars[src.Flavor]) {
			if name == n || strings.HasSuffix(n, "_") && strings.HasPrefix(name, n) {
				return true, ""
			}
		}
	}
	return false, ""
}

// hasCollationStatic reports whether a server of version v knows the
// collation, from naming rules (a live target is asked instead).
func hasCollationStatic(v Version, name string) bool {
	n := strings.ToLower(name)
	n = strings.Replace(n, "utf8mb3_", "utf8_", 1)
	switch v.Flavor {
	case MySQL:
		if strings.Contains(n, "_nopad_") || strings.Contains(n, "uca1400") || strings.HasSuffix(n, "_nopad_bin") {
			return false
		}
		if strings.HasPrefix(n, "utf8mb4_") && !v.AtLeast(5, 5, 3) {
			return false
		}
		if strings.Contains(n, "_520_") && !v.AtLeast(5, 6, 0) {
			return false
		}
		if strings.Contains(n, "_0900_") && !v.AtLeast(8, 0, 1) {
			return false
		}
		if strings.HasPrefix(n, "utf8mb4_") && strings.HasSuffix(n, "_0900_bin") && !v.AtLeast(8, 0, 17) {
			return false
		}
	case MariaDB:
		if strings.Contains(n, "_0900_") && !v.AtLeast(11, 4, 5) {
			return false
		}
		if strings.Contains(n, "uca1400") && !v.AtLeast(10, 10, 1) {
			return false
		}
		if strings.Contains(n, "_nopad_") && !v.AtLeast(10, 2, 2) {
			return false
		}
	}
	return true
}

// missingTypes lists column data types v does not have.
func missingTypes(v Version) map[string]string {
	m := map[string]string{}
	if v.Flavor == MySQL {
		m["inet6"] = "VARBINARY(16) with INET6_ATON()/INET6_NTOA()"
		m["inet4"] = "INT UNSIGNED with INET_ATON()/INET_NTOA()"
		m["uuid"] = "BINARY(16) with UUID_TO_BIN()/BIN_TO_UUID(), or CHAR(36)"
		if !v.AtLeast(9, 0, 0) {
			m["vector"] = "a BLOB holding the packed floats"
		}
		if !v.AtLeast(5, 7, 8) {
			m["json"] = "LONGTEXT"
		}
		return m
	}
	if !v.AtLeast(10, 5, 0) {
		m["inet6"] = "VARBINARY(16)"
	}
	if !v.AtLeast(10, 10, 0) {
		m["inet4"] = "INT UNSIGNED"
	}
	if !v.AtLeast(10, 7, 0) {
		m["uuid"] = "CHAR(36) or BINARY(16)"
	}
	if !v.AtLeast(11, 7, 0) {
		m["vector"] = "a BLOB holding the packed floats"
	}
	return m
}

// removedFunctions8 are the functions MySQL 8.0 removed (MySQL Shell's
// removedFunctions check), with what to use instead.
var removedFunctions8 = map[string]string{
	"ENCODE": "AES_ENCRYPT and AES_DECRYPT", "DECODE": "AES_ENCRYPT and AES_DECRYPT", "ENCRYPT": "SHA2",
	"DES_ENCRYPT": "AES_ENCRYPT and AES_DECRYPT", "DES_DECRYPT": "AES_ENCRYPT and AES_DECRYPT",
	"PASSWORD": "", "AREA": "ST_AREA", "ASBINARY": "ST_ASBINARY", "ASTEXT": "ST_ASTEXT", "ASWKB": "ST_ASWKB",
	"ASWKT": "ST_ASWKT", "BUFFER": "ST_BUFFER", "CENTROID": "ST_CENTROID", "CONTAINS": "MBRCONTAINS",
	"CROSSES": "ST_CROSSES", "DIMENSION": "ST_DIMENSION", "DISJOINT": "MBRDISJOINT", "DISTANCE": "ST_DISTANCE",
	"ENDPOINT": "ST_ENDPOINT", "ENVELOPE": "ST_ENVELOPE", "EQUALS": "MBREQUALS", "EXTERIORRING": "ST_EXTERIORRING",
	"GEOMCOLLFROMTEXT": "ST_GEOMCOLLFROMTEXT", "GEOMCOLLFROMWKB": "ST_GEOMCOLLFROMWKB",
	"GEOMETRYCOLLECTIONFROMTEXT": "ST_GEOMETRYCOLLECTIONFROMTEXT", "GEOMETRYCOLLECTIONFROMWKB": "ST_GEOMETRYCOLLECTIONFROMWKB",
	"GEOMETRYFROMTEXT": "ST_GEOMETRYFROMTEXT", "GEOMETRYFROMWKB": "ST_GEOMETRYFROMWKB", "GEOMETRYN": "ST_GEOMETRYN",
	"GEOMETRYTYPE": "ST_GEOMETRYTYPE", "GEOMFROMTEXT": "ST_GEOMFROMTEXT", "GEOMFROMWKB": "ST_GEOMFROMWKB",
	"GLENGTH": "ST_LENGTH", "INTERIORRINGN": "ST_INTERIORRINGN", "INTERSECTS": "MBRINTERSECTS", "ISCLOSED": "ST_ISCLOSED",
	"ISEMPTY": "ST_ISEMPTY", "ISSIMPLE": "ST_ISSIMPLE", "LINEFROMTEXT": "ST_LINEFROMTEXT", "LINEFROMWKB": "ST_LINEFROMWKB",
	"LINESTRINGFROMTEXT": "ST_LINESTRINGFROMTEXT", "LINESTRINGFROMWKB": "ST_LINESTRINGFROMWKB", "MBREQUAL": "MBREQUALS",
	"MLINEFROMTEXT": "ST_MLINEFROMTEXT", "MLINEFROMWKB": "ST_MLINEFROMWKB", "MPOINTFROMTEXT": "ST_MPOINTFROMTEXT",
	"MPOINTFROMWKB": "ST_MPOINTFROMWKB", "MPOLYFROMTEXT": "ST_MPOLYFROMTEXT", "MPOLYFROMWKB": "ST_MPOLYFROMWKB",
	"MULTILINESTRINGFROMTEXT": "ST_MULTILINESTRINGFROMTEXT", "MULTILINESTRINGFROMWKB": "ST_MULTILINESTRINGFROMWKB",
	"MULTIPOINTFROMTEXT": "ST_MULTIPOINTFROMTEXT", "MULTIPOINTFROMWKB": "ST_MULTIPOINTFROMWKB",
	"MULTIPOLYGONFROMTEXT": "ST_MULTIPOLYGONFROMTEXT", "MULTIPOLYGONFROMWKB": "ST_MULTIPOLYGONFROMWKB",
	"NUMGEOMETRIES": "ST_NUMGEOMETRIES", "NUMINTERIORRINGS": "ST_NUMINTERIORRINGS", "NUMPOINTS": "ST_NUMPOINTS",
	"OVERLAPS": "MBROVERLAPS", "POINTFROMTEXT": "ST_POINTFROMTEXT", "POINTFROMWKB": "ST_POINTFROMWKB",
	"POINTN": "ST_POINTN", "POLYFROMTEXT": "ST_POLYFROMTEXT", "POLYFROMWKB": "ST_POLYFROMWKB",
	"POLYGONFROMTEXT": "ST_POLYGONFROMTEXT", "POLYGONFROMWKB": "ST_POLYGONFROMWKB", "SRID": "ST_SRID",
	"STARTPOINT": "ST_STARTPOINT", "TOUCHES": "ST_TOUCHES", "WITHIN": "MBRWITHIN", "X": "ST_X", "Y": "ST_Y",
}
