/* The sidecar's listening socket: bound by hand with the exact address
 * length (libuv 1.44 cannot bind an abstract name), then handed to libuv. */
#define _GNU_SOURCE
#include "platform.h"
#include "posix_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/file.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Private directory for filesystem sockets: created 0700 if missing. */
static int ensure_private_dir(const char *endpoint)
{
    char copy[PATH_MAX];
    if (strlen(endpoint) >= sizeof copy) {
        return UV_ENAMETOOLONG;
    }
    strcpy(copy, endpoint);
    const char *dir = dirname(copy);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

/* A socket file nobody listens on is left over from a dead sidecar: remove
 * it so the bind can proceed. A live listener keeps its file. */
static int remove_if_stale(const char *path, const struct sockaddr_un *addr,
                           socklen_t len)
{
    int fd = posix_unix_socket();
    if (fd < 0) {
        return fd;
    }
    int rc = connect(fd, (const struct sockaddr *)addr, len);
    int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN) {
        return UV_EADDRINUSE; /* alive (EAGAIN: alive, backlog full) */
    }
    if (err == ECONNREFUSED) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(path);
        }
    }
    return 0;
}

/* Serialises everything that looks at and replaces a filesystem endpoint
 * (probe, unlink, bind; unlink at exit) between processes: without it two
 * spawners that both find a stale socket both unlink and bind, and the
 * first one's sidecar listens on a name nobody can reach. A lock file next
 * to the socket (0600), removed with the socket: a locker that finds the
 * file it locked gone (or replaced) takes the new one. -1 when it cannot be
 * had (another user made it), and the caller goes on without. */
static int lock_endpoint(const char *endpoint, char *path, size_t size)
{
    if (snprintf(path, size, "%s.lock", endpoint) >= (int)size) {
        return -1;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            return -1;
        }
        int rc;
        while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
        }
        struct stat held, named;
        if (rc == 0 && fstat(fd, &held) == 0 && stat(path, &named) == 0 &&
            held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
            return fd;
        }
        close(fd); /* removed while we waited: lock the new one */
        if (rc != 0) {
            return -1;
        }
    }
    return -1;
}

static void unlock_endpoint(int fd)
{
    if (fd >= 0) {
        close(fd); /* releases the lock */
    }
}

static int bind_locked(const char *endpoint, int backlog);

static int bind_endpoint(const char *endpoint, int backlog)
{
    if (endpoint[0] == '@') {
        return bind_locked(endpoint, backlog); /* the kernel serialises */
    }
    int rc = ensure_private_dir(endpoint);
    if (rc != 0) {
        return rc;
    }
    char lock_path[PATH_MAX];
    int lock = lock_endpoint(endpoint, lock_path, sizeof lock_path);
    rc = bind_locked(endpoint, backlog);
    unlock_endpoint(lock);
    return rc;
}

static int bind_locked(const char *endpoint, int backlog)
{
    struct sockaddr_un addr;
    socklen_t len;
    int rc = posix_endpoint_addr(endpoint, &addr, &len);
    if (rc != 0) {
        return rc;
    }
    bool filesystem = endpoint[0] != '@';
    if (filesystem) {
        if ((rc = ensure_private_dir(endpoint)) != 0 ||
            (rc = remove_if_stale(endpoint, &addr, len)) != 0) {
            return rc;
        }
    }
    int fd = posix_unix_socket();
    if (fd < 0) {
        return fd;
    }
    if (bind(fd, (struct sockaddr *)&addr, len) != 0 ||
        listen(fd, backlog) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    /* Access is decided per peer (credentials) and, in subprocess mode, by
     * the 0700 directory; in thread mode workers of another uid (FPM's
     * www-data under a root master) must be able to connect at all. */
    if (filesystem) {
        chmod(endpoint, 0666);
    }
    return fd;
}

int sc_plat_listen_handle(uv_pipe_t *server, const char *endpoint,
                          int64_t handle, uv_connection_cb on_connection)
{
    (void)endpoint; /* the socket is bound already */
    int rc = uv_pipe_open(server, (uv_file)handle);
    if (rc != 0) {
        close((int)handle); /* ours even on failure, as documented */
        return rc;
    }
    /* From here `server` owns the socket; the caller closes the handle. */
    return uv_listen((uv_stream_t *)server, SOMAXCONN, on_connection);
}

int sc_plat_listen(uv_pipe_t *server, const char *endpoint, int backlog,
                   uv_connection_cb on_connection)
{
    int fd = bind_endpoint(endpoint, backlog);
    if (fd < 0) {
        return fd;
    }
    int rc = uv_pipe_open(server, fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    /* From here `server` owns fd; the caller closes the handle on error. */
    return uv_listen((uv_stream_t *)server, backlog, on_connection);
}

int sc_plat_bind_handoff(const char *endpoint, int backlog, int64_t *handle)
{
    int fd = bind_endpoint(endpoint, backlog);
    if (fd < 0) {
        return fd;
    }
    *handle = fd;
    return 0;
}

void sc_plat_unlisten(const char *endpoint)
{
    if (endpoint[0] != '@') {
        char lock_path[PATH_MAX];
        int lock = lock_endpoint(endpoint, lock_path, sizeof lock_path);
        unlink(endpoint);
        if (lock >= 0) {
            unlink(lock_path); /* waiters notice and take a new one */
        }
        unlock_endpoint(lock);
    }
}

int sc_plat_listen_allow(uv_pipe_t *server, const char *endpoint,
                         const char *const *sids, size_t n)
{
    (void)server;
    (void)endpoint;
    (void)sids;
    return n == 0 ? 0 : UV_ENOTSUP; /* peers are admitted by uid here */
}
