import PortunusEngine

/// One metric shown per rule, labelled `rule` and `protocol` (plus `reason` for the
/// datagram drops): its Prometheus name, type, HELP text and the ``RuleCounters``
/// field it shows. The one table of per-rule names: the README lists the same.
struct RuleMetric: Sendable {
    enum Kind: Sendable { case counter, gauge }

    let name: String
    let kind: Kind
    let help: String
    /// Labels after `rule` and `protocol`.
    let extraLabels: [(String, String)]
    let value: @Sendable (RuleCounters) -> UInt64

    init(_ name: String, _ kind: Kind, _ help: String, extraLabels: [(String, String)] = [],
         _ value: @escaping @Sendable (RuleCounters) -> UInt64) {
        self.name = name
        self.kind = kind
        self.help = help
        self.extraLabels = extraLabels
        self.value = value
    }

    /// Every field of ``RuleCounters``, each once. Counters follow Prometheus's naming:
    /// base units (bytes), `_total` on counters, one name with a `reason` label for the
    /// kinds of one drop.
    static let all: [RuleMetric] = [
        RuleMetric("portunus_rule_received_bytes_total", .counter,
                   "Payload bytes read from clients and delivered to targets (TCP and UDP; PROXY headers not counted).") { $0.bytesIn },
        RuleMetric("portunus_rule_sent_bytes_total", .counter,
                   "Payload bytes read from targets and delivered to clients (TCP and UDP).") { $0.bytesOut },
        RuleMetric("portunus_rule_connections_total", .counter,
                   "TCP connections accepted and given a connection slot.") { $0.connectionsTotal },
        RuleMetric("portunus_rule_connections_active", .gauge,
                   "TCP connections open now.") { $0.connectionsActive },
        RuleMetric("portunus_rule_connect_failures_total", .counter,
                   "Failed dials of a target: refused, timed out or unreachable, or its PROXY header not delivered.") { $0.connectFailures },
        RuleMetric("portunus_rule_prelude_failures_total", .counter,
                   "PROXY headers not delivered to a target in time (each is also a connect failure).") { $0.preludeFailures },
        RuleMetric("portunus_rule_rejected_connections_total", .counter,
                   "TCP clients accepted and closed at once because no connection slot was free (max_connections).") { $0.rejected },
        RuleMetric("portunus_rule_proxy_in_rejected_total", .counter,
                   "TCP clients of an accept_proxy rule reset for their PROXY header: malformed, of a version the rule "
                       + "does not take, too long, or not complete within accept_proxy_timeout_secs.") { $0.proxyInRejected },
        RuleMetric("portunus_rule_idle_closed_connections_total", .counter,
                   "TCP connections closed by idle_timeout_secs.") { $0.idleClosed },
        RuleMetric("portunus_rule_spliced_halves_total", .counter,
                   "Relay halves the auto path moved to splice as bulk streams.") { $0.splicedHalves },
        RuleMetric("portunus_rule_pipes_discarded_total", .counter,
                   "Splice pipes closed instead of pooled because they were not provably empty.") { $0.pipesDiscarded },
        RuleMetric("portunus_rule_spilled_sends_total", .counter,
                   "Stalled sends whose unsent bytes moved from the shared buffers to the connection's own space.") { $0.spilledSends },
        RuleMetric("portunus_rule_dns_failures_total", .counter,
                   "Connections that found their target's name unresolvable, plus uses of stale answers.") { $0.dnsFailures },
        RuleMetric("portunus_rule_target_failovers_total", .counter,
                   "Transitions of a target of the rule from Healthy to Failed.") { $0.targetFailovers },
        RuleMetric("portunus_rule_received_datagrams_total", .counter,
                   "UDP datagrams relayed from clients to targets.") { $0.datagramsIn },
        RuleMetric("portunus_rule_sent_datagrams_total", .counter,
                   "UDP datagrams relayed from targets to clients.") { $0.datagramsOut },
        RuleMetric("portunus_rule_flows_active", .gauge,
                   "UDP flows open now.") { $0.flowsActive },
        RuleMetric("portunus_rule_icmp_evictions_total", .counter,
                   "UDP flows evicted by an ICMP error (refused, reset, aborted, unreachable).") { $0.icmpEvict },
    ] + dropReasons.map { reason, value in
        RuleMetric(droppedDatagrams, .counter, droppedDatagramsHelp, extraLabels: [("reason", reason)], value)
    }

    static let droppedDatagrams = "portunus_rule_dropped_datagrams_total"
    static let droppedDatagramsHelp = "UDP datagrams dropped, by reason: emsgsize (too long), wouldblock (socket buffer full), "
        + "flows_dropped_overflow (new client at udp_max_flows), flows_pending_drops (target name being resolved), "
        + "send_dropped (another send error)."
    /// The `reason` label values: the stats socket's names for the same counters.
    static let dropReasons: [(String, @Sendable (RuleCounters) -> UInt64)] = [
        ("emsgsize", { $0.emsgsize }),
        ("wouldblock", { $0.wouldblock }),
        ("flows_dropped_overflow", { $0.flowsDroppedOverflow }),
        ("flows_pending_drops", { $0.flowsPendingDrops }),
        ("send_dropped", { $0.sendDropped }),
    ]
}
