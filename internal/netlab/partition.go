//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
)

// partChain in the router's filter table holds the partition DROP rules.
const partChain = "netlab-part"

// Partition cuts the router's forwarding between the sites in a and the
// sites in b (public host names or NAT names), in both directions, until
// Heal. Hosts behind a NAT are cut with their NAT. Partitions add up.
func (l *Lab) Partition(ctx context.Context, a, b []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("netlab: partition: lab is closed")
	}
	ifs := func(names []string) ([]string, error) {
		out := make([]string, 0, len(names))
		for _, n := range names {
			s, ok := l.sites[n]
			if !ok {
				return nil, fmt.Errorf("netlab: partition: no site %q", n)
			}
			out = append(out, s.routeIf)
		}
		return out, nil
	}
	ia, err := ifs(a)
	if err != nil {
		return err
	}
	ib, err := ifs(b)
	if err != nil {
		return err
	}
	for _, x := range ia {
		for _, y := range ib {
			for _, pair := range [][2]string{{x, y}, {y, x}} {
				if err := ipt(ctx, l.router, "-A", partChain, "-i", pair[0], "-o", pair[1], "-j", "DROP"); err != nil {
					return fmt.Errorf("netlab: partition: %w", err)
				}
			}
		}
	}
	return nil
}

// Heal removes every partition.
func (l *Lab) Heal(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("netlab: heal: lab is closed")
	}
	if err := ipt(ctx, l.router, "-F", partChain); err != nil {
		return fmt.Errorf("netlab: heal: %w", err)
	}
	return nil
}
