#!/usr/bin/env python3
"""Does the unit's SystemCallFilter= allow every system call the forwarder makes?

Runs the forwarder under strace (no systemd needed) through what an edge node does
to it: start-up, TCP through the splice path (`--relay splice`, so that a splice
call is made whatever the timing under strace; the buffers path makes no system call
of its own but the ring's), a target
named by DNS (`localhost`, answered by c-ares), UDP, a stats client, SIGUSR1,
SIGHUP with sd_notify to a socket of its own, SIGTERM and the drain. Then expands
the unit's SystemCallFilter= lines with `systemd-analyze syscall-filter` (the local
systemd's own group lists) and prints every call made that they would refuse.

    python3 deploy/check-syscall-filter.py [BINARY]    # default .build/release/portunus-uring

Needs strace and systemd-analyze (Debian: strace, systemd). Exit 0 when every call
is allowed, 1 with the list otherwise; 2 when the run itself failed. Everything
runs on 127.0.0.1, on ports above the ephemeral range.
"""
import os, random, re, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "deploy", "portunus-uring.service")
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "portunus-uring")


def filter_sets():
    """(allowed, denied) names from the unit's SystemCallFilter= lines, in order."""
    allowed, denied = set(), set()
    for line in open(UNIT):
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1].strip()
        deny = value.startswith("~")
        for item in value.lstrip("~").split():
            names = expand(item) if item.startswith("@") else {item}
            (denied if deny else allowed).update(names)
    return allowed - denied, denied


def expand(group):
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        names |= expand(item) if item.startswith("@") else {item}
    return names


def free_port(kind=socket.SOCK_STREAM):
    """A port above the ephemeral range (32768-60999) that binds now: one from bind(0)
    could be taken by another program's outgoing connect before the forwarder binds it."""
    while True:
        port = random.randint(61000, 65000)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue


def echo_tcp(listener):
    def serve(conn):
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def echo_udp(sock):
    while True:
        data, peer = sock.recvfrom(65536)
        sock.sendto(data, peer)


def exchange(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        sender = threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)))
        sender.start()
        got = bytearray()
        while chunk := c.recv(1 << 20):
            got += chunk
        sender.join()
        assert bytes(got) == payload, f"port {port}: {len(got)} of {len(payload)} bytes came back"


def drive(pid, ip_port, dns_port, udp_port, stats_socket):
    """What an edge node does to a forwarder, each step checked."""
    exchange(ip_port, b"x" * 100)
    exchange(ip_port, os.urandom(64 << 20))   # a bulk stream through the splice path
    exchange(dns_port, b"y" * 100)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.sendto(b"ping", ("127.0.0.1", udp_port))
        assert c.recv(100) == b"ping", "UDP: no echo"
    subprocess.run([BINARY, "stats", "--socket", stats_socket, "--once"], capture_output=True, check=True, timeout=10)
    for sig in (signal.SIGUSR1, signal.SIGHUP, signal.SIGTERM):
        os.kill(pid, sig)
        time.sleep(0.3)


def main():
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    threading.Thread(target=echo_tcp, args=(tcp,), daemon=True).start()
    threading.Thread(target=echo_udp, args=(udp,), daemon=True).start()
    ip_port, dns_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="pu-syscalls-") as tmp:
        config = os.path.join(tmp, "edge.toml")
        with open(config, "w") as f:
            f.write(f"""[global]
shutdown_drain_secs = 2
[stats]
socket_path = "{tmp}/stats.sock"
[[rule]]
name = "ip"
listen_port = {ip_port}
target = "127.0.0.1:{tcp.getsockname()[1]}"
[[rule]]
name = "dns"
listen_port = {dns_port}
target = "localhost:{tcp.getsockname()[1]}"
[[rule]]
name = "udp"
protocol = "udp"
listen_port = {udp_port}
target = "127.0.0.1:{udp.getsockname()[1]}"
""")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(tmp, "notify.sock"))
        notify.settimeout(10)
        trace = os.path.join(tmp, "trace")
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify.sock"))
        # -I1: strace blocks no signal, so the test's signals reach the forwarder itself.
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-I1", "-o", trace, BINARY, "--config", config, "--relay", "splice"],
                                  env=env, stderr=subprocess.DEVNULL)
        pid = None
        try:
            assert notify.recv(4096).startswith(b"READY=1"), "no READY=1"
            pid = int(subprocess.run(["pgrep", "-P", str(tracer.pid)], capture_output=True, text=True).stdout.split()[0])
            drive(pid, ip_port, dns_port, udp_port, f"{tmp}/stats.sock")
            assert tracer.wait(timeout=20) == 0, "the forwarder did not exit 0"
        finally:
            for victim in (pid, tracer.pid if tracer.poll() is None else None):
                if victim:
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            tracer.wait()
        calls = set()
        for line in open(trace):
            m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
            if m:
                calls.add(m.group(1))
    calls.discard("execve")   # strace's own exec of the binary; systemd's happens before the filter
    allowed, _ = filter_sets()
    refused = sorted(calls - allowed)
    print(f"{len(calls)} distinct system calls made: {' '.join(sorted(calls))}")
    if refused:
        print(f"refused by the unit's SystemCallFilter=: {' '.join(refused)}")
        return 1
    print("every one is allowed by the unit's SystemCallFilter=")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, OSError, subprocess.SubprocessError) as error:
        print(f"the run failed, nothing checked: {type(error).__name__}: {error}")
        sys.exit(2)
