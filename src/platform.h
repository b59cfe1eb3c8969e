/* The internal platform interface.
 *
 * src/common/ calls only these functions (and libuv) for anything that
 * differs between operating systems; src/posix/ and src/win32/ each
 * implement all of them. Errors are libuv's negative UV_E* codes, which both
 * sides share. Endpoint strings are produced by src/common/endpoint.c: on
 * Linux a leading '@' names an abstract socket, otherwise a path (POSIX) or a
 * pipe name (Windows). */
#ifndef SIDECAR_PLATFORM_H
#define SIDECAR_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- endpoints ---------------------------------------------------------- */

typedef enum sc_endpoint_kind {
    SC_ENDPOINT_ABSTRACT = 0,   /* Linux abstract Unix socket */
    SC_ENDPOINT_FILESYSTEM = 1, /* Unix socket file in a private directory */
    SC_ENDPOINT_NAMED_PIPE = 2, /* Windows named pipe */
} sc_endpoint_kind_t;

/* What this platform uses when no endpoint directory is configured. */
sc_endpoint_kind_t sc_plat_default_endpoint_kind(void);

/* The caller's identity as it appears in endpoint names: the effective uid
 * in decimal on POSIX, the user SID string on Windows. */
int sc_plat_identity(char *out, size_t size);

/* ---- listener (sidecar side) -------------------------------------------- */

/* Creates the listening endpoint and starts listening on `server` (already
 * uv_pipe_init'ed on its loop, ipc = 0). `dir_mode` is the permission of
 * the private directory for filesystem endpoints. Returns 0, UV_EADDRINUSE
 * when a live listener owns the name, or another error. Every descriptor is
 * close-on-exec. */
int sc_plat_listen(uv_pipe_t *server, const char *endpoint, int backlog,
                   uv_connection_cb on_connection);

/* Binds `endpoint` without listening and returns the raw listening handle
 * as an integer (a descriptor on POSIX) so that it can be handed to a
 * daemon. The bind is the lock: UV_EADDRINUSE means someone owns the name.
 * Not available on Windows (UV_ENOTSUP), which elects by named mutex. */
int sc_plat_bind_handoff(const char *endpoint, int backlog, int64_t *handle);

/* Listens on a handle obtained from sc_plat_bind_handoff (in the daemon). */
int sc_plat_listen_handle(uv_pipe_t *server, int64_t handle,
                          uv_connection_cb on_connection);

/* Cleans up what sc_plat_listen created besides the handle itself (a socket
 * file). Call after the handle is closed. */
void sc_plat_unlisten(const char *endpoint);

/* Who is on the other end of an accepted connection. */
typedef struct sc_peer {
    uint32_t pid;
    uint32_t uid;    /* POSIX euid; 0 on Windows */
    bool privileged; /* root / SYSTEM or administrators */
    bool same_user;  /* same identity as this process */
} sc_peer_t;

int sc_plat_peer(uv_pipe_t *conn, sc_peer_t *peer);

/* ---- client connection (process side, no event loop) -------------------- */

typedef struct sc_plat_conn sc_plat_conn_t;

/* Connects to `endpoint`, waiting at most timeout_ms. The connection is
 * non-blocking and close-on-exec. UV_ENOENT / UV_ECONNREFUSED: nobody
 * listens. */
int sc_plat_conn_open(const char *endpoint, uint32_t timeout_ms,
                      sc_plat_conn_t **out);

/* Writes what it can without blocking: bytes written (0 = would block), or
 * a negative error (the connection is then unusable). */
long sc_plat_conn_write(sc_plat_conn_t *c, const void *data, size_t len);

/* Reads what is available without blocking: bytes read, 0 = nothing yet,
 * UV_EOF when the peer closed, or another negative error. */
long sc_plat_conn_read(sc_plat_conn_t *c, void *data, size_t len);

/* Waits until the connection is readable (want_read) or writable
 * (want_write), at most timeout_ms. Returns 1 when ready, 0 on timeout, or a
 * negative error. */
int sc_plat_conn_wait(sc_plat_conn_t *c, bool want_read, bool want_write,
                      uint32_t timeout_ms);

void sc_plat_conn_close(sc_plat_conn_t *c);

/* ---- sockets for libcurl ------------------------------------------------- */

/* A socket for an HTTP connection to the agent: close-on-exec (POSIX) or
 * non-inheritable and overlapped (Windows, so libuv can poll it). Returns 0
 * and the socket in `*out`, or a negative UV_E* error. The flusher opens and
 * closes its sockets through these so the loop stops polling a socket
 * before it is closed. */
int sc_plat_socket_open(int family, int type, int protocol, uv_os_sock_t *out);
void sc_plat_socket_close(uv_os_sock_t sock);

/* ---- shared memory (SPEC §9) ------------------------------------------------
 */

typedef struct sc_plat_shm sc_plat_shm_t;

/* Creates (or re-creates) the segment `name` ("sidecar-..." without a
 * slash) of `size` bytes, mode 0600, zero-filled, mapped read-write. When
 * POSIX shared memory is unusable (ENOSYS, EACCES, ENOTSUP... as in some
 * sandboxes) a file under the temporary directory is used instead. */
int sc_plat_shm_create(const char *name, size_t size, sc_plat_shm_t **out);

/* Maps an existing segment read-only (same fallback order). */
int sc_plat_shm_open_readonly(const char *name, sc_plat_shm_t **out);

void *sc_plat_shm_addr(sc_plat_shm_t *shm);
size_t sc_plat_shm_size(sc_plat_shm_t *shm);

/* Hands the segment to `uid` (a worker of another user, when the owner is
 * root); the mode stays 0600. No-op where ownership is not a uid. */
int sc_plat_shm_give_to(sc_plat_shm_t *shm, uint32_t uid);

/* Unmaps; `remove` also deletes the name (the creator, at exit). */
void sc_plat_shm_close(sc_plat_shm_t *shm, bool remove);

/* ---- processes ------------------------------------------------------------
 */

uint32_t sc_plat_getpid(void);
uint32_t sc_plat_getppid(void);
/* True while process `pid` exists (a zombie counts as gone). */
bool sc_plat_process_alive(uint32_t pid);
/* True when `pid` is `ancestor` or one of its descendants. */
bool sc_plat_is_descendant(uint32_t pid, uint32_t ancestor);

/* Starts `argv[0]` detached from the caller: its own session, no parent
 * that must reap it (no zombie is ever left behind), no death signal tied to
 * the caller, standard streams on the null device, and no inherited
 * descriptor except `pass_handle` (>= 0), which the program finds as
 * descriptor 3 (POSIX) or by the value passed in its arguments. `*pid` gets
 * the daemon's pid. Returns 0, or the error of a failed exec. */
int sc_plat_spawn_detached(const char *const argv[], int64_t pass_handle,
                           uint32_t *pid);

/* Descriptor number under which a spawned daemon finds `pass_handle`. */
int64_t sc_plat_passed_handle_value(int64_t pass_handle);

/* Closes a raw descriptor or handle (one passed to a daemon, or one a child
 * of fork() must not keep). */
void sc_plat_close_raw(int64_t handle);

/* Registers fork handlers (pthread_atfork). Windows has no fork: no-op. */
int sc_plat_atfork(void (*prepare)(void), void (*parent)(void),
                   void (*child)(void));

#endif
