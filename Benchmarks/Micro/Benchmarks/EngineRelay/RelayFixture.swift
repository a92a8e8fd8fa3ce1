import Logging
import PortunusConfig
import PortunusEngine

/// What one relay benchmark runs against: the echo server, optionally an engine with
/// one worker forwarding a port to it, and the client. Built in the benchmark's setup
/// hook, before warm-up, so start-up allocations are never measured.
final class RelayFixture {
    let echo: EchoServer
    let engine: Engine?
    /// Where the client connects: the engine's listen port, or the echo server itself.
    let port: UInt16
    let client: EchoClient

    /// `relay == nil`: the client talks to the echo server directly (the peer).
    /// `proxyV2`: the target gets `proxy_protocol = "v2"`, so every connection also
    /// runs the prelude path (getpeername/getsockname, encode, linked send).
    init(relay: RelayMode?, proxyV2: Bool = false, payloadBytes: Int) throws {
        echo = EchoServer()
        // A v2 header for a TCP4 pair is 16 fixed bytes plus a 12-byte address block.
        client = EchoClient(payloadBytes: payloadBytes, prefixBytes: proxyV2 ? 28 : 0)
        guard let relay else {
            engine = nil
            port = echo.port
            return
        }
        var attempt = 0
        while true {
            let listen = LoopbackSocket.freeListenPort()
            do {
                let engine = try Self.startEngine(listen: listen, echoPort: echo.port, relay: relay, proxyV2: proxyV2)
                self.engine = engine
                port = listen
                return
            } catch let error as EngineStartupError where attempt < 5 && Self.portTaken(error) {
                attempt += 1 // taken between the probe and the engine's bind: another port
            }
        }
    }

    private static func portTaken(_ error: EngineStartupError) -> Bool {
        error.problems.contains { problem in
            if case .bind(_, _, "port_in_use", _) = problem { return true }
            return false
        }
    }

    private static func startEngine(listen: UInt16, echoPort: UInt16, relay: RelayMode, proxyV2: Bool) throws -> Engine {
        let configuration = try ConfigLoader.parse("""
            [global]
            shutdown_drain_secs = 1

            [[rule]]
            name = "bench"
            listen_port = \(listen)
            targets = [ { host = "127.0.0.1", port = \(echoPort)\(proxyV2 ? ", proxy_protocol = \"v2\"" : "") } ]
            """, path: "engine-relay-benchmark")
        var logger = Logger(label: "engine-relay-benchmark")
        logger.logLevel = .error
        let engine = try Engine(
            configuration: configuration,
            settings: EngineSettings(workers: 1, relay: relay, connectionsPerWorker: 64),
            logger: logger
        )
        try engine.start()
        return engine
    }

    /// One measured connection.
    @inline(__always)
    func connection() -> Bool { client.roundTrip(port: port) }

    /// Stops the engine (draining nothing: every connection has ended) and the echo
    /// thread; checks the engine saw every connection and byte, and returns its
    /// counters (zero for the peer). They are read after the worker has been joined: it
    /// closes the client socket a moment before it counts the connection as ended.
    @discardableResult
    func stop(expectedConnections: Int) -> RuleCounters {
        defer { echo.stop() }
        guard let engine else { return RuleCounters() }
        do {
            engine.stop()
            engine.wait()
            let counters = engine.counters()[0]
            require(counters.connectionsActive == 0, "connections still open: \(counters)")
            require(counters.connectFailures == 0 && counters.rejected == 0, "failed connections: \(counters)")
            require(counters.connectionsTotal == UInt64(expectedConnections), "engine saw \(counters.connectionsTotal) of \(expectedConnections) connections")
            // The PROXY header is not client payload, but the echo sends it back as payload.
            let sent = UInt64(expectedConnections * client.payload.count)
            let returned = UInt64(expectedConnections * (client.prefixBytes + client.payload.count))
            require(counters.bytesIn == sent && counters.bytesOut == returned, "byte counts off: \(counters)")
            return counters
        }
    }
}
