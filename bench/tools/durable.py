#!/usr/bin/env python3
"""The table of `bench/run.sh durable`: reads RES/durable.csv (route,conns,WRK fields) and the
/metrics snapshots taken around each durable cell, prints markdown: latency of the durable route
beside the plain one, what durable adds, accepted submissions per second, fsyncs per submission
(group commit) and fsync p50/p99 (interpolated in the histogram's buckets, as Prometheus'
histogram_quantile does)."""
import csv
import os
import re
import sys


def read_metrics(path):
    buckets, values = [], {}
    with open(path) as f:
        for line in f:
            m = re.match(r'tracegate_spool_fsync_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
                buckets.append((le, float(m.group(2))))
                continue
            name, _, value = line.strip().rpartition(" ")
            if name:
                values[name] = float(value)
    return buckets, values


def quantile(q, before, after):
    """Linear interpolation in the bucket holding the q-th observation of the delta."""
    delta = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = delta[-1][1] if delta else 0
    if total <= 0:
        return None
    rank, prev_le, prev_n = q * total, 0.0, 0.0
    for le, n in delta:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_n) / max(n - prev_n, 1e-9)
        prev_le, prev_n = le, n
    return prev_le


def main(res):
    rows = {}
    with open(os.path.join(res, "durable.csv")) as f:
        for rec in csv.reader(f):
            route, conns, fields = rec[0], int(rec[1]), dict(kv.split("=") for kv in rec[2].split())
            n, us = int(fields["requests"]), int(fields["duration_us"])
            errors = sum(int(v) for k, v in fields.items() if k.startswith("err_"))
            rows[(route, conns)] = dict(rps=n / (us / 1e6), p50=int(fields["p50_us"]) / 1000,
                                        p99=int(fields["p99_us"]) / 1000, errors=errors, n=n)
    print("| conns | plain p50 / p99 ms | durable p50 / p99 ms | added p50 / p99 ms | plain req/s |"
          " durable accepted/s | fsyncs per submission | fsync p50 / p99 ms | errors (plain / durable) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for conns in sorted({c for _, c in rows}):
        p, d = rows.get(("plain", conns)), rows.get(("durable", conns))
        if p is None or d is None:
            continue
        b_buckets, b = read_metrics(os.path.join(res, "raw", f"metrics-durable-{conns}-before.txt"))
        a_buckets, a = read_metrics(os.path.join(res, "raw", f"metrics-durable-{conns}-after.txt"))
        accepted = a.get("tracegate_durable_accepted_total", 0) - b.get("tracegate_durable_accepted_total", 0)
        fsyncs = (a_buckets[-1][1] - b_buckets[-1][1]) if a_buckets and b_buckets else 0
        f50, f99 = quantile(0.5, b_buckets, a_buckets), quantile(0.99, b_buckets, a_buckets)
        fmt = lambda v: "–" if v is None else f"{v * 1000:.2f}"
        print(f"| {conns} | {p['p50']:.2f} / {p['p99']:.2f} | {d['p50']:.2f} / {d['p99']:.2f} | "
              f"{d['p50'] - p['p50']:+.2f} / {d['p99'] - p['p99']:+.2f} | {p['rps']:,.0f} | "
              f"{accepted / (d['n'] / d['rps']):,.0f} | "
              f"{(fsyncs / accepted if accepted else 0):.2f} | {fmt(f50)} / {fmt(f99)} | "
              f"{p['errors']} / {d['errors']} |")
    print("\nAn fsync here is any sync of the spool: the WAL at each commit (a submission's, and "
          "the outcome's after delivery) and the database file at checkpoints.")


if __name__ == "__main__":
    main(sys.argv[1])
