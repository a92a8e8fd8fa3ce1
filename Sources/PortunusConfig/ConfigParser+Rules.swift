// `[[rule]]` entries: name, protocol, listen ports, overrides, and the checks
// that tie a rule's listen range to its targets.

/// What is known about one rule after its own checks; the cross-rule checks
/// work from this even when the rule itself is invalid.
struct RuleDraft {
    /// Scope of the rule's keys in diagnostics.
    let scope: Scope
    /// `rule "web"`, or `rule[2]` when unnamed: how other rules' messages refer to it.
    let label: String
    let proto: TransportProtocol?
    let listen: PortRange?
    /// `listen_port` or `listen_ports`, whichever the rule used.
    let listenKey: String
    /// The finished rule; nil when anything about it was reported.
    let rule: Rule?
}

extension ConfigParser {
    static let ruleKeys: Set<String> = [
        "name", "protocol", "listen_port", "listen_ports", "target", "targets",
        "prefer_ipv6", "udp_max_flows", "udp_flow_idle_secs", "idle_timeout_secs",
        "accept_proxy", "accept_proxy_timeout_secs",
    ]

    /// Parses `rule` (the `[[rule]]` array) in file order.
    func parseRules(_ top: TableReader, defaults: Defaults) -> [RuleDraft] {
        guard let value = top.value("rule") else {
            sink.report(ConfigDiagnostic.Code.noRules, .topLevel, key: nil,
                        "the file has no [[rule]]; at least one rule is required")
            return []
        }
        guard let array = value.array else {
            top.wrongType("rule", expected: "an array of tables ([[rule]])", found: value,
                          hint: "write each rule under its own [[rule]] header")
            return []
        }
        if array.isEmpty {
            sink.report(ConfigDiagnostic.Code.noRules, .topLevel, key: nil,
                        "rule is empty; at least one [[rule]] is required")
        }
        var names: [String: Int] = [:]
        var drafts: [RuleDraft] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                top.wrongType("rule[\(index)]", expected: "a table ([[rule]])", found: element, hint: nil)
                continue
            }
            drafts.append(parseRule(table, index: index, defaults: defaults, names: &names))
        }
        return drafts
    }

    private func parseRule(_ table: TOMLTable, index: Int, defaults: Defaults,
                           names: inout [String: Int]) -> RuleDraft {
        let reportedBefore = sink.count
        let anonymous = Scope(rule: nil, keyPrefix: "rule[\(index)].", place: "[[rule]]")
        let name = parseName(TableReader(table: table, scope: anonymous, sink: sink), index: index, names: &names)
        let scope = name.map { Scope(rule: $0, keyPrefix: "", place: "[[rule]]") } ?? anonymous
        let reader = TableReader(table: table, scope: scope, sink: sink)

        let proto = reader.has("protocol")
            ? reader.choice("protocol", code: ConfigDiagnostic.Code.protocolUnknown) as TransportProtocol?
            : defaults.proto
        let (listenKey, listen) = parseListen(reader)
        let targets = parseTargets(reader, proto: proto)
        let flows = reader.integer("udp_max_flows", in: 0...Limits.maxUDPFlows, meaning: "udp_max_flows").flatMap { $0 == 0 ? nil : $0 }
        let idle = reader.integer("udp_flow_idle_secs", in: 0...Limits.maxSeconds, meaning: "udp_flow_idle_secs").flatMap { $0 == 0 ? nil : $0 }
        let preferIPv6 = reader.bool("prefer_ipv6")
        // 0 says "never" explicitly, overriding a [defaults] value.
        var idleTimeout = defaults.settings.idleTimeout
        if let secs = reader.integer("idle_timeout_secs", in: 0...Limits.maxSeconds, meaning: "idle_timeout_secs") {
            idleTimeout = secs == 0 ? nil : Duration.seconds(secs)
        }
        let (acceptProxy, acceptProxyTimeout) = parseRuleAcceptProxy(reader, proto: proto, defaults: defaults)
        if let listen, let targets {
            checkWidths(reader, listen: listen, listenKey: listenKey, targets: targets)
        }
        reader.reportUnknownKeys(known: ConfigParser.ruleKeys)

        var rule: Rule?
        if sink.count == reportedBefore, let name, let proto, let listen, let targets {
            rule = Rule(name: name, proto: proto, listenPorts: listen, targets: targets.compactMap(\.target),
                        preferIPv6: preferIPv6 ?? defaults.settings.preferIPv6,
                        udpMaxFlows: flows ?? defaults.settings.udpMaxFlows,
                        udpFlowIdle: idle.map { .seconds($0) } ?? defaults.settings.udpFlowIdle,
                        idleTimeout: idleTimeout,
                        acceptProxy: acceptProxy,
                        acceptProxyTimeout: acceptProxyTimeout)
        }
        let label = name.map { "rule \(quoted($0))" } ?? "rule[\(index)]"
        return RuleDraft(scope: scope, label: label, proto: proto, listen: listen,
                         listenKey: listenKey, rule: rule)
    }

    /// The rule's name when it is usable as an identifier in diagnostics: a
    /// duplicate still names its rule (the operator can find it), a missing
    /// or blank one does not.
    private func parseName(_ reader: TableReader, index: Int, names: inout [String: Int]) -> String? {
        guard reader.has("name") else {
            reader.sink.report(ConfigDiagnostic.Code.emptyRuleName, reader.scope, key: "name",
                               "every rule needs a name")
            return nil
        }
        guard let name = reader.string("name") else { return nil }
        guard !name.allSatisfy(\.isWhitespace) else {
            reader.sink.report(ConfigDiagnostic.Code.emptyRuleName, reader.scope, key: "name",
                               "rule name is empty")
            return nil
        }
        if let first = names[name] {
            let named = Scope(rule: name, keyPrefix: "", place: "")
            reader.sink.report(ConfigDiagnostic.Code.duplicateRuleName, named, key: "name",
                               "rule name \(quoted(name)) is already used by rule[\(first)]; names must be unique")
        } else {
            names[name] = index
        }
        return name
    }

    /// Exactly one of `listen_port` (integer) and `listen_ports` ("lo-hi").
    private func parseListen(_ reader: TableReader) -> (key: String, ports: PortRange?) {
        let hasPort = reader.has("listen_port"), hasRange = reader.has("listen_ports")
        guard hasPort != hasRange else {
            reader.sink.report(ConfigDiagnostic.Code.listenPortConflict, reader.scope, key: "listen_port",
                               hasPort
                                   ? "set either listen_port or listen_ports, not both"
                                   : "missing listen_port (one port) or listen_ports (a range \"lo-hi\")")
            return ("listen_port", nil)
        }
        if hasPort {
            let hint = "write listen_port = 8000 without quotes, or listen_ports = \"8000-8009\" for a range"
            guard let value = reader.integer("listen_port", hint: hint) else { return ("listen_port", nil) }
            return ("listen_port", report(PortRange.validatePort(value).map { PortRange(port: $0) },
                                          reader, key: "listen_port"))
        }
        let hint = "write listen_ports as a string \"lo-hi\", or use listen_port for one port"
        guard let text = reader.string("listen_ports", hint: hint) else { return ("listen_ports", nil) }
        return ("listen_ports", report(PortRange.parse(Substring(text)), reader, key: "listen_ports"))
    }

    /// Unwraps a port result, reporting the failure under `key`.
    func report<T>(_ result: Result<T, PortSyntaxError>, _ reader: TableReader, key: String) -> T? {
        switch result {
        case .success(let value): return value
        case .failure(let error):
            reader.sink.report(error.code, reader.scope, key: key, error.message)
            return nil
        }
    }

    /// Listen and target ranges map port by port, so their widths must match;
    /// several targets are alternatives for one port, so they need a single
    /// listen port.
    private func checkWidths(_ reader: TableReader, listen: PortRange, listenKey: String,
                             targets: [ParsedTarget]) {
        if targets.count > 1, listen.count > 1 {
            reader.sink.report(ConfigDiagnostic.Code.multiTargetWithRange, reader.scope, key: listenKey,
                               "a rule with \(targets.count) targets must listen on a single port, "
                                   + "but \(listenKey) is the range \(listen)")
            return
        }
        for parsed in targets {
            guard let ports = parsed.ports, ports.count != listen.count else { continue }
            reader.sink.report(ConfigDiagnostic.Code.rangeWidthMismatch, reader.scope, key: parsed.portKey,
                               "\(listenKey) \(listen) spans \(listen.count) port(s) but target port(s) "
                                   + "\(ports) span \(ports.count); listen and target ranges must be equally wide")
        }
    }
}
