import PortunusRing

/// Why the engine could not start. Each case names the rule and what to do.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    /// A listen port could not be bound (`code`: port_in_use, permission_denied, bind_failed).
    case bind(rule: String, port: UInt16, code: String, SystemError)
    /// io_uring cannot be used by this process.
    case ioUringUnavailable(SystemError)
    /// A worker could not set up its ring, buffers or wake-up fd.
    case workerSetup(worker: Int, SystemError)
    /// The config asks for something this build does not forward yet.
    case unsupported(rule: String, key: String, what: String)

    public var description: String {
        switch self {
        case let .bind(rule, port, code, error):
            return "error[\(code)]: rule \"\(rule)\", listen port \(port): \(error)"
        case let .ioUringUnavailable(error):
            return "error[io_uring_unavailable]: io_uring cannot be used by this process (\(error)); "
                + "check sysctl kernel.io_uring_disabled (must be 0) and any seccomp profile (container runtimes often block io_uring_setup)"
        case let .workerSetup(worker, error):
            return "error[worker_setup]: worker \(worker): \(error)"
        case let .unsupported(rule, key, what):
            return "error[not_yet_supported]: rule \"\(rule)\", \(key): \(what) is not yet supported by this version"
        }
    }
}
