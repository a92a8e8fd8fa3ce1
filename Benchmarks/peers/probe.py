#!/usr/bin/env python3
"""Small helpers for run.sh: things that are awkward or fragile in bash.

Subcommands (all print to stdout, errors to stderr, exit non-zero on failure):
  free-ports N                 N distinct free TCP ports (free on 0.0.0.0 and ::)
  wait-port PORT SECS [PID...] exit 0 once 127.0.0.1:PORT accepts, 1 after SECS
                               or as soon as one of the PIDs has exited
  http-check PORT              GET http://127.0.0.1:PORT/ must answer 200 "ok\\n"
  proxy-check PORT             one request through a forwarder that sends a PROXY
                               header to the backend's proxy_protocol listener:
                               200, and the header named this client and this port
  stats PID...                 JSON: RSS, PSS, threads, io_uring workers, processes
                               and fds of the PIDs and all their descendants
  hold --port P --backend-port B --count N --pids PID... [...]
                               memory test: an idle backend on B, N idle connections
                               through the forwarder on P, JSON of what it cost
  cpu-ticks PID...             utime+stime+cutime+cstime of the PIDs and all their
                               descendants, in clock ticks
  init-samples FILE k=v...     start samples.json with a meta block
  meta FILE k=v...             add keys to the meta block
  sample FILE --subject S ...  parse one tool output and append a sample
                               (--kind iperf|wrk|memory, or --na REASON)

Only the standard library: it must run before anything is installed.
"""
import argparse
import json
import os
import re
import resource
import selectors
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


def proxy_check(port, timeout=5.0):
    """One request through a forwarder that prepends a PROXY header towards the
    backend's `listen ... proxy_protocol` server, which answers with what the header
    told it. Wants 200 and src = this socket's own address, dst = the address the
    forwarder listens on. nginx closes a connection whose header is missing or
    broken without a response: that fails here, once and clearly, instead of
    showing up later as a suspiciously fast wrk error rate. Prints the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        local_host, local_port = s.getsockname()[:2]
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < 65536 and time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    if not data:
        raise RuntimeError(f"port {port}: closed without a response (the backend rejected"
                           " the PROXY header, or none was sent)")
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    fields = status.split()
    if len(fields) < 2 or fields[1] != "200":
        raise RuntimeError(f"port {port}: got {status!r}, want 200")
    want = f"src={local_host}:{local_port} dst=127.0.0.1:{port}\n"
    if body.decode(errors="replace") != want:
        raise RuntimeError(f"port {port}: the PROXY header said {body!r}, want {want!r}")
    print(want.strip())


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


# ---------------------------------------------------------------- memory

def process_tree(pids):
    """The PIDs and all their live descendants (nginx workers, socat children)."""
    children = _children_map()
    tree, seen, stack = [], set(), list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def _status_kib(status, field):
    m = re.search(rf"^{field}:\s+(\d+)", status, re.M)
    return int(m.group(1)) if m else 0


def proc_stats(pids, full=True):
    """What a forwarder holds, summed over its processes (socat: one per connection).

    rss_kib: VmRSS, as asked for and as `ps` shows it; it counts shared pages (libc,
    the binary) once per process, so for socat's thousands of children it overstates
    the real cost. pss_kib (smaps_rollup Pss) splits shared pages between their users
    and is the fairer sum. threads: every task, io_uring workers included; iou_wrk:
    the tasks named iou-wrk-* (io-wq workers doing blocking work for a ring).
    fds: open files, of which sockets and pipes beyond stdio (a splice relay holds pipes).
    full=False skips Pss and fds, which are slow to read for thousands of processes."""
    out = {"processes": 0, "rss_kib": 0, "threads": 0, "iou_wrk": 0}
    if full:
        out.update(pss_kib=0, fds=0, sockets=0, pipes=0)
    for pid in process_tree(pids):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
            iou = 0
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/comm") as f:
                        iou += f.read().startswith("iou-wrk")
                except OSError:
                    pass  # the thread exited meanwhile (io-wq workers come and go)
            if full:
                fds = sockets = pipes = 0
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    fds += 1
                    if fd in ("0", "1", "2"):
                        continue  # stdio: whatever the harness handed down (a pipe, say)
                    try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue  # closed meanwhile
                    sockets += target.startswith("socket:")
                    pipes += target.startswith("pipe:")
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    pss = _status_kib(f.read(), "Pss")
        except OSError:
            continue  # exited between the walk and the read
        out["processes"] += 1
        out["rss_kib"] += _status_kib(status, "VmRSS")
        out["threads"] += _status_kib(status, "Threads")
        out["iou_wrk"] += iou
        if full:
            out["fds"] += fds
            out["sockets"] += sockets
            out["pipes"] += pipes
            out["pss_kib"] += pss
    return out


class Hold:
    """Open `count` idle connections through a forwarder to an idle backend that
    accepts and never closes, both ends in this process (2 x count fds), and read
    the forwarder's cost while they are held. Everything is bounded in time."""

    WINDOW = 256  # connects in flight: stays far below every listen backlog (4096)

    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.clients = {}   # fd -> socket, connecting or open
        self.backends = {}  # fd -> socket accepted by our idle backend
        self.c = dict(opened=0, accepted=0, connect_failed=0, reset_by_forwarder=0,
                      backend_closed=0, accept_errors=0)
        self.errnos = {}
        self.listener = None

    # -- event loop

    def _fail_client(self, s, key):
        self.sel.unregister(s)
        del self.clients[s.fileno()]
        s.close()
        self.c[key] += 1

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as e:  # EMFILE would mean our own limit is wrong
                self.c["accept_errors"] += 1
                self.errnos[e.strerror] = self.errnos.get(e.strerror, 0) + 1
                return
            conn.setblocking(False)
            self.backends[conn.fileno()] = conn
            self.sel.register(conn, selectors.EVENT_READ, "backend")
            self.c["accepted"] += 1

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s, what = key.fileobj, key.data
            if what == "listener":
                self._accept()
            elif what == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    name = os.strerror(err)
                    self.errnos[name] = self.errnos.get(name, 0) + 1
                    # Reset before we saw the connect complete: the forwarder accepted
                    # and closed it at once (e.g. out of connection slots).
                    self._fail_client(s, "reset_by_forwarder" if err == 104 else "connect_failed")
                else:
                    self.sel.modify(s, selectors.EVENT_READ, "client")
            elif what == "client":
                # An idle connection is never readable unless the forwarder closed it.
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self._fail_client(s, "reset_by_forwarder")
            elif what == "backend":
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    self.sel.unregister(s)
                    del self.backends[s.fileno()]
                    s.close()
                    self.c["backend_closed"] += 1

    def open_more(self):
        c = self.c
        while (c["opened"] < self.a.count and
               c["opened"] - c["accepted"] - c["connect_failed"] - c["reset_by_forwarder"] < self.WINDOW):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            c["opened"] += 1
            rc = s.connect_ex(("127.0.0.1", self.a.port))
            if rc not in (0, 115):  # 115: EINPROGRESS
                self.errnos[os.strerror(rc)] = self.errnos.get(os.strerror(rc), 0) + 1
                s.close()
                c["connect_failed"] += 1
                continue
            self.clients[s.fileno()] = s
            self.sel.register(s, selectors.EVENT_WRITE, "connecting")

    # -- phases

    def ready(self):
        """The forwarder accepts and a connection reaches the backend end to end."""
        deadline = time.monotonic() + self.a.ready_secs
        while time.monotonic() < deadline:
            dead = [p for p in self.a.pids if _exited(p)]
            if dead:
                raise RuntimeError(f"forwarder process {dead[0]} exited before it accepted")
            try:
                probe = socket.create_connection(("127.0.0.1", self.a.port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            with probe:
                import select
                if select.select([self.listener], [], [], 3)[0]:
                    self.listener.accept()[0].close()
                    return
            raise RuntimeError("the forwarder accepted but did not connect to the backend within 3 s")
        raise RuntimeError(f"the forwarder did not accept on 127.0.0.1:{self.a.port} within {self.a.ready_secs}s")

    def run(self):
        a, c = self.a, self.c
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < 2 * a.count + 64:
            raise RuntimeError(f"open-file hard limit {hard} is too low for 2 x {a.count} sockets")
        out = {"count": a.count, "notes": []}
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", a.backend_port))
        self.listener.listen(4096)
        self.ready()
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "listener")
        time.sleep(a.settle_secs)  # let the check connection's teardown finish
        out["idle"] = proc_stats(a.pids)

        # Set-up: pace connects so no backlog overflows (a dropped SYN costs a 1 s retry).
        start = time.monotonic()
        last_progress, last_done = start, 0
        iou_max = out["idle"]["iou_wrk"]
        threads_max = out["idle"]["threads"]
        next_sample = start
        stop_reason = None
        while True:
            now = time.monotonic()
            done = c["accepted"] + c["connect_failed"] + c["reset_by_forwarder"]
            if c["accepted"] >= a.count:
                break
            if c["opened"] >= a.count and done >= a.count:
                stop_reason = "every connection had reached the backend or failed"
                break
            if done != last_done:
                last_done, last_progress = done, now
            if now - start > a.setup_secs:
                stop_reason = f"set-up time cap of {a.setup_secs:.0f} s reached"
                break
            if now - last_progress > a.stall_secs:
                stop_reason = f"no progress for {a.stall_secs:.0f} s"
                break
            self.open_more()
            self.poll(0.05)
            if now >= next_sample:
                light = proc_stats(a.pids, full=False)
                iou_max = max(iou_max, light["iou_wrk"])
                threads_max = max(threads_max, light["threads"])
                # Walking thousands of socat children takes a while: sample less
                # often then, so the walk does not pace the set-up.
                next_sample = time.monotonic() + max(0.5, 4 * (time.monotonic() - now))
        out["setup_secs"] = round(time.monotonic() - start, 3)
        out["setup_stop"] = stop_reason
        out["setup"] = dict(c)
        out["iou_wrk_max_setup"] = iou_max
        out["threads_max_setup"] = threads_max
        # Connects still in flight when the set-up stopped are closed as failed.
        for s in [s for s in self.clients.values() if self.sel.get_key(s).data == "connecting"]:
            self._fail_client(s, "connect_failed")

        # Hold: nothing moves; watch for connections the forwarder drops.
        held_at_start = len(self.clients)
        iou_max = threads_max = 0
        end = time.monotonic() + a.hold_secs
        while time.monotonic() < end:
            self.poll(min(0.5, max(0.0, end - time.monotonic())))
            light = proc_stats(a.pids, full=False)
            iou_max = max(iou_max, light["iou_wrk"])
            threads_max = max(threads_max, light["threads"])
        out["held"] = proc_stats(a.pids)
        out["held"]["clients_open"] = len(self.clients)
        out["held"]["backends_open"] = len(self.backends)
        out["dropped_during_hold"] = held_at_start - len(self.clients)
        out["iou_wrk_max_hold"] = max(iou_max, out["held"]["iou_wrk"])
        out["threads_max_hold"] = max(threads_max, out["held"]["threads"])

        # Tear-down: clients close first; a forwarder passes the FIN on to the
        # backend, which then closes its side, and the forwarder lets both go.
        start = time.monotonic()
        deadline = start + a.teardown_secs
        for s in list(self.clients.values()):
            self.sel.unregister(s)
            s.close()
        self.clients.clear()
        eof_before = c["backend_closed"]
        while self.backends and time.monotonic() < deadline:
            self.poll(0.1)
        out["backend_saw_eof"] = c["backend_closed"] - eof_before
        if self.backends:
            out["notes"].append(f"{len(self.backends)} backend connections saw no EOF within"
                                f" {a.teardown_secs:.0f} s of the clients closing")
        for s in list(self.backends.values()):
            self.sel.unregister(s)
            s.close()
        self.backends.clear()
        self.sel.unregister(self.listener)
        self.listener.close()
        # Wait until the forwarder is back to its idle processes and sockets (a pool
        # may keep pipes or buffers: that is its business, and shows in `after`).
        while True:
            now_stats = proc_stats(a.pids)
            if (now_stats["processes"] <= out["idle"]["processes"]
                    and now_stats["sockets"] <= out["idle"]["sockets"] + 8):
                break
            if time.monotonic() >= deadline:
                out["notes"].append(f"tear-down incomplete after {a.teardown_secs:.0f} s:"
                                    f" {now_stats['processes']} processes, {now_stats['sockets']}"
                                    f" sockets (idle: {out['idle']['processes']},"
                                    f" {out['idle']['sockets']})")
                break
            time.sleep(0.2)
        out["teardown_secs"] = round(time.monotonic() - start, 3)
        time.sleep(a.settle_secs)
        out["after"] = proc_stats(a.pids)
        out["connect_errors"] = self.errnos
        return out


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


# A wrk run whose failed requests (socket errors plus non-2xx answers) exceed this
# share of all it attempted measured a failure rate, not a forwarder: error sample.
# Below it the sample stays ok, with the count in `errors` and a warning.
WRK_ERROR_LIMIT = 0.01

MiB = 1024.0


def _memory_sample(sample, path, running):
    with open(path) as f:
        text = f.read()
    if not text.strip():
        raise RuntimeError(f"the hold wrote no result; see {path}.stderr")
    h = json.loads(text)
    sample.update({
        "count": h["count"],
        "connected": h["setup"]["accepted"],
        "held": min(h["held"]["clients_open"], h["held"]["backends_open"]),
        "setup_secs": h["setup_secs"], "teardown_secs": h["teardown_secs"],
        "rss_idle_kib": h["idle"]["rss_kib"], "pss_idle_kib": h["idle"]["pss_kib"],
        "rss_held_kib": h["held"]["rss_kib"], "pss_held_kib": h["held"]["pss_kib"],
        "rss_after_kib": h["after"]["rss_kib"], "pss_after_kib": h["after"]["pss_kib"],
        "threads_idle": h["idle"]["threads"], "threads_held": h["held"]["threads"],
        "iou_wrk_held": h["held"]["iou_wrk"], "iou_wrk_max_hold": h["iou_wrk_max_hold"],
        "iou_wrk_max_setup": h["iou_wrk_max_setup"],
        "processes_held": h["held"]["processes"], "fds_held": h["held"]["fds"],
        "sockets_held": h["held"].get("sockets"), "pipes_held": h["held"].get("pipes"),
        "pipes_after": h["after"].get("pipes"),
        "hold": h,
    })
    if sample["held"]:
        sample["kib_per_conn"] = (h["held"]["rss_kib"] - h["idle"]["rss_kib"]) / sample["held"]
        sample["pss_kib_per_conn"] = (h["held"]["pss_kib"] - h["idle"]["pss_kib"]) / sample["held"]
    if running:
        with open(running) as f:
            r = json.load(f)
        sample["rss_running_kib"] = r["rss_kib"]
        sample["pss_running_kib"] = r["pss_kib"]
    problems = []
    if sample["connected"] < h["count"] or sample["held"] < h["count"]:
        s = h["setup"]
        # ECONNRESET is already counted as closed by the forwarder.
        errs = ", ".join(f"{n} x {e}" for e, n in h.get("connect_errors", {}).items()
                         if e != os.strerror(104))
        why = [f"{s['reset_by_forwarder']} accepted by the forwarder and closed at once"
               if s["reset_by_forwarder"] else "",
               f"{s['connect_failed']} connects failed ({errs})" if s["connect_failed"] else "",
               f"set-up ended: {h['setup_stop']}" if h.get("setup_stop") else ""]
        problems.append(f"only {sample['held']}/{h['count']} connections held through to the backend"
                        f" ({'; '.join(w for w in why if w)})")
    if h.get("dropped_during_hold"):
        problems.append(f"{h['dropped_during_hold']} connections dropped during the hold")
    if problems:
        # The figures stay in the sample (the report shows them, flagged); the
        # hold is not what was asked for, so the sample is not ok.
        raise RuntimeError("; ".join(problems))
    if h.get("notes"):
        sample["warning"] = "; ".join(h["notes"])


def add_sample(a):
    sample = {"subject": a.subject, "workload": a.workload, "round": a.round,
              "status": "ok"}
    try:
        if a.na:
            sample["status"] = "n/a"
            sample["reason"] = a.na
        elif a.error:
            raise RuntimeError(a.error)
        elif a.kind == "memory":
            _memory_sample(sample, a.output, a.running)
        else:
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
                sample["errors"] = errors
                attempted = parsed["requests"] + sum(parsed["socket_errors"].values())
                detail = ", ".join(f"{k} {v}" for k, v in parsed["socket_errors"].items() if v)
                detail += (", " if detail and parsed["non_2xx"] else "") + (
                    f"non-2xx {parsed['non_2xx']}" if parsed["non_2xx"] else "")
                if not parsed["requests"] or errors > WRK_ERROR_LIMIT * max(attempted, 1):
                    raise RuntimeError(f"wrk: {errors} failed of {attempted} requests ({detail});"
                                       f" more than {WRK_ERROR_LIMIT:.0%} fail, so the rate is not"
                                       f" a forwarder's")
                if errors:
                    sample["warning"] = f"wrk: {errors} failed of {attempted} requests ({detail})"
    except Exception as e:  # noqa: BLE001 - any failure becomes an error sample
        sample["status"] = "error"
        sample["error"] = str(e)
    try:
        # Read right after the measurement: a hint of what else shared the 2 cores.
        with open("/proc/loadavg") as f:
            sample["loadavg_1m"] = float(f.read().split()[0])
    except (OSError, ValueError):
        pass
    with open(a.file) as f:
        doc = json.load(f)
    doc["samples"].append(sample)
    _write_atomic(a.file, doc)
    # One line for the progress log in run.sh.
    if sample["status"] == "n/a":
        print(f"n/a: {sample['reason']}")
    elif sample["status"] != "ok":
        print(f"ERROR {sample['error']}")
    elif a.kind == "iperf":
        cpu = sample["cpu_s_per_gb"]
        print(f"{sample['gbps']:.2f} Gbit/s" + (f", {cpu:.3f} CPU s/GB" if cpu is not None else ""))
    elif a.kind == "memory":
        print(f"RSS idle {sample['rss_idle_kib'] / MiB:.1f} MiB, held {sample['rss_held_kib'] / MiB:.1f} MiB"
              f" ({sample['held']} conns, set-up {sample['setup_secs']:.1f} s), after"
              f" {sample['rss_after_kib'] / MiB:.1f} MiB; threads {sample['threads_held']},"
              f" iou-wrk {sample['iou_wrk_held']} (max {sample['iou_wrk_max_hold']})"
              + (f" [{sample['warning']}]" if "warning" in sample else ""))
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
    sub.add_parser("proxy-check").add_argument("port", type=int)
    sub.add_parser("stats").add_argument("pids", type=int, nargs="+")
    h = sub.add_parser("hold")
    h.add_argument("--port", type=int, required=True, help="the forwarder's listen port")
    h.add_argument("--backend-port", type=int, required=True, help="where our idle backend listens")
    h.add_argument("--count", type=int, default=5000)
    h.add_argument("--pids", type=int, nargs="+", required=True, help="the forwarder's root processes")
    h.add_argument("--ready-secs", type=float, default=10)
    h.add_argument("--settle-secs", type=float, default=1)
    h.add_argument("--setup-secs", type=float, default=30, help="cap on opening all connections")
    h.add_argument("--stall-secs", type=float, default=10, help="give up after this long without progress")
    h.add_argument("--hold-secs", type=float, default=3)
    h.add_argument("--teardown-secs", type=float, default=20)
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
    s.add_argument("--kind", choices=("iperf", "wrk", "memory"), required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--cpu-ticks", type=int)
    s.add_argument("--error")
    s.add_argument("--na", help="not applicable to this subject: the reason")
    s.add_argument("--running", help="memory: stats JSON of the long-running instance")
    a = p.parse_args()

    try:
        if a.cmd == "free-ports":
            print(" ".join(map(str, free_ports(a.count))))
        elif a.cmd == "wait-port":
            sys.exit(0 if wait_port(a.port, a.secs, a.pids) else 1)
        elif a.cmd == "http-check":
            http_check(a.port)
        elif a.cmd == "proxy-check":
            proxy_check(a.port)
        elif a.cmd == "stats":
            print(json.dumps(proc_stats(a.pids)))
        elif a.cmd == "hold":
            print(json.dumps(Hold(a).run(), indent=1))
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
