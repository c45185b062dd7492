//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

const (
	// lanIf is the bridge inside a NAT namespace that its hosts attach to.
	lanIf = "lan"
	// maxHostsPerNAT keeps host addresses within 192.168.<i>.2-254.
	maxHostsPerNAT = 253
)

// NATKind is how a NAT maps and filters.
type NATKind int

const (
	// EndpointIndependent is MASQUERADE with port preservation: one external
	// port per local socket whatever the destination (endpoint-independent
	// mapping); inbound packets pass only for flows conntrack has seen go
	// out (address-and-port-dependent filtering). Hole punching works.
	EndpointIndependent NATKind = iota
	// Symmetric is MASQUERADE --random-fully: a new random external port per
	// destination (address-and-port-dependent mapping). Hole punching between
	// two of these fails.
	Symmetric
)

func (k NATKind) String() string {
	switch k {
	case EndpointIndependent:
		return "endpoint-independent"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// NAT is a site that routes a private home network to the internet.
type NAT struct {
	lab   *Lab
	site  *site
	kind  NATKind
	hosts int // hosts added so far
}

// AddNAT adds a NAT router site named name on link. Hosts added behind it
// (AddHost) reach the internet from its public address; unsolicited traffic
// from the internet is dropped.
func (l *Lab) AddNAT(ctx context.Context, name string, kind NATKind, link Link) (*NAT, error) {
	if kind != EndpointIndependent && kind != Symmetric {
		return nil, fmt.Errorf("netlab: adding NAT %s: unknown kind %v", name, kind)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.addSite(ctx, name, link)
	if err != nil {
		return nil, fmt.Errorf("netlab: adding NAT %s: %w", name, err)
	}
	n := &NAT{lab: l, site: s, kind: kind}
	if err := n.setup(ctx); err != nil {
		return nil, fmt.Errorf("netlab: adding NAT %s: %w", name, errors.Join(err, l.removeSite(ctx, s)))
	}
	s.nat = n
	return n, nil
}

func (n *NAT) setup(ctx context.Context) error {
	ns := n.site.ns
	if err := sysctl(ctx, ns, "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "-n", ns, "link", "add", "name", lanIf, "type", "bridge"); err != nil {
		return err
	}
	if err := addrUp(ctx, ns, lanIf, fmt.Sprintf("192.168.%d.1/24", n.site.index)); err != nil {
		return err
	}
	masq := []string{"-t", "nat", "-A", "POSTROUTING", "-o", siteIf, "-j", "MASQUERADE"}
	if n.kind == Symmetric {
		masq = append(masq, "--random-fully")
	}
	rules := [][]string{
		masq,
		{"-A", "FORWARD", "-i", lanIf, "-o", siteIf, "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", siteIf, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", siteIf, "-j", "DROP"},
		// The router itself answers nothing unsolicited from the internet either, as home
		// routers do: a reset for a SYN that arrives before the host's own SYN has opened the
		// mapping would end a TCP hole punch (simultaneous open).
		{"-A", "INPUT", "-i", siteIf, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", siteIf, "-j", "DROP"},
	}
	for _, r := range rules {
		if err := ipt(ctx, ns, r...); err != nil {
			return err
		}
	}
	return nil
}

// PublicIP is the NAT's address on the internet, the source its hosts'
// packets carry there.
func (n *NAT) PublicIP() netip.Addr { return n.site.ip }

// Name is the NAT's site name (for SetLink and Partition).
func (n *NAT) Name() string { return n.site.name }

// Kind is the NAT's mapping behaviour.
func (n *NAT) Kind() NATKind { return n.kind }

// AddHost adds a host behind the NAT, with the next free address of the
// NAT's 192.168.<i>.0/24 and the NAT as its default route.
func (n *NAT) AddHost(ctx context.Context, name string) (h *Host, err error) {
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		if err != nil {
			err = fmt.Errorf("netlab: adding host %s behind %s: %w", name, n.site.name, err)
		}
	}()
	if n.hosts >= maxHostsPerNAT {
		return nil, fmt.Errorf("more than %d hosts", maxHostsPerNAT)
	}
	if err := l.claim(name); err != nil {
		return nil, err
	}
	n.hosts++
	octet := n.hosts + 1
	ns := nsName(l.name, name)
	h = &Host{Name: name, NS: ns, IP: netip.AddrFrom4([4]byte{192, 168, byte(n.site.index), byte(octet)})}
	natIf := fmt.Sprintf("h%d", octet)
	if err := n.wireHost(ctx, h, natIf); err != nil {
		// The NAT end of the veth goes with the host's namespace.
		return nil, errors.Join(err, l.delNS(ctx, ns))
	}
	return h, nil
}

func (n *NAT) wireHost(ctx context.Context, h *Host, natIf string) error {
	l := n.lab
	if err := l.addNS(ctx, h.NS); err != nil {
		return err
	}
	if err := addVeth(ctx, h.NS, "eth0", n.site.ns, natIf); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "-n", n.site.ns, "link", "set", "dev", natIf, "master", lanIf, "up"); err != nil {
		return err
	}
	if err := addrUp(ctx, h.NS, "eth0", h.IP.String()+"/24"); err != nil {
		return err
	}
	gw := netip.AddrFrom4([4]byte{192, 168, byte(n.site.index), 1})
	_, err := run(ctx, "ip", "-n", h.NS, "route", "add", "default", "via", gw.String())
	return err
}
