#!/usr/bin/env bash
# The built-in detectors: detection and false-positive rates on public corpora (read in place from
# ../shared/data/payloads), then the criterion benches (a typical request; JSON bodies of 1, 10
# and 100 KB, which must cost time linear in their size).
#
#   bash bench/detect.sh [PAYLOADS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/data/payloads}"
echo "== corpora ($DATA)"
cargo run --release -q -p kevlar-detect --example corpus -- "$DATA"
echo
echo "== inspection cost (criterion)"
cargo bench -q -p kevlar-detect --bench inspect -- --noplot 2>&1 | grep -E "^[a-z_/0-9A-Z]+ +time:|time:|thrpt:" || true
