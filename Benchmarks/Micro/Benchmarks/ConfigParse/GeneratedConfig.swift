/// A valid configuration with `rules` rules, cycling through every rule shape the
/// schema has so that each validation path runs: a single `target` string, a
/// prioritised `targets` list with PROXY v2, a listen range mapped onto a target
/// range, an IPv6 target with PROXY v1, and a UDP rule with its own limits.
enum GeneratedConfig {
    static let ruleCount = 1_000

    static func text(rules: Int) -> String {
        var text = """
            [global]
            label = "bench"
            log_level = "info"
            shutdown_drain_secs = 5

            [defaults]
            udp_max_flows = 512

            """
        for index in 0..<rules {
            text += rule(index)
        }
        return text
    }

    /// Rule `index` listens on 20 ports of its own from 10000 on, so none overlap.
    private static func rule(_ index: Int) -> String {
        let port = 10_000 + index * 20
        let octet = index % 250 + 1
        switch index % 5 {
        case 0:
            return """

                [[rule]]
                name = "single-\(index)"
                listen_port = \(port)
                target = "10.0.\(index / 250).\(octet):8080"

                """
        case 1:
            return """

                [[rule]]
                name = "failover-\(index)"
                protocol = "tcp"
                listen_port = \(port)
                targets = [
                  { host = "10.1.\(index / 250).\(octet)", port = 443, priority = 1, proxy_protocol = "v2" },
                  { host = "10.2.\(index / 250).\(octet)", port = 443, priority = 0, proxy_protocol = "v2" },
                ]

                """
        case 2:
            return """

                [[rule]]
                name = "range-\(index)"
                listen_ports = "\(port)-\(port + 9)"
                target = "10.3.\(index / 250).\(octet):\(20_000 + index * 10)-\(20_000 + index * 10 + 9)"

                """
        case 3:
            return """

                [[rule]]
                name = "ipv6-\(index)"
                listen_port = \(port)
                prefer_ipv6 = true
                targets = [ { host = "2001:db8::\(String(index, radix: 16))", port = 8443, proxy_protocol = "v1" } ]

                """
        default:
            return """

                [[rule]]
                name = "udp-\(index)"
                protocol = "udp"
                listen_port = \(port)
                target = "10.4.\(index / 250).\(octet):53"
                udp_max_flows = 64
                udp_flow_idle_secs = 30

                """
        }
    }
}
