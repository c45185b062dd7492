//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

const (
	// lossChain in the router's filter table holds one jump per site to
	// that site's loss chain.
	lossChain = "netlab-loss"
	// tbfLatency bounds how long a packet may wait in a tbf queue.
	tbfLatency = "50ms"
)

// Link describes a site's connection to the internet. Each field applies to
// each direction separately.
type Link struct {
	Delay    time.Duration // one-way delay added in each direction
	Loss     float64       // probability in [0, 1) that a packet is dropped, each direction
	RateMbit float64       // rate limit in Mbit/s, each direction; 0 = unlimited
}

func (k Link) validate() error {
	switch {
	case k.Delay < 0 || k.Delay > 10*time.Second:
		return fmt.Errorf("link delay %v: want 0..10s", k.Delay)
	case !(k.Loss >= 0 && k.Loss < 1):
		return fmt.Errorf("link loss %v: want [0, 1)", k.Loss)
	case !(k.RateMbit >= 0) || math.IsInf(k.RateMbit, 0):
		return fmt.Errorf("link rate %v Mbit/s: want >= 0", k.RateMbit)
	}
	return nil
}

// SetLink changes a site's link (a public host's or a NAT's) while traffic flows.
func (l *Lab) SetLink(ctx context.Context, site string, link Link) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("netlab: set link: lab is closed")
	}
	s, ok := l.sites[site]
	if !ok {
		return fmt.Errorf("netlab: set link: no site %q", site)
	}
	if err := link.validate(); err != nil {
		return fmt.Errorf("netlab: set link of %s: %w", site, err)
	}
	if err := l.shape(ctx, s, link); err != nil {
		return fmt.Errorf("netlab: set link of %s: %w", site, err)
	}
	return nil
}

// shape moves site s from s.link to link. Callers hold l.mu. For a new site
// s.link is the zero Link, and nothing of the shaping exists yet but the
// delayer.
func (l *Lab) shape(ctx context.Context, s *site, link Link) error {
	isNew := l.sites[s.name] == nil
	// Delay: queue the site's packets in both directions only while there is
	// a delay, so undelayed links cost no trip through user space.
	s.delayer.setDelay(link.Delay)
	if on, was := link.Delay > 0, s.link.Delay > 0 && !isNew; on != was {
		op := "-A"
		if !on {
			op = "-D"
		}
		q := strconv.Itoa(s.index)
		if err := ipt(ctx, l.router, "-t", "mangle", op, "PREROUTING", "-i", s.routeIf,
			"-j", "NFQUEUE", "--queue-num", q, "--queue-bypass"); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
		if err := ipt(ctx, l.router, "-t", "mangle", op, "POSTROUTING", "-o", s.routeIf,
			"-j", "NFQUEUE", "--queue-num", q, "--queue-bypass"); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
	}

	// Loss: one DROP rule per direction in the site's own chain.
	chain := "loss-" + s.routeIf
	if isNew {
		if err := ipt(ctx, l.router, "-N", chain); err != nil {
			return fmt.Errorf("loss: %w", err)
		}
		if err := ipt(ctx, l.router, "-A", lossChain, "-j", chain); err != nil {
			return fmt.Errorf("loss: %w", err)
		}
	}
	if link.Loss != s.link.Loss || isNew {
		if err := ipt(ctx, l.router, "-F", chain); err != nil {
			return fmt.Errorf("loss: %w", err)
		}
		if link.Loss > 0 {
			p := strconv.FormatFloat(link.Loss, 'f', -1, 64)
			for _, dir := range []string{"-i", "-o"} {
				if err := ipt(ctx, l.router, "-A", chain, dir, s.routeIf,
					"-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"); err != nil {
					return fmt.Errorf("loss: %w", err)
				}
			}
		}
	}

	// Rate: tbf on both ends of the site's veth.
	if link.RateMbit != s.link.RateMbit {
		for _, end := range [][2]string{{s.ns, siteIf}, {l.router, s.routeIf}} {
			if err := setRate(ctx, end[0], end[1], link.RateMbit); err != nil {
				return fmt.Errorf("rate: %w", err)
			}
		}
	}
	s.link = link
	return nil
}

// setRate puts a tbf of rateMbit on dev's egress, or removes it for 0.
func setRate(ctx context.Context, ns, dev string, rateMbit float64) error {
	if rateMbit == 0 {
		_, err := run(ctx, "tc", "-n", ns, "qdisc", "del", "dev", dev, "root")
		return err
	}
	bytesPerSec := rateMbit * 1e6 / 8
	// The bucket must hold at least a few full-size packets and what the
	// rate delivers in one timer tick (HZ may be as low as 100).
	burst := int(math.Max(bytesPerSec/100, 4*1514))
	kbit := strconv.FormatInt(int64(math.Round(rateMbit*1000)), 10) + "kbit"
	_, err := run(ctx, "tc", "-n", ns, "qdisc", "replace", "dev", dev, "root",
		"tbf", "rate", kbit, "burst", strconv.Itoa(burst), "latency", tbfLatency)
	return err
}
