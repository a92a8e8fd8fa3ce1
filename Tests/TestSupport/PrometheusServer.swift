import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server for the tests (Debian's `prometheus` package), started by
/// the test itself on 127.0.0.1 at a port of its own, scraping one target every second,
/// with its TSDB in a temporary directory. Never a system-wide instance: the package's
/// service, if one runs, is neither used nor touched. Killed, and its directory removed,
/// on `stop()`/deinit.
public final class PrometheusServer: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public static let binary = "/usr/bin/prometheus"
    public let port: UInt16
    private var pid: pid_t = 0
    private let directory: URL

    /// Starts Prometheus scraping `http://target/metrics` every second (at most 10 s).
    public init(scraping target: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestError("\(Self.binary) is missing: install Debian's prometheus (the README's test command does)")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: portunus
            metrics_path: /metrics
            static_configs:
              - targets: ['\(target)']

        """
        let configPath = directory.appendingPathComponent("prometheus.yml").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        port = freePort()
        pid = try spawn([
            Self.binary, "--config.file=\(configPath)", "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ], outputPath: directory.appendingPathComponent("log").path)
        let deadline = Date().addingTimeInterval(10)
        while (try? httpGet("127.0.0.1", port, "/-/ready", timeoutSecs: 2))?.status != 200 {
            if !isRunning { throw TestError("prometheus exited at start: \(log)") }
            if Date() > deadline { throw TestError("prometheus not ready within 10 s: \(log)") }
            usleep(100_000)
        }
    }

    deinit { stop() }

    public var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("log"), encoding: .utf8)) ?? ""
    }

    private var isRunning: Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { pid = 0; return false }
        return true
    }

    /// The value of an instant query's single sample (`/api/v1/query`), nil when the
    /// result has no sample yet.
    public func query(_ promQL: String) throws -> String? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "_-.")
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: allowed)!
        let response = try httpGet("127.0.0.1", port, "/api/v1/query?query=\(encoded)", timeoutSecs: 5)
        guard response.status == 200 else { throw TestError("query \(promQL): HTTP \(response.status) \(response.text)") }
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        let data = json?["data"] as? [String: Any]
        let result = data?["result"] as? [[String: Any]] ?? []
        guard result.count <= 1 else { throw TestError("query \(promQL): \(result.count) series") }
        return (result.first?["value"] as? [Any])?.last as? String
    }

    /// SIGTERM, then SIGKILL after 5 s; the directory removed.
    public func stop() {
        if pid > 0 {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                if Date() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
                usleep(20_000)
            }
            pid = 0
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
