// One `[[rule]]`: where to listen and where to forward (SPEC.md §2-§7).

/// A validated forwarding rule with `[defaults]` already applied.
///
/// Invariants (checked by `ConfigLoader`, asserted by `init`):
/// - `targets` is non-empty and stable-sorted by `priority` (lower first),
///   file order breaking ties, because failover dials in this order (§5);
/// - every target's port range is exactly as wide as `listenPorts`, so
///   listen port `listenPorts.lower + k` forwards to `ports.port(atOffset: k)`;
/// - a rule with more than one target listens on a single port;
/// - a UDP rule has no target with a `proxyProtocol` and no `acceptProxy`;
/// - `acceptProxyTimeout` is positive.
public struct Rule: Sendable, Equatable {
    /// `name`: unique among the rules, never empty.
    public let name: String
    /// `protocol`, or `[defaults].protocol` when the rule omits it.
    public let proto: TransportProtocol
    /// `listen_port` (a one-port range) or `listen_ports`.
    public let listenPorts: PortRange
    /// `target` (one target, priority 0) or `targets`, in dial order.
    public let targets: [Target]
    /// `prefer_ipv6`: put AAAA answers first when resolving DNS targets.
    public let preferIPv6: Bool
    /// `udp_max_flows`: cap on concurrent UDP flows of this rule; >= 1.
    public let udpMaxFlows: Int
    /// `udp_flow_idle_secs`: a UDP flow idle this long in both directions expires.
    public let udpFlowIdle: Duration
    /// `idle_timeout_secs` (an addition to the Portunus schema), or `[defaults]`'s: a
    /// TCP connection with no byte either way for this long is closed. nil: never.
    public let idleTimeout: Duration?
    /// `accept_proxy` (an addition), or `[defaults]`'s for a TCP rule: every client
    /// connection must begin with a PROXY header of this version, whose addresses
    /// stand for the client's. nil: none is expected (Portunus). Always nil on UDP.
    public let acceptProxy: AcceptProxy?
    /// `accept_proxy_timeout_secs` (an addition), or `[defaults]`'s: how long a client
    /// has to send that header. Default 5 s; within 1...``Limits/maxAcceptProxyTimeoutSeconds`` s
    /// from a file. Kept when `acceptProxy` is nil, where it is not used.
    public let acceptProxyTimeout: Duration

    /// `accept_proxy_timeout_secs` when neither the rule nor `[defaults]` sets it.
    public static let defaultAcceptProxyTimeout: Duration = .seconds(5)

    /// Creates a rule. `targets` are put in dial order here (stable sort by
    /// priority), so every `Rule` holds them sorted however it was built.
    /// Traps if the invariants above do not hold: that is a programmer error,
    /// files are validated by `ConfigLoader` first.
    public init(name: String,
                proto: TransportProtocol,
                listenPorts: PortRange,
                targets: [Target],
                preferIPv6: Bool = false,
                udpMaxFlows: Int = 1024,
                udpFlowIdle: Duration = .seconds(60),
                idleTimeout: Duration? = nil,
                acceptProxy: AcceptProxy? = nil,
                acceptProxyTimeout: Duration = Rule.defaultAcceptProxyTimeout) {
        precondition(!targets.isEmpty, "rule \(name) has no targets")
        precondition(targets.count == 1 || listenPorts.count == 1,
                     "rule \(name): several targets need a single listen port")
        precondition(targets.allSatisfy { $0.ports.count == listenPorts.count },
                     "rule \(name): target port ranges must be as wide as the listen range")
        precondition(proto == .tcp || targets.allSatisfy { $0.proxyProtocol == nil },
                     "rule \(name): PROXY protocol is TCP only")
        precondition(proto == .tcp || acceptProxy == nil,
                     "rule \(name): accepting PROXY headers is TCP only")
        precondition(acceptProxyTimeout > .zero, "rule \(name): acceptProxyTimeout must be positive")
        precondition(udpMaxFlows >= 1, "rule \(name): udpMaxFlows must be >= 1")
        self.name = name
        self.proto = proto
        self.listenPorts = listenPorts
        self.targets = Rule.dialOrder(targets)
        self.preferIPv6 = preferIPv6
        self.udpMaxFlows = udpMaxFlows
        self.udpFlowIdle = udpFlowIdle
        self.idleTimeout = idleTimeout
        self.acceptProxy = acceptProxy
        self.acceptProxyTimeout = acceptProxyTimeout
    }

    /// Stable sort by priority. `sort(by:)` is not documented as stable, so
    /// the original position is an explicit tie-breaker.
    static func dialOrder(_ targets: [Target]) -> [Target] {
        targets.enumerated()
            .sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }
            .map(\.element)
    }
}

/// One upstream of a rule.
public struct Target: Sendable, Equatable, CustomStringConvertible {
    /// Address literal or DNS name (resolved by the engine, SPEC.md §6).
    public let host: TargetHost
    /// Upstream port(s); as wide as the rule's listen range.
    public let ports: PortRange
    /// `priority`: lower is dialled first; >= 0; 0 when absent.
    public let priority: Int
    /// `proxy_protocol`: the PROXY prelude to send first; nil sends none.
    public let proxyProtocol: ProxyProtocolVersion?
    /// `proxy_protocol_tlvs` (an addition): copy the TLVs of the client's inbound v2
    /// header (the rule's `accept_proxy`) into this target's v2 header. Default true.
    /// Only `true` (the default) unless `proxyProtocol` is `.v2`: v1 carries no TLVs.
    public let proxyProtocolTLVs: Bool
    /// `proxy_protocol_unique_id` (an addition): add a PP2_TYPE_UNIQUE_ID TLV holding a
    /// 128-bit id of the connection. Default false; only true with `.v2`.
    public let proxyProtocolUniqueID: Bool
    /// `proxy_protocol_crc32c` (an addition): add a PP2_TYPE_CRC32C TLV, the header's
    /// checksum. Default false; only true with `.v2`.
    public let proxyProtocolCRC32C: Bool
    /// Position in the rule's `targets` array (0 for `target = "..."`), so
    /// logs and stats can point at the entry the operator wrote.
    public let fileIndex: Int

    /// Creates a target.
    public init(host: TargetHost,
                ports: PortRange,
                priority: Int = 0,
                proxyProtocol: ProxyProtocolVersion? = nil,
                proxyProtocolTLVs: Bool = true,
                proxyProtocolUniqueID: Bool = false,
                proxyProtocolCRC32C: Bool = false,
                fileIndex: Int = 0) {
        precondition(priority >= 0, "target priority must be >= 0")
        precondition(proxyProtocol == .v2 || (proxyProtocolTLVs && !proxyProtocolUniqueID && !proxyProtocolCRC32C),
                     "target TLV options need proxyProtocol .v2")
        self.host = host
        self.ports = ports
        self.priority = priority
        self.proxyProtocol = proxyProtocol
        self.proxyProtocolTLVs = proxyProtocolTLVs
        self.proxyProtocolUniqueID = proxyProtocolUniqueID
        self.proxyProtocolCRC32C = proxyProtocolCRC32C
        self.fileIndex = fileIndex
    }

    /// `host:port` or `host:lo-hi`, IPv6 bracketed: the form `target = ` takes.
    public var description: String { "\(host):\(ports)" }
}
