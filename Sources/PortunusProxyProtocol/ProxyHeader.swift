// The PROXY protocol, versions 1 and 2, as HAProxy's proxy-protocol.txt
// defines it: a header the forwarder writes to the upstream before any client
// byte, so the backend learns the client's (src, dst) tuple.
//
// Pure Swift standard library: no Foundation, no libc. Encoding writes into
// caller storage and never allocates (the engine calls it once per connection
// into a pinned per-connection buffer); decoding is bytes in, value out, never
// reads past its input, and tells "need more bytes" apart from "invalid".
//
// The inbound side, for a forwarder behind a load balancer that sends PROXY
// headers itself, is allocation-free too: ProxyHeaderReader says how many
// peeked bytes to take off the socket (never a payload byte), decodeInbound
// reads the header in place (TLVs validated, left where they are), and the
// relaying encodeV2(passing:) sends them on to each target.
// Benchmarks/fuzz/alloc-check.sh checks the no-allocation claim, run.sh fuzzes.

/// Namespace for encoding and decoding PROXY protocol headers.
///
/// The encoders are `encodeV1` and `encodeV2` (files `ProxyHeader+V1Encode`
/// and `ProxyHeader+V2Encode`), plus the relaying
/// ``encodeV2(source:destination:passing:uniqueID:crc32c:into:)``
/// (`ProxyHeader+V2Relay`). ``decodeInbound(_:)`` accepts either version
/// without allocating; ``decode(_:)-(UnsafeRawBufferPointer)`` is the same
/// with the TLVs copied out. ``ProxyHeaderReader`` frames a header arriving
/// on a socket.
public enum ProxyHeader {
    /// The longest v1 line, CRLF included (spec section 2.1). A v1 decoder
    /// gives up when no CRLF appears within this many bytes.
    public static let v1MaxLength = 107

    /// The fixed part of a v2 header: signature, version/command, family,
    /// length. The v2 header is always this plus its length field.
    public static let v2FixedLength = 16

    /// Bytes always enough for any header this module encodes without TLVs
    /// (v1 TCP6 is at most 104, v2 TCP6 exactly 52). Larger with TLVs.
    public static let maxLengthWithoutTLVs = 107

    /// The 12-byte v2 signature, `\r\n\r\n\0\r\nQUIT\n`. Chosen by the spec so
    /// that HTTP, TLS, SMTP and others reject it at once.
    static let v2Signature: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A)

    /// The v1 line starts with these 6 bytes.
    static let v1Signature: StaticString = "PROXY "

    /// The shortest valid v1 line, `PROXY UNKNOWN\r\n`: a sound lower bound
    /// for `.needMore` while the version is still v1-or-unknown.
    static let v1MinLength = 15

    /// Encodes a header of the given version: the entry point the engine uses
    /// with a target's configured `proxy_protocol` (`"v1"` / `"v2"`).
    ///
    /// v2 is sent as PROXY over STREAM without TLVs. Writes into `buffer`
    /// and returns the byte count, allocating nothing.
    public static func encode(
        _ version: ProxyVersion,
        source: ProxyAddress,
        destination: ProxyAddress,
        into buffer: UnsafeMutableRawBufferPointer
    ) -> Result<Int, ProxyEncodeError> {
        switch version {
        case .v1: return encodeV1(source: source, destination: destination, into: buffer)
        case .v2: return encodeV2(source: source, destination: destination, into: buffer)
        }
    }

    /// Decodes a v1 or v2 header from the start of `bytes`.
    ///
    /// Reads only `bytes` (at most 107 of them for v1, 16 + length for v2);
    /// whatever follows the header is left for the caller, at offset
    /// `consumed`. Bytes that cannot start a valid header are rejected as
    /// soon as they are seen, as the spec recommends.
    ///
    /// Copies the TLVs into arrays; the engine's allocation-free form is
    /// ``decodeInbound(_:)``, which this calls.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> ProxyDecodeResult {
        switch decodeInbound(bytes) {
        case .complete(let header): return .complete(header.materialize(from: bytes), consumed: header.length)
        case .needMore(let atLeast): return .needMore(atLeast: atLeast)
        case .invalid(let error): return .invalid(error)
        }
    }

    /// Decodes a v1 or v2 header from the start of `bytes` without
    /// allocating: the same checks and answers as
    /// ``decode(_:)-(UnsafeRawBufferPointer)`` (TLVs validated, a `CRC32C`
    /// verified), but the TLVs stay in `bytes` and come back as a range.
    ///
    /// For the engine's accepted connections; ``ProxyHeaderReader`` says
    /// when the bytes in hand are worth decoding.
    public static func decodeInbound(_ bytes: UnsafeRawBufferPointer) -> InboundDecodeResult {
        // `bytes[0]`, not `bytes.first`: the generic `first` allocated in
        // unoptimised builds (alloc-check.sh).
        guard !bytes.isEmpty else { return .needMore(atLeast: v1MinLength) }
        switch bytes[0] {
        case v2Signature.0: return decodeInboundV2(bytes)
        case UInt8(ascii: "P"): return decodeInboundV1(bytes)
        default: return .invalid(.badSignature)
        }
    }

    /// Decodes a v1 or v2 header from any byte collection; see
    /// ``decode(_:)-(UnsafeRawBufferPointer)``. Contiguous collections
    /// (arrays, slices) are read in place.
    public static func decode(_ bytes: some Collection<UInt8>) -> ProxyDecodeResult {
        if let result = bytes.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { decode($0) }
    }
}

// MARK: - Shared decoder helpers

extension ProxyHeader {
    /// True when `bytes` and `signature` agree on every byte both have, so
    /// a signature is refused on its first wrong byte. Shared by both
    /// version decoders; a plain index loop, so nothing depends on the
    /// optimiser specialising a generic algorithm to stay allocation-free.
    static func agreesSoFar(_ bytes: UnsafeRawBufferPointer, with signature: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < min(bytes.count, signature.count) {
            guard bytes[index] == signature[index] else { return false }
            index += 1
        }
        return true
    }
}

// MARK: - Shared encoder helpers

extension ProxyHeader {
    /// The address pair after the IPv4-mapped rule: what family the header
    /// announces and the addresses as they go on the wire.
    enum ResolvedPair {
        case none
        case inet(ProxyAddress, ProxyAddress)
        case inet6(ProxyAddress, ProxyAddress)
    }

    /// Applies the family rules shared by v1 and v2: both absent means
    /// UNKNOWN/UNSPEC; a dual-stack socket reports IPv4 peers as
    /// `::ffff:a.b.c.d`, so when both ends are IPv4 or IPv4-mapped the header
    /// says TCP4 with plain IPv4 addresses; otherwise both must be IPv6.
    static func resolvePair(_ source: ProxyAddress?, _ destination: ProxyAddress?) -> Result<ResolvedPair, ProxyEncodeError> {
        switch (source, destination) {
        case (nil, nil):
            return .success(.none)
        case let (source?, destination?):
            if let source4 = source.unmappedIPv4, let destination4 = destination.unmappedIPv4 {
                return .success(.inet(source4, destination4))
            }
            guard source.family == .ipv6, destination.family == .ipv6 else {
                return .failure(.familyMismatch)
            }
            return .success(.inet6(source, destination))
        default:
            return .failure(.missingAddress)
        }
    }

    /// Runs `encode` once against empty storage to learn the size, then into
    /// an array of exactly that size. Only for the `[UInt8]` conveniences.
    static func encodedBytes(
        _ encode: (UnsafeMutableRawBufferPointer) -> Result<Int, ProxyEncodeError>
    ) -> Result<[UInt8], ProxyEncodeError> {
        let needed: Int
        switch encode(UnsafeMutableRawBufferPointer(start: nil, count: 0)) {
        case .failure(.bufferTooSmall(let size)): needed = size
        case .failure(let error): return .failure(error)
        case .success(let written): needed = written
        }
        var bytes = [UInt8](repeating: 0, count: needed)
        let result = bytes.withUnsafeMutableBytes { encode($0) }
        return result.map { written in
            precondition(written == needed, "encoder wrote a different size than it asked for")
            return bytes
        }
    }
}
