// Our parser against Python's `tomllib` (the standard library's TOML 1.0
// reader since 3.11), an implementation written independently of ours: the
// same documents must give the same values, types included, and what
// Python rejects we must reject.
import Foundation
import PortunusConfig
import Testing

@Suite("TOML against Python's tomllib")
struct TOMLOracleTests {
    /// Every valid document of the corpus, and every config fixture (all TOML).
    @Test func validCorpusGivesPythonsValues() throws {
        let paths = try TOMLCorpus.paths("valid") + Fixtures.all().map(Fixtures.path)
        #expect(paths.count >= 30, "corpus at \(Fixtures.directory.path)/toml/valid")
        let python = try PythonTOML.outcomes(paths.map(OracleInput.file))
        for (path, expected) in zip(paths, python) {
            let name = URL(fileURLWithPath: path).lastPathComponent
            #expect(!expected.isRejected, "python3 rejects \(name): \(expected)")
            #expect(OracleInput.file(path).ours == expected, "\(name)")
        }
    }

    /// What Python rejects, we reject (and we say where).
    @Test func invalidCorpusIsRejectedByBoth() throws {
        let paths = try TOMLCorpus.paths("invalid")
        #expect(paths.count >= 200)
        let python = try PythonTOML.outcomes(paths.map(OracleInput.file))
        for (path, expected) in zip(paths, python) {
            let name = URL(fileURLWithPath: path).lastPathComponent
            #expect(expected.isRejected, "python3 accepts \(name); it does not belong in invalid/")
            let ours = OracleInput.file(path).ours
            #expect(ours.isRejected, "\(name) accepted as \(ours)")
        }
    }

    /// Every prefix of a few representative documents, cut at each Unicode
    /// scalar: each must parse or fail (never trap or hang), and agree with
    /// Python on which, and on the value.
    @Test("every truncated prefix agrees with Python", arguments: [
        "spec-example.toml", "strings-multiline-basic.toml", "strings-literal.toml", "datetimes.toml",
        "floats.toml", "inline-tables.toml", "array-tables.toml", "tables.toml", "crlf.toml", "keys.toml",
    ])
    func prefixes(name: String) throws {
        let text = try TOMLCorpus.text("valid", name)
        let scalars = text.unicodeScalars
        let prefixes = scalars.indices.map { String(scalars[..<$0]) } + [text]
        let python = try PythonTOML.outcomes(prefixes.map(OracleInput.text))
        var disagreements: [String] = []
        for (prefix, expected) in zip(prefixes, python) {
            let ours = OracleInput.text(prefix).ours
            let agree = expected.isRejected ? ours.isRejected : ours == expected
            if !agree { disagreements.append("\(prefix.debugDescription): python \(expected), ours \(ours)") }
        }
        let shown = disagreements.prefix(5).joined(separator: "\n")
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(prefixes.count):\n\(shown)")
    }

    /// The config example shipped in the repository reads the same in both.
    @Test func repositoryExampleConfig() throws {
        let path = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("portunus.toml").path
        let python = try PythonTOML.outcomes([.file(path)])
        #expect(!python[0].isRejected)
        #expect(OracleInput.file(path).ours == python[0])
    }
}
