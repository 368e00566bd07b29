#!/usr/bin/env bash
# Kevlar vs nginx over TLS, on loopback, measured in one run: TLS 1.3 handshakes per second,
# proxied GETs over HTTP/1.1 + TLS, and over HTTP/2, with the same certificate (`kevlar cert`).
#
#   bash bench/tls.sh [ROUNDS] [REQUESTS]      (defaults 3, 50000)
#   KEVLAR_BIN=/path/to/kevlar bash bench/tls.sh
#
# Upstream: nginx serving 1 KB over plain HTTP. Proxies: nginx (one worker, TLS 1.3, http2) and
# Kevlar (one worker, default headers, access logs off in both). Clients: `openssl s_time -new`
# for handshakes (a new full handshake per connection, 5 s), h2load for requests (-c 50; -m 10
# streams per connection for HTTP/2). CPU per request is the proxy process's own (/proc
# utime+stime). Rounds alternate nginx and Kevlar; medians and each round are printed.
# Installs nginx-light and nghttp2-client (h2load) when missing. Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
N="${2:-50000}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
for pkg in nginx-light nghttp2-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$pkg"; }
done
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi

WORK="$(mktemp -d)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$WORK/upstream.pid" "$WORK/proxy.pid"; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); NG=$(free_port); KV=$(free_port); KVP=$(free_port)

mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/zero | tr '\0' 'k' > "$WORK/www/index.html"
"$KEVLAR" cert --self-signed --out "$WORK/tls" >/dev/null
chmod 644 "$WORK/tls/"*.pem
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/logs/upstream-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:$UP; root $WORK/www; } }
CONF
cat > "$WORK/proxy.conf" <<CONF
worker_processes 1;
pid $WORK/proxy.pid;
error_log $WORK/logs/proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NG ssl http2;
    ssl_certificate $WORK/tls/cert.pem;
    ssl_certificate_key $WORK/tls/key.pem;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$WORK/upstream.conf" -p "$WORK" -e "$WORK/logs/upstream-error.log"
nginx -c "$WORK/proxy.conf" -p "$WORK" -e "$WORK/logs/proxy-error.log"
printf '[access_log]\ntarget = "off"\n[proxy]\nworkers = 1\n' > "$WORK/kevlar.toml"
"$KEVLAR" guard --upstream "http://127.0.0.1:$UP" --listen "127.0.0.1:$KVP" --tls-listen "127.0.0.1:$KV" \
  --tls-cert "$WORK/tls/cert.pem" --tls-key "$WORK/tls/key.pem" --admin 127.0.0.1:0 \
  --data-dir "$WORK/kevlar" --config "$WORK/kevlar.toml" 2>"$WORK/kevlar.err" &
KPID=$!; PIDS+=("$KPID")
for _ in $(seq 1 100); do grep -q "kevlar: ready" "$WORK/kevlar.err" 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 1 50); do [ -s "$WORK/proxy.pid" ] && break; sleep 0.1; done
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/proxy.pid")" | head -1)

HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
handshakes() { # PORT -> connections per second
  openssl s_time -connect "127.0.0.1:$1" -new -time 5 -tls1_3 2>/dev/null \
    | awk '/connections in/ && /real seconds/ {print $1 / $4}' | tail -1
}
requests() { # URL PID H2LOAD_ARGS... -> "req/s cpu_us"
  local url=$1 pid=$2; shift 2
  h2load "$@" -n 2000 -c 50 "$url" >/dev/null 2>&1   # warm-up
  local before; before=$(ticks "$pid")
  local out; out=$(h2load "$@" -n "$N" -c 50 "$url" 2>&1)
  local after; after=$(ticks "$pid")
  local ok; ok=$(echo "$out" | awk '/^status codes:/ {print $3}')
  if [ "$ok" != "$N" ]; then echo "not every answer was 2xx ($url):" >&2; echo "$out" >&2; exit 1; fi
  local rps; rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  python3 -c "print('$rps', f'{($after-$before)/$HZ*1e6/$N:.1f}')"
}

echo "loopback; 1 KB upstream; one worker each; $(nproc) cores; $ROUNDS rounds; h2load -c 50 -n $N"
printf "%-6s %-7s %14s %22s %22s\n" round proxy "handshakes/s" "h1+TLS req/s, µs/req" "h2 req/s, µs/req"
ROWS=()
for r in $(seq 1 "$ROUNDS"); do
  for who in nginx kevlar; do
    if [ "$who" = nginx ]; then port=$NG; pid=$NGINX_WORKER; else port=$KV; pid=$KPID; fi
    hs=$(handshakes "$port")
    read -r h1 h1cpu < <(requests "https://127.0.0.1:$port/" "$pid" --h1 -m 1)
    read -r h2 h2cpu < <(requests "https://127.0.0.1:$port/" "$pid" -m 10)
    printf "%-6s %-7s %14.0f %22s %22s\n" "$r" "$who" "$hs" "$h1 / $h1cpu" "$h2 / $h2cpu"
    ROWS+=("$who $hs $h1 $h1cpu $h2 $h2cpu")
  done
done
python3 - "${ROWS[@]}" <<'PY'
import statistics, sys
rows = [a.split() for a in sys.argv[1:]]
def med(who, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == who)
names = ["handshakes/s", "h1+TLS req/s", "h1+TLS CPU µs/req", "h2 req/s", "h2 CPU µs/req"]
print("medians            nginx      kevlar   kevlar/nginx")
for i, n in enumerate(names, start=1):
    a, b = med("nginx", i), med("kevlar", i)
    print(f"{n:<18} {a:>9.1f} {b:>11.1f} {b / a:>14.2f}")
PY
