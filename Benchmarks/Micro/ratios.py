#!/usr/bin/env python3
"""Ratios of every micro-benchmark to the peer of its suite, from one run.

    swift package --disable-sandbox benchmark --format markdown --path stdout --no-progress \
        | python3 ratios.py

Reads package-benchmark's markdown tables from stdin. In each suite (target) the
benchmarks whose names start with "peer-" are references measured in the same run;
each row is compared with the peer sharing most of its dash-separated name parts
("relay-2MiB-engine-auto" with "peer-relay-2MiB-direct"). Every row is printed with
its p50 and p90 wall clock, its p50 as a multiple of its peer's p50, and its mallocs
(p50 and p100, per operation as the tables show).
"""
import re
import sys


def parse(lines):
    """{suite: {benchmark: {metric title: {column: value}}}} from markdown tables."""
    suites, suite, bench, columns = {}, None, None, []
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("## ") and not line.startswith("## Baseline"):
            suite = line[3:].strip()
            suites[suite] = {}
        elif line.startswith("### ") and suite:
            bench = line[4:].strip()
            suites[suite][bench] = {}
        elif line.startswith("|") and bench:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] == "Metric":
                columns = cells[1:]
            elif not set(cells[0]) <= set(":-"):
                suites[suite][bench][cells[0]] = dict(zip(columns, cells[1:]))
    return suites


def metric(rows, prefix):
    """The row whose title starts with `prefix`, and that title (it carries the unit)."""
    for title, row in rows.items():
        if title.startswith(prefix):
            return title, row
    return None, None


def closest_peer(name, peers):
    """The peer whose name shares the most dash-separated parts with `name`."""
    parts = set(name.split("-"))
    return max(peers, key=lambda peer: len(parts & set(peer.split("-"))), default=None)


def main():
    suites = parse(sys.stdin)
    if not suites:
        sys.exit("ratios.py: no benchmark tables on stdin (use --format markdown --path stdout)")
    for suite, benches in suites.items():
        peers = [name for name in benches if name.startswith("peer-")]
        print(f"\n{suite}" + (f"  (peers: {', '.join(sorted(peers))})" if peers else "  (no peer)"))
        header_done = False
        for name, rows in sorted(benches.items()):
            time_title, time = metric(rows, "Time (wall clock)")
            malloc_title, malloc = metric(rows, "Malloc (total)")
            if not time:
                continue
            if not header_done:
                unit = re.search(r"\(([^)]*)\) \*?$", time_title)
                mallocs = malloc_title.replace("Malloc (total)", "").replace("*", "").strip() if malloc_title else ""
                print(f"  {'benchmark':<44} {'p50':>9} {'p90':>9} {'x peer':>7} {'mallocs p50/p100':>17}"
                      f"   [time {unit.group(1) if unit else '?'}{', mallocs ' + mallocs if mallocs else ''}]")
                header_done = True
            p50 = float(time["p50"])
            peer = closest_peer(name, peers)
            _, peer_time = metric(benches[peer], "Time (wall clock)") if peer else (None, None)
            peer_p50 = float(peer_time["p50"]) if peer_time else 0
            ratio = f"{p50 / peer_p50:7.2f}" if peer_p50 else f"{'-':>7}"
            allocations = f"{malloc['p50']}/{malloc['p100']}" if malloc else "-"
            print(f"  {name:<44} {time['p50']:>9} {time['p90']:>9} {ratio} {allocations:>17}")


if __name__ == "__main__":
    main()
