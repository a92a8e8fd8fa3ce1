import PortunusProxyProtocol
import Testing

/// Bytes from a hex string; spaces and newlines are ignored so vectors can be
/// laid out field by field.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd hex digit count in test vector")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The bytes of an ASCII string (v1 vectors).
func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The v2 signature, written out from spec section 2.2 (not taken from the
/// module, so a typo there cannot hide behind the same typo here).
let signatureHex = "0D0A0D0A 000D0A51 5549540A"

func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> ProxyAddress {
    ProxyAddress(ipv4: (a, b, c, d), port: port)
}

/// An IPv6 address from its eight 16-bit groups.
func v6(_ groups: [UInt16], port: UInt16) -> ProxyAddress {
    precondition(groups.count == 8)
    let octets = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    return ProxyAddress(ipv6: octets, port: port)!
}

/// `::ffff:a.b.c.d`.
func mapped(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) -> ProxyAddress {
    v6([0, 0, 0, 0, 0, 0xFFFF, UInt16(a) << 8 | UInt16(b), UInt16(c) << 8 | UInt16(d)], port: port)
}

extension Result {
    var value: Success? { try? get() }
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// SplitMix64: a tiny seeded generator so the random round trips are the same
/// on every run and any failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A test case label that prints as the given name in test output.
struct Named<Value: Sendable>: Sendable, CustomTestStringConvertible {
    let name: String
    let value: Value
    init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
    var testDescription: String { name }
}
