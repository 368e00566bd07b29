#!/usr/bin/env bash
# `kevlar update --test` against next-update on the same fixture app, in one run: a local
# verdaccio holding 10 packages with newer versions, an app depending on all ten at 1.0.0 with a
# real `npm test`. Times `kevlar update --latest-only` with --jobs 1 and --jobs 2 (next-update also
# tries only the latest version by default) and `next-update`, each on a fresh copy of the app.
#
#   bash bench/update.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
cargo build --release -q
KEVLAR="$ROOT/target/release/kevlar"
[ -d tests/update/node_modules/verdaccio ] || (cd tests/update && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
mkdir -p bench/out/next-update
if [ ! -x bench/out/next-update/node_modules/.bin/next-update ]; then
  (cd bench/out/next-update && echo '{"name":"bench-next-update","private":true,"dependencies":{"next-update":"3.6.0"}}' > package.json \
    && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
WORK="$(mktemp -d)"
VPID=""
cleanup() { [ -n "$VPID" ] && kill "$VPID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG="http://127.0.0.1:$PORT/"
cat > "$WORK/config.yaml" <<CONF
storage: $WORK/storage
auth: { htpasswd: { file: $WORK/htpasswd, max_users: 100 } }
uplinks: {}
packages: { '**': { access: \$all, publish: \$authenticated } }
log: { type: stdout, format: json, level: warn }
CONF
tests/update/node_modules/.bin/verdaccio --config "$WORK/config.yaml" --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
VPID=$!
for _ in $(seq 200); do curl -sf "${REG}-/ping" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -sf -X PUT -H 'Content-Type: application/json' -d '{"name":"bench","password":"bench-pass"}' \
  "${REG}-/user/org.couchdb.user:bench" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
printf 'registry=%s\n//127.0.0.1:%s/:_authToken=%s\n' "$REG" "$PORT" "$TOKEN" > "$WORK/npmrc"
echo "== publishing 10 packages × 3 versions to verdaccio"
for i in $(seq 0 9); do
  for v in 1.0.0 1.1.0 2.0.0; do
    d="$WORK/pub/kvb-$i-$v"; mkdir -p "$d"
    printf '{"name":"kvb-%s","version":"%s","main":"index.js","license":"MIT"}' "$i" "$v" > "$d/package.json"
    printf 'exports.id = () => %s;\n' "$i" > "$d/index.js"
    (cd "$d" && npm publish --userconfig "$WORK/npmrc" --registry "$REG" >/dev/null 2>&1)
  done
done
APP="$WORK/app"; mkdir -p "$APP"
deps=$(for i in $(seq 0 9); do printf '"kvb-%s":"^1.0.0",' "$i"; done); deps="{${deps%,}}"
printf '{"name":"bench-app","version":"1.0.0","private":true,"scripts":{"test":"node test.js"},"dependencies":%s}' "$deps" > "$APP/package.json"
printf 'registry=%s\n' "$REG" > "$APP/.npmrc"
: > "$APP/test.js"; for i in $(seq 0 9); do echo "if (require('kvb-$i').id() !== $i) process.exit(1);" >> "$APP/test.js"; done
(cd "$APP" && npm install --no-audit --no-fund >/dev/null 2>&1 && cp package.json package.json.orig && git init -q && true)
fresh() { rm -rf "$WORK/run"; cp -a "$APP" "$WORK/run"; }
t() { local s; s=$(date +%s.%N); "$@" >"$WORK/out.txt" 2>&1 || true; python3 -c "print(f'{$(date +%s.%N) - $s:.1f}')"; }
fresh; K1=$(t "$KEVLAR" update --test "npm test" --latest-only --jobs 1 "$WORK/run")
grep -q "10 of 10 version(s) keep the tests green" "$WORK/out.txt" || { cat "$WORK/out.txt"; exit 1; }
fresh; K2=$(t "$KEVLAR" update --test "npm test" --latest-only --jobs 2 "$WORK/run")
fresh; NU=$(t sh -c "cd '$WORK/run' && '$ROOT/bench/out/next-update/node_modules/.bin/next-update' --registry '$REG' --tldr")
KEPT=$(python3 -c "import json; d=json.load(open('$WORK/run/package.json'))['dependencies']; print(sum(1 for v in d.values() if '2.0.0' in v))")
echo "  next-update kept $KEPT of 10 updates at 2.0.0 (it tested each and keeps the working ones)"
echo "== 10 outdated dependencies, latest version of each, tests after each"
echo "kevlar update --jobs 1: ${K1} s   --jobs 2: ${K2} s   next-update: ${NU} s"
python3 -c "print(f'ratio kevlar/next-update: jobs 1 {$K1/$NU:.2f}, jobs 2 {$K2/$NU:.2f}')"
