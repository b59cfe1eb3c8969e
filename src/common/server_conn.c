/* One admitted connection: reassemble frames, decode, dispatch, reply. */
#include "server_internal.h"

#include "codec.h"
#include "envelope_merge.h"
#include "json.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies up to this size are tried without an allocation first. */
#define SMALL_REPLY_MAX 256

typedef enum send_result {
    SEND_FAILED,
    SEND_QUEUED, /* a uv_write is under way */
    SENT_NOW     /* all written before send_frame returned */
} send_result_t;

typedef struct reply {
    uv_write_t req;
    sc_server_conn_t *conn;
    bool is_ack;
    size_t len;
    uint8_t data[];
} reply_t;

static void identity_free(sc_client_identity_t *id)
{
    free(id->language);
    free(id->language_version);
    free(id->tracer_version);
    free(id->service);
    free(id->env);
    free(id->version);
    memset(id, 0, sizeof *id);
}

static void conn_free(sc_server_conn_t *c)
{
    sc_frame_reader_free(&c->reader);
    sc_server_budget_settle(c->server, c); /* gives it all back */
    identity_free(&c->identity);
    free(c);
}

/* A connection is released when libuv is done with its handle and no flush
 * barrier still refers to it, whichever comes last. */
static void maybe_release(sc_server_conn_t *c)
{
    if (c->handle_closed && c->pending_flushes == 0 && c->reply_backlog == 0) {
        sc_server_conn_released(c->server, c);
        conn_free(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    sc_server_conn_t *c = (sc_server_conn_t *)h;
    c->handle_closed = true;
    maybe_release(c);
}

void sc_conn_close(sc_server_conn_t *c)
{
    if (!c->closing) {
        /* What was handled is acknowledged before the connection goes, so
         * the client does not send it again (a write into a socket with
         * room completes at once; otherwise it is lost with the socket and
         * the session table catches the resend). */
        if (!c->final_ack) {
            c->final_ack = true;
            c->ack_in_flight = false;
            sc_conn_ack(c);
            if (c->closing) {
                return; /* that write failed and closed it already */
            }
        }
        c->closing = true;
        if (c->fd_registered) {
            sc_fd_registry_remove(c->server->cfg.conn_fds, c->registered_fd);
            c->fd_registered = false;
        }
        if (c->budget_wait) {
            c->budget_wait = false;
            c->server->budget_waiters--;
        }
        uv_close((uv_handle_t *)&c->pipe, on_closed);
    }
}

static void on_reply_written(uv_write_t *req, int status)
{
    reply_t *r = (reply_t *)req;
    sc_server_conn_t *c = r->conn;
    c->reply_backlog -= r->len;
    if (r->is_ack) {
        c->ack_in_flight = false;
    }
    if (status != 0 && status != UV_ECANCELED) {
        sc_conn_close(c);
    } else if (r->is_ack) {
        sc_conn_ack(c); /* what was handled while this one was written */
    }
    free(r);
    maybe_release(c);
}

/* Queues one reply frame; false when it could not be. */
/* A small reply (an Ack, a FlushReply, a PingReply) written at once when
 * nothing is queued before it: no allocation, no poll registration. Returns
 * the bytes written (all, some or none), or a negative error. */
static long try_write_small(sc_server_conn_t *c, const sidecar_v1_Envelope *env,
                            size_t size, uint8_t *frame)
{
    size_t written = 0;
    if (!sc_codec_encode(env, frame + SC_FRAME_HEADER_SIZE, size, &written)) {
        return UV_EINVAL;
    }
    sc_frame_put_len(frame, (uint32_t)size);
    if (c->reply_backlog != 0) {
        return 0; /* behind what is queued */
    }
    uv_buf_t buf =
        uv_buf_init((char *)frame, (unsigned)(SC_FRAME_HEADER_SIZE + size));
    int n = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
    return n == UV_EAGAIN || n == UV_ENOSYS ? 0 : n;
}

static send_result_t send_frame(sc_server_conn_t *c,
                                const sidecar_v1_Envelope *env, bool is_ack)
{
    if (c->closing) {
        return SEND_FAILED;
    }
    size_t size = 0;
    if (!sc_codec_encoded_size(env, &size)) {
        return SEND_FAILED;
    }
    size_t len = SC_FRAME_HEADER_SIZE + size;
    uint8_t small[SMALL_REPLY_MAX];
    size_t done = 0;
    if (len <= sizeof small) {
        long n = try_write_small(c, env, size, small);
        if (n < 0) {
            sc_conn_close(c);
            return SEND_FAILED;
        }
        if ((size_t)n == len) {
            return SENT_NOW;
        }
        done = (size_t)n; /* the rest is queued below */
    }
    reply_t *r = malloc(sizeof *r + len);
    size_t written = 0;
    if (r == NULL) {
        return SEND_FAILED;
    }
    if (len <= sizeof small) {
        memcpy(r->data, small + done, len - done);
        len -= done;
    } else if (!sc_codec_encode(env, r->data + SC_FRAME_HEADER_SIZE, size,
                                &written)) {
        free(r);
        return SEND_FAILED;
    } else {
        sc_frame_put_len(r->data, (uint32_t)size);
    }
    r->conn = c;
    r->is_ack = is_ack;
    r->len = len;
    /* A peer that asks and never reads its answers would make us buffer
     * without bound: past the backlog limit it is closed instead. */
    if (done == 0 &&
        c->reply_backlog + len > c->server->cfg.max_reply_backlog) {
        free(r);
        if (is_ack) {
            return SEND_FAILED; /* acks are cumulative: a later one says it */
        }
        c->server->stats.stuck_readers_closed++;
        SC_LOG_LIMITED(SC_LOG_WARN, "closing pid=%u: it does not read replies",
                       c->peer.pid);
        sc_conn_close(c);
        return SEND_FAILED;
    }
    uv_buf_t buf = uv_buf_init((char *)r->data, (unsigned)len);
    if (uv_write(&r->req, (uv_stream_t *)&c->pipe, &buf, 1, on_reply_written) !=
        0) {
        free(r);
        sc_conn_close(c);
        return SEND_FAILED;
    }
    c->reply_backlog += len;
    return SEND_QUEUED;
}

static void send_reply(sc_server_conn_t *c, const sidecar_v1_Envelope *env)
{
    send_frame(c, env, false);
}

void sc_conn_ack(sc_server_conn_t *c)
{
    if (c->session_id == 0 || c->ack_in_flight ||
        c->handled_seq <= c->acked_seq) {
        return;
    }
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_ack_tag;
    env.action.ack.handled_through_seq = c->handled_seq;
    send_result_t sent = send_frame(c, &env, true);
    if (sent != SEND_FAILED) {
        c->ack_in_flight = sent == SEND_QUEUED;
        c->acked_seq = c->handled_seq;
        c->server->stats.acks_sent++;
    }
}

static void send_error(sc_server_conn_t *c, uint64_t seq,
                       sidecar_v1_ErrorReply_Code code, const char *what)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_error_reply_tag;
    env.action.error_reply.code = code;
    env.action.error_reply.message = sc_view_str(what);
    send_reply(c, &env);
}

static void protocol_error(sc_server_conn_t *c, uint64_t *counter,
                           sidecar_v1_ErrorReply_Code code, const char *what)
{
    (*counter)++;
    SC_LOG_LIMITED(SC_LOG_WARN, "closing connection of pid=%u: %s", c->peer.pid,
                   what);
    send_error(c, 0, code, what);
    sc_conn_close(c);
}

/* ---- identity strings --------------------------------------------------- */

const char *sc_identity_string_error(sc_view_t v, const sc_string_rule_t *rule)
{
    if (v.ptr == NULL) {
        return NULL;
    }
    if (v.len > rule->max) {
        return rule->too_long;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < 0x20 || v.ptr[i] == 0x7f) {
            return rule->control;
        }
    }
    return sc_utf8_valid(v.ptr, v.len) ? NULL : rule->not_utf8;
}

static char *dup_view(sc_view_t v)
{
    if (v.ptr == NULL) {
        return NULL;
    }
    char *s = malloc(v.len + 1);
    if (s != NULL) {
        if (v.len > 0) {
            memcpy(s, v.ptr, v.len);
        }
        s[v.len] = '\0';
    }
    return s;
}

/* A string without presence: absent is empty, stored as "". */
static char *dup_plain(sc_view_t v)
{
    return dup_view(v.ptr != NULL ? v : sc_view_bytes("", 0));
}

static const char *check_hello(const sidecar_v1_Hello *h)
{
    static const sc_string_rule_t rules[] = {
        SC_IDENTITY_RULE("Hello.language"),
        SC_IDENTITY_RULE("Hello.language_version"),
        SC_IDENTITY_RULE("Hello.tracer_version"),
        SC_IDENTITY_RULE("Hello.runtime_id"),
        SC_IDENTITY_RULE("Hello.service"),
        SC_IDENTITY_RULE("Hello.env"),
        SC_IDENTITY_RULE("Hello.version"),
    };
    const sc_view_t values[] = {h->language,       h->language_version,
                                h->tracer_version, h->runtime_id,
                                h->service,        h->env,
                                h->version};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const char *why = sc_identity_string_error(values[i], &rules[i]);
        if (why != NULL) {
            return why;
        }
    }
    return NULL;
}

/* Validates a Hello and, when valid, makes it the connection's identity. */
static const char *remember_hello(sc_server_conn_t *c,
                                  const sidecar_v1_Hello *h)
{
    const char *why = check_hello(h);
    if (why != NULL) {
        return why;
    }
    sc_client_identity_t id = {
        .pid = h->pid,
        .peer_uid = c->peer.uid,
        .language = dup_plain(h->language),
        .language_version = dup_plain(h->language_version),
        .tracer_version = dup_plain(h->tracer_version),
        .service = dup_view(h->service),
        .env = dup_view(h->env),
        .version = dup_view(h->version),
    };
    if (id.language == NULL || id.language_version == NULL ||
        id.tracer_version == NULL || (h->service.ptr != NULL && !id.service) ||
        (h->env.ptr != NULL && !id.env) ||
        (h->version.ptr != NULL && !id.version)) {
        identity_free(&id);
        return "out of memory storing the Hello";
    }
    identity_free(&c->identity);
    c->identity = id;
    c->has_identity = true;
    if (h->session_id != 0 && h->session_id != c->session_id) {
        c->session_id = h->session_id;
        c->session = sc_sessions_get(c->server->sessions, h->session_id);
    }
    return NULL;
}

/* ---- replies ------------------------------------------------------------ */

static void reply_ping(sc_server_conn_t *c, uint64_t seq,
                       const sidecar_v1_Ping *p)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_ping_reply_tag;
    sidecar_v1_PingReply *r = &env.action.ping_reply;
    r->has_client_time_ns = p->has_client_time_ns;
    r->client_time_ns = p->client_time_ns;
    r->server_pid = sc_plat_getpid();
    r->server_version = sc_view_str(SIDECAR_VERSION);
    r->mode = sc_view_str(c->server->cfg.mode);
    send_reply(c, &env);
}

static void reply_stats(sc_server_conn_t *c, uint64_t seq)
{
    sc_buf_t json = {0};
    sc_server_stats_json(c->server, &json);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_stats_reply_tag;
    env.action.stats_reply.json = sc_view_bytes(json.data, json.len);
    send_reply(c, &env);
    sc_buf_free(&json);
}

static void start_flush(sc_server_conn_t *c, const sc_flush_barrier_t *b,
                        const sidecar_v1_Flush *f)
{
    sc_server_t *s = c->server;
    c->pending_flushes++;
    /* Without deliver_now the barrier is already reached: every earlier
     * action of this connection has been handled synchronously. */
    if (s->h.on_flush == NULL || !f->deliver_now) {
        sc_server_flush_done(c, b, sidecar_v1_FlushReply_STATUS_OK);
        return;
    }
    s->h.on_flush(s->h.ctx, c, b, f);
}

void sc_server_flush_done(sc_server_conn_t *c, const sc_flush_barrier_t *b,
                          sidecar_v1_FlushReply_Status status)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = b->seq;
    env.which_action = sidecar_v1_Envelope_flush_reply_tag;
    env.action.flush_reply.status = status;
    env.action.flush_reply.actions_handled = b->actions_before;
    send_reply(c, &env);
    /* A FlushReply acknowledges up to its seq (docs/wire.md): no Ack for
     * the same frames right behind it. */
    if (b->seq > c->acked_seq) {
        c->acked_seq = b->seq;
    }
    c->pending_flushes--;
    maybe_release(c);
}

const sc_client_identity_t *sc_server_conn_identity(const sc_server_conn_t *c)
{
    return c->has_identity ? &c->identity : NULL;
}

bool sc_server_conn_flag_counts_enabled(const sc_server_conn_t *c)
{
    return !c->flag_counts_disabled;
}

void sc_server_conn_set_flag_counts_enabled(sc_server_conn_t *c, bool on)
{
    c->flag_counts_disabled = !on;
}

void *sc_server_conn_owner_data(const sc_server_conn_t *c)
{
    return c->owner_data;
}

void sc_server_conn_set_owner_data(sc_server_conn_t *c, void *data)
{
    c->owner_data = data;
}

/* ---- dispatch ----------------------------------------------------------- */

static const char *const no_hello = "no Hello on this connection";

/* Adds a client's DropReport to the totals in the stats. */
static const char *record_drop_report(sc_server_conn_t *c,
                                      const sidecar_v1_DropReport *r)
{
    struct sc_client_drops_totals *t = &c->server->stats.client_drops;
    t->trace_payloads += r->trace_payloads;
    t->traces += r->traces;
    t->flag_evaluation_batches += r->flag_evaluation_batches;
    t->exposure_batches += r->exposure_batches;
    t->other_actions += r->other_actions;
    SC_LOG_LIMITED(SC_LOG_WARN,
                   "pid=%u dropped %llu trace payloads (%llu traces), %llu "
                   "flag-evaluation batches, %llu exposure batches, %llu "
                   "other actions before it could hand them over",
                   c->peer.pid, (unsigned long long)r->trace_payloads,
                   (unsigned long long)r->traces,
                   (unsigned long long)r->flag_evaluation_batches,
                   (unsigned long long)r->exposure_batches,
                   (unsigned long long)r->other_actions);
    return NULL;
}

/* Runs the handler of one client action; returns its kind through `*kind`
 * and NULL, or why the action is invalid. False in `*known` for an
 * envelope without a client action. */
static const char *run_handler(sc_server_conn_t *c,
                               const sidecar_v1_Envelope *env,
                               sc_action_kind_t *kind, bool *known)
{
    const sc_server_handlers_t *h = &c->server->h;
    *known = true;
    switch (env->which_action) {
    case sidecar_v1_Envelope_hello_tag: {
        *kind = SC_ACTION_HELLO;
        const char *why = remember_hello(c, &env->action.hello);
        if (why == NULL && h->on_hello != NULL) {
            why = h->on_hello(h->ctx, c, &env->action.hello);
        }
        return why;
    }
    case sidecar_v1_Envelope_session_config_tag:
        *kind = SC_ACTION_SESSION_CONFIG;
        return h->on_session_config != NULL
                   ? h->on_session_config(h->ctx, c,
                                          &env->action.session_config)
                   : NULL;
    case sidecar_v1_Envelope_trace_payload_tag:
        *kind = SC_ACTION_TRACE;
        if (!c->has_identity) {
            return no_hello;
        }
        return h->on_trace != NULL
                   ? h->on_trace(h->ctx, c, &env->action.trace_payload)
                   : NULL;
    case sidecar_v1_Envelope_flag_evaluation_batch_tag:
        *kind = SC_ACTION_FLAG_EVALUATIONS;
        if (!c->has_identity) {
            return no_hello;
        }
        return h->on_flag_evaluations != NULL
                   ? h->on_flag_evaluations(h->ctx, c,
                                            &env->action.flag_evaluation_batch)
                   : NULL;
    case sidecar_v1_Envelope_exposure_batch_tag:
        *kind = SC_ACTION_EXPOSURES;
        if (!c->has_identity) {
            return no_hello;
        }
        return h->on_exposures != NULL
                   ? h->on_exposures(h->ctx, c, &env->action.exposure_batch)
                   : NULL;
    case sidecar_v1_Envelope_drop_report_tag:
        *kind = SC_ACTION_DROP_REPORT;
        return record_drop_report(c, &env->action.drop_report);
    case sidecar_v1_Envelope_metric_tag:
        *kind = SC_ACTION_METRIC;
        if (!c->has_identity) {
            return no_hello;
        }
        return h->on_metric != NULL
                   ? h->on_metric(h->ctx, c, &env->action.metric)
                   : NULL;
    case sidecar_v1_Envelope_telemetry_tag:
        *kind = SC_ACTION_TELEMETRY;
        if (!c->has_identity) {
            return no_hello;
        }
        return h->on_telemetry != NULL
                   ? h->on_telemetry(h->ctx, c, &env->action.telemetry)
                   : NULL;
    case sidecar_v1_Envelope_flush_tag:
        *kind = SC_ACTION_FLUSH;
        return NULL;
    case sidecar_v1_Envelope_ping_tag:
        *kind = SC_ACTION_PING;
        return NULL;
    case sidecar_v1_Envelope_stats_request_tag:
        *kind = SC_ACTION_STATS;
        return NULL;
    default:
        *known = false;
        return NULL;
    }
}

/* Dispatches one decoded action. Returns false when the connection must
 * close. */
static bool dispatch_action(sc_server_conn_t *c, const sidecar_v1_Envelope *env)
{
    sc_server_t *s = c->server;
    sc_action_kind_t kind = SC_ACTION_KIND_COUNT;
    bool known = false;
    const char *invalid = run_handler(c, env, &kind, &known);
    if (!known) {
        /* Empty envelopes, replies sent the wrong way, and action numbers
         * this build does not know. */
        protocol_error(c, &s->stats.unknown_actions,
                       sidecar_v1_ErrorReply_CODE_UNKNOWN_ACTION,
                       "unknown action");
        return false;
    }
    /* FlushReply.actions_handled: what came before this action. */
    sc_flush_barrier_t barrier = {env->seq, c->actions_handled};
    c->actions_handled++;
    if (invalid != NULL) {
        s->stats.invalid_actions++;
        s->stats.invalid[kind]++;
        SC_LOG_LIMITED(SC_LOG_WARN, "refused %s action of pid=%u: %s",
                       sc_action_kind_name(kind), c->peer.pid, invalid);
        send_error(c, env->seq, sidecar_v1_ErrorReply_CODE_INVALID_ACTION,
                   invalid);
        return true;
    }
    s->stats.actions[kind]++;
    /* Requests are answered after the counters include them. */
    switch (kind) {
    case SC_ACTION_FLUSH:
        start_flush(c, &barrier, &env->action.flush);
        break;
    case SC_ACTION_PING:
        reply_ping(c, env->seq, &env->action.ping);
        break;
    case SC_ACTION_STATS:
        reply_stats(c, env->seq);
        break;
    default:
        break;
    }
    return true;
}

/* The session slot of an acknowledging connection (re-found when the
 * table gave it to another session meanwhile). */
static sc_session_slot_t *session_slot(sc_server_conn_t *c)
{
    if (c->session->id != c->session_id) {
        c->session = sc_sessions_get(c->server->sessions, c->session_id);
    }
    return c->session;
}

/* A data action of an acknowledging session that was handled before (sent
 * again after a reconnect because its Ack never arrived, to this sidecar
 * or to a predecessor whose ledger we took over) is not handled twice.
 * Requests are always answered -- the client may be waiting for that very
 * reply -- and Hello / SessionConfig belong to each connection. */
static bool is_duplicate(sc_server_conn_t *c, const sidecar_v1_Envelope *env)
{
    pb_size_t tag = env->which_action;
    return (tag == sidecar_v1_Envelope_trace_payload_tag ||
            tag == sidecar_v1_Envelope_flag_evaluation_batch_tag ||
            tag == sidecar_v1_Envelope_exposure_batch_tag ||
            tag == sidecar_v1_Envelope_drop_report_tag ||
            tag == sidecar_v1_Envelope_metric_tag ||
            tag == sidecar_v1_Envelope_telemetry_tag) &&
           sc_sessions_handled(session_slot(c), env->seq);
}

/* Dispatches one action; for an acknowledging session, drops duplicates
 * and records what was handled (for the next Ack and the session table).
 * Returns false when the connection must close. */
static bool dispatch(sc_server_conn_t *c, const sidecar_v1_Envelope *env)
{
    bool tracked = c->session_id != 0 && env->seq != 0;
    bool ok = true;
    if (tracked && is_duplicate(c, env)) {
        c->server->stats.duplicates_dropped++;
    } else {
        ok = dispatch_action(c, env);
    }
    if (tracked && ok) {
        sc_sessions_record(c->server->sessions, session_slot(c), env->seq);
        if (env->seq > c->handled_seq) {
            c->handled_seq = env->seq;
        }
    }
    return ok;
}

static bool on_frame(void *ctx, const uint8_t *body, size_t len)
{
    sc_server_conn_t *c = ctx;
    sc_server_t *s = c->server;
    if (c->closing) {
        return false;
    }
    s->stats.frames_in++;
    c->frames_in++;
    sc_buf_t merged = {0};
    sidecar_v1_Envelope env;
    const char *err = NULL;
    /* A plain trace frame (codec_trace.c) holds one action: nothing to
     * merge. Any other: the same action field twice is one merged action
     * (protobuf rules), then nanopb. */
    bool ok = sc_codec_decode_trace(body, len, &env);
    if (!ok) {
        const uint8_t *msg = body;
        size_t msg_len = len;
        if (!sc_envelope_merge_actions(body, len, &merged, &msg, &msg_len)) {
            sc_buf_free(&merged);
            SC_LOG_LIMITED(SC_LOG_ERROR, "out of memory reading pid=%u",
                           c->peer.pid);
            sc_conn_close(c);
            return false;
        }
        ok = sc_codec_decode(msg, msg_len, &env, &err);
    }
    if (!ok) {
        protocol_error(c, &s->stats.decode_errors,
                       sidecar_v1_ErrorReply_CODE_DECODE_FAILED,
                       err != NULL ? err : "decode failed");
    } else {
        ok = dispatch(c, &env);
    }
    sc_buf_free(&merged);
    return ok;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sc_server_conn_t *c = (sc_server_conn_t *)h;
    uint8_t *p = NULL;
    size_t len = 0;
    /* The budget first: what the reader would hold must fit before it is
     * allocated. Otherwise the read is deferred (on_read stops reading). */
    if (!sc_server_budget_take(c->server, c,
                               sc_frame_reader_next_capacity(&c->reader))) {
        c->budget_wait = true;
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    if (!sc_frame_reader_space(&c->reader, &p, &len)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf =
        uv_buf_init((char *)p, (unsigned)(len > UINT32_MAX ? UINT32_MAX : len));
}

/* After a read: when the pending frame began (frames that completed in
 * this read restart the clock), and the budget charge. */
static void after_read(sc_server_conn_t *c, uint64_t frames_before)
{
    if (c->closing) {
        /* Out of the reader's drain now: what it holds can go, rather than
         * when the handle is released (after flush barriers complete). */
        sc_frame_reader_free(&c->reader);
    }
    if (sc_frame_reader_pending(&c->reader) == 0) {
        c->frame_started_ms = 0;
    } else if (c->frame_started_ms == 0 || c->frames_in != frames_before) {
        c->frame_started_ms = uv_now(c->server->loop);
    }
    sc_server_budget_settle(c->server, c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    sc_server_conn_t *c = (sc_server_conn_t *)stream;
    if (nread == UV_ENOBUFS && c->budget_wait) {
        /* Over the reassembly budget: unread bytes stay in the socket
         * until sc_server_budget_settle() frees some and resumes us. */
        uv_read_stop(stream);
        c->server->budget_waiters++;
        c->server->stats.reassembly_waits++;
        return;
    }
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            SC_LOG_LIMITED(SC_LOG_ERROR, "out of memory reading pid=%u",
                           c->peer.pid);
        }
        sc_conn_close(c);
        after_read(c, c->frames_in);
        return;
    }
    c->server->stats.bytes_in += (uint64_t)nread;
    uint64_t frames_before = c->frames_in;
    sc_frame_status_t st =
        sc_frame_reader_commit(&c->reader, (size_t)nread, on_frame, c);
    if (st == SC_FRAME_TOO_LARGE) {
        char what[96];
        snprintf(what, sizeof what, "frame of %u bytes exceeds the %zu limit",
                 c->reader.too_large, c->server->cfg.max_frame);
        protocol_error(c, &c->server->stats.oversized_frames,
                       sidecar_v1_ErrorReply_CODE_FRAME_TOO_LARGE, what);
    } else if (st == SC_FRAME_NOMEM) {
        sc_conn_close(c);
    }
    sc_conn_ack(c); /* once per read, however many frames it held */
    after_read(c, frames_before);
}

void sc_conn_resume(sc_server_conn_t *c)
{
    c->budget_wait = false;
    c->server->budget_waiters--;
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0) {
        sc_conn_close(c);
    }
}

void sc_conn_sweep(sc_server_conn_t *c, uint64_t now)
{
    uint64_t timeout = c->server->cfg.frame_timeout_ms;
    if (c->closing || c->frame_started_ms == 0 || timeout == 0 ||
        now - c->frame_started_ms < timeout) {
        return;
    }
    char what[96];
    snprintf(what, sizeof what,
             "a frame not complete %llu ms after its first byte",
             (unsigned long long)timeout);
    protocol_error(c, &c->server->stats.stalled_frames_closed,
                   sidecar_v1_ErrorReply_CODE_FRAME_TIMEOUT, what);
    after_read(c, c->frames_in); /* its bytes go back to the budget now */
}

void sc_conn_start(sc_server_conn_t *c)
{
    sc_frame_reader_init(&c->reader, c->server->cfg.max_frame);
    c->pipe.data = c;
    int rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (rc != 0) {
        sc_conn_close(c);
    }
}
