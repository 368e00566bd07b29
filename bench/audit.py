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
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
