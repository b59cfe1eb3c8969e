/* The process: owner of every process-wide singleton -- the connection
 * policy's state (runtime.h), the process's client, the flag-evaluation
 * aggregator -- of their fork handlers (the log's leaf lock has its own,
 * in log.c), and of the lock order. The public
 * entry points of the runtime (sc_init, sc_send_trace, sc_flush, ...) live
 * here: they call the client, and when the client reports that it could
 * not connect, they ask the policy to make the endpoint reachable, with no
 * client lock held. The client never calls back up.
 *
 * Lock order. A thread that holds one of these locks takes only locks
 * further down the list, never one above it:
 *
 *   1. rt.lock              runtime.c: mode transitions (spawn, promotion)
 *   2. client io_lock       client_io.c: the connection
 *   3. client buf_lock      client.c: the queue of encoded frames
 *   4. aggregator mutex     flageval.c: the process's flag evaluations
 *
 * (The log lock and a listener thread's own lock are leaves: nothing else
 * is taken while they are held.) The fork handlers below take 1-4 in that
 * order in `prepare`, release them in the parent, and re-create them in the
 * child, so a fork while any other thread holds any of them -- a request
 * thread writing, another recording an evaluation, a third promoting this
 * process -- cannot leave the child with a held lock or a half-updated
 * structure. docs/runtime.md describes the fork rules. */
#include "process.h"

#include "abi.h"
#include "client.h"
#include "flageval.h"
#include "log.h"
#include "platform.h"
#include "runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sc_runtime_t rt;
static sc_client_t *client;
static bool initialized;
/* Set in a fork child: the identity is looked at again on the first entry
 * point, by when FPM's worker has switched user. */
static atomic_bool identity_stale;
static uv_once_t atfork_once = UV_ONCE_INIT;
/* Created on first use, with or without sc_init() (sc_flageval_process). */
static _Atomic(sc_flageval_t *) aggregator;
static uv_once_t aggregator_once = UV_ONCE_INIT;

/* ---- reaching the endpoint ------------------------------------------------
 */

/* After a call into the client: if a connect failed, let the policy make
 * the endpoint reachable, then point the client there. True when it did
 * (worth another attempt now). No lock is held by the caller. */
static bool recover_if_unreachable(sc_client_t *c)
{
    int err = sc_client_take_unreachable(c);
    if (err == 0) {
        return false;
    }
    char ep[SC_ENDPOINT_MAX + 1];
    sc_client_endpoint(c, ep, sizeof ep);
    if (!sc_runtime_recover(&rt, err, ep, sizeof ep)) {
        return false;
    }
    sc_client_set_endpoint(c, ep);
    return true;
}

sc_client_t *sc_process_client(void)
{
    if (!initialized) {
        return NULL;
    }
    if (atomic_load_explicit(&identity_stale, memory_order_relaxed) &&
        atomic_exchange(&identity_stale, false)) {
        char ep[SC_ENDPOINT_MAX + 1];
        if (sc_runtime_refresh_identity(&rt, ep, sizeof ep)) {
            sc_client_set_endpoint(client, ep);
        }
    }
    return client;
}

void sc_process_after_send(sc_client_t *c)
{
    if (c == client && recover_if_unreachable(c)) {
        sc_client_flush(c); /* within the enqueue budget */
    }
}

/* Remaining milliseconds until `deadline_ns` (uv_hrtime), at least 1. */
static uint32_t ms_left(uint64_t deadline_ns)
{
    uint64_t now = uv_hrtime();
    return now >= deadline_ns
               ? 1
               : (uint32_t)((deadline_ns - now + 999999u) / 1000000u);
}

/* ---- fork ------------------------------------------------------------------
 */

/* What `prepare` took, for `parent` and `child` to release or re-create
 * (the child has the forking thread's copy). The aggregator is taken
 * whenever it exists: a host may record evaluations before sc_init() or
 * after sc_shutdown(), and its child must not inherit the mutex held by
 * another thread. None is taken on the thread that spawns a sidecar: it
 * holds lock 1 already, and its child only execs. */
static _Thread_local bool took_runtime, took_aggregator;

static void atfork_prepare(void)
{
    took_runtime = false;
    took_aggregator = false;
    if (sc_runtime_spawning()) {
        return;
    }
    if (initialized) {
        uv_mutex_lock(&rt.lock); /* 1 */
        char ep[SC_ENDPOINT_MAX + 1];
        if (sc_runtime_before_fork(&rt, ep, sizeof ep)) {
            sc_client_set_endpoint(client, ep); /* takes and releases 2 */
        }
        sc_client_atfork_prepare(client); /* 2, 3 */
        took_runtime = true;
    }
    sc_flageval_t *agg = atomic_load(&aggregator);
    if (agg != NULL) {
        sc_flageval_atfork_prepare(agg); /* 4 */
        took_aggregator = true;
    }
}

static void atfork_parent(void)
{
    if (took_aggregator) {
        sc_flageval_atfork_parent(atomic_load(&aggregator));
    }
    if (took_runtime) {
        sc_client_atfork_parent(client);
        uv_mutex_unlock(&rt.lock);
    }
}

static void atfork_child(void)
{
    if (took_aggregator) {
        /* Evaluations recorded before the fork are the parent's to send. */
        sc_flageval_after_fork_child(atomic_load(&aggregator));
    }
    if (took_runtime) {
        sc_client_atfork_child(client);
        sc_runtime_after_fork_child(&rt);
        atomic_store(&identity_stale, true);
    }
}

static void register_atfork(void)
{
    sc_plat_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void aggregator_create(void)
{
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.enabled = sc_flageval_counts_enabled(getenv(SC_FLAGEVAL_ENABLED_ENV));
    atomic_store(&aggregator, sc_flageval_new(&cfg));
    uv_once(&atfork_once, register_atfork);
}

sc_flageval_t *sc_flageval_process(void)
{
    uv_once(&aggregator_once, aggregator_create);
    return atomic_load(&aggregator);
}

/* ---- exit ------------------------------------------------------------------
 */

/* A process that ends with actions the sidecar has not confirmed (a
 * program that returns from main without sc_flush, a worker's last
 * request) hands them over and waits for the barrier, within
 * exit_flush_timeout_ms: otherwise they would die with its buffer. A
 * master's listener delivers what it holds before the process ends. */
static int flush_barrier(uint32_t timeout_ms, bool delivered);

static bool sent_anything(sc_client_t *c)
{
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
        if (st.enqueued[k] != 0) {
            return true;
        }
    }
    return false;
}

static void at_exit(void)
{
    if (!initialized) {
        return;
    }
    /* Pid 1 of a container (or a child of it, which a shell as pid 1
     * follows out): its end kills every process of the namespace, its
     * sidecar too, so handing over is not enough -- the barrier waits for
     * delivery itself, retries included, within the same time. */
    bool takes_sidecar_along = sc_plat_getpid() == 1 || sc_plat_getppid() == 1;
    if (takes_sidecar_along && sent_anything(client)) {
        flush_barrier(rt.cfg.exit_flush_timeout_ms, true);
    } else if (sc_client_has_unflushed(client)) {
        sc_flush_sync(rt.cfg.exit_flush_timeout_ms);
    }
    if (sc_runtime_listener_here(&rt)) {
        sc_shutdown();
    }
}

/* ---- init / shutdown ----------------------------------------------------- */

int sc_init(const sc_config_t *cfg)
{
    if (initialized) {
        return UV_EALREADY;
    }
    if (cfg == NULL || sc_abi_config_check(cfg) != 0) {
        return UV_EINVAL; /* built against another sidecar.h */
    }
    sc_runtime_init(&rt, cfg);
    /* Created here whatever the configuration, so that it reads the kill
     * switch from this process's environment: FPM's workers inherit it, and
     * run with a cleared one (clear_env). */
    sc_flageval_t *agg = sc_flageval_process();
    if (cfg->flag_evaluation_counts >= 0 && agg != NULL) {
        sc_flageval_set_enabled(agg, cfg->flag_evaluation_counts != 0);
    }
    uv_once(&atfork_once, register_atfork);

    char ep[SC_ENDPOINT_MAX + 1];
    sc_runtime_choose_mode(&rt, ep, sizeof ep);
    sc_client_options_t co = cfg->client;
    co.endpoint = ep;
    client = sc_client_new(&co);
    if (client == NULL) {
        sc_runtime_stop(&rt, 0);
        return UV_ENOMEM;
    }
    initialized = true;
    static bool exit_registered;
    if (!exit_registered) {
        atexit(at_exit);
        exit_registered = true;
    }
    sc_log(SC_LOG_INFO, "connection mode %s (%s), endpoint %s",
           sc_connection_mode_name(rt.mode), rt.reason, ep);
    return 0;
}

void sc_shutdown(void)
{
    if (!initialized) {
        return;
    }
    uint32_t self = sc_plat_getpid();
    if (self != rt.init_pid && !sc_runtime_listener_here(&rt)) {
        sc_client_flush(client); /* a worker: its own buffer only */
        return;
    }
    initialized = false;
    if (sc_client_has_unflushed(client)) {
        sc_client_flush_sync(client, rt.cfg.exit_flush_timeout_ms);
    }
    sc_client_free(client);
    client = NULL;
    sc_runtime_stop(&rt, rt.cfg.exit_flush_timeout_ms + 4000);
}

/* ---- entry points -------------------------------------------------------- */

sc_client_t *sc_runtime_client(void)
{
    return sc_process_client();
}

int sc_send_trace(const void *msgpack, size_t len, uint32_t trace_count)
{
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return SC_EDROPPED;
    }
    int rc = sc_client_send_trace(c, msgpack, len, trace_count);
    sc_process_after_send(c);
    return rc;
}

int sc_flush(void)
{
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return UV_EINVAL;
    }
    int rc = sc_client_flush(c);
    if (recover_if_unreachable(c)) {
        rc = sc_client_flush(c);
    }
    return rc;
}

/* A barrier (until delivery itself with `delivered`). A sidecar that died
 * is started again (or this process promoted) and the barrier tried once
 * more, a few times at most, within the time. */
static int flush_barrier(uint32_t timeout_ms, bool delivered)
{
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return UV_EINVAL;
    }
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    int rc = sc_client_flush_until(c, timeout_ms, delivered);
    for (int i = 0; i < 4 && rc != 0 && uv_hrtime() < deadline &&
                    recover_if_unreachable(c);
         i++) {
        rc = sc_client_flush_until(c, ms_left(deadline), delivered);
    }
    return rc;
}

int sc_flush_sync(uint32_t timeout_ms)
{
    return flush_barrier(timeout_ms, false);
}

int sc_ping(uint32_t timeout_ms, sc_ping_result_t *out)
{
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return UV_EINVAL;
    }
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    int rc = sc_client_ping(c, timeout_ms, out);
    if (rc != 0 && recover_if_unreachable(c)) {
        rc = sc_client_ping(c, ms_left(deadline), out);
    }
    return rc;
}

int sc_sidecar_stats(uint32_t timeout_ms, char **json)
{
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return UV_EINVAL;
    }
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    int rc = sc_client_sidecar_stats(c, timeout_ms, json);
    if (rc != 0 && recover_if_unreachable(c)) {
        rc = sc_client_sidecar_stats(c, ms_left(deadline), json);
    }
    return rc;
}

void sc_runtime_info(sc_runtime_info_t *out)
{
    memset(out, 0, sizeof *out);
    sc_client_t *c = sc_process_client();
    if (c == NULL) {
        return;
    }
    sc_runtime_describe(&rt, out);
    sc_client_endpoint(c, out->endpoint, sizeof out->endpoint);
}
