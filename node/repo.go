package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/meshnode/meshnode/experts"
	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/node/api"
)

// Files of a repo folder.
const (
	identityFile = "identity.key"
	configFile   = "config.yaml"
	tokenFile    = api.TokenFile
	storeDir     = "datastore"
)

// DefaultRepoPath is $MESHNODE_PATH, or ~/.meshnode.
func DefaultRepoPath() string {
	if p := os.Getenv("MESHNODE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".meshnode"
	}
	return filepath.Join(home, ".meshnode")
}

// ErrNoRepo is returned by Open for a folder that is not an initialised repo.
var ErrNoRepo = errors.New("no meshnode repo")

// Repo is an opened repo folder.
type Repo struct {
	Path     string
	Config   Config
	Identity *Identity
	st       *store.Store
	blobs    *BlobKeeper
}

// InitOptions configure Init.
type InitOptions struct {
	Preset     string // default "development"
	ConfigFile string // start from this file instead of a preset
}

// Init creates a repo folder: identity key (mode 0600), config.yaml, API token (0600) and the
// database. It refuses a folder that already holds a repo.
func Init(ctx context.Context, path string, o InitOptions) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(path, identityFile)); err == nil {
		return nil, fmt.Errorf("init %s: a repo already exists there", path)
	}
	var cfg Config
	var err error
	if o.ConfigFile != "" {
		cfg, err = LoadConfig(o.ConfigFile)
	} else {
		if o.Preset == "" {
			o.Preset = "development"
		}
		cfg, err = Preset(o.Preset)
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	id, err := newIdentity()
	if err != nil {
		return nil, err
	}
	cb, err := cfg.Marshal()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("init %s: token: %w", path, err)
	}
	if err := WriteFileAtomic(filepath.Join(path, configFile), cb, 0o644); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	if err := WriteFileAtomic(filepath.Join(path, tokenFile), []byte(hex.EncodeToString(tok)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	st, err := store.Open(filepath.Join(path, storeDir), cfg.storeOptions())
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	// The identity is written last: its presence is what marks the folder as a repo.
	if err := id.save(filepath.Join(path, identityFile)); err != nil {
		st.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Repo{Path: path, Config: cfg, Identity: id, st: st}, nil
}

// Open opens an initialised repo folder. The database is opened on first use.
func Open(path string) (*Repo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: run 'meshnode init' first", ErrNoRepo, path)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w at %s: not a folder", ErrNoRepo, path)
	}
	if _, err := os.Stat(filepath.Join(path, identityFile)); err != nil {
		return nil, fmt.Errorf("%w at %s: no identity key; run 'meshnode init --repo %s'", ErrNoRepo, path, path)
	}
	id, err := loadIdentity(filepath.Join(path, identityFile))
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(filepath.Join(path, configFile))
	if err != nil {
		return nil, err
	}
	return &Repo{Path: path, Config: cfg, Identity: id}, nil
}

// Store opens the database on first use.
func (r *Repo) Store() (*store.Store, error) {
	if r.st != nil {
		return r.st, nil
	}
	st, err := store.Open(filepath.Join(r.Path, storeDir), r.Config.storeOptions())
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open store of %s: another meshnode process (the daemon?) holds it: %w", r.Path, err)
		}
		return nil, err
	}
	r.st = st
	return st, nil
}

// Blobs is the keeper of the store's blob records (opening the store on first use).
func (r *Repo) Blobs() (*BlobKeeper, error) {
	if r.blobs != nil {
		return r.blobs, nil
	}
	st, err := r.Store()
	if err != nil {
		return nil, err
	}
	r.blobs = newBlobKeeper(st)
	return r.blobs, nil
}

// Expert finds a hosted expert by ID or name and returns the store, its ID and its manifest
// (checked against the ID).
func (r *Repo) Expert(ctx context.Context, ref string) (*store.Store, cid.Cid, *experts.Manifest, error) {
	st, err := r.Store()
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	id, err := st.Resolve(ctx, ref)
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	m, err := st.GetExpert(ctx, id)
	if err != nil {
		return nil, cid.Undef, nil, err
	}
	return st, id, m, nil
}

// Token is the API token.
func (r *Repo) Token() (string, error) {
	b, err := os.ReadFile(filepath.Join(r.Path, tokenFile))
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Close closes the database if it was opened.
func (r *Repo) Close() error {
	if r.st == nil {
		return nil
	}
	err := r.st.Close()
	r.st = nil
	return err
}

func (c Config) storeOptions() store.Options {
	return store.Options{MemTableSize: int64(c.Store.MemTableMiB) << 20, BlockCacheSize: int64(c.Store.BlockCacheMiB) << 20}
}

// WriteFileAtomic writes a file atomically: a temporary file in the same folder, fsync, rename,
// fsync of the folder.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
