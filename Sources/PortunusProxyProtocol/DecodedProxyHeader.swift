/// A successfully decoded PROXY header (either version), TLVs copied out.
/// The allocation-free form the engine uses is ``InboundProxyHeader``.
public struct DecodedProxyHeader: Sendable, Hashable {
    /// Which version was on the wire.
    public var version: ProxyVersion
    /// `.proxy` for every v1 header; v2 says LOCAL or PROXY.
    public var command: ProxyCommand
    /// `.stream` for v1 TCP4/TCP6, `.unspec` for v1 `UNKNOWN`; v2 says.
    public var transport: ProxyTransport
    /// The announced family, even when the addresses are absent (LOCAL, UNIX).
    public var family: ProxyAddressFamily
    /// The original client, or `nil` when the receiver must use the real
    /// connection endpoints (LOCAL, UNSPEC, v1 `UNKNOWN`, UNIX).
    public var source: ProxyAddress?
    /// The address the client connected to; `nil` whenever `source` is.
    public var destination: ProxyAddress?
    /// v2 TLVs in wire order, the `CRC32C` one included (already verified).
    /// Always empty for v1.
    public var tlvs: [ProxyTLV]

    /// Builds a header value; tests and callers comparing results use it.
    public init(
        version: ProxyVersion,
        command: ProxyCommand = .proxy,
        transport: ProxyTransport,
        family: ProxyAddressFamily,
        source: ProxyAddress? = nil,
        destination: ProxyAddress? = nil,
        tlvs: [ProxyTLV] = []
    ) {
        self.version = version
        self.command = command
        self.transport = transport
        self.family = family
        self.source = source
        self.destination = destination
        self.tlvs = tlvs
    }
}

/// The outcome of `ProxyHeader.decode(_:)`.
public enum ProxyDecodeResult: Sendable, Hashable {
    /// A whole valid header; the payload starts `consumed` bytes into the input.
    case complete(DecodedProxyHeader, consumed: Int)
    /// Everything so far is a valid start of a header, but the input must hold
    /// at least `atLeast` bytes in total (not additional) before it can
    /// decide. Call again with the same bytes plus more.
    case needMore(atLeast: Int)
    /// The bytes can never become a valid header; drop the connection.
    case invalid(ProxyDecodeError)
}
