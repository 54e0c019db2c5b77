package runbook

// The journal is the run's memory: an append-only JSON-lines file of every
// event, next to the runbook (<runbook>.decant/journal.jsonl, 0600). State
// is never stored separately; it is rebuilt by replaying the journal, so a
// run killed at any instant resumes from exactly what was recorded. Lifecycle
// events are fsynced before the engine reports them, which is what makes
// "done" on screen mean "done on disk". A torn last line (a crash during a
// write) is ignored on replay and truncated before the next append.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// StateDir returns the directory that holds a runbook's journal and files.
func StateDir(runbookPath string) string { return runbookPath + ".decant" }

// JournalPath returns the journal file for a runbook.
func JournalPath(runbookPath string) string {
	return filepath.Join(StateDir(runbookPath), "journal.jsonl")
}

// Journal appends events to the journal file.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	lock *os.File
	seq  int64
	path string
}

// ErrLocked means another decant process has the runbook open.
var ErrLocked = errors.New("another decant process is running this runbook")

// OpenJournal opens (creating) the journal of a runbook, takes an exclusive
// lock so two processes never interleave, and returns the events so far.
func OpenJournal(runbookPath string) (*Journal, []Event, error) {
	dir := StateDir(runbookPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("journal lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(lock)
		lock.Close()
		if p := strings.TrimSpace(string(pid)); p != "" {
			return nil, nil, fmt.Errorf("%w (pid %s); wait for it or stop it first", ErrLocked, p)
		}
		return nil, nil, ErrLocked
	}
	_ = lock.Truncate(0)
	_, _ = lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	path := JournalPath(runbookPath)
	events, good, err := readJournal(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	// Drop a torn tail so the next line starts clean.
	if err := f.Truncate(good); err != nil {
		f.Close()
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		lock.Close()
		return nil, nil, fmt.Errorf("journal: %w", err)
	}
	_ = f.Chmod(0o600)
	j := &Journal{f: f, lock: lock, path: path}
	if n := len(events); n > 0 {
		j.seq = events[n-1].Seq
	}
	return j, events, nil
}

// ReadJournal returns a runbook's events without locking it (transcripts
// may be exported while a run goes on).
func ReadJournal(runbookPath string) ([]Event, error) {
	ev, _, err := readJournal(JournalPath(runbookPath))
	return ev, err
}

// readJournal returns the events and the byte offset after the last
// complete, valid line.
func readJournal(path string) ([]Event, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var events []Event
	var good int64
	r := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a line without newline is torn: ignore it
		}
		var ev Event
		if jerr := json.Unmarshal(line, &ev); jerr != nil {
			// Only a torn tail is forgiven; damage in the middle is reported.
			if good+int64(len(line)) < int64(len(data)) {
				return nil, 0, fmt.Errorf("journal %s: corrupt line at byte %d: %v", path, good, jerr)
			}
			break
		}
		events = append(events, ev)
		good += int64(len(line))
	}
	return events, good, nil
}

// Append assigns the next sequence number, writes the event, and fsyncs it
// when sync is true.
func (j *Journal) Append(ev *Event, sync bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("journal is closed")
	}
	j.seq++
	ev.Seq = j.seq
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("journal: encode %s: %w", ev.Type, err)
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal: fsync: %w", err)
		}
	}
	return nil
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Close syncs and closes the journal and releases the lock.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	_ = j.lock.Truncate(0)
	j.lock.Close()
	return err
}
