import Foundation
import PortunusStats
import Testing
import TestSupport

/// Bad input at the command line: each asserted on exit code and stderr.
@Suite struct CommandLineTests {
    static func writeTemp(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-cli-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func missingConfigFile() throws {
        let result = try runBinary(["--config", "/nonexistent/portunus.toml"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("error[io.read_failed]"))
        #expect(result.stderr.contains("/nonexistent/portunus.toml"))
    }

    @Test func tomlSyntaxErrorNamesLineAndColumn() throws {
        let path = try Self.writeTemp("[[rule]]\nname = \"a\"\nlisten_port = = 80\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runBinary(["--config", path])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("error[parse.syntax]"))
        #expect(result.stderr.contains("\(path):3:"))
    }

    @Test func listenPortAlreadyInUse() throws {
        let holder = try TestBackend(.echo)   // owns 127.0.0.1:PORT
        let path = try Self.writeTemp(tcpRuleConfig(name: "busy", listenPort: holder.port, target: "127.0.0.1:9"))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runBinary(["--config", path])
        #expect(result.exitCode == 1)
        // Portunus's shape first, then a line naming the port.
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "error: 1 rule(s) failed to bind:")
        #expect(lines.dropFirst().first == "- busy (\(BLAKE3.ruleID("busy"))): port_in_use")
        let detail = lines.filter { $0.hasPrefix("error[port_in_use]") }
        #expect(detail.count == 1)
        #expect(detail.first?.contains("rule \"busy\"") == true)
        #expect(detail.first?.contains("listen port \(holder.port)") == true)
    }

    /// A seccomp filter makes io_uring_setup fail with EPERM, as a container runtime's
    /// default profile does. (x86_64 syscall number 425.)
    @Test func ioUringUnavailable() throws {
        let script = """
        import ctypes, os, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        # ld [nr]; jeq 425 ? errno(EPERM) : allow
        insns = [(0x20, 0, 0, 0), (0x15, 0, 1, 425), (0x06, 0, 0, 0x00050000 | 1), (0x06, 0, 0, 0x7fff0000)]
        buf = b"".join(struct.pack("HBBI", *i) for i in insns)
        filt = ctypes.create_string_buffer(buf)
        prog = struct.pack("HxxxxxxQ", len(insns), ctypes.addressof(filt))
        progbuf = ctypes.create_string_buffer(prog)
        assert libc.prctl(38, 1, 0, 0, 0) == 0          # PR_SET_NO_NEW_PRIVS
        assert libc.prctl(22, 2, progbuf, 0, 0) == 0    # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        os.execv(sys.argv[1], sys.argv[1:])
        """
        let scriptPath = FileManager.default.temporaryDirectory.appendingPathComponent("pu-seccomp-\(UUID().uuidString).py").path
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let config = try Self.writeTemp(tcpRuleConfig(listenPort: freePort(), target: "127.0.0.1:9"))
        defer {
            try? FileManager.default.removeItem(atPath: scriptPath)
            try? FileManager.default.removeItem(atPath: config)
        }
        let result = try runBinary(["--config", config], wrapper: ["/usr/bin/python3", scriptPath])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("error[io_uring_unavailable]"))
        #expect(result.stderr.contains("kernel.io_uring_disabled"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func usageErrorExitsTwo() throws {
        let result = try runBinary(["--workers", "0"])
        #expect(result.exitCode == 2)
        #expect(result.stderr.contains("--workers"))
        let relay = try runBinary(["--relay", "zerocopy"])
        #expect(relay.exitCode == 2)
        #expect(relay.stderr.contains("--relay"))
    }

    @Test(arguments: ["valid_minimal.toml", "valid_proxy_mixed.toml", "valid_portunus_full_example.toml", "valid_udp.toml",
                           "valid_accept_proxy.toml"])
    func checkAcceptsValidFixtures(file: String) throws {
        let result = try runBinary(["--check", "--config", Repository.fixtures.appendingPathComponent(file).path])
        #expect(result.exitCode == 0)
        #expect(result.stdout == "ok\n")
        #expect(result.stderr.isEmpty)
    }

    @Test(arguments: [
        ("invalid_no_rules.toml", "error[config.no_rules]"),
        ("invalid_proxy_on_udp.toml", "error[validation.proxy_protocol_on_unsupported_rule]: rule \"dns\""),
        ("invalid_proxy_value.toml", "error[validation.proxy_protocol_invalid]: rule \"web\", targets[0].proxy_protocol"),
        ("invalid_accept_proxy_on_udp.toml", "error[validation.accept_proxy_invalid]: rule \"dns\", accept_proxy: PROXY on the way in is TCP only"),
        ("invalid_proxy_option_needs_v2.toml",
         "error[validation.proxy_protocol_option_needs_v2]: rule \"web\", targets[0].proxy_protocol_unique_id: "),
    ])
    func checkRejectsFixtures(file: String, expected: String) throws {
        let result = try runBinary(["--check", "--config", Repository.fixtures.appendingPathComponent(file).path])
        #expect(result.exitCode == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains(expected))
    }

    /// A rule's accept_proxy_timeout_secs without accept_proxy in force is a warning:
    /// `--check` prints it and passes.
    @Test func anUnusedAcceptProxyTimeoutIsACheckWarning() throws {
        let path = try Self.writeTemp("[[rule]]\nname = \"web\"\nlisten_port = 8080\ntarget = \"127.0.0.1:80\"\naccept_proxy_timeout_secs = 7\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try runBinary(["--check", "--config", path])
        #expect(result.exitCode == 0)
        #expect(result.stdout == "ok\n")
        #expect(result.stderr.contains("warning[validation.accept_proxy_timeout_unused]: rule \"web\", accept_proxy_timeout_secs: 7 s is never used"))
    }
}
