// Shim over <liburing.h> for Swift (liburing 2.3, Debian's liburing-dev).
//
// Why it exists (see IO_URING_NOTES.md):
// - glibc headers must come before <liburing.h>: liburing.h defines _GNU_SOURCE /
//   _XOPEN_SOURCE itself, and if it is included first fd_set is declared without
//   __fds_bits and the module fails to build.
// - Flag macros of the form (1U << X_BIT) and GNU-only names that SwiftGlibc hides
//   are not importable; they are re-exported here as constants or inline functions.
#ifndef PORTUNUS_CLIBURING_SHIM_H
#define PORTUNUS_CLIBURING_SHIM_H

// No _GNU_SOURCE here: with it glibc declares sockaddr arguments as transparent
// unions that Swift cannot pass. The few GNU names needed are declared below.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/select.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <liburing.h>

// SQE flags (IOSQE_*_BIT shifted): not importable as macros.
static const unsigned int PU_IOSQE_IO_LINK = IOSQE_IO_LINK;
static const unsigned int PU_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const unsigned int PU_IOSQE_CQE_SKIP_SUCCESS = IOSQE_CQE_SKIP_SUCCESS;

// CQE flags.
static const unsigned int PU_IORING_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
static const unsigned int PU_IORING_CQE_F_MORE = IORING_CQE_F_MORE;
static const unsigned int PU_IORING_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;

// send/recv ioprio flags.
static const unsigned int PU_IORING_RECVSEND_POLL_FIRST = IORING_RECVSEND_POLL_FIRST;

// Ring set-up flags.
static const unsigned int PU_IORING_SETUP_CQSIZE = IORING_SETUP_CQSIZE;
static const unsigned int PU_IORING_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
static const unsigned int PU_IORING_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
static const unsigned int PU_IORING_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const unsigned int PU_IORING_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;

// Cancel flags.
static const unsigned int PU_IORING_ASYNC_CANCEL_ALL = IORING_ASYNC_CANCEL_ALL;
static const unsigned int PU_IORING_ASYNC_CANCEL_FD = IORING_ASYNC_CANCEL_FD;

// GNU-only names (fcntl.h declares them only under _GNU_SOURCE); values from
// include/uapi/linux/fcntl.h and splice(2).
static const unsigned int PU_SPLICE_F_MOVE = 1;
static const unsigned int PU_SPLICE_F_NONBLOCK = 2;
extern int pipe2(int pipefd[2], int flags);
static inline int pu_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
extern ssize_t splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len, unsigned int flags);
/// splice(2) between a socket and a pipe, never waiting: SPLICE_F_NONBLOCK covers the
/// pipe, and the sockets are non-blocking. Returns bytes moved, or -errno.
static inline long pu_splice_nonblocking(int from, int to, size_t length) {
    ssize_t n = splice(from, NULL, to, NULL, length, PU_SPLICE_F_MOVE | PU_SPLICE_F_NONBLOCK);
    return n >= 0 ? (long)n : -(long)errno;
}
/// fcntl(F_SETPIPE_SZ) (F_LINUX_SPECIFIC_BASE + 7); fcntl is variadic, so wrapped.
static inline int pu_set_pipe_size(int fd, int size) { return fcntl(fd, 1024 + 7, size); }
/// fcntl(F_GETPIPE_SZ) (F_LINUX_SPECIFIC_BASE + 8).
static inline int pu_get_pipe_size(int fd) { return fcntl(fd, 1024 + 8); }
/// ioctl(TIOCGWINSZ): the terminal's rows and columns (for the stats dashboard).
static inline int pu_window_size(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize size;
    int rc = ioctl(fd, TIOCGWINSZ, &size);
    if (rc == 0) { *rows = size.ws_row; *cols = size.ws_col; }
    return rc;
}
// ioctl(FIONREAD) is variadic in C: Swift cannot call it directly. Bytes queued in a pipe.
static inline int pu_queued_bytes(int fd, int *queued) { return ioctl(fd, FIONREAD, queued); }

/// The io_uring_for_each_cqe macro is not importable; the ring module uses
/// io_uring_peek_batch_cqe + io_uring_cq_advance instead. These read the
/// fields Swift needs without touching the CQE layout from Swift.
static inline unsigned long long pu_cqe_user_data(const struct io_uring_cqe *cqe) { return cqe->user_data; }
static inline int pu_cqe_res(const struct io_uring_cqe *cqe) { return cqe->res; }
static inline unsigned int pu_cqe_flags(const struct io_uring_cqe *cqe) { return cqe->flags; }

/// Size of one provided-buffer-ring entry (struct io_uring_buf), for the mmap in
/// the ring module (liburing 2.3 has no io_uring_setup_buf_ring).
static inline size_t pu_buf_ring_entry_size(void) { return sizeof(struct io_uring_buf); }

// The local address a datagram was sent to (IP_PKTINFO / IPV6_PKTINFO control
// messages), so a reply leaves from the address the client wrote to. The cmsg macros
// are not importable, and glibc declares struct in_pktinfo / in6_pktinfo only under
// _GNU_SOURCE: their kernel layouts (include/uapi/linux/in.h, ipv6.h) are copied here.
struct pu_in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; };
struct pu_in6_pktinfo { struct in6_addr ipi6_addr; unsigned int ipi6_ifindex; };
static const int PU_IP_PKTINFO = 8;
static const int PU_IPV6_RECVPKTINFO = 49;
static const int PU_IPV6_PKTINFO = 50;
/// Control room a datagram's local address needs, received or sent: CMSG_SPACE of the
/// larger of the two (40 bytes on 64-bit), rounded up.
static const unsigned int PU_PKTINFO_CONTROL_ROOM = 64;

/// Reads the local address from a multishot recvmsg buffer's control messages into
/// addr (4 bytes for IPv4, 16 for IPv6) and *ifindex (the interface it came in on).
/// Returns AF_INET or AF_INET6, or 0 when there is none. For IPv4 the address is
/// ipi_spec_dst, the local address the kernel would answer from (the interface's for a
/// broadcast), not the header's destination.
static inline int pu_recvmsg_local_address(struct io_uring_recvmsg_out *out, struct msghdr *msgh,
                                           unsigned char addr[16], unsigned int *ifindex) {
    for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(out, msgh); c != NULL;
         c = io_uring_recvmsg_cmsg_nexthdr(out, msgh, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == PU_IP_PKTINFO
            && c->cmsg_len >= CMSG_LEN(sizeof(struct pu_in_pktinfo))) {
            struct pu_in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            memcpy(addr, &info.ipi_spec_dst, 4);
            *ifindex = (unsigned int)info.ipi_ifindex;
            return AF_INET;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == PU_IPV6_PKTINFO
            && c->cmsg_len >= CMSG_LEN(sizeof(struct pu_in6_pktinfo))) {
            struct pu_in6_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof info);
            memcpy(addr, &info.ipi6_addr, 16);
            *ifindex = info.ipi6_ifindex;
            return AF_INET6;
        }
    }
    return 0;
}

/// Writes into control (PU_PKTINFO_CONTROL_ROOM bytes) the control message that sends
/// a datagram from local address addr (4 or 16 bytes for family AF_INET / AF_INET6),
/// out of interface ifindex (0: routing chooses). Returns the msg_controllen to use.
static inline size_t pu_source_address_cmsg(void *control, int family, const unsigned char addr[16],
                                            unsigned int ifindex) {
    memset(control, 0, PU_PKTINFO_CONTROL_ROOM);
    struct cmsghdr *c = (struct cmsghdr *)control;
    if (family == AF_INET) {
        struct pu_in_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi_ifindex = (int)ifindex;
        memcpy(&info.ipi_spec_dst, addr, 4);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = PU_IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(c), &info, sizeof info);
        return CMSG_SPACE(sizeof info);
    }
    struct pu_in6_pktinfo info;
    memcpy(&info.ipi6_addr, addr, 16);
    info.ipi6_ifindex = ifindex;
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = PU_IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof info);
    memcpy(CMSG_DATA(c), &info, sizeof info);
    return CMSG_SPACE(sizeof info);
}

#endif
