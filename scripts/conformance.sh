#!/usr/bin/env bash
# The conformance tests: real lockfiles and advisory databases, and real benign traffic, read in
# place from ../shared/data (the corpus beside the checkout). Every test named `conformance_*`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/data/advisories ] || [ ! -d ../shared/data/payloads ]; then
  echo "scripts/conformance.sh: ../shared/data (advisories/, payloads/) is missing beside this checkout." >&2
  echo "These tests read that corpus in place; put it at $(cd .. && pwd)/shared/data and run again." >&2
  exit 2
fi
bash scripts/setup.sh
status=0
cargo nextest run --workspace --no-fail-fast -E 'test(/^conformance_/)' "$@" || status=$?
bash scripts/leftovers.sh
exit "$status"
