#!/usr/bin/env bash
# Checks that the PROXY encoders, the inbound reader and decodeInbound never touch the heap.
#
#   Benchmarks/fuzz/alloc-check.sh        both -Onone and -O
#
# Builds Sources/PortunusProxyProtocol as its own module (the engine imports it
# the same way), links AllocationCheck.swift against it together with
# alloc_counter.c, which counts every malloc/calloc/realloc/memalign in the
# process, and fails if any of them allocates. Outside SwiftPM: never touches .build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${ALLOC_CHECK_DIR:-/tmp/portunus-proxy-alloc-check}
swiftc=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
clang=${CLANG:-$(dirname "$swiftc")/clang}

status=0
for opt in -Onone -O; do
    dir="$out/${opt#-}"
    mkdir -p "$dir"
    "$swiftc" $opt -parse-as-library -emit-library -static -emit-module \
        -module-name PortunusProxyProtocol -module-cache-path "$out/module-cache" \
        -emit-module-path "$dir/PortunusProxyProtocol.swiftmodule" \
        "$root"/Sources/PortunusProxyProtocol/*.swift -o "$dir/libPortunusProxyProtocol.a"
    "$clang" -O2 -c "$here/alloc_counter.c" -o "$dir/alloc_counter.o"
    "$swiftc" $opt -parse-as-library -module-cache-path "$out/module-cache" \
        -I "$dir" -L "$dir" -lPortunusProxyProtocol \
        "$here/AllocationCheck.swift" "$dir/alloc_counter.o" \
        -Xlinker -export-dynamic -o "$dir/alloc-check"
    echo "== $opt"
    "$dir/alloc-check" || status=1
done
exit "$status"
