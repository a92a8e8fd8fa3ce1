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
#                           portunus-buffers portunus-splice
#   WORKLOADS (comma list): iperf1    iperf3, 1 stream, Gbit/s and forwarder CPU s/GB
#                           iperf4    iperf3 -P 4
#                           newconn   wrk with Connection: close, req/s p50 p99, CPU us/req
#                           keepalive wrk on kept-alive connections
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

ALL_SUBJECTS=(direct haproxy haproxy-splice nginx-stream socat portunus-buffers portunus-splice)
ALL_WORKLOADS=(iperf1 iperf4 newconn keepalive)

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

STARTED_PIDS=()          # every long-lived process we started, for cleanup
declare -A SUBJECT_PIDS  # subject -> "pid pid": the processes whose CPU we charge it
declare -A IPERF_PORT    # subject -> port that reaches the iperf3 backend
declare -A HTTP_PORT     # subject -> port that reaches the nginx http backend
declare -A DEAD          # subject -> why it is no longer measured
TOOL_PID=""              # the load generator currently running, if any
IPERF_SERVER_PID=""
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
    for pkg in haproxy nginx libnginx-mod-stream iperf3 wrk socat procps; do
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

descendants() {
    local child
    for child in $(pgrep -P "$1" || true); do
        descendants "$child"
        echo "$child"
    done
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
    for p in "$@"; do
        # Children first are listed but all get TERM at once; socat's per-connection
        # children would otherwise outlive their parent until their peer closes.
        mapfile -t -O "${#pids[@]}" pids < <(descendants "$p")
        pids+=("$p")
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
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
}
EOF
    start_bg "" nginx-backend nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;'
    wait_port "$BACKEND_HTTP_PORT" nginx-backend "$LAST_PID"
}

# ---------------------------------------------------------------- subjects
# All forwarders start once and run for the whole run: an idle forwarder costs no
# CPU, and a start/stop per measurement would add start-up noise and TIME_WAIT churn
# on fresh ports. Each subject is its own process(es) with two listen ports, one per
# backend (iperf3 and http).

write_haproxy_conf() {  # write_haproxy_conf FILE splice|plain IPERF_PORT HTTP_PORT
    local file=$1 mode=$2 ip=$3 hp=$4 global_extra="" defaults_extra=""
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
EOF
}

write_nginx_stream_conf() {  # write_nginx_stream_conf FILE IPERF_PORT HTTP_PORT
    cat >"$1" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $FORWARDER_WORKERS;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 8192; }
stream {
    server { listen 127.0.0.1:$2 backlog=4096 reuseport; proxy_pass 127.0.0.1:$BACKEND_IPERF_PORT; }
    server { listen 127.0.0.1:$3 backlog=4096 reuseport; proxy_pass 127.0.0.1:$BACKEND_HTTP_PORT; }
}
EOF
}

write_portunus_conf() {  # write_portunus_conf FILE IPERF_PORT HTTP_PORT
    cat >"$1" <<EOF
[global]
log_level = "warn"

[stats]
enabled = false

[[rule]]
name = "iperf"
protocol = "tcp"
listen_port = $2
target = "127.0.0.1:$BACKEND_IPERF_PORT"

[[rule]]
name = "http"
protocol = "tcp"
listen_port = $3
target = "127.0.0.1:$BACKEND_HTTP_PORT"
EOF
}

start_subject() {
    local s=$1 ip=${IPERF_PORT[$1]} hp=${HTTP_PORT[$1]} dir=$OUT/run/$1
    mkdir -p "$dir"
    case $s in
        haproxy | haproxy-splice)
            write_haproxy_conf "$dir/haproxy.cfg" "$([[ $s == *splice ]] && echo splice || echo plain)" "$ip" "$hp"
            # -db: foreground, no daemon; one process, its threads sum in /proc/PID/stat.
            start_bg "$s" "$s" haproxy -f "$dir/haproxy.cfg" -db ;;
        nginx-stream)
            write_nginx_stream_conf "$dir/nginx.conf" "$ip" "$hp"
            start_bg "$s" "$s" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' ;;
        socat)
            # socat forwards one address per process; both are charged to the subject.
            # backlog: socat's default of 5 drops connections under wrk (PEERS.md).
            start_bg "$s" "$s.iperf" socat \
                "TCP4-LISTEN:$ip,bind=127.0.0.1,fork,reuseaddr,backlog=4096" \
                "TCP4:127.0.0.1:$BACKEND_IPERF_PORT"
            start_bg "$s" "$s.http" socat \
                "TCP4-LISTEN:$hp,bind=127.0.0.1,fork,reuseaddr,backlog=4096" \
                "TCP4:127.0.0.1:$BACKEND_HTTP_PORT" ;;
        portunus-buffers | portunus-splice)
            write_portunus_conf "$dir/portunus.toml" "$ip" "$hp"
            start_bg "$s" "$s" "$BINARY" --config "$dir/portunus.toml" \
                --workers "$FORWARDER_WORKERS" --relay "${s#portunus-}" ;;
        direct) ;;
    esac
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
}

assign_ports() {
    local -a ports
    local n=$((2 + 2 * ${#SUBJECTS[@]})) s i=2
    read -ra ports <<<"$("${PROBE[@]}" free-ports "$n")"
    BACKEND_IPERF_PORT=${ports[0]}
    BACKEND_HTTP_PORT=${ports[1]}
    for s in "${SUBJECTS[@]}"; do
        if [[ $s == direct ]]; then
            IPERF_PORT[$s]=$BACKEND_IPERF_PORT
            HTTP_PORT[$s]=$BACKEND_HTTP_PORT
        else
            IPERF_PORT[$s]=${ports[i]}
            HTTP_PORT[$s]=${ports[i + 1]}
        fi
        i=$((i + 2))
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
    local tag="r$round-$workload-$s" kind out rc=0 ran=0 before="" after="" error=""
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
    esac
    : >"$out"

    local -a fpids  # the forwarder's processes, none for direct
    read -ra fpids <<<"${SUBJECT_PIDS[$s]:-}"
    if [[ -z ${DEAD[$s]:-} ]] && ! subject_alive "$s"; then
        DEAD[$s]="forwarder $s exited before round $round $workload; see $OUT/run/$s*.log"
    fi
    if [[ -n ${DEAD[$s]:-} ]]; then
        error=${DEAD[$s]}
    else
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
            error="${cmd[0]} timed out after $((DURATION_SECS + 30))s"
        elif ((rc != 0)); then
            error="${cmd[0]} exit $rc: $(tail -c 300 "$out.stderr" | tr '\n' ' ')"
            # iperf3 -J puts its own message in the JSON; probe.py reads it from there.
            [[ $kind == iperf ]] && error=""
        fi
    fi

    local -a args=(--subject "$s" --workload "$workload" --round "$round" --kind "$kind" --output "$out")
    [[ -n $before && -n $after ]] && args+=(--cpu-ticks $((after - before)))
    [[ -n $error ]] && args+=(--error "$error")
    local line
    line=$("${PROBE[@]}" sample "$OUT/samples.json" "${args[@]}")
    log "  $workload $s: $line"
    if [[ $line == ERROR* ]]; then
        FAILURES=$((FAILURES + 1))
        [[ $kind == iperf ]] && ((ran)) && restart_iperf_server
    fi
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
        "haproxy=$(haproxy -v | head -n1 | awk '{print $3}')" \
        "nginx=$(nginx -v 2>&1 | sed 's|.*/||')" \
        "socat=$(socat -V | sed -n 's/^socat version \([^ ]*\).*/\1/p')" \
        "iperf3=$(iperf3 --version | head -n1 | awk '{print $2}')" \
        "portunus=${BINARY:-not run}" "git_rev=$git_rev" \
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
    local s w r
    for s in "${SUBJECTS[@]}"; do start_subject "$s"; done
    for s in "${SUBJECTS[@]}"; do
        check_subject "$s"
        log "ready: $s (iperf ${IPERF_PORT[$s]}, http ${HTTP_PORT[$s]}, pids ${SUBJECT_PIDS[$s]:-none})"
    done

    local total=$((ROUNDS * ${#WORKLOADS[@]} * ${#SUBJECTS[@]}))
    log "$total measurements of ${DURATION_SECS}s, about $((total * (DURATION_SECS + SETTLE_SECS + 2) / 60 + 1)) min"
    for ((r = 1; r <= ROUNDS; r++)); do
        log "round $r/$ROUNDS"
        for w in "${WORKLOADS[@]}"; do
            for s in "${SUBJECTS[@]}"; do measure "$r" "$w" "$s"; done
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
