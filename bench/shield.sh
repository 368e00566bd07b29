#!/usr/bin/env bash
# Detection end to end, on loopback, in one run:
#   1. throughput and CPU per request of Kevlar (one worker) with detection off and on (monitor;
#      the route inventory is on in both),
#      for a GET with 10 query arguments and a POST with a 1 KB form body; prints the on/off ratio
#      (target: at most 10% throughput cost);
#      off and on alternate, ROUNDS times each, and the medians are compared (the spread says how
#      noisy the machine was);
#   2. 32 uploads of a 10 MB form streamed through block-mode inspection, 8 at a time: Kevlar's peak RSS
#      (it must not grow with the body: the body streams, never gathered);
#   3. RSS while 1,000,000 distinct client addresses (a trusted X-Forwarded-For, every tenth one
#      sending an attack, a per-address rate limit on) go through; prints the RSS against the cap.
#
#   bash bench/shield.sh [SECONDS_PER_RUN] [ROUNDS]     (defaults 10, 3)
#   KEVLAR_BIN=/path/to/kevlar bash bench/shield.sh     measure another build (before/after)
#   SKIP_FLOOD=1 bash bench/shield.sh                   parts 1 and 2 only
# Needs nginx and wrk (installed from Debian when missing). Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
ROUNDS="${2:-3}"
CAP_MB=400

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
for pkg in nginx-light wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$pkg"; }
done
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi
WORK="$(mktemp -d)"
# nginx's workers run as another user: they must reach the page (mktemp makes the dir 0700).
chmod 755 "$WORK"
KPID=""
cleanup() {
  [ -n "$KPID" ] && kill "$KPID" 2>/dev/null || true
  [ -f "$WORK/upstream.pid" ] && kill "$(cat "$WORK/upstream.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port)
mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/zero | tr '\0' 'k' > "$WORK/www/index.html"
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/logs/upstream-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_max_body_size 20m;
  client_body_buffer_size 1m;
  server { listen 127.0.0.1:$UP; root $WORK/www; location / { try_files /index.html =404; } error_page 405 =200 /index.html; }
}
CONF
nginx -c "$WORK/upstream.conf" -p "$WORK"

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "sid=8f3a9c2e1b7d4a60; theme=dark"
local b = "name=Jane+Doe&email=jane.doe%40example.com&address=12+Rue+de+la+Paix%2C+Paris&comment="
while #b < 1024 do b = b .. "Lovely+product%2C+arrived+on+time+and+well+packed.+" end
wrk.body = b
LUA
cat > "$WORK/get.lua" <<'LUA'
wrk.headers["Cookie"] = "sid=8f3a9c2e1b7d4a60; theme=dark; lang=en-GB"
wrk.headers["Referer"] = "https://shop.example.com/catalog?page=2"
LUA
GET_PATH='/shop?q=running+shoes&page=2&sort=price_asc&size=42&color=blue&brand=acme&min=10&max=200&ref=home&utm_source=newsletter'

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
start_kevlar() { # CONFIG_TEXT
  local port; port=$(free_port)
  printf '%b' "$1" > "$WORK/k.toml"
  rm -rf "$WORK/data"
  "$KEVLAR" guard --upstream "http://127.0.0.1:$UP" --listen "127.0.0.1:$port" --admin 127.0.0.1:0 \
    --data-dir "$WORK/data" --config "$WORK/k.toml" 2> "$WORK/kevlar.log" &
  KPID=$!
  for _ in $(seq 100); do grep -q "kevlar: ready" "$WORK/kevlar.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "kevlar: ready" "$WORK/kevlar.log" || { echo "kevlar did not start:"; cat "$WORK/kevlar.log"; exit 1; }
  KPORT=$port
}
stop_kevlar() { kill "$KPID"; wait "$KPID" 2>/dev/null || true; KPID=""; }
run() { # SCRIPT PATH -> sets RPS, CPU_US
  wrk -t2 -c50 -d2s -s "$WORK/$1" "http://127.0.0.1:$KPORT$2" >/dev/null
  local t0; t0=$(ticks "$KPID")
  local out; out=$(wrk -t2 -c50 -d"${DUR}s" -s "$WORK/$1" "http://127.0.0.1:$KPORT$2")
  local t1; t1=$(ticks "$KPID")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  RPS=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  CPU_US=$(python3 -c "print(round(($t1-$t0)/$(getconf CLK_TCK)*1e6/$reqs, 1))")
}
BASE='[access_log]\ntarget = "off"\n[proxy]\nworkers = 1\n'
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.1f}")' "$@"; }
spread() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(f"±{(max(v)-min(v))/2/(sum(v)/len(v))*100:.0f}%")' "$@"; }
echo "kevlar: $KEVLAR"
echo "loopback; wrk -t2 -c50 -d${DUR}s; one Kevlar worker; 1 KB static upstream (nginx); $(nproc) cores; off/on alternated $ROUNDS times, medians"
printf '%-32s %10s %10s %8s %20s %14s\n' "request" "off req/s" "on req/s" "on/off" "CPU µs/req off→on" "spread off/on"
for kind in get post; do
  if [ $kind = get ]; then script=get.lua; path="$GET_PATH"; label="GET, 10 args, cookies, referer"; else script=post.lua; path=/shop/checkout; label="POST, 1 KB form"; fi
  OFFS=(); ONS=(); OFFCS=(); ONCS=()
  for _ in $(seq "$ROUNDS"); do
    start_kevlar "$BASE[detect]\nmode = \"off\"\n"; run $script "$path"; OFFS+=("$RPS"); OFFCS+=("$CPU_US"); stop_kevlar
    start_kevlar "$BASE"; run $script "$path"; ONS+=("$RPS"); ONCS+=("$CPU_US"); stop_kevlar
  done
  OFF=$(median "${OFFS[@]}"); ON=$(median "${ONS[@]}")
  printf '%-32s %10s %10s %8s %20s %14s\n' "$label" "$OFF" "$ON" "$(python3 -c "print(f'{$ON/$OFF:.3f}')")" \
    "$(median "${OFFCS[@]}") → $(median "${ONCS[@]}")" "$(spread "${OFFS[@]}")/$(spread "${ONS[@]}")"
done

echo
echo "== 10 MB form uploads through block-mode inspection, 8 at a time"
start_kevlar "$BASE[detect]\nmode = \"block\"\n"
python3 -c "import sys; p=b'field=plain+words+of+a+long+form&'; sys.stdout.buffer.write(p*(10000000//len(p)))" > "$WORK/upload.body"
ONE=$(curl -s -o /dev/null -w '%{http_code} in %{time_total} s' -X POST --data-binary @"$WORK/upload.body" \
  -H 'content-type: application/x-www-form-urlencoded' "http://127.0.0.1:$KPORT/upload")
echo "one upload alone: $ONE"
RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$KPID/status")
# 32 uploads, 8 at a time (curl streams the file; wrk rebuilds a 10 MB body per request).
T0=$(date +%s.%N)
seq 32 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' -X POST --data-binary @"$WORK/upload.body" \
  -H 'content-type: application/x-www-form-urlencoded' "http://127.0.0.1:$KPORT/upload" > "$WORK/upload.codes" &
WPID=$!
PEAK=$RSS0
while kill -0 $WPID 2>/dev/null; do
  r=$(awk '/VmRSS/ {print $2}' "/proc/$KPID/status"); [ "$r" -gt "$PEAK" ] && PEAK=$r
  sleep 0.05
done
wait $WPID 2>/dev/null || true
T1=$(date +%s.%N)
OK=$(grep -c '^200$' "$WORK/upload.codes" || true)
echo "uploads: $OK of 32 answered 200; $(python3 -c "print(f'{320/($T1-$T0):.0f}')") MB/s through inspection; RSS $((RSS0/1024)) MB before, peak $((PEAK/1024)) MB"
stop_kevlar
[ -n "${SKIP_FLOOD:-}" ] && exit 0

echo
echo "== 1,000,000 distinct client addresses (trusted X-Forwarded-For; every 10th an attack; per-address rate limit)"
cat > "$WORK/flood.lua" <<'LUA'
local n = 0
local thread_id = 0
local counter = 0
setup = function(thread) thread:set("tid", counter); counter = counter + 1 end
init = function() n = tid * 500000 end
request = function()
  n = n + 1
  local a = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  local path = "/p?id=" .. n
  if n % 10 == 0 then path = "/p?q=1%27%20OR%20%271%27%3D%271&id=" .. n end
  return wrk.format("GET", path, { ["X-Forwarded-For"] = a })
end
LUA
start_kevlar "[access_log]\ntarget = \"off\"\n[proxy]\nworkers = 1\ntrusted_proxies = [\"127.0.0.1\"]\n[ratelimit]\nper_ip = \"100/s\"\n"
RSS0=$(awk '/VmRSS/ {print $2}' "/proc/$KPID/status")
# 2 threads × 500,000 requests each, stopped by the clock if slower.
timeout 300 wrk -t2 -c50 -d240s -s "$WORK/flood.lua" "http://127.0.0.1:$KPORT/" > "$WORK/flood.out" &
WPID=$!
PEAK=$RSS0
SENT=0
while kill -0 $WPID 2>/dev/null; do
  r=$(awk '/VmRSS/ {print $2}' "/proc/$KPID/status"); [ "$r" -gt "$PEAK" ] && PEAK=$r
  sleep 1
  SENT=$(curl -s -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" "http://$(sed 's#http://##' "$WORK/data/admin.addr" | tr -d '\n')/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["proxy"]["requests"])' 2>/dev/null || echo "$SENT")
  if [ "${SENT:-0}" -ge 1000000 ]; then kill $WPID 2>/dev/null || true; break; fi
done
wait $WPID 2>/dev/null || true
r=$(awk '/VmRSS/ {print $2}' "/proc/$KPID/status"); [ "$r" -gt "$PEAK" ] && PEAK=$r
STATUS=$(curl -s -H "Authorization: Bearer $(cat "$WORK/data/admin.token")" "http://$(sed 's#http://##' "$WORK/data/admin.addr" | tr -d '\n')/v1/status")
echo "$STATUS" > "$WORK/status.json"
python3 - "$WORK/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = s["detection"]
print("requests: %s, flagged: %s, black book in memory: %s, events published: %s, dropped per consumer: %s"
      % (s["proxy"]["requests"], d["flagged"], d["blackbook_in_memory"], s["events"]["published"], s["events"]["dropped"]))
PY
echo "RSS: $((RSS0/1024)) MB before, peak $((PEAK/1024)) MB   (cap $CAP_MB MB)"
stop_kevlar
if [ $((PEAK/1024)) -gt $CAP_MB ]; then echo "FAIL: RSS above the cap"; exit 1; fi
echo "ok: RSS stayed under the cap"
