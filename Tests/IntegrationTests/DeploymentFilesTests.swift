import Foundation
import Glibc
import Testing
import TestSupport

/// The files in `deploy/`: the systemd unit (its keys; `systemd-analyze verify` and the
/// system-call check where those tools are installed) and the Kubernetes example (YAML
/// read by Debian's python3-yaml; its config passes `--check`). Neither is run under a
/// real systemd or cluster here.
@Suite struct DeploymentFilesTests {
    static let unitPath = Repository.root.appendingPathComponent("deploy/portunus-uring.service").path
    static let manifestPath = Repository.root.appendingPathComponent("deploy/kubernetes/portunus-uring.yaml").path
    /// `[stats] socket_path`'s default (SPEC.md §8, README "Stats socket").
    static let defaultStatsSocket = "/run/portunus/standalone.sock"
    /// `[global] shutdown_drain_secs`'s default.
    static let defaultDrainSecs = 30

    /// One `Key=Value` line of a unit file, with its section.
    struct UnitEntry: Equatable {
        let section: String
        let key: String
        let value: String
    }

    /// The unit file's entries in order (comments and blank lines skipped). A line that
    /// is neither a section header nor `Key=Value` is an error naming its line number.
    static func unitEntries(_ text: String) throws -> [UnitEntry] {
        var section = ""
        var entries: [UnitEntry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") { section = String(line.dropFirst().dropLast()); continue }
            guard let equals = line.firstIndex(of: "="), !section.isEmpty else {
                throw TestError("\(unitPath):\(index + 1): neither [Section] nor Key=Value: \(line)")
            }
            entries.append(UnitEntry(section: section, key: String(line[..<equals]), value: String(line[line.index(after: equals)...])))
        }
        return entries
    }

    @Test func systemdUnitHasTheEssentials() throws {
        let entries = try Self.unitEntries(String(contentsOfFile: Self.unitPath, encoding: .utf8))
        func values(_ key: String) -> [String] { entries.filter { $0.section == "Service" && $0.key == key }.map(\.value) }
        #expect(values("Type") == ["notify"])
        #expect(values("ExecStart") == ["/usr/local/bin/portunus-uring --config /etc/portunus-uring/edge.toml"])
        #expect(values("ExecReload").last == "/bin/kill -HUP $MAINPID")
        #expect(values("Restart") == ["on-failure"])
        #expect(values("KillSignal") == ["SIGTERM"])
        let stopSecs = values("TimeoutStopSec").first.flatMap { Int($0.replacingOccurrences(of: "s", with: "")) }
        #expect(stopSecs.map { $0 > Self.defaultDrainSecs } == true, "TimeoutStopSec \(values("TimeoutStopSec")) is not above the \(Self.defaultDrainSecs) s drain")
        // Two descriptors per connection, for the 262,144 connections the forwarder sizes itself to at most.
        #expect(values("LimitNOFILE").first.flatMap { Int($0) }.map { $0 >= 2 * 262_144 } == true, "\(values("LimitNOFILE"))")
        #expect(values("AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"])
        #expect(values("CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"])
        #expect(values("RuntimeDirectory") == [String(Self.defaultStatsSocket.split(separator: "/")[1])],
                "the default stats socket \(Self.defaultStatsSocket) needs its directory")
        let families = Set(values("RestrictAddressFamilies").flatMap { $0.split(separator: " ").map(String.init) })
        #expect(families == ["AF_INET", "AF_INET6", "AF_UNIX"], "AF_UNIX for the stats socket and sd_notify")
        // Every allow-list names the io_uring calls itself; no deny-list names them or a group holding them.
        let filters = values("SystemCallFilter")
        #expect(!filters.isEmpty)
        for filter in filters {
            let items = Set(filter.split(separator: " ").map(String.init))
            if filter.hasPrefix("~") {
                #expect(items.isDisjoint(with: ["~io_uring_setup", "~io_uring_enter", "~io_uring_register", "io_uring_setup", "io_uring_enter", "io_uring_register", "~@aio", "@aio", "~@system-service"]), "\(filter)")
            } else {
                #expect(items.isSuperset(of: ["io_uring_setup", "io_uring_enter", "io_uring_register"]), "\(filter)")
            }
        }
        for key in ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "LockPersonality", "MemoryDenyWriteExecute", "DynamicUser"] {
            #expect(values(key) == ["yes"], "\(key)")
        }
        #expect(values("ProtectSystem") == ["strict"])
        #expect(values("SystemCallArchitectures") == ["native"])
    }

    /// `systemd-analyze verify` on a scratch root holding the unit, the built binary at
    /// its ExecStart path, /bin/kill and the system's own units: exit 0 and not one
    /// warning (an unknown key is only a warning, hence the empty output).
    @Test
    func systemdAnalyzeVerifiesTheUnit() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("pu-unit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for dir in ["usr/local/bin", "bin", "etc/systemd/system", "lib/systemd"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        let kill = ["/bin/kill", "/usr/bin/kill"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let copies = [
            (Repository.binary, "usr/local/bin/portunus-uring"), (try #require(kill, "no kill(1) to stand for ExecReload's"), "bin/kill"),
            (Self.unitPath, "etc/systemd/system/portunus-uring.service"), ("/lib/systemd/system", "lib/systemd/system"),
        ]
        for (from, to) in copies {
            let copied = try runCommand(["/bin/cp", "-a", from, root.appendingPathComponent(to).path])
            #expect(copied.exitCode == 0, "cp \(from): \(copied.output)")
        }
        let verify = try runCommand(["/usr/bin/systemd-analyze", "verify", "--root=\(root.path)", "portunus-uring.service"], timeoutSecs: 60)
        #expect(verify.exitCode == 0)
        #expect(verify.output == "", "systemd-analyze verify: \(verify.output)")
    }

    /// deploy/check-syscall-filter.py: the debug binary under strace through start-up,
    /// the splice path (forced, so a splice call is certain under strace's slowness),
    /// a DNS-named target, UDP, a stats client, SIGUSR1, SIGHUP
    /// with sd_notify, SIGTERM; every call it made is in the unit's filter.
    @Test
    func syscallFilterAllowsEveryCallTheForwarderMakes() throws {
        let script = Repository.root.appendingPathComponent("deploy/check-syscall-filter.py").path
        let result = try runCommand(["/usr/bin/python3", script, Repository.binary], timeoutSecs: 180)
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output.contains("io_uring_setup") && result.output.contains("splice"), "the run did not reach the rings or the splice path: \(result.output)")
        #expect(result.output.hasSuffix("every one is allowed by the unit's SystemCallFilter=\n"), "\(result.output)")
    }

    /// The manifest as JSON, read by PyYAML (an independent YAML parser; Debian python3-yaml).
    static func manifestDocuments() throws -> [[String: Any]] {
        let read = try runFiltering(["/usr/bin/python3", "-c",
                                     "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)", manifestPath],
                                    input: [])
        guard read.exitCode == 0 else { throw TestError("python3 -c 'import yaml' could not read \(manifestPath): exit \(read.exitCode) (is python3-yaml installed?)") }
        return try #require(try JSONSerialization.jsonObject(with: Data(read.output.utf8)) as? [[String: Any]])
    }

    @Test func kubernetesManifestParsesAndHoldsTogether() throws {
        let documents = try Self.manifestDocuments()
        #expect(documents.map { $0["kind"] as? String } == ["ConfigMap", "DaemonSet"])
        let configMap = try #require(documents.first { $0["kind"] as? String == "ConfigMap" })
        let daemonSet = try #require(documents.first { $0["kind"] as? String == "DaemonSet" })
        let configName = try #require((configMap["metadata"] as? [String: Any])?["name"] as? String)
        let edgeToml = try #require((configMap["data"] as? [String: Any])?["edge.toml"] as? String)

        let spec = try #require(daemonSet["spec"] as? [String: Any])
        let selector = try #require((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
        let template = try #require(spec["template"] as? [String: Any])
        let labels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
        #expect(selector.allSatisfy { labels[$0.key] == $0.value }, "the selector \(selector) does not match the pod labels \(labels)")
        let pod = try #require(template["spec"] as? [String: Any])
        #expect(pod["hostNetwork"] as? Bool == true)
        #expect(pod["shareProcessNamespace"] as? Bool == true, "the reloader signals the forwarder's process")
        let drain = try #require(edgeToml.firstMatch(of: /shutdown_drain_secs = (\d+)/).flatMap { Int($0.1) })
        #expect((pod["terminationGracePeriodSeconds"] as? Int).map { $0 > drain } == true, "the grace period must outlast the \(drain) s drain")

        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        let configVolume = try #require(volumes.first { ($0["configMap"] as? [String: Any])?["name"] as? String == configName },
                                        "no volume of the ConfigMap \(configName)")
        let containers = try #require(pod["containers"] as? [[String: Any]])
        let forwarder = try #require(containers.first { $0["name"] as? String == "portunus-uring" })
        let args = try #require(forwarder["args"] as? [String])
        let configPath = try #require(args.firstIndex(of: "--config").map { args[$0 + 1] })
        for container in containers {
            let mounts = (container["volumeMounts"] as? [[String: Any]] ?? []).filter { $0["name"] as? String == configVolume["name"] as? String }
            #expect(mounts.count == 1, "\(container["name"] ?? "?") mounts the config once")
            // A subPath mount never sees the ConfigMap's updates.
            #expect(mounts.allSatisfy { $0["subPath"] == nil })
            #expect(mounts.allSatisfy { ($0["mountPath"] as? String).map { "\($0)/edge.toml" == configPath } == true }, "--config \(configPath)")
        }
        let reloader = try #require(containers.first { $0["name"] as? String == "reloader" })
        let script = (reloader["command"] as? [String] ?? []).joined(separator: " ")
        #expect(script.contains(configPath) && script.contains("md5sum") && script.contains("pkill -HUP -x portunus-uring"), "\(script)")

        let security = try #require(forwarder["securityContext"] as? [String: Any])
        let seccomp = (security["seccompProfile"] as? [String: Any])?["type"] as? String
        #expect(seccomp == "Unconfined" || seccomp == "Localhost", "RuntimeDefault refuses io_uring")
        let capabilities = try #require(security["capabilities"] as? [String: [String]])
        #expect(capabilities["drop"] == ["ALL"] && capabilities["add"] == ["NET_BIND_SERVICE"])
        let probe = try #require((forwarder["readinessProbe"] as? [String: Any])?["exec"] as? [String: [String]])
        let statsSocket = try #require(edgeToml.firstMatch(of: /socket_path = "([^"]+)"/).map { String($0.1) })
        #expect(probe["command"]?.contains("stats") == true && probe["command"]?.contains(statsSocket) == true,
                "the readiness probe reads the config's stats socket: \(probe)")

        // The ConfigMap's file is one the forwarder accepts.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-k8s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("edge.toml")
        try edgeToml.write(to: file, atomically: true, encoding: .utf8)
        let check = try runBinary(["--check", "--config", file.path] + args.filter { $0 != "--config" && $0 != configPath })
        #expect(check.exitCode == 0 && check.stdout == "ok\n", "--check: \(check.stderr)")
    }
}
