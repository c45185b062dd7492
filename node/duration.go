package node

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseDuration reads what users type for a length of time: a Go duration ("90s", "2m",
// "1h30m") or plain seconds ("5", "2.5"), as the design writes `--interval S`.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("duration %q: seconds out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want seconds (5, 2.5) or a duration with a unit (90s, 2m, 1h30m)", s)
	}
	return d, nil
}

// durationPaths lists the dotted YAML paths of t's time.Duration fields.
func durationPaths(t reflect.Type, prefix string, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			out[path] = true
		case f.Type.Kind() == reflect.Struct:
			durationPaths(f.Type, path, out)
		}
	}
}

// configDurations are the config's duration fields.
func configDurations() map[string]bool {
	out := map[string]bool{}
	durationPaths(reflect.TypeOf(Config{}), "", out)
	return out
}

// secondsAsDurations rewrites plain numbers given for duration fields as seconds ("5" is
// "5s"; yaml would read it as 5 nanoseconds).
func secondsAsDurations(n *yaml.Node) {
	paths := configDurations()
	walkConfig(n, "", func(path string, _, val *yaml.Node) {
		if paths[path] && val.Kind == yaml.ScalarNode {
			if _, err := strconv.ParseFloat(strings.TrimSpace(val.Value), 64); err == nil {
				val.Value, val.Tag, val.Style = strings.TrimSpace(val.Value)+"s", "!!str", 0
			}
		}
	})
}
