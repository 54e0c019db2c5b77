package rowcopy

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"
)

// genRows yields n rows of two columns, one of them NULL every 7th row and
// full of characters LOAD DATA must see escaped.
type genRows struct {
	i, n int
}

func (g *genRows) Next() bool { g.i++; return g.i <= g.n }
func (g *genRows) Err() error { return nil }
func (g *genRows) Scan(dest ...any) error {
	*dest[0].(*sql.RawBytes) = sql.RawBytes(fmt.Sprintf("%d", g.i))
	if g.i%7 == 0 {
		*dest[1].(*sql.RawBytes) = nil
	} else {
		*dest[1].(*sql.RawBytes) = sql.RawBytes(fmt.Sprintf("a\tb\nc\\d\x00e %0200d", g.i))
	}
	return nil
}

// The reader's buffer stays at one read plus one row however many rows
// go through it, and the stream decodes back to the rows.
func TestRowReaderBoundedAndEscaped(t *testing.T) {
	r := newRowReader(&genRows{n: 50000}, 2, nil, nil)
	p := make([]byte, 16<<10)
	var out bytes.Buffer
	maxCap := 0
	for {
		n, err := r.Read(p)
		out.Write(p[:n])
		maxCap = max(maxCap, cap(r.buf))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if maxCap > 64<<10 {
		t.Fatalf("buffer grew to %d bytes for 16 KiB reads", maxCap)
	}
	lines := bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 50000 || r.nrows != 50000 {
		t.Fatalf("%d lines, %d rows", len(lines), r.nrows)
	}
	if got, want := string(lines[6]), `7`+"\t"+`\N`; got != want {
		t.Fatalf("NULL row: %q", got)
	}
	if got, want := string(lines[0]), `1`+"\t"+`a\tb\nc\\d\0e 0`; !strings.HasPrefix(got, want) {
		t.Fatalf("escaping: %q, want a prefix %q", got[:20], want)
	}
	if r.bytes != int64(out.Len()) {
		t.Fatalf("counted %d bytes, sent %d", r.bytes, out.Len())
	}
}
