/* The process side of the transport: construction and options, the fork
 * handlers, the endpoint, the enqueue path, stats and free. The connection
 * is client_io.c's, acknowledgements and round trips client_replies.c's;
 * client_internal.h holds what they share.
 *
 * Two locks keep the request path cheap. `buf_lock` guards only the queue of
 * encoded frames: enqueueing is an append under it. `io_lock` guards the
 * connection; whoever holds it moves queued frames into `sending` and
 * writes them, many frames per write. An enqueuer never waits for I/O done
 * by another thread: it only try-locks `io_lock`. */
#include "client_internal.h"

#include "abi.h"
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define DEFAULT_BUDGET_US          200
#define DEFAULT_BUFFER_CAP         (4u * 1024 * 1024)
#define DEFAULT_WRITE_THRESHOLD    (16u * 1024)
#define DEFAULT_RECONNECT_MIN_MS   50
#define DEFAULT_RECONNECT_MAX_MS   5000

static uint64_t new_session_id(void);

/* ---- options --------------------------------------------------------------
 */

/* Copies every string option into one allocation owned by the client. */
static bool copy_options(sc_client_t *c, const sc_client_options_t *o)
{
    const char **fields[] = {&c->opt.language,       &c->opt.language_version,
                             &c->opt.tracer_version, &c->opt.runtime_id,
                             &c->opt.service,        &c->opt.env,
                             &c->opt.version,        &c->opt.agent_url};
    size_t n = sizeof fields / sizeof fields[0];
    c->opt = *o;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += *fields[i] != NULL ? strlen(*fields[i]) + 1 : 0;
    }
    c->strings = malloc(total + 1);
    if (c->strings == NULL) {
        return false;
    }
    char *p = c->strings;
    for (size_t i = 0; i < n; i++) {
        if (*fields[i] != NULL) {
            size_t len = strlen(*fields[i]) + 1;
            memcpy(p, *fields[i], len);
            *fields[i] = p;
            p += len;
        }
    }
    if (c->opt.connect_timeout_ms == 0) {
        c->opt.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    }
    if (c->opt.enqueue_budget_us == 0) {
        c->opt.enqueue_budget_us = DEFAULT_BUDGET_US;
    }
    if (c->opt.buffer_cap == 0) {
        c->opt.buffer_cap = DEFAULT_BUFFER_CAP;
    }
    if (c->opt.write_threshold == 0) {
        c->opt.write_threshold = DEFAULT_WRITE_THRESHOLD;
    }
    if (c->opt.reconnect_min_ms == 0) {
        c->opt.reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
    }
    if (c->opt.reconnect_max_ms == 0) {
        c->opt.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
    }
    if (c->opt.language == NULL) {
        c->opt.language = "c";
    }
    if (c->opt.tracer_version == NULL) {
        c->opt.tracer_version = SIDECAR_VERSION;
    }
    return true;
}

sc_client_t *sc_client_new(const sc_client_options_t *options)
{
    if (options == NULL || options->endpoint == NULL ||
        sc_abi_client_options_check(options) != 0) {
        return NULL;
    }
    sc_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    if (strlen(options->endpoint) > SC_ENDPOINT_MAX ||
        !copy_options(c, options)) {
        free(c);
        return NULL;
    }
    strcpy(c->endpoint, options->endpoint);
    c->opt.endpoint = NULL; /* c->endpoint is the one copy */
    uv_mutex_init(&c->buf_lock);
    uv_mutex_init(&c->io_lock);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
    c->owner_pid = sc_plat_getpid();
    c->session_id = new_session_id();
    c->backoff_ms = c->opt.reconnect_min_ms;
    return c;
}

/* ---- fork ------------------------------------------------------------------
 */

/* A random, non-zero session id (Hello.session_id). */
static uint64_t new_session_id(void)
{
    uint64_t id = 0;
    while (id == 0 && uv_random(NULL, NULL, &id, sizeof id, 0, NULL) == 0) {
    }
    /* Without randomness: pid and clock still tell processes apart. */
    return id != 0 ? id : ((uint64_t)sc_plat_getpid() << 32) ^ uv_hrtime();
}

/* A child of fork() must not use its parent's connection or queue: the
 * socket is shared with the parent (writing would interleave frames) and
 * the queued actions are the parent's. The inherited descriptor is closed
 * (closing a copy does not disturb the parent), the queue discarded and
 * counted, and the child reconnects on first use. The locks are re-created
 * because another thread of the parent may have held them at fork time. */
static void reset_after_fork(sc_client_t *c, uint32_t pid)
{
    uv_mutex_init(&c->buf_lock);
    uv_mutex_init(&c->io_lock);
    sc_plat_conn_close(c->conn);
    c->conn = NULL;
    uint64_t discarded =
        sc_client__frames_between(&c->queue, 0, c->queue.len) +
        sc_client__frames_between(&c->sending, c->sent + c->front_remaining,
                                  c->sending.len);
    sc_buf_reset(&c->queue);
    sc_buf_reset(&c->sending);
    c->acked = 0;
    c->sent = 0;
    c->sending_bytes = 0;
    c->unacked_bytes = 0;
    /* A session is one process's: the parent's unacknowledged frames stay
     * the parent's to resend. */
    c->session_id = new_session_id();
    sc_frame_reader_free(&c->replies);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
    c->front_remaining = 0;
    c->next_attempt_ns = 0;
    c->backoff_ms = c->opt.reconnect_min_ms;
    memset(&c->stats, 0, sizeof c->stats);
    c->stats.dropped_after_fork = discarded;
    c->owner_pid = pid;
}

/* io_lock for a caller that will wait for it (a round trip, a change of
 * endpoint): gives way to a fork that waits for the lock first. */
void sc_client__io_lock_acquire(sc_client_t *c)
{
    while (atomic_load(&c->forks_waiting) > 0) {
        uv_sleep(1);
    }
    uv_mutex_lock(&c->io_lock);
}

/* io_lock for a caller that can do without it (an enqueue that would
 * write, a request-end flush): never while a fork waits. */
static bool io_lock_try(sc_client_t *c)
{
    return atomic_load(&c->forks_waiting) == 0 &&
           uv_mutex_trylock(&c->io_lock) == 0;
}

void sc_client_atfork_prepare(sc_client_t *c)
{
    atomic_fetch_add(&c->forks_waiting, 1);
    uv_mutex_lock(&c->io_lock);
    uv_mutex_lock(&c->buf_lock);
}

void sc_client_atfork_parent(sc_client_t *c)
{
    uv_mutex_unlock(&c->buf_lock);
    uv_mutex_unlock(&c->io_lock);
    atomic_fetch_sub(&c->forks_waiting, 1);
}

void sc_client_atfork_child(sc_client_t *c)
{
    atomic_store(&c->forks_waiting, 0);
    reset_after_fork(c, sc_plat_getpid());
}

int sc_client_take_unreachable(sc_client_t *c)
{
    return atomic_load_explicit(&c->unreachable, memory_order_relaxed) != 0
               ? atomic_exchange(&c->unreachable, 0)
               : 0;
}

void sc_client_endpoint(sc_client_t *c, char *out, size_t size)
{
    /* Changed only with both locks held: the short one is enough here, and
     * never waits for a round trip in progress. */
    uv_mutex_lock(&c->buf_lock);
    snprintf(out, size, "%s", c->endpoint);
    uv_mutex_unlock(&c->buf_lock);
}

int sc_client_set_endpoint(sc_client_t *c, const char *endpoint)
{
    if (strlen(endpoint) > SC_ENDPOINT_MAX) {
        return UV_ENAMETOOLONG;
    }
    sc_client__io_lock_acquire(c);
    if (strcmp(c->endpoint, endpoint) != 0) {
        sc_client__disconnect(c);
        uv_mutex_lock(&c->buf_lock);
        strcpy(c->endpoint, endpoint);
        uv_mutex_unlock(&c->buf_lock);
    }
    /* Whoever points us somewhere made it reachable: no backoff. */
    c->next_attempt_ns = 0;
    uv_mutex_unlock(&c->io_lock);
    return 0;
}

/* Entry check of every public function: forks that bypass pthread_atfork
 * (a raw clone, vfork-like paths) are caught here. */
void sc_client__check_fork(sc_client_t *c)
{
    uint32_t pid = sc_plat_getpid();
    if (pid != c->owner_pid) {
        reset_after_fork(c, pid);
    }
}

/* ---- enqueue ----------------------------------------------------------------
 */

/* Adds a dropped action to what the next DropReport says (buf_lock held).
 * Requests are not data: their callers hear of the drop. */
static void note_drop(sc_client_t *c, sc_action_kind_t kind,
                      const sidecar_v1_Envelope *env)
{
    sidecar_v1_DropReport *r = &c->unreported;
    switch (kind) {
    case SC_ACTION_TRACE:
        r->trace_payloads++;
        r->traces += env->action.trace_payload.trace_count;
        break;
    case SC_ACTION_FLAG_EVALUATIONS:
        r->flag_evaluation_batches++;
        break;
    case SC_ACTION_EXPOSURES:
        r->exposure_batches++;
        break;
    case SC_ACTION_FLUSH:
    case SC_ACTION_PING:
    case SC_ACTION_STATS:
    case SC_ACTION_DROP_REPORT: /* its counts stay in `unreported` */
        break;
    default:
        r->other_actions++;
        break;
    }
}

/* Connected, about to write: what was dropped since the last report goes
 * to the sidecar (io_lock held; the report is an ordinary frame, kept
 * until acknowledged). */
void sc_client__report_drops(sc_client_t *c)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    uv_mutex_lock(&c->buf_lock);
    sidecar_v1_DropReport r = c->unreported;
    bool any = r.trace_payloads != 0 || r.flag_evaluation_batches != 0 ||
               r.exposure_batches != 0 || r.other_actions != 0;
    memset(&c->unreported, 0, sizeof c->unreported);
    uv_mutex_unlock(&c->buf_lock);
    if (!any) {
        return;
    }
    env.which_action = sidecar_v1_Envelope_drop_report_tag;
    env.action.drop_report = r;
    if (sc_client__enqueue_frame(c, SC_ACTION_DROP_REPORT, &env, 0) == 0) {
        uv_mutex_lock(&c->buf_lock); /* no room: told next time */
        sidecar_v1_DropReport *u = &c->unreported;
        u->trace_payloads += r.trace_payloads;
        u->traces += r.traces;
        u->flag_evaluation_batches += r.flag_evaluation_batches;
        u->exposure_batches += r.exposure_batches;
        u->other_actions += r.other_actions;
        uv_mutex_unlock(&c->buf_lock);
    }
}

/* Appends one frame (`seq` filled in here) to the queue, writing first if
 * the cap is reached and nobody else is writing. Counts what it drops.
 * Returns the seq, or 0 when the action was dropped. */
uint64_t sc_client__enqueue_frame(sc_client_t *c, sc_action_kind_t kind,
                                  sidecar_v1_Envelope *env, uint64_t budget_ns)
{
    uint64_t deadline = sc_client__now_ns() + budget_ns;
    for (int attempt = 0;; attempt++) {
        uv_mutex_lock(&c->buf_lock);
        uint64_t seq = ++c->next_seq;
        env->seq = seq;
        size_t size = 0;
        /* The cap covers everything not yet written: the queue and the
         * unsent part of what the writer took. */
        bool fits =
            sc_codec_encoded_size(env, &size) &&
            c->queue.len + c->sending_bytes + SC_FRAME_HEADER_SIZE + size <=
                c->opt.buffer_cap &&
            c->unacked_bytes <= c->opt.buffer_cap;
        if (fits && sc_codec_append_frame(&c->queue, env)) {
            c->stats.enqueued[kind]++;
            size_t queued = c->queue.len;
            uv_mutex_unlock(&c->buf_lock);
            if (queued >= c->opt.write_threshold && io_lock_try(c)) {
                sc_client__pump(c, 0);
                uv_mutex_unlock(&c->io_lock);
            }
            return seq;
        }
        uv_mutex_unlock(&c->buf_lock);
        /* Full: one attempt to make room within the budget, if nobody else
         * is writing right now; otherwise the action is dropped. */
        if (attempt == 0 && io_lock_try(c)) {
            sc_client__pump(c, deadline);
            uv_mutex_unlock(&c->io_lock);
            continue;
        }
        uv_mutex_lock(&c->buf_lock);
        c->stats.dropped_full[kind]++;
        note_drop(c, kind, env);
        uv_mutex_unlock(&c->buf_lock);
        return 0;
    }
}

int sc_client_enqueue(sc_client_t *c, sc_action_kind_t kind,
                      sidecar_v1_Envelope *env)
{
    sc_client__check_fork(c);
    return sc_client__enqueue_frame(
               c, kind, env, (uint64_t)c->opt.enqueue_budget_us * 1000u) != 0
               ? 0
               : SC_EDROPPED;
}

int sc_client_send_trace(sc_client_t *c, const void *msgpack, size_t len,
                         uint32_t trace_count)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_trace_payload_tag;
    env.action.trace_payload.msgpack = sc_view_bytes(msgpack, len);
    env.action.trace_payload.trace_count = trace_count;
    return sc_client_enqueue(c, SC_ACTION_TRACE, &env);
}

int sc_client_flush(sc_client_t *c)
{
    sc_client__check_fork(c);
    if (!io_lock_try(c)) {
        return 0; /* another thread is writing (it takes our frames too),
                     or a fork is under way: the next flush writes them */
    }
    int rc = sc_client__pump(c, sc_client__now_ns() +
                                    (uint64_t)c->opt.enqueue_budget_us * 1000u);
    uv_mutex_unlock(&c->io_lock);
    return rc == UV_EAGAIN ? 0 : rc;
}

bool sc_client_has_unflushed(sc_client_t *c)
{
    sc_client__check_fork(c);
    uv_mutex_lock(&c->buf_lock);
    /* Every frame after the barrier's own seq was enqueued later. */
    bool pending = c->queue.len > 0 || c->sending_bytes > 0 ||
                   c->unacked_bytes > 0 || c->next_seq > c->barrier_seq;
    uv_mutex_unlock(&c->buf_lock);
    return pending;
}

void sc_client_stats(sc_client_t *c, sc_client_stats_t *out)
{
    sc_client__check_fork(c);
    uv_mutex_lock(&c->buf_lock);
    *out = c->stats;
    out->buffered_bytes = c->queue.len + c->sending_bytes + c->unacked_bytes;
    uv_mutex_unlock(&c->buf_lock);
}

void sc_client_free(sc_client_t *c)
{
    if (c == NULL) {
        return;
    }
    sc_client__check_fork(c);
    uv_mutex_lock(&c->io_lock);
    sc_client__pump(c, sc_client__now_ns() +
                           (uint64_t)c->opt.enqueue_budget_us * 1000u);
    sc_plat_conn_close(c->conn);
    uv_mutex_unlock(&c->io_lock);
    uv_mutex_destroy(&c->io_lock);
    uv_mutex_destroy(&c->buf_lock);
    sc_buf_free(&c->queue);
    sc_buf_free(&c->sending);
    sc_frame_reader_free(&c->replies);
    free(c->strings);
    free(c);
}
