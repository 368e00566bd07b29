"""Drives bench/supervisor.sh: Kevlar vs pm2 (fork mode) vs forever, on loopback, in one run."""
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

KEVLAR, APP, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
BIN = os.path.join(WORK, "node_modules", ".bin")
ENV = dict(os.environ, PM2_HOME=os.path.join(WORK, "pm2"), FOREVER_ROOT=os.path.join(WORK, "forever"))
CRASHES = 5


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def fetch(port, path="/", timeout=2.0):
    """(status, body), or (None, b"") when the request failed (refused, reset, timeout)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None, b""


def get(port, path="/", timeout=2.0):
    return fetch(port, path, timeout)[0]


def wait_up(port, limit=30.0):
    end = time.time() + limit
    while time.time() < end:
        if get(port) == 200:
            return True
        time.sleep(0.01)
    raise SystemExit(f"nothing answered on port {port}")


class Loop:
    """A steady request loop (one request at a time per thread) counting failures."""

    def __init__(self, port, threads=1):
        self.port, self.ok, self.failed, self.stop = port, 0, 0, False
        self.last_ok = 0.0
        self.pid = b""
        self.new_pid_at = None
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stop:
            s, body = fetch(self.port)
            with self.lock:
                if s == 200:
                    self.ok += 1
                    self.last_ok = time.time()
                    if self.pid and body != self.pid and self.new_pid_at is None:
                        self.new_pid_at = self.last_ok
                    if not self.pid:
                        self.pid = body
                else:
                    self.failed += 1
            if s != 200:
                time.sleep(0.002)

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()
        return self.ok, self.failed


def recovery(name, port, crashes=None, settle=0.3):
    """Crash the app `crashes` (CRASHES) times under a steady loop, each `settle` + 0.2 s after it
    answers; median crash→next success, failures."""
    times, failures = [], 0
    for _ in range(crashes or CRASHES):
        wait_up(port)
        time.sleep(settle)
        loop = Loop(port)
        time.sleep(0.2)
        with loop.lock:
            before_failed = loop.failed
        t0 = time.time()
        get(port, "/crash")
        # The first answer from the new process (the old one answers until it exits).
        while True:
            with loop.lock:
                if loop.new_pid_at is not None:
                    break
            if time.time() - t0 > 30:
                raise SystemExit(f"{name}: no recovery within 30 s")
            time.sleep(0.0005)
        t1 = loop.new_pid_at
        time.sleep(0.3)
        ok, failed = loop.finish()
        times.append((t1 - t0) * 1000)
        failures += failed - before_failed
    return statistics.median(times), failures


def run_kevlar(extra_cfg="", min_uptime="100ms"):
    port, admin = free_port(), free_port()
    data = os.path.join(WORK, f"kevlar-{port}")
    os.makedirs(data, exist_ok=True)
    cfg = os.path.join(data, "kevlar.toml")
    with open(cfg, "w") as f:
        f.write(f'[access_log]\ntarget = "off"\n[app]\nmin_uptime = "{min_uptime}"\n[app.logs]\necho = false\n' + extra_cfg)
    p = subprocess.Popen(
        [KEVLAR, "run", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}", "--data-dir", data, "--config", cfg, "--", "node", APP],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_up(port)
    return p, port, data


def rss_cpu(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS")][0] / 1024
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
        ticks = int(parts[11]) + int(parts[12])
    return rss, ticks / os.sysconf("SC_CLK_TCK")


def main():
    print(f"recovery: median of {CRASHES} crashes, time from the crash request to the first answer of the new process;")
    print("          failed = requests of a steady one-at-a-time loop that failed across all crashes")
    print(f"{'supervisor':<28} {'recovery ms':>12} {'failed':>8}")

    # Kevlar: through its proxy.
    p, port, data = run_kevlar()
    ms, failed = recovery("kevlar", port)
    print(f"{'kevlar run (via its proxy)':<28} {ms:12.1f} {failed:8d}")
    p.terminate()
    p.wait()

    # Kevlar with its default min_uptime (10 s), the app crashing 2 s after it started: a first
    # crash restarts at once (a fresh Kevlar for each of the CRASHES samples).
    times, failed = [], 0
    for _ in range(CRASHES):
        p, port, data = run_kevlar(min_uptime="10s")
        ms1, f1 = recovery("kevlar (2 s)", port, crashes=1, settle=1.8)
        times.append(ms1)
        failed += f1
        p.terminate()
        p.wait()
    print(f"{'kevlar run, crash at 2 s':<28} {statistics.median(times):12.1f} {failed:8d}")

    # pm2, fork mode: the app's own port.
    port = free_port()
    env = dict(ENV, PORT=str(port))
    subprocess.run([os.path.join(BIN, "pm2"), "start", APP, "--name", "bench", "--restart-delay", "0"], env=env, stdout=subprocess.DEVNULL, check=True)
    ms, failed = recovery("pm2", port)
    print(f"{'pm2 (fork mode)':<28} {ms:12.1f} {failed:8d}")

    # Reload under a steady loop: pm2.
    wait_up(port)
    loop = Loop(port, threads=4)
    time.sleep(0.5)
    subprocess.run([os.path.join(BIN, "pm2"), "reload", "bench"], env=env, stdout=subprocess.DEVNULL, check=True)
    time.sleep(1.0)
    pm2_ok, pm2_failed = loop.finish()
    subprocess.run([os.path.join(BIN, "pm2"), "delete", "bench"], env=env, stdout=subprocess.DEVNULL)

    # forever.
    port = free_port()
    env = dict(ENV, PORT=str(port))
    subprocess.run([os.path.join(BIN, "forever"), "start", "--minUptime", "100", "--spinSleepTime", "0", APP], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ms, failed = recovery("forever", port)
    print(f"{'forever':<28} {ms:12.1f} {failed:8d}")
    subprocess.run([os.path.join(BIN, "forever"), "stopall"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # Reload under a steady loop: Kevlar.
    p, port, data = run_kevlar()
    loop = Loop(port, threads=4)
    time.sleep(0.5)
    subprocess.run([KEVLAR, "reload", "--data-dir", data], stdout=subprocess.DEVNULL, check=True)
    time.sleep(1.0)
    kv_ok, kv_failed = loop.finish()
    print()
    print("reload under a steady loop (4 threads)")
    print(f"{'kevlar reload':<28} {kv_failed:5d} failed of {kv_ok + kv_failed}")
    print(f"{'pm2 reload (fork mode)':<28} {pm2_failed:5d} failed of {pm2_ok + pm2_failed}")

    # Overhead: Kevlar's own process, idle and while the app serves load through it.
    time.sleep(1.0)
    rss0, cpu0 = rss_cpu(p.pid)
    time.sleep(5.0)
    rss1, cpu1 = rss_cpu(p.pid)
    loop = Loop(port, threads=2)
    time.sleep(5.0)
    ok, _ = loop.finish()
    rss2, cpu2 = rss_cpu(p.pid)
    print()
    print(f"kevlar idle: {rss1:.1f} MB RSS, {(cpu1 - cpu0) / 5 * 100:.2f}% of a core (health checks every 5 s)")
    print(f"kevlar under load ({ok / 5:.0f} req/s through its proxy): {rss2:.1f} MB RSS, {(cpu2 - cpu1) / ok * 1e6:.1f} µs CPU per request")
    p.terminate()
    p.wait()


main()
