"""Attack request → alert leaving Kevlar: sends ROUNDS attack requests through a running Kevlar, one
at a time, and times each until the webhook receiver (started here, on a given port) has the
`malicious_attack` event for it. Prints the delays.

Usage: alerts_latency.py KEVLAR_URL RECEIVER_PORT ROUNDS
"""
import http.server
import json
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

kevlar, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
arrived = {}
cond = threading.Condition()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        now = time.monotonic()
        try:
            ev = json.loads(body)
            q = (ev.get("url") or {}).get("query") or ""
            with cond:
                for tok in q.split("tok")[1:]:
                    arrived.setdefault(tok.split("-")[0], now)
                cond.notify_all()
        except ValueError:
            pass
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Hook)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("READY", flush=True)
time.sleep(0.5)
delays = []
for i in range(rounds):
    tok = f"{i}x{int(time.time() * 1000)}"
    q = urllib.parse.quote(f"1' UNION SELECT password FROM users --tok{tok}-")
    t0 = time.monotonic()
    try:
        urllib.request.urlopen(f"{kevlar}/?q={q}", timeout=5).read()
    except Exception:
        pass
    with cond:
        cond.wait_for(lambda: tok in arrived, timeout=5)
        if tok in arrived:
            delays.append((arrived[tok] - t0) * 1000)
    time.sleep(0.05)
srv.shutdown()
if not delays:
    print("no alert arrived")
    sys.exit(1)
delays.sort()
print(f"attack → webhook: {len(delays)}/{rounds} arrived; median {statistics.median(delays):.1f} ms, "
      f"p90 {delays[int(len(delays) * 0.9) - 1]:.1f} ms, max {delays[-1]:.1f} ms (target < 1000 ms)")
