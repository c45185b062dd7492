//go:build linux

package netlab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// newLab builds a lab for one test, skipping when the machine cannot, and
// checks at cleanup that none of its namespaces is left.
func newLab(t *testing.T, name string) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := New(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := labNamespaces(t, name); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	return l
}

// labNamespaces lists the namespaces of lab name that exist now.
func labNamespaces(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], nsPrefix+name+"-") {
			left = append(left, f[0])
		}
	}
	return left
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func addPublic(t *testing.T, l *Lab, name string, link Link) *Host {
	t.Helper()
	h, err := l.AddPublic(testCtx(t), name, link)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func addNAT(t *testing.T, l *Lab, name string, kind NATKind, link Link) *NAT {
	t.Helper()
	n, err := l.AddNAT(testCtx(t), name, kind, link)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func addHost(t *testing.T, n *NAT, name string) *Host {
	t.Helper()
	h, err := n.AddHost(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tcpServer listens on h's port and runs handle for each connection until
// the test ends; cleanup closes the listener and waits for every handler.
func tcpServer(t *testing.T, h *Host, port int, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.IP, uint16(port)).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return netip.AddrPortFrom(h.IP, uint16(port))
}

// dial connects from h to addr and reports how long the handshake took.
func dial(h *Host, addr netip.AddrPort, timeout time.Duration) (net.Conn, time.Duration, error) {
	var c net.Conn
	var took time.Duration
	err := h.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		start := time.Now()
		var err error
		c, err = d.Dial("tcp4", addr.String())
		took = time.Since(start)
		return err
	})
	return c, took, err
}

// medianConnect is the median of n TCP connect times from h to addr.
func medianConnect(t *testing.T, h *Host, addr netip.AddrPort, n int) time.Duration {
	t.Helper()
	times := make([]time.Duration, 0, n)
	for range n {
		c, took, err := dial(h, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connect %s -> %v: %v", h.Name, addr, err)
		}
		c.Close()
		times = append(times, took)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[n/2]
}

// udpSocket opens an unconnected UDP socket in h on port (0 = any).
func udpSocket(t *testing.T, h *Host, port int) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(h.IP, uint16(port))))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrom waits up to timeout for one datagram on c.
func readFrom(c *net.UDPConn, timeout time.Duration) (netip.AddrPort, error) {
	buf := make([]byte, 2048)
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return netip.AddrPort{}, err
	}
	_, from, err := c.ReadFromUDPAddrPort(buf)
	return from, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// discard reads c to EOF.
func discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
