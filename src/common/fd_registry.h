/* The descriptors of a listener thread's accepted connections, readable
 * from a fork child. A worker forked from a thread-mode master inherits the
 * server's end of every connection open at that instant; kept open there,
 * they outlive the master: after it dies, older workers keep writing into
 * sockets their younger siblings hold, and nothing ever reads or closes
 * them. The child closes them all (sc_fd_registry_close_all). Slots are
 * atomics so that a child copies a consistent set however the listener
 * thread was interrupted by the fork. */
#ifndef SIDECAR_FD_REGISTRY_H
#define SIDECAR_FD_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sc_fd_registry sc_fd_registry_t;

/* A registry of `capacity` slots (malloc'ed), or NULL. */
sc_fd_registry_t *sc_fd_registry_new(size_t capacity);
void sc_fd_registry_free(sc_fd_registry_t *r);

/* Records `fd` (false when full: it is then not closed in children). */
bool sc_fd_registry_add(sc_fd_registry_t *r, int64_t fd);
void sc_fd_registry_remove(sc_fd_registry_t *r, int64_t fd);

/* In the child of fork(): closes every recorded descriptor (the parent's
 * copies stay open). */
void sc_fd_registry_close_all(sc_fd_registry_t *r);

#endif
