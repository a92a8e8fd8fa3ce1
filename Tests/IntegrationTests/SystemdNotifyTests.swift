import Foundation
import Glibc
import Testing
import TestSupport

/// The sd_notify messages the real binary sends to `$NOTIFY_SOCKET`, received by the
/// test playing the service manager: the exact datagrams, their order, and that
/// `READY=1` comes only once the forwarder serves.
@Suite(.serialized) struct SystemdNotifyTests {
    /// Start-up, SIGHUP and SIGTERM against a socket at a filesystem path. At `READY=1`
    /// the forwarder is frozen (SIGSTOP) and a client connects: the listener was bound
    /// and the stats socket made before the message was sent, not after.
    @Test func readyReloadingAndStoppingArriveInOrderAtAPath() throws {
        let manager = try NotifyReceiver(abstract: false)
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(echo.port)"),
                                             arguments: ["--workers", "2"],
                                             environment: ["NOTIFY_SOCKET": manager.notifySocket], waitForStart: false)
        let ready = try #require(manager.next(), "no READY=1 within 10 s: \(forwarder.stderrText)")
        #expect(kill(forwarder.pid, SIGSTOP) == 0)
        #expect(ready == "READY=1\nSTATUS=forwarding: 1 rule(s), 2 worker(s)\n")
        // The kernel completes the handshake for a bound listener while the process is
        // stopped; without one the connect would be refused.
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        var status = stat()
        #expect(stat(forwarder.statsSocketPath, &status) == 0 && status.st_mode & S_IFMT == S_IFSOCK,
                "the stats socket was not there at READY=1")
        #expect(forwarder.stderrText.contains(" INFO started "))
        #expect(kill(forwarder.pid, SIGCONT) == 0)
        try client.sendAll([1, 2, 3])
        #expect(try client.receive(exactly: 3) == [1, 2, 3])

        let beforeHangUp = monotonicMicroseconds()
        #expect(kill(forwarder.pid, SIGHUP) == 0)
        let reloading = try #require(manager.next(), "no RELOADING=1 within 10 s")
        let afterHangUp = monotonicMicroseconds()
        let lines = reloading.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[0] == "RELOADING=1" && lines[1].hasPrefix("MONOTONIC_USEC=") && lines[2] == "",
                "\(reloading.debugDescription)")
        // CLOCK_MONOTONIC of the forwarder, read between the signal and its receipt.
        let stamp = lines.count == 3 ? UInt64(lines[1].dropFirst("MONOTONIC_USEC=".count)) : nil
        #expect(stamp.map { (beforeHangUp...afterHangUp).contains($0) } == true,
                "MONOTONIC_USEC \(String(describing: stamp)) not within \(beforeHangUp)...\(afterHangUp)")
        #expect(manager.next() == "READY=1\nSTATUS=forwarding: 1 rule(s), reloaded\n")
        // A file that does not validate: READY=1 all the same (the old one still serves).
        #expect(try forwarder.reload(config: "[[rule]\n") == false)
        #expect(manager.next()?.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") == true)
        #expect(manager.next() == "READY=1\nSTATUS=forwarding: the last reload failed; running the previous configuration\n")
        try client.sendAll([4])
        #expect(try client.receive(exactly: 1) == [4], "the connection outlived the SIGHUP")
        client.shutdownWrite()
        #expect(try client.receiveAll() == [])

        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(manager.next() == "STOPPING=1\nSTATUS=stopping: draining open connections\n")
        #expect(manager.next(timeoutSecs: 0.2) == nil, "a message after STOPPING=1")
    }

    /// `NOTIFY_SOCKET=@name`: the abstract namespace, whose address is exactly the name
    /// (a receiver bound to the name padded with NULs would get nothing).
    @Test func abstractSocketGetsReadyAndStopping() throws {
        let manager = try NotifyReceiver(abstract: true)
        #expect(manager.notifySocket.hasPrefix("@"))
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(echo.port)"),
                                             arguments: ["--workers", "1"],
                                             environment: ["NOTIFY_SOCKET": manager.notifySocket])
        #expect(manager.next() == "READY=1\nSTATUS=forwarding: 1 rule(s), 1 worker(s)\n")
        let client = try TestSocket.connect("::1", listen, receiveTimeoutSecs: 5)
        try client.sendAll([9, 8, 7])
        #expect(try client.receive(exactly: 3) == [9, 8, 7])
        client.close()
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(manager.next() == "STOPPING=1\nSTATUS=stopping: draining open connections\n")
    }

    /// Nobody listening at `$NOTIFY_SOCKET`: the forwarder runs and stops as ever, and the
    /// failure is logged once at debug however many messages fail (start, reload, stop).
    @Test func anUnreachableNotifySocketIsLoggedOnceAndNeverFatal() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-notify-\(UUID().uuidString)")
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(echo.port)"),
                                             arguments: ["--log-level", "debug"],
                                             environment: ["NOTIFY_SOCKET": directory.appendingPathComponent("nobody.sock").path])
        #expect(kill(forwarder.pid, SIGHUP) == 0)
        // The SIGHUP's own log line: the reload's.
        var reloaded = false
        for _ in 0..<500 where !reloaded {
            usleep(10_000)
            let text = forwarder.stderrText
            reloaded = text.contains("event=standalone.reload ")
        }
        #expect(reloaded)
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        try client.sendAll([5])
        #expect(try client.receive(exactly: 1) == [5])
        client.close()
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        let failures = result.stderr.split(separator: "\n").filter { $0.contains("event=standalone.notify_failed") }
        #expect(failures.count == 1, "\(failures)")
        #expect(failures.first?.contains("DEBUG") == true && failures.first?.contains("(errno 2)") == true, "\(failures)")
    }

    private func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

/// The service manager's end of sd_notify: an `AF_UNIX`/`SOCK_DGRAM` socket bound at a
/// path in a temp directory of its own, or at an abstract name. Closed (and the
/// directory removed) on deinit.
final class NotifyReceiver {
    let fd: Int32
    /// What `$NOTIFY_SOCKET` must say to reach it: the path, or `@` and the name.
    let notifySocket: String
    private let directory: URL?

    init(abstract: Bool) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket(AF_UNIX, SOCK_DGRAM): errno \(errno)") }
        var name: [UInt8]
        if abstract {
            directory = nil
            notifySocket = "@portunus-notify-test-\(UUID().uuidString)"
            name = [0] + Array(notifySocket.utf8.dropFirst())
        } else {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pu-notify-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            directory = dir
            notifySocket = dir.appendingPathComponent("notify.sock").path
            name = Array(notifySocket.utf8) + [0]
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + name.count)
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard rc == 0 else { let e = errno; Glibc.close(fd); throw TestError("bind \(notifySocket): errno \(e)") }
    }

    deinit {
        Glibc.close(fd)
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// The next datagram within `timeoutSecs`, as text; nil when none arrived.
    func next(timeoutSecs: Double = 10) -> String? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeoutSecs * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}
