package main

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// caseKey names one large-blob case.
type caseKey struct {
	size      int64
	config    string
	providers int
	mem       bool // the fetcher writes to an in-memory blockstore
}

// latencyRow is one small-blob case: a config, what was fetched, and the pause between fetches.
type latencyRow struct {
	config string
	mode   string
	gap    time.Duration
	res    result
}

// measurements is what one run measured, for the report.
type measurements struct {
	args               []string
	sizes              []int64
	small              int64
	trials, repeat     int
	loadStart, loadEnd string
	latency            []latencyRow
	runs               map[caseKey][]result
	order              []caseKey // the large-blob cases in the order they were first run
}

// medianRate is the median fetch rate of a case in MiB/s, 0 if it was not run.
func (m *measurements) medianRate(k caseKey) float64 {
	var rates []float64
	for _, r := range m.runs[k] {
		rates = append(rates, mibps(k.size, r.Fetch[0]))
	}
	slices.Sort(rates)
	return median(rates)
}

// rawMedian is the median raw stream rate measured with blobs of size, in MiB/s.
func (m *measurements) rawMedian(size int64) float64 {
	var rates []float64
	for k, rs := range m.runs {
		if k.size == size {
			for _, r := range rs {
				if r.RawSecs > 0 {
					rates = append(rates, mibps(size, r.RawSecs))
				}
			}
		}
	}
	slices.Sort(rates)
	return median(rates)
}

// machineMsPerMiB is the whole machine's busy CPU time per MiB fetched in one run of a case:
// the providers, the fetcher, the kernel's work for both, and whatever else ran meanwhile.
func machineMsPerMiB(k caseKey, r result) float64 { return 1e3 * r.Busy / mib(k.size) }

// report writes the markdown report.
func (m *measurements) report() []byte {
	var b bytes.Buffer
	cores := runtime.NumCPU()
	fmt.Fprintf(&b, "# Blob exchange (mesh/blobs over boxo bitswap)\n\n")
	fmt.Fprintf(&b, "Run: `%s` on %s, %d cores, %s, loopback TCP (libp2p default security and yamux);\n",
		strings.Join(append([]string{"blobbench"}, m.args...), " "), time.Now().UTC().Format("2006-01-02"),
		cores, runtime.Version())
	fmt.Fprintf(&b, "load average (1, 5, 15 min) %s at the start and %s at the end (other work shares the machine).\n",
		m.loadStart, m.loadEnd)
	fmt.Fprintf(&b, "The providers run in the benchmark process; every fetch runs in a child process with an empty badger\n")
	fmt.Fprintf(&b, "store (experts/store: synced writes), connected to the providers, so its memory is the fetching node's alone.\n")
	fmt.Fprintf(&b, "Budgets: tuned ≥ 2× default and ≥ 1/3 of the raw stream; %s fetch p50 < 20 ms; peak memory < 256 MiB for 512 MiB.\n\n", human(m.small))
	m.writeLatency(&b)
	m.writeThroughput(&b, cores)
	m.writeLimits(&b, cores)
	m.writeBudgets(&b)
	return b.Bytes()
}

func (m *measurements) writeLatency(b *bytes.Buffer) {
	small := human(m.small)
	fmt.Fprintf(b, "## Time to fetch a %s blob or expert from a connected peer, %d distinct ones\n\n", small, m.trials)
	fmt.Fprintf(b, "An expert is a manifest-sized block naming its %s weights blob: fetched as `expert fetch` does without an\n", small)
	fmt.Fprintf(b, "advert (the manifest, then the weights it names; tuned: through the exchange's second bitswap client) and\n")
	fmt.Fprintf(b, "guided, as with an advert or a job announcement naming the weights (both asked for in one request; the\n")
	fmt.Fprintf(b, "manifest decides). With boxo's 256 KiB chunks a %s blob is a root and two leaves; with the node's 1 MiB\n", small)
	fmt.Fprintf(b, "chunks, one block. Back to back, every fetch waits for boxo's 20 ms between two want messages to a peer\n")
	fmt.Fprintf(b, "(the cancels a fetch sends once its blocks have arrived are messages too).\n\n")
	fmt.Fprintf(b, "| config | what | fetches | p50 | p99 | max |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, l := range m.latency {
		d := slices.Clone(l.res.Fetch)
		slices.Sort(d)
		how := "back to back"
		if l.gap > 0 {
			how = fmt.Sprintf("%d ms apart", l.gap.Milliseconds())
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.2f ms | %.2f ms | %.2f ms |\n", l.config, l.mode, how, 1e3*quantile(d, 0.5),
			1e3*quantile(d, 0.99), 1e3*d[len(d)-1])
	}
}

func (m *measurements) writeThroughput(b *bytes.Buffer, cores int) {
	fmt.Fprintf(b, "\n## Fetch throughput (median of %d runs; raw = one libp2p stream between the same two hosts, same run)\n\n", m.repeat)
	fmt.Fprintf(b, "| blob | config | providers | fetcher's store | median time | MiB/s | runs, MiB/s | × default | raw stream MiB/s | ÷ raw | fetcher CPU, ms/MiB | machine CPU, ms/MiB | cores busy (of %d) | cores in I/O wait | VmHWM | peak anon RSS | peak file RSS |\n", cores)
	fmt.Fprintf(b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, k := range m.order {
		rate := m.medianRate(k)
		var all []string
		var vm, anon, file int64
		var times, cpus, machine, busy, iowait []float64
		for _, r := range m.runs[k] {
			all = append(all, fmt.Sprintf("%.0f", mibps(k.size, r.Fetch[0])))
			vm, anon, file = max(vm, r.VmHWM), max(anon, r.PeakAnon), max(file, r.PeakFile)
			times = append(times, r.Fetch[0])
			cpus = append(cpus, 1e3*r.CPU/mib(k.size))
			machine = append(machine, machineMsPerMiB(k, r))
			busy = append(busy, r.Busy/r.Fetch[0])
			iowait = append(iowait, r.IOWait/r.Fetch[0])
		}
		for _, s := range [][]float64{times, cpus, machine, busy, iowait} {
			slices.Sort(s)
		}
		vsDefault := "-"
		if d := m.medianRate(caseKey{k.size, "default", k.providers, k.mem}); d > 0 {
			vsDefault = fmt.Sprintf("%.2f", rate/d)
		}
		raw := m.rawMedian(k.size)
		where := "badger"
		if k.mem {
			where = "in memory"
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %.2f s | %.0f | %s | %s | %.0f | %.2f | %.1f | %.1f | %.2f | %.2f | %.0f MiB | %.0f MiB | %.0f MiB |\n",
			human(k.size), k.config, k.providers, where, median(times), rate, strings.Join(all, ", "), vsDefault, raw,
			rate/raw, median(cpus), median(machine), median(busy), median(iowait), mib(vm), mib(anon), mib(file))
	}
	fmt.Fprintf(b, "\nMachine CPU is the busy time of all %d cores during the fetch (/proc/stat: the providers, the fetcher,\n", cores)
	fmt.Fprintf(b, "the kernel's work for both, and anything else that ran meanwhile) per MiB fetched.\n")
	fmt.Fprintf(b, "VmHWM is the fetching process's peak resident set; it counts the pages of badger's memory-mapped value log\n")
	fmt.Fprintf(b, "(file-backed page cache the kernel can reclaim), shown apart as peak file RSS. Peak anon RSS is the process's\n")
	fmt.Fprintf(b, "own memory (Go heap with its GC headroom, stacks). Both peaks are sampled every 10 ms.\n")
}

// span is the lowest and highest of a set of values.
type span struct{ lo, hi float64 }

func newSpan() span { return span{math.Inf(1), math.Inf(-1)} }

func (s *span) add(v float64) { s.lo, s.hi = min(s.lo, v), max(s.hi, v) }

func (s span) String() string { return s.format("%.2f", "") }

// format writes the span with verb, unit after each number: one number when lo and hi agree.
func (s span) format(verb, unit string) string {
	lo, hi := fmt.Sprintf(verb, s.lo), fmt.Sprintf(verb, s.hi)
	if lo == hi {
		return lo + unit
	}
	return lo + unit + " to " + hi + unit
}

// writeLimits says what limits the tuned rate, from this run's numbers: the share of the cores
// busy, and the rate the tuned fetch would reach with every core busy at its measured CPU cost
// per MiB (the cap the machine puts on it), against the default's measured rate.
func (m *measurements) writeLimits(b *bytes.Buffer, cores int) {
	tunedBusy, defaultBusy := newSpan(), newSpan()
	capRate, capVsDefault, shareOfCap := newSpan(), newSpan(), newSpan()
	for _, k := range m.order {
		if k.mem || k.config != "tuned" && k.config != "default" {
			continue
		}
		var busy, machine []float64
		for _, r := range m.runs[k] {
			busy = append(busy, r.Busy/r.Fetch[0])
			machine = append(machine, machineMsPerMiB(k, r))
		}
		slices.Sort(busy)
		slices.Sort(machine)
		if k.config == "default" {
			defaultBusy.add(median(busy))
			continue
		}
		tunedBusy.add(median(busy))
		if ms := median(machine); ms > 0 {
			c := float64(cores) * 1e3 / ms
			capRate.add(c)
			shareOfCap.add(m.medianRate(k) / c)
			if d := m.medianRate(caseKey{k.size, "default", k.providers, false}); d > 0 {
				capVsDefault.add(c / d)
			}
		}
	}
	fmt.Fprintf(b, "\nWhat limits the tuned rate: mostly the machine's CPU. The providers and the fetching process share\n")
	fmt.Fprintf(b, "its %d cores, and every byte is encrypted, decrypted, hashed by bitswap (sha-256, to derive the CID),\n", cores)
	fmt.Fprintf(b, "copied through yamux and protobuf buffers on both sides and into and out of badger's value log, whose\n")
	fmt.Fprintf(b, "writes are synced. During a tuned fetch into badger %s of the %d cores are busy (boxo's\n", tunedBusy, cores)
	fmt.Fprintf(b, "defaults: %s, waiting on one synced write per block); the rest is the pipeline's waits:\n", defaultBusy)
	fmt.Fprintf(b, "synced writes (I/O wait in the table), and boxo's client, which sends a peer at most one message\n")
	fmt.Fprintf(b, "of wants every 20 ms. That hold also costs a multi-block fetch about 20 ms at its start (the leaves\n")
	fmt.Fprintf(b, "can only be asked for once the root has arrived), and, with boxo's one client, an expert fetched by\n")
	fmt.Fprintf(b, "its ID alone 20 ms (the weights can only be asked for once the manifest has arrived); the tuned\n")
	fmt.Fprintf(b, "config asks for them through a second client. Into an in-memory blockstore the same fetches run\n")
	fmt.Fprintf(b, "faster, which is what the synced badger store costs.\n")
	if capRate.hi > 0 {
		fmt.Fprintf(b, "\nThe cap this machine puts on the tuned rate: with all %d cores busy at the machine CPU per MiB measured\n", cores)
		fmt.Fprintf(b, "above, a tuned fetch into badger would run at %s, %s the default's measured rate.\n",
			capRate.format("%.0f", " MiB/s"), capVsDefault.format("%.2f", "×"))
		pct := span{100 * shareOfCap.lo, 100 * shareOfCap.hi}
		fmt.Fprintf(b, "It ran at %s of that cap.\n", pct.format("%.0f", "%"))
	}
}

func (m *measurements) writeBudgets(b *bytes.Buffer) {
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintf(b, "\n## Budgets in this run\n\n| budget | measured | |\n| --- | --- | --- |\n")
	for _, size := range m.sizes {
		t, d := m.medianRate(caseKey{size, "tuned", 1, false}), m.medianRate(caseKey{size, "default", 1, false})
		if t > 0 && d > 0 {
			fmt.Fprintf(b, "| tuned ≥ 2× default, %s | %.2f× | %s |\n", human(size), t/d, mark(t >= 2*d))
		}
		if raw := m.rawMedian(size); t > 0 && raw > 0 {
			fmt.Fprintf(b, "| tuned ≥ 1/3 of the raw stream, %s | %.2f | %s |\n", human(size), t/raw, mark(3*t >= raw))
		}
	}
	for _, l := range m.latency {
		if l.config != "tuned" {
			continue
		}
		d := slices.Clone(l.res.Fetch)
		slices.Sort(d)
		how := "back to back"
		if l.gap > 0 {
			how = "isolated"
		}
		fmt.Fprintf(b, "| %s %s fetch p50 < 20 ms, %s | %.2f ms | %s |\n", human(m.small), l.mode, how, 1e3*quantile(d, 0.5), mark(quantile(d, 0.5) < 0.020))
	}
	for _, size := range m.sizes {
		var vm, anon int64
		for k, rs := range m.runs {
			if k.size == size && !k.mem {
				for _, r := range rs {
					vm, anon = max(vm, r.VmHWM), max(anon, r.PeakAnon)
				}
			}
		}
		fmt.Fprintf(b, "| peak memory < 256 MiB, %s: VmHWM | %.0f MiB | %s |\n", human(size), mib(vm), mark(vm < 256<<20))
		fmt.Fprintf(b, "| peak memory < 256 MiB, %s: anonymous (the process's own) | %.0f MiB | %s |\n", human(size), mib(anon), mark(anon < 256<<20))
	}
}
