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
/// fcntl(F_SETPIPE_SZ) (F_LINUX_SPECIFIC_BASE + 7); fcntl is variadic, so wrapped.
static inline int pu_set_pipe_size(int fd, int size) { return fcntl(fd, 1024 + 7, size); }
/// fcntl(F_GETPIPE_SZ) (F_LINUX_SPECIFIC_BASE + 8).
static inline int pu_get_pipe_size(int fd) { return fcntl(fd, 1024 + 8); }
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

#endif
