// `accept_proxy` and `accept_proxy_timeout_secs` (additions to the Portunus schema,
// SPEC.md §9): the PROXY header a rule's clients must send first, in `[defaults]` and
// per rule. PROXY on the way in is TCP only, as on the way out.

extension ConfigParser {
    /// `accept_proxy` in `reader`: exactly `"v1"`, `"v2"` or `"any"`; anything else,
    /// including a non-string, is `accept_proxy_invalid`, as `proxy_protocol` does.
    /// When `proto` is UDP the key itself is refused (with the same code) and its
    /// value is not judged as well: one fix, one line. `proto` nil (an invalid
    /// protocol) judges the value alone.
    func parseAcceptProxy(_ reader: TableReader, proto: TransportProtocol?, onUDP: String) -> AcceptProxy? {
        guard reader.has("accept_proxy") else { return nil }
        if proto == .udp {
            reader.sink.report(ConfigDiagnostic.Code.acceptProxyInvalid, reader.scope, key: "accept_proxy",
                               "PROXY on the way in is TCP only (a PROXY header never precedes a UDP "
                                   + "datagram here); \(onUDP)")
            return nil
        }
        return reader.choice("accept_proxy", code: ConfigDiagnostic.Code.acceptProxyInvalid, anyType: true)
    }

    /// `accept_proxy_timeout_secs` in seconds, within 1...3600 (`value_out_of_range`
    /// otherwise, like every `*_secs` key); nil when absent or reported.
    func parseAcceptProxyTimeout(_ reader: TableReader) -> Int? {
        reader.integer("accept_proxy_timeout_secs", in: 1...Limits.maxAcceptProxyTimeoutSeconds,
                       meaning: "accept_proxy_timeout_secs")
    }

    /// A rule's own `accept_proxy` / `accept_proxy_timeout_secs`, else `[defaults]`'s.
    ///
    /// A UDP rule never inherits `[defaults].accept_proxy`: a default applies to the
    /// TCP rules, so one `[defaults]` can serve a file that mixes both. Only a UDP
    /// rule's own `accept_proxy` is an error. A timeout the rule sets but can never
    /// use (no `accept_proxy` in force, or UDP) is a warning, since it most likely
    /// means `accept_proxy` was forgotten; the file still loads.
    func parseRuleAcceptProxy(_ reader: TableReader, proto: TransportProtocol?,
                              defaults: Defaults) -> (AcceptProxy?, Duration) {
        let own = parseAcceptProxy(reader, proto: proto, onUDP: "remove accept_proxy from this UDP rule")
        let ownTimeout = parseAcceptProxyTimeout(reader)
        let mode = reader.has("accept_proxy") ? own : (proto == .udp ? nil : defaults.settings.acceptProxy)
        if let ownTimeout, mode == nil, !reader.has("accept_proxy"), let proto {
            reader.sink.warn(ConfigDiagnostic.Code.acceptProxyTimeoutUnused, reader.scope,
                             key: "accept_proxy_timeout_secs",
                             "\(ownTimeout) s is never used: "
                                 + (proto == .udp
                                     ? "PROXY on the way in is TCP only, and this is a UDP rule"
                                     : "this rule accepts no PROXY header (set accept_proxy here or in [defaults])"))
        }
        return (mode, ownTimeout.map { .seconds($0) } ?? defaults.settings.acceptProxyTimeout)
    }
}
