#!/usr/bin/env bash
# The MoE analyzer (issue 8), in one run:
#   1. the quick analysis of a header-complete stand-in of the full Kimi-K2 checkpoint (61 sparse
#      shards, ~1 TB declared): its wall time, and the disk the stand-in really uses;
#   2. the standard analysis's scan rate over expert weights against a plain sequential read of
#      the same shard files, alternating in one benchmark (BenchmarkScanVsRead in distill/analyze),
#      with the page cache evicted before each pass ("cold", the case of a checkpoint larger than
#      memory) and without ("warm").
# Writes bench/results/analyze.md and the raw benchmark output beside it.
#
# A quicker run: BENCHTIME=3x bash bench/analyze.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-7x}
out=bench/results
mkdir -p "$out"
raw="$out/analyze.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/kimi-analyzer" ./cmd/kimi-analyzer
"$work/kimi-analyzer" --json testdata-checkpoint --kimi-k2-standin --output "$work/kimi" >"$work/standin.json"
tensors=$(grep '"tensors"' "$work/standin.json" | tr -dc 0-9)
apparent=$(du -sb --apparent-size "$work/kimi" | cut -f1)
ondisk=$(( $(du -sk "$work/kimi" | cut -f1) * 1024 ))
best=""
for _ in 1 2 3; do
	start=$(date +%s.%N)
	"$work/kimi-analyzer" analyze --model-path "$work/kimi" --depth quick --json >"$work/quick.json"
	end=$(date +%s.%N)
	t=$(echo "$end - $start" | bc)
	if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
done
total=$(grep -m1 '"total"' "$work/quick.json" | tr -dc 0-9)
activated=$(grep -m1 '"activated"' "$work/quick.json" | tr -dc 0-9)

go test -run XXX -bench ScanVsRead -benchtime "$BENCHTIME" -count 1 ./distill/analyze/ | tee "$raw"

metric() { awk -v b="$1" -v m="$2" '$1 ~ "^BenchmarkScanVsRead/"b"-" { for (i=1;i<=NF;i++) if ($(i+1)==m) print $i }' "$raw"; }
{
	echo "# MoE analyzer benchmarks"
	echo
	echo "Run: \`bash bench/analyze.sh\` on $(date -u +%Y-%m-%d), $(grep -m1 '^cpu:' "$raw" | cut -d' ' -f2-), $(nproc) cores, $(go version | cut -d' ' -f3); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "## Quick analysis of the Kimi-K2 stand-in"
	echo
	echo "| stand-in | declared size | disk used | quick analysis (best of 3, wall) | total params | activated params |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	printf "| 61 shards, %s tensors | %.1f GiB | %.1f MiB | %.2f s | %s | %s |\n" \
		"$tensors" \
		"$(echo "$apparent / 1073741824" | bc -l)" "$(echo "$ondisk / 1048576" | bc -l)" "$best" "$total" "$activated"
	echo
	echo "## Standard analysis: scan rate against a sequential read of the same files"
	echo
	echo "Checkpoint: random FP8 weights with 128×128 block scales in the Kimi-K2 layout and Kimi-K2's expert shape,"
	echo "one MoE layer of 15 routed and 1 shared expert of 3 × 7168 × 2048 (about 700 MB of expert weights, 800 MB"
	echo "of shards; Kimi-K2's 385 experts a layer keep the workers as evenly loaded as these 16). The scan"
	echo "covers the whole standard analysis: open, dequantisation, norms, near-zero share, stable rank (2 power"
	echo "iterations), outputs on 4 probes, similarity and clustering. Rates are medians over ${BENCHTIME%x} iterations that"
	echo "alternate read and scan."
	echo
	echo "| page cache | sequential read, MB/s | standard scan, MB/s | scan / read |"
	echo "| --- | ---: | ---: | ---: |"
	for c in cold warm; do
		printf "| %s | %.0f | %.0f | %.2f |\n" "$c" "$(metric $c read-MB/s)" "$(metric $c scan-MB/s)" "$(metric $c scan/read)"
	done
	echo
	cold=$(metric cold scan/read)
	if [ "$(echo "$cold >= 0.6" | bc -l)" = 1 ]; then verdict="met"; else verdict="not met"; fi
	echo "Goal (issue 8): cold scan ≥ 60% of the cold sequential read — $verdict in this run (ratio $(printf %.2f "$cold"))."
	echo
	echo "Cold: both passes start with the files evicted (posix_fadvise DONTNEED), so both read the disk, the"
	echo "case of a real 1 TB checkpoint, which no page cache holds. Warm: both read the page cache, so the scan is"
	echo "bound by its arithmetic (FP8 decoding, fused band by band with the pass that takes norms, the 4 probe"
	echo "products and the first power step; then one pass for the second power step) and stays well below a"
	echo "memory copy. Both cases run on a shared 2-core VM: repeated runs vary by about ±15%."
} >"$out/analyze.md"
echo "wrote $out/analyze.md"
