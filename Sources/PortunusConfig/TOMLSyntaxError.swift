// Why a text is not TOML 1.0, and where: what `parse.syntax` diagnostics are made of.

/// A place in a TOML document: 1-based line and column.
///
/// The column counts Unicode scalars (a tab is one column, `é` is one), as
/// toml++ did before this parser replaced it, so a `parse.syntax` diagnostic
/// points at the same `line:column` it always did.
public struct TOMLPosition: Sendable, Hashable, CustomStringConvertible {
    /// 1-based line; a line ends at LF (a CR LF pair is one line end).
    public let line: Int
    /// 1-based column in Unicode scalars.
    public let column: Int

    /// Creates a position.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// `LINE:COLUMN`.
    public var description: String { "\(line):\(column)" }
}

/// The first thing that makes a text invalid TOML 1.0. Parsing stops there:
/// after a syntax error the rest of the file cannot be read reliably.
public struct TOMLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the problem is: the offending character, or where something
    /// expected was missing.
    public let position: TOMLPosition
    /// What is wrong, in words an operator can act on (`expected '=' after the key "port"`).
    public let message: String

    /// Creates an error.
    public init(position: TOMLPosition, message: String) {
        self.position = position
        self.message = message
    }

    /// `LINE:COLUMN: MESSAGE`.
    public var description: String { "\(position): \(message)" }
}
