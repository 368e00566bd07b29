#!/usr/bin/env bash
# The breached-password index on N generated hashes (default 100,000,000), in one run: import rate
# (parse + build; target ≥ 5 M hashes/s), bytes per hash (target ≤ 2.5), single-threaded lookups
# (target ≥ 1 M/s), the false-positive rate measured against the stated 2^-17, and the RSS of a
# process serving the index.
#
#   bash bench/breach.sh [N]        (needs about 4.5 GB of free disk per 100 M hashes, briefly)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000000}"
cargo build --release -q --example breach_bench -p kevlar-breach
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
./target/release/examples/breach_bench build "$N" "$WORK"
./target/release/examples/breach_bench serve "$WORK"
