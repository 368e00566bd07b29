#!/usr/bin/env bash
# The cost of login monitoring per request, against the detectors on the same requests in the
# same run (a page view with a session cookie; a login POST answered 401).
#   bash bench/logins.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --example login_bench -p kevlar-shield
./target/release/examples/login_bench
