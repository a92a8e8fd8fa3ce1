// Version 1 (text) decoder, spec section 2.1. Strict on purpose: the spec says
// any sequence that does not exactly match must make the receiver abort.

extension ProxyHeader {
    static func decodeInboundV1(_ bytes: UnsafeRawBufferPointer) -> InboundDecodeResult {
        let signatureMatches = v1Signature.withUTF8Buffer { agreesSoFar(bytes, with: UnsafeRawBufferPointer($0)) }
        guard signatureMatches else { return .invalid(.badSignature) }

        let lineEnd: Int
        switch findLineEnd(bytes) {
        case .found(let index): lineEnd = index
        case .needMore(let atLeast): return .needMore(atLeast: atLeast)
        case .invalid(let error): return .invalid(error)
        }
        let line = UnsafeRawBufferPointer(rebasing: bytes[v1Signature.utf8CodeUnitCount..<lineEnd])
        switch parseV1Fields(line, length: lineEnd + 2) {
        case .success(let header): return .complete(header)
        case .failure(let error): return .invalid(error)
        }
    }

    private enum LineEnd {
        case found(Int)
        case needMore(Int)
        case invalid(ProxyDecodeError)
    }

    /// Finds the CR of the terminating CRLF, looking at no more than the
    /// first 107 bytes. The spec forbids a lone CR or LF as a line end, and
    /// neither can appear inside a valid line, so either is rejected at once.
    private static func findLineEnd(_ bytes: UnsafeRawBufferPointer) -> LineEnd {
        let limit = min(bytes.count, v1MaxLength)
        var index = v1Signature.utf8CodeUnitCount
        while index < limit {
            switch bytes[index] {
            case UInt8(ascii: "\n"):
                return .invalid(.strayLineBreak)
            case UInt8(ascii: "\r"):
                // The LF must also fall within the 107 bytes.
                guard index + 1 < v1MaxLength else { return .invalid(.missingCRLF) }
                guard index + 1 < bytes.count else { return .needMore(index + 2) }
                guard bytes[index + 1] == UInt8(ascii: "\n") else { return .invalid(.strayLineBreak) }
                return .found(index)
            default:
                index += 1
            }
        }
        guard bytes.count < v1MaxLength else { return .invalid(.missingCRLF) }
        return .needMore(max(bytes.count + 1, v1MinLength))
    }

    /// Parses the line between `PROXY ` and CRLF; `length` is the whole
    /// header's, CRLF included.
    private static func parseV1Fields(_ line: UnsafeRawBufferPointer, length: Int) -> Result<InboundProxyHeader, ProxyDecodeError> {
        var fields = FieldCursor(line)
        guard let protocolField = fields.next() else { return .failure(.malformedLine) }
        let protocolWord = UnsafeRawBufferPointer(rebasing: line[protocolField])
        let family: ProxyAddressFamily
        if matches(protocolWord, "UNKNOWN") {
            // "the receiver must ignore anything presented before the CRLF".
            return .success(InboundProxyHeader(version: .v1, transport: .unspec, family: .unspec, length: length))
        } else if matches(protocolWord, "TCP4") {
            family = .inet
        } else if matches(protocolWord, "TCP6") {
            family = .inet6
        } else {
            return .failure(.unknownProtocol)
        }

        // Exactly four non-empty fields separated by single spaces: an empty
        // field means a doubled or trailing space.
        guard let sourceField = fields.next(), let destinationField = fields.next(),
              let sourcePortField = fields.next(), let destinationPortField = fields.next(),
              fields.atEnd
        else { return .failure(.malformedLine) }

        guard let source = parseV1Address(UnsafeRawBufferPointer(rebasing: line[sourceField]), family),
              let destination = parseV1Address(UnsafeRawBufferPointer(rebasing: line[destinationField]), family)
        else { return .failure(.badAddress) }
        guard let sourcePort = AddressText.parsePort(UnsafeRawBufferPointer(rebasing: line[sourcePortField])),
              let destinationPort = AddressText.parsePort(UnsafeRawBufferPointer(rebasing: line[destinationPortField]))
        else { return .failure(.badPort) }

        var sourceAddress = source
        var destinationAddress = destination
        sourceAddress.port = sourcePort
        destinationAddress.port = destinationPort
        return .success(InboundProxyHeader(
            version: .v1, transport: .stream, family: family,
            source: sourceAddress, destination: destinationAddress, length: length
        ))
    }

    /// Parses one address in the format the protocol word announced (port 0;
    /// the caller fills it in).
    private static func parseV1Address(_ text: UnsafeRawBufferPointer, _ family: ProxyAddressFamily) -> ProxyAddress? {
        if family == .inet {
            return AddressText.parseIPv4(text).map { ProxyAddress(ipv4: $0, port: 0) }
        }
        return AddressText.parseIPv6(text).map { ProxyAddress(ipv6High: $0.high, low: $0.low, port: 0) }
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        word.withUTF8Buffer { $0.elementsEqual(bytes) }
    }

    /// Splits a line on single spaces, yielding index ranges. Yields an empty
    /// range for a doubled space, which the caller rejects.
    private struct FieldCursor {
        let line: UnsafeRawBufferPointer
        private var position = 0
        private(set) var atEnd = false

        init(_ line: UnsafeRawBufferPointer) { self.line = line }

        mutating func next() -> Range<Int>? {
            guard !atEnd else { return nil }
            let start = position
            while position < line.count && line[position] != UInt8(ascii: " ") { position += 1 }
            let field = start..<position
            if position == line.count {
                atEnd = true
            } else {
                position += 1 // skip the separator
            }
            guard !field.isEmpty else { return nil }
            return field
        }
    }
}
