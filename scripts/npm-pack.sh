#!/usr/bin/env bash
# Builds Kevlar's npm packages, in the manner of esbuild and Biome: `kevlar` (a launcher whose
# optional dependencies are the per-platform packages), `@kevlar/PLATFORM` (the native binary) for
# each binary given, and `@kevlar/app` (the app-side helper). Writes the .tgz files to OUT.
#
#   bash scripts/npm-pack.sh OUT [PLATFORM=BINARY ...]
#
# PLATFORM is Node's `${process.platform}-${process.arch}` (linux-x64, linux-arm64, darwin-arm64,
# …). Without one, builds the stripped `dist` profile for this machine. Publish the files with
# `npm publish FILE.tgz` (the platform packages first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: npm-pack.sh OUT [PLATFORM=BINARY ...]}"
shift
mkdir -p "$out"
out="$(cd "$out" && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"

if [ "$#" -eq 0 ]; then
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) here=linux-x64 ;;
    Linux-aarch64) here=linux-arm64 ;;
    Darwin-arm64) here=darwin-arm64 ;;
    Darwin-x86_64) here=darwin-x64 ;;
    *) echo "npm-pack.sh: unknown platform $(uname -s)-$(uname -m); give PLATFORM=BINARY" >&2; exit 2 ;;
  esac
  (cd "$root" && cargo build --profile dist --locked)
  set -- "$here=${CARGO_TARGET_DIR:-$root/target}/dist/kevlar"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
platforms=()
for spec in "$@"; do
  platform="${spec%%=*}"
  binary="${spec#*=}"
  os="${platform%%-*}"
  cpu="${platform#*-}"
  [ -x "$binary" ] || { echo "npm-pack.sh: $binary is not an executable" >&2; exit 2; }
  dir="$work/$platform"
  mkdir -p "$dir/bin"
  cp "$binary" "$dir/bin/kevlar"
  chmod 755 "$dir/bin/kevlar"
  cat >"$dir/package.json" <<JSON
{
  "name": "@kevlar/$platform",
  "version": "$version",
  "description": "Kevlar's native binary for $platform (installed by the kevlar package).",
  "license": "Apache-2.0",
  "os": ["$os"],
  "cpu": ["$cpu"],
  "files": ["bin/kevlar"],
  "preferUnplugged": true
}
JSON
  (cd "$dir" && npm pack --silent --pack-destination "$out" >/dev/null)
  platforms+=("$platform")
done

# The launcher, its optional dependencies pinned to this version.
cp -r "$root/npm/kevlar" "$work/kevlar"
cp -r "$root/npm/app" "$work/app"
deps="$(printf '"@kevlar/%s": "'"$version"'",' "${platforms[@]}")"
node -e '
  const fs = require("fs");
  const [file, version, deps] = process.argv.slice(1);
  const p = JSON.parse(fs.readFileSync(file));
  p.version = version;
  if (deps) p.optionalDependencies = JSON.parse("{" + deps.replace(/,$/, "") + "}");
  fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
' "$work/kevlar/package.json" "$version" "$deps"
node -e '
  const fs = require("fs");
  const [file, version] = process.argv.slice(1);
  const p = JSON.parse(fs.readFileSync(file));
  p.version = version;
  fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
' "$work/app/package.json" "$version"
(cd "$work/kevlar" && npm pack --silent --pack-destination "$out" >/dev/null)
(cd "$work/app" && npm pack --silent --pack-destination "$out" >/dev/null)
ls "$out"/*.tgz
