// Package netlab builds a small network lab out of Linux network namespaces so
// that tests can run mesh nodes ("hosts") on shaped links and behind NATs.
//
// A Lab owns everything it creates: one router namespace (<prefix>-inet) that
// plays the internet, one namespace per site (a public host or a NAT router),
// one namespace per host behind a NAT, the veth pairs between them, the
// iptables rules and tc qdiscs inside those namespaces, and one "delayer"
// goroutine per site in the test process. Close removes all of it; namespaces
// are named mnl-<lab>-<name> and New first deletes any leftover namespaces of
// the same lab name, so a crashed run does not break the next one.
//
// # Addresses
//
// libp2p treats private (10/8, 172.16/12, 192.168/16, 100.64/10) and
// documentation ranges as non-public, and AutoNAT, relays and hole punching
// only work with public addresses. The lab's internet therefore uses
// 7.0.<site>.0/24: site i gets its own /24 on its own veth to the router
// (router 7.0.i.1, site 7.0.i.2). These addresses exist only inside the lab's
// namespaces, which have no link and no route to the machine's real network.
// Hosts behind NAT site i live in 192.168.i.0/24 (NAT 192.168.i.1, hosts .2,
// .3, ...).
//
// # Link shaping
//
// Each site's Link is applied at the router in both directions, so a packet
// from site A to site B is delayed by dA+dB and the RTT is 2*(dA+dB).
//
//   - Delay: the kernel this was built for has no netem qdisc
//     (CONFIG_NET_SCH_NETEM unset, and no fq/fq_codel/prio either), so delay
//     is done with NFQUEUE: the router's mangle PREROUTING (-i site) and
//     POSTROUTING (-o site) send the site's packets to queue <site index>,
//     and a delayer in the test process holds each packet id and issues
//     NF_ACCEPT once the site's one-way delay has passed (FIFO per queue, so
//     packet order is kept). Only packet metadata is copied to user space.
//   - Loss: iptables "-m statistic --mode random" DROP rules in the router's
//     FORWARD chain, one per direction.
//   - Rate: a tbf qdisc on both ends of the site's veth.
//
// Segmentation offloads are limited on every veth (gso_max_size 1500,
// gso_max_segs 1, gro_max_size 1500) so that one packet seen by iptables and
// tc is one wire packet; otherwise loss would hit 64 KB GSO super-packets.
//
// Building a lab needs root, ip(8), iptables(8) (nf_tables backend is fine)
// and tc(8); Available reports whether they are there.
package netlab
