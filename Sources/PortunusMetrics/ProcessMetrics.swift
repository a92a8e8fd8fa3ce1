import Glibc

/// The process figures Prometheus's client libraries export under the `process_` names
/// (open and maximum descriptors, resident and virtual memory, start time), read from
/// /proc at scrape time: a directory listing and two small reads, on the metrics
/// thread only. nil where /proc cannot be read.
struct ProcessMetrics: Sendable {
    var openFDs: UInt64?
    var maxFDs: UInt64?
    var residentBytes: UInt64?
    var virtualBytes: UInt64?

    static func read() -> ProcessMetrics {
        var figures = ProcessMetrics()
        if let dir = opendir("/proc/self/fd") {
            var count: UInt64 = 0
            while let entry = readdir(dir) {
                if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
            }
            closedir(dir)
            // Less the descriptor opendir held while listing.
            figures.openFDs = count > 0 ? count - 1 : 0
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            figures.maxFDs = UInt64(limit.rlim_cur)
        }
        // statm (proc(5)): total program size and resident set, in pages.
        if let text = readProcFile("/proc/self/statm") {
            let fields = text.split(separator: " ")
            let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count > 1, let size = UInt64(fields[0]), let resident = UInt64(fields[1]) {
                figures.virtualBytes = size * page
                figures.residentBytes = resident * page
            }
        }
        return figures
    }

    /// When the process started, in seconds since the Unix epoch: the boot time
    /// (`btime` of /proc/stat) plus the process's start in clock ticks after boot
    /// (field 22 of /proc/self/stat), as Prometheus's Go client computes it.
    static func startTimeUnixSeconds() -> Double? {
        guard let stat = readProcFile("/proc/self/stat"),
              let system = readProcFile("/proc/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold blanks: count the
        // fields after its closing parenthesis, which is field 3.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let after = stat[stat.index(after: close)...].split(separator: " ")
        guard after.count > 19, let ticks = UInt64(after[19]) else { return nil }
        guard let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = UInt64(line.dropFirst("btime ".count)) else { return nil }
        let hertz = sysconf(Int32(_SC_CLK_TCK))
        guard hertz > 0 else { return nil }
        return Double(boot) + Double(ticks) / Double(hertz)
    }

    /// The text of a small /proc file (at most 64 KiB; /proc/stat on a large machine is
    /// the largest read here), or nil.
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 << 10 {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
