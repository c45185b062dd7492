package node

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricFormats are the formats ExportMetrics writes.
var MetricFormats = []string{"prometheus", "json", "csv", "influx"}

// MetricSample is one metric value with its labels, as the JSON and CSV exports write it.
type MetricSample struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// ExportMetrics converts Prometheus text exposition (what a daemon's /metrics serves) into
// format, with every sample stamped at now (for influx).
func ExportMetrics(prom []byte, format string, now time.Time, w io.Writer) error {
	if format == "prometheus" {
		_, err := w.Write(prom)
		return err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(prom))
	if err != nil {
		return fmt.Errorf("parse metrics: %w", err)
	}
	samples := flatten(families)
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(samples)
	case "csv":
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"name", "type", "labels", "value"})
		for _, s := range samples {
			_ = cw.Write([]string{s.Name, s.Type, labelString(s.Labels, ";"), strconv.FormatFloat(s.Value, 'g', -1, 64)})
		}
		cw.Flush()
		return cw.Error()
	case "influx":
		for _, s := range samples {
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
				continue // the line protocol has no NaN or infinity
			}
			if _, err := fmt.Fprintf(w, "%s%s value=%s %d\n", influxEscape(s.Name, ", "), influxTags(s.Labels),
				strconv.FormatFloat(s.Value, 'g', -1, 64), now.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown metrics format %q (want %s)", format, strings.Join(MetricFormats, ", "))
}

// flatten turns metric families into samples, expanding histograms and summaries into their
// _bucket/_sum/_count (or quantile) series as Prometheus names them. Sorted by name and labels.
func flatten(families map[string]*dto.MetricFamily) []MetricSample {
	var out []MetricSample
	for name, f := range families {
		typ := strings.ToLower(f.GetType().String())
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			add := func(suffix string, extra map[string]string, v float64) {
				ls := labels
				if extra != nil {
					ls = map[string]string{}
					for k, x := range labels {
						ls[k] = x
					}
					for k, x := range extra {
						ls[k] = x
					}
				}
				out = append(out, MetricSample{Name: name + suffix, Type: typ, Labels: ls, Value: v})
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				add("", nil, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", nil, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add("", nil, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add("_bucket", map[string]string{"le": strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)}, float64(b.GetCumulativeCount()))
				}
				add("_bucket", map[string]string{"le": "+Inf"}, float64(h.GetSampleCount()))
				add("_sum", nil, h.GetSampleSum())
				add("_count", nil, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add("", map[string]string{"quantile": strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)}, q.GetValue())
				}
				add("_sum", nil, s.GetSampleSum())
				add("_count", nil, float64(s.GetSampleCount()))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return labelString(out[i].Labels, ",") < labelString(out[j].Labels, ",")
	})
	return out
}

func labelString(l map[string]string, sep string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, sep)
}

// influxTags renders labels as line-protocol tags, sorted by key (as InfluxDB prefers); empty
// values are left out (the protocol has no empty tag values).
func influxTags(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k, v := range l {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("," + influxEscape(k, ",= ") + "=" + influxEscape(l[k], ",= "))
	}
	return b.String()
}

// influxEscape backslash-escapes the characters special in a line-protocol position.
func influxEscape(s, special string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\\' || strings.ContainsRune(special, r) {
			b.WriteByte('\\')
		}
		if r == '\n' {
			b.WriteString(`\n`)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
