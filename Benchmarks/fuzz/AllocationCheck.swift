// Proves the encoders, the inbound reader and the in-place decoder allocate
// nothing, the promise the engine relies on when it reads a balancer's header
// and writes a prelude per connection (see alloc-check.sh). Links against the
// codec as a separate module, as the engine does, and counts every malloc-
// family call (alloc_counter.c) across 100,000 calls of each form.
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
            print("alloc-check: \(name): \(allocations) allocations in 100000 calls")
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

        // The inbound side: a balancer's header read with the reader, decoded
        // in place, and its TLVs relayed. Inputs sit in one pinned area as
        // in the engine; the relay writes into the other buffer.
        let area = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { area.deallocate() }
        func load(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: area[..<bytes.count]).copyBytes(from: bytes)
            return UnsafeRawBufferPointer(rebasing: area[..<bytes.count])
        }
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let v1Line = Array("PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\nGET /".utf8)
        // TCP4 + AUTHORITY, UNIQUE_ID, a GCP PSC id, NOOP and a CRC32C, then payload.
        let v2Header: [UInt8] = signature + [0x21, 0x11, 0x00, 0x39, 0xCB, 0x00, 0x71, 0x07, 0xC0, 0x00, 0x02, 0x01, 0xC8, 0x22, 0x01, 0xBB,
                                             0x02, 0x00, 0x0B] + Array("example.com".utf8)
            + [0x05, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0xE0, 0x00, 0x08, 0x00, 0x37, 0xD5, 0xA1, 0xF3, 0xB2, 0xC4, 0xE6,
               0x04, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0x4D, 0x21, 0x3C, 0xBD] + Array("GET /".utf8)
        func steps(_ step: ProxyHeaderReader.Step) -> Int {
            switch step {
            case .consume(let count): return count
            case .complete(let length): return length
            case .reject: return -1
            }
        }
        func inbound(_ result: InboundDecodeResult) -> Int {
            if case .complete(let header) = result { return header.length + header.tlvs.count }
            return -1
        }
        let uniqueID = Array("ptn-0001".utf8)

        let v1Seen = load(v1Line)
        measure("reader v1, partial and complete") {
            .success(steps(ProxyHeaderReader.next(UnsafeRawBufferPointer(rebasing: v1Seen[..<20]), consumed: 0, limit: 512))
                + steps(ProxyHeaderReader.next(v1Seen, consumed: 20, limit: 512)))
        }
        measure("decodeInbound v1 TCP6") { .success(inbound(ProxyHeader.decodeInbound(v1Seen))) }

        let v2Seen = load(v2Header)
        measure("reader v2, partial, complete and too long") {
            .success(steps(ProxyHeaderReader.next(UnsafeRawBufferPointer(rebasing: v2Seen[..<30]), consumed: 16, limit: 512))
                + steps(ProxyHeaderReader.next(v2Seen, consumed: 30, limit: 512))
                + steps(ProxyHeaderReader.next(v2Seen, consumed: 0, limit: 64)))
        }
        measure("decodeInbound v2 TLVs + CRC32C") { .success(inbound(ProxyHeader.decodeInbound(v2Seen))) }
        measure("decodeInbound errors") {
            .success(inbound(ProxyHeader.decodeInbound(UnsafeRawBufferPointer(rebasing: v2Seen[..<40])))
                + inbound(ProxyHeader.decodeInbound(UnsafeRawBufferPointer(rebasing: v2Seen[1...]))))
        }
        let block = UnsafeRawBufferPointer(rebasing: v2Seen[28..<73])
        measure("encodeV2 passing TLVs, our id + CRC32C") {
            uniqueID.withUnsafeBytes { id in
                ProxyHeader.encodeV2(source: client4, destination: local4, passing: block, uniqueID: id, crc32c: true, into: buffer)
            }
        }
        measure("encodeV2 passing TLVs, no addresses") {
            ProxyHeader.encodeV2(source: nil, destination: nil, passing: block, uniqueID: nil, crc32c: false, into: buffer)
        }

        print("alloc-check: \(failures == 0 ? "PASS" : "FAIL") (sink \(sink))")
        exit(failures == 0 ? 0 : 1)
    }
}
