#!/usr/bin/env bash
# [cluster] measured in one run, on loopback: what sharing bans through Redis costs and how fast
# it is.
#
#   bash bench/cluster.sh [SECONDS_PER_RUN] [ROUNDS] [BANS]     (defaults 5, 3, 20000)
#   KEVLAR_BIN=/path/to/kevlar bash bench/cluster.sh            measure another build
#
# - Clean traffic (wrk -c50, 1 KB nginx upstream, one Kevlar worker, access log off) through a
#   Kevlar with [cluster] and one without, alternated ROUNDS times: requests/s and CPU µs per
#   request of the Kevlar process alone (/proc utime+stime), and Redis commands per request
#   (INFO commandstats around each clustered run; heartbeats included).
# - Ban propagation: 200 bans made through instance A's admin API, each timed until instance B
#   refuses the address (B polled on one keep-alive connection): median and p99.
# - Memory in Redis: used_memory before and after BANS bans, per 100,000.
# Installs nginx-light, wrk and redis-server when missing. Everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-5}"
ROUNDS="${2:-3}"
BANS="${3:-20000}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
for pkg in nginx-light wrk redis-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$pkg"; }
done
if [ -n "${KEVLAR_BIN:-}" ]; then KEVLAR="$KEVLAR_BIN"; else cargo build --release -q; KEVLAR="$PWD/target/release/kevlar"; fi

WORK="$(mktemp -d)"
chmod 755 "$WORK"   # nginx's workers (user nobody) read the upstream's files from here
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/upstream.pid" ] && kill "$(cat "$WORK/upstream.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); RP=$(free_port); KA=$(free_port); KB=$(free_port); KC=$(free_port)

mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/zero | tr '\0' 'k' > "$WORK/www/index.html"
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/logs/upstream-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:$UP; root $WORK/www; } }
CONF
nginx -c "$WORK/upstream.conf" -p "$WORK" -e "$WORK/logs/upstream-error.log"
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done

common='[access_log]\ntarget = "off"\n[proxy]\nworkers = 1\n'
cluster() { printf '[cluster]\nredis = "redis://127.0.0.1:%s/0"\ninstance = "%s"\nname = "bench"\n' "$RP" "$1"; }
printf "$common" > "$WORK/off.toml"
{ printf "$common"; cluster a; } > "$WORK/a.toml"
{ printf "$common"; cluster b; } > "$WORK/b.toml"

start_kevlar() { # PORT NAME -> pid in KPID
  "$KEVLAR" guard --upstream "http://127.0.0.1:$UP" --listen "127.0.0.1:$1" --admin "127.0.0.1:0" \
    --trusted-proxy 127.0.0.1 --data-dir "$WORK/$2" --config "$WORK/$2.toml" 2>"$WORK/$2.err" &
  KPID=$!; PIDS+=("$KPID")
  for _ in $(seq 1 100); do grep -q "kevlar: ready" "$WORK/$2.err" 2>/dev/null && return 0; sleep 0.1; done
  echo "kevlar did not start:"; cat "$WORK/$2.err"; exit 1
}
start_kevlar "$KA" a; A_PID=$KPID
start_kevlar "$KB" b
start_kevlar "$KC" off; C_PID=$KPID

HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
calls() { redis-cli -p "$RP" info commandstats | awk -F'[=,:]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_config" {n += $3} END {print n+0}'; }
# run URL PID -> "rps cpu_us reqs"
run() {
  wrk -t2 -c50 -d1s "$1" >/dev/null
  local before; before=$(ticks "$2")
  local out; out=$(wrk -t2 -c50 -d"${DUR}s" "$1")
  if echo "$out" | grep -q "Non-2xx"; then echo "$1: answers other than 2xx — not measuring that:" >&2; echo "$out" >&2; exit 1; fi
  local after; after=$(ticks "$2")
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  python3 -c "print('$rps', f'{($after-$before)/$HZ*1e6/$reqs:.1f}', '$reqs')"
}

echo "loopback; wrk -t2 -c50 -d${DUR}s; 1 KB static upstream; one Kevlar worker; $(nproc) cores; $ROUNDS rounds"
printf "%-8s %-22s %-22s %-10s %s\n" round "[cluster] off rps/cpu" "[cluster] on rps/cpu" ratio "redis cmds/request"
RESULTS=()
for r in $(seq 1 "$ROUNDS"); do
  read -r off_rps off_cpu _ < <(run "http://127.0.0.1:$KC/" "$C_PID")
  redis-cli -p "$RP" config resetstat >/dev/null
  read -r on_rps on_cpu on_reqs < <(run "http://127.0.0.1:$KA/" "$A_PID")
  cmds=$(calls)
  per=$(python3 -c "print(f'{$cmds/$on_reqs:.5f}')")
  ratio=$(python3 -c "print(f'{$on_rps/$off_rps:.3f}')")
  printf "%-8s %-22s %-22s %-10s %s (%s commands, heartbeats)\n" "$r" "$off_rps / $off_cpu µs" "$on_rps / $on_cpu µs" "$ratio" "$per" "$cmds"
  RESULTS+=("$ratio $off_cpu $on_cpu")
done
python3 - "${RESULTS[@]}" <<'PY'
import statistics, sys
rows = [tuple(map(float, a.split())) for a in sys.argv[1:]]
ratios = [r[0] for r in rows]
cpu = [r[2] / r[1] for r in rows]
print(f"median throughput on/off {statistics.median(ratios):.3f} (spread {min(ratios):.3f}-{max(ratios):.3f}); "
      f"median CPU per request on/off {statistics.median(cpu):.3f}   (target: within 3 %)")
PY

python3 - "$WORK" "$KB" "$RP" "$BANS" <<'PY'
import http.client, json, pathlib, statistics, subprocess, sys, time
work, kb, rp, bans = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
addr = (work / "a" / "admin.addr").read_text().strip().split("://", 1)[-1]
token = (work / "a" / "admin.token").read_text().strip()
host, port = addr.rsplit(":", 1)
admin = http.client.HTTPConnection(host, int(port))
b = http.client.HTTPConnection("127.0.0.1", kb)
def ban(ip):
    admin.request("POST", f"/v1/blackbook/{ip}/ban", body=json.dumps({"for": "1h", "reason": "bench"}),
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = admin.getresponse(); r.read()
    assert r.status == 200, r.status
def status_from_b(ip):
    b.request("GET", "/", headers={"X-Forwarded-For": ip})
    r = b.getresponse(); r.read()
    return r.status
delays = []
for i in range(200):
    ip = f"10.77.{i // 250}.{i % 250 + 1}"
    s = status_from_b(ip)
    assert s == 200, f"B answered {s} to {ip} before the ban"
    t0 = time.perf_counter()
    ban(ip)
    while status_from_b(ip) != 403:
        if time.perf_counter() - t0 > 10:
            raise SystemExit(f"{ip} never refused by B")
    delays.append((time.perf_counter() - t0) * 1000)
delays.sort()
p99 = delays[int(len(delays) * 0.99) - 1]
print(f"ban propagation A -> B, 200 bans (admin API call included): median {statistics.median(delays):.2f} ms, p99 {p99:.2f} ms, max {delays[-1]:.2f} ms")
def used():
    out = subprocess.run(["redis-cli", "-p", rp, "info", "memory"], capture_output=True, text=True).stdout
    return int([l for l in out.splitlines() if l.startswith("used_memory:")][0].split(":")[1])
before = used()
t0 = time.perf_counter()
for i in range(bans):
    ban(f"10.{88 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}")
took = time.perf_counter() - t0
time.sleep(1)
after = used()
keys = int(subprocess.run(["redis-cli", "-p", rp, "dbsize"], capture_output=True, text=True).stdout.strip())
print(f"memory in Redis: {bans} more bans (+{(after - before) / 1e6:.1f} MB, {keys} keys in all) = "
      f"{(after - before) / bans * 100000 / 1e6:.1f} MB per 100,000 banned addresses; "
      f"{bans / took:.0f} bans/s through one instance's admin API")
PY
