import Foundation
import PortunusStats
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A reader of the stats socket as Portunus's `stats` client reads it: connect, then
/// `\n`-ended JSON lines, never writing a byte.
final class StatsSocketReader {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestError("connect \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    /// The next line and when it was complete; nil when the server closed the socket or
    /// `timeoutSecs` passed.
    func line(timeoutSecs: Double = 5) -> (text: String, at: Date)? {
        let deadline = Date().addingTimeInterval(timeoutSecs)
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let text = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeSubrange(0...end)
                return (text, Date())
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    func json(timeoutSecs: Double = 5) throws -> JSON {
        let got = try #require(line(timeoutSecs: timeoutSecs), "no line from the stats socket")
        return try JSON.parse(got.text)
    }

    /// Bytes waiting, without reading them.
    var pendingBytes: Int {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0 ? 1 : 0
    }
}

/// The stats socket through the real binary (PORTUNUS_COMPAT.md): the hello and the
/// snapshots with every field Portunus's client requires and its type, `seq`, cadence,
/// counters that follow the traffic sent, the 16-client bound, a stalled client dropped
/// without delaying others, the socket's mode and its removal at exit; `stats --once`
/// checked by an independent JSON printer; the dashboard driven in a real terminal (tmux).
@Suite(.serialized) struct StatsSocketTests {
    static let errKeys = ["port_in_use", "upstream_connect_failed", "icmp_evict", "emsgsize", "wouldblock", "addflow_dropped",
                          "flows_pending_drops", "bandwidth_dropped_in", "bandwidth_dropped_out", "send_dropped", "dns_failures",
                          "flows_dropped_overflow"]

    static func config(tcpListen: UInt16, tcpTarget: UInt16, udpListen: UInt16, udpTarget: UInt16, refreshMs: Int = 250, extraRules: String = "") -> String {
        """
        [global]
        shutdown_drain_secs = 0
        [stats]
        refresh_ms = \(refreshMs)
        [[rule]]
        name = "web"
        listen_port = \(tcpListen)
        targets = [{ host = "127.0.0.1", port = \(tcpTarget), priority = 1, proxy_protocol = "v2" }, { host = "localhost.invalid", port = \(tcpTarget) }]
        [[rule]]
        name = "dns"
        protocol = "udp"
        listen_port = \(udpListen)
        target = "127.0.0.1:\(udpTarget)"
        udp_max_flows = 77
        \(extraRules)
        """
    }

    static func isUInt(_ value: JSON?) -> Bool { value?.uint64Value != nil }

    @Test func helloAndSnapshotsCarryEveryFieldWithItsTypeAndFollowTheTraffic() throws {
        let tcpBackend = try TestBackend(.echo)
        let udpBackend = try UDPEchoBackend()
        let tcpPort = freePort(), udpPort = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.config(tcpListen: tcpPort, tcpTarget: tcpBackend.port, udpListen: udpPort, udpTarget: udpBackend.port))
        defer { forwarder.stop() }
        var info = stat()
        #expect(lstat(forwarder.statsSocketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o660, "socket mode \(String(info.st_mode & 0o777, radix: 8))")

        let reader = try StatsSocketReader(forwarder.statsSocketPath)
        // Shut our writing side, as `nc -N` or socat do: the client still reads.
        #expect(shutdown(reader.fd, Int32(SHUT_WR)) == 0)
        let hello = try reader.json()
        #expect(hello["v"]?.uint64Value == 1)
        #expect(hello["daemon_version"]?.stringValue?.isEmpty == false)
        #expect(Self.isUInt(hello["daemon_started_at_ms"]))
        #expect(hello["refresh_ms"]?.uint64Value == 250)
        let rules = try #require(hello["rules"]?.arrayValue)
        #expect(rules.count == 2)
        #expect(rules[0]["name"]?.stringValue == "web" && rules[0]["proto"]?.stringValue == "tcp" && rules[0]["listen"]?.stringValue == "\(tcpPort)")
        #expect(rules[0]["splice_capable"]?.boolValue == true && rules[0]["udp_max_flows"] == .null)
        // Targets in file order, as written, with their priority and PROXY version.
        let targets = try #require(rules[0]["targets"]?.arrayValue)
        #expect(targets.count == 2)
        #expect(targets[0]["host"]?.stringValue == "127.0.0.1" && targets[0]["port"]?.uint64Value == UInt64(tcpBackend.port))
        #expect(targets[0]["priority"]?.uint64Value == 1 && targets[0]["proxy_protocol"]?.stringValue == "v2")
        #expect(targets[1]["host"]?.stringValue == "localhost.invalid" && targets[1]["proxy_protocol"] == .null)
        #expect(rules[1]["proto"]?.stringValue == "udp" && rules[1]["splice_capable"]?.boolValue == false && rules[1]["udp_max_flows"]?.uint64Value == 77)
        // The ids are BLAKE3 of the names (checked against b3sum in BLAKE3Tests).
        #expect(rules[0]["id"]?.stringValue == String(BLAKE3.ruleID("web")) && rules[1]["id"]?.stringValue == String(BLAKE3.ruleID("dns")))

        let first = try reader.json()
        #expect(first["seq"]?.uint64Value == 1)
        for key in ["t_ms", "uptime_ms"] { #expect(Self.isUInt(first[key]), "\(key)") }
        for key in ["fd_open", "fd_limit", "rss_bytes"] { #expect(Self.isUInt(first["process"]?[key]), "process.\(key)") }
        let r = try #require(first["r"]?.arrayValue)
        #expect(r.count == 2)
        for rule in r {
            for key in ["in", "out", "conns_active", "conns_total", "datagrams_in", "datagrams_out", "flows_active", "target_failovers_total"] {
                #expect(Self.isUInt(rule[key]), "\(key)")
            }
            for key in Self.errKeys { #expect(Self.isUInt(rule["err"]?[key]), "err.\(key)") }
        }

        // Traffic: a TCP connection with 1,000 bytes each way and 3 UDP datagrams of 10 bytes.
        // The target gets a 28-byte PROXY v2 header first, which the echo backend returns
        // too: 1,028 bytes back. `in` counts the client's bytes only (not our header).
        let conn = try TestSocket.connect("127.0.0.1", tcpPort)
        try conn.sendAll([UInt8](repeating: 7, count: 1000))
        _ = try conn.receive(exactly: 1028)
        conn.close()
        let client = try UDPSocket()
        for _ in 0..<3 {
            try client.send([UInt8](repeating: 1, count: 10), to: udpPort)
            #expect(client.receive() != nil)
        }

        // Snapshots keep coming every refresh_ms (±20 %), seq rising by one, until the
        // counters show that traffic.
        var last = first["seq"]!.uint64Value!
        var arrivals: [Date] = []
        var web: JSON?, dns: JSON?
        for _ in 0..<40 {
            let got = try #require(reader.line(timeoutSecs: 2), "a snapshot is late")
            arrivals.append(got.at)
            let snapshot = try JSON.parse(got.text)
            let seq = try #require(snapshot["seq"]?.uint64Value)
            #expect(seq == last + 1)
            last = seq
            web = snapshot["r"]?.arrayValue?.first
            dns = snapshot["r"]?.arrayValue?.last
            if web?["conns_total"]?.uint64Value == 1 && web?["conns_active"]?.uint64Value == 0 && dns?["datagrams_out"]?.uint64Value == 3 && arrivals.count >= 8 { break }
        }
        #expect(web?["in"]?.uint64Value == 1000)
        #expect(web?["out"]?.uint64Value == 1028)
        #expect(web?["conns_total"]?.uint64Value == 1)
        #expect(dns?["datagrams_in"]?.uint64Value == 3 && dns?["datagrams_out"]?.uint64Value == 3)
        #expect(dns?["in"]?.uint64Value == 30 && dns?["out"]?.uint64Value == 30)
        #expect(dns?["flows_active"]?.uint64Value == 1)
        let gaps = zip(arrivals.dropFirst(), arrivals).map { $0.timeIntervalSince($1) * 1000 }
        // The median gap within ±20 % of 250 ms; one slow scheduling on a loaded machine is
        // not the cadence.
        let median = gaps.sorted()[gaps.count / 2]
        #expect((200...300).contains(median), "snapshot gaps \(gaps.map { Int($0) }) ms")
    }

    @Test func aSeventeenthClientIsClosedWithoutAByteAndAStalledOneIsDroppedWithoutDelayingOthers() throws {
        let backend = try TestBackend(.echo)
        // 30 more rules make each snapshot ~10 KB, so a client that stops reading fills its
        // 64 KiB socket buffer within a few snapshots.
        var extra = ""
        let ports = freePorts(31)
        for i in 0..<30 { extra += "[[rule]]\nname = \"filler-\(i)\"\nlisten_port = \(ports[i])\ntarget = \"127.0.0.1:\(backend.port)\"\n" }
        let forwarder = try ForwarderProcess(config: Self.config(tcpListen: ports[30], tcpTarget: backend.port, udpListen: freeUDPListenPort(),
                                                                 udpTarget: 9, extraRules: extra))
        defer { forwarder.stop() }
        let stalled = try StatsSocketReader(forwarder.statsSocketPath)
        var readers = [try StatsSocketReader(forwarder.statsSocketPath)]
        for _ in 0..<14 { readers.append(try StatsSocketReader(forwarder.statsSocketPath)) }
        for reader in readers { _ = try reader.json(); _ = try reader.json() }
        // 1 stalled + 15 readers = 16: the next one is accepted and closed at once.
        let extraClient = try StatsSocketReader(forwarder.statsSocketPath)
        #expect(extraClient.line(timeoutSecs: 2) == nil, "the 17th client must get no byte")
        var probe = [UInt8](repeating: 0, count: 1)
        #expect(recv(extraClient.fd, &probe, 1, Int32(MSG_DONTWAIT)) == 0, "and be closed")

        // The stalled client never reads. For 8 s every other client keeps getting its
        // snapshots on time.
        let watched = readers[0]
        let start = Date()
        var lastArrival = Date()
        var worstGapMs = 0.0
        while Date().timeIntervalSince(start) < 8 {
            for reader in readers.dropFirst() { while reader.pendingBytes > 0, reader.line(timeoutSecs: 0.01) != nil {} }
            let got = try #require(watched.line(timeoutSecs: 2), "a reading client stopped getting snapshots")
            worstGapMs = max(worstGapMs, got.at.timeIntervalSince(lastArrival) * 1000)
            lastArrival = got.at
        }
        #expect(worstGapMs < 750, "a reading client waited \(Int(worstGapMs)) ms between snapshots")
        // By now the stalled one was dropped: what it holds ends in EOF.
        var drained = 0
        while stalled.line(timeoutSecs: 1) != nil { drained += 1 }
        #expect(recv(stalled.fd, &probe, 1, Int32(MSG_DONTWAIT)) == 0, "the stalled client was not closed (\(drained) lines drained)")
        // Its place is free again.
        let newcomer = try StatsSocketReader(forwarder.statsSocketPath)
        #expect(try newcomer.json()["v"]?.uint64Value == 1)
    }

    @Test func theSocketIsReplacedWhenStaleRemovedOnStopAndAbsentWithNoStats() throws {
        let backend = try TestBackend(.echo)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pu-stats-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The parent directory does not exist yet: it is made (0750).
        let path = dir.appendingPathComponent("run/standalone.sock").path
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("run"), withIntermediateDirectories: true)
        // A stale socket: bound once, its owner gone.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(stale)
        #expect(FileManager.default.fileExists(atPath: path))
        let config = tcpRuleConfig(listenPort: freePort(), target: "127.0.0.1:\(backend.port)")
        let forwarder = try ForwarderProcess(config: config, arguments: ["--stats-socket", path])
        #expect(try StatsSocketReader(path).json()["v"]?.uint64Value == 1)
        // A second forwarder must not take over a live socket: it runs on without stats.
        let second = try ForwarderProcess(config: tcpRuleConfig(listenPort: freePort(), target: "127.0.0.1:\(backend.port)"), arguments: ["--stats-socket", path])
        #expect(second.stderrText.contains("stats_socket_bind_failed") && second.stderrText.contains("another process serves"))
        #expect(second.stop().exitCode == 0)
        #expect(FileManager.default.fileExists(atPath: path), "the second forwarder must leave the first one's socket alone")
        #expect(try StatsSocketReader(path).json()["v"]?.uint64Value == 1)
        #expect(forwarder.stop().exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "the socket is removed at exit")

        let quiet = try ForwarderProcess(config: config, arguments: ["--no-stats"])
        #expect(!FileManager.default.fileExists(atPath: quiet.statsSocketPath))
        #expect(quiet.stop().exitCode == 0)
    }

    @Test func statsOnceIsOneSortedDocumentThatPythonPrintsTheSame() throws {
        let backend = try TestBackend(.echo)
        let forwarder = try ForwarderProcess(config: Self.config(tcpListen: freePort(), tcpTarget: backend.port, udpListen: freeUDPListenPort(), udpTarget: 9))
        defer { forwarder.stop() }
        let result = try runBinary(["stats", "--socket", forwarder.statsSocketPath, "--once"])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let document = try JSON.parse(result.stdout)
        #expect(document["hello"]?["v"]?.uint64Value == 1)
        #expect(document["snapshot"]?["seq"]?.uint64Value == 1)
        // An independent printer: Python's json with indent=2 and sorted keys must give
        // back the very same bytes (serde_json's pretty layout, which Portunus prints).
        #expect(try pythonPrettySortedJSON(result.stdout) + "\n" == result.stdout)
        #expect(result.stdout.hasPrefix("{\n  \"hello\": {\n    \"daemon_started_at_ms\": "))

        let missing = try runBinary(["stats", "--socket", forwarder.directory.appendingPathComponent("none.sock").path, "--once"])
        #expect(missing.exitCode == 2)
        #expect(missing.stderr.contains("cannot connect") && missing.stderr.contains("No such file"))
        let notATerminal = try runBinary(["stats", "--socket", forwarder.statsSocketPath])
        #expect(notATerminal.exitCode == 2 && notATerminal.stderr.contains("--once"))
        let version = try runBinary(["-V"])
        #expect(version.exitCode == 0 && version.stdout.hasPrefix("portunus-uring "))
    }

    /// The dashboard in a real terminal: tmux runs it, keys go in with send-keys, the
    /// screen comes back with capture-pane.
    @Test func theDashboardShowsARulesRateChangeSwitchesViewsAndQuits() throws {
        let backend = try TestBackend(.echo)
        let port = freePort()
        let forwarder = try ForwarderProcess(config: Self.config(tcpListen: port, tcpTarget: backend.port, udpListen: freeUDPListenPort(), udpTarget: 9))
        defer { forwarder.stop() }
        let session = "pu-dash-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // posix_spawn, not Process: the tmux server that new-session forks keeps the
        // descriptors it inherited, and Process may never see that client exit.
        func tmux(_ args: [String]) throws -> (exitCode: Int32, stdout: String) {
            let result = try runCommand(["/usr/bin/tmux"] + args, timeoutSecs: 10)
            return (result.exitCode, result.output)
        }
        defer { _ = try? tmux(["kill-session", "-t", session]) }
        #expect(try tmux(["new-session", "-d", "-s", session, "-x", "140", "-y", "40",
                          "\(Repository.binary) stats --socket \(forwarder.statsSocketPath); echo dashboard-exit-$?; sleep 30"]).exitCode == 0)
        func screen() throws -> String { try tmux(["capture-pane", "-p", "-t", session]).stdout }
        func waitFor(_ what: String, secs: Double = 5, _ check: (String) -> Bool) throws -> String {
            let deadline = Date().addingTimeInterval(secs)
            var last = ""
            while Date() < deadline {
                last = try screen()
                if check(last) { return last }
                usleep(100_000)
            }
            Issue.record("the dashboard never showed \(what); screen:\n\(last)")
            return last
        }
        let webRow = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("web ") }.map(String.init) ?? "" }
        _ = try waitFor("the overview") { $0.contains("Overview") && !webRow($0).isEmpty }
        let idle = webRow(try screen())
        #expect(idle.contains(" 0 B "), "no traffic yet: \(idle)")
        // Traffic for ~3 s: the in/s cell must leave 0 B.
        let conn = try TestSocket.connect("127.0.0.1", port)
        let started = Date()
        var moving = ""
        while Date().timeIntervalSince(started) < 4 {
            try conn.sendAll([UInt8](repeating: 1, count: 200_000))
            _ = try conn.receive(exactly: 200_000)
            let row = webRow(try screen())
            if row.contains("KiB") || row.contains("MiB") { moving = row; break }
            usleep(50_000)
        }
        let lastRow = webRow(try screen())
        #expect(!moving.isEmpty, "the web row never showed a rate: \(lastRow)")
        _ = try tmux(["send-keys", "-t", session, "3"])
        _ = try waitFor("the error counters") { $0.contains("upstream_connect_failed") && $0.contains("flows_dropped_overflow") }
        _ = try tmux(["send-keys", "-t", session, "2"])
        _ = try waitFor("the detail of web") { $0.contains("target_failovers_total") && $0.contains("last 60 s") }
        _ = try tmux(["send-keys", "-t", session, "q"])
        let after = try waitFor("the exit") { $0.contains("dashboard-exit-0") }
        // Off the alternate screen: the dashboard's frame is gone from the shell's screen.
        #expect(!after.contains("Overview"), "the terminal was not given back:\n\(after)")
    }
}
