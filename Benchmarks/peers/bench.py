#!/usr/bin/env python3
"""End-to-end peer benchmark: portunus-uring against HAProxy, nginx stream, socat and no
forwarder at all, on 127.0.0.1, measured in ONE run and interleaved round-robin
(round 1: every subject, round 2: every subject, ...) so that drift on a shared 2-core
machine hits every subject alike. The report gives medians over rounds and ratios
against haproxy (nginx-stream for UDP) and direct from the same run and topology,
never an absolute number alone.

  Benchmarks/peers/run.sh [--rounds N] [--duration SECS] [--binary PATH] [--out DIR]
                          [--only SUBJECTS] [--workloads WORKLOADS]
                          [--topology unpinned|pinned|both]

run.sh installs what is missing, then runs this file with the same options.

  --rounds N       rounds per topology (default 3)
  --duration SECS  whole seconds per measurement (default 5)
  --binary PATH    the portunus-uring to measure (default .build/release/portunus-uring,
                   built with `swift build -c release` when missing)
  --out DIR        results folder (default Benchmarks/results/<UTC timestamp>)
  --topology T     unpinned: every process wherever the scheduler puts it, as a user
                   would run them; pinned: each forwarder's processes (and their
                   children) on CPU 1, every load generator and backend on CPU 0
                   (direct: all on CPU 0, nothing on CPU 1); both (default): the whole
                   measurement once per topology, unpinned first, subjects interleaved
                   round-robin inside each.

SUBJECTS (comma list, for --only):
{subjects}
WORKLOADS (comma list, for --workloads):
{workloads}
Quick check without the portunus binary:
  Benchmarks/peers/run.sh --rounds 1 --duration 2 --only direct,haproxy,socat
Re-render an old run: python3 Benchmarks/peers/report.py Benchmarks/results/<ts>

Writes OUT/samples.json (rewritten after every sample, so an interrupted run stays
readable), OUT/summary.md, OUT/chart.png; configs, logs and raw tool outputs under
OUT/run/<topology>. Every sample records `foreign_cpu_pct`: what the machine's other
processes used over the sample (everything but this harness and what it started), in
% of one core, so a run on a shared machine says so. Exit status: 0 all samples ok,
2 some samples failed (the report is still written), 1 the run could not start or
continue, 130/143 interrupted (INT/TERM; every process it started is stopped).
"""
import argparse
import contextlib
import hashlib
import json
import os
import pwd
import re
import resource
import select
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Seconds between two measurements: lets the previous run's sockets close and the
# CPU frequency settle so one subject's tail does not land in the next one's window.
SETTLE_SECS = 1
# A forwarder or backend that does not accept within this is a failed start.
READY_SECS = 10
# Worker count for every forwarder that has one: 2 cores here, and HAProxy
# nbthread 2 / nginx worker_processes 2 are what a user would set on this box.
FORWARDER_WORKERS = 2
# wrk shape from PEERS.md (the baseline figures there use it).
WRK_THREADS = 2
WRK_CONNECTIONS = 50
# memory: idle connections held through each forwarder. Each costs the forwarder two
# sockets and the hard open-file limit is 20,000 per process (PEERS.md); the hold
# process needs 2 x 5,000 fds for both ends.
HOLD_CONNECTIONS = 5000
HOLD_SETUP_SECS = 30      # cap on opening them all (socat forks one process per connection)
HOLD_TEARDOWN_SECS = 20   # cap on the forwarder letting them all go again
# udp64-flows: concurrent sockperf clients, each its own socket and so its own flow.
UDP_FLOWS = 8
# udp64-flood-flows: concurrent sockperf throughput clients. Each floods as fast as one
# process can, so more than two would only take the 2 cores from the forwarder.
UDP_FLOOD_FLOWS = 2
# socat ends a UDP child (one per client address) after this long without traffic;
# nginx ends a UDP session the same way (proxy_timeout). Every sockperf run is a new
# client port, so without it every run would leave one child / session behind.
UDP_IDLE_SECS = 10
# portunus-dns names every target so; the harness's dnsmasq answers it with 127.0.0.1.
DNS_NAME = "backend.portunus.bench"
# The pinned topology: a core for the forwarder, the other for everything else.
FORWARDER_CPU = 1
LOAD_CPU = 0
# A sample whose foreign CPU (see Window) exceeds this share of one core was taken
# while something else ran: the report flags it. Idle, the figure stays within a few %.
SHARED_CPU_PCT = 10.0


# ---------------------------------------------------------------- the tables

@dataclass(frozen=True)
class Route:
    """One listen port of a forwarder instance and the backend port it forwards to."""
    name: str                    # iperf, http, proxy-v1, proxy-v2, accept, udp, hold
    listen: int
    target: int
    proxy: Optional[str] = None  # the PROXY version it sends, if any

    @property
    def udp(self):
        return self.name == "udp"

    @property
    def accept(self):
        """Every connection opens with a PROXY header (v1 or v2), which the forwarder
        reads and drops before it dials the plain HTTP backend."""
        return self.name == "accept"


@dataclass(frozen=True)
class Spec:
    """What one forwarder instance is started with."""
    dir: Path
    conf: str       # its config file, if it has one
    routes: tuple
    hold: bool      # the memory workload's instance: one idle route, limits sized for the hold
    host: str       # how every target is named
    binary: str
    dns: str        # 127.0.0.1:PORT of the harness's dnsmasq, or ""


@dataclass(frozen=True)
class Subject:
    """A forwarder (or none). Charged its CPU: every process `argv` starts and all
    their descendants, from /proc; nothing else (backends, its dnsmasq) is."""
    name: str
    doc: str
    # (file name, text for a Spec): the config written before start; None: none.
    config: Optional[tuple] = None
    # One argv per process of an instance; None: no forwarder at all.
    argv: Optional[Callable] = None
    proxy: tuple = ()           # the PROXY versions it can send
    no_proxy: str = ""          # why not, for the others
    accept: bool = False        # it can take a PROXY header in (v1 and v2 on one listener)
    no_accept: str = ""         # why not, when it cannot
    no_udp: str = ""            # why it takes no UDP; "": it does
    dns: bool = False           # targets named DNS_NAME, answered by a dnsmasq of ours
    binary: bool = False        # runs the portunus-uring binary
    # An extra check after the common ones (HTTP round trip, PROXY, UDP): returns
    # what it saw, raises RuntimeError if the subject is not what it claims to be.
    check: Optional[Callable] = None

    def why_not(self, route):
        """Why this subject cannot carry a workload on `route`, or ""."""
        if route.startswith("proxy-") and route[len("proxy-"):] not in self.proxy:
            return self.no_proxy
        if route == "accept" and not self.accept:
            return self.no_accept
        return self.no_udp if route == "udp" else ""


def haproxy(name, doc, splice):
    return Subject(name, doc, config=("haproxy.cfg", lambda s: haproxy_cfg(s, splice)),
                   # -db: foreground, no daemon; one process, its threads sum in /proc/PID/stat.
                   argv=lambda s: [["haproxy", "-f", s.conf, "-db"]],
                   proxy=("v1", "v2"), accept=True, no_udp="HAProxy 2.6 does not proxy UDP")


def portunus(name, doc, relay, **extra):
    return Subject(name, doc, config=("portunus.toml", lambda s: portunus_toml(s)),
                   argv=lambda s: [[s.binary, "--config", s.conf, "--workers", str(FORWARDER_WORKERS),
                                    "--relay", relay] + (["--dns-server", s.dns] if s.dns else [])],
                   proxy=("v1", "v2"), accept=True, binary=True, **extra)


SUBJECTS = [
    Subject("direct", "no forwarder: the load generator talks to the backend itself",
            no_proxy="no forwarder: wrk itself sends no PROXY header",
            no_accept="no forwarder to read the PROXY header (the plain backend would answer 400)"),
    haproxy("haproxy", "HAProxy mode tcp, nbthread 2 (send-proxy, send-proxy-v2;\n"
            "bind ... accept-proxy)", splice=False),
    haproxy("haproxy-splice", "the same with option splice-request/-response forced",
            splice=True),
    Subject("nginx-stream", "nginx stream, 2 workers (proxy_protocol on; listen ... udp;\n"
            "listen ... proxy_protocol)",
            config=("nginx.conf", lambda s: nginx_stream_conf(s)),
            argv=lambda s: [["nginx", "-p", f"{s.dir}/", "-e", f"{s.dir}/error.log", "-c", s.conf,
                             "-g", "daemon off;"]],
            proxy=("v1",), no_proxy="nginx can only send PROXY v1 (proxy_protocol on;)", accept=True),
    Subject("socat", "socat, one forking process per port (TCP4-LISTEN/UDP4-LISTEN ,fork)",
            argv=lambda s: [socat_argv(r) for r in s.routes],
            no_proxy="socat cannot send a PROXY header",
            no_accept="socat cannot read a PROXY header (it would pass it on as data)"),
    portunus("portunus-buffers", "portunus-uring --relay buffers", "buffers"),
    portunus("portunus-splice", "portunus-uring --relay splice", "splice"),
    portunus("portunus-auto", "portunus-uring --relay auto", "auto"),
    portunus("portunus-dns", "buffers, every target named by DNS and resolved through a\n"
             "dnsmasq the harness starts: the cost of a cached name against\n"
             "portunus-buffers' IPs", "buffers", dns=True,
             check=lambda p, s: dns_was_asked(p.dns_log)),
]

# What must answer behind a workload's route. The UDP port serves two: a sockperf
# server answers ping-pong, and a fresh sink per sample counts a flood; one makes
# way for the other.
IPERF3_SERVER = "iperf3 server"
NGINX = "nginx http backend"
NGINX_PROXY = "nginx http backend, proxy_protocol listener"
UDP_ECHO = "sockperf server"
UDP_SINK = "fresh sockperf server per sample"
IDLE_ACCEPTOR = "idle acceptor in the hold process"


@dataclass(frozen=True)
class Load:
    """Where a load generator goes: `port` on 127.0.0.1 reaches the backend's `target`."""
    port: int
    target: int
    secs: int
    pids: tuple = ()   # memory: the fresh instance's processes
    script: str = ""   # a workload with a `header`: the wrk Lua script that sends it


@dataclass(frozen=True)
class Workload:
    name: str
    doc: str
    title: str          # the report's heading for its table
    short: str          # the report's column label
    kind: str           # a key of KINDS: how its output is parsed and its figures named
    route: str          # which route of a subject the load goes through
    backend: str        # what must answer behind that route
    load: Callable      # Load -> one argv per load-generator process, all run at once
    header: str = ""    # the PROXY version every connection of the load opens with, if any

    @property
    def clients(self):
        return len(self.load(Load(0, 0, 1)))


def iperf3(l, *extra):
    # -O 1: the first second (slow start, the forwarder's first buffers) is left out.
    return [cmd("iperf3", "-c", "127.0.0.1", "-p", l.port, "-t", l.secs, "-O", 1, "-J", *extra)]


def wrk(l, *extra):
    return [cmd("wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{l.secs}s", "--latency",
                *extra, f"http://127.0.0.1:{l.port}/")]


def sockperf(l, mode, size, flows, *extra):
    # One client process per flow: each has its own socket, so its own source port.
    return [cmd("sockperf", mode, "-i", "127.0.0.1", "-p", l.port, "-m", size, "-t", l.secs, *extra)
            ] * flows


def hold(l):
    return [cmd(sys.executable, HERE / "bench.py", "hold", "--port", l.port, "--backend-port", l.target,
                "--count", HOLD_CONNECTIONS, "--pids", *l.pids, "--ready-secs", READY_SECS,
                "--settle-secs", SETTLE_SECS, "--setup-secs", HOLD_SETUP_SECS,
                "--hold-secs", l.secs, "--teardown-secs", HOLD_TEARDOWN_SECS)]


CLOSE = ("-H", "Connection: close")
PROXY_DOC = ("newconn through a forwarder that sends a PROXY {v} header to an nginx\n"
             "backend expecting it (haproxy send-proxy{opt}, nginx proxy_protocol on,\n"
             "portunus proxy_protocol = \"{v}\"); n/a where the subject cannot send it")
ACCEPT_DOC = ("newconn where every connection opens with a PROXY v1 header (text),\n"
              "sent by a wrk Lua script in the same write as the request, which the\n"
              "forwarder must read and drop before dialling the plain nginx backend\n"
              "(haproxy bind ... accept-proxy, nginx listen ... proxy_protocol,\n"
              "portunus accept_proxy = \"any\"); n/a for direct and socat")
WORKLOADS = [
    Workload("iperf1", "iperf3, 1 stream, Gbit/s and forwarder CPU s/GB",
             title="iperf3, 1 stream", short="iperf 1 stream",
             kind="iperf", route="iperf", backend=IPERF3_SERVER, load=lambda l: iperf3(l)),
    Workload("iperf4", "iperf3 -P 4",
             title="iperf3, 4 streams (-P 4)", short="iperf 4 streams",
             kind="iperf", route="iperf", backend=IPERF3_SERVER, load=lambda l: iperf3(l, "-P", 4)),
    Workload("newconn", "wrk -t2 -c50 with Connection: close, req/s p50 p99, CPU us/req",
             title="New connections (wrk, Connection: close)", short="new conn/s",
             kind="wrk", route="http", backend=NGINX, load=lambda l: wrk(l, *CLOSE)),
    Workload("keepalive", "wrk on kept-alive connections",
             title="Keep-alive requests (wrk)", short="keep-alive req/s",
             kind="wrk", route="http", backend=NGINX, load=lambda l: wrk(l)),
    Workload("proxy-v1", PROXY_DOC.format(v="v1", opt=""),
             title="New connections, forwarder sends PROXY v1 (wrk, Connection: close)",
             short="PROXY v1 conn/s",
             kind="wrk", route="proxy-v1", backend=NGINX_PROXY, load=lambda l: wrk(l, *CLOSE)),
    Workload("proxy-v2", PROXY_DOC.format(v="v2", opt="-v2"),
             title="New connections, forwarder sends PROXY v2 (wrk, Connection: close)",
             short="PROXY v2 conn/s",
             kind="wrk", route="proxy-v2", backend=NGINX_PROXY, load=lambda l: wrk(l, *CLOSE)),
    Workload("proxy-in", ACCEPT_DOC,
             title="New connections, forwarder accepts PROXY v1 (wrk, Connection: close)",
             short="PROXY v1 in conn/s", kind="wrk", route="accept", backend=NGINX, header="v1",
             load=lambda l: wrk(l, "-s", l.script, *CLOSE)),
    Workload("proxy-in-v2", "the same with a PROXY v2 header (binary, 28 bytes)",
             title="New connections, forwarder accepts PROXY v2 (wrk, Connection: close)",
             short="PROXY v2 in conn/s", kind="wrk", route="accept", backend=NGINX, header="v2",
             load=lambda l: wrk(l, "-s", l.script, *CLOSE)),
    Workload("udp64", "UDP, 64 B datagrams, one flow: sockperf ping-pong (closed loop, one\n"
             "datagram in flight) to a sockperf server; round trips/s, p50 p99\n"
             "round-trip time (--full-rtt), forwarder CPU us per round trip (two\n"
             "datagrams)",
             title="UDP, 64 B datagrams, 1 flow (sockperf ping-pong)", short="UDP 64 B",
             kind="sockperf", route="udp", backend=UDP_ECHO,
             load=lambda l: sockperf(l, "pp", 64, 1, "--full-rtt")),
    Workload("udp1400", "the same with 1,400 B datagrams",
             title="UDP, 1,400 B datagrams, 1 flow (sockperf ping-pong)", short="UDP 1400 B",
             kind="sockperf", route="udp", backend=UDP_ECHO,
             load=lambda l: sockperf(l, "pp", 1400, 1, "--full-rtt")),
    Workload("udp64-flows", f"udp64 with {UDP_FLOWS} sockperf clients at once, one flow each:\n"
             "summed round trips/s, the worst flow's p99",
             title="UDP, 64 B datagrams, concurrent flows (sockperf ping-pong, one client per flow)",
             short="UDP 64 B flows",
             kind="sockperf", route="udp", backend=UDP_ECHO,
             load=lambda l: sockperf(l, "pp", 64, UDP_FLOWS, "--full-rtt")),
    Workload("udp64-flood", "UDP open loop: a sockperf throughput client sends 64 B datagrams\n"
             "as fast as it can through the forwarder to a fresh sockperf server\n"
             "(the sink); datagrams/s that reached the sink's socket (read + its\n"
             "overflow drops from /proc/net/udp), what the sink read, what the\n"
             "forwarder lost, forwarder CPU us per datagram",
             title="UDP flood, 64 B datagrams, 1 flow (sockperf throughput, open loop)",
             short="UDP flood 64 B",
             kind="flood", route="udp", backend=UDP_SINK, load=lambda l: sockperf(l, "tp", 64, 1)),
    Workload("udp1400-flood", "the same with 1,400 B datagrams",
             title="UDP flood, 1,400 B datagrams, 1 flow (sockperf throughput, open loop)",
             short="UDP flood 1400 B",
             kind="flood", route="udp", backend=UDP_SINK, load=lambda l: sockperf(l, "tp", 1400, 1)),
    Workload("udp64-flood-flows", f"udp64-flood with {UDP_FLOOD_FLOWS} clients at once ({UDP_FLOOD_FLOWS}"
             " flows; each\nclient is a process that wants a core of its own)",
             title="UDP flood, 64 B datagrams, concurrent flows (sockperf throughput,"
             " one client per flow)", short="UDP flood 64 B flows",
             kind="flood", route="udp", backend=UDP_SINK,
             load=lambda l: sockperf(l, "tp", 64, UDP_FLOOD_FLOWS)),
    Workload("memory", "RSS/PSS, threads and io_uring workers of a fresh forwarder idle,\n"
             f"then holding {HOLD_CONNECTIONS:,} idle connections to an idle backend, then\n"
             "after they closed (not direct)",
             title="", short="",
             kind="memory", route="hold", backend=IDLE_ACCEPTOR, load=hold),
]


def usage():
    def listing(entries):
        width = max(len(e.name) for e in entries) + 2
        return "".join(f"  {e.name:<{width}}" + e.doc.replace("\n", "\n  " + " " * width) + "\n"
                       for e in entries)
    return __doc__.format(subjects=listing(SUBJECTS), workloads=listing(WORKLOADS))


def cmd(*parts):
    return [str(p) for p in parts]


# ---------------------------------------------------------------- configs

def haproxy_cfg(spec, splice):
    # maxconn counts client connections (haproxy reserves 2 fds each): 8000 holds 5,000;
    # 10,000 would need 20,017 fds and haproxy refuses to start ("Cannot raise FD limit",
    # hard limit 20,000). The hold's timeouts outlast it.
    timeout = "10m" if spec.hold else "60s"
    lines = ["global", f"    nbthread {FORWARDER_WORKERS}", "    maxconn 8000"]
    # maxpipes: without it HAProxy wants more FDs than the hard limit allows.
    lines += ["    maxpipes 1024"] if splice else []
    lines += ["defaults", "    mode tcp", "    timeout connect 5s", f"    timeout client {timeout}",
              f"    timeout server {timeout}"]
    # splice-auto never splices on loopback (PEERS.md), so force both directions.
    lines += ["    option splice-request", "    option splice-response"] if splice else []
    send = {"v1": " send-proxy", "v2": " send-proxy-v2", None: ""}
    for r in spec.routes:
        # accept-proxy: every connection must open with a PROXY header, v1 or v2.
        lines += [f"listen {r.name}", f"    bind 127.0.0.1:{r.listen}{' accept-proxy' if r.accept else ''}",
                  f"    server s1 {spec.host}:{r.target}{send[r.proxy]}"]
    return "\n".join(lines) + "\n"


def nginx_stream_conf(spec):
    # worker_connections counts both sides of a connection, per worker; for the hold,
    # 11,000 lets one worker take them all (reuseport splits them, but unevenly).
    servers = []
    for r in spec.routes:
        if r.udp:
            # A session per client address lives until proxy_timeout passes without
            # traffic, so one flow is one upstream socket, as in portunus. (proxy_responses 1
            # would end it after every reply and open a new upstream socket per datagram:
            # about 40% fewer round trips in a check here, and not what a user forwarding a
            # UDP flow would set.)
            servers.append(f"    server {{\n        listen 127.0.0.1:{r.listen} udp reuseport;\n"
                           f"        proxy_pass {spec.host}:{r.target};\n"
                           f"        proxy_timeout {UDP_IDLE_SECS}s;\n    }}")
        else:
            # listen ... proxy_protocol: every connection opens with a PROXY header, v1 or v2.
            servers.append(f"    server {{ listen 127.0.0.1:{r.listen} backlog=4096 reuseport"
                           + (" proxy_protocol" if r.accept else "") + ";"
                           f" proxy_pass {spec.host}:{r.target};"
                           + (" proxy_protocol on;" if r.proxy else "") + " }")
    return (f"load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
            f"worker_processes {FORWARDER_WORKERS};\npid nginx.pid;\nerror_log error.log warn;\n"
            f"events {{ worker_connections {11000 if spec.hold else 8192}; }}\n"
            "stream {\n" + "\n".join(servers) + "\n}\n")


def socat_argv(r):
    if r.udp:
        # UDP4-LISTEN with fork: one child per client address, which then owns that flow
        # (UDP4-RECVFROM with fork forks a child per datagram: ~7x fewer round trips in a
        # check here). -T ends a child idle for UDP_IDLE_SECS.
        return cmd("socat", "-T", UDP_IDLE_SECS, f"UDP4-LISTEN:{r.listen},bind=127.0.0.1,fork,reuseaddr",
                   f"UDP4:127.0.0.1:{r.target}")
    # backlog: socat's default of 5 drops connections under wrk (PEERS.md).
    return cmd("socat", f"TCP4-LISTEN:{r.listen},bind=127.0.0.1,fork,reuseaddr,backlog=4096",
               f"TCP4:127.0.0.1:{r.target}")


def portunus_toml(spec):
    parts = ['[global]\nlog_level = "warn"\n\n[stats]\nenabled = false\n']
    for r in spec.routes:
        target = (f'targets = [ {{ host = "{spec.host}", port = {r.target}, proxy_protocol = "{r.proxy}" }} ]'
                  if r.proxy else f'target = "{spec.host}:{r.target}"')
        # "any": v1 or v2, told apart by the first bytes, as HAProxy's accept-proxy and
        # nginx's proxy_protocol listener take either.
        accept = 'accept_proxy = "any"\n' if r.accept else ""
        parts.append(f'[[rule]]\nname = "{r.name}"\nprotocol = "{"udp" if r.udp else "tcp"}"\n'
                     f"listen_port = {r.listen}\n{accept}{target}\n")
    return "\n".join(parts)


def http_backend_conf(http_port, proxy_port):
    # Every path is relative to the -p prefix so nginx writes nothing outside OUT.
    # keepalive_requests is raised so the keep-alive workload measures requests on
    # open connections, not nginx closing each one after its default 1000 requests.
    # The proxy_protocol listener: every connection must open with a PROXY header (nginx
    # takes v1 and v2 on the same listener); the body says what the header told it,
    # which proxy_check compares with the real client before wrk runs.
    return f"""worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {{
        listen 127.0.0.1:{http_port} backlog=4096;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port} backlog=4096 proxy_protocol;
        location / {{
            default_type text/plain;
            return 200 "src=$proxy_protocol_addr:$proxy_protocol_port dst=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n";
        }}
    }}
}}
"""


# ---------------------------------------------------------------- /proc

def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name. The name is in
    parentheses and may contain spaces, so split after the last ')'.
    Index 0 is field 3 (state) of proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def ticks(fields):
    """utime + stime + cutime + cstime: a process's CPU, all its threads and the children
    it reaped included (proc(5) fields 14-17; index = field - 3)."""
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def alive(pid):
    # A child not reaped yet is a zombie, not missing: that is not alive.
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def parents():
    """pid -> ppid of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            out[int(entry)] = int(stat_fields(entry)[1])
        except (OSError, ValueError, IndexError):
            continue  # the process exited while we walked /proc
    return out


def process_tree(pids, parent_of=None):
    """The PIDs and all their live descendants (nginx workers, socat children), from
    one walk of /proc (socat may have thousands of children) or from parent_of."""
    children = {}
    for pid, ppid in (parent_of or parents()).items():
        children.setdefault(ppid, []).append(pid)
    tree, seen, stack = [], set(), list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def cpu_ticks(pids):
    """CPU time of a process tree in clock ticks.

    /proc/PID/stat utime+stime already sum all threads (HAProxy nbthread,
    portunus workers, io_uring workers). Descendants cover nginx workers and live
    socat children; cutime+cstime cover children that exited and were reaped in
    between (socat forks one child per connection). A child alive at the first
    sample and reaped before the second moves its whole time into the parent's
    cutime, so the difference of two samples stays exact."""
    total = 0
    for pid in process_tree(pids):
        try:
            f = stat_fields(pid)
        except OSError:
            if pid in pids:
                raise RuntimeError(f"process {pid} is gone")
            continue  # a socat child that exited between the walk and the read
        total += ticks(f)
    return total


# proc(5) flags: a kernel thread. ksoftirqd and kworkers mostly do the network work
# of our own load, so they are not counted as foreign.
PF_KTHREAD = 0x00200000


def user_processes():
    """pid -> (ppid, name, CPU ticks with its reaped children) of every user-space process."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            f = stat_fields(entry)
            with open(f"/proc/{entry}/comm") as c:
                name = c.read().strip()
        except (OSError, IndexError):
            continue  # the process exited while we walked /proc
        if not int(f[6]) & PF_KTHREAD:
            procs[int(entry)] = (int(f[1]), name, ticks(f))
    return procs


class Window:
    """The CPU of one sample: the forwarder's own (its process tree), and the foreign
    CPU, what every user-space process but the harness and its descendants (all it
    started) used. Both sides come from the same per-process counts: /proc/stat's
    busy ticks are sampled at the timer tick while a process's are exact, and on this
    kernel (tick accounting, idle ticks stopped) they part by up to 12% of a core
    within one sample on an idle machine, as much as what is to be detected.
    A process that ends inside the window moves its whole time into its parent's
    reaped-children count, so what it had used before the window is taken off."""

    def __init__(self, forwarder_pids=()):
        self.pids = list(forwarder_pids)
        self.start = self._read()
        self.end = None

    def _forwarder(self):
        try:
            return cpu_ticks(self.pids) if self.pids else None
        except RuntimeError:
            return None

    def _read(self):
        procs = user_processes()
        ours = set(process_tree([os.getpid()], {pid: ppid for pid, (ppid, _, _) in procs.items()}))
        return time.monotonic(), procs, ours, self._forwarder()

    def close(self):
        self.end = self._read()

    def forwarder_secs(self):
        before, after = self.start[3], self.end[3]
        return None if before is None or after is None else (after - before) / CLK_TCK

    def foreign(self):
        """(% of one core, the processes that used most of it). A process that ended
        is counted under the nearest ancestor still there, which reaped its time."""
        wall = self.end[0] - self.start[0]
        before, after = self.start[1], self.end[1]
        ours = self.start[2] | self.end[2]
        by_name = {}

        def charge(pid, ticks):
            name = (after.get(pid) or before[pid])[1]
            by_name[name] = by_name.get(name, 0) + ticks

        for pid, (_, _, used) in after.items():
            if pid not in ours:
                charge(pid, used - before.get(pid, (0, "", 0))[2])
        for pid, (ppid, _, used) in before.items():
            if pid not in ours and pid not in after:
                while ppid in before and ppid not in after:
                    ppid = before[ppid][0]
                charge(ppid if ppid in after else pid, -used)

        def pct(used):
            return round(used / CLK_TCK / wall * 100, 1)
        top = sorted(((t, n) for n, t in by_name.items() if pct(t) >= 1), reverse=True)[:3]
        return pct(sum(by_name.values())), ", ".join(f"{n} {pct(t):.0f}%" for t, n in top)


def affinity_strays(pids, cpu):
    """Tasks (threads included) of the trees that may run elsewhere than `cpu`."""
    strays = []
    for pid in process_tree(pids):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    status = f.read()
            except OSError:
                continue  # the thread exited meanwhile (io-wq workers come and go)
            allowed = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M).group(1)
            if allowed != str(cpu):
                name = re.search(r"^Name:\s*(.*)$", status, re.M).group(1)
                strays.append(f"{name} ({tid}) on CPUs {allowed}")
    return strays


def status_kib(status, field):
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
                        continue  # stdio: whatever the harness handed down (a log file, say)
                    try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue  # closed meanwhile
                    sockets += target.startswith("socket:")
                    pipes += target.startswith("pipe:")
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    pss = status_kib(f.read(), "Pss")
        except OSError:
            continue  # exited between the walk and the read
        out["processes"] += 1
        out["rss_kib"] += status_kib(status, "VmRSS")
        out["threads"] += status_kib(status, "Threads")
        out["iou_wrk"] += iou
        if full:
            out["fds"] += fds
            out["sockets"] += sockets
            out["pipes"] += pipes
            out["pss_kib"] += pss
    return out


def udp_socket_drops(port):
    """The drop counter of the socket bound to 127.0.0.1:port (/proc/net/udp), or None
    while nothing is bound there."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[1] == local:
                return int(cols[-1])
    return None


# ---------------------------------------------------------------- ports and checks

def free_ports(count, udp=False):
    """Bind `count` sockets to port 0 at once so the kernel hands out distinct
    ports, then release them all. A dual-stack :: socket reserves the port on
    0.0.0.0 and :: together, which portunus-uring needs (it listens on both, for
    TCP and for UDP). TCP and UDP ports are separate spaces: udp=True asks for
    ports free for UDP. A small race remains until the forwarders bind; they
    bind at once and before any load generator runs, so nothing else takes these."""
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


def wait_port(port, secs, procs=()):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            log(f"process {dead[0]} exited before 127.0.0.1:{port} accepted")
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def http_check(port):
    # No proxy from the environment: the request must go through the forwarder only.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/", timeout=5) as r:
        body = r.read()
        if r.status != 200 or body != b"ok\n":
            raise RuntimeError(f"port {port}: got {r.status} {body!r}, want 200 b'ok\\n'")


GET_CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def exchange(port, payload, timeout):
    """Send `payload` to 127.0.0.1:port in one write and read until the other end
    closes (or resets, or `timeout` passes): (what came back, our own address)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        local = s.getsockname()[:2]
        s.sendall(payload)
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
    return data, local


def proxy_check(port, timeout=5.0):
    """One request through a forwarder that prepends a PROXY header towards the
    backend's `listen ... proxy_protocol` server, which answers with what the header
    told it. Wants 200 and src = this socket's own address, dst = the address the
    forwarder listens on. nginx closes a connection whose header is missing or
    broken without a response: that fails here, once and clearly, instead of
    showing up later as a suspiciously fast wrk error rate. Returns the body."""
    data, (local_host, local_port) = exchange(port, GET_CLOSE, timeout)
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
    return want.strip()


# The client a proxy-in load's PROXY header names (TEST-NET-2, and a port): nothing
# checks it on the way, the forwarder only has to read the header and drop it.
HEADER_CLIENT = ("198.51.100.7", 40000)


def proxy_header(version, port):
    """The PROXY header every connection of a proxy-in load opens with: TCP over IPv4
    from HEADER_CLIENT to 127.0.0.1:port (the forwarder's listen port), v1 text or v2
    binary (signature, version 2 + PROXY command, TCP over IPv4, 12 address bytes)."""
    host, client_port = HEADER_CLIENT
    if version == "v1":
        return f"PROXY TCP4 {host} 127.0.0.1 {client_port} {port}\r\n".encode()
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + (12).to_bytes(2, "big")
            + socket.inet_aton(host) + socket.inet_aton("127.0.0.1")
            + client_port.to_bytes(2, "big") + port.to_bytes(2, "big"))


def wrk_header_script(version, port):
    """A wrk Lua script whose every request is the PROXY header followed by the request
    wrk would send (its -H headers, Connection: close, included), in one write. With
    Connection: close every request is a new connection, so every connection opens with
    exactly one header. The header's bytes are written out with string.char so that the
    v2 header's zero bytes need no escaping.

    wrk (4.1) parses the first request of its first thread as an HTTP request before
    any thread starts (script_verify_request, for pipelining) and exits on a PROXY line
    ("invalid HTTP method at 1:4"); that request is never sent. So the first thread,
    marked in setup() (wrk's main state, once per thread, in order, before the thread's
    own state is used), answers that one call with the bare request. A wrk that did not
    make that call would send one connection without a header, which every subject
    rejects: one error in the table, not a silent change."""
    header = proxy_header(version, port)
    shown = header.decode().strip() if version == "v1" else f"{len(header)} bytes, binary"
    return (f"-- Every connection opens with a PROXY {version} header ({shown}),\n"
            "-- then the request, in one write; made once, on the first request.\n"
            f"local header = string.char({', '.join(map(str, header))})\n"
            "local req\n"
            "-- wrk parses its first thread's first request() before any thread starts and\n"
            "-- rejects a PROXY line; that request is never sent, so it gets the bare one.\n"
            "local threads = 0\n"
            "function setup(thread)\n"
            "   threads = threads + 1\n"
            "   if threads == 1 then thread:set(\"verifying\", true) end\n"
            "end\n"
            "function request()\n"
            "   if verifying then\n"
            "      verifying = false\n"
            "      return wrk.format()\n"
            "   end\n"
            "   if not req then req = header .. wrk.format() end\n"
            "   return req\n"
            "end\n")


def http_status(data):
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    fields = status.split()
    return (fields[1] if len(fields) >= 2 else ""), status, body


def accept_check(port, version, timeout=5.0):
    """One request through a forwarder that must read a PROXY header in and drop it:
    the header and a GET in one write, towards the plain HTTP backend. Wants 200 and
    "ok". A forwarder that passes the header on as data gets the backend's 400 (nginx
    reads "PROXY ..." as its request line; start_http_backend checks that it does),
    and one that rejects the header closes without a response: both fail here, once
    and clearly, before wrk could count them as fast errors."""
    header = proxy_header(version, port)
    data, _ = exchange(port, header + GET_CLOSE, timeout)
    if not data:
        raise RuntimeError(f"port {port}: closed without a response (the forwarder rejected"
                           f" the PROXY {version} header, or the backend closed)")
    code, status, body = http_status(data)
    if code == "400":
        raise RuntimeError(f"port {port}: got {status!r} from the plain backend: the forwarder"
                           f" passed the PROXY {version} header on as data instead of reading it")
    if code != "200" or body != b"ok\n":
        raise RuntimeError(f"port {port}: got {status!r} {body!r}, want 200 b'ok\\n'")
    return f"200 ok behind a PROXY {version} header of {len(header)} bytes the backend never saw"


def header_reaches_backend(port):
    """The premise of accept_check: the plain backend answers a request behind a PROXY
    header with 400. Returns what it answered, raises RuntimeError if it did not."""
    data, _ = exchange(port, proxy_header("v1", port) + GET_CLOSE, 5.0)
    code, status, _ = http_status(data)
    if code != "400":
        raise RuntimeError(f"got {status or 'no response'!r} for a PROXY header sent to it, want 400")
    return status


def udp_check(port, pin, tries=3):
    """A short sockperf ping-pong through the forwarder must get replies. sockperf
    never resends: a datagram lost in its warm-up stalls it for good, and the
    first datagram of a new flow may be dropped on purpose (portunus-dns while it
    looks the name up), so a stalled try is ended and tried again."""
    why = ""
    for _ in range(tries):
        try:
            r = subprocess.run(pin(cmd("sockperf", "pp", "-i", "127.0.0.1", "-p", port, "-m", 64,
                                       "-t", 1, "--full-rtt")),
                               capture_output=True, text=True, timeout=6, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            why = "sockperf stalled (a datagram got no reply)"
            continue
        try:
            got = parse_sockperf_text(r.stdout + r.stderr)
        except RuntimeError as e:
            why = f"sockperf exit {r.returncode}: {e}"
            continue
        return f"{got['rtps']:.0f} round trips/s"
    raise RuntimeError(f"no UDP round trip through 127.0.0.1:{port} in {tries} tries: {why}")


def dns_was_asked(query_log):
    """portunus-dns really looked its targets up through our dnsmasq (and did not, say,
    find the name somewhere else): dnsmasq logged a query for it."""
    text = query_log.read_text(errors="replace") if query_log.exists() else ""
    if not re.search(rf"query\[\w+\] {re.escape(DNS_NAME)} ", text):
        raise RuntimeError(f"dnsmasq logged no query for {DNS_NAME} (see {query_log})")
    return f"dnsmasq answered its query for {DNS_NAME}"


# ---------------------------------------------------------------- parsers

def read_text(path):
    with open(path) as f:
        return f.read()


def parse_iperf(path):
    text = read_text(path)
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
    text = read_text(path)
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
FLOW_HEAD = re.compile(r"^=== flow (\d+) rc (-?\d+)$", re.M)


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


def flow_parts(text):
    """The clients' outputs, split at their '=== flow I rc R' heads: (rc, text) each."""
    heads = list(FLOW_HEAD.finditer(text))
    return [(int(h.group(2)), text[h.end():(heads[i + 1].start() if i + 1 < len(heads) else len(text))])
            for i, h in enumerate(heads)]


def parse_sockperf_text(text):
    """One sockperf output, or several headed with '=== flow I rc R'."""
    parts = [part for _, part in flow_parts(text)] or [text]
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


SINK_LINE = re.compile(r"^=== sink received (\d+) dropped (\d+)$", re.M)


def parse_flood_text(text):
    """A flood's output: the clients' `sockperf tp` outputs and the sink's counts."""
    sink = SINK_LINE.search(text)
    if not sink:
        raise RuntimeError("no '=== sink' line: the sink's counts are missing")
    received, dropped = int(sink.group(1)), int(sink.group(2))
    parts = flow_parts(_ANSI.sub("", text[:sink.start()]))
    if not parts:
        raise RuntimeError("no sockperf client output")
    sent, secs = 0, 0.0
    for i, (rc, part) in enumerate(parts):
        m = re.search(r"Total of (\d+) messages sent in ([0-9.]+) sec", part)
        if rc != 0 or not m:
            raise RuntimeError(f"flow {i}: sockperf exit {rc}, no 'Total of N messages"
                               f" sent' line: {part.strip()[-200:]}")
        sent += int(m.group(1))
        secs = max(secs, float(m.group(2)))
    if not secs:
        raise RuntimeError("sockperf ran for 0 s")
    forwarded = received + dropped
    return {
        "flows": len(parts),
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


# ---------------------------------------------------------------- figures per kind

# A wrk run whose failed requests (socket errors plus non-2xx answers) exceed this
# share of all it attempted measured a failure rate, not a forwarder: error sample.
# Below it the sample stays ok, with the count in `errors` and a warning.
WRK_ERROR_LIMIT = 0.01
# A flow busy for less than this share of its valid duration waited on a lost
# datagram: its rate is not the forwarder's, so the sample is an error.
UDP_BUSY_LIMIT = 0.9
MiB = 1024.0


def per_unit(cpu_s, units, scale):
    return None if cpu_s is None or not units else cpu_s * scale / units


def iperf_fill(sample, path, cpu_s):
    sample.update(parse_iperf(path))
    sample["cpu_s"] = cpu_s
    sample["cpu_s_per_gb"] = per_unit(cpu_s, sample["bytes_total"], 1e9)


def wrk_fill(sample, path, cpu_s):
    parsed = parse_wrk(path)
    sample.update(parsed)
    sample["cpu_s"] = cpu_s
    sample["cpu_us_per_req"] = per_unit(cpu_s, parsed["requests"], 1e6)
    socket_errors = sum(parsed["socket_errors"].values())
    errors = socket_errors + parsed["non_2xx"]
    sample["errors"] = errors
    attempted = parsed["requests"] + socket_errors
    detail = ", ".join(f"{k} {v}" for k, v in parsed["socket_errors"].items() if v)
    detail += (", " if detail and parsed["non_2xx"] else "") + (
        f"non-2xx {parsed['non_2xx']}" if parsed["non_2xx"] else "")
    if not parsed["requests"] or errors > WRK_ERROR_LIMIT * max(attempted, 1):
        raise RuntimeError(f"wrk: {errors} failed of {attempted} requests ({detail});"
                           f" more than {WRK_ERROR_LIMIT:.0%} fail, so the rate is not a forwarder's")
    if errors:
        sample["warning"] = f"wrk: {errors} failed of {attempted} requests ({detail})"


def sockperf_fill(sample, path, cpu_s):
    parsed = parse_sockperf_text(read_text(path))
    sample.update(parsed)
    sample["cpu_s"] = cpu_s
    sample["cpu_us_per_rt"] = per_unit(cpu_s, parsed["round_trips_total"], 1e6)
    if parsed["busy_min"] is not None and parsed["busy_min"] < UDP_BUSY_LIMIT:
        raise RuntimeError(f"a flow waited {1 - parsed['busy_min']:.0%} of its run for a reply"
                           " that never came (a datagram was lost; sockperf does not resend),"
                           " so the rate is not the forwarder's")
    if parsed["dropped"]:
        sample["warning"] = f"sockperf: {parsed['dropped']} dropped messages"


def flood_fill(sample, path, cpu_s):
    parsed = parse_flood_text(read_text(path))
    sample.update(parsed)
    sample["cpu_s"] = cpu_s
    if not parsed["forwarded"]:
        raise RuntimeError(f"nothing reached the sink of {parsed['sent']} datagrams sent")
    sample["cpu_us_per_dgram"] = per_unit(cpu_s, parsed["forwarded"], 1e6)


def memory_fill(sample, path, _cpu_s):
    text = read_text(path)
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
    running = running_path(path)
    if running.exists():
        r = json.loads(running.read_text())
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


def running_path(path):
    """memory: where the long-running instance's footprint is kept beside the hold's."""
    return Path(str(path).replace(".json", ".running.json"))


def cpu_note(value, text):
    return "" if value is None else text.format(value)


def warn_note(sample):
    return f" [{sample['warning']}]" if "warning" in sample else ""


def iperf_line(s):
    return f"{s['gbps']:.2f} Gbit/s" + cpu_note(s["cpu_s_per_gb"], ", {:.3f} CPU s/GB")


def wrk_line(s):
    return (f"{s['rps']:.0f} req/s p50 {s['p50_ms']:.2f} ms p99 {s['p99_ms']:.2f} ms"
            + cpu_note(s["cpu_us_per_req"], ", {:.1f} CPU us/req") + warn_note(s))


def sockperf_line(s):
    return (f"{s['rtps']:.0f} round trips/s ({s['flows']} flow(s))"
            + cpu_note(s["p50_us"], " p50 {:.1f} us") + f" p99 {s['p99_us']:.1f} us RTT"
            + cpu_note(s["cpu_us_per_rt"], ", {:.2f} CPU us/round trip") + warn_note(s))


def flood_line(s):
    return (f"{s['fwd_dps']:.0f} datagrams/s forwarded of {s['sent_dps']:.0f}/s sent"
            f" ({s['flows']} flow(s)), {s['recv_dps']:.0f}/s received by the sink"
            + cpu_note(s["cpu_us_per_dgram"], ", {:.2f} CPU us/datagram"))


def memory_line(s):
    return (f"RSS idle {s['rss_idle_kib'] / MiB:.1f} MiB, held {s['rss_held_kib'] / MiB:.1f} MiB"
            f" ({s['held']} conns, set-up {s['setup_secs']:.1f} s), after"
            f" {s['rss_after_kib'] / MiB:.1f} MiB; threads {s['threads_held']},"
            f" iou-wrk {s['iou_wrk_held']} (max {s['iou_wrk_max_hold']})" + warn_note(s))


@dataclass(frozen=True)
class Kind:
    """How a family of workloads is read: its raw output, the sample's figures, the
    progress line, and for the report the headline figure (higher is better) and the
    forwarder's CPU per unit of work (lower is better)."""
    tool: str               # the load generator, as error messages name it
    ext: str
    fill: Callable          # (sample, raw output path, forwarder CPU s) -> None; raises on failure
    line: Callable          # sample -> progress line
    metric: str = ""
    unit: str = ""
    cpu_metric: str = ""
    cpu_unit: str = ""
    # Several clients at once, each one's output (stderr kept with it) under '=== flow I
    # rc R'; otherwise one process, its stdout the output and its stderr beside it.
    headed: bool = False
    own_errors: bool = False  # a failed exit leaves its own error in the output (iperf3 -J)
    stall_note: str = ""    # said when it timed out
    slack: int = 30         # seconds past --duration before it is killed
    # Measured on an instance of the forwarder started for the sample alone, not on the
    # long-running one; not direct, which has none.
    fresh_instance: bool = False


KINDS = {
    "iperf": Kind("iperf3", "json", iperf_fill, iperf_line, "gbps", "Gbit/s", "cpu_s_per_gb", "CPU s/GB",
                  own_errors=True),
    "wrk": Kind("wrk", "txt", wrk_fill, wrk_line, "rps", "req/s", "cpu_us_per_req", "CPU µs/req"),
    "sockperf": Kind("sockperf", "txt", sockperf_fill, sockperf_line, "rtps", "round trips/s", "cpu_us_per_rt",
                     "CPU µs/round trip", headed=True,
                     # sockperf never resends: a datagram lost in its warm-up stalls it for good.
                     stall_note=" (a sockperf client got no reply to a datagram)"),
    "flood": Kind("sockperf", "txt", flood_fill, flood_line, "fwd_dps", "datagrams/s forwarded", "cpu_us_per_dgram",
                  "CPU µs/datagram", headed=True),
    # Everything the hold may take, plus margin: a hung hold is killed, never waited on.
    "memory": Kind("hold", "json", memory_fill, memory_line, fresh_instance=True,
                   slack=READY_SECS + HOLD_SETUP_SECS + HOLD_TEARDOWN_SECS + 2 * SETTLE_SECS + 30),
}


# ---------------------------------------------------------------- memory hold

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

    def _count_errno(self, name):
        self.errnos[name] = self.errnos.get(name, 0) + 1

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
                self._count_errno(e.strerror)
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
                    self._count_errno(os.strerror(err))
                    # Reset before we saw the connect complete: the forwarder accepted
                    # and closed it at once (e.g. out of connection slots).
                    self._fail_client(s, "reset_by_forwarder" if err == 104 else "connect_failed")
                else:
                    self.sel.modify(s, selectors.EVENT_READ, "client")
            elif what == "client":
                # An idle connection is never readable unless the forwarder closed it.
                if not self._recv(s):
                    self._fail_client(s, "reset_by_forwarder")
            elif what == "backend" and not self._recv(s):
                self.sel.unregister(s)
                del self.backends[s.fileno()]
                s.close()
                self.c["backend_closed"] += 1

    @staticmethod
    def _recv(s):
        try:
            return s.recv(4096)
        except OSError:
            return b""

    def open_more(self):
        c = self.c
        while (c["opened"] < self.a.count and
               c["opened"] - c["accepted"] - c["connect_failed"] - c["reset_by_forwarder"] < self.WINDOW):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            c["opened"] += 1
            rc = s.connect_ex(("127.0.0.1", self.a.port))
            if rc not in (0, 115):  # 115: EINPROGRESS
                self._count_errno(os.strerror(rc))
                s.close()
                c["connect_failed"] += 1
                continue
            self.clients[s.fileno()] = s
            self.sel.register(s, selectors.EVENT_WRITE, "connecting")

    def ready(self):
        """The forwarder accepts and a connection reaches the backend end to end."""
        deadline = time.monotonic() + self.a.ready_secs
        while time.monotonic() < deadline:
            dead = [p for p in self.a.pids if not alive(p)]
            if dead:
                raise RuntimeError(f"forwarder process {dead[0]} exited before it accepted")
            try:
                probe = socket.create_connection(("127.0.0.1", self.a.port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            with probe:
                if select.select([self.listener], [], [], 3)[0]:
                    self.listener.accept()[0].close()
                    return
            raise RuntimeError("the forwarder accepted but did not connect to the backend within 3 s")
        raise RuntimeError(f"the forwarder did not accept on 127.0.0.1:{self.a.port} within {self.a.ready_secs}s")

    def setup(self, out):
        """Pace connects so no backlog overflows (a dropped SYN costs a 1 s retry)."""
        a, c = self.a, self.c
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

    def hold(self, out):
        """Nothing moves; watch for connections the forwarder drops."""
        held_at_start = len(self.clients)
        iou_max = threads_max = 0
        end = time.monotonic() + self.a.hold_secs
        while time.monotonic() < end:
            self.poll(min(0.5, max(0.0, end - time.monotonic())))
            light = proc_stats(self.a.pids, full=False)
            iou_max = max(iou_max, light["iou_wrk"])
            threads_max = max(threads_max, light["threads"])
        out["held"] = proc_stats(self.a.pids)
        out["held"]["clients_open"] = len(self.clients)
        out["held"]["backends_open"] = len(self.backends)
        out["dropped_during_hold"] = held_at_start - len(self.clients)
        out["iou_wrk_max_hold"] = max(iou_max, out["held"]["iou_wrk"])
        out["threads_max_hold"] = max(threads_max, out["held"]["threads"])

    def teardown(self, out):
        """Clients close first; a forwarder passes the FIN on to the backend, which
        then closes its side, and the forwarder lets both go."""
        a, c = self.a, self.c
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

    def run(self):
        a = self.a
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
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
        self.setup(out)
        self.hold(out)
        self.teardown(out)
        time.sleep(a.settle_secs)
        out["after"] = proc_stats(a.pids)
        out["connect_errors"] = self.errnos
        return out


def hold_main(argv):
    """`bench.py hold ...`: the memory workload's load generator, a process of its own
    so that it can be pinned and bounded like every other."""
    h = argparse.ArgumentParser(prog="bench.py hold")
    h.add_argument("--port", type=int, required=True, help="the forwarder's listen port")
    h.add_argument("--backend-port", type=int, required=True, help="where our idle backend listens")
    h.add_argument("--count", type=int, default=HOLD_CONNECTIONS)
    h.add_argument("--pids", type=int, nargs="+", required=True, help="the forwarder's root processes")
    h.add_argument("--ready-secs", type=float, default=READY_SECS)
    h.add_argument("--settle-secs", type=float, default=SETTLE_SECS)
    h.add_argument("--setup-secs", type=float, default=HOLD_SETUP_SECS, help="cap on opening all connections")
    h.add_argument("--stall-secs", type=float, default=10, help="give up after this long without progress")
    h.add_argument("--hold-secs", type=float, default=3)
    h.add_argument("--teardown-secs", type=float, default=HOLD_TEARDOWN_SECS)
    try:
        print(json.dumps(Hold(h.parse_args(argv)).run(), indent=1))
    except Exception as e:  # noqa: BLE001 - reported on stderr; the harness makes it the sample's error
        sys.exit(f"hold: {e}")


# ---------------------------------------------------------------- processes

def log(msg):
    print(f"{datetime.now(timezone.utc):%H:%M:%S} {msg}", file=sys.stderr, flush=True)


class Fatal(Exception):
    """The run cannot go on: logged, everything stopped, exit status 1."""


class Procs:
    """Every process the harness starts, so that each is stopped, however the run ends."""

    def __init__(self):
        self.live = {}  # pid -> Popen

    def start(self, argv, stdout, stderr=subprocess.STDOUT):
        p = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        self.live[p.pid] = p
        return p

    def start_logged(self, argv, log_path):
        """A long-lived process, its output to log_path, which opens with its argv."""
        with open(log_path, "w") as f:
            f.write("# " + " ".join(argv) + "\n")
            f.flush()
            return self.start(argv, f)

    def stop(self, procs):
        """TERM the processes and their descendants, KILL what is left after 5 s."""
        procs = [p for p in procs if p.pid in self.live]
        running = [p.pid for p in procs if p.poll() is None]
        # Stopped, a forking server (socat) cannot add a child after we listed its
        # children; the TERM stays pending until the CONT below.
        signal_all(running, signal.SIGSTOP)
        # All at once: socat's per-connection children would otherwise outlive
        # their parent until their peer closes.
        tree = process_tree(running)
        signal_all(tree, signal.SIGTERM)
        signal_all(running, signal.SIGCONT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.1)
        signal_all([pid for pid in tree if alive(pid)], signal.SIGKILL)
        for p in procs:
            p.wait()
        self.forget(procs)

    def forget(self, procs):
        # A recycled PID must never be signalled by the final clean-up.
        for p in procs:
            self.live.pop(p.pid, None)

    def stop_all(self):
        self.stop(list(self.live.values()))


def signal_all(pids, sig):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_all(procs, secs):
    """Wait for every process; at the deadline TERM them, KILL them 5 s later, and
    return 124 (as timeout(1) does). Otherwise the first non-zero exit status."""
    deadline = time.monotonic() + secs
    try:
        for p in procs:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        signal_all([p.pid for p in procs if p.poll() is None], signal.SIGTERM)
        kill_at = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.0, kill_at - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return 124
    return next((p.returncode for p in procs if p.returncode), 0)


# ---------------------------------------------------------------- samples

class Samples:
    """samples.json, rewritten after every sample so an interrupted run still leaves
    a valid file that report.py can read."""

    def __init__(self, path, meta):
        self.path = path
        self.doc = {"meta": dict(meta, clk_tck=CLK_TCK), "samples": []}
        self._write()

    def meta(self, **extra):
        self.doc["meta"].update(extra)
        self._write()

    def add(self, sample):
        self.doc["samples"].append(sample)
        self._write()

    def _write(self):
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- one topology

@dataclass(frozen=True)
class Topology:
    name: str
    doc: str
    forwarder_cpu: Optional[int] = None
    load_cpu: Optional[int] = None

    def forwarder(self, argv):
        return pinned(argv, self.forwarder_cpu)

    def load(self, argv):
        """Load generators and backends alike."""
        return pinned(argv, self.load_cpu)


def pinned(argv, cpu):
    # taskset execs the command: the pid is the command's, and children inherit the mask.
    return argv if cpu is None else ["taskset", "-c", str(cpu)] + argv


TOPOLOGIES = {
    "unpinned": Topology("unpinned", "every process wherever the scheduler puts it, as a user"
                         " would run them"),
    "pinned": Topology("pinned", f"each forwarder's processes on CPU {FORWARDER_CPU}, every load"
                       f" generator and backend on CPU {LOAD_CPU} (direct: all on CPU {LOAD_CPU})",
                       FORWARDER_CPU, LOAD_CPU),
}


class Pass:
    """The whole measurement in one topology: backends and forwarders started once,
    every round of every workload of every subject, everything stopped again."""

    def __init__(self, bench, topology):
        self.b = bench
        self.topo = topology
        self.run_dir = bench.out / "run" / topology.name
        self.raw = self.run_dir / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.procs = []          # everything this pass started and keeps running
        self.subject_procs = {}  # subject -> its processes, charged its CPU
        self.listen = {}         # subject -> route -> the port the load generator uses
        self.broken = {}         # (subject, workload) -> why its check before measuring failed
        self.dead = {}           # subject -> why it is no longer measured
        self.iperf_server = None
        self.udp_echo = None
        self.dns_log = self.run_dir / "dnsmasq" / "queries.log"
        self.dns = ""
        self.assign_ports()

    # -- ports and routes

    def assign_ports(self):
        subjects = self.b.subjects
        # Backends: iperf3, http, http behind proxy_protocol, the memory test's idle one,
        # dnsmasq. Subjects: iperf, http, proxy-v1, proxy-v2, accept, memory instance (some
        # unused). accept goes to the plain http backend: the forwarder drops the header.
        ports = iter(free_ports(5 + 6 * len(subjects)))
        self.backend = {"iperf": next(ports), "http": next(ports), "proxy-v1": next(ports), "hold": next(ports)}
        self.backend["proxy-v2"] = self.backend["proxy-v1"]
        self.backend["accept"] = self.backend["http"]
        self.dns_port = next(ports)
        for s in subjects:
            self.listen[s.name] = ({r: next(ports) for r in ("iperf", "http", "proxy-v1", "proxy-v2", "accept", "hold")}
                                   if s.argv else dict(self.backend))
        if self.b.wants_udp:
            # UDP ports are a space of their own: ask for ports free for UDP.
            ports = iter(free_ports(1 + len(subjects), udp=True))
            self.backend["udp"] = next(ports)
            for s in subjects:
                self.listen[s.name]["udp"] = next(ports) if s.argv else self.backend["udp"]

    def routes(self, s):
        """Each route a subject carries: iperf and http always, a PROXY route per version
        it sends, one that takes PROXY headers in when a proxy-in workload runs and it
        can, UDP when a UDP workload runs and it can."""
        names = ["iperf", "http"] + [f"proxy-{v}" for v in s.proxy]
        names += ["accept"] if self.b.wants_accept and s.accept else []
        names += ["udp"] if self.b.wants_udp and not s.no_udp else []
        return tuple(Route(n, self.listen[s.name][n], self.backend[n],
                           n[len("proxy-"):] if n.startswith("proxy-") else None) for n in names)

    # -- processes

    def start(self, argv, name, forwarder=False):
        argv = self.topo.forwarder(argv) if forwarder else self.topo.load(argv)
        p = self.b.procs.start_logged(argv, self.run_dir / f"{name}.log")
        self.procs.append(p)
        return p

    def stop(self, procs):
        self.b.procs.stop(procs)
        self.procs = [p for p in self.procs if p not in procs]

    def show_logs(self, name):
        """The tail of NAME's logs, for a failed start."""
        # NAME.N.log: socat runs one process per port.
        for f in [self.run_dir / f"{name}.log", *sorted(self.run_dir.glob(f"{name}.*.log")),
                  self.run_dir / name / "error.log"]:
            if f.exists() and f.stat().st_size:
                log(f"--- {f}")
                sys.stderr.write("".join(f.read_text(errors="replace").splitlines(True)[-20:]))

    def wait_port(self, port, name, procs):
        if not wait_port(port, READY_SECS, procs):
            self.show_logs(name)
            raise Fatal(f"{name} does not accept on 127.0.0.1:{port} (waited at most {READY_SECS}s)")

    # -- backends

    def start_iperf_server(self):
        # One server for the whole pass: iperf3 serves one test at a time, which suits
        # the strictly sequential measurements. -B keeps it on loopback.
        self.iperf_server = self.start(cmd("iperf3", "-s", "-p", self.backend["iperf"], "-B", "127.0.0.1"),
                                       "iperf3-server")
        self.wait_port(self.backend["iperf"], "iperf3-server", [self.iperf_server])

    def restart_iperf_server(self):
        # After a failed test the server may wait on a dead control connection and
        # answer "busy" to everything after it: start a fresh one on the same port.
        log("restarting the iperf3 server")
        self.stop([self.iperf_server])
        self.start_iperf_server()

    def start_http_backend(self):
        d = self.run_dir / "nginx-backend"
        (d / "tmp").mkdir(parents=True, exist_ok=True)
        (d / "nginx.conf").write_text(http_backend_conf(self.backend["http"], self.backend["proxy-v1"]))
        p = self.start(["nginx", "-p", f"{d}/", "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf",
                        "-g", "daemon off;"], "nginx-backend")
        self.wait_port(self.backend["http"], "nginx-backend", [p])
        self.wait_port(self.backend["proxy-v1"], "nginx-backend", [p])
        if self.b.wants_accept:
            # What makes accept_check conclusive: a header passed on as data gets a 400.
            try:
                log(f"  plain backend, PROXY header sent to it: {header_reaches_backend(self.backend['http'])}")
            except (OSError, RuntimeError) as e:
                raise Fatal(f"the plain nginx backend on 127.0.0.1:{self.backend['http']}: {e}")

    def start_udp_echo(self):
        """The sockperf server that answers ping-pong; not charged to any subject."""
        port = self.backend["udp"]
        self.udp_echo = self.start(cmd("sockperf", "sr", "-i", "127.0.0.1", "-p", port), "sockperf-server")
        time.sleep(0.5)
        try:
            if self.udp_echo.poll() is not None:
                raise RuntimeError("it exited")
            udp_check(port, self.topo.load)
        except RuntimeError as e:
            self.show_logs("sockperf-server")
            raise Fatal(f"the sockperf server does not answer on 127.0.0.1:{port}: {e}")

    def prepare_backend(self, w):
        """The ping-pong server up for ping-pong, down for a flood, which starts a fresh
        sink on the same port so that its counts are the sample's alone."""
        if w.backend == UDP_ECHO and not self.udp_echo:
            self.start_udp_echo()
        elif w.backend == UDP_SINK and self.udp_echo:
            self.stop([self.udp_echo])
            self.udp_echo = None

    def start_dnsmasq(self):
        """Answers DNS_NAME with 127.0.0.1 (TTL 300 s, the most the forwarder caches)
        and nothing else. Not charged to any subject: once the name is cached the
        forwarder asks it again only every 300 s. Queries are logged for the check."""
        d = self.dns_log.parent
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        (d / "hosts").write_text(f"127.0.0.1 {DNS_NAME}\n")
        p = self.start(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                        f"--port={self.dns_port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                        "--no-resolv", "--no-hosts", f"--addn-hosts={d}/hosts", "--local-ttl=300",
                        "--local=/portunus.bench/", f"--user={pwd.getpwuid(os.getuid()).pw_name}", "--log-queries",
                        f"--log-facility={self.dns_log}"], "dnsmasq")
        deadline = time.monotonic() + READY_SECS
        while udp_socket_drops(self.dns_port) is None:
            if p.poll() is not None or time.monotonic() > deadline:
                self.show_logs("dnsmasq")
                raise Fatal(f"dnsmasq did not bind 127.0.0.1:{self.dns_port}")
            time.sleep(0.05)
        self.dns = f"127.0.0.1:{self.dns_port}"

    # -- subjects

    def start_instance(self, s, name, routes, hold=False):
        """One instance of a forwarder: its config written, its processes started."""
        d = self.run_dir / name
        d.mkdir(parents=True, exist_ok=True)
        spec = Spec(d, str(d / s.config[0]) if s.config else "", routes, hold,
                    DNS_NAME if s.dns else "127.0.0.1", self.b.binary, self.dns if s.dns else "")
        if s.config:
            Path(spec.conf).write_text(s.config[1](spec))
        argvs = s.argv(spec)
        return [self.start(argv, name if len(argvs) == 1 else f"{name}.{i + 1}", forwarder=True)
                for i, argv in enumerate(argvs)]

    def check_subject(self, s):
        """Both ports accept and an HTTP request makes the round trip, or the run stops.
        A PROXY or UDP check that fails does not stop it: that subject's samples of the
        workload become errors carrying the reason, so a broken header cannot pass as a
        fast error rate."""
        procs = self.subject_procs.get(s.name, [])
        ports = self.listen[s.name]
        self.wait_port(ports["http"], s.name, procs)
        self.wait_port(ports["iperf"], s.name, procs)
        try:
            http_check(ports["http"])
        except Exception as e:  # noqa: BLE001 - whatever went wrong, this subject cannot be measured
            self.show_logs(s.name)
            raise Fatal(f"{s.name} does not forward HTTP to the backend: {e}")
        for w in self.b.workloads:
            if w.route.startswith("proxy-") and not s.why_not(w.route):
                self.wait_port(ports[w.route], s.name, procs)
                self.try_check(s, [w], f"{w.name} through {s.name}", "backend was told ",
                               lambda: proxy_check(ports[w.route]))
            elif w.header and not s.why_not(w.route):
                self.wait_port(ports[w.route], s.name, procs)
                self.try_check(s, [w], f"{w.name} through {s.name}", "",
                               lambda: accept_check(ports[w.route], w.header))
        if self.b.wants_udp and not s.no_udp:
            # This also puts portunus-dns' name in its cache.
            self.try_check(s, [w for w in self.b.workloads if w.route == "udp"], f"udp through {s.name}",
                           "", lambda: udp_check(ports["udp"], self.topo.load))
        if s.check:
            self.try_check(s, self.b.workloads, f"{s.name}'s own check", "", lambda: s.check(self, s))
        if self.topo.forwarder_cpu is not None and procs:
            strays = affinity_strays([p.pid for p in procs], self.topo.forwarder_cpu)
            if strays:
                raise Fatal(f"{s.name} is not pinned to CPU {self.topo.forwarder_cpu}: {', '.join(strays)}")

    def try_check(self, s, workloads, what, prefix, check):
        try:
            said = check()
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            for w in workloads:
                self.broken[(s.name, w.name)] = f"check before measuring failed: {e}"
            log(f"  {what}: FAILED: {e}")
            self.show_logs(s.name)
        else:
            log(f"  {what}: {prefix}{said}")

    # -- measuring

    def subject_alive(self, s):
        return all(p.poll() is None for p in self.subject_procs.get(s.name, []))

    def sample(self, rnd, w, s):
        return {"subject": s.name, "workload": w.name, "round": rnd, "topology": self.topo.name,
                "status": "ok"}

    def run_load(self, w, load, out):
        """The workload's load generators, all at once and bounded in time; their output
        in `out`. Returns the exit status, 124 when they were killed at the bound."""
        kind = KINDS[w.kind]
        argvs = w.load(load)
        if kind.headed:
            files = [open(f"{out}.flow{i}", "w") for i in range(len(argvs))]
            streams = [(f, subprocess.STDOUT) for f in files]
        else:
            files = [open(out, "w"), open(f"{out}.stderr", "w")]
            streams = [tuple(files)]
        try:
            procs = [self.b.procs.start(self.topo.load(argv), *stream) for argv, stream in zip(argvs, streams)]
            rc = wait_all(procs, load.secs + kind.slack)
            self.b.procs.forget(procs)
        finally:
            for f in files:
                f.close()
        if kind.headed:
            with open(out, "w") as joined:
                for i, p in enumerate(procs):
                    text = Path(f"{out}.flow{i}").read_text(errors="replace")
                    joined.write(f"=== flow {i} rc {p.returncode}\n" + text
                                 + ("" if text.endswith("\n") or not text else "\n"))
        return rc

    @contextlib.contextmanager
    def sink(self, port, out):
        """An open-loop UDP load's sink: a fresh sockperf server on 127.0.0.1:port that the
        forwarder sends to. Afterwards its own count of datagrams received plus its
        socket's overflow drops is everything the forwarder delivered to it: a sink slower
        than the forwarder (it shares the cores) must not be charged to the forwarder.
        Fresh, so both counts are this sample's alone."""
        sink_out = Path(f"{out}.sink")
        with open(sink_out, "w") as f:
            sink = self.b.procs.start(self.topo.load(cmd("sockperf", "sr", "-i", "127.0.0.1", "-p", port)), f)
        try:
            deadline = time.monotonic() + 5
            while udp_socket_drops(port) is None:
                if sink.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the sockperf sink did not bind 127.0.0.1:{port}:"
                                       f" {sink_out.read_text(errors='replace')[-300:]}")
                time.sleep(0.05)
            yield
            # Datagrams still queued in the forwarder reach the sink within milliseconds.
            time.sleep(0.5)
            dropped = udp_socket_drops(port)
            sink.send_signal(signal.SIGINT)
            sink.wait(timeout=10)
        finally:
            self.b.procs.stop([sink])
        text = sink_out.read_text(errors="replace")
        m = re.search(r"Total (\d+) messages received", text)
        if not m and "No messages were received" not in text:
            raise RuntimeError(f"the sockperf sink printed no total: {text[-300:]}")
        with open(out, "a") as f:
            f.write(f"=== sink received {int(m.group(1)) if m else 0} dropped {dropped}\n")

    def failure(self, w, rc, out):
        """What a load generator's exit status says went wrong, or ""."""
        kind = KINDS[w.kind]
        if rc == 124:
            return f"{kind.tool} timed out after {self.b.secs + kind.slack}s{kind.stall_note}"
        if rc and not kind.own_errors:
            tail = Path(out if kind.headed else f"{out}.stderr").read_text(errors="replace")[-300:]
            return f"{kind.tool} exit {rc}: {' '.join(tail.splitlines())}"
        return ""

    def measure(self, rnd, w, s):
        """One load through the subject's long-running instance: one sample."""
        kind = KINDS[w.kind]
        out = self.raw / f"r{rnd}-{w.name}-{s.name}.{kind.ext}"
        out.write_text("")
        sample = self.sample(rnd, w, s)
        na = s.why_not(w.route)
        if na:
            sample.update(status="n/a", reason=na)
            self.b.record(sample, kind)
            return
        if s.name not in self.dead and not self.subject_alive(s):
            self.dead[s.name] = f"forwarder {s.name} exited before round {rnd} {w.name}; see {self.run_dir}/{s.name}*.log"
        error = self.dead.get(s.name) or self.broken.get((s.name, w.name), "")
        window = None
        if not error:
            self.prepare_backend(w)
            window = Window(p.pid for p in self.subject_procs.get(s.name, []))
            load = Load(self.listen[s.name][w.route], self.backend[w.route], self.b.secs)
            if w.header:
                # In the run directory beside the configs; the same text every round.
                script = self.run_dir / f"{w.name}-{s.name}.lua"
                script.write_text(wrk_header_script(w.header, load.port))
                load = Load(load.port, load.target, load.secs, script=str(script))
            try:
                with self.sink(load.target, out) if w.backend == UDP_SINK else contextlib.nullcontext():
                    rc = self.run_load(w, load, out)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                rc, error = 1, str(e)
            window.close()
            if not self.subject_alive(s):
                self.dead[s.name] = f"forwarder {s.name} exited during round {rnd} {w.name}; see {self.run_dir}/{s.name}*.log"
                error = self.dead[s.name]
                self.show_logs(s.name)
            error = error or self.failure(w, rc, out)
        self.b.record(sample, kind, out, window, error)
        if sample["status"] == "error" and window and w.backend == IPERF3_SERVER:
            self.restart_iperf_server()
        time.sleep(SETTLE_SECS)

    def measure_fresh(self, rnd, w, s):
        """A fresh instance per measurement, with one route to the idle backend and limits
        sized for the hold: "idle" is then the same state for every subject (just
        started, one listener), not whatever the run's earlier workloads left behind;
        that state is read from the long-running instance and reported beside it."""
        kind = KINDS[w.kind]
        name = f"mem-{s.name}-r{rnd}"
        out = self.raw / f"r{rnd}-{w.name}-{s.name}.{kind.ext}"
        out.write_text("")
        running = self.subject_procs.get(s.name)
        if running and self.subject_alive(s):
            running_path(out).write_text(json.dumps(proc_stats([p.pid for p in running])))
        route = Route("hold", self.listen[s.name]["hold"], self.backend["hold"])
        instance = self.start_instance(s, name, (route,), hold=True)
        window = Window()
        rc = self.run_load(w, Load(route.listen, route.target, self.b.secs, tuple(p.pid for p in instance)), out)
        window.close()
        error = ""
        if not all(p.poll() is None for p in instance):
            error = f"the {s.name} memory instance exited during the hold; see {self.run_dir}/{name}*"
            self.show_logs(name)
        else:
            error = self.failure(w, rc, out)
            if error and rc != 124:
                self.show_logs(name)
        # Torn down before the next subject: the instance and every child it still has.
        self.stop(instance)
        self.b.record(self.sample(rnd, w, s), kind, out, window, error)
        time.sleep(SETTLE_SECS)

    # -- the pass

    def run(self):
        b = self.b
        log(f"topology {self.topo.name}: logs and raw outputs in {self.run_dir}")
        self.start_iperf_server()
        self.start_http_backend()
        if b.wants_udp:
            self.start_udp_echo()
        if any(s.dns for s in b.subjects):
            self.start_dnsmasq()
        for s in b.subjects:
            if s.argv:
                self.subject_procs[s.name] = self.start_instance(s, s.name, self.routes(s))
        for s in b.subjects:
            self.check_subject(s)
            ports = self.listen[s.name]
            log(f"ready: {s.name} (iperf {ports['iperf']}, http {ports['http']}"
                + (f", accept-proxy {ports['accept']}" if b.wants_accept and s.accept and s.argv else "")
                + (f", udp {ports['udp']}" if "udp" in ports and not s.no_udp else "")
                + f", pids {' '.join(str(p.pid) for p in self.subject_procs.get(s.name, [])) or 'none'})")
        for rnd in range(1, b.rounds + 1):
            log(f"round {rnd}/{b.rounds} ({self.topo.name})")
            for w in b.workloads:
                for s in b.subjects:
                    if not KINDS[w.kind].fresh_instance:
                        self.measure(rnd, w, s)
                    elif s.argv:
                        self.measure_fresh(rnd, w, s)
        self.stop(self.procs)


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, a):
        self.rounds, self.secs = a.rounds, a.duration
        self.subjects, self.workloads, self.topologies = a.only, a.workloads, a.topology
        self.binary = a.binary
        self.out = a.out
        self.wants_udp = any(w.route == "udp" for w in self.workloads)
        self.wants_accept = any(w.route == "accept" for w in self.workloads)
        self.procs = Procs()
        self.samples = None
        self.failures = 0

    def record(self, sample, kind, out=None, window=None, error=""):
        """Fill, store and log one sample."""
        try:
            if error:
                raise RuntimeError(error)
            if sample["status"] == "ok":
                kind.fill(sample, out, window.forwarder_secs() if window else None)
        except Exception as e:  # noqa: BLE001 - any failure becomes an error sample
            sample["status"] = "error"
            sample["error"] = str(e)
        if window:
            sample["foreign_cpu_pct"], top = window.foreign()
            if top:
                sample["foreign_top"] = top
        # Read right after the measurement: a hint of what else shared the cores.
        sample["loadavg_1m"] = float(loadavg().split()[0])
        self.samples.add(sample)
        if sample["status"] == "n/a":
            line = f"n/a: {sample['reason']}"
        elif sample["status"] != "ok":
            line = f"ERROR {sample['error']}"
            self.failures += 1
        else:
            line = kind.line(sample)
        foreign = sample.get("foreign_cpu_pct")
        if foreign is not None and foreign > SHARED_CPU_PCT:
            line += f" [shared machine: foreign CPU {foreign:.0f}% of a core: {sample.get('foreign_top')}]"
        log(f"  {sample['workload']} {sample['subject']}: {line}")

    def ensure_binary(self):
        if not any(s.binary for s in self.subjects):
            self.binary = ""
            return
        if not self.binary:
            self.binary = str(REPO / ".build/release/portunus-uring")
            if not os.access(self.binary, os.X_OK):
                log(f"building {self.binary} (swift build -c release)")
                if subprocess.run(["swift", "build", "-c", "release"], cwd=REPO).returncode:
                    raise Fatal("swift build failed; use --only to leave out portunus-*")
        if not os.access(self.binary, os.X_OK):
            raise Fatal(f"no executable at {self.binary}")
        self.binary = str(Path(self.binary).resolve())

    def run(self):
        self.ensure_binary()
        # The hard limit is 20,000 here; forwarders inherit the soft one.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        (self.out / "run").mkdir(parents=True, exist_ok=True)
        self.samples = Samples(self.out / "samples.json", self.metadata())
        log(f"results in {self.out}")
        total = self.rounds * len(self.workloads) * len(self.subjects) * len(self.topologies)
        # A memory hold takes a few seconds more than a load (start, set-up, tear-down).
        log(f"{total} measurements of {self.secs}s, about {total * (self.secs + SETTLE_SECS + 4) // 60 + 1} min")
        for topology in self.topologies:
            Pass(self, topology).run()
        # Load average at both ends: a hint that something else shared the cores.
        self.samples.meta(loadavg_end=loadavg())
        subprocess.run([sys.executable, str(HERE / "report.py"), str(self.out)], check=True)
        sys.stdout.write((self.out / "summary.md").read_text())
        if self.failures:
            log(f"{self.failures} measurement(s) failed; see 'error' in {self.out}/samples.json")
            return 2
        return 0

    def metadata(self):
        git_rev = output(["git", "-C", str(REPO), "describe", "--always", "--dirty"]) or "no commit yet"
        meta = {
            "date_utc": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
            "host": socket.gethostname(), "nproc": len(os.sched_getaffinity(0)), "kernel": os.uname().release,
            "cpu": cpu_model(), "rounds": self.rounds, "duration_secs": self.secs,
            "topologies": ",".join(t.name for t in self.topologies),
            "subjects": ",".join(s.name for s in self.subjects),
            "workloads": ",".join(w.name for w in self.workloads),
            "wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS}", "forwarder_workers": FORWARDER_WORKERS,
            "hold_connections": HOLD_CONNECTIONS, "hold_setup_cap_secs": HOLD_SETUP_SECS,
            "shared_cpu_pct": SHARED_CPU_PCT,
        }
        meta.update(tool_versions())
        meta.update({
            "udp_flows": UDP_FLOWS,
            "portunus": self.binary or "not run", "git_rev": git_rev,
            "git_dirty": git_rev.endswith("-dirty"),
            "portunus_built": "-", "portunus_sha256": "-",
            "loadavg_start": loadavg(),
        })
        if self.binary:
            built = datetime.fromtimestamp(os.stat(self.binary).st_mtime, timezone.utc)
            meta["portunus_built"] = f"{built:%Y-%m-%dT%H:%M:%SZ}"
            meta["portunus_sha256"] = hashlib.sha256(Path(self.binary).read_bytes()).hexdigest()[:12]
        return meta


def output(argv):
    """What a command prints (stdout and stderr), or "" if it cannot run."""
    try:
        # Reading the repository must not take git's index lock from under a commit.
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"))
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout + r.stderr).strip() if r.returncode == 0 else ""


def first_match(pattern, text):
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else "?"


def tool_versions():
    return {
        "haproxy": first_match(r"^HAProxy version (\S+)", output(["haproxy", "-v"])),
        "nginx": first_match(r"nginx/(\S+)", output(["nginx", "-v"])),
        "socat": first_match(r"^socat version (\S+)", output(["socat", "-V"])),
        "iperf3": first_match(r"^iperf (\S+)", output(["iperf3", "--version"])),
        "sockperf": first_match(r"version ([0-9.]+)", output(["sockperf", "--version"])),
    }


def cpu_model():
    with open("/proc/cpuinfo") as f:
        return first_match(r"^model name\s*: (.*)$", f.read())


# ---------------------------------------------------------------- command line

class Usage(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise Usage(message)


def pick(all_entries, what):
    """A comma list of names -> the entries, in the table's order whatever order was
    typed: tables read the same every run."""
    def parse(text):
        names = [n for n in text.split(",") if n]
        known = {e.name for e in all_entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown name '{unknown[0]}'"
                                             f" (known: {' '.join(e.name for e in all_entries)})")
        if not names:
            raise argparse.ArgumentTypeError(f"selected no {what}")
        return [e for e in all_entries if e.name in names]
    return parse


def positive(text):
    # wrk and iperf3 both take whole seconds.
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError("wants a positive whole number")
    return int(text)


def topologies(text):
    if text == "both":
        return list(TOPOLOGIES.values())
    if text not in TOPOLOGIES:
        raise argparse.ArgumentTypeError("wants unpinned, pinned or both")
    return [TOPOLOGIES[text]]


def parse_args(argv):
    p = Parser(add_help=False)
    p.add_argument("--rounds", type=positive, default=3)
    p.add_argument("--duration", type=positive, default=5)
    p.add_argument("--binary", default="")
    p.add_argument("--out", type=Path)
    p.add_argument("--only", type=pick(SUBJECTS, "subject"), default=SUBJECTS)
    p.add_argument("--workloads", type=pick(WORKLOADS, "workload"), default=WORKLOADS)
    p.add_argument("--topology", type=topologies, default=list(TOPOLOGIES.values()))
    p.add_argument("-h", "--help", action="store_true")
    a = p.parse_args(argv)
    if a.help:
        sys.stderr.write(usage())
        sys.exit(0)
    a.out = (a.out or REPO / "Benchmarks/results" / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}").resolve()
    return a


def main():
    if sys.argv[1:2] == ["hold"]:
        return hold_main(sys.argv[2:])
    try:
        args = parse_args(sys.argv[1:])
    except Usage as e:
        log(f"error: {e}")
        sys.stderr.write(usage())
        sys.exit(1)
    # INT and TERM end the run the same way: everything is stopped on the way out.
    # INT explicitly, since a job started with & from a script inherits it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    rc = 1
    try:
        rc = bench.run()
    except Fatal as e:
        log(f"error: {e}")
    except KeyboardInterrupt:
        rc = 130
    except SystemExit as e:
        rc = e.code
    finally:
        if rc in (130, 143):
            log("interrupted: stopping everything")
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bench.procs.stop_all()
    sys.exit(rc)


if __name__ == "__main__":
    main()
