#!/usr/bin/env bash
# The alert pipeline, on loopback, in one run:
#   1. events per second into the store (target ≥ 50,000/s), against plain SQLite inserts of the
#      same documents;
#   2. events per second through store → outbox → syslog TCP (target ≥ 20,000/s), against writing
#      the same messages straight to the receiver;
#   3. RSS while a sink is down and the backlog grows on disk;
#   4. the delay from an attack request through Kevlar to its alert arriving at a webhook
#      (target < 1 s);
#   5. a flood: FLOOD attacks from as many addresses, every malicious_* event routed to a webhook
#      and the owner's email, a real new-network login in the middle — messages per sink, when the
#      user's notice arrived, peak RSS, outbox and store sizes, and again after retention.
#
#   bash bench/alerts.sh [EVENTS] [ROUNDS] [FLOOD]   (default 200000 events, 30 rounds, 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-200000}"
ROUNDS="${2:-30}"
FLOOD="${3:-20000}"
cargo build --release -q
cargo build --release -q --example alerts_bench -p kevlar-sinks
echo "== pipeline ($EVENTS events)"
./target/release/examples/alerts_bench "$EVENTS"

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOOK=$(free_port)
cat > "$WORK/kevlar.toml" <<CONF
[[alerts.sink]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:$HOOK/alerts"
dedup = "off"

[[alerts.route]]
actions = ["malicious_attack"]
sinks = ["hook"]
CONF
PORT=0 node examples/demo-app/server.js >"$WORK/app.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "listening" "$WORK/app.log" 2>/dev/null && break; sleep 0.05; done
APP_PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/app.log" | head -1 | sed 's/.*://')
./target/release/kevlar guard --upstream "http://127.0.0.1:$APP_PORT" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
  --data-dir "$WORK/data" --config "$WORK/kevlar.toml" 2>"$WORK/kevlar.log" &
PIDS+=($!)
for _ in $(seq 200); do grep -q "kevlar: ready" "$WORK/kevlar.log" && break; sleep 0.05; done
URL="http://$(grep -o 'http=[^ ]*' "$WORK/kevlar.log" | head -1 | cut -d= -f2)"
echo "== attack → alert ($ROUNDS rounds)"
python3 bench/alerts_latency.py "$URL" "$HOOK" "$ROUNDS"
echo "== flood ($FLOOD attacks from $FLOOD addresses)"
python3 bench/alerts_flood.py ./target/release/kevlar "http://127.0.0.1:$APP_PORT" "$WORK" "$FLOOD"
