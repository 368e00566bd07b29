"""The dashboard's budgets, measured on loopback against a store of N events.

    python3 bench/dashboard.py KEVLAR_BIN [EVENTS] [ROUNDS]

1. Fills a store with EVENTS events at schema 1 (as a Kevlar from before the rollups left it):
   attacks of several families, probes, logins and failures from 20,000 addresses and 2,000
   users over 30 days. Kevlar backfills the rollups when it opens it; the time is reported.
2. Starts `kevlar guard` on that store, signs in, and fetches each page ROUNDS times on one
   keep-alive connection (alternating pages): bytes transferred (the page and the assets it loads)
   and the median and worst time to the whole answer. Budgets: 150 KB and 200 ms.
3. The live feed: one server-sent-events reader on /events/live while events are posted to the
   admin API at 1,000 a second for 5 seconds: how many arrived and how late the last one was.
"""

import http.client
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

KEVLAR = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
NOW = int(time.time() * 1000)
DAY = 86_400_000


def fill(path):
    con = sqlite3.connect(path)
    con.executescript(
        """PRAGMA journal_mode=WAL;
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL,
            event_id TEXT NOT NULL, action TEXT NOT NULL, severity INTEGER NOT NULL, ip TEXT,
            user_name TEXT, request_id TEXT, doc TEXT NOT NULL);
        CREATE UNIQUE INDEX events_event_id ON events(event_id);
        CREATE INDEX events_ts ON events(ts_ms);
        CREATE INDEX events_action ON events(action, id);
        CREATE INDEX events_ip ON events(ip, id);
        PRAGMA user_version = 1;"""
    )
    rnd = random.Random(7)
    families = ["sqli", "xss", "traversal", "cmdi", "ssrf", "nosql"]
    kinds = ["malicious_attack"] * 5 + ["malicious_probe"] * 2 + ["authn_login_fail"] * 2 + ["authn_login_success"]
    rows = []
    for i in range(N):
        ts = NOW - 30 * DAY + (i * 30 * DAY) // N
        action = rnd.choice(kinds)
        ip = f"198.{18 + (i % 2)}.{rnd.randrange(100)}.{rnd.randrange(200)}"
        user = f"user{rnd.randrange(2000)}@example.com" if action.startswith("authn_") else None
        eid = uuid.UUID(int=rnd.getrandbits(128)).hex
        doc = {
            "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + ".000Z",
            "event": {"id": eid, "kind": "alert", "category": ["intrusion_detection"], "action": action,
                      "outcome": "unknown", "severity": 4},
            "log": {"level": "warning"}, "message": f"{action} in args.q",
            "source": {"ip": ip}, "url": {"path": f"/api/items/{i % 500}", "query": "q=[redacted]"},
            "http": {"request": {"method": "GET", "id": eid[:16]}},
        }
        if user:
            doc["user"] = {"name": user}
        if action == "malicious_attack":
            doc["kevlar"] = {"family": rnd.choice(families), "rule": "r", "location": "args.q",
                             "excerpt": "1' OR '1'='1", "score": 8}
        rows.append((ts, eid, action, 4, ip, user, eid[:16], json.dumps(doc)))
        if len(rows) == 50_000:
            con.executemany("INSERT INTO events (ts_ms, event_id, action, severity, ip, user_name, request_id, doc) VALUES (?,?,?,?,?,?,?,?)", rows)
            rows = []
    if rows:
        con.executemany("INSERT INTO events (ts_ms, event_id, action, severity, ip, user_name, request_id, doc) VALUES (?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()


def main():
    work = tempfile.mkdtemp()
    data = os.path.join(work, "data")
    os.makedirs(data)
    t = time.time()
    fill(os.path.join(data, "events.db"))
    print(f"store: {N} events written in {time.time() - t:.1f} s")
    up = subprocess.Popen(["python3", "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=work,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    line = up.stdout.readline()
    m = re.search(r"port (\d+)", line)
    port = int(m.group(1))
    t = time.time()
    k = subprocess.Popen([KEVLAR, "guard", "--upstream", f"http://127.0.0.1:{port}", "--listen", "127.0.0.1:0",
                          "--admin", "127.0.0.1:0", "--data-dir", data], stderr=subprocess.PIPE, text=True)
    try:
        admin = None
        for line in k.stderr:
            m = re.search(r"kevlar: ready .* admin=([0-9.:]+)", line)
            if m:
                admin = m.group(1)
                break
        print(f"start with the rollups backfilled: {time.time() - t:.1f} s")
        threading.Thread(target=lambda: [None for _ in k.stderr], daemon=True).start()
        host, aport = admin.split(":")
        token = open(os.path.join(data, "admin.token")).read().strip()
        c = http.client.HTTPConnection(host, int(aport))
        c.request("POST", "/login", body=f"token={token}", headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie").split(";")[0]
        pages = ["/", "/?range=day", "/?range=month", "/events", "/events?action=malicious_*",
                 "/events?user=user7%40example.com", "/blackbook", "/logins", "/logins/user7%40example.com",
                 "/routes", "/app", "/alerts", "/dependencies", "/exclusions"]
        assets = 0
        for a in ["/assets/dashboard.css", "/assets/dashboard.js", "/assets/favicon.svg"]:
            c.request("GET", a, headers={"Cookie": cookie})
            assets += len(c.getresponse().read())
        times = {p: [] for p in pages}
        sizes = {}
        for _ in range(ROUNDS):
            for p in pages:
                t = time.perf_counter()
                c.request("GET", p, headers={"Cookie": cookie})
                r = c.getresponse()
                body = r.read()
                times[p].append((time.perf_counter() - t) * 1000)
                assert r.status == 200, (p, r.status, body[:200])
                sizes[p] = len(body)
        print(f"\n{'page':<36} {'KB (page+assets)':>17} {'median ms':>10} {'worst ms':>9}")
        worst = 0
        for p in pages:
            kb = (sizes[p] + assets) / 1024
            med, mx = statistics.median(times[p]), max(times[p])
            worst = max(worst, mx)
            flag = "" if kb <= 150 and med <= 200 else "  over budget"
            print(f"{p:<36} {kb:>17.1f} {med:>10.1f} {mx:>9.1f}{flag}")
        print(f"assets: {assets / 1024:.1f} KB (cached for an hour after the first page)")

        # The live feed at 1,000 events/s.
        got = []
        live = http.client.HTTPConnection(host, int(aport))
        c.request("GET", "/events", headers={"Cookie": cookie})
        last = re.search(rb'data-live="([^"]+)"', c.getresponse().read()).group(1).decode().replace("&amp;", "&")
        live.request("GET", last, headers={"Cookie": cookie})
        lr = live.getresponse()
        stop = threading.Event()

        def read():
            buf = b""
            while not stop.is_set():
                chunk = lr.fp.readline()
                if not chunk:
                    break
                if chunk.startswith(b"data:"):
                    got.append(time.time())
        rt = threading.Thread(target=read, daemon=True)
        rt.start()
        sent = 0
        poster = http.client.HTTPConnection(host, int(aport))
        start = time.time()
        rate, seconds = 1000, 5
        while sent < rate * seconds:
            wait = start + sent / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            ev = {"event": {"action": "malicious_attack"}, "message": "bench", "source": {"ip": "203.0.113.5"}}
            poster.request("POST", "/v1/events", body=json.dumps(ev),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            poster.getresponse().read()
            sent += 1
        sent_at = time.time()
        post_rate = sent / (sent_at - start)
        deadline = sent_at + 10
        while len(got) < sent and time.time() < deadline:
            time.sleep(0.05)
        stop.set()
        lag = (got[-1] - sent_at) * 1000 if got else float("nan")
        print(f"\nlive feed: {sent} events posted at {post_rate:.0f}/s, {len(got)} arrived; the last "
              f"{lag:.0f} ms after the last post")
    finally:
        k.terminate()
        k.wait(timeout=30)
        up.terminate()


main()
