#!/usr/bin/env python3
"""Reloads under load: RSS, descriptors, threads and reload latency over many SIGHUPs.

The forwarder runs two files in turn (a rule added and removed, a target changed, a PROXY
setting changed, one rule the same in both) while client threads make echo round trips
through the ports both files keep and a few connections stay open throughout. After a
warm-up, it sends RELOADS reloads one after another (each waits for the reload's log line),
then waits for every earlier engine to end and compares the process with itself before.

  python3 Benchmarks/reload/reload.py [--binary PATH] [--reloads N] [--warmup N] [--out DIR]

Writes DIR/results.json and DIR/summary.md (default Benchmarks/reload/latest). Needs
only python3. Run it on a quiet machine.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_backend():
    """An echo server on a thread per connection; returns its port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)

    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return listener.getsockname()[1]


def config(ports, backends, first):
    web, stay, extra = ports
    a, b = backends
    text = "[global]\nshutdown_drain_secs = 5\n[stats]\nenabled = false\n"
    if first:
        text += f'[[rule]]\nname = "web"\nlisten_port = {web}\ntarget = "127.0.0.1:{a}"\n'
        text += f'[[rule]]\nname = "extra"\nlisten_port = {extra}\ntarget = "127.0.0.1:{a}"\n'
    else:
        text += (f'[[rule]]\nname = "web"\nlisten_port = {web}\n'
                 f'targets = [ {{ host = "127.0.0.1", port = {b}, proxy_protocol = "v2" }} ]\n')
    text += f'[[rule]]\nname = "stay"\nlisten_port = {stay}\ntarget = "127.0.0.1:{a}"\n'
    return text


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def snapshot(pid):
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":")[0] if target.startswith(("socket:", "pipe:")) else target
        kinds[kind] = kinds.get(kind, 0) + 1
    status = proc_status(pid)
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "fds": sum(kinds.values()),
        "fd_kinds": kinds,
    }


class Load:
    """Client threads making echo round trips through the ports both files keep."""

    def __init__(self, ports, threads=4):
        self.ports = ports
        self.stop = False
        self.count = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, index):
        n = 0
        while not self.stop:
            port = self.ports[n % len(self.ports)]
            payload = f"{index}:{n}:".encode() * 20
            error = None
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                # A PROXY v2 header (16 bytes + its length) may come first on the web rule.
                if got.startswith(b"\r\n\r\n\x00\r\nQUIT\n"):
                    got = got[16 + int.from_bytes(got[14:16], "big"):]
                if got != payload:
                    error = f"port {port}: {len(got)} of {len(payload)} bytes back"
            except OSError as e:
                error = f"port {port}: {e}"
            with self.lock:
                self.count += 1
                if error:
                    self.failures.append(error)
            n += 1

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(REPO, ".build/release/portunus-uring"))
    parser.add_argument("--reloads", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--out", default=os.path.join(HERE, "latest"))
    args = parser.parse_args()

    backends = (echo_backend(), echo_backend())
    ports = (free_port(), free_port(), free_port())
    workdir = tempfile.mkdtemp(prefix="pu-reload-")
    path = os.path.join(workdir, "edge.toml")
    with open(path, "w") as f:
        f.write(config(ports, backends, True))
    log_path = os.path.join(workdir, "log")
    log = open(log_path, "w+")
    proc = subprocess.Popen([args.binary, "--config", path, "--log-level", "info", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    reader = open(log_path)
    events = []

    def read_events():
        for line in reader.readlines():
            try:
                fields = json.loads(line)["fields"]
            except (ValueError, KeyError):
                continue
            events.append(fields)

    def wait_for(event, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            read_events()
            if sum(1 for e in events if e.get("event") == event) >= count:
                return
            if proc.poll() is not None:
                sys.exit(f"forwarder exited: {open(log_path).read()[-2000:]}")
            time.sleep(0.0005)
        sys.exit(f"no {event} #{count} within {timeout} s")

    wait_for("standalone.started", 1)

    def settle(reference=None, timeout=20):
        """Waits until earlier engines have ended (threads as in `reference`), then reads the process."""
        deadline = time.time() + timeout
        now = snapshot(proc.pid)
        while reference and time.time() < deadline and (now["threads"] != reference["threads"] or now["fd_kinds"] != reference["fd_kinds"]):
            time.sleep(0.2)
            now = snapshot(proc.pid)
        return now

    def reload(n, first):
        with open(path + ".new", "w") as f:
            f.write(config(ports, backends, first))
        os.rename(path + ".new", path)
        sent = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        wait_for("standalone.reload", n)
        return (time.monotonic() - sent) * 1000

    # Warm-up under load, then the idle process is the reference.
    warm = Load([ports[0], ports[1]])
    warm.start()
    done = 0
    for i in range(args.warmup):
        done += 1
        reload(done, i % 2 == 1)
    warm.finish()
    time.sleep(2)
    before = settle()
    held = [socket.create_connection(("127.0.0.1", ports[1]), timeout=10) for _ in range(8)]
    load = Load([ports[0], ports[1]])
    load.start()
    seen = []
    started = time.monotonic()
    for i in range(args.reloads):
        done += 1
        seen.append(reload(done, (args.warmup + i) % 2 == 1))
    elapsed = time.monotonic() - started
    during = snapshot(proc.pid)
    load.finish()
    # Every held connection still relays, byte-exact, after all the reloads.
    held_ok = 0
    for i, s in enumerate(held):
        message = f"held {i}".encode()
        s.sendall(message)
        if s.recv(100) == message:
            held_ok += 1
        s.close()
    # The last file is the one the warm-up ended on: once every earlier engine has
    # ended, the idle process should hold what it held before.
    after = settle(before)
    read_events()
    durations = [float(e["duration_ms"]) for e in events if e.get("event") == "standalone.reload"][args.warmup:]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)

    def stats(values):
        values = sorted(values)
        return {"median": statistics.median(values), "p99": values[int(len(values) * 0.99) - 1], "max": values[-1]}

    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip())
    results = {
        "commit": rev, "dirty": dirty, "reloads": args.reloads, "warmup": args.warmup, "seconds": elapsed,
        "round_trips": load.count, "failures": len(load.failures), "failure_samples": load.failures[:5],
        "held_connections_ok": held_ok, "held_connections": len(held),
        "before": before, "after_reloads": during, "after_settled": after,
        "rss_growth_kib": after["rss_kib"] - before["rss_kib"],
        "reload_ms_in_process": stats(durations), "reload_ms_signal_to_log": stats(seen),
        "exit_code": proc.returncode,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    summary = f"""# Reloads under load

Commit {rev}{' (dirty tree)' if dirty else ''}; `python3 Benchmarks/reload/reload.py --reloads {args.reloads} --warmup {args.warmup}`; 2 workers.

| | value |
|---|---|
| reloads (after {args.warmup} warm-up) | {args.reloads} in {elapsed:.1f} s |
| echo round trips through kept ports during them | {load.count}, failed: {len(load.failures)} |
| connections held open across every reload | {held_ok} of {len(held)} still byte-exact |
| RSS idle before / under load right after / idle after | {before['rss_kib']} / {during['rss_kib']} / {after['rss_kib']} KiB (growth {after['rss_kib'] - before['rss_kib']} KiB) |
| threads idle before / idle after | {before['threads']} / {after['threads']} |
| descriptors idle before / idle after (pipes apart) | {before['fds'] - before['fd_kinds'].get('pipe', 0)} / {after['fds'] - after['fd_kinds'].get('pipe', 0)} |
| reload, in process (read, validate, start, retire): median / p99 / max | {stats(durations)['median']:.2f} / {stats(durations)['p99']:.2f} / {stats(durations)['max']:.2f} ms |
| reload, SIGHUP sent to log line seen: median / p99 / max | {stats(seen)['median']:.2f} / {stats(seen)['p99']:.2f} / {stats(seen)['max']:.2f} ms |
| exit code after SIGTERM | {proc.returncode} |
"""
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    return 0 if not load.failures and held_ok == len(held) else 1


if __name__ == "__main__":
    sys.exit(main())
