#!/usr/bin/env python3
"""Small helpers for run.sh: things that are awkward or fragile in bash.

Subcommands (all print to stdout, errors to stderr, exit non-zero on failure):
  free-ports N                 N distinct free TCP ports (free on 0.0.0.0 and ::)
  wait-port PORT SECS [PID...] exit 0 once 127.0.0.1:PORT accepts, 1 after SECS
                               or as soon as one of the PIDs has exited
  http-check PORT              GET http://127.0.0.1:PORT/ must answer 200 "ok\\n"
  cpu-ticks PID...             utime+stime+cutime+cstime of the PIDs and all their
                               descendants, in clock ticks
  init-samples FILE k=v...     start samples.json with a meta block
  meta FILE k=v...             add keys to the meta block
  sample FILE --subject S ...  parse one tool output and append a sample

Only the standard library: it must run before anything is installed.
"""
import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- ports

def free_ports(count):
    """Bind `count` sockets to port 0 at once so the kernel hands out distinct
    ports, then release them all. A dual-stack :: socket reserves the port on
    0.0.0.0 and :: together, which portunus-uring needs (it listens on both).
    A small race remains until the forwarders bind; run.sh binds them at once
    and before any load generator runs, so nothing else takes these ports."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _exited(pid):
    # The harness has not reaped it yet, so a dead child is a zombie, not missing.
    try:
        return _stat_fields(pid)[0] == "Z"
    except OSError:
        return True


def wait_port(port, secs, pids=()):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        dead = [p for p in pids if _exited(p)]
        if dead:
            print(f"process {dead[0]} exited before 127.0.0.1:{port} accepted", file=sys.stderr)
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_check(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
        body = r.read()
        if r.status != 200 or body != b"ok\n":
            raise RuntimeError(f"port {port}: got {r.status} {body!r}, want 200 b'ok\\n'")


# ---------------------------------------------------------------- CPU

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name. The name is in
    parentheses and may contain spaces, so split after the last ')'.
    Index 0 is field 3 (state) of proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue  # the process exited while we walked /proc
        children.setdefault(ppid, []).append(int(entry))
    return children


def cpu_ticks(pids):
    """CPU time of a forwarder in clock ticks.

    /proc/PID/stat utime+stime already sum all threads (HAProxy nbthread,
    portunus workers). Descendants cover nginx workers and live socat
    children; cutime+cstime cover children that exited and were reaped in
    between (socat forks one child per connection). A child alive at the first
    sample and reaped before the second moves its whole time into the parent's
    cutime, so the difference of two samples stays exact."""
    children = _children_map()
    total = 0
    stack = list(pids)
    seen = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            f = _stat_fields(pid)
        except OSError:
            if pid in pids:
                raise RuntimeError(f"process {pid} is gone")
            continue  # a socat child that exited between the walk and the read
        # proc(5): utime=14 stime=15 cutime=16 cstime=17; index = field - 3
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        stack.extend(children.get(pid, []))
    return total


# ---------------------------------------------------------------- parsers

def parse_iperf(path):
    with open(path) as f:
        text = f.read()
    if not text.strip():
        raise RuntimeError(f"iperf3 wrote no JSON; see {path}.stderr")
    doc = json.loads(text)
    if "error" in doc:
        raise RuntimeError(f"iperf3: {doc['error']}")
    end = doc["end"]
    received = end["sum_received"]
    # sum_received leaves out the -O warm-up second, but the CPU window covers
    # it, so CPU per GB divides by every byte moved, warm-up included.
    omitted = sum(i["sum"]["bytes"] for i in doc.get("intervals", [])
                  if i["sum"].get("omitted"))
    return {
        "gbps": received["bits_per_second"] / 1e9,
        "bytes_measured": received["bytes"],
        "bytes_total": received["bytes"] + omitted,
        "retransmits": end.get("sum_sent", {}).get("retransmits"),
    }


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(path):
    with open(path) as f:
        text = f.read()
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)", text, re.M)
    if not m:
        raise RuntimeError("wrk: no 'N requests in' line (did it run?)")
    out["requests"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        out[key] = _ms(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    return out


# ---------------------------------------------------------------- samples

def _write_atomic(path, doc):
    # samples.json is rewritten after every sample so an interrupted run
    # still leaves a valid file that report.py can read.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _pairs(pairs):
    meta = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        meta[key] = int(value) if value.isdigit() else value
    return meta


def init_samples(path, pairs):
    meta = _pairs(pairs)
    meta["clk_tck"] = CLK_TCK
    _write_atomic(path, {"meta": meta, "samples": []})


def add_meta(path, pairs):
    with open(path) as f:
        doc = json.load(f)
    doc["meta"].update(_pairs(pairs))
    _write_atomic(path, doc)


def add_sample(a):
    sample = {"subject": a.subject, "workload": a.workload, "round": a.round,
              "status": "ok"}
    try:
        if a.error:
            raise RuntimeError(a.error)
        parsed = parse_iperf(a.output) if a.kind == "iperf" else parse_wrk(a.output)
        sample.update(parsed)
        cpu_s = None if a.cpu_ticks is None else a.cpu_ticks / CLK_TCK
        sample["cpu_s"] = cpu_s
        if a.kind == "iperf":
            sample["cpu_s_per_gb"] = (None if cpu_s is None or not parsed["bytes_total"]
                                      else cpu_s / (parsed["bytes_total"] / 1e9))
        else:
            sample["cpu_us_per_req"] = (None if cpu_s is None or not parsed["requests"]
                                        else cpu_s * 1e6 / parsed["requests"])
            errors = sum(parsed["socket_errors"].values()) + parsed["non_2xx"]
            if errors:
                # Kept as ok: wrk still measured a rate, but the report flags it.
                sample["warning"] = f"{errors} errors/non-2xx"
    except Exception as e:  # noqa: BLE001 - any failure becomes an error sample
        sample["status"] = "error"
        sample["error"] = str(e)
    with open(a.file) as f:
        doc = json.load(f)
    doc["samples"].append(sample)
    _write_atomic(a.file, doc)
    # One line for the progress log in run.sh.
    if sample["status"] != "ok":
        print(f"ERROR {sample['error']}")
    elif a.kind == "iperf":
        cpu = sample["cpu_s_per_gb"]
        print(f"{sample['gbps']:.2f} Gbit/s" + (f", {cpu:.3f} CPU s/GB" if cpu is not None else ""))
    else:
        cpu = sample["cpu_us_per_req"]
        print(f"{sample['rps']:.0f} req/s p50 {sample['p50_ms']:.2f} ms p99 {sample['p99_ms']:.2f} ms"
              + (f", {cpu:.1f} CPU us/req" if cpu is not None else "")
              + (f" [{sample['warning']}]" if "warning" in sample else ""))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-ports").add_argument("count", type=int)
    w = sub.add_parser("wait-port")
    w.add_argument("port", type=int)
    w.add_argument("secs", type=float)
    w.add_argument("pids", type=int, nargs="*")
    sub.add_parser("http-check").add_argument("port", type=int)
    sub.add_parser("cpu-ticks").add_argument("pids", type=int, nargs="+")
    for name in ("init-samples", "meta"):
        i = sub.add_parser(name)
        i.add_argument("file")
        i.add_argument("pairs", nargs="*")
    s = sub.add_parser("sample")
    s.add_argument("file")
    s.add_argument("--subject", required=True)
    s.add_argument("--workload", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--kind", choices=("iperf", "wrk"), required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--cpu-ticks", type=int)
    s.add_argument("--error")
    a = p.parse_args()

    try:
        if a.cmd == "free-ports":
            print(" ".join(map(str, free_ports(a.count))))
        elif a.cmd == "wait-port":
            sys.exit(0 if wait_port(a.port, a.secs, a.pids) else 1)
        elif a.cmd == "http-check":
            http_check(a.port)
        elif a.cmd == "cpu-ticks":
            print(cpu_ticks(a.pids))
        elif a.cmd == "init-samples":
            init_samples(a.file, a.pairs)
        elif a.cmd == "meta":
            add_meta(a.file, a.pairs)
        elif a.cmd == "sample":
            add_sample(a)
    except Exception as e:  # noqa: BLE001 - report and fail, run.sh decides
        print(f"probe.py {a.cmd}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
