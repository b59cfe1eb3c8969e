/* From a frame to its action: decode, drop what an acknowledging session
 * sent again, run the handler of each kind, and count. Also the connection's
 * identity (Hello and the identity string rule) and the DropReport totals. */
#include "server_internal.h"

#include "codec.h"
#include "envelope_merge.h"
#include "json.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* ---- identity strings --------------------------------------------------- */

void sc_server__identity_free(sc_client_identity_t *id)
{
    free(id->language);
    free(id->language_version);
    free(id->tracer_version);
    free(id->service);
    free(id->env);
    free(id->version);
    memset(id, 0, sizeof *id);
}

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
        sc_server__identity_free(&id);
        return "out of memory storing the Hello";
    }
    sc_server__identity_free(&c->identity);
    c->identity = id;
    c->has_identity = true;
    if (h->session_id != 0 && h->session_id != c->session_id) {
        c->session_id = h->session_id;
        c->session = sc_sessions_get(c->server->sessions, h->session_id);
    }
    return NULL;
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
        sc_server__protocol_error(c, &s->stats.unknown_actions,
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
        sc_server__send_error(
            c, env->seq, sidecar_v1_ErrorReply_CODE_INVALID_ACTION, invalid);
        return true;
    }
    s->stats.actions[kind]++;
    /* Requests are answered after the counters include them. */
    switch (kind) {
    case SC_ACTION_FLUSH:
        sc_server__start_flush(c, &barrier, &env->action.flush);
        break;
    case SC_ACTION_PING:
        sc_server__reply_ping(c, env->seq, &env->action.ping);
        break;
    case SC_ACTION_STATS:
        sc_server__reply_stats(c, env->seq);
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

bool sc_server__on_frame(void *ctx, const uint8_t *body, size_t len)
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
        sc_server__protocol_error(c, &s->stats.decode_errors,
                                  sidecar_v1_ErrorReply_CODE_DECODE_FAILED,
                                  err != NULL ? err : "decode failed");
    } else {
        ok = dispatch(c, &env);
    }
    sc_buf_free(&merged);
    return ok;
}
