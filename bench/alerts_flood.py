"""The alert flood: N attacks from N different addresses through a running-here Kevlar (guard in
front of the demo app, every `malicious_*` event routed to a webhook and to the owner's email),
while a real user signs in from a new network in the middle of it. Reports what each receiver
got, when the user's notice arrived, Kevlar's peak memory, and the outbox and store sizes — then
again after retention has run with no traffic.

Usage: alerts_flood.py KEVLAR_BIN APP_URL WORKDIR [N] [RETENTION_S]

Needs aiosmtpd (scripts/test.sh installs it). Sends traffic only to 127.0.0.1 and stops by itself.
"""
import http.client
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from aiosmtpd.controller import Controller

kevlar_bin, app_url, work = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
retention_s = int(sys.argv[5]) if len(sys.argv) > 5 else 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


lock = threading.Lock()
mail = {}  # recipient -> [(time, subject)]


class Mail:
    async def handle_DATA(self, server, session, envelope):
        subj = re.search(rb"^Subject: (.*)$", envelope.content, re.M)
        with lock:
            for r in envelope.rcpt_tos:
                mail.setdefault(r, []).append((time.monotonic(), (subj.group(1) if subj else b"").decode()))
        return "250 OK"


smtp_port = free_port()
smtp = Controller(Mail(), hostname="127.0.0.1", port=smtp_port)
smtp.start()

hook_posts = [0]


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            hook_posts[0] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()

data = os.path.join(work, "flood-data")
conf = os.path.join(work, "flood.toml")
with open(conf, "w") as f:
    f.write(f"""
[store]
retention = "{retention_s}s"

[bans]
enforce = false

[[alerts.sink]]
name = "mail"
type = "email"
server = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Kevlar <kevlar@example.com>"
to = "ops@example.com"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:{hook.server_address[1]}/alerts"

[[alerts.sink]]
name = "file"
type = "file"
path = "alerts.jsonl"

[[alerts.route]]
categories = ["malicious-traffic"]
sinks = ["mail", "hook"]
""")
log = open(os.path.join(work, "flood-kevlar.log"), "w+")
k = subprocess.Popen(
    [kevlar_bin, "guard", "--upstream", app_url, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
     "--data-dir", data, "--config", conf, "--trusted-proxy", "127.0.0.1/32"],
    stderr=log,
)
addr = None
for _ in range(400):
    log.seek(0)
    m = re.search(r"kevlar: ready http=([0-9.:]+)", log.read())
    if m:
        addr = m.group(1)
        break
    time.sleep(0.05)
if not addr:
    print("Kevlar did not start")
    k.kill()
    sys.exit(1)
host, port = addr.rsplit(":", 1)


def request(method, path, xff, body=None):
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"X-Forwarded-For": xff}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def size(name):
    return sum(os.path.getsize(os.path.join(data, n)) for n in (name, name + "-wal", name + "-shm")
               if os.path.exists(os.path.join(data, n)))


login = "email=alice%40example.com&password=correct+horse+battery+staple"
assert request("POST", "/login", "192.0.2.10", login) == 302, "alice's first login"
rss0 = rss_kb(k.pid, "VmRSS")
attack = "/?q=" + urllib.parse.quote("1' UNION SELECT password FROM users--")
done = [0]
notice_sent = [None]


def worker(lo, hi):
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    for i in range(lo, hi):
        xff = f"10.{i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
        c.request("GET", attack, headers={"X-Forwarded-For": xff})
        c.getresponse().read()
        with lock:
            done[0] += 1
            if done[0] == n // 2 and notice_sent[0] is None:
                notice_sent[0] = -1
    c.close()


threads = 8
t0 = time.monotonic()
ts = [threading.Thread(target=worker, args=(n * j // threads, n * (j + 1) // threads)) for j in range(threads)]
for t in ts:
    t.start()
while True:
    with lock:
        if notice_sent[0] == -1:
            notice_sent[0] = 0
            break
    time.sleep(0.01)
# Halfway through: alice signs in from a new network.
login_at = time.monotonic()
assert request("POST", "/login", "203.0.113.5", login) == 302, "alice's new-network login"
for t in ts:
    t.join()
flood_s = time.monotonic() - t0

deadline = time.monotonic() + 60
arrived = None
while time.monotonic() < deadline:
    with lock:
        got = [t for t, s in mail.get("alice@example.com", []) if "New sign-in" in s]
    if got:
        arrived = got[0]
        break
    time.sleep(0.05)
time.sleep(3)  # let the sinks drain what they will send now
peak = rss_kb(k.pid, "VmHWM")
with lock:
    ops = len(mail.get("ops@example.com", []))
    alice = len(mail.get("alice@example.com", []))
    posts = hook_posts[0]
others = sum(len(v) for r, v in mail.items() if r not in ("ops@example.com", "alice@example.com"))
lines = 0
fp = os.path.join(data, "alerts.jsonl")
if os.path.exists(fp):
    with open(fp) as f:
        lines = sum(1 for _ in f)
print(f"flood: {n} attacks from {n} addresses in {flood_s:.1f} s ({n / flood_s:.0f}/s), 8 clients")
print(f"  webhook POSTs: {posts}; ops emails: {ops}; file sink lines: {lines}; mails to anyone else: {others}")
if arrived:
    print(f"  alice's new-network notice: delivered {(arrived - login_at) * 1000:.0f} ms after her login "
          f"(during the flood), {alice} mail(s) to her in all")
else:
    print("  alice's new-network notice: NOT delivered within 60 s")
print(f"  Kevlar RSS: {rss0 / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB")
print(f"  outbox.db: {size('outbox.db') / 1e6:.2f} MB; events.db: {size('events.db') / 1e6:.2f} MB")
time.sleep(retention_s + 8)
print(f"  after {retention_s + 8} s with no traffic (store.retention = {retention_s}s): "
      f"events.db {size('events.db') / 1e6:.2f} MB, shield.db {size('shield.db') / 1e6:.2f} MB, "
      f"outbox.db {size('outbox.db') / 1e6:.2f} MB")
# The held deliveries leave as one digest per sink when the budget gives a token back (30/h: within
# two minutes); the outbox gives their space back within the next minute.
t1 = time.monotonic()
while time.monotonic() - t1 < 180:
    with lock:
        if hook_posts[0] > posts and len(mail.get("ops@example.com", [])) > ops:
            break
    time.sleep(0.5)
digest_s = time.monotonic() - t1 + retention_s + 8
time.sleep(65)
with lock:
    print(f"  digests: webhook {hook_posts[0] - posts}, ops email {len(mail.get('ops@example.com', [])) - ops} "
          f"(~{digest_s:.0f} s after the flood); outbox.db a minute later: {size('outbox.db') / 1e6:.2f} MB")
k.terminate()
k.wait(timeout=20)
smtp.stop()
hook.shutdown()
sys.exit(0 if arrived else 1)
