"""Prints a benchmark's results file (`load|server|run|key=value ...` lines)
as a Markdown table of Satchel against the other server: medians, and the
min, median and max of the per-run ratios (runs are paired A B A B).

    python3 bench/ratios.py RESULTS OTHER_SERVER OTHER_LABEL
"""
import collections
import statistics
import sys

KEYS = ("ops/s", "rounds/s", "p50_us", "p99_us", "filed/s", "delivered/s",
        "per_connection_kib", "fanout_p50_ms", "fanout_max_ms")


def main(path, other, label):
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    for line in open(path):
        load, server, run, figures = line.rstrip("\n").split("|", 3)
        f = dict(kv.split("=", 1) for kv in figures.split() if "=" in kv and not kv.startswith("first_error"))
        if int(f["errors"]) > 0:
            print(f"# {load} on {server}, run {run}: {f['errors']} errors", file=sys.stderr)
        for key in KEYS:
            if key in f:
                rows[(load, key)][server].append(float(f[key]))
    print(f"| load | figure | Satchel (median) | {label} (median) | Satchel/{label} min | median | max |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (load, key), by in rows.items():
        s, d = by["satchel"], by[other]
        ratios = sorted(a / b for a, b in zip(s, d) if b)
        if not ratios:
            continue
        print(f"| {load} | {key} | {statistics.median(s):.1f} | {statistics.median(d):.1f} | "
              f"{ratios[0]:.2f} | {statistics.median(ratios):.2f} | {ratios[-1]:.2f} |")


if __name__ == "__main__":
    main(*sys.argv[1:4])
