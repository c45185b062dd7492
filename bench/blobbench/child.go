package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshnode/meshnode/experts/store"
	"github.com/meshnode/meshnode/mesh/blobs"
)

// spawn runs one job in a child process.
func spawn(ctx context.Context, j job) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	in, err := json.Marshal(j)
	if err != nil {
		return result{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-child")
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	outb, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("child (%s): %w", j.Config, err)
	}
	var r result
	if err := json.Unmarshal(outb, &r); err != nil {
		return result{}, fmt.Errorf("child output: %w", err)
	}
	return r, nil
}

func runChild(ctx context.Context) error {
	var j job
	if err := json.NewDecoder(os.Stdin).Decode(&j); err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	cfg, err := configByName(j.Config)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "blobbench-child")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	bs := st.Blockstore()
	if j.MemStore {
		bs = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	}
	n, err := newNode(ctx, bs, cfg)
	if err != nil {
		return err
	}
	defer n.close()
	var infos []peer.AddrInfo
	for _, a := range j.Providers {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return err
		}
		if err := n.host.Connect(ctx, *ai); err != nil {
			return fmt.Errorf("connect to provider: %w", err)
		}
		infos = append(infos, *ai)
	}

	stopProfile, err := profileCPU("BLOBBENCH_CPUPROFILE") // a debugging aid: profile the fetches
	if err != nil {
		return err
	}
	defer stopProfile()
	var r result
	cpu0 := cpuSeconds()
	busy0, iowait0 := machineCPU()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := procStatus()
			if err == nil {
				r.PeakAnon = max(r.PeakAnon, st["RssAnon"])
				r.PeakFile = max(r.PeakFile, st["RssFile"])
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	for i, s := range j.Roots {
		if i > 0 && j.GapMillis > 0 {
			time.Sleep(time.Duration(j.GapMillis) * time.Millisecond) // pacing, not synchronisation
		}
		c, err := cid.Decode(s)
		if err != nil {
			return err
		}
		var last blobs.Progress
		start := time.Now()
		if j.Mode == "expert" || j.Mode == "expert-guided" {
			var guess cid.Cid
			if j.Mode == "expert-guided" {
				if guess, err = cid.Decode(j.Links[i]); err != nil {
					return err
				}
			}
			if err := fetchExpertLike(ctx, n.x, c, guess); err != nil {
				return err
			}
			r.Fetch = append(r.Fetch, time.Since(start).Seconds())
			continue
		}
		trace := os.Getenv("BLOBBENCH_TRACE") != ""
		prev := start
		if err := n.x.Fetch(ctx, c, func(p blobs.Progress) {
			last = p
			if now := time.Now(); trace && now.Sub(prev) > 3*time.Millisecond {
				logf("trace: block %d at %.1f ms after a %.1f ms gap", p.Blocks, 1e3*now.Sub(start).Seconds(), 1e3*now.Sub(prev).Seconds())
				prev = now
			} else {
				prev = now
			}
		}); err != nil {
			return err
		}
		r.Fetch = append(r.Fetch, time.Since(start).Seconds())
		r.Bytes += last.Bytes
	}
	r.CPU = cpuSeconds() - cpu0
	busy1, iowait1 := machineCPU()
	r.Busy, r.IOWait = busy1-busy0, iowait1-iowait0
	close(stop)
	<-sampled
	status, err := procStatus()
	if err != nil {
		return err
	}
	r.VmHWM = status["VmHWM"]
	if j.RawBytes > 0 {
		if r.RawSecs, err = rawStream(ctx, n.host, infos[0].ID, j.RawBytes); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// rawStream reads n bytes over one libp2p stream from p and returns the seconds it took.
func rawStream(ctx context.Context, h host.Host, p peer.ID, n int64) (float64, error) {
	start := time.Now()
	s, err := h.NewStream(ctx, p, rawProtocol)
	if err != nil {
		return 0, fmt.Errorf("open raw stream: %w", err)
	}
	defer s.Close()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, fmt.Errorf("raw stream: %w", err)
	}
	got, err := io.CopyBuffer(io.Discard, s, make([]byte, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("raw stream: %w", err)
	}
	if got != n {
		return 0, fmt.Errorf("raw stream: got %d bytes, want %d", got, n)
	}
	return time.Since(start).Seconds(), nil
}

// manifestLike is a manifest-sized block (about 1 KB, as an expert's manifest) that names
// the blob w, the way a manifest names its weights.
func manifestLike(w cid.Cid) io.Reader {
	return strings.NewReader(w.String() + "\n" + strings.Repeat("m", 1000))
}

// linkOf reads the CID a manifestLike block names.
func linkOf(b blocks.Block) (cid.Cid, error) {
	first, _, _ := strings.Cut(string(b.RawData()), "\n")
	return cid.Decode(first)
}

// fetchExpertLike fetches a manifestLike root and the blob it names, as the node fetches an
// expert: guided by a guess of the blob when one is defined, else one after the other.
func fetchExpertLike(ctx context.Context, x *blobs.Exchange, root, guess cid.Cid) error {
	return x.FetchGuided(ctx, root, guess, linkOf, nil) // guess undefined: the manifest, then the weights
}
