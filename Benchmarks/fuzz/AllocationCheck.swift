// Proves the encoders allocate nothing, the promise the engine relies on when
// it writes a prelude per connection (see alloc-check.sh). Links against the
// codec as a separate module, as the engine does, and counts every malloc-
// family call (alloc_counter.c) across 100,000 encodes of each form.
import Glibc
import PortunusProxyProtocol

@main
struct AllocationCheck {
    static func main() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "portunus_allocation_count") else {
            print("alloc-check: counter not linked (need -export-dynamic)")
            exit(2)
        }
        let counter = symbol.assumingMemoryBound(to: Int.self)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }

        // Inputs built before measuring, as the engine builds them from
        // sockaddrs it already holds.
        let client4 = ProxyAddress(ipv4: (203, 0, 113, 7), port: 51_234)
        let local4 = ProxyAddress(ipv4: 0xC000_0201, port: 443)
        let in6: [UInt8] = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let client6 = in6.withUnsafeBytes { ProxyAddress(ipv6: $0, port: 40_000)! }
        let local6 = ProxyAddress(ipv6High: 0xFE80_0000_0000_0000, low: 0x0000_0000_0000_0001, port: 8443)
        let mapped = ProxyAddress(ipv6High: 0, low: 0x0000_FFFF_0A00_0001, port: 5000)
        let tlvs: [ProxyTLV] = [.authority("example.com"), .uniqueID([1, 2, 3, 4]), .noop(count: 3)]

        var failures = 0
        var sink = 0
        func measure(_ name: String, _ body: () -> Result<Int, ProxyEncodeError>) {
            for _ in 0..<16 { _ = body() } // first-use set-up (lazy globals) happens here
            let before = counter.pointee
            for _ in 0..<100_000 {
                if case .success(let length) = body() { sink &+= length } else { sink &-= 1 }
            }
            let allocations = counter.pointee - before
            print("alloc-check: \(name): \(allocations) allocations in 100000 encodes")
            if allocations != 0 { failures += 1 }
        }

        measure("v1 TCP4") { ProxyHeader.encodeV1(source: client4, destination: local4, into: buffer) }
        measure("v1 TCP6") { ProxyHeader.encodeV1(source: client6, destination: local6, into: buffer) }
        measure("v1 mapped pair") { ProxyHeader.encodeV1(source: mapped, destination: mapped, into: buffer) }
        measure("v1 UNKNOWN") { ProxyHeader.encodeV1(source: nil, destination: nil, into: buffer) }
        measure("v2 TCP4") { ProxyHeader.encodeV2(source: client4, destination: local4, into: buffer) }
        measure("v2 TCP6") { ProxyHeader.encodeV2(source: client6, destination: local6, into: buffer) }
        measure("v2 LOCAL") { ProxyHeader.encodeV2(command: .local, source: nil, destination: nil, into: buffer) }
        measure("v2 TLVs + CRC32C") {
            ProxyHeader.encodeV2(source: client4, destination: local4, tlvs: tlvs, crc32c: true, into: buffer)
        }
        measure("encode(.v1)") { ProxyHeader.encode(.v1, source: client6, destination: local6, into: buffer) }
        measure("encode(.v2)") { ProxyHeader.encode(.v2, source: client4, destination: local4, into: buffer) }
        measure("errors") {
            let small = UnsafeMutableRawBufferPointer(rebasing: buffer[..<10])
            _ = ProxyHeader.encodeV1(source: client4, destination: local6, into: buffer)
            return ProxyHeader.encodeV2(source: client4, destination: local4, into: small)
        }
        measure("address from in6_addr bytes") {
            in6.withUnsafeBytes { .success(Int(ProxyAddress(ipv6: $0, port: 1)!.port)) }
        }

        print("alloc-check: \(failures == 0 ? "PASS" : "FAIL") (sink \(sink))")
        exit(failures == 0 ? 0 : 1)
    }
}
