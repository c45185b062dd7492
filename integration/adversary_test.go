package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/meshnode/meshnode/market/listing"
	"github.com/meshnode/meshnode/mesh"
	"github.com/meshnode/meshnode/mesh/advert"
	"github.com/meshnode/meshnode/mesh/blobs"
	"github.com/meshnode/meshnode/mesh/rpc"
	"github.com/meshnode/meshnode/node/api"
	"github.com/meshnode/meshnode/node/daemon"
	"github.com/meshnode/meshnode/routing"
)

// securityRow is one attack's line in bench/results/security.md.
type securityRow struct {
	attack, sent    string
	times           int
	peakMiB, p99MS  float64
	outcome         string
	honestFailures  int
	honestSucceeded int
}

// TestHostilePeer runs one victim daemon (a real process) and a hostile peer on a bare libp2p
// host that speaks the wire protocols directly. Each attack must be refused or contained: the
// victim's peak memory stays within its configured limit (mesh.max_memory_mib), it keeps
// answering an honest peer throughout, and what it did not expose stays unexposed. With
// MESHNODE_SECURITY_REPORT set, the rows are written there as markdown.
func TestHostilePeer(t *testing.T) {
	const memLimitMiB = 256 // the development preset's mesh.max_memory_mib
	repo := filepath.Join(t.TempDir(), "victim")
	cli(t, repo, "init", "--config", testConfig(t, 30*time.Second, 10*time.Second))
	served := trainTiny(t, repo, "iris-served")
	hidden := trainTiny(t, repo, "iris-hidden")
	var fm struct {
		ID string `json:"id"`
	}
	// An expert that takes images, for the decompression bomb: one that does not refuses
	// images before decoding them, which would prove nothing.
	cliJSON(t, repo, &fm, "expert", "train", "--dataset", "fashion-mnist", "--limit", "200", "--hidden", "8", "--epochs", "1", "--name", "fmnist-served")
	victim := startDaemon(t, repo)
	cli(t, repo, "expert", "serve", served)
	cli(t, repo, "expert", "serve", fm.ID)
	ai, err := peer.AddrInfoFromString(victim.tcpAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	mallory := blobNewNode(t, "mallory", blobs.DefaultConfig(), blobNodeOptions{})
	honest := blobNewNode(t, "honest", blobs.DefaultConfig(), blobNodeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, n := range []*blobNode{mallory, honest} {
		if err := n.host.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
	}
	honestClient := rpc.NewClient(honest.host, routing.QueryProtocol, 4<<20, 8)
	t.Cleanup(func() { honestClient.Close() })
	input := []float32{5.9, 3.0, 5.1, 1.8}
	ask := func(expert string) error {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		raw, err := honestClient.Call(qctx, ai.ID, routing.EncodeRequest(routing.Request{Expert: expert, Vector: input}))
		if err != nil {
			return err
		}
		resp, err := routing.DecodeResponse(raw)
		if err != nil {
			return err
		}
		if len(resp.Output) != 3 {
			return fmt.Errorf("answer with %d outputs, want 3", len(resp.Output))
		}
		return nil
	}
	if err := ask(served); err != nil {
		t.Fatalf("honest query before any attack: %v", err)
	}

	var rows []securityRow
	// during runs attack while the honest peer asks every 20 ms; it returns the honest
	// queries' p99 and how many of them failed.
	during := func(attack func()) (p99 time.Duration, ok, failed int) {
		stop := make(chan struct{})
		var lat []time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000; i++ { // bounded: at most a minute of honest traffic
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				t0 := time.Now()
				if err := ask(served); err != nil {
					failed++
					t.Logf("honest query during an attack: %v", err)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
		}()
		attack()
		time.Sleep(100 * time.Millisecond) // at least a few honest queries, also right after
		close(stop)
		wg.Wait()
		slices.Sort(lat)
		if len(lat) > 0 {
			p99 = lat[min(len(lat)-1, len(lat)*99/100)]
		}
		return p99, len(lat), failed
	}
	record := func(attack, sent string, times int, outcome string, p99 time.Duration, ok, failed int) {
		peak := peakMiB(t, victim)
		t.Logf("%s: %d× %s → %s; victim peak %.0f MiB; honest p99 %s (%d ok, %d failed)", attack, times, sent, outcome, peak, p99, ok, failed)
		if peak > memLimitMiB {
			t.Errorf("%s: victim's peak memory %.0f MiB is over its limit of %d MiB", attack, peak, memLimitMiB)
		}
		if failed > 0 || ok == 0 {
			t.Errorf("%s: the honest peer's queries: %d ok, %d failed", attack, ok, failed)
		}
		rows = append(rows, securityRow{attack: attack, sent: sent, times: times, peakMiB: peak,
			p99MS: float64(p99.Microseconds()) / 1000, outcome: outcome, honestSucceeded: ok, honestFailures: failed})
	}

	t.Run("query for an unserved expert", func(t *testing.T) {
		const n = 50
		var refused int
		p99, ok, failed := during(func() {
			for range n {
				_, err := rawQuery(ctx, mallory, ai.ID, routing.EncodeRequest(routing.Request{Expert: hidden, Vector: input}))
				if err != nil && strings.Contains(err.Error(), "does not serve") {
					refused++
				}
			}
		})
		if refused != n {
			t.Errorf("%d of %d queries for a hosted but unserved expert were refused", refused, n)
		}
		record("query for a hosted, unserved expert", "query request", n, fmt.Sprintf("%d of %d refused (\"does not serve it\")", refused, n), p99, ok, failed)
	})

	t.Run("bitswap fetch of an unserved expert", func(t *testing.T) {
		root, err := cid.Decode(hidden)
		if err != nil {
			t.Fatal(err)
		}
		var fetchErr error
		p99, ok, failed := during(func() {
			fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			fetchErr = mallory.x.Fetch(fctx, root, nil)
		})
		if fetchErr == nil {
			t.Fatal("the hostile peer fetched a hosted expert the victim does not serve")
		}
		// Control: the same peer gets the served expert, so the refusal above is the filter's.
		sroot, _ := cid.Decode(served)
		fctx, cfin := context.WithTimeout(ctx, 10*time.Second)
		defer cfin()
		if err := mallory.x.Fetch(fctx, sroot, nil); err != nil {
			t.Fatalf("fetch of the served expert: %v", err)
		}
		record("bitswap fetch of a hosted, unserved expert", "want-block for its manifest", 1,
			"refused (DONT_HAVE; fetch ended "+shortErr(fetchErr)+"); the served expert still fetched", p99, ok, failed)
	})

	t.Run("oversized frame header", func(t *testing.T) {
		const n = 200
		var refused int
		p99, ok, failed := during(func() {
			for range n {
				err := rawFrame(ctx, mallory, ai.ID, 1<<40, nil)
				if err != nil && strings.Contains(err.Error(), "too large") {
					refused++
				}
			}
		})
		if refused != n {
			t.Errorf("%d of %d frames declaring 1 TiB were refused as too large", refused, n)
		}
		record("oversized frame header", "frame declaring 1 TiB", n, fmt.Sprintf("%d of %d refused before any allocation", refused, n), p99, ok, failed)
	})

	t.Run("slow-loris streams", func(t *testing.T) {
		const n = 512 // more than the per-peer stream limit (128)
		var opened, reset int
		p99, ok, failed := during(func() {
			var streams []network.Stream
			for range n {
				s, err := mallory.host.NewStream(ctx, ai.ID, routing.QueryProtocol)
				if err != nil {
					reset++
					continue
				}
				// Declare a 1 MiB request and send 100 bytes of it, then stall.
				var hdr [1 + binary.MaxVarintLen64]byte
				hdr[0] = 1
				k := binary.PutUvarint(hdr[1:], 1<<20-1)
				if _, err := s.Write(append(hdr[:1+k], make([]byte, 100)...)); err != nil {
					reset++
					s.Reset()
					continue
				}
				streams = append(streams, s)
				opened++
			}
			time.Sleep(2 * time.Second) // the victim holds them while the honest peer asks
			for _, s := range streams {
				s.Reset()
			}
		})
		record("slow-loris streams", "query streams declaring 1 MiB, sending 100 bytes, then stalling", n,
			fmt.Sprintf("%d accepted and held at 100 bytes each (no 1 MiB buffers), %d refused by the stream limit", opened, reset), p99, ok, failed)
	})

	t.Run("decompression bomb", func(t *testing.T) {
		bomb := bombPNG(t)
		// A real 28×28 image is answered: the limit refuses bombs, not images.
		var small bytes.Buffer
		if err := png.Encode(&small, image.NewGray(image.Rect(0, 0, 28, 28))); err != nil {
			t.Fatal(err)
		}
		raw, err := rawQuery(ctx, mallory, ai.ID, routing.EncodeRequest(routing.Request{Expert: fm.ID, Image: small.Bytes()}))
		if err != nil {
			t.Fatalf("a 28×28 PNG for the image expert: %v", err)
		}
		if resp, err := routing.DecodeResponse(raw); err != nil || len(resp.Output) != 10 {
			t.Fatalf("a 28×28 PNG for the image expert: %+v, %v; want 10 outputs", resp, err)
		}
		const conc, each = 64, 8
		var mu sync.Mutex
		var refused, other int
		var sample string
		p99, ok, failed := during(func() {
			var wg sync.WaitGroup
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						_, err := rawQuery(ctx, mallory, ai.ID, routing.EncodeRequest(routing.Request{Expert: fm.ID, Image: bomb}))
						mu.Lock()
						if err != nil && strings.Contains(err.Error(), "pixel limit") {
							refused++
							sample = err.Error()
						} else {
							other++
							sample = fmt.Sprint(err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		})
		t.Logf("bomb refusal: %s", sample)
		if refused != conc*each {
			t.Errorf("%d of %d bombs refused by the pixel limit (%d otherwise)", refused, conc*each, other)
		}
		record("decompression bomb", fmt.Sprintf("%d KB PNG declaring 4096×4096 16-bit, %d streams at once", len(bomb)/1024, conc),
			conc*each, fmt.Sprintf("%d of %d refused from the header, before decoding", refused, conc*each), p99, ok, failed)
	})

	// floodTopic joins topic on a fresh bare host with its own key and gossipsub, connected to
	// the victim, and publishes n messages made by message, paced under gossipsub's queues so the
	// victim's caps (not a dropped queue) are what stop them.
	floodTopic := func(t *testing.T, topicName string, n int, message func(i int, k crypto.PrivKey) []byte, settled func() bool) {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		h, topic := gossipPeer(t, key, topicName)
		if err := h.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the flooder joins the victim on "+topicName, func() bool { return slices.Contains(topic.ListPeers(), ai.ID) })
		for i := range n {
			if err := topic.Publish(ctx, message(i, key)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		eventually(t, 10*time.Second, "the victim refuses part of the flood on "+topicName, settled)
	}
	flooded := func(i int) string {
		h, err := multihash.Sum([]byte(fmt.Sprint("flood", i)), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.DagCBOR, h).String()
	}

	t.Run("advert flood", func(t *testing.T) {
		const n = advert.DefaultPerProvider * 2
		var flooder string
		p99, ok, failed := during(func() {
			floodTopic(t, mesh.TopicAdverts, n, func(i int, k crypto.PrivKey) []byte {
				id, _ := peer.IDFromPrivateKey(k)
				flooder = id.String()
				return advertJSON(t, id, func(a *advert.Advert) { a.ID = flooded(i) })
			}, func() bool { return metricValue(t, repo, `meshnode_adverts_rejected_total{reason="table full"}`) >= 1 })
		})
		var entries []remoteEntry
		cliJSON(t, repo, &entries, "expert", "list", "--remote")
		held := 0
		for _, e := range entries {
			if e.Provider == flooder {
				held++
			}
		}
		refused := metricValue(t, repo, `meshnode_adverts_rejected_total{reason="table full"}`)
		if held > advert.DefaultPerProvider || refused < 1 {
			t.Errorf("the victim holds %d of %d flooded adverts (limit %d), refused %.0f as table full", held, n, advert.DefaultPerProvider, refused)
		}
		record("advert flood", "valid signed adverts for distinct experts from one peer", n,
			fmt.Sprintf("%d held (limit %d), %.0f refused", held, advert.DefaultPerProvider, refused), p99, ok, failed)
	})

	t.Run("listing flood", func(t *testing.T) {
		const n = 2 * 256 // twice the per-seller limit
		var flooder string
		penaltiesBefore := metricValue(t, repo, "meshnode_gossip_spam_penalties_total")
		p99, ok, failed := during(func() {
			floodTopic(t, daemon.TopicMarket, n, func(i int, k crypto.PrivKey) []byte {
				now := time.Now()
				l := &listing.Listing{V: listing.Version, Expert: flooded(i), Name: fmt.Sprint("spam", i), Domains: []string{"iris"},
					Price: 1, Time: now.UnixMilli(), Expires: now.Add(listing.MaxLifetime - time.Hour).UnixMilli()}
				if err := l.Sign(keySigner{k}); err != nil {
					t.Fatal(err)
				}
				flooder = l.Seller
				return (&listing.Message{Kind: listing.KindListing, Sent: now.UnixMilli(), Listing: l}).Encode()
			}, func() bool {
				return metricValue(t, repo, `meshnode_market_messages_rejected_total{reason="table full"}`) >= 1
			})
		})
		var ls []api.ListingView
		cliJSON(t, repo, &ls, "market", "list")
		held := 0
		for _, l := range ls {
			if l.Seller == flooder {
				held++
			}
		}
		refused := metricValue(t, repo, `meshnode_market_messages_rejected_total{reason="table full"}`)
		// Every listing over the seller's own limit costs its author gossip score.
		penalties := metricValue(t, repo, "meshnode_gossip_spam_penalties_total") - penaltiesBefore
		if held > 256 || refused < 1 || penalties < refused {
			t.Errorf("the victim lists %d of %d flooded listings (limit 256), refused %.0f as table full, penalised %.0f", held, n, refused, penalties)
		}
		record("listing flood", "valid signed year-long listings from one seller", n,
			fmt.Sprintf("%d held (limit 256), %.0f refused, each a gossip score penalty", held, refused), p99, ok, failed)
	})

	if path := os.Getenv("MESHNODE_SECURITY_REPORT"); path != "" {
		writeSecurityReport(t, path, rows)
	}
}

// rawQuery sends one request frame on a new query stream and reads the answer frame: the
// error frame's text as an error.
func rawQuery(ctx context.Context, n *blobNode, p peer.ID, payload []byte) ([]byte, error) {
	var out []byte
	err := rawFrame(ctx, n, p, uint64(len(payload)), func(r *bufio.Reader, kind byte, body []byte) error {
		out = body
		return nil
	}, payload...)
	return out, err
}

// rawFrame writes a request frame declaring size bytes and carrying payload, and reads one
// answer frame.
func rawFrame(ctx context.Context, n *blobNode, p peer.ID, size uint64, onAnswer func(*bufio.Reader, byte, []byte) error, payload ...byte) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := n.host.NewStream(sctx, p, routing.QueryProtocol)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = 1
	k := binary.PutUvarint(hdr[1:], size)
	if _, err := s.Write(append(hdr[:1+k], payload...)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	r := bufio.NewReader(s)
	kind, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	l, err := binary.ReadUvarint(r)
	if err != nil || l > 1<<20 {
		return fmt.Errorf("answer length %d: %v", l, err)
	}
	body := make([]byte, l)
	if _, err := io.ReadFull(r, body); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if kind == 3 {
		return errors.New(string(body))
	}
	if onAnswer != nil {
		return onAnswer(r, kind, body)
	}
	return nil
}

// bombPNG is a small PNG whose header declares 4096×4096 pixels of 16-bit grey: about 32 MiB
// once decoded (128 MiB as the RGBA64 a converter would make of it).
func bombPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, image.NewGray16(image.Rect(0, 0, 4096, 4096))); err != nil {
		t.Fatal(err)
	}
	if b.Len() > 128<<10 {
		t.Fatalf("the bomb is %d bytes; want a small file", b.Len())
	}
	return b.Bytes()
}

// peakMiB is the victim's peak resident memory so far (VmHWM).
func peakMiB(t *testing.T, d *daemonProc) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func writeSecurityReport(t *testing.T, path string, rows []securityRow) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# Attacks on one node\n\nMade by `make security` (TestHostilePeer in integration/adversary_test.go) on %s.\n\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("A victim daemon (a real process, development preset: mesh.max_memory_mib 256) and a hostile peer on a bare\n")
	b.WriteString("libp2p host speaking the wire protocols directly; an honest peer queries a served expert every 20 ms\n")
	b.WriteString("throughout. Peak memory is the victim's VmHWM (peak resident set since it started) after the attack.\n\n")
	b.WriteString("| attack | what was sent | times | victim peak MiB | honest p99 ms | honest ok / failed | outcome |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.1f | %d / %d | %s |\n", r.attack, r.sent, r.times, r.peakMiB, r.p99MS, r.honestSucceeded, r.honestFailures, r.outcome)
	}
	b.WriteString("\nAttacks checked by other tests of the same package (not timed here):\n\n")
	b.WriteString("- a provider answering with altered outputs while claiming top quality and no load: banned for that expert\n")
	b.WriteString("  after its first checked answers (TestLyingProviderIsBanned, liar_test.go);\n")
	b.WriteString("- fetching a bought or paid expert without a receipt from its seller, from the seller or from a buyer that\n")
	b.WriteString("  serves it: refused (TestMarket*, market_test.go and market_publisher_test.go);\n")
	b.WriteString("- forged, unsigned, oversized, malformed and stale adverts: rejected, and the sender's score falls\n")
	b.WriteString("  (TestAdvertValidatorRejectsBadAdverts); an advert flood graylists its author (TestAdvertFloodIsCappedAndCostsScore).\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
