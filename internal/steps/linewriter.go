package steps

import (
	"bytes"
	"sync"
)

// LineWriter turns a byte stream (a command's stdout) into Logf calls, one
// per line, so remote output reaches the event stream as it arrives.
type LineWriter struct {
	mu     sync.Mutex
	r      Reporter
	prefix string
	buf    []byte
}

// NewLineWriter returns a writer logging each line to r with prefix.
func NewLineWriter(r Reporter, prefix string) *LineWriter {
	return &LineWriter{r: r, prefix: prefix}
}

// Write logs every complete line in p; a partial line waits for the next write.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if line := w.buf[:i]; len(line) > 0 {
			w.r.Logf("%s%s", w.prefix, line)
		}
		w.buf = w.buf[i+1:]
	}
	// A line without newline longer than 64 KiB is flushed so memory stays bounded.
	if len(w.buf) > 64<<10 {
		w.r.Logf("%s%s", w.prefix, w.buf)
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// Flush logs a trailing partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.r.Logf("%s%s", w.prefix, w.buf)
		w.buf = nil
	}
}
