import PortunusConfig
import PortunusProxyProtocol
import PortunusRing

/// What every worker forwards, compiled once from the validated configuration so that
/// no worker re-reads strings: one entry per listen port, each with its targets (an
/// address, or a DNS name and a port) in priority order, then file order.
public struct ForwardingPlan: Sendable {
    struct Listener: Sendable {
        /// Index into ``ruleNames``.
        let rule: Int
        let port: UInt16
        /// Indices into ``endpoints``, in dialling order.
        let endpoints: Range<Int>
    }

    public let ruleNames: [String]
    /// TCP listen ports.
    let listeners: [Listener]
    /// UDP listen ports (SPEC.md §7).
    let udpListeners: [Listener]
    /// Per rule: `udp_max_flows` (UDP rules; 0 for TCP rules) and the flow idle window.
    let ruleUDPMaxFlows: [Int]
    let ruleUDPIdleMs: [Int64]
    /// The address each endpoint dials; for a DNS-named endpoint, the unspecified
    /// IPv4 address with the endpoint's port (the address comes from the resolver).
    let endpoints: [SocketAddress]
    /// Per endpoint: index into ``names`` for a DNS-named target, -1 for an address.
    let endpointName: [Int32]
    /// Per endpoint, as the operator wrote it, with the port: `db.internal:5432`, `10.0.0.5:22`.
    public let endpointLabels: [String]
    /// The DNS names of all targets, each once (the resolver's list).
    public let names: [String]
    /// Per name, the rules that use it (comma-separated), for the resolver's logs.
    public let nameRules: [String]
    /// Per rule: `prefer_ipv6` (AAAA answers dialled before A).
    let rulePreferIPv6: [Bool]
    /// The PROXY header each endpoint wants (nil: none), parallel to `endpoints`.
    let endpointPrelude: [ProxyVersion?]
    /// Per rule: close a connection after this long without a byte either way; 0: never.
    let ruleIdleTimeoutMs: [Int]
    /// Per rule: the PROXY header versions taken from a load balancer in front (nil:
    /// none, the client is who connected), and how long its header may take (ms).
    let ruleAcceptProxy: [AcceptProxy?]
    let ruleAcceptProxyTimeoutMs: [Int]
    /// Per endpoint: what its outbound v2 header carries besides the addresses.
    let endpointPreludeOptions: [PreludeOptions]

    /// The TLVs of an outbound v2 header (a target's `proxy_protocol_*` keys).
    struct PreludeOptions: Sendable, Equatable {
        /// Pass on the TLVs of the client's inbound header (`proxy_protocol_tlvs`).
        var passTLVs = true
        /// Add PP2_TYPE_UNIQUE_ID, a 128-bit id of the connection (`proxy_protocol_unique_id`).
        var uniqueID = false
        /// Add PP2_TYPE_CRC32C (`proxy_protocol_crc32c`).
        var crc32c = false
    }

    /// Some rule reads an inbound PROXY header.
    var acceptsProxy: Bool { ruleAcceptProxy.contains { $0 != nil } }

    /// Listen ports, one entry each (a port range is several), for the simulator.
    @_spi(Simulation) public var listenerPorts: [UInt16] { listeners.map(\.port) }
    /// The rule of each listener.
    @_spi(Simulation) public var listenerRules: [Int] { listeners.map(\.rule) }
    /// The endpoints each listener dials, as indices into the endpoint list.
    @_spi(Simulation) public var listenerEndpoints: [Range<Int>] { listeners.map(\.endpoints) }
    /// Whether each endpoint is sent a PROXY header first.
    @_spi(Simulation) public var endpointSendsPrelude: [Bool] { endpointPrelude.map { $0 != nil } }

    /// Compiles `config` (validated: every rule it holds can be forwarded).
    public static func compile(_ config: Configuration) -> ForwardingPlan {
        var listeners: [Listener] = []
        var udpListeners: [Listener] = []
        var endpoints: [SocketAddress] = []
        var endpointPrelude: [ProxyVersion?] = []
        var endpointOptions: [PreludeOptions] = []
        var endpointName: [Int32] = []
        var labels: [String] = []
        var names: [String] = []
        var nameIndex: [String: Int] = [:]
        var nameRules: [[String]] = []
        for (ruleIndex, rule) in config.rules.enumerated() {
            for offset in 0..<rule.listenPorts.count {
                let first = endpoints.count
                for target in rule.targets {
                    // A listen range maps by offset onto a target range of the same width
                    // (validation guarantees the widths match).
                    let port = target.ports.count > 1 ? target.ports.port(atOffset: offset) : target.ports.lower
                    endpointPrelude.append(target.proxyProtocol.map { $0 == .v1 ? ProxyVersion.v1 : .v2 })
                    endpointOptions.append(PreludeOptions(passTLVs: target.proxyProtocolTLVs, uniqueID: target.proxyProtocolUniqueID,
                                                          crc32c: target.proxyProtocolCRC32C))
                    labels.append("\(target.host):\(port)")
                    switch target.host {
                    case let .ipv4(address):
                        endpoints.append(SocketAddress(ipv4: address.octets, port: port))
                        endpointName.append(-1)
                    case let .ipv6(address):
                        endpoints.append(SocketAddress(ipv6: address.octets, port: port))
                        endpointName.append(-1)
                    case let .name(name):
                        let index = nameIndex[name] ?? names.count
                        if index == names.count {
                            nameIndex[name] = index
                            names.append(name)
                            nameRules.append([])
                        }
                        if nameRules[index].last != rule.name { nameRules[index].append(rule.name) }
                        endpoints.append(SocketAddress(ipv4: [0, 0, 0, 0], port: port))
                        endpointName.append(Int32(index))
                    }
                }
                let listener = Listener(rule: ruleIndex, port: rule.listenPorts.port(atOffset: offset), endpoints: first..<endpoints.count)
                if rule.proto == .tcp { listeners.append(listener) } else { udpListeners.append(listener) }
            }
        }
        // At most a year (validated): the milliseconds cannot overflow.
        let idle = config.rules.map { rule in rule.idleTimeout.map { Int($0.components.seconds) * 1000 } ?? 0 }
        let udpIdle = config.rules.map { rule in Int64(rule.udpFlowIdle.components.seconds) * 1000 }
        return ForwardingPlan(ruleNames: config.rules.map(\.name), listeners: listeners, udpListeners: udpListeners,
                              ruleUDPMaxFlows: config.rules.map { $0.proto == .udp ? $0.udpMaxFlows : 0 }, ruleUDPIdleMs: udpIdle,
                              endpoints: endpoints,
                              endpointName: endpointName, endpointLabels: labels, names: names,
                              nameRules: nameRules.map { $0.joined(separator: ",") },
                              rulePreferIPv6: config.rules.map(\.preferIPv6),
                              endpointPrelude: endpointPrelude, ruleIdleTimeoutMs: idle,
                              ruleAcceptProxy: config.rules.map { $0.proto == .tcp ? $0.acceptProxy : nil },
                              ruleAcceptProxyTimeoutMs: config.rules.map { rule in
                                  let (seconds, attoseconds) = rule.acceptProxyTimeout.components
                                  return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
                              },
                              endpointPreludeOptions: endpointOptions)
    }
}
