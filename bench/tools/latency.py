#!/usr/bin/env python3
"""The two latency distributions of the deadlines issue (standard library only).

Run by `bench/run.sh latency`, against a running tracegate whose conf has
  GET /hold     -> the stub upstream, long timeout
  GET /deadline -> the stub upstream, timeout_ms = --deadline-ms
and a tg-stub writing its connection events to --record (one JSON object a line, with
CLOCK_MONOTONIC microsecond timestamps; time.monotonic_ns() reads the same clock).

  close:    the client sends GET /hold?hang=1, waits until the stub has the request, closes;
            sample = stub's close of the upstream connection - the client's close.
  deadline: the client sends GET /deadline?hang=1;
            sample = 504 head received - request sent - deadline.
            Also reported: stub's close of the upstream connection - (send + deadline).

Writes OUT/latency-close.csv and OUT/latency-deadline.csv, prints a markdown summary.
"""
import argparse
import json
import os
import socket
import sys
import time

GOAL_MS = 2.0
POLL_S = 0.0002


def now_us():
    return time.monotonic_ns() // 1000


class Record:
    """Follows the stub's record file as it grows."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.buf = b""
        self.f.seek(0, os.SEEK_END)

    def events(self):
        self.buf += self.f.read()
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            try:
                yield json.loads(line)
            except ValueError:
                continue

    def wait(self, match, timeout_s, pending):
        """Returns the first event (seen now or kept in pending) for which match() is true."""
        end = time.monotonic() + timeout_s
        while True:
            for i, ev in enumerate(pending):
                if match(ev):
                    return pending.pop(i)
            pending.extend(self.events())
            if any(match(ev) for ev in pending):
                continue
            if time.monotonic() > end:
                return None
            time.sleep(POLL_S)


def header(ev, name):
    for pair in ev.get("headers") or []:
        if len(pair) == 2 and str(pair[0]).lower() == name.lower():
            return pair[1]
    return None


def request_of(tag):
    """Matches the stub's request event carrying our tag (or any request when the
    stub does not report headers)."""
    def match(ev):
        if ev.get("event") != "request":
            return False
        if "headers" not in ev:
            return True
        return header(ev, "x-trace-id") == tag or tag in json.dumps(ev.get("headers"))
    return match


def close_of(conn_id):
    def match(ev):
        return ev.get("event") == "close" and (conn_id is None or ev.get("conn_id") == conn_id)
    return match


def send(port, path, tag):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trace-Id: {tag}\r\n\r\n".encode()
    return s, req


def sample_close(port, rec, pending, i):
    tag = f"bench-close-{os.getpid()}-{i}"
    s, req = send(port, "/hold?hang=1", tag)
    try:
        s.sendall(req)
        ev = rec.wait(request_of(tag), 3, pending)
        if ev is None:
            return None, "stub never got the request"
        t_close = now_us()
    finally:
        s.close()
    ev = rec.wait(close_of(ev.get("conn_id")), 3, pending)
    if ev is None:
        return None, "upstream connection not closed within 3 s"
    return (ev["t_us"] - t_close) / 1000.0, ""


def sample_deadline(port, rec, pending, i, deadline_ms):
    tag = f"bench-deadline-{os.getpid()}-{i}"
    s, req = send(port, "/deadline?hang=1", tag)
    try:
        t_send = now_us()
        s.sendall(req)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return None, None, "connection closed without an answer"
            data += chunk
        t_recv = now_us()
    except socket.timeout:
        return None, None, "no answer within 5 s"
    finally:
        s.close()
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    wire_ms = (t_recv - t_send) / 1000.0 - deadline_ms
    up_ms = None
    ev = rec.wait(request_of(tag), 1, pending)
    if ev is not None:
        cl = rec.wait(close_of(ev.get("conn_id")), 1, pending)
        if cl is not None:
            up_ms = (cl["t_us"] - t_send) / 1000.0 - deadline_ms
    if " 504" not in status:
        return None, None, f"answer was '{status}'"
    return wire_ms, up_ms, ""


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]


def summary(name, values, fails, reasons):
    if not values:
        return f"| {name} | 0 | {fails} | | | | | no samples ({'; '.join(sorted(reasons))}) |"
    verdict = "met" if pct(values, 99) < GOAL_MS else "NOT met"
    extra = f"; failures: {'; '.join(sorted(reasons))}" if reasons else ""
    return (f"| {name} | {len(values)} | {fails} | {pct(values, 50):.3f} | {pct(values, 90):.3f} "
            f"| {pct(values, 99):.3f} | {max(values):.3f} | p99 < {GOAL_MS:g} ms {verdict}{extra} |")


def run(args):
    rec = Record(args.record)
    pending = []
    rows = []

    close_ms, fails, reasons = [], 0, set()
    with open(os.path.join(args.out, "latency-close.csv"), "w") as f:
        f.write("sample,close_to_upstream_close_ms,error\n")
        for i in range(args.samples):
            ms, err = sample_close(args.port, rec, pending, i)
            f.write(f"{i},{'' if ms is None else f'{ms:.3f}'},{err}\n")
            if ms is None:
                fails += 1
                reasons.add(err)
                if fails > 20 and not close_ms:
                    break
            else:
                close_ms.append(ms)
            del pending[:-1000]
    rows.append(summary("client close -> upstream close", close_ms, fails, reasons))

    wire, upstream, fails, reasons = [], [], 0, set()
    with open(os.path.join(args.out, "latency-deadline.csv"), "w") as f:
        f.write("sample,deadline_to_504_ms,deadline_to_upstream_close_ms,error\n")
        for i in range(args.samples):
            w, u, err = sample_deadline(args.port, rec, pending, i, args.deadline_ms)
            f.write(f"{i},{'' if w is None else f'{w:.3f}'},{'' if u is None else f'{u:.3f}'},{err}\n")
            if w is None:
                fails += 1
                reasons.add(err)
                if fails > 20 and not wire:
                    break
            else:
                wire.append(w)
                if u is not None:
                    upstream.append(u)
            del pending[:-1000]
    rows.append(summary(f"deadline ({args.deadline_ms} ms) -> 504 on the wire", wire, fails, reasons))
    rows.append(summary("deadline -> upstream close (extra)", upstream, len(wire) - len(upstream),
                        {"upstream close not seen"} if len(upstream) < len(wire) else set()))

    print("| distribution (ms) | samples | failed | p50 | p90 | p99 | max | goal |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True, help="tracegate port")
    p.add_argument("--record", required=True, help="the stub's record file")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--deadline-ms", type=float, default=50)
    p.add_argument("--out", default=".")
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
