#!/usr/bin/env bash
# Kevlar's supervisor against pm2 (fork mode) and forever, measured in one run on loopback:
#   recovery — time from an app crash to the next successful response, and the requests a steady
#              loop loses across the crash (5 crashes each, median);
#   reload   — failed requests of a steady loop during `kevlar reload` and `pm2 reload`;
#   overhead — Kevlar's CPU and RSS while idle and while the app serves load through it.
#
#   bash bench/supervisor.sh
#   KEVLAR_BIN=/path/to/kevlar bash bench/supervisor.sh   measure another build (before/after)
#
# Installs pm2 and forever from npm into a temporary directory. Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi
WORK="$(mktemp -d)"
cleanup() {
  [ -x "$WORK/node_modules/.bin/pm2" ] && PM2_HOME="$WORK/pm2" "$WORK/node_modules/.bin/pm2" kill >/dev/null 2>&1 || true
  [ -x "$WORK/node_modules/.bin/forever" ] && FOREVER_ROOT="$WORK/forever" "$WORK/node_modules/.bin/forever" stopall >/dev/null 2>&1 || true
  pkill -f "$WORK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
(cd "$WORK" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error pm2 forever >/dev/null)
python3 bench/supervisor.py "$KEVLAR" "$PWD/bench/app.js" "$WORK"
