#!/usr/bin/env bash
# kevlar audit at OSV scale (see bench/audit.py). Reads ../shared/data in place.
#   bash bench/audit.sh [TOTAL_RECORDS]      (default 230000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
python3 bench/audit.py "$PWD/target/release/kevlar" "$PWD/../shared/data" "${1:-230000}"
