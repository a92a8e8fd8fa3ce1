// Reads the config file with plain POSIX calls so a failure can name the
// failing call and errno, in the house style "open: No such file or
// directory (errno 2)", instead of a Foundation error domain dump.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which one and its errno.
struct SystemCallError: Error, Equatable, CustomStringConvertible {
    let call: String
    let errno: Int32
    /// Set instead of errno-derived text for failures that are ours, not the kernel's.
    var detail: String?

    var description: String {
        if let detail { return "\(call): \(detail)" }
        return "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

enum FileReader {
    /// The whole file, or the call that failed. Directories fail with EISDIR
    /// from read(2); files over `limit` bytes are refused.
    static func readAll(path: String, limit: Int) -> Result<[UInt8], SystemCallError> {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return .failure(SystemCallError(call: "open", errno: errno)) }
        defer { close(fd) }  // read-only: nothing to lose if close fails

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                retryingEINTR { read(fd, buffer.baseAddress, buffer.count) }
            }
            if count < 0 { return .failure(SystemCallError(call: "read", errno: errno)) }
            if count == 0 { return .success(bytes) }
            bytes += chunk[..<count]
            if bytes.count > limit {
                return .failure(SystemCallError(call: "read", errno: EFBIG,
                                                detail: "file is larger than \(limit >> 20) MiB"))
            }
        }
    }

    /// Retries a call interrupted by a signal (EINTR), the one place that
    /// does, as the daemon installs signal handlers before loading config.
    private static func retryingEINTR<T: SignedInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }
}
