/// A forward-only cursor over caller-owned storage.
///
/// The encoders size the header first and fail with `.bufferTooSmall` before
/// writing, so the preconditions here are assertions on our own arithmetic,
/// not input validation: a trip means an encoder bug, never a peer's doing.
struct ByteWriter {
    let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        self.buffer = buffer
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        precondition(offset < buffer.count, "ByteWriter overflow: encoder sized the header wrongly")
        buffer[offset] = byte
        offset += 1
    }

    @inline(__always)
    mutating func write(bigEndian value: UInt16) {
        write(UInt8(truncatingIfNeeded: value >> 8))
        write(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func write(bigEndian value: UInt32) {
        write(bigEndian: UInt16(truncatingIfNeeded: value >> 16))
        write(bigEndian: UInt16(truncatingIfNeeded: value))
    }

    /// Writes an ASCII string literal; `StaticString` keeps it allocation-free.
    mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { bytes in
            for byte in bytes { write(byte) }
        }
    }

    @inline(__always)
    mutating func write(bigEndian value: UInt64) {
        write(bigEndian: UInt32(truncatingIfNeeded: value >> 32))
        write(bigEndian: UInt32(truncatingIfNeeded: value))
    }

    /// Copies raw bytes. Deliberately not generic over `Sequence`: without
    /// whole-module optimisation (debug builds) an unspecialised generic loop
    /// allocates per element, which the allocation check caught.
    mutating func write(raw bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        precondition(buffer.count - offset >= bytes.count, "ByteWriter overflow: encoder sized the header wrongly")
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]).copyMemory(from: bytes)
        offset += bytes.count
    }

    /// Writes `value` in decimal without leading zeros (`0` is written as "0"),
    /// the only form the v1 header allows.
    mutating func writeDecimal(_ value: UInt16) {
        var divisor: UInt16 = 10_000
        while divisor > 1 && value < divisor { divisor /= 10 }
        var rest = value
        while divisor > 0 {
            write(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Writes `value` in lowercase hexadecimal without leading zeros, as
    /// RFC 5952 section 4.1 and 4.3 require for IPv6 groups.
    mutating func writeHex(_ value: UInt16) {
        var shift: UInt16 = 12
        while shift > 0 && value >> shift == 0 { shift -= 4 }
        while true {
            let nibble = UInt8(truncatingIfNeeded: (value >> shift) & 0xF)
            write(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
            if shift == 0 { break }
            shift -= 4
        }
    }
}
