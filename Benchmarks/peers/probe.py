#!/usr/bin/env python3
"""Small helpers for run.sh: things that are awkward or fragile in bash.

Subcommands (all print to stdout, errors to stderr, exit non-zero on failure):
  free-ports [--udp] N         N distinct free TCP (or UDP) ports, free on 0.0.0.0 and ::
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
  udp-flows N OUT -- CMD...    run N copies of CMD at once (one UDP flow each), each one's
                               output to OUT.flowI, then print them all, headed
                               '=== flow I rc R'; exit status: the first non-zero one
  udp-flood PORT N OUT -- CMD...
                               a fresh sockperf server (the sink) on 127.0.0.1:PORT, then
                               udp-flows N OUT -- CMD; after them, what reached the sink:
                               '=== sink received R dropped D' (D: its socket's overflow)
  udp-check PORT               a 1-s sockperf ping-pong through 127.0.0.1:PORT must get
                               replies (up to 3 tries: a first datagram may be dropped)
  cpu-ticks PID...             utime+stime+cutime+cstime of the PIDs and all their
                               descendants, in clock ticks
  init-samples FILE k=v...     start samples.json with a meta block
  meta FILE k=v...             add keys to the meta block
  sample FILE --subject S ...  parse one tool output and append a sample
                               (--kind iperf|wrk|sockperf|flood|memory, or --na REASON)

Only the standard library: it must run before anything is installed.
"""
import argparse
import json
import os
import re
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- ports

def free_ports(count, udp=False):
    """Bind `count` sockets to port 0 at once so the kernel hands out distinct
    ports, then release them all. A dual-stack :: socket reserves the port on
    0.0.0.0 and :: together, which portunus-uring needs (it listens on both, for
    TCP and for UDP). TCP and UDP ports are separate spaces: udp=True asks for
    ports free for UDP. A small race remains until the forwarders bind; run.sh
    binds them at once and before any load generator runs, so nothing else
    takes these ports."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
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


# ---------------------------------------------------------------- UDP

FLOW_HEAD = re.compile(r"^=== flow (\d+) rc (-?\d+)$", re.M)


def udp_flows(count, out, cmd):
    """Start `count` copies of cmd together (each sockperf client has its own socket,
    so its own source port: one flow through the forwarder each), wait for all, and
    print their outputs one after the other. On SIGTERM (timeout(1) ran out) the
    copies are ended too and whatever they wrote is still printed."""
    procs, files = [], []

    def stop(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for i in range(count):
        f = open(f"{out}.flow{i}", "w")
        files.append(f)
        procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT))
    codes = []
    for p in procs:
        while True:
            try:
                codes.append(p.wait())
                break
            except InterruptedError:
                continue
    for i, f in enumerate(files):
        f.close()
        with open(f"{out}.flow{i}") as g:
            text = g.read()
        print(f"=== flow {i} rc {codes[i]}")
        print(text, end="" if text.endswith("\n") or not text else "\n")
    return next((c for c in codes if c), 0)


def _udp_socket_drops(port):
    """The drop counter of the socket bound to 127.0.0.1:port (/proc/net/udp), or None."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == local:
                return int(cols[-1])
    return None


def udp_flood(port, count, out, cmd):
    """An open-loop UDP load: a fresh sockperf server on 127.0.0.1:port is the sink the
    forwarder sends to; `count` sockperf throughput clients flood the forwarder at once.
    Afterwards the sink's own count of datagrams received plus its socket's overflow
    drops is everything the forwarder delivered to it: a sink slower than the forwarder
    (it shares the 2 cores) must not be charged to the forwarder. The sink is fresh so
    both counts are this sample's alone."""
    sink = subprocess.Popen(["sockperf", "sr", "-i", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 5
        while _udp_socket_drops(port) is None:
            if sink.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the sockperf sink did not bind 127.0.0.1:{port}:"
                                   f" {(sink.communicate()[0] or '')[-300:]}")
            time.sleep(0.05)
        rc = udp_flows(count, out, cmd)
        # Datagrams still queued in the forwarder reach the sink within milliseconds.
        time.sleep(0.5)
        dropped = _udp_socket_drops(port)
        sink.send_signal(signal.SIGINT)
        text = sink.communicate(timeout=10)[0]
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    m = re.search(r"Total (\d+) messages received", text)
    received = int(m.group(1)) if m else 0
    if not m and "No messages were received" not in text:
        raise RuntimeError(f"the sockperf sink printed no total: {text[-300:]}")
    print(f"=== sink received {received} dropped {dropped}")
    return rc


def udp_check(port, tries=3):
    """A short sockperf ping-pong through the forwarder must get replies. sockperf
    never resends: a datagram lost in its warm-up stalls it for good, and the
    first datagram of a new flow may be dropped on purpose (portunus-dns while it
    looks the name up), so a stalled try is ended and tried again."""
    why = ""
    for _ in range(tries):
        try:
            r = subprocess.run(["sockperf", "pp", "-i", "127.0.0.1", "-p", str(port), "-m", "64",
                                "-t", "1", "--full-rtt"], capture_output=True, text=True, timeout=6)
        except subprocess.TimeoutExpired:
            why = "sockperf stalled (a datagram got no reply)"
            continue
        try:
            got = parse_sockperf_text(r.stdout + r.stderr)
        except RuntimeError as e:
            why = f"sockperf exit {r.returncode}: {e}"
            continue
        print(f"{got['rtps']:.0f} round trips/s")
        return
    raise RuntimeError(f"no UDP round trip through 127.0.0.1:{port} in {tries} tries: {why}")


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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _sockperf_flow(text):
    """One `sockperf pp --full-rtt` output -> dict, RTT figures in microseconds."""
    text = _ANSI.sub("", text)
    if re.search(r"Summary: Latency is", text):
        raise RuntimeError("sockperf printed one-way latency: --full-rtt is missing")
    total = re.search(r"\[Total Run\] RunTime=([0-9.]+) sec;.*?SentMessages=(\d+); ReceivedMessages=(\d+)", text)
    valid = re.search(r"\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)", text)
    if re.search(r"No messages were received from the server", text):
        # socat's UDP4-LISTEN fork, for one, drops a new client's first datagrams
        # while it is forking for another client.
        raise RuntimeError("sockperf: no reply at all (the forwarder lost this flow's first"
                           " datagrams; sockperf does not resend)")
    if not total:
        raise RuntimeError("sockperf: no '[Total Run]' line (it did not finish)")
    if not valid:
        # No statistics at all: no reply came after the warm-up (it stalled on a lost datagram).
        raise RuntimeError(f"sockperf: no '[Valid Duration]' statistics; {total.group(3)} of"
                           f" {total.group(2)} messages answered in all, none after the warm-up")
    runtime, received = float(valid.group(1)), int(valid.group(3))
    if not received or not runtime:
        raise RuntimeError("sockperf: no round trip in the valid duration")
    out = {"runtime_s": runtime, "received": received, "total_received": int(total.group(3))}
    m = re.search(r"avg-rtt=([0-9.]+)", text)
    out["avg_us"] = float(m.group(1)) if m else None
    for pct, key in (("50.000", "p50_us"), ("99.000", "p99_us")):
        m = re.search(rf"percentile {pct} =\s*([0-9.]+)", text)
        out[key] = float(m.group(1)) if m else None
    m = re.search(r"# dropped messages = (\d+); # duplicated messages = (\d+); # out-of-order messages = (\d+)", text)
    out["dropped"], out["duplicated"], out["out_of_order"] = map(int, m.groups()) if m else (0, 0, 0)
    # Closed loop, one datagram in flight: the round trips fill the run.
    # A lost datagram leaves the client waiting for good (sockperf never resends);
    # sockperf then ends the valid duration at the last reply, so it shows as a valid
    # duration plus warm-up well short of the whole run, and (had it counted the wait)
    # as round trips x mean RTT well short of the valid duration. busy: the lower one.
    total_runtime = float(total.group(1))
    m = re.search(r"Warm up time=(\d+) msec", text)
    warmup = int(m.group(1)) / 1000 if m else 0.0
    shares = [(runtime + warmup) / total_runtime] if total_runtime else []
    if out["avg_us"]:
        shares.append(out["avg_us"] * received / 1e6 / runtime)
    out["busy"] = min(shares) if shares else None
    return out


def parse_sockperf_text(text):
    """One or more sockperf outputs (udp-flows heads each with '=== flow I rc R')."""
    heads = list(FLOW_HEAD.finditer(text))
    if heads:
        parts = [text[h.end():(heads[i + 1].start() if i + 1 < len(heads) else len(text))]
                 for i, h in enumerate(heads)]
    else:
        parts = [text]
    flows = []
    for i, part in enumerate(parts):
        try:
            flows.append(_sockperf_flow(part))
        except RuntimeError as e:
            raise RuntimeError(f"flow {i}: {e}" if len(parts) > 1 else str(e))
    p50s = [f["p50_us"] for f in flows if f["p50_us"] is not None]
    p99s = [f["p99_us"] for f in flows if f["p99_us"] is not None]
    busy = [f["busy"] for f in flows if f["busy"] is not None]
    return {
        "flows": len(flows),
        # Each flow's own rate over its own valid window (they run together): summed.
        "rtps": sum(f["received"] / f["runtime_s"] for f in flows),
        "round_trips": sum(f["received"] for f in flows),
        # Warm-up and tail included: the CPU window covers them too.
        "round_trips_total": sum(f["total_received"] for f in flows),
        "p50_us": statistics.median(p50s) if p50s else None,   # the median flow's median
        "p99_us": max(p99s) if p99s else None,                  # the worst flow's p99
        "dropped": sum(f["dropped"] for f in flows),
        "busy_min": min(busy) if busy else None,
        "per_flow": [{k: f[k] for k in ("received", "runtime_s", "p50_us", "p99_us", "dropped", "busy")}
                     for f in flows],
    }


def parse_sockperf(path):
    with open(path) as f:
        return parse_sockperf_text(f.read())


SINK_LINE = re.compile(r"^=== sink received (\d+) dropped (\d+)$", re.M)


def parse_flood_text(text):
    """udp-flood output: the clients' `sockperf tp` outputs and the sink's counts."""
    sink = SINK_LINE.search(text)
    if not sink:
        raise RuntimeError("no '=== sink' line: the sink's counts are missing")
    received, dropped = int(sink.group(1)), int(sink.group(2))
    text = _ANSI.sub("", text[:sink.start()])
    heads = list(FLOW_HEAD.finditer(text))
    if not heads:
        raise RuntimeError("no sockperf client output")
    sent, secs = 0, 0.0
    for i, h in enumerate(heads):
        part = text[h.end():(heads[i + 1].start() if i + 1 < len(heads) else len(text))]
        m = re.search(r"Total of (\d+) messages sent in ([0-9.]+) sec", part)
        if int(h.group(2)) != 0 or not m:
            raise RuntimeError(f"flow {i}: sockperf exit {h.group(2)}, no 'Total of N messages"
                               f" sent' line: {part.strip()[-200:]}")
        sent += int(m.group(1))
        secs = max(secs, float(m.group(2)))
    if not secs:
        raise RuntimeError("sockperf ran for 0 s")
    forwarded = received + dropped
    return {
        "flows": len(heads),
        "secs": secs,
        "sent": sent,
        "received": received,
        "sink_dropped": dropped,
        "forwarded": forwarded,
        "sent_dps": sent / secs,
        "fwd_dps": forwarded / secs,
        "recv_dps": received / secs,
        # What the clients sent that never reached the sink: lost in the forwarder (its
        # listen socket overflowed, or it dropped them). The sink's warm-up datagrams are
        # not in `sent`, so a forwarder that loses nothing can show a hair below 0.
        "lost": max(0.0, 1 - forwarded / sent) if sent else None,
    }


# A flow busy for less than this share of its valid duration waited on a lost
# datagram: its rate is not the forwarder's, so the sample is an error.
UDP_BUSY_LIMIT = 0.9


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
        elif a.kind == "flood":
            with open(a.output) as f:
                parsed = parse_flood_text(f.read())
            sample.update(parsed)
            cpu_s = None if a.cpu_ticks is None else a.cpu_ticks / CLK_TCK
            sample["cpu_s"] = cpu_s
            if not parsed["forwarded"]:
                raise RuntimeError(f"nothing reached the sink of {parsed['sent']} datagrams sent")
            sample["cpu_us_per_dgram"] = None if cpu_s is None else cpu_s * 1e6 / parsed["forwarded"]
        elif a.kind == "sockperf":
            parsed = parse_sockperf(a.output)
            sample.update(parsed)
            cpu_s = None if a.cpu_ticks is None else a.cpu_ticks / CLK_TCK
            sample["cpu_s"] = cpu_s
            sample["cpu_us_per_rt"] = (None if cpu_s is None or not parsed["round_trips_total"]
                                       else cpu_s * 1e6 / parsed["round_trips_total"])
            if parsed["busy_min"] is not None and parsed["busy_min"] < UDP_BUSY_LIMIT:
                raise RuntimeError(f"a flow waited {1 - parsed['busy_min']:.0%} of its run for a reply"
                                   " that never came (a datagram was lost; sockperf does not resend),"
                                   " so the rate is not the forwarder's")
            if parsed["dropped"]:
                sample["warning"] = f"sockperf: {parsed['dropped']} dropped messages"
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
    elif a.kind == "flood":
        cpu = sample["cpu_us_per_dgram"]
        print(f"{sample['fwd_dps']:.0f} datagrams/s forwarded of {sample['sent_dps']:.0f}/s sent"
              f" ({sample['flows']} flow(s)), {sample['recv_dps']:.0f}/s received by the sink"
              + (f", {cpu:.2f} CPU us/datagram" if cpu is not None else ""))
    elif a.kind == "sockperf":
        cpu = sample["cpu_us_per_rt"]
        p50 = sample["p50_us"]
        print(f"{sample['rtps']:.0f} round trips/s ({sample['flows']} flow(s))"
              + (f" p50 {p50:.1f} us" if p50 is not None else "")
              + f" p99 {sample['p99_us']:.1f} us RTT"
              + (f", {cpu:.2f} CPU us/round trip" if cpu is not None else "")
              + (f" [{sample['warning']}]" if "warning" in sample else ""))
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
    fp = sub.add_parser("free-ports")
    fp.add_argument("--udp", action="store_true")
    fp.add_argument("count", type=int)
    uf = sub.add_parser("udp-flows")
    uf.add_argument("count", type=int)
    uf.add_argument("out")
    uf.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    fl = sub.add_parser("udp-flood")
    fl.add_argument("port", type=int, help="the sink's port on 127.0.0.1")
    fl.add_argument("count", type=int)
    fl.add_argument("out")
    fl.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    sub.add_parser("udp-check").add_argument("port", type=int)
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
    s.add_argument("--kind", choices=("iperf", "wrk", "sockperf", "flood", "memory"), required=True)
    s.add_argument("--output", required=True)
    s.add_argument("--cpu-ticks", type=int)
    s.add_argument("--error")
    s.add_argument("--na", help="not applicable to this subject: the reason")
    s.add_argument("--running", help="memory: stats JSON of the long-running instance")
    a = p.parse_args()

    try:
        if a.cmd == "free-ports":
            print(" ".join(map(str, free_ports(a.count, a.udp))))
        elif a.cmd in ("udp-flows", "udp-flood"):
            cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
            if not cmd:
                raise RuntimeError("no command after --")
            sys.exit(udp_flows(a.count, a.out, cmd) if a.cmd == "udp-flows" else
                     udp_flood(a.port, a.count, a.out, cmd))
        elif a.cmd == "udp-check":
            udp_check(a.port)
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
