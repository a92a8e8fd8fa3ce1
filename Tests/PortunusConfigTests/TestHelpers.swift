// Shared helpers: fixture location and compact diagnostic expectations.
import Foundation
import PortunusConfig
import Testing

/// The sample config files live in the repository, at `Tests/Fixtures`, so the
/// tests pass in a bare clone. The root is found by walking up from this file to
/// the first directory holding a Package.swift, after resolving symlinks so
/// a scratch package that links this folder in still finds the real repo.
enum Fixtures {
    static let directory: URL = {
        var directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                return directory.appendingPathComponent("Tests/Fixtures")
            }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: "/nonexistent-repo-root/Tests/Fixtures")
    }()

    static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }

    /// Every `.toml` file in the fixture directory, sorted.
    static func all() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".toml") }
            .sorted()
    }
}

/// What a test expects of one diagnostic: the stable triple, never the prose.
struct Expected: Equatable, Sendable, CustomStringConvertible {
    let code: String
    let rule: String?
    let key: String?

    init(_ code: String, rule: String? = nil, key: String? = nil) {
        self.code = code
        self.rule = rule
        self.key = key
    }

    init(_ diagnostic: ConfigDiagnostic) {
        self.init(diagnostic.code, rule: diagnostic.rule, key: diagnostic.key)
    }

    var description: String { "\(code) rule=\(rule ?? "nil") key=\(key ?? "nil")" }
}

/// Parses `text` and returns its diagnostics; empty when the file is valid.
func diagnostics(_ text: String) -> [ConfigDiagnostic] {
    do {
        _ = try ConfigLoader.parse(text)
        return []
    } catch {
        return error.diagnostics
    }
}

/// Parses `text`, recording an issue (with every diagnostic) if it fails.
func parseValid(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Configuration {
    do {
        return try ConfigLoader.parse(text)
    } catch {
        Issue.record("expected a valid config, got:\n\(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// A rule block; `body` lines are appended after the name.
func rule(_ name: String, _ body: String) -> String {
    "[[rule]]\nname = \"\(name)\"\n\(body)\n"
}

/// The smallest valid rule, for tests about other sections.
let minimalRule = rule("ssh", "listen_port = 2222\ntarget = \"10.0.0.5:22\"")

/// One table-driven case: a config and exactly the diagnostics it must yield.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    let label: String
    let toml: String
    let expected: [Expected]
    /// Substrings the first diagnostic's message must contain.
    let messageContains: [String]

    init(_ label: String, _ toml: String, _ expected: Expected..., messageContains: [String] = []) {
        self.label = label
        self.toml = toml
        self.expected = expected
        self.messageContains = messageContains
    }

    var testDescription: String { label }
}

/// Asserts that `testCase.toml` yields exactly `testCase.expected`, in order.
func check(_ testCase: InvalidCase, sourceLocation: SourceLocation = #_sourceLocation) {
    let found = diagnostics(testCase.toml)
    #expect(found.map(Expected.init) == testCase.expected,
            "\(testCase.label): \(found.map(\.description))", sourceLocation: sourceLocation)
    for fragment in testCase.messageContains {
        #expect(found.first?.message.contains(fragment) == true,
                "\(testCase.label): message \(found.first?.message ?? "-") lacks \(fragment)",
                sourceLocation: sourceLocation)
    }
}
