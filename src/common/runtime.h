/* The connection policy of a process: which mode it runs in, and how an
 * endpoint that does not answer is made reachable again (start a sidecar,
 * promote this process to master, join a parent that was promoted). It
 * never touches the process's client: process.c calls it with none of the
 * client's locks held and points the client where it says. The lock order
 * and the fork rules are written down in process.c. */
#ifndef SIDECAR_RUNTIME_H
#define SIDECAR_RUNTIME_H

#include "access.h"
#include "endpoint.h"
#include "listener_thread.h"
#include "sidecar.h"

typedef struct sc_runtime {
    sc_config_t cfg; /* strings point into the buffers below, or NULL */
    char sidecar_path[4096];
    char endpoint_dir[256];
    char identity[128];
    sc_access_t access; /* allowed uids and SIDs, from cfg */
    /* First in the process's lock order: mode transitions (spawn,
     * promotion) and every field below. */
    uv_mutex_t lock;
    sc_connection_mode_t mode;
    char reason[192];
    uint32_t init_pid;
    uint32_t master_pid;
    sc_listener_thread_t *listener;
    uint32_t listener_pid; /* the process that owns `listener` */
    uint32_t sidecar_pid;
    uint64_t spawns, spawn_failures, promotions;
    /* After a failed start (binary missing, exec denied), none is tried
     * again before this time (uv_hrtime): a start costs two forks, and the
     * request path must not pay them on every call. */
    uint64_t next_spawn_ns;
    uint32_t spawn_backoff_ms;
    bool shutting_down; /* no sidecar is started any more */
} sc_runtime_t;

/* Copies `cfg` (its strings too), learns this process's identity and
 * creates the lock. */
void sc_runtime_init(sc_runtime_t *rt, const sc_config_t *cfg);

/* Resolves the mode: subprocess (a sidecar answers, started if needed),
 * thread (this process listens), or auto's fallback; writes the endpoint
 * to use. Takes rt->lock. */
void sc_runtime_choose_mode(sc_runtime_t *rt, char *endpoint, size_t size);

/* The client could not connect to `endpoint` (error `err`; UV_EACCES: the
 * server is not trusted): make it reachable if this process may
 * (subprocess: start a sidecar, or in auto mode fall back to thread mode
 * when another user holds the name; thread: reclaim a failed listener,
 * join a promoted parent, or promote this orphan). Returns true when worth
 * retrying now, with the endpoint to use in `endpoint`. Takes rt->lock;
 * the caller holds no client lock. */
bool sc_runtime_recover(sc_runtime_t *rt, int err, char *endpoint, size_t size);

/* After a fork the child may have changed user (FPM's workers setuid()
 * after the fork): a subprocess sidecar is per user, so its name follows
 * the process's current identity. Returns true with the new endpoint when
 * it changed. Thread mode keeps the master's endpoint; the identity is
 * kept for names this process may bind later (promotion). Takes rt->lock. */
bool sc_runtime_refresh_identity(sc_runtime_t *rt, char *endpoint, size_t size);

/* Fork handling (process.c's handlers call these with rt->lock held).
 * Before fork(): a master that follows the forker moves its listener here
 * (true, with the new endpoint), and a listener thread still starting is
 * waited for. */
bool sc_runtime_before_fork(sc_runtime_t *rt, char *endpoint, size_t size);
/* In the child: the listener thread does not exist here; its inherited
 * socket is closed and the lock re-created. */
void sc_runtime_after_fork_child(sc_runtime_t *rt);

/* True on the thread that is forking a sidecar daemon: fork handlers must
 * stand aside (the spawning thread holds rt->lock; the child only execs). */
bool sc_runtime_spawning(void);

/* This process runs the listener thread. */
bool sc_runtime_listener_here(const sc_runtime_t *rt);

/* No sidecar is started any more; the listener thread (if here) stops,
 * delivering what it holds within `timeout_ms`. The lock is destroyed. */
void sc_runtime_stop(sc_runtime_t *rt, uint32_t timeout_ms);

/* Fills `out` (but the endpoint, which the client owns). Takes rt->lock. */
void sc_runtime_describe(sc_runtime_t *rt, sc_runtime_info_t *out);

#endif
