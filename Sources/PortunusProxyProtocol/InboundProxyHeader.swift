/// A validated PROXY header (either version) as it sits in the caller's
/// bytes: the fixed fields and addresses read out, the TLVs left in place.
///
/// What ``ProxyHeader/decodeInbound(_:)`` returns, so the engine can read a
/// load balancer's header on the hot path without allocating; ``tlvs`` is
/// the raw block to hand to
/// ``ProxyHeader/encodeV2(source:destination:passing:uniqueID:crc32c:into:)``.
public struct InboundProxyHeader: Sendable, Hashable {
    /// v1 (text) or v2 (binary).
    public var version: ProxyVersion
    /// LOCAL is the balancer's own connection (a health check): serve it
    /// with the real endpoints. Always `.proxy` for v1.
    public var command: ProxyCommand
    /// STREAM or DGRAM for v2 with addresses; UNSPEC for v2 UNSPEC and
    /// v1 `UNKNOWN`; v1 TCP4/TCP6 read as STREAM.
    public var transport: ProxyTransport
    /// What the header announced, also when it brings no addresses.
    public var family: ProxyAddressFamily
    /// The real client. `nil` for v2 LOCAL (whatever block it carries),
    /// v2 UNSPEC, v2 UNIX (``ProxyAddress`` holds no paths) and v1
    /// `UNKNOWN`: then the connection's own endpoints stand.
    public var source: ProxyAddress?
    /// What the client connected to; `nil` exactly when `source` is.
    public var destination: ProxyAddress?
    /// Bytes the header takes from the start of the input; the payload
    /// starts here.
    public var length: Int
    /// Where the v2 TLV block lies in the decoded bytes (between the address
    /// block and `length`). Every entry is well formed, and a `CRC32C` among
    /// them has been checked against the header. Empty (`length..<length`)
    /// for v1 and for v2 without TLVs.
    public var tlvs: Range<Int>

    /// Builds a header value; tests and callers comparing results use it.
    public init(
        version: ProxyVersion,
        command: ProxyCommand = .proxy,
        transport: ProxyTransport,
        family: ProxyAddressFamily,
        source: ProxyAddress? = nil,
        destination: ProxyAddress? = nil,
        length: Int,
        tlvs: Range<Int>? = nil
    ) {
        self.version = version
        self.command = command
        self.transport = transport
        self.family = family
        self.source = source
        self.destination = destination
        self.length = length
        self.tlvs = tlvs ?? length..<length
    }

    /// The TLVs at ``tlvs`` copied out of `bytes` (the same bytes this header
    /// was decoded from) in wire order, `CRC32C` included. Allocates; for
    /// tools, tests and ``ProxyHeader/decode(_:)-(UnsafeRawBufferPointer)``.
    public func materializeTLVs(from bytes: UnsafeRawBufferPointer) -> [ProxyTLV] {
        ProxyTLV.materialize(bytes, tlvs)
    }

    /// The full value ``ProxyHeader/decode(_:)-(UnsafeRawBufferPointer)``
    /// returns for the same bytes.
    public func materialize(from bytes: UnsafeRawBufferPointer) -> DecodedProxyHeader {
        DecodedProxyHeader(
            version: version, command: command, transport: transport, family: family,
            source: source, destination: destination, tlvs: materializeTLVs(from: bytes)
        )
    }
}

/// The outcome of ``ProxyHeader/decodeInbound(_:)``: the same three answers
/// as ``ProxyDecodeResult``, with nothing copied out of the input.
public enum InboundDecodeResult: Sendable, Hashable {
    /// A whole valid header; the payload starts at `header.length`.
    case complete(InboundProxyHeader)
    /// Everything so far is a valid start of a header, but the input must
    /// hold at least `atLeast` bytes in total before it can decide. Every
    /// byte given so far belongs to the header (should it turn out valid),
    /// which is what lets ``ProxyHeaderReader`` take them off the socket.
    case needMore(atLeast: Int)
    /// The bytes can never become a valid header; drop the connection.
    case invalid(ProxyDecodeError)
}
