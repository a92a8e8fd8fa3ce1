#!/usr/bin/env python3
"""Where a forwarder's CPU goes: perf profiles of portunus-uring and HAProxy under the
same load, with each one's samples sorted into kernel and user-space categories.

    python3 Benchmarks/profile/breakdown.py --binary .build/release/portunus-uring \
        [--subjects haproxy,portunus-buffers,portunus-auto] [--workloads iperf1,newconn,keepalive] \
        [--duration 5] [--out DIR]

For each workload and subject: an iperf3 or nginx backend, the forwarder (2 workers /
threads), the load (iperf3 -c, or wrk -t2 -c50), and `perf record -e cpu-clock -g` on
the forwarder's threads only while the load runs. The machine has no hardware counters
(cpu-clock sampling at 4 kHz). Prints and writes OUT/profile.md: per subject the share
of its samples in each category, CPU per unit of work from /proc, the completions and
io_uring_enter calls per unit (portunus, from tracepoints), and the top symbols.
Needs perf (linux-perf), haproxy, nginx, iperf3, wrk. Run it on a quiet machine.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "peers"))
import bench as peers  # noqa: E402  (the peer harness's backend config, shared)

# What a sample was doing, read from its call chain. cpu-clock samples taken with
# interrupts off land on the spin_unlock_irqrestore that turned them back on, so a flat
# profile by leaf symbol misleads; the operation a sample sits in does not.
SOFTIRQ = re.compile(r"^(handle_softirqs|__do_softirq|net_rx_action|process_backlog|__napi_poll)$")
COPY = re.compile(r"copy_user|_copy_to_iter|_copy_from_iter|copy_page_to_iter|copy_page_from_iter|rep_movs|"
                  r"memcpy_orig|csum_partial_copy")
# Checked from the leaf up: the innermost operation names the sample.
OPERATIONS = [
    ("send", re.compile(r"^(tcp_sendmsg|udp_sendmsg|inet_sendmsg|sock_sendmsg)$")),
    ("receive", re.compile(r"^(tcp_recvmsg|udp_recvmsg|inet_recvmsg|sock_recvmsg)$")),
    ("splice", re.compile(r"splice|^do_tee")),
    ("connect", re.compile(r"^(tcp_v4_connect|tcp_v6_connect|__inet_stream_connect|__sys_connect|io_connect)$")),
    ("accept", re.compile(r"^(inet_accept|do_accept|__sys_accept4|io_accept|inet_csk_accept)$")),
    ("socket()", re.compile(r"^(__sys_socket|__sock_create|io_socket)$")),
    ("close", re.compile(r"^(__fput|tcp_close|sock_close|__x64_sys_close|io_close|filp_close|task_work_run)$")),
    ("shutdown", re.compile(r"^(tcp_shutdown|__sys_shutdown|io_shutdown|inet_shutdown)$")),
    ("setsockopt/getsockname", re.compile(r"setsockopt|getsockname|getpeername")),
    ("epoll", re.compile(r"epoll|^ep_")),
    ("io_uring poll/wake-up", re.compile(r"^io_poll|^io_arm_poll|^__io_arm_poll|^io_async_wake|^io_req_task|"
                                         r"^io_handle_tw|^tctx_task_work|^io_run_task_work|^io_apoll")),
    ("waiting/scheduling", re.compile(r"^(schedule|__schedule|io_cqring_wait|schedule_hrtimeout_range|do_nanosleep|"
                                      r"finish_task_switch.*|pick_next_task.*)$")),
    ("io_uring submit/complete", re.compile(r"^(__)?io_|^io_uring")),
    ("syscall entry/exit", re.compile(r"entry_SYSCALL|^do_syscall_64$|syscall_exit|exit_to_user")),
]


def classify(frames):
    """frames: (symbol, dso) from the leaf up -> what the sample was doing."""
    sym, dso = frames[0]
    if not dso.startswith("[kernel"):
        if "portunus" in dso or "haproxy" in dso:
            return "user space: own code"
        return "user space: libc/runtime"
    if any(SOFTIRQ.match(s) for s, _ in frames):
        return "softirq: loopback delivery to the peer"
    for s, _ in frames:
        for name, pattern in OPERATIONS:
            if pattern.search(s):
                if name in ("send", "receive") and COPY.search(sym):
                    return f"{name}: copy"
                return name
    return "other kernel"


def perf_samples(data):
    """The call chain of every sample, leaf first, as (symbol, dso) pairs."""
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"], capture_output=True, text=True).stdout
    sample = []
    for line in out.splitlines() + [""]:
        m = re.match(r"\s+[0-9a-f]+ (.*) \((.*)\)$", line)
        if m:
            sample.append((m.group(1).split("+")[0], m.group(2)))
        elif sample:
            yield sample
            sample = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=10):
    deadline = time.time() + secs
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing accepts on port {port} after {secs} s")


class Processes:
    """Every process started here, stopped (TERM, then KILL) on exit."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log, **kw):
        p = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def proc_ticks(pids):
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def tree(pid):
    """pid and every descendant (nginx workers, haproxy threads live in one process)."""
    out, todo = [], [pid]
    children = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def nginx_backend(procs, work, http_port):
    """The peer harness's nginx HTTP backend (its proxy_protocol listener idles here)."""
    d = work / "nginx"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    (d / "nginx.conf").write_text(peers.http_backend_conf(http_port, free_port()))
    procs.start(["nginx", "-p", f"{d}/", "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf", "-g", "daemon off;"],
                d / "out.log")
    wait_port(http_port)


def start_subject(procs, work, subject, binary, listen, backend):
    d = work / subject
    d.mkdir(exist_ok=True)
    if subject.startswith("haproxy"):
        splice = "    option splice-request\n    option splice-response\n" if subject == "haproxy-splice" else ""
        (d / "haproxy.cfg").write_text(f"""global
    nbthread 2
    maxconn 8000
{"    maxpipes 1024" if splice else ""}
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
{splice}listen fwd
    bind 127.0.0.1:{listen}
    server s1 127.0.0.1:{backend}
""")
        p = procs.start(["haproxy", "-db", "-f", str(d / "haproxy.cfg")], d / "out.log")
    else:
        # portunus-RELAY runs --binary; baseline-RELAY runs --baseline (before/after a change).
        relay = subject.split("-", 1)[1]
        (d / "edge.toml").write_text(f"""[global]
log_level = "warn"
[stats]
enabled = false
[[rule]]
name = "fwd"
protocol = "tcp"
listen_port = {listen}
target = "127.0.0.1:{backend}"
""")
        p = procs.start([binary, "--config", str(d / "edge.toml"), "--workers", "2", "--relay", relay], d / "out.log")
    wait_port(listen)
    return p


def load_command(workload, port, duration):
    if workload.startswith("iperf"):
        streams = "4" if workload == "iperf4" else "1"
        return ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(duration), "-O", "1", "-P", streams, "-f", "g"]
    headers = ["-H", "Connection: close"] if workload == "newconn" else []
    return ["wrk", "-t2", "-c50", f"-d{duration}s", *headers, f"http://127.0.0.1:{port}/"]


def work_done(workload, output):
    """(units, unit name): GB moved, or requests served, parsed from the load tool."""
    if workload.startswith("iperf"):
        lines = [l for l in output.splitlines() if "receiver" in l]
        m = re.search(r"([\d.]+) GBytes", lines[-1])
        return float(m.group(1)) * 1.073741824, "GB"
    m = re.search(r"(\d+) requests in", output)
    return float(m.group(1)), "req"


def perf_breakdown(data):
    """(share of samples per activity, the 20 leaf symbols with most samples)."""
    activities, leaves, total = {}, {}, 0
    for frames in perf_samples(data):
        total += 1
        what = classify(frames)
        activities[what] = activities.get(what, 0) + 1
        leaves[(frames[0][0], what)] = leaves.get((frames[0][0], what), 0) + 1
    total = max(total, 1)
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:20]
    return {k: v / total for k, v in activities.items()}, [(v / total, sym, what) for (sym, what), v in top]


def uring_counts(pids, seconds):
    """io_uring completions and io_uring_enter calls of these pids over `seconds`."""
    events = ["io_uring:io_uring_complete", "syscalls:sys_enter_io_uring_enter"]
    cmd = ["perf", "stat", "-x", ",", "-e", ",".join(events), "-p", ",".join(map(str, pids)), "--", "sleep", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True).stderr
    counts = {}
    for line in out.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            counts[parts[2]] = int(parts[0])
    return counts


def profile_one(procs, work, subject, workload, binaries, duration, backends):
    binary = binaries["baseline" if subject.startswith("baseline-") else "portunus"]
    listen = free_port()
    backend = backends["iperf"] if workload.startswith("iperf") else backends["http"]
    fwd = start_subject(procs, work, subject, binary, listen, backend)
    time.sleep(0.5)
    pids = tree(fwd.pid)
    data = work / f"{subject}-{workload}.perf.data"
    load_log = work / f"{subject}-{workload}.load.txt"
    load = subprocess.Popen(load_command(workload, listen, duration + 1), stdout=open(load_log, "w"),
                            stderr=subprocess.STDOUT)
    time.sleep(1.2)  # past iperf3's omitted first second and wrk's connection set-up
    before = proc_ticks(pids)
    start = time.time()
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4000", "-g", "-o", str(data),
                             "-p", ",".join(map(str, pids)), "--", "sleep", str(duration - 1.5)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    perf.wait()
    counts = uring_counts(pids, 0.5) if not subject.startswith("haproxy") else {}
    load.wait(duration + 30)
    cpu_secs = (proc_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
    elapsed = time.time() - start
    procs.stop(fwd)
    units, unit = work_done(workload, load_log.read_text())
    # The load ran `duration` s after its first second; CPU was read over `elapsed` of it.
    rate = units / duration
    shares, top = perf_breakdown(data)
    return {"shares": shares, "top": top, "cpu_per_unit": cpu_secs / (rate * elapsed), "unit": unit, "rate": rate,
            "counts": {k: v / 0.5 / rate for k, v in counts.items()}}


def render(results, workloads, subjects):
    lines = []
    for w in workloads:
        unit = results[(subjects[0], w)]["unit"]
        scale, label = (1e6, "CPU µs/req") if unit == "req" else (1.0, "CPU s/GB")
        lines.append(f"## {w}\n")
        lines.append("Each cell: share of the forwarder's samples = its part of the CPU per unit of work.\n")
        lines.append("| activity | " + " | ".join(subjects) + " |")
        lines.append("|---|" + "---:|" * len(subjects))
        lines.append(f"| **{label}** (from /proc) | "
                     + " | ".join(f"**{results[(s, w)]['cpu_per_unit'] * scale:.3g}**" for s in subjects) + " |")
        lines.append("| rate | " + " | ".join(f"{results[(s, w)]['rate']:.4g} {unit}/s" for s in subjects) + " |")
        activities = {a for s in subjects for a in results[(s, w)]["shares"]}
        for a in sorted(activities, key=lambda a: -max(results[(s, w)]["shares"].get(a, 0) for s in subjects)):
            cells = [f"{results[(s, w)]['shares'].get(a, 0) * 100:.1f}% = "
                     f"{results[(s, w)]['shares'].get(a, 0) * results[(s, w)]['cpu_per_unit'] * scale:.3g}" for s in subjects]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
        for s in subjects:
            counts = results[(s, w)]["counts"]
            if counts:
                lines.append(f"\n{s}, per {unit}: " + ", ".join(f"{k.split(':')[1]} {v:.3g}" for k, v in counts.items()))
        for s in subjects:
            lines.append(f"\n{s}, leaf symbols with most samples:\n")
            for share, sym, what in results[(s, w)]["top"]:
                lines.append(f"    {share * 100:5.2f}%  {sym:40s} ({what})")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--baseline", help="a second portunus-uring binary, for subjects baseline-RELAY")
    ap.add_argument("--subjects", default="haproxy,portunus-buffers,portunus-auto",
                    help="haproxy, haproxy-splice, portunus-RELAY, baseline-RELAY (RELAY: buffers, splice, auto)")
    ap.add_argument("--workloads", default="iperf1,newconn,keepalive")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    for tool in ("perf", "haproxy", "nginx", "iperf3", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    out = Path(a.out or tempfile.mkdtemp(prefix="portunus-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    subjects, workloads = a.subjects.split(","), a.workloads.split(",")
    binaries = {"portunus": os.path.abspath(a.binary), "baseline": os.path.abspath(a.baseline or a.binary)}
    procs = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        backends = {"iperf": free_port(), "http": free_port()}
        procs.start(["iperf3", "-s", "-p", str(backends["iperf"])], out / "iperf3-server.log")
        wait_port(backends["iperf"])
        nginx_backend(procs, out, backends["http"])
        results = {}
        for w in workloads:
            for s in subjects:
                print(f"{time.strftime('%H:%M:%S')} {w} {s}", file=sys.stderr)
                results[(s, w)] = profile_one(procs, out, s, w, binaries, a.duration, backends)
                time.sleep(1)
        text = render(results, workloads, subjects)
        (out / "profile.md").write_text(text + "\n")
        print(text)
        print(f"\nperf data and logs in {out}", file=sys.stderr)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
