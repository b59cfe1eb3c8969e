/* LD_PRELOAD shim for shm_fallback.sh: shm_open fails with the errno in
 * SC_TEST_SHM_ERRNO. A kernel cannot be made to answer ENOSYS, ENOTSUP or
 * EPERM to shm_open on purpose (EROFS and EACCES come from real mounts in
 * the script), so those are injected here, at the one call that decides. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>

int shm_open(const char *name, int oflag, mode_t mode);

int shm_open(const char *name, int oflag, mode_t mode)
{
    (void)name;
    (void)oflag;
    (void)mode;
    const char *e = getenv("SC_TEST_SHM_ERRNO");
    errno = e != NULL ? atoi(e) : ENOSYS;
    return -1;
}
