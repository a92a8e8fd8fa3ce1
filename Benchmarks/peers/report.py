#!/usr/bin/env python3
"""Render a peer-benchmark run: OUT/samples.json -> OUT/summary.md and OUT/chart.png.

    python3 Benchmarks/peers/report.py Benchmarks/results/<timestamp>

run.sh calls it at the end; it can be re-run on any old samples.json. Medians over
rounds, ratios against haproxy and direct from the same run (absolute numbers from
different runs on a shared 2-core machine are not comparable). Without matplotlib
it still writes summary.md and says why the chart is missing.
"""
import json
import statistics
import sys
from pathlib import Path

REFERENCE = "haproxy"
DIRECT = "direct"
# Bars taller than this are cut and labelled with their value, so that one outlier
# (socat's CPU per new connection is ~8x HAProxy's) does not flatten the rest.
CHART_CAP = 3.5

# Per workload: title, the headline metric (higher is better), its unit, and the
# forwarder CPU metric (lower is better).
WORKLOADS = {
    "iperf1": ("iperf3, 1 stream", "gbps", "Gbit/s", "cpu_s_per_gb", "CPU s/GB"),
    "iperf4": ("iperf3, 4 streams (-P 4)", "gbps", "Gbit/s", "cpu_s_per_gb", "CPU s/GB"),
    "newconn": ("New connections (wrk, Connection: close)", "rps", "req/s",
                "cpu_us_per_req", "CPU µs/req"),
    "keepalive": ("Keep-alive requests (wrk)", "rps", "req/s", "cpu_us_per_req", "CPU µs/req"),
}
SHORT = {"iperf1": "iperf 1 stream", "iperf4": "iperf 4 streams",
         "newconn": "new conn/s", "keepalive": "keep-alive req/s"}
LATENCY = ("p50_ms", "p99_ms")


def median_of(samples, key):
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def spread_of(samples, key):
    """(max - min) / median over rounds: how far apart the rounds were."""
    values = [s[key] for s in samples if s.get(key) is not None]
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, digits=2):
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def fmt_ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def fmt_pct(value):
    return "–" if value is None else f"{value * 100:.0f}%"


class Run:
    def __init__(self, doc):
        self.meta = doc.get("meta", {})
        self.samples = doc["samples"]
        self.subjects = self._ordered("subjects", "subject")
        self.workloads = [w for w in self._ordered("workloads", "workload") if w in WORKLOADS]

    def _ordered(self, meta_key, sample_key):
        # The run's own order (canonical in run.sh), then anything only the samples name.
        names = [n for n in str(self.meta.get(meta_key, "")).split(",") if n]
        for s in self.samples:
            if s[sample_key] not in names:
                names.append(s[sample_key])
        return names

    def rows(self, workload, subject):
        return [s for s in self.samples if s["workload"] == workload and s["subject"] == subject]

    def ok(self, workload, subject):
        return [s for s in self.rows(workload, subject) if s["status"] == "ok"]

    def median(self, workload, subject, key):
        return median_of(self.ok(workload, subject), key)


def header(run):
    m = run.meta
    lines = [
        "# portunus-uring peer benchmark",
        "",
        f"- machine: `{m.get('host', '?')}`, {m.get('nproc', '?')} cores"
        f" ({m.get('cpu', '?')}), kernel `{m.get('kernel', '?')}`",
        f"- run: {m.get('date_utc', '?')}, {m.get('rounds', '?')} round(s) of"
        f" {m.get('duration_secs', '?')} s per measurement, subjects interleaved round-robin;"
        " every figure is the median over rounds",
        f"- peers: HAProxy {m.get('haproxy', '?')}, nginx {m.get('nginx', '?')},"
        f" socat {m.get('socat', '?')}; load: iperf3 {m.get('iperf3', '?')} (-O 1),"
        f" wrk {m.get('wrk', '?')}; forwarders with {m.get('forwarder_workers', '?')} workers",
        f"- portunus-uring: `{m.get('portunus', '?')}` (repo at {m.get('git_rev', '?')})",
        f"- load average (1/5/15 min) at start: {m.get('loadavg_start', '?')}, at end:"
        f" {m.get('loadavg_end', '?')}; anything well above the forwarder's own share means"
        " something else ran during the benchmark",
        "",
        f"Ratios divide a median by the same workload's `{REFERENCE}` or `{DIRECT}` median from"
        " this run. Higher is better for Gbit/s and req/s, lower for latency and CPU."
        " CPU is the forwarder's own (all threads, workers and children), from /proc."
        " `range` is (max − min) / median over rounds.",
        "",
    ]
    return lines


def overview(run):
    lines = [f"## Headline ratio vs {REFERENCE}", "",
             "| subject | " + " | ".join(SHORT[w] for w in run.workloads) + " |",
             "|---|" + "---:|" * len(run.workloads)]
    for subject in run.subjects:
        cells = []
        for w in run.workloads:
            key = WORKLOADS[w][1]
            cells.append(fmt_ratio(ratio(run.median(w, subject, key), run.median(w, REFERENCE, key))))
        lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    cpu_cells_any = False
    cpu_lines = [f"", f"Forwarder CPU per unit of work vs {REFERENCE} (lower is better):", "",
                 "| subject | " + " | ".join(SHORT[w] for w in run.workloads) + " |",
                 "|---|" + "---:|" * len(run.workloads)]
    for subject in run.subjects:
        if subject == DIRECT:
            continue
        cells = []
        for w in run.workloads:
            key = WORKLOADS[w][3]
            r = ratio(run.median(w, subject, key), run.median(w, REFERENCE, key))
            cpu_cells_any |= r is not None
            cells.append(fmt_ratio(r))
        cpu_lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    return lines + (cpu_lines if cpu_cells_any else []) + [""]


def workload_table(run, w):
    title, key, unit, cpu_key, cpu_unit = WORKLOADS[w]
    wrk = key == "rps"
    cols = [unit, f"vs {REFERENCE}", f"vs {DIRECT}", "range"]
    if wrk:
        cols += ["p50 ms", "p99 ms"]
    cols += [cpu_unit, f"CPU vs {REFERENCE}", "ok/runs"]
    lines = [f"## {title}", "", "| subject | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    ref = run.median(w, REFERENCE, key)
    ref_cpu = run.median(w, REFERENCE, cpu_key)
    direct = run.median(w, DIRECT, key)
    for subject in run.subjects:
        ok = run.ok(w, subject)
        value = median_of(ok, key)
        cpu = median_of(ok, cpu_key)
        cells = [fmt(value), fmt_ratio(ratio(value, ref)), fmt_ratio(ratio(value, direct)),
                 fmt_pct(spread_of(ok, key))]
        if wrk:
            cells += [fmt(median_of(ok, k)) for k in LATENCY]
        cells += [fmt(cpu, 3 if not wrk else 1), fmt_ratio(ratio(cpu, ref_cpu)),
                  f"{len(ok)}/{len(run.rows(w, subject))}"]
        lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    return lines + [""]


def problems(run):
    lines = []
    for s in run.samples:
        if s["status"] != "ok":
            lines.append(f"- round {s['round']} {s['workload']} {s['subject']}: **failed**: {s.get('error')}")
        elif s.get("warning"):
            lines.append(f"- round {s['round']} {s['workload']} {s['subject']}: {s['warning']}")
    return (["## Problems", ""] + lines + [""]) if lines else []


def summary(run):
    lines = header(run) + overview(run)
    for w in run.workloads:
        lines += workload_table(run, w)
    lines += problems(run)
    return "\n".join(lines)


def chart(run, path):
    """Grouped bars per workload: headline ratio vs haproxy, and CPU ratio vs haproxy."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display here, and none needed
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart.png not written: matplotlib is not installed for this python3"
    if not any(run.ok(w, REFERENCE) for w in run.workloads):
        return f"chart.png not written: no successful {REFERENCE} sample to compare against"

    panels = [("headline", 1, f"Throughput / request rate vs {REFERENCE} (higher is better)",
               [s for s in run.subjects]),
              ("cpu", 3, f"Forwarder CPU per GB / per request vs {REFERENCE} (lower is better)",
               [s for s in run.subjects if s != DIRECT])]
    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    colors = plt.get_cmap("tab10")
    color_of = {s: colors(i % 10) for i, s in enumerate(run.subjects)}
    for ax, (_, idx, title, subjects) in zip(axes, panels):
        tallest = 1.0
        width = 0.8 / max(len(subjects), 1)
        for j, subject in enumerate(subjects):
            xs, heights = [], []
            for i, w in enumerate(run.workloads):
                key = WORKLOADS[w][idx]
                r = ratio(run.median(w, subject, key), run.median(w, REFERENCE, key))
                if r is not None:
                    xs.append(i - 0.4 + width * (j + 0.5))
                    heights.append(r)
                    tallest = max(tallest, min(r, CHART_CAP))
            bars = ax.bar(xs, [min(h, CHART_CAP) for h in heights], width,
                          label=subject, color=color_of[subject])
            ax.bar_label(bars, labels=[f"{h:.2f}" + ("↑" if h > CHART_CAP else "") for h in heights],
                         fontsize=7, padding=1)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_ylim(0, tallest * 1.1)
        ax.set_xticks(range(len(run.workloads)), [SHORT[w] for w in run.workloads])
        ax.set_ylabel(f"ratio to {REFERENCE} (median of rounds)")
        ax.set_title(title, fontsize=10)
    # One legend for both panels, under them: inside, it covers bars.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    m = run.meta
    fig.suptitle(f"portunus-uring peers — {m.get('date_utc', '?')}, {m.get('nproc', '?')} cores,"
                 f" kernel {m.get('kernel', '?')}, {m.get('rounds', '?')} round(s) ×"
                 f" {m.get('duration_secs', '?')} s", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_DIR (the folder holding samples.json)")
    out = Path(sys.argv[1])
    run = Run(json.loads((out / "samples.json").read_text()))
    note = chart(run, out / "chart.png")
    text = summary(run)
    if note:
        text += f"\n_{note}_\n"
        print(note, file=sys.stderr)
    (out / "summary.md").write_text(text)


if __name__ == "__main__":
    main()
