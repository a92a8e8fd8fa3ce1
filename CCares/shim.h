// Shim over <ares.h> for Swift (c-ares 1.18, Debian's libc-ares-dev).
//
// Why it exists: ARES_GETSOCK_READABLE / ARES_GETSOCK_WRITABLE are function-like
// macros, which Swift cannot import; they are re-exported here as inline functions.
#ifndef PORTUNUS_CCARES_SHIM_H
#define PORTUNUS_CCARES_SHIM_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <ares.h>

static inline int portunus_ares_getsock_readable(int bits, int index) {
    return ARES_GETSOCK_READABLE(bits, index) != 0;
}

static inline int portunus_ares_getsock_writable(int bits, int index) {
    return ARES_GETSOCK_WRITABLE(bits, index) != 0;
}

#endif
