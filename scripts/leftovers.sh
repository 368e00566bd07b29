#!/usr/bin/env bash
# Fails, listing them, if processes the tests started outlive them: the apps, Kevlar, its keepers,
# the peers under tests/. Run at the end of scripts/test.sh and scripts/conformance.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Nothing the tests started may outlive them: the apps, Kevlar, its keepers, the peers under
# tests/. A keeper ends an app that ignores SIGTERM after its grace, so they get a few seconds.
root="$(pwd -P)"
leftovers() { pgrep -af -- "$root/(tests|examples|target)/" | grep -v -e "pgrep" -e "scripts/test.sh" || true; }
for _ in $(seq 100); do
  [ -z "$(leftovers)" ] && break
  sleep 0.2
done
if [ -n "$(leftovers)" ]; then
  echo "FAIL: processes started by the tests are still running:" >&2
  leftovers >&2
  exit 1
fi
