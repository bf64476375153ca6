#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  bench.py idle --port P --conns N [--path /fast] [--max-seconds S]
      Opens N keep-alive connections, sends one request on each, reads the answer,
      prints "ready ok=N fail=M ..." and keeps them open until SIGTERM or --max-seconds.
  bench.py table RESULT_DIR
      Renders RESULT_DIR/cells.csv + memory.csv + notes.txt as markdown (table.md) and prints it:
      one row per cell, the median of its rounds with the range (min-max) beside it.
  bench.py cost RESULT_DIR
      Renders RESULT_DIR/cost.csv (instructions and system calls per request) as cost.md.
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


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def spread(values, digits=0):
    """ "median (min-max)" of the rounds, or the one value."""
    v = [x for x in values if x is not None]
    if not v:
        return ""
    if len(v) == 1:
        return fmt(v[0], digits)
    return f"{fmt(median(v), digits)} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"


def grouped(cells):
    """Cells grouped by (scenario, conns, target) in first-seen order; skipped rounds apart."""
    groups, order = {}, []
    for c in cells:
        key = (c["scenario"], c["conns"], c["target"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(c)
    return [(k, groups[k]) for k in order]


def summary(rows):
    """The medians of one cell's measured rounds (None when every round was skipped)."""
    runs = [r for r in rows if not r.get("note", "").startswith("skip")]
    if not runs:
        return None
    pick = lambda f: [num(r[f]) for r in runs]
    return {
        "rounds": len(runs),
        "rps": median(pick("rps")), "rps_all": pick("rps"),
        "p50_all": pick("p50_ms"), "p99_all": pick("p99_ms"),
        "cpu": median(pick("cpu_us_per_req")), "cpu_all": pick("cpu_us_per_req"),
        "errors": sum(int(num(r["errors"]) or 0) for r in runs),
        "requests": sum(int(num(r["requests"]) or 0) for r in runs),
        "other": max((num(r.get("other_cpu_pct")) or 0) for r in runs),
    }


def render(res):
    cells = read_csv(os.path.join(res, "cells.csv"))
    mem = read_csv(os.path.join(res, "memory.csv"))
    groups = grouped(cells)
    sums = {k: summary(rows) for k, rows in groups}
    out = [
        "Medians of the rounds, with their range in brackets.",
        "",
        "| scenario | conns | target | rounds | req/s | p50 ms | p99 ms | CPU us/req | errors "
        "| other % (max) | RSS / PSS MiB | tg/floor | tg/nginx | tg/haproxy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for key, rows in groups:
        sm = sums[key]
        if sm is None:
            note = rows[0].get("note", "")
            out.append(f"| {key[0]} | {key[1]} | {key[2]} | 0 | {note} | | | | | | | | | |")
            continue
        cols = [key[0], key[1], key[2], str(sm["rounds"]), spread(sm["rps_all"]),
                spread(sm["p50_all"], 2), spread(sm["p99_all"], 2), spread(sm["cpu_all"], 1),
                str(sm["errors"]), fmt(sm["other"]), ""]
        failed = sm["errors"] > 0.01 * sm["requests"]
        for anchor in ("floor", "nginx", "haproxy"):
            a = sums.get((key[0], key[1], anchor))
            cell = ""
            if key[2] == "tracegate" and failed:
                cell = "n/a (errors)"
            elif key[2] == "tracegate" and a:
                r, rc = ratio(sm["rps"], a["rps"]), ratio(sm["cpu"], a["cpu"])
                cell = f"{fmt(r, 2)} (cpu {fmt(rc, 2)})" if r is not None else ""
            cols.append(cell)
        out.append("| " + " | ".join(cols) + " |")
    mem_by = {m["target"]: m for m in mem}
    for m in mem:
        if m.get("note", "").startswith("skip"):
            out.append(f"| idle | {m['conns_requested']} | {m['target']} | | {m['note']} "
                       "| | | | | | | | | |")
            continue
        rss, pss = num(m["rss_kb"]), num(m["pss_kb"])
        mib = f"{fmt(rss / 1024, 1)} / {fmt(pss / 1024, 1) if pss else 'n/a'}"
        mib += f" (+{m['kib_per_conn']} KiB/conn)"
        cols = ["idle", m["conns_ok"], m["target"], "1", "", "", "", "", m["fail"], "", mib]
        for anchor in ("floor", "nginx", "haproxy"):
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


def render_cost(res):
    rows = read_csv(os.path.join(res, "cost.csv"))
    by = {(r["scenario"], r["conns"], r["target"]): r for r in rows}
    out = [
        "Instructions per request: callgrind, user space, every thread of the target, counted only",
        "while the measured load ran. System calls per request: every thread, at full speed.",
        "",
        "| scenario | conns | target | instructions/req | syscalls/req | tg/floor instr | tg/nginx instr |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ir, sc = num(r["instructions_per_req"]), num(r["syscalls_per_req"])
        cols = [r["scenario"], r["conns"], r["target"], fmt(ir), fmt(sc, 2)]
        for anchor in ("floor", "nginx"):
            a = by.get((r["scenario"], r["conns"], anchor))
            cols.append(fmt(ratio(ir, num(a["instructions_per_req"])), 2)
                        if r["target"] == "tracegate" and a else "")
        if r.get("note"):
            cols[2] += f" ({r['note']})"
        out.append("| " + " | ".join(cols) + " |")
    return "\n".join(out) + "\n"


def cmd_cost(args):
    text = render_cost(args.result_dir)
    with open(os.path.join(args.result_dir, "cost.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def cmd_table(args):
    text = render(args.result_dir)
    with open(os.path.join(args.result_dir, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


def cmd_compare(args):
    a_sum = {k: summary(r) for k, r in grouped(read_csv(os.path.join(args.a, "cells.csv")))}
    b_groups = grouped(read_csv(os.path.join(args.b, "cells.csv")))
    b_sum = {k: summary(r) for k, r in b_groups}
    print(f"A = {os.path.basename(os.path.normpath(args.a))}, "
          f"B = {os.path.basename(os.path.normpath(args.b))} (medians of each run's rounds)")
    print("| scenario | conns | target | req/s A | req/s B | B/A | CPU us/req A | CPU us/req B "
          "| tg/nginx A | tg/nginx B |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, _ in b_groups:
        a, b = a_sum.get(key) or {}, b_sum.get(key) or {}
        ra, rb = a.get("rps"), b.get("rps")
        tg = ["", ""]
        if key[2] == "tracegate":
            for i, run in enumerate((a_sum, b_sum)):
                t, n = run.get(key) or {}, run.get((key[0], key[1], "nginx")) or {}
                tg[i] = fmt(ratio(t.get("rps"), n.get("rps")), 2)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {fmt(ra)} | {fmt(rb)} "
              f"| {fmt(ratio(rb, ra), 2)} | {fmt(a.get('cpu'), 1)} "
              f"| {fmt(b.get('cpu'), 1)} | {tg[0]} | {tg[1]} |")
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
    s = sub.add_parser("cost")
    s.add_argument("result_dir")
    s.set_defaults(fn=cmd_cost)
    s = sub.add_parser("compare")
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(fn=cmd_compare)
    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
