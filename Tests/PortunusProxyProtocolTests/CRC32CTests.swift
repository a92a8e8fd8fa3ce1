@testable import PortunusProxyProtocol
import Testing

@Suite("CRC32C")
struct CRC32CTests {
    // The standard check value (RFC 4960 appendix B's CRC32C over "123456789")
    // and the four 32-byte vectors of RFC 3720 appendix B.4.
    static let vectors: [Named<([UInt8], UInt32)>] = [
        Named("check value 123456789", (Array("123456789".utf8), 0xE306_9283)),
        Named("empty", ([], 0x0000_0000)),
        Named("32 zero bytes", (Array(repeating: 0x00, count: 32), 0x8A91_36AA)),
        Named("32 0xFF bytes", (Array(repeating: 0xFF, count: 32), 0x62A8_AB43)),
        Named("incrementing 0...31", (Array(0...31), 0x46DD_794E)),
        Named("decrementing 31...0", (Array((0...31).reversed()), 0x113F_DB5C)),
    ]

    @Test("matches the published vectors", arguments: vectors)
    func publishedVectors(_ vector: Named<([UInt8], UInt32)>) {
        let (bytes, expected) = vector.value
        #expect(CRC32C.checksum(bytes) == expected)
        #expect(bytes.withUnsafeBytes { CRC32C.checksum($0) } == expected)
    }

    @Test("the literal table is the one the polynomial generates")
    func tableMatchesPolynomial() {
        #expect(CRC32C.table.count == 256)
        for index in 0...255 {
            #expect(CRC32C.table[index] == CRC32C.tableEntry(UInt8(index)), "entry \(index)")
        }
    }

    @Test("feeding in pieces equals one shot, and zeroes(n) equals n zero bytes")
    func incremental() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        for split in 0...bytes.count {
            var crc = CRC32C()
            bytes[..<split].withUnsafeBytes { crc.update($0) }
            bytes[split...].withUnsafeBytes { crc.update($0) }
            #expect(crc.value == CRC32C.checksum(bytes))
        }
        var zeroes = CRC32C()
        zeroes.update(zeroes: 32)
        #expect(zeroes.value == 0x8A91_36AA)
    }
}
