#!/usr/bin/env bash
# End-to-end peer benchmark: portunus-uring against HAProxy, nginx stream, socat and no
# forwarder at all, on 127.0.0.1, measured in ONE run and interleaved round-robin
# (round 1: every subject, round 2: every subject, ...) so that drift on a shared 2-core
# machine hits every subject alike. The report gives medians over rounds and ratios
# against haproxy and direct from the same run, never an absolute number alone.
#
#   Benchmarks/peers/run.sh [--rounds N] [--duration SECS] [--binary PATH] [--out DIR]
#                           [--only SUBJECTS] [--workloads WORKLOADS]
#
#   SUBJECTS  (comma list): direct haproxy haproxy-splice nginx-stream socat
#                           portunus-buffers portunus-splice portunus-auto
#                           portunus-dns (buffers, every target named by DNS and
#                           resolved through a dnsmasq the harness starts: the
#                           cost of a cached name against portunus-buffers' IPs)
#   WORKLOADS (comma list): iperf1    iperf3, 1 stream, Gbit/s and forwarder CPU s/GB
#                           iperf4    iperf3 -P 4
#                           newconn   wrk with Connection: close, req/s p50 p99, CPU us/req
#                           keepalive wrk on kept-alive connections
#                           proxy-v1  newconn through a forwarder that sends a PROXY v1
#                                     header to an nginx backend expecting it (haproxy
#                                     send-proxy, nginx proxy_protocol on, portunus
#                                     proxy_protocol = "v1"); n/a for direct, socat
#                           proxy-v2  the same with PROXY v2 (n/a for nginx: it sends v1 only)
#                           udp64     UDP, 64 B datagrams, one flow: sockperf ping-pong
#                                     (closed loop, one datagram in flight) to a sockperf
#                                     server; round trips/s, p50 p99 round-trip time
#                                     (--full-rtt), forwarder CPU us per round trip (two
#                                     datagrams forwarded); n/a for haproxy (no UDP in 2.6)
#                           udp1400   the same with 1,400 B datagrams
#                           udp64-flows  udp64 with 8 sockperf clients at once, one flow
#                                     each: summed round trips/s, the worst flow's p99
#                           udp64-flood  UDP open loop: a sockperf throughput client sends
#                                     64 B datagrams as fast as it can through the forwarder
#                                     to a fresh sockperf server; datagrams/s that reached
#                                     the server's socket (read + its overflow drops), what
#                                     the server read, what the forwarder lost, forwarder
#                                     CPU us per datagram
#                           udp1400-flood  the same with 1,400 B datagrams
#                           udp64-flood-flows  udp64-flood with 2 clients at once (2 flows;
#                                     each client is a process that wants a core of its own)
#                           memory    RSS/PSS, threads and io_uring workers of a fresh
#                                     forwarder idle, then holding 5,000 idle connections
#                                     to an idle backend, then after they closed (not direct)
#
# Quick check without the portunus binary:
#   Benchmarks/peers/run.sh --rounds 1 --duration 2 --only direct,haproxy,socat
# Re-render an old run: python3 Benchmarks/peers/report.py Benchmarks/results/<ts>
#
# Writes OUT/samples.json (rewritten after every sample, so an interrupted run stays
# readable), OUT/summary.md, OUT/chart.png; configs, logs and raw tool outputs under OUT/run.
# Exit status: 0 all samples ok, 2 some samples failed (the report is still written).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PROBE=(python3 "$HERE/probe.py")

ALL_SUBJECTS=(direct haproxy haproxy-splice nginx-stream socat portunus-buffers portunus-splice portunus-auto portunus-dns)
ALL_WORKLOADS=(iperf1 iperf4 newconn keepalive proxy-v1 proxy-v2 udp64 udp1400 udp64-flows
    udp64-flood udp1400-flood udp64-flood-flows memory)

ROUNDS=3
DURATION_SECS=5
BINARY=""
OUT=""
SUBJECTS=("${ALL_SUBJECTS[@]}")
WORKLOADS=("${ALL_WORKLOADS[@]}")

# Seconds between two measurements: lets the previous run's sockets close and the
# CPU frequency settle so one subject's tail does not land in the next one's window.
SETTLE_SECS=1
# A forwarder or backend that does not accept within this is a failed start.
READY_SECS=10
# Worker count for every forwarder that has one: 2 cores here, and HAProxy
# nbthread 2 / nginx worker_processes 2 are what a user would set on this box.
FORWARDER_WORKERS=2
# wrk shape from PEERS.md (the baseline figures there use it).
WRK_THREADS=2
WRK_CONNECTIONS=50
# memory: idle connections held through each forwarder. Each costs the forwarder two
# sockets and the hard open-file limit is 20,000 per process (PEERS.md); the hold
# process needs 2 x 5,000 fds for both ends.
HOLD_CONNECTIONS=5000
HOLD_SETUP_SECS=30      # cap on opening them all (socat forks one process per connection)
HOLD_TEARDOWN_SECS=20   # cap on the forwarder letting them all go again
# udp64-flows: concurrent sockperf clients, each its own socket and so its own flow.
UDP_FLOWS=8
# udp64-flood-flows: concurrent sockperf throughput clients. Each floods as fast as one
# process can, so more than two would only take the 2 cores from the forwarder.
UDP_FLOOD_FLOWS=2
# socat ends a UDP child (one per client address) after this long without traffic;
# nginx ends a UDP session the same way (proxy_timeout). Every sockperf run is a new
# client port, so without it every run would leave one child / session behind.
UDP_IDLE_SECS=10

STARTED_PIDS=()          # every long-lived process we started, for cleanup
declare -A SUBJECT_PIDS  # subject -> "pid pid": the processes whose CPU we charge it
declare -A IPERF_PORT    # subject -> port that reaches the iperf3 backend
declare -A HTTP_PORT     # subject -> port that reaches the nginx http backend
declare -A PP_PORT       # subject/proxy-vN -> port whose forwarder sends that PROXY header
declare -A MEM_PORT      # subject -> listen port of its memory-test instance
declare -A UDP_PORT      # subject -> UDP port that reaches the sockperf backend (UDP runs only)
declare -A BROKEN        # subject/workload -> why its pre-measurement check failed
declare -A DEAD          # subject -> why it is no longer measured
TOOL_PID=""              # the load generator currently running, if any
IPERF_SERVER_PID=""
UDP_BACKEND_PID=""       # the sockperf server that answers ping-pong, while it runs
FAILURES=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-0}"; }

# ---------------------------------------------------------------- arguments

in_list() {  # in_list WORD LIST...
    local w=$1; shift
    local x
    for x in "$@"; do [[ $x == "$w" ]] && return 0; done
    return 1
}

# Keep the canonical order whatever order the user typed: tables read the same every run.
pick() {  # pick VAR "a,b" ALL... : VAR=(the chosen names of ALL, in ALL's order)
    local -n into=$1
    local wanted=$2; shift 2
    local -a chosen
    IFS=, read -ra chosen <<<"$wanted"
    local c
    for c in "${chosen[@]}"; do in_list "$c" "$@" || die "unknown name '$c' (known: $*)"; done
    into=()
    for c in "$@"; do in_list "$c" "${chosen[@]}" && into+=("$c"); done
    return 0
}

parse_args() {
    while (($#)); do
        case $1 in
            --rounds) ROUNDS=${2:?}; shift 2 ;;
            --duration) DURATION_SECS=${2:?}; shift 2 ;;
            --binary) BINARY=${2:?}; shift 2 ;;
            --out) OUT=${2:?}; shift 2 ;;
            --only) pick SUBJECTS "${2:?}" "${ALL_SUBJECTS[@]}"; shift 2 ;;
            --workloads) pick WORKLOADS "${2:?}" "${ALL_WORKLOADS[@]}"; shift 2 ;;
            -h|--help) usage 0 ;;
            *) log "unknown argument '$1'"; usage 1 ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
    # wrk and iperf3 both take whole seconds.
    [[ $DURATION_SECS =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds"
    ((${#SUBJECTS[@]})) || die "--only selected no subject"
    ((${#WORKLOADS[@]})) || die "--workloads selected no workload"
    OUT=${OUT:-$REPO/Benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$OUT/run/raw"
    OUT=$(cd "$OUT" && pwd)
}

wants_udp() {
    local w
    for w in "${WORKLOADS[@]}"; do [[ $w == udp* ]] && return 0; done
    return 1
}

wants_portunus() {
    local s
    for s in "${SUBJECTS[@]}"; do [[ $s == portunus-* ]] && return 0; done
    return 1
}

# ---------------------------------------------------------------- setup

ensure_packages() {
    # Check before touching apt so a second run neither updates nor installs.
    local -a missing=()
    local pkg
    for pkg in haproxy nginx libnginx-mod-stream iperf3 wrk socat procps dnsmasq-base sockperf; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    command -v python3 >/dev/null || missing+=(python3)
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]}"
    apt-get update
    # Debian may start the nginx/haproxy system services on install; they use their
    # packaged ports, never ours, so they do not disturb the measurement.
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# Sets REPORT_PY to an interpreter that has matplotlib, or plain python3 (report.py
# then writes summary.md and says why chart.png is missing).
ensure_matplotlib() {
    REPORT_PY=python3
    python3 -c 'import matplotlib' 2>/dev/null && return 0
    log "matplotlib missing: trying pip, then Debian's python3-matplotlib"
    if python3 -m pip install --quiet matplotlib && python3 -c 'import matplotlib' 2>/dev/null; then
        return 0
    fi
    # Debian's package serves Debian's interpreter, which may not be the python3 on PATH.
    if dpkg -s python3-matplotlib >/dev/null 2>&1 ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-matplotlib; }; then
        /usr/bin/python3 -c 'import matplotlib' 2>/dev/null && REPORT_PY=/usr/bin/python3
    fi
    return 0
}

ensure_binary() {
    wants_portunus || return 0
    if [[ -z $BINARY ]]; then
        BINARY=$REPO/.build/release/portunus-uring
        if [[ ! -x $BINARY ]]; then
            log "building $BINARY (swift build -c release)"
            (cd "$REPO" && swift build -c release) || die "swift build failed; use --only to leave out portunus-*"
        fi
    fi
    [[ -x $BINARY ]] || die "no executable at $BINARY"
    BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
}

# ---------------------------------------------------------------- processes

is_alive() {  # a child that died stays a zombie until reaped: that is not alive
    local stat
    # Braces: a failed redirection on an assignment would end the script under set -e.
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

descendants() {  # every live descendant of PID, from one ps snapshot
    # One ps instead of a pgrep per process: socat may have thousands of children.
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pid[NR] = $1 }
        END {
            for (i = 1; i <= NR; i++) {
                up = parent[pid[i]]
                for (depth = 0; up != "" && up != 0 && up != root && depth < 64; depth++) up = parent[up]
                if (up == root) print pid[i]
            }
        }'
}

# start_bg SUBJECT LOGNAME CMD... : run CMD in the background, stderr+stdout to
# OUT/run/LOGNAME.log, and charge its CPU to SUBJECT ("" for backends).
start_bg() {
    local subject=$1 name=$2; shift 2
    "$@" >"$OUT/run/$name.log" 2>&1 &
    local pid=$!
    STARTED_PIDS+=("$pid")
    [[ -n $subject ]] && SUBJECT_PIDS[$subject]="${SUBJECT_PIDS[$subject]:-}${SUBJECT_PIDS[$subject]:+ }$pid"
    LAST_PID=$pid
}

stop_pids() {  # TERM the processes and their descendants, KILL what is left after 5 s
    local -a pids=()
    local p
    # Stopped, a forking server (socat) cannot add a child after we listed its
    # children; the TERM stays pending until the CONT below.
    kill -STOP "$@" 2>/dev/null || true
    for p in "$@"; do
        # Children first are listed but all get TERM at once; socat's per-connection
        # children would otherwise outlive their parent until their peer closes.
        mapfile -t -O "${#pids[@]}" pids < <(descendants "$p")
        pids+=("$p")
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    kill -CONT "$@" 2>/dev/null || true
    local i alive
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in "${pids[@]}"; do is_alive "$p" && alive=1 && break; done
        ((alive)) || break
        sleep 0.1
    done
    for p in "${pids[@]}"; do is_alive "$p" && { kill -KILL "$p" 2>/dev/null || true; }; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    # Forget them: a recycled PID must never be signalled by the final cleanup.
    local -a kept=()
    for p in "${STARTED_PIDS[@]}"; do in_list "$p" "$@" || kept+=("$p"); done
    STARTED_PIDS=("${kept[@]}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Best effort from here on: one failed kill must not stop the rest of the cleanup.
    set +e
    [[ -n $TOOL_PID ]] && kill -TERM "$TOOL_PID" 2>/dev/null
    ((${#STARTED_PIDS[@]})) && stop_pids "${STARTED_PIDS[@]}"
    [[ -n $TOOL_PID ]] && wait "$TOOL_PID" 2>/dev/null
    exit "$rc"
}

show_logs() {  # show_logs NAME : the tail of NAME's logs, for a failed start
    local f
    # NAME.*.log: socat runs one process per port (socat.iperf.log, socat.http.log).
    for f in "$OUT/run/$1.log" "$OUT/run/$1".*.log "$OUT/run/$1/error.log"; do
        [[ -s $f ]] && { log "--- $f"; tail -n 20 "$f" >&2; }
    done
    return 0
}

wait_port() {  # wait_port PORT NAME [PID...] : fail clearly, with NAME's log, if it does not accept
    local port=$1 name=$2; shift 2
    "${PROBE[@]}" wait-port "$port" "$READY_SECS" "$@" && return 0
    show_logs "$name"
    die "$name does not accept on 127.0.0.1:$port (waited at most ${READY_SECS}s)"
}

# ---------------------------------------------------------------- backends

start_iperf_server() {
    # One server for the whole run: iperf3 serves one test at a time, which suits
    # the strictly sequential measurements. -B keeps it on loopback.
    start_bg "" iperf3-server iperf3 -s -p "$BACKEND_IPERF_PORT" -B 127.0.0.1
    IPERF_SERVER_PID=$LAST_PID
    wait_port "$BACKEND_IPERF_PORT" iperf3-server "$IPERF_SERVER_PID"
}

# UDP backend: sockperf's server answers every ping-pong request. Started only when
# a UDP workload runs; not charged to any subject.
# The flood workloads start a fresh server of their own on the same port (probe.py
# udp-flood), so that its counts are the sample's alone: this one makes way for them.
start_udp_backend() {
    start_bg "" sockperf-server sockperf sr -i 127.0.0.1 -p "$BACKEND_UDP_PORT"
    UDP_BACKEND_PID=$LAST_PID
    sleep 0.5
    is_alive "$LAST_PID" || { show_logs sockperf-server; die "sockperf server did not start"; }
    "${PROBE[@]}" udp-check "$BACKEND_UDP_PORT" >/dev/null ||
        { show_logs sockperf-server; die "sockperf server does not answer on 127.0.0.1:$BACKEND_UDP_PORT"; }
}

udp_backend_for() {  # udp_backend_for WORKLOAD : the ping-pong server up for pp, down for a flood
    case $1 in
        udp*-flood*) [[ -z $UDP_BACKEND_PID ]] || { stop_pids "$UDP_BACKEND_PID"; UDP_BACKEND_PID=""; } ;;
        udp*) [[ -n $UDP_BACKEND_PID ]] || start_udp_backend ;;
    esac
}

restart_iperf_server() {
    # After a failed test the server may wait on a dead control connection and
    # answer "busy" to everything after it: start a fresh one on the same port.
    log "restarting the iperf3 server"
    stop_pids "$IPERF_SERVER_PID"
    start_iperf_server
}

start_http_backend() {
    local dir=$OUT/run/nginx-backend
    mkdir -p "$dir/tmp"
    # Every path is relative to the -p prefix so nginx writes nothing outside OUT.
    # keepalive_requests is raised so the keep-alive workload measures requests on
    # open connections, not nginx closing each one after its default 1000 requests.
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$BACKEND_HTTP_PORT backlog=4096;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
    # proxy-v1/proxy-v2: every connection must open with a PROXY header (nginx takes
    # v1 and v2 on the same listener); the body says what the header told it, which
    # probe.py proxy-check compares with the real client before wrk runs.
    server {
        listen 127.0.0.1:$BACKEND_PP_PORT backlog=4096 proxy_protocol;
        location / {
            default_type text/plain;
            return 200 "src=\$proxy_protocol_addr:\$proxy_protocol_port dst=\$proxy_protocol_server_addr:\$proxy_protocol_server_port\n";
        }
    }
}
EOF
    start_bg "" nginx-backend nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
    wait_port "$BACKEND_HTTP_PORT" nginx-backend "$LAST_PID"
    wait_port "$BACKEND_PP_PORT" nginx-backend "$LAST_PID"
}

# ---------------------------------------------------------------- subjects
# All forwarders start once and run for the whole run: an idle forwarder costs no
# CPU, and a start/stop per measurement would add start-up noise and TIME_WAIT churn
# on fresh ports. Each subject is its own process(es) with two listen ports, one per
# backend (iperf3 and http), plus one per PROXY version it can send, towards the
# backend's proxy_protocol listener. The memory workload starts a separate, fresh
# instance per measurement (start_memory_instance).

proxy_na() {  # proxy_na SUBJECT WORKLOAD : why SUBJECT cannot take part in WORKLOAD, or nothing
    case $1/$2 in
        haproxy/udp* | haproxy-splice/udp*) echo "HAProxy 2.6 does not proxy UDP" ;;
        direct/proxy-*) echo "no forwarder: wrk itself sends no PROXY header" ;;
        socat/proxy-*) echo "socat cannot send a PROXY header" ;;
        nginx-stream/proxy-v2) echo "nginx can only send PROXY v1 (proxy_protocol on;)" ;;
    esac
}

write_haproxy_conf() {  # write_haproxy_conf FILE splice|plain SUBJECT
    local file=$1 mode=$2 s=$3 global_extra="" defaults_extra=""
    local ip=${IPERF_PORT[$3]} hp=${HTTP_PORT[$3]}
    if [[ $mode == splice ]]; then
        # splice-auto never splices on loopback (PEERS.md), so force both directions.
        # maxpipes: without it HAProxy wants more FDs than the hard limit allows.
        global_extra="    maxpipes 1024"
        defaults_extra=$'    option splice-request\n    option splice-response'
    fi
    cat >"$file" <<EOF
global
    nbthread $FORWARDER_WORKERS
    maxconn 8000
$global_extra
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
$defaults_extra
listen iperf
    bind 127.0.0.1:$ip
    server s1 127.0.0.1:$BACKEND_IPERF_PORT
listen http
    bind 127.0.0.1:$hp
    server s1 127.0.0.1:$BACKEND_HTTP_PORT
listen proxy-v1
    bind 127.0.0.1:${PP_PORT[$s/proxy-v1]}
    server s1 127.0.0.1:$BACKEND_PP_PORT send-proxy
listen proxy-v2
    bind 127.0.0.1:${PP_PORT[$s/proxy-v2]}
    server s1 127.0.0.1:$BACKEND_PP_PORT send-proxy-v2
EOF
}

write_nginx_stream_conf() {  # write_nginx_stream_conf FILE IPERF_PORT HTTP_PORT PROXY_V1_PORT [UDP_PORT]
    cat >"$1" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $FORWARDER_WORKERS;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 8192; }
stream {
    server { listen 127.0.0.1:$2 backlog=4096 reuseport; proxy_pass 127.0.0.1:$BACKEND_IPERF_PORT; }
    server { listen 127.0.0.1:$3 backlog=4096 reuseport; proxy_pass 127.0.0.1:$BACKEND_HTTP_PORT; }
    server {
        listen 127.0.0.1:$4 backlog=4096 reuseport;
        proxy_pass 127.0.0.1:$BACKEND_PP_PORT;
        proxy_protocol on;
    }
$(nginx_udp_server "${5:-}")
}
EOF
}

# nginx_udp_server PORT : the UDP server block, or nothing without a port. A session
# per client address lives until proxy_timeout passes without traffic, so one flow is
# one upstream socket, as in portunus. (proxy_responses 1 would end it after every
# reply and open a new upstream socket per datagram: about 40% fewer round trips
# in a check here, and not what a user forwarding a UDP flow would set.)
nginx_udp_server() {
    [[ -n $1 ]] || return 0
    echo "    server {"
    echo "        listen 127.0.0.1:$1 udp reuseport;"
    echo "        proxy_pass 127.0.0.1:$BACKEND_UDP_PORT;"
    echo "        proxy_timeout ${UDP_IDLE_SECS}s;"
    echo "    }"
}

write_portunus_conf() {  # write_portunus_conf FILE IPERF_PORT HTTP_PORT PROXY_V1_PORT PROXY_V2_PORT [HOST [UDP_PORT]]
    local host=${6:-127.0.0.1} udp=${7:-}
    cat >"$1" <<EOF
[global]
log_level = "warn"

[stats]
enabled = false

[[rule]]
name = "iperf"
protocol = "tcp"
listen_port = $2
target = "$host:$BACKEND_IPERF_PORT"

[[rule]]
name = "http"
protocol = "tcp"
listen_port = $3
target = "$host:$BACKEND_HTTP_PORT"

[[rule]]
name = "proxy-v1"
protocol = "tcp"
listen_port = $4
targets = [ { host = "$host", port = $BACKEND_PP_PORT, proxy_protocol = "v1" } ]

[[rule]]
name = "proxy-v2"
protocol = "tcp"
listen_port = $5
targets = [ { host = "$host", port = $BACKEND_PP_PORT, proxy_protocol = "v2" } ]
EOF
    [[ -n $udp ]] || return 0
    cat >>"$1" <<EOF

[[rule]]
name = "udp"
protocol = "udp"
listen_port = $udp
target = "$host:$BACKEND_UDP_PORT"
EOF
}

start_subject() {
    local s=$1 ip=${IPERF_PORT[$1]} hp=${HTTP_PORT[$1]} dir=$OUT/run/$1
    mkdir -p "$dir"
    case $s in
        haproxy | haproxy-splice)
            write_haproxy_conf "$dir/haproxy.cfg" "$([[ $s == *splice ]] && echo splice || echo plain)" "$s"
            # -db: foreground, no daemon; one process, its threads sum in /proc/PID/stat.
            start_bg "$s" "$s" haproxy -f "$dir/haproxy.cfg" -db ;;
        nginx-stream)
            write_nginx_stream_conf "$dir/nginx.conf" "$ip" "$hp" "${PP_PORT[$s/proxy-v1]}" "${UDP_PORT[$s]:-}"
            start_bg "$s" "$s" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' ;;
        socat)
            # socat forwards one address per process; both are charged to the subject.
            # backlog: socat's default of 5 drops connections under wrk (PEERS.md).
            start_bg "$s" "$s.iperf" socat \
                "TCP4-LISTEN:$ip,bind=127.0.0.1,fork,reuseaddr,backlog=4096" \
                "TCP4:127.0.0.1:$BACKEND_IPERF_PORT"
            start_bg "$s" "$s.http" socat \
                "TCP4-LISTEN:$hp,bind=127.0.0.1,fork,reuseaddr,backlog=4096" \
                "TCP4:127.0.0.1:$BACKEND_HTTP_PORT"
            # UDP4-LISTEN with fork: one child per client address, which then owns that
            # flow (UDP4-RECVFROM with fork forks a child per datagram: ~7x fewer round
            # trips in a check here). -T ends a child idle for UDP_IDLE_SECS.
            if [[ -n ${UDP_PORT[$s]:-} ]]; then
                start_bg "$s" "$s.udp" socat -T "$UDP_IDLE_SECS" \
                    "UDP4-LISTEN:${UDP_PORT[$s]},bind=127.0.0.1,fork,reuseaddr" \
                    "UDP4:127.0.0.1:$BACKEND_UDP_PORT"
            fi ;;
        portunus-buffers | portunus-splice | portunus-auto)
            write_portunus_conf "$dir/portunus.toml" "$ip" "$hp" "${PP_PORT[$s/proxy-v1]}" "${PP_PORT[$s/proxy-v2]}" \
                127.0.0.1 "${UDP_PORT[$s]:-}"
            start_bg "$s" "$s" "$BINARY" --config "$dir/portunus.toml" \
                --workers "$FORWARDER_WORKERS" --relay "${s#portunus-}" ;;
        portunus-dns)
            start_dns_server
            write_portunus_conf "$dir/portunus.toml" "$ip" "$hp" "${PP_PORT[$s/proxy-v1]}" "${PP_PORT[$s/proxy-v2]}" \
                "$DNS_NAME" "${UDP_PORT[$s]:-}"
            start_bg "$s" "$s" "$BINARY" --config "$dir/portunus.toml" \
                --workers "$FORWARDER_WORKERS" --relay buffers --dns-server "127.0.0.1:$DNS_PORT" ;;
        direct) ;;
    esac
}

# portunus-dns: a dnsmasq answering DNS_NAME with 127.0.0.1 (TTL 300 s, the most the
# forwarder caches) and nothing else. Not charged to any subject: once the name is
# cached the forwarder asks it again only every 300 s.
DNS_NAME=backend.portunus.bench
DNS_PORT=""
start_dns_server() {
    [[ -n $DNS_PORT ]] && return 0
    local dir="$OUT/run/dnsmasq"
    mkdir -p "$dir"
    chmod 755 "$dir"
    echo "127.0.0.1 $DNS_NAME" >"$dir/hosts"
    DNS_PORT=$("${PROBE[@]}" free-ports 1)
    start_bg "" dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= \
        --port="$DNS_PORT" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
        --addn-hosts="$dir/hosts" --local-ttl=300 --local=/portunus.bench/ --user="$(id -un)"
    sleep 0.5
}

check_subject() {  # both ports accept, and an HTTP request makes the round trip
    local s=$1
    local -a pids
    read -ra pids <<<"${SUBJECT_PIDS[$s]:-}"
    wait_port "${HTTP_PORT[$s]}" "$s" "${pids[@]}"
    wait_port "${IPERF_PORT[$s]}" "$s" "${pids[@]}"
    if ! "${PROBE[@]}" http-check "${HTTP_PORT[$s]}"; then
        show_logs "$s"
        die "$s does not forward HTTP to the backend"
    fi
    # PROXY: one request must come back 200 and the header must name the real client.
    # A failure does not stop the run: that subject's samples of the workload become
    # errors carrying this reason, so a broken header cannot pass as a fast error rate.
    local w said
    for w in proxy-v1 proxy-v2; do
        in_list "$w" "${WORKLOADS[@]}" || continue
        [[ -n $(proxy_na "$s" "$w") ]] && continue
        wait_port "${PP_PORT[$s/$w]}" "$s" "${pids[@]}"
        if said=$("${PROBE[@]}" proxy-check "${PP_PORT[$s/$w]}" 2>&1); then
            log "  $w through $s: backend was told $said"
        else
            BROKEN[$s/$w]="check before measuring failed: $said"
            log "  $w through $s: FAILED: $said"
            show_logs "$s"
        fi
    done
    # UDP: a short sockperf ping-pong must come back (this also puts portunus-dns'
    # name in its cache). A failure marks the subject's UDP workloads, as for PROXY.
    if [[ -n ${UDP_PORT[$s]:-} ]]; then
        if said=$("${PROBE[@]}" udp-check "${UDP_PORT[$s]}" 2>&1); then
            log "  udp through $s: $said"
        else
            for w in "${WORKLOADS[@]}"; do
                [[ $w == udp* ]] && BROKEN[$s/$w]="check before measuring failed: $said"
            done
            log "  udp through $s: FAILED: $said"
            show_logs "$s"
        fi
    fi
}

assign_ports() {
    local -a ports
    # Backends: iperf3, http, http behind proxy_protocol, the memory test's idle one.
    # Subjects: iperf, http, proxy-v1, proxy-v2, memory instance (some stay unused).
    local n=$((4 + 5 * ${#SUBJECTS[@]})) s w i=4
    read -ra ports <<<"$("${PROBE[@]}" free-ports "$n")"
    BACKEND_IPERF_PORT=${ports[0]}
    BACKEND_HTTP_PORT=${ports[1]}
    BACKEND_PP_PORT=${ports[2]}
    BACKEND_HOLD_PORT=${ports[3]}
    for s in "${SUBJECTS[@]}"; do
        if [[ $s == direct ]]; then
            IPERF_PORT[$s]=$BACKEND_IPERF_PORT
            HTTP_PORT[$s]=$BACKEND_HTTP_PORT
        else
            IPERF_PORT[$s]=${ports[i]}
            HTTP_PORT[$s]=${ports[i + 1]}
            MEM_PORT[$s]=${ports[i + 4]}
        fi
        for w in proxy-v1 proxy-v2; do
            [[ -z $(proxy_na "$s" "$w") ]] && PP_PORT[$s/$w]=${ports[i + ${w#proxy-v} + 1]}
        done
        i=$((i + 5))
    done
    wants_udp || return 0
    # UDP ports are a space of their own: ask for ports free for UDP.
    read -ra ports <<<"$("${PROBE[@]}" free-ports --udp $((1 + ${#SUBJECTS[@]})))"
    BACKEND_UDP_PORT=${ports[0]}
    i=1
    for s in "${SUBJECTS[@]}"; do
        if [[ $s == direct ]]; then
            UDP_PORT[$s]=$BACKEND_UDP_PORT
        elif [[ -z $(proxy_na "$s" udp64) ]]; then
            UDP_PORT[$s]=${ports[i]}
        fi
        i=$((i + 1))
    done
}

# ---------------------------------------------------------------- measuring

run_bounded() {  # run_bounded SECS OUTFILE CMD... -> CMD's status, 124 on timeout
    local secs=$1 out=$2; shift 2
    # In the background plus `wait` so Ctrl-C reaches our trap at once: bash
    # would run the trap only after a foreground child finished.
    timeout -k 5 "$secs" "$@" >"$out" 2>"$out.stderr" &
    TOOL_PID=$!
    local rc=0
    wait "$TOOL_PID" || rc=$?
    TOOL_PID=""
    return "$rc"
}

subject_alive() {
    local p
    for p in ${SUBJECT_PIDS[$1]:-}; do is_alive "$p" || return 1; done
    return 0
}

measure() {  # measure ROUND WORKLOAD SUBJECT : run one load, append one sample
    local round=$1 workload=$2 s=$3
    local tag="r$round-$workload-$s" kind out rc=0 ran=0 before="" after="" error="" line tool
    local -a cmd
    case $workload in
        iperf1 | iperf4)
            kind=iperf out=$OUT/run/raw/$tag.json
            cmd=(iperf3 -c 127.0.0.1 -p "${IPERF_PORT[$s]}" -t "$DURATION_SECS" -O 1 -J)
            [[ $workload == iperf4 ]] && cmd+=(-P 4) ;;
        newconn | keepalive)
            kind=wrk out=$OUT/run/raw/$tag.txt
            cmd=(wrk "-t$WRK_THREADS" "-c$WRK_CONNECTIONS" "-d${DURATION_SECS}s" --latency)
            [[ $workload == newconn ]] && cmd+=(-H 'Connection: close')
            cmd+=("http://127.0.0.1:${HTTP_PORT[$s]}/") ;;
        proxy-v1 | proxy-v2)
            # newconn's shape, through the forwarder's PROXY-sending port.
            kind=wrk out=$OUT/run/raw/$tag.txt
            cmd=(wrk "-t$WRK_THREADS" "-c$WRK_CONNECTIONS" "-d${DURATION_SECS}s" --latency
                -H 'Connection: close' "http://127.0.0.1:${PP_PORT[$s/$workload]:-0}/") ;;
        udp64 | udp1400 | udp64-flows)
            # Through probe.py udp-flows even for one flow: one output format, and
            # stdout and stderr of each client kept together.
            local size=64 flows=1
            [[ $workload == udp1400 ]] && size=1400
            [[ $workload == udp64-flows ]] && flows=$UDP_FLOWS
            kind=sockperf out=$OUT/run/raw/$tag.txt
            cmd=("${PROBE[@]}" udp-flows "$flows" "$out" -- sockperf pp -i 127.0.0.1
                -p "${UDP_PORT[$s]:-0}" -m "$size" -t "$DURATION_SECS" --full-rtt) ;;
        udp64-flood | udp1400-flood | udp64-flood-flows)
            local size=64 flows=1
            [[ $workload == udp1400-flood ]] && size=1400
            [[ $workload == udp64-flood-flows ]] && flows=$UDP_FLOOD_FLOWS
            kind=flood out=$OUT/run/raw/$tag.txt
            cmd=("${PROBE[@]}" udp-flood "$BACKEND_UDP_PORT" "$flows" "$out" -- sockperf tp
                -i 127.0.0.1 -p "${UDP_PORT[$s]:-0}" -m "$size" -t "$DURATION_SECS") ;;
    esac
    tool=${cmd[0]}
    [[ $kind == sockperf || $kind == flood ]] && tool=sockperf
    : >"$out"
    local na
    na=$(proxy_na "$s" "$workload")
    if [[ -n $na ]]; then
        line=$("${PROBE[@]}" sample "$OUT/samples.json" --subject "$s" --workload "$workload" \
            --round "$round" --kind "$kind" --output "$out" --na "$na")
        log "  $workload $s: $line"
        return 0
    fi

    local -a fpids  # the forwarder's processes, none for direct
    read -ra fpids <<<"${SUBJECT_PIDS[$s]:-}"
    if [[ -z ${DEAD[$s]:-} ]] && ! subject_alive "$s"; then
        DEAD[$s]="forwarder $s exited before round $round $workload; see $OUT/run/$s*.log"
    fi
    if [[ -n ${DEAD[$s]:-} ]]; then
        error=${DEAD[$s]}
    elif [[ -n ${BROKEN[$s/$workload]:-} ]]; then
        error=${BROKEN[$s/$workload]}
    else
        udp_backend_for "$workload"
        ((${#fpids[@]})) && { before=$("${PROBE[@]}" cpu-ticks "${fpids[@]}") || before=""; }
        # The -O 1 warm-up second and connection set-up are inside the bound.
        ran=1
        run_bounded $((DURATION_SECS + 30)) "$out" "${cmd[@]}" || rc=$?
        ((${#fpids[@]})) && { after=$("${PROBE[@]}" cpu-ticks "${fpids[@]}" 2>/dev/null) || after=""; }
        if ! subject_alive "$s"; then
            DEAD[$s]="forwarder $s exited during round $round $workload; see $OUT/run/$s*.log"
            error=${DEAD[$s]}
            show_logs "$s"
        elif ((rc == 124)); then
            error="$tool timed out after $((DURATION_SECS + 30))s"
            # sockperf never resends: a datagram lost in its warm-up stalls it for good.
            [[ $kind == sockperf ]] && error+=" (a sockperf client got no reply to a datagram)"
        elif ((rc != 0)); then
            error="$tool exit $rc: $(tail -c 300 "$out.stderr" | tr '\n' ' ')"
            # iperf3 -J puts its own message in the JSON; probe.py reads it from there.
            [[ $kind == iperf ]] && error=""
        fi
    fi

    local -a args=(--subject "$s" --workload "$workload" --round "$round" --kind "$kind" --output "$out")
    [[ -n $before && -n $after ]] && args+=(--cpu-ticks $((after - before)))
    [[ -n $error ]] && args+=(--error "$error")
    line=$("${PROBE[@]}" sample "$OUT/samples.json" "${args[@]}")
    log "  $workload $s: $line"
    if [[ $line == ERROR* ]]; then
        FAILURES=$((FAILURES + 1))
        [[ $kind == iperf ]] && ((ran)) && restart_iperf_server
    fi
    sleep "$SETTLE_SECS"
}

# ---------------------------------------------------------------- memory

# A fresh instance per measurement, with one rule to the idle backend and limits sized
# for the hold: "idle" is then the same state for every subject (just started, one
# listener), not whatever the run's earlier workloads left behind; that state is read
# from the long-running instance and reported beside it.
start_memory_instance() {  # start_memory_instance SUBJECT NAME : sets LAST_PID
    local s=$1 name=$2 dir=$OUT/run/$2 port=${MEM_PORT[$1]}
    mkdir -p "$dir"
    case $s in
        haproxy | haproxy-splice)
            # maxconn counts client connections (haproxy reserves 2 fds each): 8000
            # holds 5,000; 10,000 would need 20,017 fds and haproxy refuses to start
            # ("Cannot raise FD limit", hard limit 20,000). Timeouts outlast the hold.
            local extra="" dextra=""
            if [[ $s == *splice ]]; then
                extra="    maxpipes 1024"
                dextra=$'    option splice-request\n    option splice-response'
            fi
            cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread $FORWARDER_WORKERS
    maxconn 8000
$extra
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
$dextra
listen hold
    bind 127.0.0.1:$port
    server s1 127.0.0.1:$BACKEND_HOLD_PORT
EOF
            start_bg "" "$name" haproxy -f "$dir/haproxy.cfg" -db ;;
        nginx-stream)
            # worker_connections counts both sides of a connection, per worker; 11,000
            # lets one worker take them all (reuseport splits them, but unevenly).
            cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $FORWARDER_WORKERS;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 11000; }
stream {
    server { listen 127.0.0.1:$port backlog=4096 reuseport; proxy_pass 127.0.0.1:$BACKEND_HOLD_PORT; }
}
EOF
            start_bg "" "$name" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' ;;
        socat)
            start_bg "" "$name" socat "TCP4-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=4096" \
                "TCP4:127.0.0.1:$BACKEND_HOLD_PORT" ;;
        portunus-buffers | portunus-splice | portunus-auto)
            cat >"$dir/portunus.toml" <<EOF
[global]
log_level = "warn"

[stats]
enabled = false

[[rule]]
name = "hold"
protocol = "tcp"
listen_port = $port
target = "127.0.0.1:$BACKEND_HOLD_PORT"
EOF
            start_bg "" "$name" "$BINARY" --config "$dir/portunus.toml" \
                --workers "$FORWARDER_WORKERS" --relay "${s#portunus-}" ;;
    esac
}

measure_memory() {  # measure_memory ROUND SUBJECT : one hold through a fresh instance
    local round=$1 s=$2
    local tag="r$round-memory-$s" name="mem-$s-r$round" rc=0 error="" line
    local out=$OUT/run/raw/$tag.json running=$OUT/run/raw/$tag.running.json
    local -a args=(--subject "$s" --workload memory --round "$round" --kind memory --output "$out")
    : >"$out"
    # The long-running instance, after this run's earlier workloads: its footprint now.
    if [[ -n ${SUBJECT_PIDS[$s]:-} ]] && subject_alive "$s" &&
        "${PROBE[@]}" stats ${SUBJECT_PIDS[$s]} >"$running" 2>/dev/null; then
        args+=(--running "$running")
    fi
    start_memory_instance "$s" "$name"
    local pid=$LAST_PID
    # Everything the hold may take, plus margin: a hung hold is killed, never waited on.
    local bound=$((READY_SECS + HOLD_SETUP_SECS + DURATION_SECS + HOLD_TEARDOWN_SECS + 2 * SETTLE_SECS + 30))
    run_bounded "$bound" "$out" "${PROBE[@]}" hold --port "${MEM_PORT[$s]}" \
        --backend-port "$BACKEND_HOLD_PORT" --count "$HOLD_CONNECTIONS" --pids "$pid" \
        --ready-secs "$READY_SECS" --settle-secs "$SETTLE_SECS" --setup-secs "$HOLD_SETUP_SECS" \
        --hold-secs "$DURATION_SECS" --teardown-secs "$HOLD_TEARDOWN_SECS" || rc=$?
    if ! is_alive "$pid"; then
        error="the $s memory instance exited during the hold; see $OUT/run/$name*"
        show_logs "$name"
    elif ((rc == 124)); then
        error="hold timed out after ${bound}s"
    elif ((rc != 0)); then
        error="hold exit $rc: $(tail -c 300 "$out.stderr" | tr '\n' ' ')"
        show_logs "$name"
    fi
    # Torn down before the next subject: the instance and every child it still has.
    stop_pids "$pid"
    [[ -n $error ]] && args+=(--error "$error")
    line=$("${PROBE[@]}" sample "$OUT/samples.json" "${args[@]}")
    log "  memory $s: $line"
    [[ $line == ERROR* ]] && FAILURES=$((FAILURES + 1))
    sleep "$SETTLE_SECS"
}

init_samples() {
    local cpu git_rev
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
    git_rev=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo "no commit yet")
    "${PROBE[@]}" init-samples "$OUT/samples.json" \
        "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "host=$(hostname)" "nproc=$(nproc)" "kernel=$(uname -r)" "cpu=$cpu" \
        "rounds=$ROUNDS" "duration_secs=$DURATION_SECS" \
        "subjects=$(IFS=,; echo "${SUBJECTS[*]}")" "workloads=$(IFS=,; echo "${WORKLOADS[*]}")" \
        "wrk=-t$WRK_THREADS -c$WRK_CONNECTIONS" "forwarder_workers=$FORWARDER_WORKERS" \
        "hold_connections=$HOLD_CONNECTIONS" "hold_setup_cap_secs=$HOLD_SETUP_SECS" \
        "haproxy=$(haproxy -v | head -n1 | awk '{print $3}')" \
        "nginx=$(nginx -v 2>&1 | sed 's|.*/||')" \
        "socat=$(socat -V | sed -n 's/^socat version \([^ ]*\).*/\1/p')" \
        "iperf3=$(iperf3 --version | head -n1 | awk '{print $2}')" \
        "sockperf=$(sockperf --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -n1)" \
        "udp_flows=$UDP_FLOWS" \
        "portunus=${BINARY:-not run}" "git_rev=$git_rev" \
        "portunus_built=$([[ -n $BINARY ]] && date -u -r "$BINARY" +%Y-%m-%dT%H:%M:%SZ || echo -)" \
        "portunus_sha256=$([[ -n $BINARY ]] && sha256sum "$BINARY" | cut -c1-12 || echo -)" \
        "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
}

main() {
    parse_args "$@"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    ensure_packages
    ensure_matplotlib
    ensure_binary
    # The hard limit is 20,000 here; forwarders inherit the soft one.
    ulimit -n "$(ulimit -Hn)"

    assign_ports
    init_samples
    log "results in $OUT"
    start_iperf_server
    start_http_backend
    wants_udp && start_udp_backend
    local s w r
    for s in "${SUBJECTS[@]}"; do start_subject "$s"; done
    for s in "${SUBJECTS[@]}"; do
        check_subject "$s"
        log "ready: $s (iperf ${IPERF_PORT[$s]}, http ${HTTP_PORT[$s]}${UDP_PORT[$s]:+, udp ${UDP_PORT[$s]}}, pids ${SUBJECT_PIDS[$s]:-none})"
    done

    local total=$((ROUNDS * ${#WORKLOADS[@]} * ${#SUBJECTS[@]}))
    # A memory hold takes a few seconds more than a load (start, set-up, tear-down).
    log "$total measurements of ${DURATION_SECS}s, about $((total * (DURATION_SECS + SETTLE_SECS + 4) / 60 + 1)) min"
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        for w in "${WORKLOADS[@]}"; do
            for s in "${SUBJECTS[@]}"; do
                if [[ $w == memory ]]; then
                    # Not direct: there is no forwarder whose memory to read.
                    [[ $s == direct ]] || measure_memory "$r" "$s"
                else
                    measure "$r" "$w" "$s"
                fi
            done
        done
    done

    stop_pids "${STARTED_PIDS[@]}"
    # Load average at both ends: the cheapest hint that something else shared the 2 cores.
    "${PROBE[@]}" meta "$OUT/samples.json" "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
    "$REPORT_PY" "$HERE/report.py" "$OUT"
    cat "$OUT/summary.md"
    if ((FAILURES)); then
        log "$FAILURES measurement(s) failed; see 'error' in $OUT/samples.json"
        exit 2
    fi
}

main "$@"
