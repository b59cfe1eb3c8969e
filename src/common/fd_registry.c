#include "fd_registry.h"

#include "platform.h"

#include <stdlib.h>

struct sc_fd_registry {
    size_t capacity;
    _Atomic int64_t fds[]; /* -1: free */
};

sc_fd_registry_t *sc_fd_registry_new(size_t capacity)
{
    sc_fd_registry_t *r =
        malloc(sizeof *r + capacity * sizeof(_Atomic int64_t));
    if (r == NULL) {
        return NULL;
    }
    r->capacity = capacity;
    for (size_t i = 0; i < capacity; i++) {
        atomic_init(&r->fds[i], -1);
    }
    return r;
}

void sc_fd_registry_free(sc_fd_registry_t *r)
{
    free(r);
}

bool sc_fd_registry_add(sc_fd_registry_t *r, int64_t fd)
{
    for (size_t i = 0; r != NULL && i < r->capacity; i++) {
        int64_t free_slot = -1;
        if (atomic_compare_exchange_strong(&r->fds[i], &free_slot, fd)) {
            return true;
        }
    }
    return false;
}

void sc_fd_registry_remove(sc_fd_registry_t *r, int64_t fd)
{
    for (size_t i = 0; r != NULL && i < r->capacity; i++) {
        int64_t expected = fd;
        if (atomic_compare_exchange_strong(&r->fds[i], &expected, -1)) {
            return;
        }
    }
}

void sc_fd_registry_close_all(sc_fd_registry_t *r)
{
    for (size_t i = 0; r != NULL && i < r->capacity; i++) {
        int64_t fd = atomic_exchange(&r->fds[i], -1);
        if (fd >= 0) {
            sc_plat_close_raw(fd);
        }
    }
}
