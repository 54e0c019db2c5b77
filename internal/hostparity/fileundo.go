package hostparity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/decant-sh/decant/internal/hosts"
)

// FileUndo is a file as it was before an action replaced it: enough to put
// it back exactly (content, mode, owner, times) or to remove it and the
// directories created for it. The content is never in the receipt: it
// lives in a 0600 backup under the runbook's state directory (crontabs and
// env files hold credentials), checked against SHA256 before use.
type FileUndo struct {
	Host    string `json:"host"`
	Path    string `json:"path"` // on Host, mapped through its root
	Existed bool   `json:"existed"`
	Backup  string `json:"backup,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Mode    uint32 `json:"mode,omitempty"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	// CreatedDirs are directories that will be created for the file,
	// deepest first.
	CreatedDirs []string `json:"created_dirs,omitempty"`
	// MTimes of the file and of the directory whose entries change.
	MTimes map[string]string `json:"mtimes,omitempty"`
}

// SaveFile records p on h (host name hostName) before a change, writing a
// backup of its content to stateDir/name when it exists.
func SaveFile(ctx context.Context, h hosts.Host, hostName, p, stateDir, name string) (FileUndo, error) {
	u := FileUndo{Host: hostName, Path: p}
	data, err := h.ReadFile(ctx, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return u, fmt.Errorf("read %s on %s: %w", p, hostName, err)
	default:
		u.Existed = true
		out, err := h.Output(ctx, "LC_ALL=C stat -c '%a %u %g' -- "+hosts.Quote(p))
		if err != nil {
			return u, fmt.Errorf("stat %s on %s: %w", p, hostName, err)
		}
		f := strings.Fields(string(out))
		if len(f) != 3 {
			return u, fmt.Errorf("stat %s on %s: unexpected %q", p, hostName, out)
		}
		m, _ := strconv.ParseUint(f[0], 8, 32)
		u.Mode = uint32(m)
		u.UID, _ = strconv.Atoi(f[1])
		u.GID, _ = strconv.Atoi(f[2])
		if u.Backup, err = WriteBackup(stateDir, name, data); err != nil {
			return u, err
		}
		sum := sha256.Sum256(data)
		u.SHA256 = hex.EncodeToString(sum[:])
	}
	if u.CreatedDirs, err = MissingDirs(ctx, h, path.Dir(p)); err != nil {
		return u, err
	}
	parent := path.Dir(p)
	if n := len(u.CreatedDirs); n > 0 {
		parent = path.Dir(u.CreatedDirs[n-1])
	}
	if u.MTimes, err = MTimes(ctx, h, []string{p, parent}); err != nil {
		return u, err
	}
	return u, nil
}

// BackupData reads and verifies the backup.
func (u FileUndo) BackupData() ([]byte, error) {
	data, err := os.ReadFile(u.Backup)
	if err != nil {
		return nil, fmt.Errorf("read backup of %s: %w", u.Path, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != u.SHA256 {
		return nil, fmt.Errorf("backup %s of %s does not match its checksum: restore it by hand", u.Backup, u.Path)
	}
	return data, nil
}

// Restore puts the file back as it was, or removes it (and the
// directories made for it) when it did not exist.
func (u FileUndo) Restore(ctx context.Context, h hosts.Host) error {
	if !u.Existed {
		if err := h.Run(ctx, "rm -f -- "+hosts.Quote(u.Path), nil, nil, nil); err != nil {
			return fmt.Errorf("remove %s on %s: %w", u.Path, u.Host, err)
		}
		RemoveDirs(ctx, h, u.CreatedDirs)
		return SetMTimes(ctx, h, u.MTimes)
	}
	data, err := u.BackupData()
	if err != nil {
		return err
	}
	if err := h.Run(ctx, "mkdir -p -- "+hosts.Quote(path.Dir(u.Path)), nil, nil, nil); err != nil {
		return err
	}
	if err := h.WriteFile(ctx, u.Path, data, fs.FileMode(u.Mode)); err != nil {
		return err
	}
	if err := h.Run(ctx, fmt.Sprintf("chown %d:%d %s && chmod %o %s", u.UID, u.GID, hosts.Quote(u.Path), u.Mode, hosts.Quote(u.Path)), nil, nil, nil); err != nil {
		return fmt.Errorf("restore owner of %s on %s: %w", u.Path, u.Host, err)
	}
	return SetMTimes(ctx, h, u.MTimes)
}

// Forget removes the backup once it is no longer needed.
func (u FileUndo) Forget() {
	if u.Backup != "" {
		_ = os.Remove(u.Backup)
	}
}

// WriteBackup writes data 0600 into dir/name (fsynced) and returns its path.
func WriteBackup(dir, name string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("backup %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("backup %s: %w", p, err)
	}
	return p, f.Close()
}

// SHA256Hex is the hex SHA-256 of data.
func SHA256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
