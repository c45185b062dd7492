package node

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func sampleExposition(t *testing.T) []byte {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshnode_test_total", Help: "A counter."}, []string{"reason"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "meshnode_test_peers", Help: "A gauge."})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshnode_test_seconds", Help: "A histogram.", Buckets: []float64{0.01, 0.1}})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("stale, old=yes").Add(3)
	g.Set(5)
	h.Observe(0.05)
	h.Observe(0.5)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestMetricExportsParse writes every format and reads it back with a real parser of it.
func TestMetricExportsParse(t *testing.T) {
	prom := sampleExposition(t)
	now := time.Unix(1_800_000_000, 0)
	export := func(format string) []byte {
		var buf bytes.Buffer
		if err := ExportMetrics(prom, format, now, &buf); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		return buf.Bytes()
	}
	want := map[string]float64{"meshnode_test_total": 3, "meshnode_test_peers": 5, "meshnode_test_seconds_count": 2, "meshnode_test_seconds_sum": 0.55}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(bytes.NewReader(export("prometheus"))); err != nil {
		t.Fatalf("prometheus: %v", err)
	}

	var samples []MetricSample
	if err := json.Unmarshal(export("json"), &samples); err != nil {
		t.Fatalf("json: %v", err)
	}
	got := map[string]float64{}
	for _, s := range samples {
		got[s.Name] = s.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("json %s = %v, want %v", k, got[k], v)
		}
	}

	rows, err := csv.NewReader(bytes.NewReader(export("csv"))).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	if len(rows) != len(samples)+1 || strings.Join(rows[0], ",") != "name,type,labels,value" {
		t.Fatalf("csv has %d rows for %d samples, header %v", len(rows), len(samples), rows[0])
	}

	dec := lineprotocol.NewDecoderWithBytes(export("influx"))
	lines := 0
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatalf("influx line %d: %v", lines, err)
		}
		tags := map[string]string{}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatalf("influx tags: %v", err)
			}
			if k == nil {
				break
			}
			tags[string(k)] = string(v)
		}
		key, val, err := dec.NextField()
		if err != nil || string(key) != "value" {
			t.Fatalf("influx field: %s %v", key, err)
		}
		ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil || !ts.Equal(now) {
			t.Fatalf("influx time %v %v", ts, err)
		}
		if w, ok := want[string(m)]; ok && val.FloatV() != w {
			t.Errorf("influx %s = %v, want %v", m, val.FloatV(), w)
		}
		if string(m) == "meshnode_test_total" && tags["reason"] != "stale, old=yes" {
			t.Errorf("influx tag with escapes came back as %q", tags["reason"])
		}
		lines++
	}
	if lines != len(samples) {
		t.Fatalf("influx has %d lines for %d samples", lines, len(samples))
	}
	if err := ExportMetrics(prom, "xml", now, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "influx") {
		t.Fatalf("unknown format: %v", err)
	}
}
