import PortunusRing

/// Why the engine could not start. Each case names the rule and what to do.
public enum EngineError: Error, Sendable, CustomStringConvertible {
    /// A listen port could not be bound (`code`: port_in_use, permission_denied, bind_failed).
    case bind(rule: String, port: UInt16, code: String, SystemError)
    /// io_uring cannot be used by this process.
    case ioUringUnavailable(SystemError)
    /// io_uring works, but the kernel lacks a feature the workers' rings need.
    case ioUringFeatureMissing(feature: String, SystemError)
    /// A worker could not set up its ring, buffers or wake-up fd.
    case workerSetup(worker: Int, SystemError)
    /// The DNS resolver (for DNS-named targets) could not start.
    case resolver(String)
    /// The listen sockets (and pipes) plus a minimum of connections need more open
    /// files than the process may have.
    case fdLimitTooLow(limit: Int, needed: Int, ports: Int, workers: Int, listenerSockets: Int, pipeFDs: Int)

    public var description: String {
        switch self {
        case let .bind(rule, port, code, error):
            return "error[\(code)]: rule \"\(rule)\", listen port \(port): \(error)"
        case let .ioUringUnavailable(error):
            return "error[io_uring_unavailable]: io_uring cannot be used by this process (\(error)); "
                + "check sysctl kernel.io_uring_disabled (must be 0) and any seccomp profile (container runtimes often block io_uring_setup)"
        case let .ioUringFeatureMissing(feature, error):
            return "error[io_uring_unavailable]: this kernel's io_uring lacks \(feature) (\(error)); run a newer kernel"
        case let .workerSetup(worker, error):
            return "error[worker_setup]: worker \(worker): \(error)"
        case let .resolver(why):
            return "error[resolver_setup]: the DNS resolver for DNS-named targets cannot start: \(why)"
        case let .fdLimitTooLow(limit, needed, ports, workers, listenerSockets, pipeFDs):
            let pipes = pipeFDs > 0 ? ", \(pipeFDs) for splice pipes" : ""
            return "error[fd_limit_too_low]: \(ports) listen ports × 2 address families × \(workers) workers need \(listenerSockets) listen sockets"
                + "\(pipes), plus \(ResourceBudget.reservedFDs) kept aside and a minimum of connections: \(needed) open files, "
                + "but the limit is \(limit); raise it (systemd LimitNOFILE=, ulimit -n), use fewer --workers, or listen on fewer ports"
        }
    }
}
