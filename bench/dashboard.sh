#!/usr/bin/env bash
# The dashboard's budgets on loopback with a large store: page weight (≤ 150 KB with its assets),
# time to the whole answer (≤ 200 ms) for every page, the rollups' backfill time, and the live
# feed under 1,000 events a second.
#
#   bash bench/dashboard.sh [EVENTS] [ROUNDS]          (defaults 1000000, 5)
#   KEVLAR_BIN=/path/to/kevlar bash bench/dashboard.sh measure another build
#
# Everything runs on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi
exec python3 bench/dashboard.py "$KEVLAR" "${1:-1000000}" "${2:-5}"
