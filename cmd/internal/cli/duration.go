package cli

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/meshnode/meshnode/node"
)

// durationValue is a flag that takes what users type for a length of time: plain seconds
// ("5") or a Go duration ("90s", "2m"); see node.ParseDuration.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := node.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v durationValue) Type() string { return "duration" }

// durationFlag defines a duration flag that also takes plain seconds.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage+" (seconds, or a duration such as 90s or 2m)")
}
