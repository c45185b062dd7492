#!/usr/bin/env bash
# Blob exchange on loopback (mesh/blobs over boxo bitswap), in one run: time to fetch a 400 KB
# blob and a 400 KB expert (p50/p99), fetch throughput of 64 MiB and 512 MiB blobs with boxo's
# defaults (its 256 KiB chunks included), boxo's exchange settings with the node's 1 MiB chunks,
# and the node's tuned settings, from one provider and from three at once, the raw
# throughput of one libp2p stream between the same hosts, and the fetching process's peak memory.
# Then `meshnode expert fetch` as users see it: two daemons as processes, 400 KB experts fetched
# through the API with and without an advert naming their weights (bench/expertfetch).
# Writes bench/results/blobs.md (and the run's log beside it).
#
# A quick run: SIZES=16MiB TRIALS=20 REPEAT=1 bash bench/blobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-64MiB,512MiB}
SMALL=${SMALL:-400KB}
TRIALS=${TRIALS:-200}
PROVIDERS=${PROVIDERS:-3}
REPEAT=${REPEAT:-5}
out=bench/results/blobs.md
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/blobbench" ./bench/blobbench
go build -o "$bin/expertfetch" ./bench/expertfetch
go build -o "$bin/meshnode" ./cmd/meshnode
mkdir -p bench/results
"$bin/blobbench" -sizes "$SIZES" -small "$SMALL" -trials "$TRIALS" -providers "$PROVIDERS" \
	-repeat "$REPEAT" -out "$out" 2>&1 | tee bench/results/blobs.log
"$bin/expertfetch" -bin "$bin/meshnode" -experts "$((TRIALS / 2))" -out "$out" 2>&1 | tee -a bench/results/blobs.log
