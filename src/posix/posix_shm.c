/* Shared memory: shm_open, or a file in the temporary directory when
 * /dev/shm is unusable. */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct sc_plat_shm {
    int fd;
    void *addr;
    size_t size;
    bool is_file;
    char name[200];
};

static void file_path(const char *name, char *out, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/%s.shm", tmp != NULL && *tmp ? tmp : "/tmp", name);
}

/* Opens the segment by name: POSIX shared memory first, the file fallback
 * when shm_open itself is not usable here. */
static int open_segment(const char *name, int flags, bool *is_file)
{
    char path[256];
    snprintf(path, sizeof path, "/%s", name);
    /* DD_TRACE_SIDECAR_SHM=file: skip POSIX shared memory altogether. */
    const char *mode = getenv("DD_TRACE_SIDECAR_SHM");
    int fd = -1;
    errno = ENOSYS;
    if (mode == NULL || strcmp(mode, "file") != 0) {
        fd = shm_open(path, flags | O_CLOEXEC, 0600);
    }
    if (fd >= 0) {
        *is_file = false;
        return fd;
    }
    /* Shared memory missing (ENOSYS: no shm support, ENOENT: no /dev/shm,
     * as on AWS Lambda), refused (EACCES, EPERM), unsupported (ENOTSUP,
     * the same value as EOPNOTSUPP on Linux) or read-only (EROFS): the file in
     * the temporary directory serves instead (docs/shared-state.md). */
    if (errno != ENOSYS && errno != EACCES && errno != ENOTSUP &&
        errno != EPERM && errno != ENOENT && errno != EROFS) {
        return -errno;
    }
    file_path(name, path, sizeof path);
    fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -errno;
    }
    *is_file = true;
    return fd;
}

static int map(sc_plat_shm_t *s, int prot)
{
    s->addr = mmap(NULL, s->size, prot, MAP_SHARED, s->fd, 0);
    if (s->addr == MAP_FAILED) {
        int err = -errno;
        close(s->fd);
        free(s);
        return err;
    }
    return 0;
}

int sc_plat_shm_create(const char *name, size_t size, sc_plat_shm_t **out)
{
    sc_plat_shm_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return UV_ENOMEM;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    /* A stale segment of a dead owner (or another uid's) is replaced. */
    char path[256];
    snprintf(path, sizeof path, "/%s", name);
    shm_unlink(path);
    file_path(name, path, sizeof path);
    unlink(path);
    int fd = open_segment(name, O_RDWR | O_CREAT | O_EXCL, &s->is_file);
    if (fd < 0) {
        free(s);
        return fd;
    }
    s->fd = fd;
    s->size = size;
    fchmod(fd, 0600); /* whatever the umask says */
    if (ftruncate(fd, (off_t)size) != 0) {
        int err = -errno;
        close(fd);
        free(s);
        return err;
    }
    int rc = map(s, PROT_READ | PROT_WRITE);
    if (rc == 0) {
        *out = s;
    }
    return rc;
}

int sc_plat_shm_open_readonly(const char *name, sc_plat_shm_t **out)
{
    sc_plat_shm_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return UV_ENOMEM;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    int fd = open_segment(name, O_RDONLY, &s->is_file);
    if (fd < 0) {
        free(s);
        return fd;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        free(s);
        return UV_ENOENT;
    }
    s->fd = fd;
    s->size = (size_t)st.st_size;
    int rc = map(s, PROT_READ);
    if (rc == 0) {
        *out = s;
    }
    return rc;
}

void *sc_plat_shm_addr(sc_plat_shm_t *shm)
{
    return shm->addr;
}

size_t sc_plat_shm_size(sc_plat_shm_t *shm)
{
    return shm->size;
}

int sc_plat_shm_give_to(sc_plat_shm_t *shm, uint32_t uid)
{
    if (geteuid() != 0 || uid == 0) {
        return 0;
    }
    return fchown(shm->fd, (uid_t)uid, (gid_t)-1) == 0 ? 0 : -errno;
}

void sc_plat_shm_close(sc_plat_shm_t *shm, bool remove)
{
    if (shm == NULL) {
        return;
    }
    munmap(shm->addr, shm->size);
    close(shm->fd);
    if (remove) {
        char path[256];
        if (shm->is_file) {
            file_path(shm->name, path, sizeof path);
            unlink(path);
        } else {
            snprintf(path, sizeof path, "/%s", shm->name);
            shm_unlink(path);
        }
    }
    free(shm);
}
