package checks

import (
	"context"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "mysql.version",
		Check: true,
		Doc:   "source and target MySQL/MariaDB versions and flavours, and the concrete incompatibilities between them found in the source's data",
		New: func(n ast.Node) (any, error) {
			c := &MySQLVersion{Source: "source", Target: "target", ScanZeroDates: true, MaxScanRows: 5_000_000}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.Profile != "" {
				if _, err := mysqlcompat.ParseProfileName(c.Profile); err != nil {
					return nil, steps.BadParam("profile", "%v", err)
				}
			}
			if c.MaxScanRows < 0 {
				return nil, steps.BadParam("max_scan_rows", "must not be negative")
			}
			return c, nil
		},
	})
}

// MySQLVersion compares the source and target servers: flavour (MySQL or
// MariaDB) and release series, then what the source's data holds that the
// target does not accept (the mysqlcompat checks, modelled on MySQL Shell's
// upgrade checker).
type MySQLVersion struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Profile compares with a release ("mysql-8.0", "mariadb-11.4")
	// instead of the live target's version; the live target, when
	// reachable, still supplies its accounts for the DEFINER check.
	Profile string `yaml:"profile"`
	// Databases limits the check (default: every non-system database).
	Databases []string `yaml:"databases"`
	// ScanZeroDates reads every date column for zero dates (one scan per
	// table); tables over MaxScanRows estimated rows are skipped.
	ScanZeroDates bool  `yaml:"scan_zero_dates"`
	MaxScanRows   int64 `yaml:"max_scan_rows"`
}

// mysqlPreMaxObjects is how many objects one finding lists before "and N more".
const mysqlPreMaxObjects = 12

// Run collects the source's inventory, builds the target profile and
// compares them.
func (c *MySQLVersion) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	src, err := env.MySQL(ctx, c.Source)
	if err != nil {
		return []steps.Finding{mysqlPreConnFail(c.Source, err)}, nil
	}
	inv, err := mysqlcompat.Collect(ctx, src, mysqlcompat.CollectOptions{Databases: c.Databases, ScanZeroDates: c.ScanZeroDates, MaxScanRows: c.MaxScanRows})
	if err != nil {
		return nil, fmt.Errorf("read the source: %w", err)
	}
	srcWords, err := mysqlcompat.ProbeReservedWords(ctx, src, inv.Identifiers())
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}

	var out []steps.Finding
	var prof *mysqlcompat.Profile
	tgt, terr := env.MySQL(ctx, c.Target)
	if c.Profile != "" {
		if prof, err = mysqlcompat.NamedProfile(c.Profile); err != nil {
			return nil, err
		}
		if terr == nil {
			if accts, err := mysqlcompat.ListAccounts(ctx, tgt); err == nil {
				prof.SetAccounts(accts)
			}
		}
		if prof.Accounts == nil {
			out = append(out, steps.Finding{Status: steps.Pass, Subject: "definers",
				Message: "DEFINER accounts not checked: the live target is not reachable to list its accounts"})
		}
	} else {
		if terr != nil {
			return append(out, mysqlPreConnFail(c.Target, terr)), nil
		}
		if prof, err = mysqlcompat.LiveProfile(ctx, tgt); err != nil {
			return nil, fmt.Errorf("read the target: %w", err)
		}
		if err := prof.ProbeReserved(ctx, tgt, inv.Identifiers()); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
	}

	sv, tv := inv.Version, prof.Version
	target := "target " + tv.String()
	if !prof.Live {
		target = "profile " + prof.Name + " (" + tv.String() + ")"
	}
	versions := fmt.Sprintf("source %s, %s", sv, target)
	issues := mysqlcompat.Compare(mysqlcompat.Source{Inventory: inv, Reserved: srcWords}, prof)
	vf := steps.Finding{Status: steps.Pass, Subject: "versions"}
	switch {
	case sv.SameSeries(tv):
		vf.Message = versions + ": same flavour and release series"
	case sv.Flavor != tv.Flavor:
		vf.Status = steps.Warn
		vf.Message = fmt.Sprintf("%s: different flavours (%s to %s); the incompatibilities found in this data are listed below, test the application on the target too",
			versions, sv.Flavor.Name(), tv.Flavor.Name())
	case sv.Cmp(tv) > 0:
		vf.Status = steps.Warn
		vf.Message = versions + ": the target is an OLDER release (a downgrade); only a logical copy works, and the incompatibilities found are listed below"
	default:
		vf.Status = steps.Warn
		vf.Message = fmt.Sprintf("%s: upgrade from %s to %s; the incompatibilities found in this data are listed below, test the application on the target too",
			versions, sv.Series(), tv.Series())
	}
	if vf.Status != steps.Pass {
		vf.Fix = "run the application's test suite against the target before the cut-over"
	}
	out = append([]steps.Finding{vf}, out...)

	for _, is := range issues {
		st := steps.Warn
		if is.Severity == mysqlcompat.Fail {
			st = steps.Fail
		}
		out = append(out, steps.Finding{Status: st, Subject: is.ID,
			Message: fmt.Sprintf("%s (%d): %s. %s", is.Title, len(is.Objects), mysqlPreList(is.Objects), mysqlPreSentence(is.Why)),
			Fix:     is.Fix})
	}
	if len(inv.ZeroScanSkipped) > 0 && c.ScanZeroDates {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: "zero-dates",
			Message: fmt.Sprintf("zero dates not counted in %d tables over %d rows: %s", len(inv.ZeroScanSkipped), c.MaxScanRows, mysqlPreList(inv.ZeroScanSkipped)),
			Fix:     "raise max_scan_rows to scan them"})
	}
	if len(issues) == 0 {
		out = append(out, steps.Finding{Status: steps.Pass, Subject: "data",
			Message: fmt.Sprintf("no incompatibility found in this data (%d databases, %d tables, %d columns, %d views/routines/triggers/events, %d accounts checked)",
				len(inv.Schemas), len(inv.Tables), len(inv.Columns), len(inv.Objects), len(inv.Accounts))})
	}
	return out, nil
}

// mysqlPreConnFail is the finding for an endpoint decant cannot reach.
func mysqlPreConnFail(name string, err error) steps.Finding {
	return steps.Finding{Status: steps.Fail, Subject: name,
		Message: fmt.Sprintf("cannot connect to the %s MySQL server: %v", name, err),
		Fix:     "check mysql." + name + " in the runbook (socket or address, options file with user and password) and that the server runs"}
}

// mysqlPreList joins up to mysqlPreMaxObjects items and counts the rest.
func mysqlPreList(items []string) string {
	if len(items) <= mysqlPreMaxObjects {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:mysqlPreMaxObjects], ", ") + fmt.Sprintf(", and %d more", len(items)-mysqlPreMaxObjects)
}

func mysqlPreSentence(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}
