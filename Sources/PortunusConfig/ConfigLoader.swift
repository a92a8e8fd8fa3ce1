// Entry points: file -> text -> TOML -> validated Configuration.

/// Loads and validates portunus-uring configuration files (SPEC.md §2).
///
/// Both entry points either return a fully validated `Configuration` or throw
/// one `ConfigError` listing every problem found, never just the first, so
/// `--check` can print them all in one run.
public enum ConfigLoader {
    /// Files larger than this are refused: a config is a few KiB, and the cap
    /// keeps `--config /dev/zero` from reading forever.
    public static let maxFileBytes = 16 << 20

    /// Reads and validates the file at `path`.
    ///
    /// - Throws: `ConfigError` with `io.read_failed` (message names the path
    ///   and the OS error) when the file cannot be read, else whatever
    ///   `parse(_:path:)` reports.
    public static func load(path: String) throws(ConfigError) -> Configuration {
        let bytes: [UInt8]
        switch FileReader.readAll(path: path, limit: maxFileBytes) {
        case .success(let data): bytes = data
        case .failure(let error):
            throw ConfigError(path: path, diagnostics: [ConfigDiagnostic(
                code: ConfigDiagnostic.Code.ioReadFailed,
                message: "cannot read config file \(quoted(path)): \(error)", path: path)])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(path: path, diagnostics: [ConfigDiagnostic(
                code: ConfigDiagnostic.Code.parseSyntax,
                message: "the file is not valid UTF-8 text", path: path)])
        }
        return try parse(text, path: path)
    }

    /// Validates configuration `text`; `path` only labels the diagnostics.
    ///
    /// - Throws: `ConfigError` with `parse.syntax` (with line and column) when
    ///   the text is not TOML, else every validation problem.
    public static func parse(_ text: String, path: String = "<string>") throws(ConfigError) -> Configuration {
        let root = try parseTOML(text, path: path)
        let parser = ConfigParser()
        guard let configuration = parser.parse(root) else {
            let diagnostics = parser.sink.diagnostics.map { $0.with(path: path) }
            throw ConfigError(path: path, diagnostics: diagnostics)
        }
        return configuration.with(warnings: parser.sink.warnings.map { $0.with(path: path) })
    }

    private static func parseTOML(_ text: String, path: String) throws(ConfigError) -> TOMLTable {
        do {
            return try TOMLParser.parse(text)
        } catch {
            throw ConfigError(path: path, diagnostics: [ConfigDiagnostic(
                code: ConfigDiagnostic.Code.parseSyntax, line: error.position.line, column: error.position.column,
                message: error.message, path: path)])
        }
    }
}

extension ConfigDiagnostic {
    /// The same diagnostic labelled with the file it came from.
    func with(path: String) -> ConfigDiagnostic {
        ConfigDiagnostic(code: code, rule: rule, key: key, line: line, column: column,
                         message: message, path: path, severity: severity)
    }
}
