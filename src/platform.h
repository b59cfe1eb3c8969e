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

/* Takes ownership of `endpoint` for a daemon about to be started and
 * returns a raw handle for it as an integer. The claim is the lock:
 * UV_EADDRINUSE means a live process owns the name. POSIX binds and
 * listens: the handle is the listening socket, handed to the daemon.
 * Windows wins the name's election mutex: the handle is that mutex, held
 * until the daemon has taken the election over (see sc_plat_close_raw);
 * the daemon binds its pipe itself. */
int sc_plat_bind_handoff(const char *endpoint, int backlog, int64_t *handle);

/* Listens on `endpoint` as handed over by sc_plat_bind_handoff (in the
 * daemon); `handle` is the value sc_plat_passed_handle_value() gave it: the
 * descriptor of the bound socket (POSIX), or the id of the handover
 * (Windows: the daemon takes the election over, then binds). The handle
 * is consumed even when this fails. POSIX also accepts, in the process that
 * bound it, the socket sc_plat_bind_handoff returned (a thread-mode master
 * binds on the caller's thread and listens on its listener thread). */
int sc_plat_listen_handle(uv_pipe_t *server, const char *endpoint,
                          int64_t handle, uv_connection_cb on_connection);

/* Cleans up what sc_plat_listen created besides the handle itself (a socket
 * file). Call after the handle is closed. */
void sc_plat_unlisten(const char *endpoint);

/* Longest SID string plus its NUL (SECURITY_MAX_SID_STRING_CHARACTERS). */
#define SC_SID_MAX 188

/* Lets processes of other identities reach `server`, which listens on
 * `endpoint` (docs/transport.md, "Admission"). Windows: `sids` are SID
 * strings; each gets read + write (never "create instance") on the pipe and
 * read on the endpoint's rendezvous, next to SYSTEM and this user. POSIX:
 * sockets are admitted by uid (allowed_uids), so any SID is UV_ENOTSUP. */
int sc_plat_listen_allow(uv_pipe_t *server, const char *endpoint,
                         const char *const *sids, size_t n);

/* Who is on the other end of an accepted connection. */
typedef struct sc_peer {
    uint32_t pid;
    uint32_t uid;         /* POSIX euid; 0 on Windows */
    bool privileged;      /* root / SYSTEM or administrators */
    bool same_user;       /* same identity as this process */
    char sid[SC_SID_MAX]; /* Windows: the user SID as text; POSIX: "" */
} sc_peer_t;

int sc_plat_peer(uv_pipe_t *conn, sc_peer_t *peer);

/* ---- client connection (process side, no event loop) -------------------- */

typedef struct sc_plat_conn sc_plat_conn_t;

/* Connects to `endpoint`, waiting at most timeout_ms. The connection is
 * non-blocking and close-on-exec. UV_ENOENT / UV_ECONNREFUSED: nobody
 * listens. UV_EACCES: somebody listens who is not trusted -- the server
 * must run as root / SYSTEM, as this process's user, or as the identity
 * the endpoint is named after (docs/transport.md, "Who the client
 * trusts"); nothing was sent to it. */
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

/* A Unix datagram socket connected to `path` (DogStatsD over
 * DD_DOGSTATSD_URL=unix://), close-on-exec, for uv_udp_open. POSIX only:
 * Windows answers UV_ENOTSUP (it has no Unix datagram sockets). */
int sc_plat_unix_dgram_connect(const char *path, uv_os_sock_t *out);

/* Makes a socket libcurl created on its own (the threaded resolver's
 * socketpair) close-on-exec (POSIX) or non-inheritable (Windows). */
void sc_plat_socket_set_cloexec(uv_os_sock_t sock);

/* libcurl 7.88 creates its multi handle's wakeup socketpair without
 * close-on-exec, and never shows it to the socket callback. Around
 * curl_multi_init(): sc_plat_fds_before() notes which low descriptors are
 * open, sc_plat_cloexec_new_sockets() makes the sockets opened since
 * close-on-exec. Windows: nothing to do (no descriptors are inherited by a
 * CreateProcess without bInheritHandles, which is all this code uses). */
typedef struct sc_plat_fds {
    int base;         /* lowest descriptor number that was free */
    uint64_t open[4]; /* open[i / 64] bit i % 64: base + i was open */
} sc_plat_fds_t;
void sc_plat_fds_before(sc_plat_fds_t *fds);
void sc_plat_cloexec_new_sockets(const sc_plat_fds_t *before);

/* ---- shared memory (docs/shared-state.md) -----------------------------------
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
/* Wall clock, epoch milliseconds, from the cheapest clock the system keeps
 * (a few ms of resolution: CLOCK_REALTIME_COARSE, the system time on
 * Windows), for timestamps taken on every call of a hot path. */
int64_t sc_plat_wall_ms_coarse(void);
/* True while process `pid` exists (a zombie counts as gone). */
bool sc_plat_process_alive(uint32_t pid);
/* True when `pid` is `ancestor` or one of its descendants. */
bool sc_plat_is_descendant(uint32_t pid, uint32_t ancestor);

/* Starts `argv[0]` detached from the caller: its own session, no parent
 * that must reap it (no zombie is ever left behind), no death signal tied to
 * the caller, standard streams on the null device, and no inherited
 * descriptor except `pass_handle` (>= 0, from sc_plat_bind_handoff), which
 * the program finds as descriptor 3 (POSIX). Windows inherits nothing: it
 * waits (boundedly) until the daemon is ready to take the election over.
 * `*pid` gets the daemon's pid. Returns 0, or the error of a failed exec. */
int sc_plat_spawn_detached(const char *const argv[], int64_t pass_handle,
                           uint32_t *pid);

/* The value a spawned daemon is given (--listen-fd) for `pass_handle`: the
 * descriptor number it finds the socket under (POSIX), the handover's id
 * (Windows). */
int64_t sc_plat_passed_handle_value(int64_t pass_handle);

/* Closes a raw descriptor or handle (one passed to a daemon, or one a child
 * of fork() must not keep). For a handle of sc_plat_bind_handoff this ends
 * the caller's claim (Windows: releases the election to the daemon). */
void sc_plat_close_raw(int64_t handle);

/* Starts a thread of ours (the listener thread inside a host process) on
 * which writing to a socket the peer closed can never raise SIGPIPE,
 * whatever the host's disposition: POSIX creates it with SIGPIPE blocked
 * (threads it starts, such as libcurl's resolver, inherit the mask), so the
 * write fails with EPIPE instead. Windows has no such signal. */
int sc_plat_thread_create(uv_thread_t *t, void (*fn)(void *arg), void *arg);

/* Registers fork handlers (pthread_atfork). Windows has no fork: no-op. */
int sc_plat_atfork(void (*prepare)(void), void (*parent)(void),
                   void (*child)(void));

/* ---- thread-mode master discovery (docs/runtime.md) -------------------------
 *
 * On every platform the master is whoever listens on the thread-mode name,
 * and a process becomes master by claiming that name; what differs is
 * which name, where it is claimed, and when a name may be contested. */

/* The pid a master's thread-mode name is made of, for a master `self`.
 * POSIX: `self` (workers are forked from it and inherit the name). Windows:
 * 0, one name per identity ("-thread"): IIS starts pool processes one by
 * one, none is forked from another, so they meet on a shared name. */
uint32_t sc_plat_master_name_pid(uint32_t self);

/* Starts claiming `name` for a listener thread of this process. POSIX binds
 * and listens here and returns the socket in *handle, so that a request
 * that promotes its process queues its actions at once. Windows returns
 * -1: the listener thread claims the name itself by winning its election
 * (a named mutex, which belongs to the thread that holds it).
 * UV_EADDRINUSE: another live process holds the name, and is master. */
int sc_plat_master_claim(const char *name, int backlog, int64_t *handle);

/* The master `pid` (0: not known) does not answer: may this process
 * contest its name? POSIX: only once that process is gone -- a live master
 * keeps its role, its workers drop and count meanwhile. Windows: always;
 * the election keeps a live owner. */
bool sc_plat_master_contestable(uint32_t pid);

/* ---- stop requests (the `sidecar run` daemon) ------------------------------
 */

typedef struct sc_plat_stop_watch sc_plat_stop_watch_t;

/* Calls `on_stop(arg)` on `loop` when this process is asked to stop:
 * SIGINT or SIGTERM (POSIX); Ctrl+C, Ctrl+Break or sc_plat_request_stop()
 * (Windows, which has no signal one process can send another). This is the
 * daemon's signal setup, so POSIX also ignores SIGPIPE here: a peer that
 * closes before its reply is written must not end the daemon (libuv writes
 * replies with write(), which would raise it). */
int sc_plat_stop_watch_start(uv_loop_t *loop, void (*on_stop)(void *arg),
                             void *arg, sc_plat_stop_watch_t **out);

/* Stops watching; the watch's handles close on the loop, which must run
 * once more to free it. */
void sc_plat_stop_watch_close(sc_plat_stop_watch_t *w);

/* Asks process `pid` to stop as above (POSIX: SIGTERM). */
int sc_plat_request_stop(uint32_t pid);

/* ---- installation ----------------------------------------------------------
 */

/* The file that holds the code at `address`: libsidecar's own path when it
 * is a shared library, the program's when linked statically. Returns 0,
 * UV_ENOBUFS when `size` is too small, or another error. */
int sc_plat_module_path(const void *address, char *out, size_t size);

/* Calls `each(arg, endpoint)` for every listening endpoint whose name (the
 * part after '@', the directory or \\.\pipe\) begins with `prefix`, as an
 * endpoint string: Linux abstract sockets (from /proc/net/unix) when `dir`
 * is NULL, socket files in `dir` otherwise; Windows: named pipes (`dir`
 * ignored; a pipe with several instances may be reported more than once).
 * Returns 0 or the error that prevented listing. */
int sc_plat_list_endpoints(const char *dir, const char *prefix,
                           void (*each)(void *arg, const char *endpoint),
                           void *arg);

#endif
