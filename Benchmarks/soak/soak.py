#!/usr/bin/env python3
"""Hostile-load soak: portunus-uring (every relay path) beside HAProxy, on 127.0.0.1.

Scenarios (the table SCENARIOS below), each run against each subject (SUBJECTS):
  slow-readers   N clients download from a flooding backend and never read (SO_RCVBUF
                 4 KiB); fresh 1 KiB round trips on another rule before, during, after.
  fd-exhaustion  the forwarder under a 2,048 open-file limit; 1,500 clients hold idle
                 connections (more than fit); fresh round trips during and after.
  churn          100,000 connections, 64 at a time: tagged echoes checked byte-exact,
                 echoes the client resets mid-stream, downloads it resets mid-stream.
For every phase it prints the forwarder's open fds, threads (and io_uring io-wq
threads), RSS, and the fresh round trips' median and worst latency.

  python3 Benchmarks/soak/soak.py [--binary PATH] [--only SUBJECTS] [--scenarios NAMES]
                                  [--slow N] [--churn N] [--out DIR]

Needs haproxy (apt-get install -y haproxy) for the haproxy subject. Writes DIR/results.json
and DIR/summary.md (default Benchmarks/soak/latest). Run it on a quiet machine: the
latencies are only comparable between subjects measured in the same run.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FILL_DOWN = b"\xee" * 65536


# ---------------------------------------------------------------- backends (own process)

async def flood_handler(reader, writer):
    """Streams 0xEE until the client goes away, reading and discarding what it sends."""
    async def drain_input():
        try:
            while await reader.read(65536):
                pass
        except Exception:
            pass
    sink = asyncio.ensure_future(drain_input())
    try:
        while True:
            writer.write(FILL_DOWN)
            await writer.drain()
    except Exception:
        pass
    finally:
        sink.cancel()
        writer.transport.abort()


async def echo_handler(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


async def run_backend(kind, port):
    """One backend per process: the echo server that answers the fresh round trips must
    not share an event loop with thousands of flooding connections, or its own delays
    would be measured as the forwarder's."""
    server = await asyncio.start_server(flood_handler if kind == "flood" else echo_handler, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- process metrics

def proc_metrics(pid):
    """Open fds, threads, io-wq threads and RSS (MiB) of a process."""
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        tasks = os.listdir(f"/proc/{pid}/task")
        iowq = 0
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    if f.read().startswith("iou-wrk"):
                        iowq += 1
            except OSError:
                pass
        rss_kb = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        return {"fds": fds, "threads": len(tasks), "iowq_threads": iowq, "rss_mib": round(rss_kb / 1024, 1)}
    except OSError:
        return {"fds": None, "threads": None, "iowq_threads": None, "rss_mib": None}


# ---------------------------------------------------------------- client side

async def round_trip(port, payload, timeout=5.0, outcome=None):
    """One echo round trip: seconds taken, or None when it failed, timed out or came
    back different (then `outcome["mismatch"]` is set, when given)."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        async def exchange():
            await loop.sock_connect(s, ("127.0.0.1", port))
            await loop.sock_sendall(s, payload)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                chunk = await loop.sock_recv(s, 65536)
                if not chunk:
                    break
                got += chunk
            return bytes(got)
        got = await asyncio.wait_for(exchange(), timeout)
        if got != payload:
            if outcome is not None:
                outcome["mismatch"] = True
            return None
        return time.monotonic() - start
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        s.close()


async def probe(port, count=20):
    """`count` sequential fresh 1 KiB round trips: median and worst ms, failures."""
    times, failures = [], 0
    for i in range(count):
        t = await round_trip(port, struct.pack(">Q", i) + os.urandom(1016))
        if t is None:
            failures += 1
        else:
            times.append(t * 1000)
    return {"p50_ms": round(statistics.median(times), 2) if times else None,
            "max_ms": round(max(times), 2) if times else None, "failures": failures}


def reset_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


async def open_idle(port, count, rcvbuf=None):
    """Opens `count` connections that never read; returns the sockets that connected."""
    loop = asyncio.get_running_loop()
    held = []
    sem = asyncio.Semaphore(256)

    async def one():
        async with sem:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), 5)
                held.append(s)
            except (OSError, asyncio.TimeoutError):
                s.close()
    await asyncio.gather(*(one() for _ in range(count)))
    return held


async def churn(fresh_port, flood_port, total, concurrency=64, seed=1):
    """`total` connections: 70% tagged echoes checked byte-exact, 20% echoes the client
    resets mid-send, 10% downloads the client resets after a random amount."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    plan = [(rng.random(), rng.randint(1, 32768), rng.randint(1, 1 << 20)) for _ in range(total)]
    stats = {"echo_ok": 0, "echo_mismatch": 0, "echo_failed": 0, "resets": 0}
    next_index = 0

    async def one(index):
        kind, size, cut = plan[index]
        if kind < 0.7:
            payload = struct.pack(">Q", index) + random.Random(index).randbytes(max(0, size - 8))
            payload = payload[:size]
            outcome = {}
            t = await round_trip(fresh_port, payload, timeout=10, outcome=outcome)
            stats["echo_ok" if t is not None else "echo_mismatch" if outcome else "echo_failed"] += 1
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            if kind < 0.9:
                await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", fresh_port)), 5)
                await asyncio.wait_for(loop.sock_sendall(s, b"\xdd" * (size // 2 + 1)), 5)
            else:
                await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", flood_port)), 5)
                got = 0
                while got < cut:
                    chunk = await asyncio.wait_for(loop.sock_recv(s, 65536), 5)
                    if not chunk:
                        break
                    got += len(chunk)
            stats["resets"] += 1
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            reset_close(s)

    async def worker():
        nonlocal next_index
        while next_index < total:
            index = next_index
            next_index += 1
            await one(index)

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    stats["seconds"] = round(elapsed, 1)
    stats["conns_per_sec"] = round(total / elapsed)
    return stats


# ---------------------------------------------------------------- subjects

def portunus_subject(relay):
    def start(workdir, ports, binary, fd_limit):
        cfg = os.path.join(workdir, f"portunus-{relay}.toml")
        with open(cfg, "w") as f:
            f.write(f"""[global]
shutdown_drain_secs = 0
[[rule]]
name = "slow"
protocol = "tcp"
listen_port = {ports['slow']}
target = "127.0.0.1:{ports['flood']}"
[[rule]]
name = "fresh"
protocol = "tcp"
listen_port = {ports['fresh']}
target = "127.0.0.1:{ports['echo']}"
""")
        cmd = [binary, "--config", cfg, "--relay", relay, "--workers", "2", "--log-format", "pretty", "--log-level", "info"]
        return cmd, "INFO started"
    return start


def haproxy_subject(workdir, ports, binary, fd_limit):
    cfg = os.path.join(workdir, "haproxy.cfg")
    # Two fds per connection and a margin: the largest maxconn the fd limit allows.
    maxconn = max(100, (fd_limit - 200) // 2 - 10)
    with open(cfg, "w") as f:
        f.write(f"""global
    nbthread 2
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 600s
    timeout server 600s
listen slow
    bind 127.0.0.1:{ports['slow']}
    server s1 127.0.0.1:{ports['flood']}
listen fresh
    bind 127.0.0.1:{ports['fresh']}
    server s1 127.0.0.1:{ports['echo']}
""")
    return ["haproxy", "-f", cfg, "-db"], None


SUBJECTS = {
    "portunus-buffers": portunus_subject("buffers"),
    "portunus-splice": portunus_subject("splice"),
    "portunus-auto": portunus_subject("auto"),
    "haproxy": haproxy_subject,
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Forwarder:
    def __init__(self, subject, workdir, ports, binary, fd_limit=20000):
        cmd, ready = SUBJECTS[subject](workdir, ports, binary, fd_limit)
        cmd = ["prlimit", f"--nofile={fd_limit}:{fd_limit}", "--"] + cmd
        self.log = open(os.path.join(workdir, f"{subject}-{fd_limit}.log"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{subject} exited: {self.text()}")
            if ready is None or ready in self.text():
                if ready is None:
                    if port_open(ports["fresh"]):
                        break
                else:
                    break
            time.sleep(0.05)

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- scenarios

async def slow_readers(fwd, ports, args):
    phases = {"before": {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"])}}
    held = await open_idle(ports["slow"], args.slow, rcvbuf=4096)
    # Let the downloads fill every buffer on the way and come to a stop.
    await asyncio.sleep(5)
    phases["during"] = {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 50), "held": len(held)}
    for s in held:
        reset_close(s)
    await asyncio.sleep(3)
    phases["after"] = {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"])}
    return phases


async def fd_exhaustion(fwd, ports, args):
    phases = {"before": {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 10)}}
    lines_before = fwd.text().count("\n")
    held = await open_idle(ports["fresh"], 1500)
    await asyncio.sleep(2)
    during = {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 10), "held": len(held)}
    during["log_lines"] = fwd.text().count("\n") - lines_before
    phases["during"] = during
    for s in held:
        s.close()
    await asyncio.sleep(3)
    phases["after"] = {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 10)}
    return phases


async def churn_scenario(fwd, ports, args):
    phases = {"before": {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 10)}}
    result = await churn(ports["fresh"], ports["slow"], args.churn)
    phases["during"] = {**proc_metrics(fwd.proc.pid), **result}
    await asyncio.sleep(3)
    phases["after"] = {**proc_metrics(fwd.proc.pid), **await probe(ports["fresh"], 10)}
    return phases


# name -> (function, fd limit for the forwarder, subjects it applies to)
SCENARIOS = {
    "slow-readers": (slow_readers, 20000, ["portunus-buffers", "portunus-splice", "portunus-auto", "haproxy"]),
    "fd-exhaustion": (fd_exhaustion, 2048, ["portunus-buffers", "portunus-splice", "portunus-auto"]),
    "churn": (churn_scenario, 20000, ["portunus-buffers", "portunus-splice", "portunus-auto", "haproxy"]),
}


def summary_markdown(results, args, commit):
    out = [f"# Soak run, commit {commit}", "",
           f"slow readers: {args.slow}; churn: {args.churn} connections; 2 workers/threads per forwarder; loopback.", ""]
    for scenario, per_subject in results.items():
        out.append(f"## {scenario}")
        out.append("")
        out.append("| subject | phase | fds | threads | io-wq | RSS MiB | fresh p50 ms | fresh max ms | failed | other |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for subject, phases in per_subject.items():
            if "error" in phases:
                out.append(f"| {subject} | – | | | | | | | | {phases['error']} |")
                continue
            for phase, m in phases.items():
                other = {k: v for k, v in m.items() if k not in
                         ("fds", "threads", "iowq_threads", "rss_mib", "p50_ms", "max_ms", "failures")}
                out.append(f"| {subject} | {phase} | {m.get('fds')} | {m.get('threads')} | {m.get('iowq_threads')} | "
                           f"{m.get('rss_mib')} | {m.get('p50_ms', '')} | {m.get('max_ms', '')} | {m.get('failures', '')} | "
                           f"{', '.join(f'{k}={v}' for k, v in other.items())} |")
        out.append("")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "portunus-uring"))
    ap.add_argument("--only", default=",".join(SUBJECTS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--slow", type=int, default=9000)
    ap.add_argument("--churn", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(HERE, "latest"))
    ap.add_argument("--backend", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.backend:
        asyncio.run(run_backend(args.backend[0], int(args.backend[1])))
        return

    workdir = tempfile.mkdtemp(prefix="pu-soak-")
    ports = {"flood": free_port(), "echo": free_port(), "slow": free_port(), "fresh": free_port()}
    backends = [subprocess.Popen([sys.executable, __file__, "--backend", kind, str(ports[kind])], stdout=subprocess.PIPE, text=True)
                for kind in ("flood", "echo")]
    for backend in backends:
        assert backend.stdout.readline().strip() == "ready"
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    results = {}
    try:
        for scenario in args.scenarios.split(","):
            fn, fd_limit, applies = SCENARIOS[scenario]
            results[scenario] = {}
            for subject in args.only.split(","):
                if subject not in applies:
                    continue
                print(f"== {scenario} / {subject}", flush=True)
                try:
                    fwd = Forwarder(subject, workdir, ports, args.binary, fd_limit)
                except RuntimeError as e:
                    results[scenario][subject] = {"error": str(e)[:200]}
                    continue
                try:
                    phases = asyncio.run(fn(fwd, ports, args))
                finally:
                    code = fwd.stop()
                phases["after"]["exit_code"] = code
                results[scenario][subject] = phases
                for phase, m in phases.items():
                    print(f"   {phase:7} {m}", flush=True)
                time.sleep(2)
    finally:
        for backend in backends:
            backend.terminate()
            backend.wait()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"commit": commit, "slow": args.slow, "churn": args.churn, "results": results}, f, indent=1)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(summary_markdown(results, args, commit))
    print(summary_markdown(results, args, commit))


if __name__ == "__main__":
    main()
