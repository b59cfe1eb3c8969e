/* The process runtime: connection modes, the sidecar spawn, fork handling
 * and orphan promotion (SPEC §3). docs/runtime.md explains the lifecycles. */
#include "access.h"
#include "client.h"
#include "endpoint.h"
#include "flageval.h"
#include "install_paths.h"
#include "listener_thread.h"
#include "log.h"
#include "platform.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef SIDECAR_DEFAULT_BINARY
#define SIDECAR_DEFAULT_BINARY "/usr/local/bin/sidecar"
#endif

#define DEFAULT_RSS_CAP "536870912" /* 512 MiB, subprocess watchdog */
/* Connections a new listener queues before it accepts (SOMAXCONN caps it). */
#define LISTEN_BACKLOG 1024

static struct runtime {
    bool initialized;
    sc_config_t cfg;
    char sidecar_path[4096];
    char endpoint_dir[256];
    char identity[128];
    sc_access_t access; /* allowed uids and SIDs, from cfg */
    uv_mutex_t lock;    /* mode transitions: spawn, promotion */
    sc_connection_mode_t mode;
    char reason[192];
    char endpoint[SC_ENDPOINT_MAX + 1];
    uint32_t init_pid;
    uint32_t master_pid;
    sc_listener_thread_t *listener;
    uint32_t listener_pid; /* the process that owns `listener` */
    sc_client_t *client;
    uint32_t sidecar_pid;
    uint64_t spawns, spawn_failures, promotions;
    bool shutting_down; /* no sidecar is started any more */
} rt;

static uv_once_t atfork_once = UV_ONCE_INIT;

const char *sc_connection_mode_name(sc_connection_mode_t mode)
{
    switch (mode) {
    case SC_MODE_SUBPROCESS:
        return "subprocess";
    case SC_MODE_THREAD:
        return "thread";
    default:
        return "auto";
    }
}

int sc_connection_mode_parse(const char *s, sc_connection_mode_t *out)
{
    static const sc_connection_mode_t modes[] = {
        SC_MODE_AUTO, SC_MODE_SUBPROCESS, SC_MODE_THREAD};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcasecmp(s, sc_connection_mode_name(modes[i])) == 0) {
            *out = modes[i];
            return 0;
        }
    }
    return UV_EINVAL;
}

void sc_config_defaults(sc_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = SC_MODE_AUTO;
    cfg->sidecar_path = sc_install_sidecar_path();
    cfg->connect_timeout_ms = 1000;
    cfg->idle_timeout_ms = 60000;
    cfg->exit_flush_timeout_ms = 1000;
    cfg->flag_evaluation_counts = -1;
}

static int env_u32(const char *name, uint32_t *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return 0;
    }
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != '\0' || v[0] == '-' || n > UINT32_MAX) {
        sc_log(SC_LOG_WARN, "ignoring %s=%s: not a number of milliseconds",
               name, v);
        return UV_EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

static void env_str(const char *name, const char **out)
{
    const char *v = getenv(name);
    if (v != NULL && *v != '\0') {
        *out = v;
    }
}

int sc_config_from_env(sc_config_t *cfg)
{
    int rc = 0;
    const char *mode = getenv("DD_TRACE_SIDECAR_CONNECTION_MODE");
    if (mode != NULL && *mode != '\0' &&
        sc_connection_mode_parse(mode, &cfg->mode) != 0) {
        sc_log(SC_LOG_WARN,
               "ignoring DD_TRACE_SIDECAR_CONNECTION_MODE=%s (auto, "
               "subprocess or thread)",
               mode);
        rc = UV_EINVAL;
    }
    env_str("DD_TRACE_SIDECAR_PATH", &cfg->sidecar_path);
    env_str("DD_TRACE_SIDECAR_ENDPOINT_DIR", &cfg->endpoint_dir);
    if (env_u32("DD_TRACE_SIDECAR_CONNECT_TIMEOUT", &cfg->connect_timeout_ms) !=
            0 ||
        env_u32("DD_TRACE_SIDECAR_IDLE_TIMEOUT", &cfg->idle_timeout_ms) != 0) {
        rc = UV_EINVAL;
    }
    const char *uids = getenv("DD_TRACE_SIDECAR_ALLOWED_UIDS");
    if (uids != NULL && *uids != '\0') {
        int n = sc_access_parse_uids(uids, cfg->allowed_uids, 16);
        if (n < 0) {
            sc_log(SC_LOG_WARN,
                   "ignoring DD_TRACE_SIDECAR_ALLOWED_UIDS=%s (comma-separated "
                   "uids, at most 16)",
                   uids);
            rc = UV_EINVAL;
        } else {
            cfg->allowed_uid_count = (size_t)n;
        }
    }
    const char *sids = getenv("DD_TRACE_SIDECAR_ALLOWED_SIDS");
    sc_access_t check = {0};
    if (sids != NULL && *sids != '\0') {
        if (sc_access_parse_sids(&check, sids) != 0) {
            sc_log(SC_LOG_WARN,
                   "ignoring DD_TRACE_SIDECAR_ALLOWED_SIDS=%s "
                   "(comma-separated SID strings, at most %d)",
                   sids, SC_MAX_ALLOWED_SIDS);
            rc = UV_EINVAL;
        } else {
            cfg->allowed_sids = sids;
        }
    }
    env_str("DD_SERVICE", &cfg->client.service);
    env_str("DD_ENV", &cfg->client.env);
    env_str("DD_VERSION", &cfg->client.version);
    env_str("DD_TRACE_AGENT_URL", &cfg->client.agent_url);
    return rc;
}

/* ---- names ------------------------------------------------------------------
 */

/* master_pid 0: the subprocess name; otherwise thread mode, named after
 * the master where workers are forked from it, or the identity's shared
 * name where the master is elected (Windows). */
static int endpoint_for(uint32_t master_pid, char *out, size_t size)
{
    sc_endpoint_params_t p = {
        .kind = rt.endpoint_dir[0] != '\0' ? SC_ENDPOINT_FILESYSTEM
                                           : sc_plat_default_endpoint_kind(),
        .version = SIDECAR_VERSION,
        .identity = rt.identity,
        .master_pid = master_pid,
        .elected_thread = master_pid != 0 && sc_plat_thread_master_elected(),
        .dir = rt.endpoint_dir,
    };
    return sc_endpoint_name(out, size, &p);
}

/* Set while this thread forks for a spawn: our own fork handlers must
 * stand aside (the spawning thread already holds the runtime's locks, and
 * the intermediate child only execs). */
static _Thread_local bool spawning;

/* ---- subprocess mode ----------------------------------------------------- */

/* Starts a sidecar daemon on `endpoint` unless someone else owns it. The
 * bind of the name is the lock: whoever binds it hands the bound, listening
 * socket to the daemon it starts, and everyone else's connects queue on that
 * socket until the daemon accepts. Returns 0 when a sidecar is (being)
 * started by anyone, or the reason none can be. */
static int spawn_sidecar(const char *endpoint)
{
    int64_t fd = -1;
    int rc = sc_plat_bind_handoff(endpoint, LISTEN_BACKLOG, &fd);
    if (rc == UV_EADDRINUSE) {
        return 0; /* another process won the race: its daemon will answer */
    }
    if (rc != 0) {
        return rc;
    }
    char idle[16], handle[24];
    snprintf(idle, sizeof idle, "%u", (unsigned)rt.cfg.idle_timeout_ms);
    snprintf(handle, sizeof handle, "%lld",
             (long long)sc_plat_passed_handle_value(fd));
    const char *argv[12 + 2 * (SC_MAX_ALLOWED_UIDS + SC_MAX_ALLOWED_SIDS)] = {
        rt.sidecar_path, "run",          "--endpoint",     endpoint,
        "--listen-fd",   handle,         "--idle-timeout", idle,
        "--rss-cap",     DEFAULT_RSS_CAP};
    size_t argc = 10;
    char uids[SC_MAX_ALLOWED_UIDS][12];
    for (size_t i = 0; i < rt.access.allowed_uid_count; i++) {
        snprintf(uids[i], sizeof uids[i], "%u",
                 (unsigned)rt.access.allowed_uids[i]);
        argv[argc++] = "--allow-uid";
        argv[argc++] = uids[i];
    }
    for (size_t i = 0; i < rt.access.allowed_sid_count; i++) {
        argv[argc++] = "--allow-sid";
        argv[argc++] = rt.access.allowed_sids[i];
    }
    argv[argc] = NULL;
    uint32_t pid = 0;
    spawning = true;
    rc = sc_plat_spawn_detached(argv, fd, &pid);
    spawning = false;
    /* The daemon has its copy; ours must go, or the name would outlive it. */
    sc_plat_close_raw(fd);
    if (rc != 0) {
        rt.spawn_failures++;
        sc_log(SC_LOG_WARN, "cannot start %s: %s", rt.sidecar_path,
               uv_strerror(rc));
        return rc;
    }
    rt.spawns++;
    rt.sidecar_pid = pid;
    sc_log(SC_LOG_INFO, "started sidecar pid %u on %s", (unsigned)pid,
           endpoint);
    return 0;
}

/* A sidecar answers a ping on `endpoint` within the connect timeout,
 * starting one if nobody listens. */
static int ensure_sidecar(const char *endpoint, char *why, size_t why_size)
{
    sc_client_options_t o = {.endpoint = endpoint,
                             .connect_timeout_ms = rt.cfg.connect_timeout_ms};
    sc_client_t *probe = sc_client_new(&o);
    if (probe == NULL) {
        snprintf(why, why_size, "out of memory");
        return UV_ENOMEM;
    }
    sc_ping_result_t r;
    int rc = sc_client_ping(probe, rt.cfg.connect_timeout_ms, &r);
    if (rc != 0) {
        int spawn = spawn_sidecar(endpoint);
        if (spawn != 0) {
            /* A long path is cut in the message; that is fine. */
            if (snprintf(why, why_size, "cannot start %s: %s", rt.sidecar_path,
                         uv_strerror(spawn)) >= (int)why_size) {
                why[why_size - 1] = '\0';
            }
            sc_client_free(probe);
            return spawn;
        }
        rc = sc_client_ping(probe, rt.cfg.connect_timeout_ms, &r);
        if (rc != 0) {
            snprintf(why, why_size, "sidecar did not answer within %u ms (%s)",
                     (unsigned)rt.cfg.connect_timeout_ms, uv_strerror(rc));
        }
    }
    if (rc == 0) {
        snprintf(why, why_size, "sidecar pid %u answers", r.server_pid);
        rt.sidecar_pid = r.server_pid;
    }
    sc_client_free(probe);
    return rc;
}

/* ---- thread mode ------------------------------------------------------------
 */

/* Starts the listener thread in this process, which becomes the master of
 * its future children (or, where masters are elected, of every process of
 * this identity: UV_EADDRINUSE then means another process is master).
 * Called with rt.lock held. */
static int become_master(const char *why)
{
    uint32_t self = sc_plat_getpid();
    char ep[SC_ENDPOINT_MAX + 1];
    int rc = endpoint_for(self, ep, sizeof ep);
    if (rc != 0) {
        return rc;
    }
    sc_daemon_options_t o;
    sc_daemon_options_defaults(&o);
    strcpy(o.endpoint, ep);
    o.server.access = rt.access;
    o.server.access.master_pid = self;
    o.server.mode = "thread";
    if (!sc_plat_thread_master_elected()) {
        /* Bind here, serve on the thread: a worker promoted in the middle
         * of a request queues its actions on the socket at once instead of
         * waiting milliseconds for the thread's loop and delivery to start.
         * (An elected master must win its election first, on the thread
         * that will hold it.) */
        rc = sc_plat_bind_handoff(ep, LISTEN_BACKLOG, &o.listen_handle);
        if (rc != 0) {
            sc_log(SC_LOG_ERROR, "cannot listen on %s: %s", ep,
                   uv_strerror(rc));
            return rc;
        }
    }
    /* No idle exit and no watchdog: they would act on the host process. */
    rc = sc_listener_thread_start(&o, &rt.listener);
    if (rc == UV_EADDRINUSE && sc_plat_thread_master_elected()) {
        sc_log(SC_LOG_INFO, "another process is master on %s", ep);
        return rc;
    }
    if (rc != 0) {
        sc_log(SC_LOG_ERROR, "cannot start the listener thread on %s: %s", ep,
               uv_strerror(rc));
        return rc;
    }
    rt.listener_pid = self;
    rt.master_pid = self;
    strcpy(rt.endpoint, ep);
    if (self != rt.init_pid) {
        rt.promotions++;
    }
    sc_log(SC_LOG_INFO, "pid %u is master (%s): listening on %s",
           (unsigned)self, why, ep);
    return 0;
}

static bool listener_here(void)
{
    return rt.listener != NULL && rt.listener_pid == sc_plat_getpid();
}

/* ---- when the endpoint does not answer ---------------------------------- */

/* The master is gone, but the parent may have taken over already (a child
 * promoted before its own children noticed): join it rather than start a
 * second listener. Called with rt.lock held. */
static bool adopt_parent_master(void)
{
    uint32_t parent = sc_plat_getppid();
    char ep[SC_ENDPOINT_MAX + 1];
    if (parent <= 1 || endpoint_for(parent, ep, sizeof ep) != 0) {
        return false;
    }
    sc_plat_conn_t *probe = NULL;
    if (sc_plat_conn_open(ep, 100, &probe) != 0) {
        return false;
    }
    sc_plat_conn_close(probe);
    rt.master_pid = parent;
    strcpy(rt.endpoint, ep);
    sc_log(SC_LOG_INFO, "master gone; joining the parent's listener %s", ep);
    return true;
}

static int on_unreachable(void *ctx, int err, char *endpoint, size_t size)
{
    (void)ctx;
    (void)err;
    int retry = 0;
    uv_mutex_lock(&rt.lock);
    if (rt.mode == SC_MODE_SUBPROCESS) {
        /* The sidecar died (killed, idle exit, watchdog): start another --
         * unless this process is exiting, or runs as another user than the
         * one the name belongs to (a www-data worker must not start a
         * www-data sidecar under root's name). */
        char identity[128];
        bool owner = sc_plat_identity(identity, sizeof identity) == 0 &&
                     strcmp(identity, rt.identity) == 0;
        retry = !rt.shutting_down && owner && spawn_sidecar(rt.endpoint) == 0;
    } else if (listener_here()) {
        /* Our own listener is unreachable only when its thread failed to
         * start after we bound the name: reclaim it and try once more. */
        if (sc_listener_thread_status(rt.listener) != 0 && !rt.shutting_down) {
            sc_listener_thread_stop(rt.listener, 0);
            rt.listener = NULL;
            retry = become_master("the listener thread failed") == 0;
        }
    } else {
        if (sc_plat_thread_master_elected()) {
            /* Whoever owns the shared name is master: an election decides,
             * and a live master keeps it. Lost: connect to the winner. */
            int rc = become_master("elected: no master was reachable");
            retry = rc == 0 || rc == UV_EADDRINUSE;
        } else if (sc_plat_process_alive(rt.master_pid)) {
            /* The master lives but does not answer: never take over its
             * role; actions are dropped and counted meanwhile. */
            SC_LOG_LIMITED(SC_LOG_WARN,
                           "master pid %u is alive but unreachable",
                           (unsigned)rt.master_pid);
        } else if (adopt_parent_master()) {
            retry = 1;
        } else if (become_master("orphaned: the master is gone") == 0) {
            retry = 1;
        }
    }
    if (retry && strlen(rt.endpoint) < size) {
        strcpy(endpoint, rt.endpoint);
    }
    uv_mutex_unlock(&rt.lock);
    return retry;
}

/* ---- fork
 * --------------------------------------------------------------------- */

static void atfork_prepare(void)
{
    if (!rt.initialized || spawning) {
        return;
    }
    uv_mutex_lock(&rt.lock);
    /* FPM with daemonize: the process forking workers is the real master,
     * whatever process ran sc_init(). */
    if (rt.cfg.listener_follows_forker && rt.mode == SC_MODE_THREAD &&
        !listener_here() && become_master("it forks the workers") == 0) {
        sc_client_set_endpoint(rt.client, rt.endpoint);
    }
    if (listener_here()) {
        /* Promotion and sc_init do not wait for the listener thread to
         * start; a fork must (listener_thread.h). */
        sc_listener_thread_wait_started(rt.listener);
    }
    sc_client_atfork_prepare(rt.client);
}

static void atfork_parent(void)
{
    if (!rt.initialized || spawning) {
        return;
    }
    sc_client_atfork_parent(rt.client);
    uv_mutex_unlock(&rt.lock);
}

static void atfork_child(void)
{
    if (!rt.initialized || spawning) {
        return;
    }
    uv_mutex_init(&rt.lock);
    /* The listener thread did not survive the fork; its socket did, and
     * must go: with it open, connecting to a dead master's name would
     * succeed and hang. */
    if (rt.listener != NULL) {
        sc_listener_thread_abandon_in_child(rt.listener);
        rt.listener = NULL;
        rt.listener_pid = 0;
    }
    sc_client_atfork_child(rt.client);
    /* Evaluations recorded before the fork are the parent's to send. */
    sc_flageval_after_fork_child(sc_flageval_process());
}

static void register_atfork(void)
{
    sc_plat_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---- exit
 * ----------------------------------------------------------------------- */

/* A container's pid 1 (or a process whose parent is pid 1) takes the
 * sidecar down with it: its last actions are flushed synchronously. A
 * master's listener delivers what it holds before the process ends. */
static void at_exit(void)
{
    if (!rt.initialized) {
        return;
    }
    uint32_t self = sc_plat_getpid();
    if ((self == 1 || sc_plat_getppid() == 1) &&
        sc_client_has_unflushed(rt.client)) {
        sc_client_flush_sync(rt.client, rt.cfg.exit_flush_timeout_ms);
    }
    if (listener_here()) {
        sc_shutdown();
    }
}

/* ---- init / shutdown
 * ---------------------------------------------------------- */

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

int sc_init(const sc_config_t *cfg)
{
    if (rt.initialized) {
        return UV_EALREADY;
    }
    memset(&rt, 0, sizeof rt);
    rt.cfg = *cfg;
    copy_str(rt.sidecar_path, sizeof rt.sidecar_path, cfg->sidecar_path);
    copy_str(rt.endpoint_dir, sizeof rt.endpoint_dir, cfg->endpoint_dir);
    rt.cfg.sidecar_path = rt.sidecar_path;
    rt.cfg.allowed_sids = NULL; /* the caller's string: parsed below */
    for (size_t i = 0; i < cfg->allowed_uid_count && i < SC_MAX_ALLOWED_UIDS;
         i++) {
        rt.access.allowed_uids[rt.access.allowed_uid_count++] =
            cfg->allowed_uids[i];
    }
    if (cfg->allowed_sids != NULL &&
        sc_access_parse_sids(&rt.access, cfg->allowed_sids) != 0) {
        sc_log(SC_LOG_WARN, "ignoring allowed_sids=%s: not a list of SIDs",
               cfg->allowed_sids);
    }
    if (sc_plat_identity(rt.identity, sizeof rt.identity) != 0) {
        strcpy(rt.identity, "unknown");
    }
    uv_mutex_init(&rt.lock);
    rt.init_pid = sc_plat_getpid();
    if (cfg->flag_evaluation_counts >= 0 && sc_flageval_process() != NULL) {
        sc_flageval_set_enabled(sc_flageval_process(),
                                cfg->flag_evaluation_counts != 0);
    }
    uv_once(&atfork_once, register_atfork);

    char why[128] = "";
    uv_mutex_lock(&rt.lock);
    if (cfg->mode != SC_MODE_THREAD) {
        endpoint_for(0, rt.endpoint, sizeof rt.endpoint);
        int rc = ensure_sidecar(rt.endpoint, why, sizeof why);
        if (rc == 0 || cfg->mode == SC_MODE_SUBPROCESS) {
            rt.mode = SC_MODE_SUBPROCESS;
            snprintf(rt.reason, sizeof rt.reason, "%s: %s",
                     cfg->mode == SC_MODE_AUTO ? "auto" : "configured", why);
        } else {
            rt.mode = SC_MODE_THREAD;
            snprintf(rt.reason, sizeof rt.reason,
                     "auto: subprocess failed (%s); fell back to thread", why);
        }
    } else {
        rt.mode = SC_MODE_THREAD;
        snprintf(rt.reason, sizeof rt.reason, "configured: thread");
    }
    if (rt.mode == SC_MODE_THREAD && become_master("it called sc_init") != 0) {
        endpoint_for(rt.init_pid, rt.endpoint, sizeof rt.endpoint);
        /* An elected master is another process, known from its answers. */
        rt.master_pid = sc_plat_thread_master_elected() ? 0 : rt.init_pid;
    }
    sc_client_options_t co = cfg->client;
    co.endpoint = rt.endpoint;
    rt.client = sc_client_new(&co);
    uv_mutex_unlock(&rt.lock);
    if (rt.client == NULL) {
        return UV_ENOMEM;
    }
    sc_client_set_unreachable_hook(rt.client, on_unreachable, NULL);
    rt.initialized = true;
    static bool exit_registered;
    if (!exit_registered) {
        atexit(at_exit);
        exit_registered = true;
    }
    sc_log(SC_LOG_INFO, "connection mode %s (%s), endpoint %s",
           sc_connection_mode_name(rt.mode), rt.reason, rt.endpoint);
    return 0;
}

void sc_shutdown(void)
{
    if (!rt.initialized) {
        return;
    }
    uint32_t self = sc_plat_getpid();
    if (self != rt.init_pid && !listener_here()) {
        sc_client_flush(rt.client); /* a worker: its own buffer only */
        return;
    }
    rt.initialized = false;
    uv_mutex_lock(&rt.lock);
    rt.shutting_down = true;
    uv_mutex_unlock(&rt.lock);
    if (sc_client_has_unflushed(rt.client)) {
        sc_client_flush_sync(rt.client, rt.cfg.exit_flush_timeout_ms);
    }
    sc_client_free(rt.client);
    rt.client = NULL;
    if (listener_here()) {
        sc_listener_thread_stop(rt.listener,
                                rt.cfg.exit_flush_timeout_ms + 4000);
        rt.listener = NULL;
    }
    uv_mutex_destroy(&rt.lock);
}

sc_client_t *sc_runtime_client(void)
{
    return rt.initialized ? rt.client : NULL;
}

int sc_send_trace(const void *msgpack, size_t len, uint32_t trace_count)
{
    return rt.initialized
               ? sc_client_send_trace(rt.client, msgpack, len, trace_count)
               : SC_EDROPPED;
}

int sc_flush(void)
{
    return rt.initialized ? sc_client_flush(rt.client) : UV_EINVAL;
}

int sc_flush_sync(uint32_t timeout_ms)
{
    return rt.initialized ? sc_client_flush_sync(rt.client, timeout_ms)
                          : UV_EINVAL;
}

void sc_runtime_info(sc_runtime_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (!rt.initialized) {
        return;
    }
    uv_mutex_lock(&rt.lock);
    out->configured_mode = rt.cfg.mode;
    out->mode = rt.mode;
    copy_str(out->reason, sizeof out->reason, rt.reason);
    copy_str(out->endpoint, sizeof out->endpoint, rt.endpoint);
    out->init_pid = rt.init_pid;
    out->master_pid = rt.master_pid;
    out->listener_here = listener_here();
    out->sidecar_pid = rt.sidecar_pid;
    out->spawns = rt.spawns;
    out->spawn_failures = rt.spawn_failures;
    out->promotions = rt.promotions;
    uv_mutex_unlock(&rt.lock);
}
