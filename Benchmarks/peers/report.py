#!/usr/bin/env python3
"""Render a peer-benchmark run: OUT/samples.json -> OUT/summary.md and OUT/chart.png.

    python3 Benchmarks/peers/report.py Benchmarks/results/<timestamp>

bench.py calls it at the end; it can be re-run on any old samples.json. Medians over
rounds, ratios against haproxy and direct from the same run and topology (absolute
numbers from different runs on a shared 2-core machine are not comparable). Without
matplotlib it still writes summary.md and says why the chart is missing.
"""
import json
import statistics
import sys
from pathlib import Path

from bench import KINDS, SHARED_CPU_PCT, TOPOLOGIES
from bench import WORKLOADS as ALL_WORKLOADS

REFERENCE = "haproxy"
# HAProxy 2.6 has no UDP: the UDP workloads are compared with nginx stream instead.
UDP_REFERENCE = "nginx-stream"
DIRECT = "direct"
# Bars taller than this are cut and labelled with their value, so that one outlier
# (socat's CPU per new connection is ~8x HAProxy's) does not flatten the rest.
CHART_CAP = 3.5

# The workloads with a headline figure (every one but memory), from bench.py's table.
WORKLOADS = {w.name: w for w in ALL_WORKLOADS if KINDS[w.kind].metric}


def figures(workload):
    """(title, headline metric (higher is better), its unit, forwarder CPU metric
    (lower is better), its unit)."""
    k = KINDS[WORKLOADS[workload].kind]
    return WORKLOADS[workload].title, k.metric, k.unit, k.cpu_metric, k.cpu_unit


def short(workload):
    return WORKLOADS[workload].short


def is_flood(workload):
    return WORKLOADS[workload].kind == "flood"


def is_udp(workload):
    return WORKLOADS[workload].route == "udp"


def is_proxy(workload):
    return WORKLOADS[workload].route.startswith("proxy-")


def accepts_header(workload):
    """Every connection of its load opens with a PROXY header the forwarder reads."""
    return bool(WORKLOADS[workload].header)


def reference_for(workload):
    return UDP_REFERENCE if is_udp(workload) else REFERENCE


LATENCY = ("p50_ms", "p99_ms")
MEMORY = "memory"
MiB = 1024.0
# Memory bars in the chart: (sample key, label); all lower is better.
MEMORY_BARS = (("rss_idle_kib", "RSS idle"), ("rss_held_kib", "RSS held"),
               ("pss_held_kib", "PSS held"))


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


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / MiB:,.1f}"


def fmt_int(value):
    return "–" if value is None else f"{value:,.0f}"


class Run:
    """A run's samples, all of them or (topology) those of one topology only: ratios
    never mix topologies."""

    def __init__(self, doc, topology=None):
        self.doc = doc
        self.meta = doc.get("meta", {})
        self.topology = topology
        self.samples = [s for s in doc["samples"] if topology is None or s.get("topology") == topology]
        # A topology's tables sit under its own heading, one level down.
        self.depth = 2 if topology is None else 3
        self.shared_pct = self.meta.get("shared_cpu_pct", SHARED_CPU_PCT)
        self.subjects = self._ordered("subjects", "subject")
        ordered = self._ordered("workloads", "workload")
        self.workloads = [w for w in ordered if w in WORKLOADS]
        self.tcp_workloads = [w for w in self.workloads if not is_udp(w)]
        self.udp_workloads = [w for w in self.workloads if is_udp(w)]

    def _ordered(self, meta_key, sample_key):
        # The run's own order (canonical in bench.py), then anything only the samples name.
        names = [n for n in str(self.meta.get(meta_key, "")).split(",") if n]
        for s in self.samples:
            if s[sample_key] not in names:
                names.append(s[sample_key])
        return names

    def heading(self, title):
        return "#" * self.depth + " " + title

    def topologies(self):
        """The topologies measured, in the run's order; none in a run from before them."""
        names = [n for n in str(self.meta.get("topologies", "")).split(",") if n]
        for s in self.samples:
            if s.get("topology") and s["topology"] not in names:
                names.append(s["topology"])
        return [n for n in names if any(s.get("topology") == n for s in self.samples)]

    def views(self):
        """One Run per topology, or this one for a run from before topologies."""
        return [Run(self.doc, t) for t in self.topologies()] or [self]

    def shared(self, sample):
        """Taken while other processes used more than the threshold of a core."""
        return (sample.get("foreign_cpu_pct") or 0) > self.shared_pct

    def rows(self, workload, subject):
        return [s for s in self.samples if s["workload"] == workload and s["subject"] == subject]

    def ok(self, workload, subject):
        return [s for s in self.rows(workload, subject) if s["status"] == "ok"]

    def median(self, workload, subject, key):
        return median_of(self.ok(workload, subject), key)

    def not_applicable(self, workload, subject):
        """The reason, when every sample of SUBJECT in WORKLOAD is n/a."""
        rows = self.rows(workload, subject)
        if rows and all(s["status"] == "n/a" for s in rows):
            return rows[0].get("reason", "not applicable")
        return None

    def held(self, subject):
        """Memory samples that hold figures: ok ones, and failed holds that still
        measured (flagged in the table: not all connections were held)."""
        return [s for s in self.rows(MEMORY, subject) if s.get("rss_held_kib") is not None]

    def complete(self, subject):
        return [s for s in self.rows(MEMORY, subject) if s["status"] == "ok"]

    def memory_subjects(self):
        return [s for s in self.subjects if self.rows(MEMORY, s)]


def header(run):
    m = run.meta
    lines = [
        "# portunus-uring peer benchmark",
        "",
        *shared_machine(run),
        f"- machine: `{m.get('host', '?')}`, {m.get('nproc', '?')} cores"
        f" ({m.get('cpu', '?')}), kernel `{m.get('kernel', '?')}`",
        f"- run: {m.get('date_utc', '?')}, {m.get('rounds', '?')} round(s) of"
        f" {m.get('duration_secs', '?')} s per measurement, subjects interleaved round-robin;"
        " every figure is the median over rounds",
        *topologies_line(run),
        f"- peers: HAProxy {m.get('haproxy', '?')}, nginx {m.get('nginx', '?')},"
        f" socat {m.get('socat', '?')}; load: iperf3 {m.get('iperf3', '?')} (-O 1),"
        f" wrk {m.get('wrk', '?')}"
        + (f", sockperf {m.get('sockperf', '?')}" if run.udp_workloads else "")
        + f"; forwarders with {m.get('forwarder_workers', '?')} workers",
        f"- portunus-uring: `{m.get('portunus', '?')}`"
        + (f" (built {m['portunus_built']}, sha256 {m['portunus_sha256']}…)" if m.get("portunus_built", "-") != "-" else "")
        + f"; repo at {m.get('git_rev', '?')} when the run started"
        + (", with uncommitted changes" if m.get("git_dirty") else "") + " (the binary may be older)",
        f"- load average (1/5/15 min) at start: {m.get('loadavg_start', '?')}, at end:"
        f" {m.get('loadavg_end', '?')}; anything well above the forwarder's own share means"
        " something else ran during the benchmark",
    ]
    loads = [(s["loadavg_1m"], s) for s in run.samples if s.get("loadavg_1m") is not None]
    if loads:
        top, at = max(loads, key=lambda x: x[0])
        lines.append(f"- 1-min load average right after each sample: median"
                     f" {statistics.median(l for l, _ in loads):.2f}, highest {top:.2f}"
                     f" (after {at['workload']} {at['subject']}, round {at['round']})")
    try:
        end_1m = float(str(m.get("loadavg_end", "")).split()[0])
    except (IndexError, ValueError):
        end_1m = 0.0
    if run.rows(MEMORY, "socat") and max([end_1m] + [l for l, _ in loads]) > 50:
        lines.append("- a load average in the hundreds most likely comes from socat's memory hold: 5,000"
                     " processes, over a thousand of them runnable at once at tear-down; when the"
                     " kernel's 5-s load sample lands in that burst the 1-min average jumps by up to"
                     " hundreds for a minute, though little CPU is used")
    lines += [
        "",
        f"Ratios divide a median by the same workload's `{REFERENCE}` or `{DIRECT}` median from"
        + (" this run and topology." if run.topologies() else " this run.")
        + " Higher is better for Gbit/s and req/s, lower for latency and CPU."
        " CPU is the forwarder's own (all threads, workers and children), from /proc."
        " `range` is (max − min) / median over rounds."
        + (f" HAProxy 2.6 cannot proxy UDP, so the UDP workloads are compared with"
           f" `{UDP_REFERENCE}` instead (higher is better for round trips/s and datagrams/s)." if run.udp_workloads else ""),
        "",
    ]
    return lines


def topologies_line(run):
    names = run.topologies()
    if len(names) < 2:
        return [f"- topology: {names[0]}"] if names else []
    return [f"- topologies: {', then '.join(names)}, each measured in a pass of its own (backends"
            " and forwarders started afresh); every table and ratio below compares subjects within"
            " one topology only"]


def overview(run):
    if not run.workloads:  # a memory-only run
        return [run.heading(f"Headline ratio vs {REFERENCE}"), ""] + memory_overview(run)
    lines = []
    # TCP workloads against haproxy, UDP ones against nginx stream: one table pair each.
    # A UDP-only run keeps haproxy's memory table under its own heading.
    if run.tcp_workloads:
        lines += ratio_tables(run, run.tcp_workloads, REFERENCE, "")
    if run.udp_workloads:
        lines += ratio_tables(run, run.udp_workloads, UDP_REFERENCE, "UDP: ")
    mem = memory_overview(run)
    if mem and not run.tcp_workloads:
        mem = [run.heading(f"Memory vs {REFERENCE}"), ""] + mem
    return lines + mem


def ratio_tables(run, workloads, reference, prefix):
    lines = [run.heading(f"{prefix}Headline ratio vs {reference}"), ""]
    lines += ["| subject | " + " | ".join(map(short, workloads)) + " |",
              "|---|" + "---:|" * len(workloads)]
    subjects = [s for s in run.subjects if any(run.rows(w, s) for w in workloads)]
    for subject in subjects:
        cells = []
        for w in workloads:
            key = figures(w)[1]
            cells.append("n/a" if run.not_applicable(w, subject) else
                         fmt_ratio(ratio(run.median(w, subject, key), run.median(w, reference, key))))
        lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    cpu_cells_any = False
    cpu_lines = [f"", f"Forwarder CPU per unit of work vs {reference} (lower is better):", "",
                 "| subject | " + " | ".join(map(short, workloads)) + " |",
                 "|---|" + "---:|" * len(workloads)]
    for subject in subjects:
        if subject == DIRECT:
            continue
        cells = []
        for w in workloads:
            key = figures(w)[3]
            r = ratio(run.median(w, subject, key), run.median(w, reference, key))
            cpu_cells_any |= r is not None
            cells.append("n/a" if run.not_applicable(w, subject) else fmt_ratio(r))
        cpu_lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    return lines + (cpu_lines if cpu_cells_any else []) + [""]


def memory_overview(run):
    subjects = run.memory_subjects()
    if not subjects:
        return []
    count = run.meta.get("hold_connections", 5000)
    ref_idle = median_of(run.held(REFERENCE), "rss_idle_kib")
    ref_held = median_of(run.complete(REFERENCE), "rss_held_kib")
    lines = [f"Memory vs {REFERENCE} (lower is better; RSS summed over the forwarder's processes),"
             f" and its threads, while holding {count:,} idle connections:", "",
             "| subject | RSS idle | RSS held | threads held | io_uring workers (iou-wrk) held |",
             "|---|---:|---:|---:|---:|"]
    for subject in subjects:
        held, complete = run.held(subject), run.complete(subject)
        idle = median_of(held, "rss_idle_kib")
        held_rss = median_of(complete, "rss_held_kib")
        held_cell = fmt_ratio(ratio(held_rss, ref_held)) if complete else (
            f"failed ({min(s['held'] for s in held):,} held)" if held else "failed")
        lines.append(f"| {subject} | {fmt_ratio(ratio(idle, ref_idle))} | {held_cell} |"
                     f" {fmt_int(median_of(held, 'threads_held'))} |"
                     f" {fmt_int(median_of(held, 'iou_wrk_held'))} |")
    return lines + [""]


def subject_rows(run, w, title, cols, cells_of):
    """A workload's table heading and one row per subject that took part: n/a with its
    reason, or cells_of(subject, ok samples) followed by ok/runs (the last column),
    marked ‡ when a sample was taken on a shared machine."""
    lines = [run.heading(title), "", "| subject | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    na_notes = []
    for subject in run.subjects:
        if not run.rows(w, subject):
            continue
        reason = run.not_applicable(w, subject)
        if reason:
            na_notes.append(f"{subject}: {reason}")
            lines.append(f"| {subject} | " + " | ".join(["n/a"] * len(cols)) + " |")
            continue
        ok = run.ok(w, subject)
        mark = " ‡" if any(map(run.shared, run.rows(w, subject))) else ""
        cells = cells_of(subject, ok) + [f"{len(ok)}/{len(run.rows(w, subject))}{mark}"]
        lines.append(f"| {subject} | " + " | ".join(cells) + " |")
    return lines, na_notes


def workload_table(run, w):
    if is_udp(w):
        return udp_table(run, w)
    title, key, unit, cpu_key, cpu_unit = figures(w)
    wrk = WORKLOADS[w].kind == "wrk"
    # A PROXY sender or receiver is compared with itself without the header (same wrk
    # shape, and for a receiver the same backend), when newconn ran too; direct can
    # neither send a header nor read one.
    accept = accepts_header(w)
    proxy = is_proxy(w) or accept
    own = proxy and any(run.ok("newconn", s) for s in run.subjects)
    cols = [unit, f"vs {REFERENCE}"] + (["vs own newconn"] if own else [] if proxy else [f"vs {DIRECT}"])
    cols += ["range"]
    if wrk:
        cols += ["p50 ms", "p99 ms"]
    cols += [cpu_unit, f"CPU vs {REFERENCE}"] + (["errors"] if wrk else []) + ["ok/runs"]
    ref = run.median(w, REFERENCE, key)
    ref_cpu = run.median(w, REFERENCE, cpu_key)
    direct = run.median(w, DIRECT, key)

    def cells_of(subject, ok):
        value = median_of(ok, key)
        cpu = median_of(ok, cpu_key)
        cells = [fmt(value), fmt_ratio(ratio(value, ref))]
        if own:
            cells.append(fmt_ratio(ratio(value, run.median("newconn", subject, key))))
        elif not proxy:
            cells.append(fmt_ratio(ratio(value, direct)))
        cells.append(fmt_pct(spread_of(ok, key)))
        if wrk:
            cells += [fmt(median_of(ok, k)) for k in LATENCY]
        cells += [fmt(cpu, 3 if not wrk else 1), fmt_ratio(ratio(cpu, ref_cpu))]
        if wrk:
            # Failed requests over all rounds, failed samples included: never hidden.
            errs = [e for e in map(wrk_errors, run.rows(w, subject)) if e is not None]
            cells.append(fmt_int(sum(errs)) if errs else "–")
        return cells

    lines, na_notes = subject_rows(run, w, title, cols, cells_of)
    lines.append("")
    if accept:
        version = WORKLOADS[w].header
        lines += [f"Every connection wrk opens starts with a PROXY {version} header ("
                  + ("text, `PROXY TCP4 …`" if version == "v1" else "binary, 28 bytes")
                  + ", sent in the same write as the request by a wrk Lua script), which the"
                  " forwarder must read and drop before it dials the plain nginx backend of"
                  " newconn (haproxy `bind … accept-proxy`, nginx `listen … proxy_protocol`,"
                  " portunus-uring `accept_proxy = \"any\"`). Before measuring, one header and"
                  " GET through each subject must come back 200 from that backend, which answers"
                  " a header passed on as data with 400; `errors` are wrk's socket errors plus"
                  " non-2xx answers (a sample with more than 1% of them counts as failed).", ""]
    elif proxy:
        lines += ["Before measuring, one request through each sender must come back 200 with the"
                  " backend reporting the real client address and port and the forwarder's"
                  " listen address from the header; `errors` are wrk's socket errors plus non-2xx"
                  " answers (a sample with more than 1% of them counts as failed).", ""]
    return lines + notes(run, w, na_notes)


def udp_table(run, w):
    """A UDP workload's table: ping-pong (round trips, RTT percentiles) or flood
    (datagrams forwarded, sent, lost and read by the sink), the ratio, CPU and flow
    columns shared."""
    title, key, unit, cpu_key, cpu_unit = figures(w)
    ref_name = UDP_REFERENCE
    flood = is_flood(w)
    middle_cols = (["sent/s", "lost in forwarder", "read by sink/s", f"read vs {ref_name}"] if flood
                   else ["p50 µs RTT", "p99 µs RTT"])
    cols = ([unit, f"vs {ref_name}", f"vs {DIRECT}", "range"] + middle_cols
            + [cpu_unit, f"CPU vs {ref_name}", "flows", "ok/runs"])
    ref = run.median(w, ref_name, key)
    ref_read = run.median(w, ref_name, "recv_dps")
    ref_cpu = run.median(w, ref_name, cpu_key)
    direct = run.median(w, DIRECT, key)

    def middle_cells(ok):
        if flood:
            read = median_of(ok, "recv_dps")
            return [fmt(median_of(ok, "sent_dps")), fmt_pct(median_of(ok, "lost")), fmt(read),
                    fmt_ratio(ratio(read, ref_read))]
        return [fmt(median_of(ok, "p50_us"), 1), fmt(median_of(ok, "p99_us"), 1)]

    def cells_of(subject, ok):
        value = median_of(ok, key)
        cpu = median_of(ok, cpu_key)
        return ([fmt(value), fmt_ratio(ratio(value, ref)), fmt_ratio(ratio(value, direct)),
                 fmt_pct(spread_of(ok, key))] + middle_cells(ok)
                + [fmt(cpu, 2), fmt_ratio(ratio(cpu, ref_cpu)), fmt_int(median_of(ok, "flows"))])

    lines, na_notes = subject_rows(run, w, title, cols, cells_of)
    if flood:
        lines += ["", "Open loop (`sockperf tp`): each client sends datagrams as fast as it can for the"
                  " whole run, never waiting for an answer, through the forwarder to a sockperf server"
                  " started fresh for the sample (the sink). datagrams/s forwarded = (datagrams the"
                  " sink read + those its socket dropped because the sink, sharing the 2 cores, fell"
                  " behind) / the clients' run time: everything the forwarder delivered. `lost in"
                  " forwarder` = 1 − forwarded / sent (its listen socket overflowed, or it dropped"
                  " them); for direct, the sender writes to the sink itself. CPU µs/datagram ="
                  " forwarder CPU over the sample / datagrams forwarded. Every process shares the 2"
                  " cores, so a forwarder that spends less per datagram leaves more to the clients"
                  " and the sink.", ""]
    else:
        many = WORKLOADS[w].clients > 1
        lines += ["", "sockperf ping-pong (`sockperf pp --full-rtt`): each flow is one client socket"
                  " sending a datagram and waiting for the sockperf server's reply before the next one"
                  " (one datagram in flight per flow), so a round trip is two datagrams through the"
                  " forwarder, one each way. round trips/s = replies in sockperf's valid duration"
                  " (after its warm-up) / that duration"
                  + (", summed over the flows, which run at once" if many else "")
                  + ". RTT is the full round trip (`--full-rtt`; without it sockperf prints half of it);"
                  + (" p50 is the median flow's p50, p99 the worst flow's p99." if many else
                     " p50 and p99 are sockperf's percentiles.")
                  + " CPU µs/round trip = forwarder CPU over the whole run / every reply received,"
                  " warm-up included (the CPU window covers it); per datagram it is half of that."
                  " sockperf never resends, so a lost datagram stalls its flow: a sample where a flow"
                  " stood waiting for more than 10% of its run is counted as failed.", ""]
    return lines + notes(run, w, na_notes)


def notes(run, w, na_notes):
    """Under a workload's table: why some subjects are n/a, and what ‡ means."""
    lines = ["n/a: " + "; ".join(na_notes) + ".", ""] if na_notes else []
    if any(map(run.shared, (s for s in run.samples if s["workload"] == w))):
        lines += [f"‡ at least one sample was taken while other processes used more than"
                  f" {run.shared_pct:.0f}% of a core (see the top of this summary).", ""]
    return lines


def wrk_errors(sample):
    """wrk's failed requests in one sample (older samples.json lack `errors`)."""
    if sample.get("errors") is not None:
        return sample["errors"]
    if "socket_errors" in sample:
        return sum(sample["socket_errors"].values()) + sample.get("non_2xx", 0)
    return None


def memory_table(run):
    subjects = run.memory_subjects()
    if not subjects:
        return []
    m = run.meta
    count = m.get("hold_connections", 5000)
    lines = [run.heading(f"Memory: {count:,} idle connections held"),
             "",
             f"Per measurement a fresh instance of each forwarder (one rule, {m.get('forwarder_workers', '?')}"
             f" workers/threads, limits sized for the hold) forwards to an idle backend that accepts"
             f" and never closes; {count:,} clients connect through it (at most 256 connects in"
             f" flight, set-up capped at {m.get('hold_setup_cap_secs', '?')} s), all are held"
             f" {m.get('duration_secs', '?')} s, then closed. A hold is ok only when all {count:,}"
             " were accepted by the backend and stayed open. RSS is VmRSS summed over the"
             " forwarder's processes (it counts shared pages once per process, which overstates"
             " socat's thousands of children); PSS (smaps_rollup) shares them out and is the"
             " fairer sum. Both are user-space memory only: the kernel's socket buffers (alike"
             " for every forwarder) and a splice relay's pipes are not in them. `idle` is 1 s"
             " after one end-to-end check connection closed (on a splice relay that connection's"
             " EOF leaves one io-wq worker behind)."
             " KiB/conn = (RSS held − RSS idle) / connections held. `after` is once"
             " every connection closed; `running` is the long-running instance of the other"
             " workloads, read just before (what earlier traffic left resident). MiB, medians.",
             "",
             "| subject | RSS idle | RSS held | held vs " + REFERENCE + " | KiB/conn | PSS idle |"
             " PSS held | RSS after | RSS running | held/runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ref_held = median_of(run.complete(REFERENCE), "rss_held_kib")
    for subject in subjects:
        held, complete = run.held(subject), run.complete(subject)
        rows = run.rows(MEMORY, subject)
        mark = "" if len(complete) == len(rows) else " †"
        held_rss = median_of(held, "rss_held_kib")
        ok_rss = median_of(complete, "rss_held_kib")
        kib = median_of(held, "kib_per_conn")
        held_counts = ", ".join(f"{s['held']:,}" if "held" in s else "0" for s in rows)
        lines.append(f"| {subject} | {fmt_mib(median_of(held, 'rss_idle_kib'))} |"
                     f" {fmt_mib(held_rss)}{mark} | {fmt_ratio(ratio(ok_rss, ref_held))} |"
                     f" {fmt(kib, 1)} | {fmt_mib(median_of(held, 'pss_idle_kib'))} |"
                     f" {fmt_mib(median_of(held, 'pss_held_kib'))} |"
                     f" {fmt_mib(median_of(held, 'rss_after_kib'))} |"
                     f" {fmt_mib(median_of(rows, 'rss_running_kib'))} |"
                     f" {held_counts} of {count:,} ({len(complete)}/{len(rows)} ok) |")
    lines += ["", "Threads (all tasks of all its processes, io_uring workers included) and"
              " io_uring kernel workers (tasks named `iou-wrk-*`), processes and open files while"
              " holding; pipes held by a splice relay, and still open once every connection closed:",
              "",
              "| subject | threads idle | threads held | iou-wrk held | iou-wrk max during hold |"
              " iou-wrk max during set-up | processes held | fds held | of which pipes | pipes after"
              " | set-up s | tear-down s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for subject in subjects:
        held = run.held(subject)
        lines.append(f"| {subject} | " + " | ".join([
            fmt_int(median_of(held, "threads_idle")), fmt_int(median_of(held, "threads_held")),
            fmt_int(median_of(held, "iou_wrk_held")), fmt_int(median_of(held, "iou_wrk_max_hold")),
            fmt_int(median_of(held, "iou_wrk_max_setup")), fmt_int(median_of(held, "processes_held")),
            fmt_int(median_of(held, "fds_held")), fmt_int(median_of(held, "pipes_held")),
            fmt_int(median_of(held, "pipes_after")), fmt(median_of(held, "setup_secs")),
            fmt(median_of(held, "teardown_secs"))]) + " |")
    if any(len(run.complete(s)) < len(run.rows(MEMORY, s)) for s in subjects):
        lines += ["", "† not every hold of this subject held all connections: see Problems."]
    return lines + [""]


def sample_name(s):
    return (f"round {s['round']} {s['workload']} {s['subject']}"
            + (f" ({s['topology']})" if s.get("topology") else ""))


def problems(run):
    lines = []
    for s in run.samples:
        if s["status"] == "n/a":
            continue
        if s["status"] != "ok":
            lines.append(f"- {sample_name(s)}: **failed**: {s.get('error')}")
        elif s.get("warning"):
            lines.append(f"- {sample_name(s)}: {s['warning']}")
    return (["## Problems", ""] + lines + [""]) if lines else []


def shared_machine(run):
    """Whether other processes shared the machine, sample by sample (runs from before
    foreign_cpu_pct was recorded cannot say)."""
    measured = [s for s in run.samples if s.get("foreign_cpu_pct") is not None]
    if not measured:
        return []
    shared = [s for s in measured if run.shared(s)]
    if not shared:
        top = max(measured, key=lambda s: s["foreign_cpu_pct"])
        return [f"- machine not shared: in no sample did other processes use more than"
                f" {run.shared_pct:.0f}% of a core (median"
                f" {statistics.median(s['foreign_cpu_pct'] for s in measured):.1f}%, highest"
                f" {top['foreign_cpu_pct']:.1f}% in {sample_name(top)})"]
    which = "; ".join(f"{sample_name(s)}: {s['foreign_cpu_pct']:.0f}%"
                      + (f" ({s['foreign_top']})" if s.get("foreign_top") else "") for s in shared)
    return [f"- **shared machine: {len(shared)} of {len(measured)} samples** were taken while other"
            f" processes used more than {run.shared_pct:.0f}% of a core (marked ‡ in the tables;"
            f" their figures are suspect): {which}"]


def topology_heading(name):
    doc = TOPOLOGIES[name].doc if name in TOPOLOGIES else ""
    return [f"## Topology: {name}", ""] + ([doc[0].upper() + doc[1:] + ".", ""] if doc else [])


def sections(run):
    lines = overview(run)
    for w in run.workloads:
        lines += workload_table(run, w)
    return lines + memory_table(run)


def summary(run):
    lines = header(run)
    for view in run.views():
        lines += (topology_heading(view.topology) if view.topology else []) + sections(view)
    lines += problems(run)
    return "\n".join(lines)


def _bars(ax, groups, subjects, color_of, value, title, ylabel):
    """Grouped bars: one group per x label, one bar per subject. value(subject, group)
    gives (ratio or None, label suffix). Bars above CHART_CAP are cut and labelled."""
    tallest = 1.0
    width = 0.8 / max(len(subjects), 1)
    for j, subject in enumerate(subjects):
        xs, heights, labels = [], [], []
        for i, group in enumerate(groups):
            r, suffix = value(subject, group)
            if r is not None:
                xs.append(i - 0.4 + width * (j + 0.5))
                heights.append(min(r, CHART_CAP))
                labels.append((f"{r:.2f}" if r < 100 else f"{r:.0f}")
                              + ("↑" if r > CHART_CAP else "") + suffix)
                tallest = max(tallest, min(r, CHART_CAP))
        bars = ax.bar(xs, heights, width, label=subject, color=color_of[subject])
        ax.bar_label(bars, labels=labels, fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, tallest * 1.12)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def panels(run):
    """The chart's panels for one run or topology: headline ratio vs haproxy per
    workload, CPU ratio vs haproxy per workload, and (memory workload) RSS/PSS ratio
    vs haproxy. Each is (groups, subjects, value(subject, group), title)."""
    rates = any(run.ok(w, reference_for(w)) for w in run.workloads)
    # A topology's panels say which one they are.
    where = f"{run.topology}: " if run.topology else ""
    # UDP groups are divided by nginx stream's figure (HAProxy 2.6 has no UDP).
    udp_note = f"; UDP vs {UDP_REFERENCE}" if run.udp_workloads else ""
    labels = [short(w) for w in run.workloads]
    out = []
    if rates:
        def rate_value(idx):
            def value(subject, label):
                w = run.workloads[labels.index(label)]
                key = figures(w)[idx]
                return ratio(run.median(w, subject, key), run.median(w, reference_for(w), key)), ""
            return value
        out.append((labels, run.subjects, rate_value(1),
                    f"{where}Throughput / request rate vs {REFERENCE}{udp_note} (higher is better"
                    + ("; n/a has no bar)" if any(is_proxy(w) or accepts_header(w) or is_udp(w)
                                                  for w in run.workloads)
                       else ")")))
        out.append((labels, [s for s in run.subjects if s != DIRECT], rate_value(3),
                    f"{where}Forwarder CPU per GB / per request / per round trip / per datagram vs"
                    f" {REFERENCE}{udp_note} (lower is better)"))
    if run.held(REFERENCE):
        count = run.meta.get("hold_connections", 5000)
        keys = {label: key for key, label in MEMORY_BARS}

        def mem_value(subject, label):
            key = keys[label]
            complete = run.complete(subject)
            # A failed hold still shows its figure, marked: it held fewer connections
            # (its idle figure is as good as anyone's).
            chosen = complete or run.held(subject)
            suffix = "" if complete or key == "rss_idle_kib" else "†"
            ref = median_of(run.complete(REFERENCE) or run.held(REFERENCE), key)
            return ratio(median_of(chosen, key), ref), suffix
        out.append(([label for _, label in MEMORY_BARS], run.memory_subjects(), mem_value,
                    f"{where}Forwarder memory vs {REFERENCE}, idle and holding {count:,} idle connections"
                    " (lower is better; † = hold incomplete, fewer connections)"))
    return out


def chart(run, path):
    """One full-width panel each (see panels), per topology."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display here, and none needed
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart.png not written: matplotlib is not installed for this python3"
    colors = plt.get_cmap("tab10")
    color_of = {s: colors(i % 10) for i, s in enumerate(run.subjects)}
    shown_panels = [p for view in run.views() for p in panels(view)]
    if not shown_panels:
        return (f"chart.png not written: no successful {REFERENCE}"
                + (f" or {UDP_REFERENCE}" if run.udp_workloads else "") + " sample to compare against")
    ylabel = f"ratio to {REFERENCE} (median of rounds)" if not run.udp_workloads else \
        f"ratio to {REFERENCE} / {UDP_REFERENCE} (median of rounds)"

    height = 4.3 * len(shown_panels) + 0.8
    fig, axes = plt.subplots(len(shown_panels), 1, figsize=(15, height), squeeze=False)
    for ax, (groups, subjects, value, title) in zip(axes[:, 0], shown_panels):
        _bars(ax, groups, subjects, color_of, value, title, ylabel)
    # One legend for every panel, under them: inside, it covers bars. Built from the
    # colours, since a subject with no bar in a panel (n/a) has no usable handle there.
    from matplotlib.patches import Patch
    shown = [s for s in run.subjects if any(s in subjects for _, subjects, _, _ in shown_panels)]
    fig.legend([Patch(color=color_of[s]) for s in shown], shown, loc="lower center",
               ncol=len(shown), fontsize=9, frameon=False)
    m = run.meta
    fig.suptitle(f"portunus-uring peers — {m.get('date_utc', '?')}, {m.get('nproc', '?')} cores,"
                 f" kernel {m.get('kernel', '?')}, {m.get('rounds', '?')} round(s) ×"
                 f" {m.get('duration_secs', '?')} s", fontsize=11)
    # Fixed strips for the legend below and the title above, whatever the panel count.
    fig.tight_layout(rect=(0, 0.8 / height, 1, 1 - 0.35 / height))
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
