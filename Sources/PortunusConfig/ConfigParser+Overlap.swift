// Checks across rules: two rules of one protocol cannot own the same port,
// since the second bind(2) would fail at start-up, and `--check` must catch
// everything start-up would reject from the file alone (SPEC.md §1).

extension ConfigParser {
    /// Reports each overlapping pair once, on the later rule, naming the
    /// earlier one. Rules whose protocol or listen range is unknown were
    /// already reported and are left out rather than guessed at.
    func checkListenOverlaps(_ drafts: [RuleDraft]) {
        for (laterIndex, later) in drafts.enumerated() {
            guard let proto = later.proto, let ports = later.listen else { continue }
            for earlier in drafts[..<laterIndex] {
                guard earlier.proto == proto, let other = earlier.listen, other.overlaps(ports) else { continue }
                let shared = PortRange(lower: max(ports.lower, other.lower), upper: min(ports.upper, other.upper))
                sink.report(ConfigDiagnostic.Code.listenPortOverlap, later.scope, key: later.listenKey,
                            "\(proto.rawValue) port(s) \(shared) also claimed by \(earlier.label) "
                                + "(\(earlier.listenKey) \(other)); two \(proto.rawValue) rules cannot share a port")
            }
        }
    }
}
