#!/usr/bin/env python3
"""How fast tracegate routes around a sick upstream (bench/run.sh resilience).

Three tg-stub targets, each a process of its own, behind one pool; a few keep-alive clients
send GETs all along. Then:
  1. one target is killed (SIGKILL): time until it is ejected, and what it cost;
  2. it is started again on its port: time until a call reaches it;
  3. every call fails (the clients ask each target for a 500; health checks still pass, so
     the breaker alone acts): time until it refuses, and how fast those 503s are;
  4. calls succeed again: time until the upstream is logged recovered.
Prints a markdown table. Standard library only; every wait is bounded."""

import argparse
import datetime
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

CLIENTS = 8
CHECK_INTERVAL_MS = 1000


def wall_of(ts):
    """Seconds since the epoch of a log line's "ts" (UTC, milliseconds)."""
    d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


class LogTail:
    """The JSON lines a process wrote to path, read as they come."""

    def __init__(self, path):
        self.path, self.off, self.lines = path, 0, []

    def poll(self):
        with open(self.path, "rb") as f:
            f.seek(self.off)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.off += end
        for raw in data[:end].splitlines():
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                pass
        return self.lines

    def wait(self, pred, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for line in self.poll():
                if pred(line):
                    return line
            time.sleep(0.005)
        return None


def spawn(cmd, log_path, cpu=None):
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    log = open(log_path, "ab")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def listening_port(tail, seconds=5):
    line = tail.wait(lambda o: o.get("event") == "listening", seconds)
    if line is None:
        raise RuntimeError(f"{tail.path}: no listening line")
    return line["port"]


class Target:
    def __init__(self, stub, workdir, i, record):
        self.stub, self.workdir, self.i, self.record = stub, workdir, i, record
        self.port, self.proc = 0, None

    def start(self):
        log = os.path.join(self.workdir, f"target{self.i}.log")
        open(log, "w").close()
        self.proc = spawn([self.stub, "--listen", f"{self.port}:test", "--record", self.record],
                          log)
        self.port = listening_port(LogTail(log))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class Clients:
    """CLIENTS threads of steady GETs, each on a keep-alive connection; every answer kept as
    (monotonic time at the end, status or 0 for a failure, seconds taken)."""

    def __init__(self, port):
        self.port, self.stop, self.results, self.lock = port, False, [], threading.Lock()
        self.path = "/p/x"
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENTS)]

    def run(self):
        conn = None
        while not self.stop:
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.path)
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            t1 = time.monotonic()
            with self.lock:
                self.results.append((t1, status, t1 - t0))

    def since(self, t):
        with self.lock:
            return [r for r in self.results if r[0] >= t]

    def start(self):
        for th in self.threads:
            th.start()

    def join(self):
        self.stop = True
        for th in self.threads:
            th.join(10)


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def first_call_to(record, port, t_mono):
    """Monotonic time of the first proxied request (not a health check) on port after t."""
    try:
        with open(record) as f:
            for raw in f:
                o = json.loads(raw)
                if (o.get("event") == "request" and o.get("port") == port
                        and o.get("target") == "/x" and o["t_us"] / 1e6 >= t_mono):
                    return o["t_us"] / 1e6
    except (OSError, ValueError):
        pass
    return None


def conf_text(port, targets):
    return json.dumps({
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "upstreams": {"pool": {
            "targets": [f"http://127.0.0.1:{t.port}" for t in targets],
            "health_check": {"path": "/health", "interval_ms": CHECK_INTERVAL_MS,
                             "unhealthy_threshold": 3, "healthy_threshold": 2},
        }},
        "routes": [{"method": "GET", "path": "/p/*", "upstream": "pool", "strip_prefix": True}],
    })


def measure(args, targets, gw, clients, rows):
    dead = targets[2]
    url = f"http://127.0.0.1:{dead.port}"
    time.sleep(2)

    # 1. a target dies
    t_kill_wall, t_kill = time.time(), time.monotonic()
    dead.kill()
    ej = gw.wait(lambda o: o.get("event") == "upstream.ejected" and o.get("target") == url, 10)
    if ej is None:
        rows.append(("dead target (SIGKILL) -> ejected", "not within 10 s", ""))
    else:
        ms = (wall_of(ej["ts"]) - t_kill_wall) * 1000
        failed = sum(1 for o in gw.poll() if o.get("event") == "upstream.done"
                     and o.get("target") == url and "err" in o)
        errors = sum(1 for r in clients.since(t_kill) if r[1] != 200 and r[0] <= t_kill + ms / 1000 + 0.05)
        rows.append(("dead target (SIGKILL) -> ejected", f"{ms:.0f} ms",
                     f"{failed} failed attempts on it, {errors} client errors"))
    time.sleep(2)
    after = [r for r in clients.since(time.monotonic() - 1.5)]
    rows.append(("client errors once it is ejected",
                 f"{sum(1 for r in after if r[1] != 200)}", f"of {len(after)} requests in 1.5 s"))

    # 2. it comes back
    t_back = time.monotonic()
    dead.start()
    deadline = time.monotonic() + 30
    first = None
    while first is None and time.monotonic() < deadline:
        time.sleep(0.05)
        first = first_call_to(args.record, dead.port, t_back)
    rows.append(("target restarted -> first call to it",
                 f"{(first - t_back) * 1000:.0f} ms" if first else "not within 30 s",
                 f"health checks every {CHECK_INTERVAL_MS} ms, 2 passes to come back "
                 "(ejected 30 s without checks)"))
    time.sleep(2)

    # 3. every target fails: the breaker trips once failures outweigh the window's accepts
    t_fail = time.monotonic()
    clients.path = "/p/x?status=500"
    first503, deadline = None, time.monotonic() + 12
    while first503 is None and time.monotonic() < deadline:
        time.sleep(0.05)
        first503 = min((r[0] for r in clients.since(t_fail) if r[1] == 503), default=None)
    rows.append(("every call failing (500) -> first 503 from the breaker",
                 f"{(first503 - t_fail) * 1000:.0f} ms" if first503 else "none in 12 s",
                 f"{len([r for r in clients.since(t_fail) if first503 and r[0] <= first503])} "
                 "failing calls first (the 10 s window held successes)"))
    if first503 is not None:
        time.sleep(3)
        got = [r for r in clients.since(first503) if r[0] <= first503 + 3]
        refused = [r for r in got if r[1] == 503]
        failed = [r for r in got if r[1] == 500]
        own = [o["duration_ms"] for o in gw.poll() if o.get("event") == "request.done"
               and o.get("reason") == "breaker open"]
        rows.append(("breaker open -> 503 answered (the gateway's own time)",
                     f"p50 {pct(own, 0.5):.3f} ms, p99 {pct(own, 0.99):.3f} ms",
                     f"at the clients: p50 {pct([r[2] for r in refused], 0.5) * 1000:.2f} ms; "
                     f"a failing call: p50 {pct([r[2] for r in failed], 0.5) * 1000:.2f} ms"))
        rows.append(("requests refused at once in the 3 s after it opened",
                     f"{100 * len(refused) / max(1, len(got)):.0f} %",
                     f"{len(got)} requests, {len(failed)} reached a target"))

    # 4. calls succeed again
    t_heal_wall, t_heal = time.time(), time.monotonic()
    clients.path = "/p/x"
    rec = gw.wait(lambda o: o.get("event") == "upstream.recovered" and wall_of(o["ts"]) >= t_heal_wall - 0.001, 15)
    rows.append(("calls succeed again -> breaker closed (upstream.recovered)",
                 f"{(wall_of(rec['ts']) - t_heal_wall) * 1000:.0f} ms" if rec else "not within 15 s",
                 f"first 200: {(min((r[0] for r in clients.since(t_heal) if r[1] == 200), default=t_heal) - t_heal) * 1000:.0f} ms"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracegate", required=True)
    ap.add_argument("--stub", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateway-cpu", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    work = os.path.join(args.out, "raw")
    os.makedirs(work, exist_ok=True)
    args.record = os.path.join(work, "targets-record.jsonl")
    open(args.record, "w").close()
    targets = [Target(args.stub, work, i, args.record) for i in range(3)]
    gw_proc, clients, rows = None, None, []
    try:
        for t in targets:
            t.start()
        conf = os.path.join(work, "tracegate-resilience.json")
        with open(conf, "w") as f:
            f.write(conf_text(args.port, targets))
        log = os.path.join(work, "tracegate-resilience.log")
        open(log, "w").close()
        gw_proc = spawn([args.tracegate, "-c", conf, "--port", str(args.port)], log,
                        args.gateway_cpu)
        gw = LogTail(log)
        listening_port(gw)
        clients = Clients(args.port)
        clients.start()
        measure(args, targets, gw, clients, rows)
    finally:
        if clients is not None:
            clients.join()
        if gw_proc is not None:
            gw_proc.terminate()
            gw_proc.wait(15)
        for t in targets:
            t.stop()
    print("| from -> to | measured | detail |")
    print("|---|---:|---|")
    for what, value, detail in rows:
        print(f"| {what} | {value} | {detail} |")
    n = len(clients.results) if clients else 0
    print(f"\n{CLIENTS} keep-alive Python clients (their latencies are an upper bound), {n} "
          "requests in all; one gateway worker.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
