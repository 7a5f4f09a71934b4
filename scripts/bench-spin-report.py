"""The table scripts/bench-spin prints: reads "runtime|label|req/s|p50|p99|non-2xx|round"
lines on stdin, the redis-benchmark INCR figures (before and after the runs) as arguments, and
prints each route on each runtime as the median over the rounds of req/s (with the spread,
max - min over median) and of p99, a fraction of the bare INCR component on the same runtime
and a fraction of /health/live on the same runtime, then the targets."""

import statistics
import sys

ROUTES = [
    ("visit", "POST /visit/home, limits off"),
    ("visit_limited", "POST /visit/home, limiting on"),
    ("visits_cached", "GET /visits/home, cached, default limits"),
    ("metric", "POST /metrics, one sample"),
    ("health_live", "GET /health/live"),
    ("incr", "POST /incr/home (bare INCR component)"),
    ("kv_read", "GET /kv/home (bare key-value read)"),
]


def main():
    incr_before, incr_after = (float(v) for v in sys.argv[1:3])
    runs = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        runtime, label, rps, p50, p99, bad, _round = line.strip().split("|")
        runs.setdefault((runtime, label), []).append((float(rps), float(p99), int(bad)))
    rows, spread = {}, {}
    for key, samples in runs.items():
        rates = [s[0] for s in samples]
        median = statistics.median(rates)
        rows[key] = (median, None, statistics.median(s[1] for s in samples),
                     sum(s[2] for s in samples))
        spread[key] = (max(rates) - min(rates)) / median if median else 0.0
    rounds = max(len(v) for v in runs.values())
    runtimes = [r for r in ("spin", "tally-host") if (r, "incr") in rows]

    print()
    print(f"redis-benchmark INCR, 64 clients: {incr_before:,.0f} ops/s before the runs, "
          f"{incr_after:,.0f} after; medians of {rounds} rounds")
    head = f"{'route':<42}"
    for r in runtimes:
        head += f" | {r + ' req/s':>16} {'+-':>4} {'p99 ms':>7} {'/INCR':>6} {'/live':>6}"
    if len(runtimes) == 2:
        head += " | shape"
    print(head)
    print("-" * len(head))
    for label, title in ROUTES:
        line = f"{title:<42}"
        fractions = []
        for r in runtimes:
            rps, _, p99, bad = rows[(r, label)]
            of_incr = rps / rows[(r, "incr")][0]
            of_live = rps / rows[(r, "health_live")][0]
            fractions.append(of_live)
            flag = "!" if bad else " "
            line += (f" | {rps:>15,.0f}{flag} {spread[(r, label)]:>4.0%} {p99:>7.1f} "
                     f"{of_incr:>6.0%} {of_live:>6.0%}")
        if len(fractions) == 2:
            line += f" | {fractions[1] / fractions[0]:>5.2f}"
        print(line)
    if any(rows[k][3] for k in rows):
        print("! = some answers were not 2xx (see wrk's output above)")
    print("+-: spread of req/s over the rounds (max - min, over the median); /INCR: req/s as a "
          "fraction of the bare INCR component on the same runtime; /live: of GET /health/live "
          "on the same runtime;")
    if len(runtimes) == 2:
        print("shape: tally-host's /live fraction over Spin's (1.00 = the same shape)")

    if "spin" not in runtimes:
        print("\nno Spin CLI was found: the targets are judged on real Spin, so none is shown")
        return
    spin = {label: rows[("spin", label)] for label, _ in ROUTES}
    incr, live = spin["incr"][0], spin["health_live"][0]
    checks = [
        ("POST /visit, limiting on >= 40% of INCR component",
         spin["visit_limited"][0] / incr, 0.40),
        ("POST /visit, limiting on, p99 <= 60 ms", 60.0 / max(spin["visit_limited"][2], 1e-9), 1.0),
        ("POST /visit, limits off >= 80% of INCR component", spin["visit"][0] / incr, 0.80),
        ("GET /visits cached >= 70% of /health/live", spin["visits_cached"][0] / live, 0.70),
    ]
    print(f"\ncached GET /visits as a fraction of the bare key-value read: "
          + ", ".join(f"{r} {rows[(r, 'visits_cached')][0] / rows[(r, 'kv_read')][0]:.0%}"
                      for r in runtimes))
    print("\ntargets on real Spin:")
    for name, value, floor in checks:
        shown = f"{value:.0%}" if "p99" not in name else f"{spin['visit_limited'][2]:.1f} ms"
        print(f"  {'met   ' if value >= floor else 'MISSED'} {name}: {shown}")
    if len(runtimes) == 2:
        worst = max(
            (abs(rows[("tally-host", l)][0] / rows[("tally-host", "health_live")][0]
                 / (rows[("spin", l)][0] / live) - 1), l)
            for l, _ in ROUTES if l != "health_live"
        )
        print(f"  {'met   ' if worst[0] <= 0.30 else 'MISSED'} tally-host's shape within "
              f"+-30% of Spin's: worst {worst[1]} off by {worst[0]:.0%}")


main()
