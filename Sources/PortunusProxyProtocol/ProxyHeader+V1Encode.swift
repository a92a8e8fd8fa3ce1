// Version 1 (text) encoder, spec section 2.1:
//   "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
//   "PROXY UNKNOWN" CRLF            (when the addresses are not known)

extension ProxyHeader {
    /// Writes a v1 header into `buffer` and returns its length in bytes.
    ///
    /// - `TCP4` when both addresses are IPv4 or IPv4-mapped IPv6 (mapped ones
    ///   are written as plain IPv4), `TCP6` when both are IPv6 otherwise; IPv6
    ///   text is RFC 5952 (lowercase, compressed), ports are decimal without
    ///   leading zeros.
    /// - Both `nil`: `PROXY UNKNOWN\r\n`, which tells the backend to use the
    ///   real connection endpoints.
    ///
    /// Allocates nothing. The line is at most 104 bytes; on
    /// `.bufferTooSmall(needed:)` nothing has been written to `buffer`.
    public static func encodeV1(
        source: ProxyAddress?,
        destination: ProxyAddress?,
        into buffer: UnsafeMutableRawBufferPointer
    ) -> Result<Int, ProxyEncodeError> {
        let pair: ResolvedPair
        switch resolvePair(source, destination) {
        case .success(let resolved): pair = resolved
        case .failure(let error): return .failure(error)
        }
        // The exact length depends on the digits of every field, so format
        // into stack scratch first and copy only once we know it fits; this
        // keeps the "nothing written on failure" promise without a sizing pass.
        return withUnsafeTemporaryAllocation(byteCount: v1MaxLength, alignment: 1) { scratch in
            var writer = ByteWriter(scratch)
            writeV1Line(pair, to: &writer)
            let length = writer.offset
            guard buffer.count >= length else { return .failure(.bufferTooSmall(needed: length)) }
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[..<length]))
            return .success(length)
        }
    }

    /// Encodes a v1 header into a new array (tests and tools; the engine
    /// uses the allocation-free `into:` form).
    public static func encodeV1(
        source: ProxyAddress?,
        destination: ProxyAddress?
    ) -> Result<[UInt8], ProxyEncodeError> {
        encodedBytes { encodeV1(source: source, destination: destination, into: $0) }
    }

    private static func writeV1Line(_ pair: ResolvedPair, to writer: inout ByteWriter) {
        writer.write(v1Signature)
        let source: ProxyAddress
        let destination: ProxyAddress
        switch pair {
        case .none:
            // The spec lets the sender omit everything after UNKNOWN.
            writer.write("UNKNOWN\r\n")
            return
        case let .inet(from, to):
            writer.write("TCP4 ")
            (source, destination) = (from, to)
        case let .inet6(from, to):
            writer.write("TCP6 ")
            (source, destination) = (from, to)
        }
        AddressText.write(source, to: &writer)
        writer.write(UInt8(ascii: " "))
        AddressText.write(destination, to: &writer)
        writer.write(UInt8(ascii: " "))
        writer.writeDecimal(source.port)
        writer.write(UInt8(ascii: " "))
        writer.writeDecimal(destination.port)
        writer.write("\r\n")
    }
}
