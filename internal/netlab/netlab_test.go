//go:build linux

package netlab

import (
	"io"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRTT(t *testing.T) {
	l := newLab(t, "rtt")
	ctx := testCtx(t)
	a := addPublic(t, l, "a", Link{Delay: 10 * time.Millisecond})
	b := addPublic(t, l, "b", Link{Delay: 15 * time.Millisecond})
	nat := addNAT(t, l, "n", EndpointIndependent, Link{Delay: 10 * time.Millisecond})
	h := addHost(t, nat, "h")
	srv := tcpServer(t, b, 4001, discard)

	check := func(what string, from *Host, lo, hi time.Duration) {
		t.Helper()
		m := medianConnect(t, from, srv, 10)
		t.Logf("%s: median TCP connect %v (want %v..%v)", what, m, lo, hi)
		if m < lo || m > hi {
			t.Errorf("%s: median TCP connect %v, want %v..%v", what, m, lo, hi)
		}
	}
	check("public 10ms -> public 15ms", a, 45*time.Millisecond, 120*time.Millisecond)
	check("NAT 10ms host -> public 15ms", h, 45*time.Millisecond, 120*time.Millisecond)

	if err := l.SetLink(ctx, "a", Link{}); err != nil {
		t.Fatal(err)
	}
	check("after SetLink(a, no delay)", a, 27*time.Millisecond, 45*time.Millisecond)
}

func TestLoss(t *testing.T) {
	l := newLab(t, "loss")
	const p, n = 0.05, 2000
	lossy := addPublic(t, l, "lossy", Link{Loss: p})
	clean := addPublic(t, l, "clean", Link{})
	rx := udpSocket(t, lossy, 5001)
	tx := udpSocket(t, clean, 0)

	done := make(chan int, 1)
	go func() {
		buf := make([]byte, 2048)
		got := 0
		for got < n {
			if err := rx.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
				break
			}
			if _, _, err := rx.ReadFromUDPAddrPort(buf); err != nil {
				break // idle for a second after the sender stopped, or closed
			}
			got++
		}
		done <- got
	}()
	to := netip.AddrPortFrom(lossy.IP, 5001)
	msg := make([]byte, 200)
	for i := range n {
		if _, err := tx.WriteToUDPAddrPort(msg, to); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // stay well below the receive buffer
		}
	}
	got := <-done
	mean, sd := n*(1-p), math.Sqrt(n*p*(1-p))
	t.Logf("received %d of %d (%.4f); expected %.0f ± %.1f (4σ = %.0f)", got, n, float64(got)/n, mean, sd, 4*sd)
	if math.Abs(float64(got)-mean) > 4*sd {
		t.Errorf("received %d of %d datagrams over a %.0f%% loss link, want %.0f ± %.0f", got, n, p*100, mean, 4*sd)
	}
}

func TestRate(t *testing.T) {
	l := newLab(t, "rate")
	const mbit = 20.0
	slow := addPublic(t, l, "slow", Link{RateMbit: mbit})
	fast := addPublic(t, l, "fast", Link{})

	type result struct {
		n       int64
		elapsed time.Duration
	}
	res := make(chan result, 1)
	srv := tcpServer(t, slow, 6001, func(c net.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		start := time.Now()
		n, _ := io.Copy(io.Discard, c)
		res <- result{n, time.Since(start)}
	})
	c, _, err := dial(fast, srv, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	r := <-res
	got := float64(r.n) * 8 / r.elapsed.Seconds() / 1e6
	t.Logf("bulk TCP over a %.0f Mbit/s link: %d bytes in %v = %.2f Mbit/s (%.2f×)", mbit, r.n, r.elapsed, got, got/mbit)
	if got < 0.6*mbit || got > 1.05*mbit {
		t.Errorf("throughput %.2f Mbit/s, want %.1f..%.1f", got, 0.6*mbit, 1.05*mbit)
	}
}

func TestNAT(t *testing.T) {
	l := newLab(t, "nat")
	s1 := addPublic(t, l, "s1", Link{})
	s2 := addPublic(t, l, "s2", Link{})
	srv1, srv2 := udpSocket(t, s1, 7001), udpSocket(t, s2, 7001)

	for _, kind := range []NATKind{EndpointIndependent, Symmetric} {
		t.Run(kind.String(), func(t *testing.T) {
			nat := addNAT(t, l, "n-"+kind.String()[:3], kind, Link{})
			home := addHost(t, nat, "h-"+kind.String()[:3])
			c := udpSocket(t, home, 0)
			seen := make([]netip.AddrPort, 2)
			for i, srv := range []*net.UDPConn{srv1, srv2} {
				to := netip.AddrPortFrom(netip.MustParseAddr(srv.LocalAddr().(*net.UDPAddr).IP.String()), 7001)
				if _, err := c.WriteToUDPAddrPort([]byte("hi"), to); err != nil {
					t.Fatal(err)
				}
				from, err := readFrom(srv, 2*time.Second)
				if err != nil {
					t.Fatalf("server %d: %v", i+1, err)
				}
				seen[i] = from
			}
			t.Logf("%s: local %v seen as %v by s1 and %v by s2", kind, c.LocalAddr(), seen[0], seen[1])
			for i, from := range seen {
				if from.Addr() != nat.PublicIP() {
					t.Errorf("server %d saw source %v, want the NAT's public IP %v", i+1, from.Addr(), nat.PublicIP())
				}
			}
			switch kind {
			case EndpointIndependent:
				if seen[0].Port() != seen[1].Port() {
					t.Errorf("endpoint-independent NAT used ports %d and %d for one socket", seen[0].Port(), seen[1].Port())
				}
			case Symmetric:
				if seen[0].Port() == seen[1].Port() {
					t.Errorf("symmetric NAT used port %d for both destinations", seen[0].Port())
				}
			}

			// A reply on the mapping gets home.
			if _, err := srv1.WriteToUDPAddrPort([]byte("reply"), seen[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := readFrom(c, 2*time.Second); err != nil {
				t.Errorf("reply from s1 on its own mapping did not arrive: %v", err)
			}
			// An unsolicited packet to the same public IP/port from another
			// public socket does not.
			other := udpSocket(t, s2, 0)
			if _, err := other.WriteToUDPAddrPort([]byte("unsolicited"), seen[0]); err != nil {
				t.Fatal(err)
			}
			if from, err := readFrom(c, 500*time.Millisecond); err == nil {
				t.Errorf("unsolicited packet from %v reached the home host", from)
			} else if !isTimeout(err) {
				t.Error(err)
			}
		})
	}
}

func TestPartition(t *testing.T) {
	l := newLab(t, "part")
	ctx := testCtx(t)
	a := addPublic(t, l, "a", Link{})
	b := addPublic(t, l, "b", Link{})
	nat := addNAT(t, l, "n", EndpointIndependent, Link{})
	h := addHost(t, nat, "h")
	srvB := tcpServer(t, b, 8001, discard)
	srvA := tcpServer(t, a, 8001, discard)

	reach := func(from *Host, to netip.AddrPort) bool {
		c, _, err := dial(from, to, 300*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	if !reach(a, srvB) || !reach(h, srvB) {
		t.Fatal("no connectivity before the partition")
	}
	if err := l.Partition(ctx, []string{"a"}, []string{"b", "n"}); err != nil {
		t.Fatal(err)
	}
	if reach(a, srvB) {
		t.Error("a reached b across the partition")
	}
	if reach(h, srvA) {
		t.Error("host behind n reached a across the partition")
	}
	if !reach(h, srvB) {
		t.Error("host behind n could not reach b (same side of the partition)")
	}
	if err := l.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if !reach(a, srvB) || !reach(h, srvA) {
		t.Error("connectivity not restored by Heal")
	}
}

func TestClose(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t)
	const name = "close"
	t.Cleanup(func() {
		_ = CleanStale(ctx, name)
		if left := labNamespaces(t, name); len(left) > 0 {
			t.Errorf("namespaces left: %v", left)
		}
	})
	// A namespace left by an earlier run is removed by New.
	if out, err := exec.Command("ip", "netns", "add", nsPrefix+name+"-stale").CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	before := runtime.NumGoroutine()
	l, err := New(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if left := labNamespaces(t, name); len(left) != 1 || left[0] != nsPrefix+name+"-inet" {
		t.Errorf("after New: namespaces %v, want only the router", left)
	}
	addPublic(t, l, "x", Link{Delay: time.Millisecond})
	if _, err := l.AddPublic(ctx, "x", Link{}); err == nil {
		t.Error("AddPublic with a duplicate name succeeded")
	}
	nat := addNAT(t, l, "n", Symmetric, Link{RateMbit: 5, Loss: 0.01})
	addHost(t, nat, "h")
	if _, err := nat.AddHost(ctx, "x"); err == nil {
		t.Error("AddHost with a duplicate name succeeded")
	}
	// A failure half-way through: the site's namespace already exists.
	foreign := nsPrefix + name + "-y"
	if out, err := exec.Command("ip", "netns", "add", foreign).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	if _, err := l.AddPublic(ctx, "y", Link{}); err == nil {
		t.Error("AddPublic over an existing namespace succeeded")
	} else {
		t.Logf("expected failure: %v", err)
	}
	if _, err := exec.Command("ip", "netns", "del", foreign).CombinedOutput(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddPublic(ctx, "bad name", Link{}); err == nil {
		t.Error("AddPublic with an invalid name succeeded")
	}
	if _, err := l.AddPublic(ctx, "z", Link{Loss: 1.5}); err == nil {
		t.Error("AddPublic with loss 1.5 succeeded")
	}
	if got := len(labNamespaces(t, name)); got != 4 {
		t.Errorf("%d namespaces before Close, want 4 (inet, x, n, h): %v", got, labNamespaces(t, name))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The delayers' goroutines end with Close.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Close, %d before New", n, before)
	}
	if left := labNamespaces(t, name); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
	if _, err := l.AddPublic(ctx, "w", Link{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("AddPublic after Close: %v, want a closed-lab error", err)
	}
	if _, err := New(ctx, "Bad_Name"); err == nil {
		t.Error("New with an invalid name succeeded")
	}
}
