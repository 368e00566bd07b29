"""kevlar audit at OSV scale: import speed, scan time per lockfile (warm), peak RSS.

The database holds the real advisories from ../shared/data/advisories/npm plus synthetic records
bringing it to the size of OSV's npm database (~230,000, most of them malicious-package records,
as in the real one). Every lockfile in ../shared/data/lockfiles is scanned.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

KEVLAR = sys.argv[1]
DATA = os.path.abspath(sys.argv[2])
TOTAL = int(sys.argv[3]) if len(sys.argv) > 3 else 230_000
random.seed(7)


def run(args):
    """(seconds, peak RSS MB, exit code) of one kevlar run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main():
    for d in ("lockfiles", "advisories/npm"):
        if not os.path.isdir(os.path.join(DATA, d)):
            raise SystemExit(f"{DATA}/{d} is missing: this benchmark reads ../shared/data in place")
    work = tempfile.mkdtemp()
    try:
        osv = os.path.join(work, "osv")
        shutil.copytree(os.path.join(DATA, "advisories/npm"), osv, ignore=shutil.ignore_patterns("*.tsv", "COMMIT", "LICENSE*"))
        real = len([f for f in os.listdir(osv) if f.endswith(".json")])
        synth = max(0, TOTAL - real)
        sub = os.path.join(osv, "synthetic")
        os.makedirs(sub)
        for i in range(synth):
            malicious = i % 10 != 0
            name = f"pkg-{i:06d}-{random.randrange(1 << 30):x}"
            rec = {
                "schema_version": "1.4.0",
                "id": f"MAL-2026-{i:06d}" if malicious else f"GHSA-syn{i:06d}",
                "summary": f"Malicious code in {name} (npm)" if malicious else f"Prototype pollution in {name}",
                "affected": [{"package": {"ecosystem": "npm", "name": name},
                              "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}] + ([] if malicious else [{"fixed": "2.0.0"}])}]}],
                "database_specific": {"severity": "CRITICAL" if malicious else "HIGH"},
            }
            with open(os.path.join(sub, f"{i}.json"), "w") as f:
                json.dump(rec, f)
        db = os.path.join(work, "db")
        secs, rss, code = run([KEVLAR, "db", "update", "--from", osv, "--db", db])
        if code != 0:
            raise SystemExit("import failed")
        total = real + synth
        print(f"import: {total} records in {secs:.2f} s = {total / secs:,.0f} records/s, peak RSS {rss:.0f} MB   (targets: >= 20,000/s, <= 150 MB)")
        print(f"{'lockfile':<38} {'packages':>9} {'warm ms':>9} {'peak RSS MB':>12}")
        for name in sorted(os.listdir(os.path.join(DATA, "lockfiles"))):
            path = os.path.join(DATA, "lockfiles", name)
            if name.endswith(".md"):
                continue
            out = subprocess.run([KEVLAR, "audit", path, "--db", db, "--format", "json"], capture_output=True, text=True)
            if out.returncode not in (0, 1):
                print(f"{name:<38} {'-':>9} {'not read':>9}   ({out.stderr.strip()[:60]})")
                continue
            packages = json.loads(out.stdout)["packages"]
            times, peak = [], 0.0
            for _ in range(3):
                s, r, _ = run([KEVLAR, "audit", path, "--db", db, "--format", "json"])
                times.append(s)
                peak = max(peak, r)
            print(f"{name:<38} {packages:>9} {min(times) * 1000:>9.1f} {peak:>12.1f}")
        print("(targets: <= 200 ms per lockfile warm, peak RSS <= 150 MB)")

        # The other ecosystems and the runtime, from the real databases in ../shared/data.
        print()
        print(f"{'database':<38} {'records':>9} {'seconds':>9} {'records/s':>10} {'peak RSS MB':>12}")
        for label, folder in (("RustSec (Markdown + TOML)", "advisories/rust"), ("PyPA (OSV as YAML)", "advisories/pypi"),
                              ("Node.js security WG (runtime)", "advisories/nodejs-security-wg")):
            path = os.path.join(DATA, folder)
            if not os.path.isdir(path):
                continue
            d = os.path.join(work, "db-" + folder.replace("/", "-"))
            t0 = time.perf_counter()
            out = subprocess.run([KEVLAR, "db", "update", "--from", path, "--db", d], capture_output=True, text=True)
            secs = time.perf_counter() - t0
            words = out.stdout.split()
            n = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            if "runtime" in label:
                n = int(out.stdout.split(" Node.js runtime records")[0].split()[-1])
            _, rss, _ = run([KEVLAR, "db", "update", "--from", path, "--db", d + "-again"])
            print(f"{label:<38} {n:>9} {secs:>9.2f} {n / secs:>10,.0f} {rss:>12.1f}")
        rust_db = os.path.join(work, "db-advisories-rust")
        own_lock = os.path.join(os.path.dirname(KEVLAR), "..", "..", "Cargo.lock")
        times, peak = [], 0.0
        for _ in range(3):
            s, r, _ = run([KEVLAR, "audit", own_lock, "--db", rust_db, "--format", "json"])
            times.append(s)
            peak = max(peak, r)
        print(f"scan of Kevlar's own Cargo.lock against RustSec: {min(times) * 1000:.1f} ms warm, peak RSS {peak:.1f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
