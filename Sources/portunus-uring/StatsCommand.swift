import ArgumentParser
import Glibc
import PortunusConfig
import PortunusStats

/// `portunus-uring stats [--socket PATH] [--once]`: reads a running forwarder's stats
/// socket, as Portunus's own `stats` does.
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a running forwarder's counters: a live dashboard, or one JSON document with --once.",
        discussion: "Exit codes: 0 done; 2 the socket is missing, refuses, or says something unexpected."
    )

    @Option(help: ArgumentHelp("The stats socket.", valueName: "PATH"))
    var socket: String = StatsSettings.defaultSocketPath

    @Flag(help: "Print {\"hello\":…,\"snapshot\":…} (2-space indent, keys sorted) and exit.")
    var once = false

    func run() throws {
        if once {
            do {
                print(try StatsConnection.once(path: socket).prettySorted)
            } catch {
                PortunusCommand.printError("stats: \(error)")
                throw ExitCode(2)
            }
            return
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            PortunusCommand.printError("stats: the live dashboard needs a terminal; for one JSON document use: portunus-uring stats --once")
            throw ExitCode(2)
        }
        do {
            try Dashboard(path: socket).run()
        } catch {
            PortunusCommand.printError("stats: \(error)")
            throw ExitCode(2)
        }
    }
}
