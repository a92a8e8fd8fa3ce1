import ArgumentParser
import Glibc

// Usage errors exit 2 (SPEC.md §1), not ArgumentParser's default 64.
do {
    var command = try PortunusCommand.parseAsRoot()
    try command.run()
} catch let exit as ExitCode {
    Glibc.exit(exit.rawValue)
} catch {
    let code = PortunusCommand.exitCode(for: error)
    if code == .success {
        PortunusCommand.exit(withError: error)   // --help, --version
    }
    PortunusCommand.printError(PortunusCommand.fullMessage(for: error))
    Glibc.exit(2)
}
