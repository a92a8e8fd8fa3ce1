import Foundation
import Testing
@testable import PortunusStats
import TestSupport

/// Our BLAKE3 against the `b3sum` Debian package (the reference Rust implementation),
/// on inputs that cross every boundary the tree mode has: within a block, at 64-byte
/// blocks, at 1,024-byte chunks, and at subtree merges (2, 3, 4, 5, 8 chunks and more).
@Suite struct BLAKE3Tests {
    static func b3sum(_ input: [UInt8], length: Int) throws -> String {
        let result = try runFiltering(["/usr/bin/b3sum", "--no-names", "--length", "\(length)", "-"], input: input)
        #expect(result.exitCode == 0)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func hashesMatchB3sumAcrossBlockChunkAndTreeBoundaries() throws {
        let lengths = [0, 1, 3, 63, 64, 65, 127, 128, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 3073,
                       4096, 4097, 5120, 5121, 8192, 8193, 16384, 31744, 102_400]
        for length in lengths {
            // The official test vectors' input: byte i is i mod 251.
            let input = (0..<length).map { UInt8($0 % 251) }
            #expect(Self.hex(BLAKE3.hash(input)) == (try Self.b3sum(input, length: 32)), "input of \(length) bytes")
        }
    }

    /// Longer output than one block (the XOF counter), as b3sum --length gives it.
    @Test func extendedOutputMatchesB3sum() throws {
        let input = Array("portunus".utf8)
        #expect(Self.hex(BLAKE3.hash(input, length: 131)) == (try Self.b3sum(input, length: 131)))
    }

    /// The rule id Portunus shows: the first 8 bytes, little-endian, of the name's hash.
    @Test func ruleIDIsTheFirstEightBytesLittleEndian() throws {
        for name in ["web", "udp", "ssh-bastion", "règle-ünïcode", String(repeating: "n", count: 1500)] {
            let digest = try Self.b3sum(Array(name.utf8), length: 8)
            var expected: UInt64 = 0
            for i in stride(from: 14, through: 0, by: -2) {
                let byte = UInt64(digest[digest.index(digest.startIndex, offsetBy: i)..<digest.index(digest.startIndex, offsetBy: i + 2)], radix: 16)!
                expected = expected << 8 | byte
            }
            #expect(BLAKE3.ruleID(name) == expected, "rule \(name)")
        }
    }
}
