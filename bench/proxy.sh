#!/usr/bin/env bash
# Kevlar vs nginx as a reverse proxy, on loopback, measured in one run.
#
#   bash bench/proxy.sh [SECONDS_PER_RUN]     (default 10)
#   KEVLAR_BIN=/path/to/kevlar bash bench/proxy.sh   measure another build (before/after)
#
# Upstream: nginx serving a 1 KB file. Measured, each with wrk at 50 connections:
#   upstream alone · nginx proxy · nginx proxy + helmet's 12 headers · Kevlar with default headers
# For each: requests/s, p50/p99 latency, and CPU time per request of the proxy process
# (utime+stime from /proc, divided by the requests wrk made). Then Kevlar's idle RSS and its RSS
# while holding 10,000 idle keep-alive connections. Prints Kevlar/nginx ratios.
# Installs nginx and wrk (Debian packages) when missing. Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
CONNS=50
THREADS=2

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
for pkg in nginx-light wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$pkg"; }
done
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi

WORK="$(mktemp -d)"
chmod 755 "$WORK"   # nginx's workers (user nobody) read the upstream's files from here
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$WORK/upstream.pid" "$WORK/proxy.pid" "$WORK/proxy1.pid"; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); NGX=$(free_port); NGXH=$(free_port); KV=$(free_port)

mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/zero | tr '\0' 'k' > "$WORK/www/index.html"
# Kevlar runs with its defaults, except that the access log (nginx's is off) is off too.
printf '[access_log]\ntarget = "off"\n' > "$WORK/kevlar.toml"
printf '[access_log]\ntarget = "off"\n[proxy]\nworkers = 1\n' > "$WORK/kevlar1.toml"

# The upstream and the proxies run under separate nginx masters, so that the proxies' CPU is
# counted apart from the upstream's.
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/logs/upstream-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; root $WORK/www; }
}
CONF
PROXY_COMMON='proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;'
# proxy_conf NAME WORKERS PLAIN_PORT HEADERS_PORT
proxy_conf() {
cat > "$WORK/$1.conf" <<CONF
worker_processes $2;
pid $WORK/$1.pid;
error_log $WORK/logs/$1-error.log;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$3;
    location / { $PROXY_COMMON }
  }
  server {
    listen 127.0.0.1:$4;
    location / {
      $PROXY_COMMON
      add_header Content-Security-Policy "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests" always;
      add_header Cross-Origin-Opener-Policy "same-origin" always;
      add_header Cross-Origin-Resource-Policy "same-origin" always;
      add_header Origin-Agent-Cluster "?1" always;
      add_header Referrer-Policy "no-referrer" always;
      add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
      add_header X-Content-Type-Options "nosniff" always;
      add_header X-DNS-Prefetch-Control "off" always;
      add_header X-Download-Options "noopen" always;
      add_header X-Frame-Options "SAMEORIGIN" always;
      add_header X-Permitted-Cross-Domain-Policies "none" always;
      add_header X-XSS-Protection "0" always;
    }
  }
}
CONF
nginx -c "$WORK/$1.conf" -p "$WORK" -e "$WORK/logs/$1-error.log"
}
nginx -c "$WORK/upstream.conf" -p "$WORK" -e "$WORK/logs/upstream-error.log"
NGX1=$(free_port); NGXH1=$(free_port); KV1=$(free_port)
proxy_conf proxy auto "$NGX" "$NGXH"
proxy_conf proxy1 1 "$NGX1" "$NGXH1"

start_kevlar() { # PORT DATA_DIR ERRFILE [CONFIG] -> pid in KPID
  "$KEVLAR" guard --upstream "http://127.0.0.1:$UP" --listen "127.0.0.1:$1" --admin "127.0.0.1:0" \
    --data-dir "$2" --config "${4:-$WORK/kevlar.toml}" 2>"$3" &
  KPID=$!; PIDS+=("$KPID")
  for _ in $(seq 1 100); do grep -q "kevlar: ready" "$3" 2>/dev/null && return 0; sleep 0.1; done
  echo "kevlar did not start:"; cat "$3"; exit 1
}
start_kevlar "$KV" "$WORK/kevlar" "$WORK/kevlar.err"
KEVLAR_PID=$KPID
start_kevlar "$KV1" "$WORK/kevlar1" "$WORK/kevlar1.err" "$WORK/kevlar1.toml"
KEVLAR1_PID=$KPID
for _ in $(seq 1 50); do [ -s "$WORK/proxy.pid" ] && [ -s "$WORK/proxy1.pid" ] && break; sleep 0.1; done
PROXY_MASTER=$(cat "$WORK/proxy.pid")
PROXY1_MASTER=$(cat "$WORK/proxy1.pid")

HZ=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
nginx_workers() { pgrep -P "$1" | tr '\n' ' '; }

# run LABEL URL [PID...]: one wrk run; sets LAST_RPS, LAST_P99 and LAST_CPU (µs per request).
run() {
  local label=$1 url=$2; shift 2
  wrk -t$THREADS -c$CONNS -d2s "$url" >/dev/null   # warm-up: connections and pools
  local before=0 after=0
  [ $# -gt 0 ] && before=$(ticks "$@")
  local out; out=$(wrk -t$THREADS -c$CONNS -d"${DUR}s" --latency "$url")
  if echo "$out" | grep -q "Non-2xx"; then echo "$label: answers other than 2xx — not measuring that:"; echo "$out"; exit 1; fi
  [ $# -gt 0 ] && after=$(ticks "$@")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  LAST_RPS=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local p50; p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  LAST_P99=$(echo "$out" | awk '$1=="99%" {print $2}')
  if [ $# -gt 0 ]; then
    LAST_CPU=$(python3 -c "print(f'{($after-$before)/$HZ*1e6/$reqs:.1f}')")
  else
    LAST_CPU="-"
  fi
  printf "%-34s %12s %10s %10s %12s\n" "$label" "$LAST_RPS" "$p50" "$LAST_P99" "$LAST_CPU"
}

echo "loopback; wrk -t$THREADS -c$CONNS -d${DUR}s; 1 KB static upstream; $(nproc) cores"
printf "%-34s %12s %10s %10s %12s\n" "target" "req/s" "p50" "p99" "CPU µs/req"
run "upstream alone (nginx static)" "http://127.0.0.1:$UP/"
UP_P99=$LAST_P99
compare() { # LABEL NGINX_MASTER NGX_PORT NGXH_PORT KEVLAR_PID KEVLAR_PORT
  echo "-- $1"
  # shellcheck disable=SC2046
  run "nginx reverse proxy" "http://127.0.0.1:$3/" $(nginx_workers "$2")
  NGX_RPS=$LAST_RPS; NGX_CPU=$LAST_CPU
  # shellcheck disable=SC2046
  run "nginx proxy + 12 helmet headers" "http://127.0.0.1:$4/" $(nginx_workers "$2")
  NGXH_RPS=$LAST_RPS; NGXH_CPU=$LAST_CPU; NGXH_P99=$LAST_P99
  run "kevlar guard (default headers)" "http://127.0.0.1:$6/" "$5"
  KV_RPS=$LAST_RPS; KV_CPU=$LAST_CPU; KV_P99=$LAST_P99
  python3 - "$NGX_RPS" "$NGXH_RPS" "$KV_RPS" "$NGX_CPU" "$NGXH_CPU" "$KV_CPU" "$UP_P99" "$NGXH_P99" "$KV_P99" <<'PY'
import sys
def ms(s):
    s = s.strip()
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if s.endswith(unit):
            return float(s[: -len(unit)]) * f
    return float(s)
ngx, ngxh, kv, ngx_cpu, ngxh_cpu, kv_cpu = map(float, sys.argv[1:7])
up99, ngxh99, kv99 = map(ms, sys.argv[7:10])
print(f"   throughput   kevlar/nginx-proxy = {kv/ngx:.2f}   kevlar/nginx+headers = {kv/ngxh:.2f}   (target >= 0.90)")
print(f"   CPU/request  kevlar/nginx-proxy = {kv_cpu/ngx_cpu:.2f}   kevlar/nginx+headers = {kv_cpu/ngxh_cpu:.2f}   (target <= 1.00)")
print(f"   p99 added over the upstream alone: kevlar {kv99-up99:.2f} ms, nginx+headers {ngxh99-up99:.2f} ms   (target < 1 ms)")
PY
}
compare "one worker each (nginx worker_processes 1, kevlar proxy.workers = 1)" "$PROXY1_MASTER" "$NGX1" "$NGXH1" "$KEVLAR1_PID" "$KV1"
compare "one worker per core each (nginx auto, kevlar default)" "$PROXY_MASTER" "$NGX" "$NGXH" "$KEVLAR_PID" "$KV"
echo

rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
start_kevlar 0 "$WORK/kevlar-idle" "$WORK/kevlar-idle.err"
sleep 1
echo "idle RSS (fresh process): $(rss_mb "$KPID") MB   (target < 30 MB)"

# 10,000 idle keep-alive connections, each after one request, held open at once.
ulimit -n 65536 2>/dev/null || true
python3 - "$KV" "$KEVLAR_PID" <<'PY'
import asyncio, sys
port, pid = int(sys.argv[1]), sys.argv[2]
N = 10000
async def one(held):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
    if length:
        await r.readexactly(int(length[0].split(b":")[1]))
    held.append(w)
async def main():
    held = []
    sem = asyncio.Semaphore(500)
    async def guarded():
        async with sem:
            await one(held)
    await asyncio.gather(*(guarded() for _ in range(N)))
    with open(f"/proc/{pid}/status") as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0] / 1024
    print(f"RSS holding {len(held)} idle keep-alive connections: {rss:.1f} MB   (target < 150 MB)")
    for w in held:
        w.close()
asyncio.run(main())
PY
