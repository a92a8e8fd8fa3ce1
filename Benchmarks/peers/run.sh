#!/usr/bin/env bash
# End-to-end peer benchmark: portunus-uring against HAProxy, nginx stream, socat and no
# forwarder at all, on 127.0.0.1, subjects interleaved round-robin, unpinned and pinned
# (forwarder on CPU 1, load and backends on CPU 0). This script only installs what is
# missing, then hands over to bench.py, which does everything else and whose top (or
# --help) says what each subject, workload and option means.
#
#   Benchmarks/peers/run.sh [--rounds N] [--duration SECS] [--binary PATH] [--out DIR]
#                           [--only SUBJECTS] [--workloads WORKLOADS]
#                           [--topology unpinned|pinned|both]
#
# Quick check without the portunus binary:
#   Benchmarks/peers/run.sh --rounds 1 --duration 2 --only direct,haproxy,socat
# Re-render an old run: python3 Benchmarks/peers/report.py Benchmarks/results/<ts>
#
# Exit status: 0 all samples ok, 2 some samples failed (the report is still written),
# 1 the run could not start or continue.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

ensure_packages() {
    # Check before touching apt so a second run neither updates nor installs.
    local -a missing=()
    local pkg
    for pkg in haproxy nginx libnginx-mod-stream iperf3 wrk socat dnsmasq-base sockperf; do
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

# Prints an interpreter that has matplotlib, or plain python3 (the report then writes
# summary.md and says why chart.png is missing). bench.py itself needs only the
# standard library, so either runs it.
python_with_matplotlib() {
    python3 -c 'import matplotlib' 2>/dev/null && { echo python3; return 0; }
    log "matplotlib missing: trying pip, then Debian's python3-matplotlib"
    if python3 -m pip install --quiet matplotlib >&2 && python3 -c 'import matplotlib' 2>/dev/null; then
        echo python3
        return 0
    fi
    # Debian's package serves Debian's interpreter, which may not be the python3 on PATH.
    if dpkg -s python3-matplotlib >/dev/null 2>&1 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-matplotlib >&2; }; then
        /usr/bin/python3 -c 'import matplotlib' 2>/dev/null && { echo /usr/bin/python3; return 0; }
    fi
    echo python3
}

ensure_packages
PYTHON=$(python_with_matplotlib)
exec "$PYTHON" "$HERE/bench.py" "$@"
