import CLiburing
import Glibc

/// A failed system call or io_uring operation: the operation's name and the errno
/// it returned, e.g. `connect: Connection refused (errno 111)`.
///
/// Environment failures (a refused connection, a port in use) travel as this value;
/// programmer errors (EBADF, EFAULT, EINVAL from our own SQEs) trap instead.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C call or io_uring opcode that failed, e.g. `"bind"`.
    public let operation: String
    /// The positive errno value.
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Builds the error from a negative `-errno` result as io_uring and liburing report it.
    public init(_ operation: String, result: Int32) {
        self.init(operation, errno: -result)
    }

    /// The C library's text for the errno (`strerror`).
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(operation): \(reason) (errno \(errno))" }
}

/// Reads `errno` right after a failed call, as swift-nio does: nothing may run in between.
@inline(__always)
func lastError(_ operation: String) -> SystemError {
    SystemError(operation, errno: Glibc.errno)
}
