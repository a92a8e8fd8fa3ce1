#!/usr/bin/env bash
# Fuzzes the PROXY protocol decoder, the inbound reader and decodeInbound (and,
# through them, the encoders, the relaying one included).
#
#   Benchmarks/fuzz/run.sh [SECONDS]      default 60
#
# Compiles Sources/PortunusProxyProtocol/*.swift plus ProxyDecodeFuzz.swift with
# libFuzzer and AddressSanitizer into $FUZZ_DIR (default /tmp/portunus-proxy-fuzz),
# seeds a corpus with one header of every form, and runs for SECONDS. Exits
# non-zero when the fuzzer finds a crash (the reproducer is saved as
# $FUZZ_DIR/crash-*). Works outside SwiftPM so it never touches .build.
# FUZZ_OPT=-O fuzzes the optimised build instead of the default -Onone, which
# keeps Swift's bounds and overflow checks on inside the standard library.
set -euo pipefail

seconds=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FUZZ_DIR:-/tmp/portunus-proxy-fuzz}
swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
opt=${FUZZ_OPT:--Onone}

mkdir -p "$out/corpus" "$out/build"

echo "== compiling ($opt, -sanitize=fuzzer,address)"
"$swiftc" $opt -g -sanitize=fuzzer,address -parse-as-library \
    -module-name ProxyFuzz -module-cache-path "$out/build/module-cache" \
    "$root"/Sources/PortunusProxyProtocol/*.swift "$here/ProxyDecodeFuzz.swift" \
    -o "$out/proxy-decode-fuzz"

# Seeds: one valid header of each form, so the fuzzer starts deep inside the
# parser instead of having to discover "PROXY " and the v2 signature.
sig='\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a'
seed() { printf "$2" > "$out/corpus/seed-$1"; }
seed v1-tcp4 'PROXY TCP4 1.2.3.4 5.6.7.8 12345 80\r\n'
seed v1-tcp6 'PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 40000 443\r\n'
seed v1-unknown 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'
seed v2-tcp4 "$sig"'\x21\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x30\x39\x00\x50'
seed v2-tcp6 "$sig"'\x21\x21\x00\x24\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x9c\x40\x01\xbb'
seed v2-local "$sig"'\x20\x00\x00\x00'
seed v2-udp4 "$sig"'\x21\x12\x00\x0c\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x35\x14\xe9'
seed v2-tlvs "$sig"'\x21\x11\x00\x26\x01\x02\x03\x04\x05\x06\x07\x08\x30\x39\x00\x50\x02\x00\x0bexample.com\x05\x00\x04\xde\xad\xbe\xef\x04\x00\x02\x00\x00'
seed v2-crc "$sig"'\x21\x11\x00\x13\x01\x02\x03\x04\x05\x06\x07\x08\x30\x39\x00\x50\x03\x00\x04\x5a\xf1\x16\xb6'
# As cloud balancers send them: AWS (0xEA, VPC endpoint id), Azure (0xEE,
# LinkID), GCP (0xE0, PSC connection id), each with a payload behind.
seed v2-aws "$sig"'\x21\x11\x00\x26\xc6\x33\x64\x16\x0a\x00\x01\x14\x9d\x78\x01\xbb\xea\x00\x17\x01vpce-08d2bf15fac5001c9GET / HTTP/1.1\r\n'
seed v2-azure "$sig"'\x21\x11\x00\x14\x0a\x00\x00\x01\x0a\x00\x00\x02\x13\x88\x1f\x90\xee\x00\x05\x01\x3c\x0a\x00\x21\x16\x03\x01'
seed v2-gcp "$sig"'\x21\x11\x00\x17\x0a\x80\x00\x09\x0a\x80\x00\x02\x87\x07\x00\x50\xe0\x00\x08\x00\x37\xd5\xa1\xf3\xb2\xc4\xe6PROXY '
seed v2-everything "$sig"'\x21\x11\x00\x39\xcb\x00\x71\x07\xc0\x00\x02\x01\xc8\x22\x01\xbb\x02\x00\x0bexample.com\x05\x00\x04\xde\xad\xbe\xef\xe0\x00\x08\x00\x37\xd5\xa1\xf3\xb2\xc4\xe6\x04\x00\x03\x00\x00\x00\x03\x00\x04\x4d\x21\x3c\xbd\x00\x01\x1f\x40'

cat > "$out/proxy.dict" <<'DICT'
"PROXY "
"TCP4 "
"TCP6 "
"UNKNOWN"
"\x0d\x0a"
"::ffff:"
"::"
"255.255.255.255"
"65535"
"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
"\x21\x11\x00\x0c"
"\x21\x21\x00\x24"
"\x20\x00\x00\x00"
"\x03\x00\x04"
"\x05\x00\x04"
"\xea\x00\x17\x01"
"\xee\x00\x05\x01"
"\xe0\x00\x08"
DICT

echo "== fuzzing for ${seconds}s"
# Swift's own crash backtracer would catch the trap first and, under ASan, can
# hang or misreport; leave crash reporting to libFuzzer.
export SWIFT_BACKTRACE=enable=no
set +e
"$out/proxy-decode-fuzz" "$out/corpus" \
    -dict="$out/proxy.dict" \
    -max_total_time="$seconds" \
    -max_len=4096 \
    -print_final_stats=1 \
    -artifact_prefix="$out/" \
    2>&1 | tee "$out/last-run.log"
status=${PIPESTATUS[0]}
set -e

runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/last-run.log" | awk '{print $2}' | tail -1)
echo "== exit status $status, ${runs:-unknown} executions, corpus $(ls "$out/corpus" | wc -l) inputs"
exit "$status"
