import PortunusConfig
import PortunusProxyProtocol
import PortunusRing

/// What every worker forwards, compiled once from the validated configuration so that
/// no worker re-reads strings: one entry per listen port, each with its targets'
/// socket addresses in the order they are dialled (priority, then file order).
public struct ForwardingPlan: Sendable {
    struct Listener: Sendable {
        /// Index into ``ruleNames``.
        let rule: Int
        let port: UInt16
        /// Indices into ``endpoints``, in dialling order.
        let endpoints: Range<Int>
    }

    public let ruleNames: [String]
    let listeners: [Listener]
    let endpoints: [SocketAddress]
    /// The PROXY header each endpoint wants (nil: none), parallel to `endpoints`.
    let endpointPrelude: [ProxyVersion?]
    /// Per rule: close a connection after this long without a byte either way; 0: never.
    let ruleIdleTimeoutMs: [Int]

    /// Listen ports, one entry each (a port range is several), for the simulator.
    @_spi(Simulation) public var listenerPorts: [UInt16] { listeners.map(\.port) }
    /// The rule of each listener.
    @_spi(Simulation) public var listenerRules: [Int] { listeners.map(\.rule) }
    /// The endpoints each listener dials, as indices into the endpoint list.
    @_spi(Simulation) public var listenerEndpoints: [Range<Int>] { listeners.map(\.endpoints) }
    /// Whether each endpoint is sent a PROXY header first.
    @_spi(Simulation) public var endpointSendsPrelude: [Bool] { endpointPrelude.map { $0 != nil } }

    /// Compiles `config`; refuses what this version cannot forward yet instead of
    /// silently forwarding it wrongly.
    public static func compile(_ config: Configuration) throws(EngineError) -> ForwardingPlan {
        var listeners: [Listener] = []
        var endpoints: [SocketAddress] = []
        var endpointPrelude: [ProxyVersion?] = []
        for (ruleIndex, rule) in config.rules.enumerated() {
            guard rule.proto == .tcp else {
                throw .unsupported(rule: rule.name, key: "protocol", what: "UDP forwarding")
            }
            for offset in 0..<rule.listenPorts.count {
                let first = endpoints.count
                for (i, target) in rule.targets.enumerated() {
                    // A listen range maps by offset onto a target range of the same width
                    // (validation guarantees the widths match).
                    let port = target.ports.count > 1 ? target.ports.port(atOffset: offset) : target.ports.lower
                    endpointPrelude.append(target.proxyProtocol.map { $0 == .v1 ? ProxyVersion.v1 : .v2 })
                    switch target.host {
                    case let .ipv4(address):
                        endpoints.append(SocketAddress(ipv4: address.octets, port: port))
                    case let .ipv6(address):
                        endpoints.append(SocketAddress(ipv6: address.octets, port: port))
                    case let .name(name):
                        let key = rule.targets.count == 1 ? "target" : "targets[\(i)].host"
                        throw .unsupported(rule: rule.name, key: key, what: "DNS target \"\(name)\"")
                    }
                }
                listeners.append(Listener(rule: ruleIndex, port: rule.listenPorts.port(atOffset: offset), endpoints: first..<endpoints.count))
            }
        }
        // At most a year (validated): the milliseconds cannot overflow.
        let idle = config.rules.map { rule in rule.idleTimeout.map { Int($0.components.seconds) * 1000 } ?? 0 }
        return ForwardingPlan(ruleNames: config.rules.map(\.name), listeners: listeners, endpoints: endpoints,
                              endpointPrelude: endpointPrelude, ruleIdleTimeoutMs: idle)
    }
}
