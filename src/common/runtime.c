/* The connection policy (runtime.h): modes, the sidecar spawn, orphan
 * promotion. docs/runtime.md explains the lifecycles; process.c owns the
 * state this works on, the fork handlers and the lock order. */
#include "runtime.h"

#include "abi.h"
#include "client.h"
#include "log.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connections a new listener queues before it accepts (SOMAXCONN caps it). */
#define LISTEN_BACKLOG 1024
/* Between failed starts of a sidecar (runtime.h, next_spawn_ns). */
#define SPAWN_BACKOFF_MIN_MS 500
#define SPAWN_BACKOFF_MAX_MS 30000

/* ---- names ------------------------------------------------------------- */

/* The subprocess name (thread false), or the thread-mode name of a master
 * `self` (sc_plat_master_name_pid: its pid, or the identity's shared
 * name). */
static int endpoint_for(const sc_runtime_t *rt, bool thread, uint32_t self,
                        char *out, size_t size)
{
    uint32_t pid = thread ? sc_plat_master_name_pid(self) : 0;
    sc_endpoint_params_t p = {
        .kind = rt->endpoint_dir[0] != '\0' ? SC_ENDPOINT_FILESYSTEM
                                            : sc_plat_default_endpoint_kind(),
        .version = SIDECAR_VERSION,
        .identity = rt->identity,
        .master_pid = pid,
        .elected_thread = thread && pid == 0,
        .dir = rt->endpoint_dir,
    };
    return sc_endpoint_name(out, size, &p);
}

/* Set while this thread forks for a spawn: our own fork handlers must
 * stand aside (the spawning thread already holds the runtime's locks, and
 * the intermediate child only execs). */
static _Thread_local bool spawning;

bool sc_runtime_spawning(void)
{
    return spawning;
}

/* ---- subprocess mode ----------------------------------------------------- */

/* Starts a sidecar daemon on `endpoint` unless someone else owns it. The
 * bind of the name is the lock: whoever binds it hands the bound, listening
 * socket to the daemon it starts, and everyone else's connects queue on that
 * socket until the daemon accepts. Returns 0 when a sidecar is (being)
 * started by anyone, or the reason none can be. */
static int spawn_sidecar(sc_runtime_t *rt, const char *endpoint)
{
    int64_t fd = -1;
    int rc = sc_plat_bind_handoff(endpoint, LISTEN_BACKLOG, &fd);
    if (rc == UV_EADDRINUSE) {
        return 0; /* another process won the race: its daemon will answer */
    }
    if (rc != 0) {
        return rc;
    }
    char idle[16], handle[24], rss_cap[24];
    snprintf(idle, sizeof idle, "%u", (unsigned)rt->cfg.idle_timeout_ms);
    /* Past what `run --rss-cap` accepts (2^48), a cap never bites: off. */
    uint64_t cap = rt->cfg.rss_cap_bytes;
    snprintf(rss_cap, sizeof rss_cap, "%llu",
             (unsigned long long)(cap > (1ull << 48) ? 0 : cap));
    snprintf(handle, sizeof handle, "%lld",
             (long long)sc_plat_passed_handle_value(fd));
    const char *argv[16 + 2 * (SC_MAX_ALLOWED_UIDS + SC_MAX_ALLOWED_SIDS)] = {
        rt->sidecar_path, "run", "--endpoint", endpoint, "--listen-fd", handle,
        "--idle-timeout", idle,  "--rss-cap",  rss_cap};
    size_t argc = 10;
    char uids[SC_MAX_ALLOWED_UIDS][12];
    for (size_t i = 0; i < rt->access.allowed_uid_count; i++) {
        snprintf(uids[i], sizeof uids[i], "%u",
                 (unsigned)rt->access.allowed_uids[i]);
        argv[argc++] = "--allow-uid";
        argv[argc++] = uids[i];
    }
    for (size_t i = 0; i < rt->access.allowed_sid_count; i++) {
        argv[argc++] = "--allow-sid";
        argv[argc++] = rt->access.allowed_sids[i];
    }
    /* Our log level and file: the daemon logs where its starter does. */
    argc += sc_log_daemon_args(argv + argc);
    argv[argc] = NULL;
    uint32_t pid = 0;
    spawning = true;
    rc = sc_plat_spawn_detached(argv, fd, &pid);
    spawning = false;
    /* The daemon has its copy; ours must go, or the name would outlive it. */
    sc_plat_close_raw(fd);
    if (rc != 0) {
        rt->spawn_failures++;
        rt->spawn_backoff_ms = rt->spawn_backoff_ms == 0 ? SPAWN_BACKOFF_MIN_MS
                               : rt->spawn_backoff_ms * 2 > SPAWN_BACKOFF_MAX_MS
                                   ? SPAWN_BACKOFF_MAX_MS
                                   : rt->spawn_backoff_ms * 2;
        rt->next_spawn_ns =
            uv_hrtime() + (uint64_t)rt->spawn_backoff_ms * 1000000u;
        SC_LOG_LIMITED(SC_LOG_WARN, "cannot start %s: %s", rt->sidecar_path,
                       uv_strerror(rc));
        return rc;
    }
    rt->spawns++;
    rt->spawn_backoff_ms = 0;
    rt->sidecar_pid = pid;
    sc_log(SC_LOG_INFO, "started sidecar pid %u on %s", (unsigned)pid,
           endpoint);
    return 0;
}

/* A sidecar answers a ping on `endpoint` within the connect timeout,
 * starting one if nobody listens. */
static int ensure_sidecar(sc_runtime_t *rt, const char *endpoint, char *why,
                          size_t why_size)
{
    sc_client_options_t o = {.endpoint = endpoint,
                             .connect_timeout_ms = rt->cfg.connect_timeout_ms};
    sc_client_t *probe = sc_client_new(&o);
    if (probe == NULL) {
        snprintf(why, why_size, "out of memory");
        return UV_ENOMEM;
    }
    sc_ping_result_t r;
    int rc = sc_client_ping(probe, rt->cfg.connect_timeout_ms, &r);
    if (rc == UV_EACCES) {
        snprintf(why, why_size,
                 "%s is held by a process of another user: not trusted, "
                 "nothing sent",
                 endpoint);
        sc_client_free(probe);
        return rc;
    }
    if (rc != 0) {
        int spawn = spawn_sidecar(rt, endpoint);
        if (spawn != 0) {
            /* A long path is cut in the message; that is fine. */
            if (snprintf(why, why_size, "cannot start %s: %s", rt->sidecar_path,
                         uv_strerror(spawn)) >= (int)why_size) {
                why[why_size - 1] = '\0';
            }
            sc_client_free(probe);
            return spawn;
        }
        sc_client_set_endpoint(probe, endpoint); /* no backoff: retry now */
        rc = sc_client_ping(probe, rt->cfg.connect_timeout_ms, &r);
        if (rc != 0) {
            snprintf(why, why_size, "sidecar did not answer within %u ms (%s)",
                     (unsigned)rt->cfg.connect_timeout_ms, uv_strerror(rc));
        }
    }
    if (rc == 0) {
        snprintf(why, why_size, "sidecar pid %u answers", r.server_pid);
        rt->sidecar_pid = r.server_pid;
    }
    sc_client_free(probe);
    return rc;
}

/* ---- thread mode ------------------------------------------------------------
 */

/* Claims the thread-mode name `name` (NULL: this process's own) and starts
 * the listener thread there: this process becomes master of whoever uses
 * the name. UV_EADDRINUSE: another live process holds it and is master.
 * Writes the endpoint to `endpoint` (SC_ENDPOINT_MAX + 1 bytes). Called
 * with rt->lock held. */
static int become_master_on(sc_runtime_t *rt, const char *name, const char *why,
                            char *endpoint)
{
    uint32_t self = sc_plat_getpid();
    char ep[SC_ENDPOINT_MAX + 1];
    int rc = 0;
    if (name != NULL) {
        snprintf(ep, sizeof ep, "%s", name);
    } else {
        rc = endpoint_for(rt, true, self, ep, sizeof ep);
    }
    if (rc != 0) {
        return rc;
    }
    sc_daemon_options_t o;
    sc_daemon_options_defaults(&o);
    strcpy(o.endpoint, ep);
    o.server.access = rt->access;
    o.server.access.master_pid = self;
    o.server.mode = "thread";
    /* Where the platform claims here, a worker promoted in the middle of a
     * request queues its actions on the socket at once instead of waiting
     * for the thread's loop and delivery to start. */
    rc = sc_plat_master_claim(ep, LISTEN_BACKLOG, &o.listen_handle);
    if (rc == 0) {
        /* No idle exit and no watchdog: they would act on the host. */
        rc = sc_listener_thread_start(&o, &rt->listener);
    }
    if (rc == UV_EADDRINUSE) {
        SC_LOG_LIMITED(SC_LOG_INFO, "another process is master on %s", ep);
        return rc;
    }
    if (rc != 0) {
        sc_log(SC_LOG_ERROR, "cannot start the listener thread on %s: %s", ep,
               uv_strerror(rc));
        return rc;
    }
    rt->listener_pid = self;
    rt->master_pid = self;
    strcpy(endpoint, ep);
    if (self != rt->init_pid) {
        rt->promotions++;
    }
    sc_log(SC_LOG_INFO, "pid %u is master (%s): listening on %s",
           (unsigned)self, why, ep);
    return 0;
}

/* become_master_on() this process's own name. */
static int become_master(sc_runtime_t *rt, const char *why, char *endpoint)
{
    return become_master_on(rt, NULL, why, endpoint);
}

bool sc_runtime_listener_here(const sc_runtime_t *rt)
{
    return rt->listener != NULL && rt->listener_pid == sc_plat_getpid();
}

/* ---- when the endpoint does not answer ---------------------------------- */

/* The master is gone, but the parent may have taken over already (a child
 * promoted before its own children noticed): join it rather than start a
 * second listener. Called with rt->lock held. */
static bool adopt_parent_master(sc_runtime_t *rt, char *endpoint)
{
    uint32_t parent = sc_plat_getppid();
    char ep[SC_ENDPOINT_MAX + 1];
    if (parent <= 1 || endpoint_for(rt, true, parent, ep, sizeof ep) != 0) {
        return false;
    }
    sc_plat_conn_t *probe = NULL;
    if (sc_plat_conn_open(ep, 100, &probe) != 0) {
        return false;
    }
    sc_plat_conn_close(probe);
    rt->master_pid = parent;
    strcpy(endpoint, ep);
    sc_log(SC_LOG_INFO, "master gone; joining the parent's listener %s", ep);
    return true;
}

bool sc_runtime_recover(sc_runtime_t *rt, int err, char *endpoint, size_t size)
{
    char ep[SC_ENDPOINT_MAX + 1];
    snprintf(ep, sizeof ep, "%s", endpoint);
    bool retry = false;
    uv_mutex_lock(&rt->lock);
    if (rt->shutting_down) {
        /* exiting: nothing is started any more */
    } else if (rt->mode == SC_MODE_SUBPROCESS && err == UV_EACCES &&
               rt->cfg.mode == SC_MODE_AUTO) {
        /* Another user holds our sidecar's name: never send it anything;
         * auto falls back to a listener of our own. */
        snprintf(rt->reason, sizeof rt->reason,
                 "auto: %s is served by another user; fell back to thread", ep);
        rt->mode = SC_MODE_THREAD;
        retry = become_master(rt, "auto fell back", ep) == 0;
    } else if (rt->mode == SC_MODE_SUBPROCESS) {
        /* The sidecar died (killed, idle exit, watchdog): start another. The
         * name is always this process's own user's (sc_runtime_refresh_
         * identity), so whoever finds it gone may start it. With another
         * user squatting the name the bind fails and nothing is sent. */
        retry = err != UV_EACCES && uv_hrtime() >= rt->next_spawn_ns &&
                spawn_sidecar(rt, ep) == 0;
    } else if (sc_runtime_listener_here(rt)) {
        /* Our own listener is unreachable only when its thread failed to
         * start after we bound the name: reclaim it and try once more. */
        if (sc_listener_thread_status(rt->listener) != 0) {
            sc_listener_thread_stop(rt->listener, 0);
            rt->listener = NULL;
            retry = become_master(rt, "the listener thread failed", ep) == 0;
        }
    } else if (!sc_plat_master_contestable(rt->master_pid)) {
        /* The master lives but does not answer: never take over its role;
         * actions are dropped and counted meanwhile. */
        SC_LOG_LIMITED(SC_LOG_WARN, "master pid %u is alive but unreachable",
                       (unsigned)rt->master_pid);
    } else {
        /* The master is gone. Its orphans elect one new listener on its
         * name: whoever binds it first listens there, the others find it
         * taken and connect to the winner; when the winner goes, the same
         * race again. One listener, one flusher, traces still merged. */
        int rc = become_master_on(rt, ep,
                                  "orphaned: the master is gone, elected on "
                                  "its name",
                                  ep);
        if (rc == UV_EADDRINUSE) {
            SC_LOG_LIMITED(SC_LOG_INFO,
                           "master gone; another orphan listens on %s", ep);
            retry = true;
        } else {
            /* A name we cannot bind (a directory of another user): a
             * promoted parent's, else our own. */
            retry = rc == 0 || adopt_parent_master(rt, ep) ||
                    become_master(rt, "orphaned: the master is gone", ep) == 0;
        }
    }
    uv_mutex_unlock(&rt->lock);
    if (retry && strlen(ep) < size) {
        strcpy(endpoint, ep);
        return true;
    }
    return false;
}

/* ---- fork --------------------------------------------------------------- */

bool sc_runtime_before_fork(sc_runtime_t *rt, char *endpoint, size_t size)
{
    char ep[SC_ENDPOINT_MAX + 1];
    bool moved = false;
    /* FPM with daemonize: the process forking workers is the real master,
     * whatever process ran sc_init(). */
    if (rt->cfg.listener_follows_forker && rt->mode == SC_MODE_THREAD &&
        !sc_runtime_listener_here(rt) &&
        become_master(rt, "it forks the workers", ep) == 0 &&
        strlen(ep) < size) {
        strcpy(endpoint, ep);
        moved = true;
    }
    if (sc_runtime_listener_here(rt)) {
        /* Promotion and sc_init do not wait for the listener thread to
         * start; a fork must (listener_thread.h). */
        sc_listener_thread_wait_started(rt->listener);
    }
    return moved;
}

bool sc_runtime_refresh_identity(sc_runtime_t *rt, char *endpoint, size_t size)
{
    char now[sizeof rt->identity];
    if (sc_plat_identity(now, sizeof now) != 0) {
        return false;
    }
    bool changed = false;
    uv_mutex_lock(&rt->lock);
    if (strcmp(now, rt->identity) != 0) {
        strcpy(rt->identity, now);
        char ep[SC_ENDPOINT_MAX + 1];
        if (rt->mode == SC_MODE_SUBPROCESS &&
            endpoint_for(rt, false, 0, ep, sizeof ep) == 0 &&
            strlen(ep) < size) {
            strcpy(endpoint, ep);
            changed = true;
        }
    }
    uv_mutex_unlock(&rt->lock);
    return changed;
}

void sc_runtime_after_fork_child(sc_runtime_t *rt)
{
    uv_mutex_init(&rt->lock);
    /* The listener thread did not survive the fork; its socket did, and
     * must go: with it open, connecting to a dead master's name would
     * succeed and hang. */
    if (rt->listener != NULL) {
        sc_listener_thread_abandon_in_child(rt->listener);
        rt->listener = NULL;
        rt->listener_pid = 0;
    }
}

/* ---- init / stop -------------------------------------------------------- */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

void sc_runtime_init(sc_runtime_t *rt, const sc_config_t *cfg)
{
    memset(rt, 0, sizeof *rt);
    sc_abi_config_copy(&rt->cfg, cfg); /* the caller's layout, checked */
    copy_str(rt->sidecar_path, sizeof rt->sidecar_path, cfg->sidecar_path);
    copy_str(rt->endpoint_dir, sizeof rt->endpoint_dir, cfg->endpoint_dir);
    rt->cfg.sidecar_path = rt->sidecar_path;
    rt->cfg.endpoint_dir = rt->endpoint_dir;
    rt->cfg.allowed_sids = NULL; /* the caller's string: parsed below */
    /* The client's strings are copied by the client; none is kept here. */
    memset(&rt->cfg.client, 0, sizeof rt->cfg.client);
    for (size_t i = 0; i < cfg->allowed_uid_count && i < SC_MAX_ALLOWED_UIDS;
         i++) {
        rt->access.allowed_uids[rt->access.allowed_uid_count++] =
            cfg->allowed_uids[i];
    }
    if (cfg->allowed_sids != NULL &&
        sc_access_parse_sids(&rt->access, cfg->allowed_sids) != 0) {
        sc_log(SC_LOG_WARN, "ignoring allowed_sids=%s: not a list of SIDs",
               cfg->allowed_sids);
    }
    if (sc_plat_identity(rt->identity, sizeof rt->identity) != 0) {
        strcpy(rt->identity, "unknown");
    }
    uv_mutex_init(&rt->lock);
    rt->init_pid = sc_plat_getpid();
}

void sc_runtime_choose_mode(sc_runtime_t *rt, char *endpoint, size_t size)
{
    char ep[SC_ENDPOINT_MAX + 1] = "";
    char why[128] = "";
    sc_connection_mode_t configured = rt->cfg.mode;
    uv_mutex_lock(&rt->lock);
    if (configured != SC_MODE_THREAD) {
        endpoint_for(rt, false, 0, ep, sizeof ep);
        int rc = ensure_sidecar(rt, ep, why, sizeof why);
        if (rc == 0 || configured == SC_MODE_SUBPROCESS) {
            rt->mode = SC_MODE_SUBPROCESS;
            snprintf(rt->reason, sizeof rt->reason, "%s: %s",
                     configured == SC_MODE_AUTO ? "auto" : "configured", why);
        } else {
            rt->mode = SC_MODE_THREAD;
            snprintf(rt->reason, sizeof rt->reason,
                     "auto: subprocess failed (%s); fell back to thread", why);
        }
    } else {
        rt->mode = SC_MODE_THREAD;
        snprintf(rt->reason, sizeof rt->reason, "configured: thread");
    }
    int rc = rt->mode == SC_MODE_THREAD
                 ? become_master(rt, "it called sc_init", ep)
                 : 0;
    if (rc != 0) {
        endpoint_for(rt, true, rt->init_pid, ep, sizeof ep);
        /* UV_EADDRINUSE: another process holds the name and is master,
         * known from its answers; otherwise nobody listens on our own
         * name, and a child that finds it so promotes itself. */
        rt->master_pid = rc == UV_EADDRINUSE ? 0 : rt->init_pid;
    }
    uv_mutex_unlock(&rt->lock);
    copy_str(endpoint, size, ep);
}

void sc_runtime_stop(sc_runtime_t *rt, uint32_t timeout_ms)
{
    uv_mutex_lock(&rt->lock);
    rt->shutting_down = true;
    sc_listener_thread_t *listener =
        sc_runtime_listener_here(rt) ? rt->listener : NULL;
    rt->listener = NULL;
    uv_mutex_unlock(&rt->lock);
    if (listener != NULL) {
        sc_listener_thread_stop(listener, timeout_ms);
    }
    uv_mutex_destroy(&rt->lock);
}

void sc_runtime_describe(sc_runtime_t *rt, sc_runtime_info_t *out)
{
    uv_mutex_lock(&rt->lock);
    out->configured_mode = rt->cfg.mode;
    out->mode = rt->mode;
    copy_str(out->reason, sizeof out->reason, rt->reason);
    out->init_pid = rt->init_pid;
    out->master_pid = rt->master_pid;
    out->listener_here = sc_runtime_listener_here(rt);
    out->sidecar_pid = rt->sidecar_pid;
    out->spawns = rt->spawns;
    out->spawn_failures = rt->spawn_failures;
    out->promotions = rt->promotions;
    uv_mutex_unlock(&rt->lock);
}
