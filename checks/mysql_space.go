package checks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/decant-sh/decant/internal/hosts"
	"github.com/decant-sh/decant/internal/mysqlcompat"
	"github.com/decant-sh/decant/internal/steps"
)

func init() {
	steps.Register(steps.Kind{
		Name:  "mysql.space",
		Check: true,
		Doc:   "data + index size per database on the source against free space on the target's datadir filesystem, with headroom",
		New: func(n ast.Node) (any, error) {
			c := &MySQLSpace{Source: "source", Target: "target", Headroom: 20}
			if err := steps.DecodeParams(n, c); err != nil {
				return nil, err
			}
			if c.Headroom < 0 || c.Headroom > 1000 {
				return nil, steps.BadParam("headroom", "must be a percentage between 0 and 1000, got %d", c.Headroom)
			}
			if c.Reserve != "" {
				if _, err := mysqlPreParseSize(c.Reserve); err != nil {
					return nil, steps.BadParam("reserve", "%v", err)
				}
			}
			return c, nil
		},
	})
}

// MySQLSpace compares what the copy will write with the free space on the
// filesystem of the target's datadir (df on the target host).
type MySQLSpace struct {
	Source string `yaml:"source"`
	Target string `yaml:"target"`
	// Databases limits the sum (default: every non-system database).
	Databases []string `yaml:"databases"`
	// Headroom is extra space in percent of the data (default 20); the
	// largest table's size is added on top, for an ALTER's table copy.
	Headroom int `yaml:"headroom"`
	// Reserve is space to keep free besides ("10G" for binlogs), in bytes
	// or with a K/M/G/T suffix (powers of 1024).
	Reserve string `yaml:"reserve"`
}

// Run sums the source's sizes and runs df on the target's datadir.
func (c *MySQLSpace) Run(ctx context.Context, env *steps.Env) ([]steps.Finding, error) {
	src, err := env.MySQL(ctx, c.Source)
	if err != nil {
		return []steps.Finding{mysqlPreConnFail(c.Source, err)}, nil
	}
	tables, err := mysqlcompat.ListTables(ctx, src, c.Databases)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	sizes := mysqlcompat.Sizes(tables)

	ep, ok := env.Conn.MySQLEndpoint(c.Target)
	if !ok {
		return nil, fmt.Errorf("no mysql endpoint %q in the runbook", c.Target)
	}
	tdb, err := env.MySQL(ctx, c.Target)
	if err != nil {
		return []steps.Finding{mysqlPreConnFail(c.Target, err)}, nil
	}
	datadir := ep.Datadir
	if datadir == "" {
		if err := tdb.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir); err != nil {
			return nil, fmt.Errorf("read the target's datadir: %w", err)
		}
	}
	// What the target already holds of these databases (an earlier copy)
	// is on its disk already.
	var names []string
	for _, s := range sizes {
		names = append(names, s.Schema)
	}
	have := map[string]int64{}
	if len(names) > 0 {
		ttables, err := mysqlcompat.ListTables(ctx, tdb, names)
		if err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		for _, s := range mysqlcompat.Sizes(ttables) {
			have[s.Schema] = s.Data + s.Index
		}
	}

	h, err := env.Host(ctx, ep.Host)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: ep.Host, Message: fmt.Sprintf("cannot reach %s: %v", ep.Host, err)}}, nil
	}
	free, fs, err := mysqlPreDF(ctx, h, datadir)
	if err != nil {
		return []steps.Finding{{Status: steps.Fail, Subject: datadir, Message: fmt.Sprintf("cannot measure free space of %s on %s: %v", datadir, ep.Host, err),
			Fix: "set mysql." + c.Target + ".datadir to the target's data directory"}}, nil
	}

	var out []steps.Finding
	var total, toWrite, largest int64
	largestName := ""
	for _, s := range sizes {
		b := s.Data + s.Index
		total += b
		toWrite += max(0, b-have[s.Schema])
		if s.LargestBytes > largest {
			largest, largestName = s.LargestBytes, s.Largest
		}
		msg := fmt.Sprintf("%s (data %s + indexes %s) in %d tables; largest %s, %s",
			mysqlPreBytes(b), mysqlPreBytes(s.Data), mysqlPreBytes(s.Index), s.Tables, s.Largest, mysqlPreBytes(s.LargestBytes))
		if have[s.Schema] > 0 {
			msg += fmt.Sprintf("; the target already holds %s of it", mysqlPreBytes(have[s.Schema]))
		}
		out = append(out, steps.Finding{Status: steps.Pass, Subject: s.Schema, Message: msg})
	}
	reserve, _ := mysqlPreParseSize(c.Reserve)
	need := toWrite + toWrite*int64(c.Headroom)/100 + largest + reserve
	detail := fmt.Sprintf("%s to copy + %d%% headroom + largest table %s", mysqlPreBytes(toWrite), c.Headroom, mysqlPreBytes(largest))
	if largestName != "" {
		detail += " (" + largestName + ")"
	}
	if reserve > 0 {
		detail += " + reserve " + mysqlPreBytes(reserve)
	}
	where := fmt.Sprintf("%s on %s (filesystem %s)", datadir, ep.Host, fs)
	tf := steps.Finding{Subject: "space", Fix: ""}
	switch {
	case free >= need:
		tf.Status = steps.Pass
		tf.Message = fmt.Sprintf("needs %s (%s); %s has %s free", mysqlPreBytes(need), detail, where, mysqlPreBytes(free))
	case free >= toWrite+reserve:
		tf.Status = steps.Warn
		tf.Message = fmt.Sprintf("the data fits but without headroom: needs %s (%s); %s has %s free. An ALTER TABLE on the largest table, or binlogs, can fill the disk",
			mysqlPreBytes(need), detail, where, mysqlPreBytes(free))
		tf.Fix = fmt.Sprintf("free or add %s on the target's datadir filesystem", mysqlPreBytes(need-free))
	default:
		tf.Status = steps.Fail
		tf.Message = fmt.Sprintf("not enough space: needs %s (%s); %s has only %s free", mysqlPreBytes(need), detail, where, mysqlPreBytes(free))
		tf.Fix = fmt.Sprintf("free or add at least %s on the target's datadir filesystem, or copy fewer databases", mysqlPreBytes(need-free))
	}
	if len(sizes) == 0 {
		tf.Message = "no databases to copy; " + tf.Message
	}
	return append(out, tf), nil
}

// mysqlPreDF runs df on the host and returns available bytes and the filesystem.
func mysqlPreDF(ctx context.Context, h hosts.Host, path string) (int64, string, error) {
	out, err := h.Output(ctx, "LC_ALL=C df -P -k -- "+hosts.Quote(path))
	if err != nil {
		return 0, "", err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		return 0, "", fmt.Errorf("unexpected df output %q", string(out))
	}
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 6 {
		return 0, "", fmt.Errorf("unexpected df output %q", lines[len(lines)-1])
	}
	kb, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("unexpected df output %q", lines[len(lines)-1])
	}
	return kb * 1024, f[0] + " mounted on " + f[len(f)-1], nil
}

// mysqlPreParseSize reads "512", "10K", "1.5G", "2T" (powers of 1024).
func mysqlPreParseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		case 'P':
			mult = 1 << 50
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a number with K, M, G, T or P", s)
	}
	return int64(f * float64(mult)), nil
}

// mysqlPreBytes formats a byte count for people.
func mysqlPreBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
