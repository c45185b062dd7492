#!/usr/bin/env bash
# The ledger's hot paths on this machine (market/ledger benchmarks): a purchase joining a book
# of 10,000 purchases, the closure a seller needs to check one payment, and a new book syncing
# the whole 20,000-entry book through the sync calls (signatures checked; bytes/sync is what
# the protocol carries); then the same sync between two daemons on loopback, over the sync
# protocol (integration TestLedgerSyncOfALargeBook). Writes bench/results/ledger.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/ledger.md
raw=$(go test -run XXX -bench 'AddPurchase|Closure|SyncBook|ReceiptsBeforePayments' -benchtime "${BENCHTIME:-5x}" -count "${COUNT:-3}" ./market/ledger/)
{
	echo "# Ledger benchmarks"
	echo
	echo "\`bash bench/ledger.sh\` on $(nproc) cores, $(date -u +%Y-%m-%d). A book of 10,000 purchases among 16 keys"
	echo "(20,000 entries; every chain depends on every other, the worst case for closures)."
	echo
	echo '```'
	echo "$raw" | grep -E '^(Benchmark|cpu|goos|goarch)'
	echo '```'
	echo
	echo "AddPurchase: sign and add one payment and its receipt (two ed25519 signatures and two checks)."
	echo "SyncBook: a new book asks for the heads and each chain in parts of 512, and adds every entry."
	echo "ReceiptsBeforePayments: 2,000 receipts, then the 2,000 payments they name in reverse order (a hostile"
	echo "order: each payment re-judges the receipt chain's tail), one Add each against one AddAll, as the daemon"
	echo "ingests a gossip bundle or a sync answer (signature checks cached: the judging is measured)."
} >"$out"
MESHNODE_LEDGER_SYNC_REPORT=$PWD/$out go test -count=1 -run TestLedgerSyncOfALargeBook ./integration/ >/dev/null
cat "$out"
