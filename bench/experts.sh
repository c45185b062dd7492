#!/usr/bin/env bash
# Runs the micro-expert benchmarks (forward pass, gonum matrix multiply, training, safetensors,
# data loading) in one run and writes bench/results/experts.md and the raw output beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
raw="$out/experts.txt"
BENCHTIME=${BENCHTIME:-2s}
go test -run XXX -bench 'Forward|Dgemm|Train' -benchtime "$BENCHTIME" -count 1 ./experts/ | tee "$raw"
go test -run XXX -bench . -benchtime "$BENCHTIME" -count 1 ./experts/safetensors/ ./experts/dataset/ | tee -a "$raw"

{
	echo "# Micro-expert benchmarks"
	echo
	echo "Run: \`bash bench/experts.sh\` on $(date -u +%Y-%m-%d), $(grep -m1 '^cpu:' "$raw" | cut -d' ' -f2-), $(nproc) cores, $(go version | cut -d' ' -f3)."
	echo "Forward passes use dense random inputs; gonum's Dgemm on the same shapes is measured in the same run."
	echo
	echo "## Inference (784 inputs, 10 classes)"
	echo
	echo "| expert | batch | time/op | rows/s | GFLOP/s | gonum Dgemm of layer 1, GFLOP/s |"
	echo "| --- | --- | --- | --- | --- | --- |"
	awk '
	/^BenchmarkDgemm\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); for (i=1;i<=NF;i++) if ($(i+1)=="GFLOP/s") g[a[2]]=$i }
	/^BenchmarkForward\// {
		split($1, a, "/"); sub(/params=/, "", a[2]); b=a[3]; sub(/batch=/, "", b); sub(/-[0-9]+$/, "", b)
		for (i=1;i<=NF;i++) { if ($(i+1)=="ns/op") t=$i; if ($(i+1)=="GFLOP/s") gf=$i; if ($(i+1)=="rows/s") r=$i }
		shape = (a[2]=="10K") ? "256x784x12" : (a[2]=="50K") ? "256x784x63" : "256x784x126"
		rows[++n] = sprintf("| %s | %s | %.1f µs | %.0f | %.2f | SHAPE:%s |", a[2], b, t/1000, r, gf, shape)
	}
	END { for (i=1;i<=n;i++) { line=rows[i]; match(line, /SHAPE:[0-9x]+/); s=substr(line, RSTART+6, RLENGTH-6); sub(/SHAPE:[0-9x]+/, sprintf("%.2f", g[s]), line); print line } ;
	      printf "\ngonum Dgemm 512×512×512 on this machine: %.2f GFLOP/s\n", g["512x512x512"] }
	' "$raw"
	echo
	echo "## Training (784-100-10, Adam, batch 64, 4096 rows an epoch)"
	echo
	echo "| data | samples/s |"
	echo "| --- | --- |"
	awk '/^BenchmarkTrain\// { split($1, a, "="); sub(/-[0-9]+$/, "", a[2]); for (i=1;i<=NF;i++) if ($(i+1)=="samples/s") printf "| %s | %.0f |\n", a[2], $i }' "$raw"
	echo
	echo "## Codecs and data"
	echo
	echo "| benchmark | time/op | throughput |"
	echo "| --- | --- | --- |"
	awk '/^Benchmark(Decode|Encode|ReadHeader|LoadFashion|TextExtract)/ { t=""; m="";
		for (i=1;i<=NF;i++) { if ($(i+1)=="ns/op") t=$i; if ($(i+1)=="MB/s") m=$i }
		sub(/-[0-9]+$/, "", $1); printf "| %s | %.1f µs | %s |\n", $1, t/1000, (m=="" ? "-" : m " MB/s") }' "$raw"
} > "$out/experts.md"
echo "wrote $out/experts.md"
