//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

const (
	nsPrefix = "mnl-"
	// routerName is the name of the router namespace's suffix; no site may use it.
	routerName = "inet"
	// maxSites bounds site indexes so that 7.0.<i>.0/24 and 192.168.<i>.0/24 stay valid.
	maxSites = 250
	// siteIf is the name of a site's uplink interface inside the site namespace.
	siteIf = "wan"
	// closeTimeout bounds how long Close spends deleting namespaces.
	closeTimeout = 30 * time.Second
)

// validName reports whether name is usable as a lab, site or host name: 1-16
// of [a-z0-9-], not starting with '-', so that the namespace names built from
// it stay short and need no quoting.
func validName(name string) bool {
	if name == "" || len(name) > 16 || name[0] == '-' {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Available reports nil when this machine can build labs (running as root,
// with ip, iptables and tc present), or an error naming what is missing.
func Available() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (euid is not 0)")
	}
	for _, tool := range []string{"ip", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		missing = append(missing, "network namespaces (/proc/self/ns/net)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("netlab: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// Lab is one isolated network: a router namespace and the sites and hosts
// attached to it. Its methods are safe for concurrent use.
type Lab struct {
	name   string
	router string // router namespace name

	mu         sync.Mutex
	closed     bool
	namespaces []string         // every namespace created, in creation order
	sites      map[string]*site // by site name
	hosts      map[string]bool  // every site and host name in use
	lastIndex  int              // the last site index handed out; never reused
}

// site is one namespace attached to the router: a public host or a NAT router.
type site struct {
	name    string
	index   int    // 1..maxSites: subnet 7.0.<index>.0/24 and NFQUEUE number
	ns      string // namespace name
	routeIf string // the site's interface name inside the router namespace
	ip      netip.Addr
	link    Link
	delayer *delayer
	nat     *NAT // nil for a public host
}

// Host is a namespace with one address in which node processes run.
type Host struct {
	Name string     // as passed to AddPublic or AddHost
	NS   string     // the network namespace's name (ip netns)
	IP   netip.Addr // its own address (public for AddPublic, private behind a NAT)
}

// New builds an empty lab: the router namespace, with forwarding on and the
// iptables chains for loss and partitions. name must be unique among the
// tests running at once; leftovers of an earlier lab of that name are removed
// first. On error nothing created is left behind.
func New(ctx context.Context, name string) (*Lab, error) {
	if !validName(name) {
		return nil, fmt.Errorf("netlab: lab name %q: want 1-16 of [a-z0-9-]", name)
	}
	if err := CleanStale(ctx, name); err != nil {
		return nil, err
	}
	l := &Lab{
		name:   name,
		router: nsName(name, routerName),
		sites:  map[string]*site{},
		hosts:  map[string]bool{routerName: true},
	}
	if err := l.setupRouter(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("netlab: new lab %s: %w", name, err), l.Close())
	}
	return l, nil
}

func (l *Lab) setupRouter(ctx context.Context) error {
	if err := l.addNS(ctx, l.router); err != nil {
		return err
	}
	if err := sysctl(ctx, l.router, "net.ipv4.ip_forward=1"); err != nil {
		return err
	}
	for _, chain := range []string{lossChain, partChain} {
		if err := ipt(ctx, l.router, "-N", chain); err != nil {
			return err
		}
		if err := ipt(ctx, l.router, "-A", "FORWARD", "-j", chain); err != nil {
			return err
		}
	}
	return nil
}

// CleanStale deletes every namespace left by an earlier lab named lab (for
// example after a test binary was killed).
func CleanStale(ctx context.Context, lab string) error {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return fmt.Errorf("netlab: listing namespaces: %w", err)
	}
	prefix := nsPrefix + lab + "-"
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], prefix) {
			continue
		}
		if _, err := run(ctx, "ip", "netns", "del", fields[0]); err != nil {
			errs = append(errs, fmt.Errorf("netlab: removing stale namespace: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close stops the delayers and deletes every namespace the lab created (their
// veths, rules and qdiscs go with them). It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, s := range l.sites {
		if s.delayer != nil {
			if err := s.delayer.Close(); err != nil {
				errs = append(errs, fmt.Errorf("netlab: stopping delayer of %s: %w", s.name, err))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for i := len(l.namespaces) - 1; i >= 0; i-- {
		if _, err := run(ctx, "ip", "netns", "del", l.namespaces[i]); err != nil {
			errs = append(errs, fmt.Errorf("netlab: closing lab %s: %w", l.name, err))
		}
	}
	l.namespaces = nil
	return errors.Join(errs...)
}

// addNS creates namespace ns, records it for Close and brings up its loopback.
// Callers hold l.mu (or own l exclusively, as New does).
func (l *Lab) addNS(ctx context.Context, ns string) error {
	if _, err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	l.namespaces = append(l.namespaces, ns)
	_, err := run(ctx, "ip", "-n", ns, "link", "set", "dev", "lo", "up")
	return err
}

// delNS deletes a namespace created by addNS, after a failed AddX. It runs
// even if ctx is already cancelled (that may be why AddX failed).
func (l *Lab) delNS(ctx context.Context, ns string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	for i, n := range l.namespaces {
		if n == ns {
			l.namespaces = append(l.namespaces[:i], l.namespaces[i+1:]...)
			_, err := run(ctx, "ip", "netns", "del", ns)
			return err
		}
	}
	return nil
}

// claim checks that the lab is open and name is free, and reserves it.
// Callers hold l.mu.
func (l *Lab) claim(name string) error {
	if l.closed {
		return errors.New("lab is closed")
	}
	if !validName(name) {
		return fmt.Errorf("name %q: want 1-16 of [a-z0-9-]", name)
	}
	if l.hosts[name] {
		return fmt.Errorf("name %q already in use", name)
	}
	l.hosts[name] = true
	return nil
}

func nsName(lab, name string) string { return nsPrefix + lab + "-" + name }

func sysctl(ctx context.Context, ns, setting string) error {
	_, err := inNS(ctx, ns, "sysctl", "-q", "-w", setting)
	return err
}

// addVeth creates a veth pair from nsA (named ifA) to nsB (named ifB), with
// segmentation offloads limited to one wire packet per skb on both ends.
func addVeth(ctx context.Context, nsA, ifA, nsB, ifB string) error {
	if _, err := run(ctx, "ip", "link", "add", "name", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	for _, end := range [][2]string{{nsA, ifA}, {nsB, ifB}} {
		if _, err := run(ctx, "ip", "-n", end[0], "link", "set", "dev", end[1],
			"gso_max_size", "1500", "gso_max_segs", "1", "gro_max_size", "1500"); err != nil {
			return err
		}
	}
	return nil
}

// addrUp assigns cidr to dev in ns and brings dev up.
func addrUp(ctx context.Context, ns, dev, cidr string) error {
	if _, err := run(ctx, "ip", "-n", ns, "addr", "add", cidr, "dev", dev); err != nil {
		return err
	}
	_, err := run(ctx, "ip", "-n", ns, "link", "set", "dev", dev, "up")
	return err
}

// AddPublic adds a host with a public address directly on the internet, its
// uplink shaped by link.
func (l *Lab) AddPublic(ctx context.Context, name string, link Link) (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.addSite(ctx, name, link)
	if err != nil {
		return nil, fmt.Errorf("netlab: adding public host %s: %w", name, err)
	}
	return &Host{Name: name, NS: s.ns, IP: s.ip}, nil
}

// addSite creates a site namespace, wires it to the router and shapes its
// link. On error the site's namespace is removed again. Callers hold l.mu.
func (l *Lab) addSite(ctx context.Context, name string, link Link) (s *site, err error) {
	if err := link.validate(); err != nil {
		return nil, err
	}
	if err := l.claim(name); err != nil {
		return nil, err
	}
	if l.lastIndex >= maxSites {
		delete(l.hosts, name)
		return nil, fmt.Errorf("more than %d sites", maxSites)
	}
	// Indexes are not reused after a failed addSite, so rules it may have
	// left in the router only name an interface that no longer exists.
	l.lastIndex++
	index := l.lastIndex
	s = &site{
		name:    name,
		index:   index,
		ns:      nsName(l.name, name),
		routeIf: fmt.Sprintf("site%d", index),
		ip:      netip.AddrFrom4([4]byte{7, 0, byte(index), 2}),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.removeSite(ctx, s))
		}
	}()
	if err := l.addNS(ctx, s.ns); err != nil {
		return s, err
	}
	if err := addVeth(ctx, s.ns, siteIf, l.router, s.routeIf); err != nil {
		return s, err
	}
	subnet := fmt.Sprintf("7.0.%d", index)
	if err := addrUp(ctx, l.router, s.routeIf, subnet+".1/24"); err != nil {
		return s, err
	}
	if err := addrUp(ctx, s.ns, siteIf, subnet+".2/24"); err != nil {
		return s, err
	}
	if _, err := run(ctx, "ip", "-n", s.ns, "route", "add", "default", "via", subnet+".1"); err != nil {
		return s, err
	}
	if s.delayer, err = newDelayer(l.router, uint16(index)); err != nil {
		return s, err
	}
	if err := l.shape(ctx, s, link); err != nil {
		return s, err
	}
	l.sites[name] = s
	return s, nil
}

// removeSite undoes a site whose setup failed: it stops the delayer and
// deletes the namespace (the router's end of the veth goes with it). Rules
// the site left in the router name an interface index that is never reused.
// Callers hold l.mu.
func (l *Lab) removeSite(ctx context.Context, s *site) error {
	var errs []error
	if s.delayer != nil {
		errs = append(errs, s.delayer.Close())
	}
	errs = append(errs, l.delNS(ctx, s.ns))
	delete(l.sites, s.name)
	delete(l.hosts, s.name)
	return errors.Join(errs...)
}
