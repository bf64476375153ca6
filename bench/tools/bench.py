#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  bench.py idle --port P --conns N [--path /fast] [--max-seconds S]
      Opens N keep-alive connections, sends one request on each, reads the answer,
      prints "ready ok=N fail=M ..." and keeps them open until SIGTERM or --max-seconds.
  bench.py table RESULT_DIR
      Renders RESULT_DIR/cells.csv + memory.csv + notes.txt as markdown (table.md) and prints it.
  bench.py compare RESULT_DIR_A RESULT_DIR_B
      Cell by cell: req/s and CPU per request of B against A, and the tracegate/anchor
      ratios of both runs (the figure that survives machine drift).
"""
import argparse
import csv
import os
import resource
import signal
import socket
import sys
import time


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_response(sock):
    """Reads one HTTP/1.1 response (Content-Length or chunked). Returns the status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    while True:
        if length is not None and len(body) >= length:
            break
        if chunked and body.endswith(b"0\r\n\r\n"):
            break
        if length is None and not chunked:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the response body")
        body += chunk
    return status


def cmd_idle(args):
    limit = raise_nofile(args.conns + 256)
    if limit < args.conns + 64:
        print(f"ready ok=0 fail={args.conns} error=RLIMIT_NOFILE_{limit}_too_low", flush=True)
        return 1
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    req = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    socks, fails, first_error = [], 0, ""
    deadline = time.monotonic() + args.max_seconds
    for _ in range(args.conns):
        if stop or time.monotonic() > deadline:
            break
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            s.sendall(req)
            status = read_response(s)
            if status != 200:
                raise ConnectionError(f"HTTP_{status}")
            socks.append(s)
        except (OSError, ValueError, IndexError) as exc:
            fails += 1
            first_error = first_error or type(exc).__name__ + ":" + str(exc).replace(" ", "_")
            if s is not None:
                s.close()
    print(f"ready ok={len(socks)} fail={fails} error={first_error or '-'}", flush=True)
    while not stop and time.monotonic() < deadline:
        time.sleep(0.1)
    for s in socks:
        s.close()
    return 0


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value, digits=0):
    if value is None:
        return ""
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def render(res):
    cells = read_csv(os.path.join(res, "cells.csv"))
    mem = read_csv(os.path.join(res, "memory.csv"))
    by_key = {(c["scenario"], c["conns"], c["target"]): c for c in cells}
    out = [
        "| scenario | conns | target | req/s | p50 ms | p99 ms | CPU us/req | errors | other % "
        "| RSS / PSS MiB | tg/nginx | tg/haproxy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for c in cells:
        if c.get("note", "").startswith("skip"):
            out.append(f"| {c['scenario']} | {c['conns']} | {c['target']} | {c['note']} "
                       "| | | | | | | | |")
            continue
        rps, cpu = num(c["rps"]), num(c["cpu_us_per_req"])
        cols = [c["scenario"], c["conns"], c["target"], fmt(rps), fmt(num(c["p50_ms"]), 2),
                fmt(num(c["p99_ms"]), 2), fmt(cpu, 1), c["errors"], c.get("other_cpu_pct", ""), ""]
        failed = (num(c["errors"]) or 0) > 0.01 * (num(c["requests"]) or 0)
        for anchor in ("nginx", "haproxy"):
            a = by_key.get((c["scenario"], c["conns"], anchor))
            cell = ""
            if c["target"] == "tracegate" and failed:
                cell = "n/a (errors)"
            elif c["target"] == "tracegate" and a and not a.get("note", "").startswith("skip"):
                r, rc = ratio(rps, num(a["rps"])), ratio(cpu, num(a["cpu_us_per_req"]))
                cell = f"{fmt(r, 2)} (cpu {fmt(rc, 2)})" if r is not None else ""
            cols.append(cell)
        out.append("| " + " | ".join(cols) + " |")
    mem_by = {m["target"]: m for m in mem}
    for m in mem:
        if m.get("note", "").startswith("skip"):
            out.append(f"| idle | {m['conns_requested']} | {m['target']} | {m['note']} "
                       "| | | | | | | | |")
            continue
        rss, pss = num(m["rss_kb"]), num(m["pss_kb"])
        mib = f"{fmt(rss / 1024, 1)} / {fmt(pss / 1024, 1) if pss else 'n/a'}"
        mib += f" (+{m['kib_per_conn']} KiB/conn)"
        cols = ["idle", m["conns_ok"], m["target"], "", "", "", "", m["fail"], "", mib]
        for anchor in ("nginx", "haproxy"):
            a = mem_by.get(anchor)
            cell = ""
            if m["target"] == "tracegate" and a and num(a.get("rss_kb")):
                cell = f"rss {fmt(ratio(rss, num(a['rss_kb'])), 2)}"
            cols.append(cell)
        out.append("| " + " | ".join(cols) + " |")
    notes_path = os.path.join(res, "notes.txt")
    if os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = [line.rstrip() for line in f if line.strip()]
        if notes:
            out.append("")
            out.extend(f"- {n}" for n in notes)
    return "\n".join(out) + "\n"


def cmd_table(args):
    text = render(args.result_dir)
    with open(os.path.join(args.result_dir, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def cmd_compare(args):
    a_cells = {(c["scenario"], c["conns"], c["target"]): c
               for c in read_csv(os.path.join(args.a, "cells.csv"))}
    b_cells = read_csv(os.path.join(args.b, "cells.csv"))
    print(f"A = {os.path.basename(os.path.normpath(args.a))}, "
          f"B = {os.path.basename(os.path.normpath(args.b))}")
    print("| scenario | conns | target | req/s A | req/s B | B/A | CPU us/req A | CPU us/req B "
          "| tg/nginx A | tg/nginx B |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    b_by = {(c["scenario"], c["conns"], c["target"]): c for c in b_cells}
    for c in b_cells:
        key = (c["scenario"], c["conns"], c["target"])
        a = a_cells.get(key, {})
        ra, rb = num(a.get("rps")), num(c.get("rps"))
        tg = ["", ""]
        if c["target"] == "tracegate":
            for i, run in enumerate((a_cells, b_by)):
                t, n = run.get(key, {}), run.get((key[0], key[1], "nginx"), {})
                tg[i] = fmt(ratio(num(t.get("rps")), num(n.get("rps"))), 2)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(ra)} | {fmt(rb)} "
              f"| {fmt(ratio(rb, ra), 2)} | {fmt(num(a.get('cpu_us_per_req')), 1)} "
              f"| {fmt(num(c.get('cpu_us_per_req')), 1)} | {tg[0]} | {tg[1]} |")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("idle")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--conns", type=int, default=5000)
    s.add_argument("--path", default="/fast")
    s.add_argument("--max-seconds", type=float, default=120)
    s.set_defaults(fn=cmd_idle)
    s = sub.add_parser("table")
    s.add_argument("result_dir")
    s.set_defaults(fn=cmd_table)
    s = sub.add_parser("compare")
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(fn=cmd_compare)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
