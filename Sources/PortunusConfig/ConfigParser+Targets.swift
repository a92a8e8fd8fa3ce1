// A rule's upstreams: `target = "host:port"` or `targets = [ { host, port,
// priority, proxy_protocol }, ... ]`, including the PROXY protocol checks the
// seed document names.

/// One `targets` entry (or the `target` string) as far as it could be parsed;
/// the parts that are known still feed the width checks.
struct ParsedTarget {
    var host: TargetHost?
    var ports: PortRange?
    var priority = 0
    var proxyProtocol: ProxyProtocolVersion?
    var options = ProxyProtocolOptions()
    let fileIndex: Int
    /// Key naming this target's ports in diagnostics.
    let portKey: String

    /// The finished target, when host and ports both parsed.
    var target: Target? {
        guard let host, let ports else { return nil }
        return Target(host: host, ports: ports, priority: priority, proxyProtocol: proxyProtocol,
                      proxyProtocolTLVs: options.tlvs, proxyProtocolUniqueID: options.uniqueID,
                      proxyProtocolCRC32C: options.crc32c, fileIndex: fileIndex)
    }
}

/// The v2-only options of a target (additions to the Portunus schema), at their defaults
/// unless the target sends v2.
struct ProxyProtocolOptions {
    var tlvs = true
    var uniqueID = false
    var crc32c = false

    /// The keys, in the order they are read and reported.
    static let keys = ["proxy_protocol_tlvs", "proxy_protocol_unique_id", "proxy_protocol_crc32c"]
}

extension ConfigParser {
    static let targetKeys = Set(["host", "port", "priority", "proxy_protocol"] + ProxyProtocolOptions.keys)

    /// Exactly one of `target` and `targets`. Returns one element per entry,
    /// or nil when there is nothing to check the listen range against.
    /// `proto` is nil when the rule's protocol is itself invalid.
    func parseTargets(_ reader: TableReader, proto: TransportProtocol?) -> [ParsedTarget]? {
        let hasOne = reader.has("target"), hasMany = reader.has("targets")
        guard hasOne != hasMany else {
            reader.sink.report(ConfigDiagnostic.Code.targetConflict, reader.scope, key: "target",
                               hasOne
                                   ? "set either target or targets, not both"
                                   : "missing target (\"host:port\") or targets ([ { host = ..., port = ... } ])")
            return nil
        }
        if hasOne {
            let hint = "write target = \"host:port\", or use targets = [ ... ] for a list"
            guard let text = reader.string("target", hint: hint) else { return nil }
            let parsed = TargetHost.parseTarget(text)
            for error in parsed.errors {
                reader.sink.report(error.code, reader.scope, key: "target", error.message)
            }
            return [ParsedTarget(host: parsed.host, ports: parsed.ports, fileIndex: 0, portKey: "target")]
        }
        guard let value = reader.value("targets") else { return nil }
        guard let array = value.array else {
            reader.wrongType("targets", expected: "an array of tables", found: value,
                             hint: "write targets = [ { host = \"10.0.0.1\", port = 443 } ]")
            return nil
        }
        guard !array.isEmpty else {
            reader.sink.report(ConfigDiagnostic.Code.emptyTargets, reader.scope, key: "targets",
                               "targets is empty; list at least one { host = ..., port = ... }")
            return nil
        }
        return array.enumerated().map { index, element in
            parseTargetEntry(element, index: index, rule: reader, proto: proto)
        }
    }

    private func parseTargetEntry(_ element: TOMLValue, index: Int, rule: TableReader,
                                  proto: TransportProtocol?) -> ParsedTarget {
        let prefix = "targets[\(index)]"
        var parsed = ParsedTarget(fileIndex: index, portKey: prefix + ".port")
        guard let table = element.table else {
            rule.wrongType(prefix, expected: "a table { host = ..., port = ... }", found: element, hint: nil)
            return parsed
        }
        let reader = TableReader(table: table, scope: rule.scope.nested(prefix + ".", place: prefix), sink: sink)
        defer { reader.reportUnknownKeys(known: ConfigParser.targetKeys) }

        parsed.host = parseHost(reader)
        parsed.ports = parsePort(reader)
        parsed.priority = reader.integer("priority", in: 0...Int.max, meaning: "priority") ?? 0
        parsed.proxyProtocol = parseProxyProtocol(reader, proto: proto)
        parsed.options = parseProxyProtocolOptions(reader, proto: proto, version: parsed.proxyProtocol)
        return parsed
    }

    private func parseHost(_ reader: TableReader) -> TargetHost? {
        guard reader.has("host") else {
            reader.sink.report(ConfigDiagnostic.Code.missingKey, reader.scope, key: "host",
                               "every target needs a host (IPv4, IPv6 or DNS name)")
            return nil
        }
        guard let text = reader.string("host") else { return nil }
        switch TargetHost.parse(Substring(text)) {
        case .success(let host): return host
        case .failure(let error):
            reader.sink.report(ConfigDiagnostic.Code.hostInvalid, reader.scope, key: "host", error.message)
            return nil
        }
    }

    /// `port` is an integer as in Portunus; a `"lo-hi"` string is also taken
    /// so a single table-form target can forward a range (e.g. with PROXY on).
    private func parsePort(_ reader: TableReader) -> PortRange? {
        guard let value = reader.value("port") else {
            reader.sink.report(ConfigDiagnostic.Code.missingKey, reader.scope, key: "port",
                               "every target needs a port")
            return nil
        }
        if let int = value.integer.flatMap({ Int(exactly: $0) }) {
            return report(PortRange.validatePort(int).map { PortRange(port: $0) }, reader, key: "port")
        }
        if let text = value.string {
            return report(PortRange.parse(Substring(text)), reader, key: "port")
        }
        reader.wrongType("port", expected: "an integer (or a \"lo-hi\" range string)", found: value, hint: nil)
        return nil
    }

    /// The seed document: accepted values are exactly "v1" and "v2", anything
    /// else (including a non-string) is `proxy_protocol_invalid`; on a UDP rule
    /// the key itself is `proxy_protocol_on_unsupported_rule`. The value of a
    /// key that must be removed is not judged as well: one fix, one line.
    private func parseProxyProtocol(_ reader: TableReader, proto: TransportProtocol?) -> ProxyProtocolVersion? {
        guard reader.has("proxy_protocol") else { return nil }
        if proto == .udp {
            reader.sink.report(ConfigDiagnostic.Code.proxyProtocolOnUnsupportedRule, reader.scope,
                               key: "proxy_protocol",
                               "PROXY protocol is TCP only; remove proxy_protocol from the targets of this UDP rule")
            return nil
        }
        return reader.choice("proxy_protocol", code: ConfigDiagnostic.Code.proxyProtocolInvalid, anyType: true)
    }

    /// `proxy_protocol_tlvs`, `proxy_protocol_unique_id`, `proxy_protocol_crc32c`: each
    /// shapes the v2 header, so each needs `proxy_protocol = "v2"`. Set (to either
    /// value) on a target sending v1 or nothing, it is `proxy_protocol_option_needs_v2`;
    /// on a UDP rule's target, `proxy_protocol_on_unsupported_rule` like `proxy_protocol`.
    /// Either way its value is not judged as well (one fix, one line). Next to an invalid
    /// `proxy_protocol` (already reported) the options are not judged at all, rather
    /// than against a guess of the version meant.
    private func parseProxyProtocolOptions(_ reader: TableReader, proto: TransportProtocol?,
                                           version: ProxyProtocolVersion?) -> ProxyProtocolOptions {
        var options = ProxyProtocolOptions()
        let present = ProxyProtocolOptions.keys.filter(reader.has)
        guard !present.isEmpty else { return options }
        if proto == .udp {
            for key in present {
                reader.sink.report(ConfigDiagnostic.Code.proxyProtocolOnUnsupportedRule, reader.scope, key: key,
                                   "PROXY protocol is TCP only; remove \(key) from the targets of this UDP rule")
            }
            return options
        }
        guard version == .v2 else {
            if reader.has("proxy_protocol") && version == nil { return options }
            let (sent, fix) = version.map { ("sends proxy_protocol = \(quoted($0.rawValue)) (v1 carries no TLVs)", "use \"v2\"") }
                ?? ("sends no PROXY header", "add proxy_protocol = \"v2\"")
            for key in present {
                reader.sink.report(ConfigDiagnostic.Code.proxyProtocolOptionNeedsV2, reader.scope, key: key,
                                   "target \(targetName(reader)) \(sent); \(key) needs proxy_protocol = \"v2\": "
                                       + "\(fix) or remove \(key)")
            }
            return options
        }
        options.tlvs = reader.bool("proxy_protocol_tlvs") ?? options.tlvs
        options.uniqueID = reader.bool("proxy_protocol_unique_id") ?? options.uniqueID
        options.crc32c = reader.bool("proxy_protocol_crc32c") ?? options.crc32c
        return options
    }

    /// `host:port` as written, for messages; `?` for a part that is missing or not a
    /// string or integer (that part is reported on its own).
    private func targetName(_ reader: TableReader) -> String {
        let host = reader.value("host")?.string ?? "?"
        let port = reader.value("port").map { $0.string ?? $0.integer.map(String.init) ?? "?" } ?? "?"
        return quoted((host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host) + ":" + port)
    }
}
