#include "stats.h"

#include <string.h>

#include "json.h"
#include "log.h"

static void uint_member(sc_json_t *j, const char *key, uint64_t v)
{
    sc_json_key_str(j, key);
    sc_json_uint64(j, v);
}

/* {"name": value, ...} from parallel arrays. */
static void uint_object(sc_json_t *j, const char *key, const char *const *names,
                        const uint64_t *values, size_t n)
{
    sc_json_key_str(j, key);
    sc_json_object_begin(j);
    for (size_t i = 0; i < n; i++) {
        uint_member(j, names[i], values[i]);
    }
    sc_json_object_end(j);
}

/* {"payloads":..,"<items>":..,"bytes":..}: `items` names what the
 * destination's payloads hold (traces, events, exposures). */
static void counters(sc_json_t *j, const char *key, const char *items,
                     uint64_t payloads, uint64_t count, uint64_t bytes)
{
    const char *const names[] = {"payloads", items, "bytes"};
    const uint64_t values[] = {payloads, count, bytes};
    uint_object(j, key, names, values, 3);
}

/* "key":"2026-01-31T23:59:59.123Z" when `epoch_ms` is set. */
static void time_member(sc_json_t *j, const char *key, int64_t epoch_ms)
{
    if (epoch_ms > 0) {
        char when[32];
        sc_log_format_time(epoch_ms, when, sizeof when);
        sc_json_key_str(j, key);
        sc_json_string(j, when, strlen(when));
    }
}

static void endpoint(sc_json_t *j, const char *key,
                     const sc_endpoint_stats_t *e)
{
    static const char *const names[] = {"requests", "ok", "failed", "retried",
                                        "bytes_sent"};
    const uint64_t values[] = {e->requests, e->ok, e->failed, e->retried,
                               e->bytes_sent};
    sc_json_key_str(j, key);
    sc_json_object_begin(j);
    for (size_t i = 0; i < 5; i++) {
        uint_member(j, names[i], values[i]);
    }
    /* Absent until it happens (never null). */
    time_member(j, "last_ok", e->last_ok_ms);
    if (e->last_error_ms > 0) {
        sc_json_key_str(j, "last_error");
        sc_json_object_begin(j);
        sc_json_key_str(j, "message");
        sc_json_string(j, e->last_error, strlen(e->last_error));
        time_member(j, "time", e->last_error_ms);
        sc_json_object_end(j);
    }
    sc_json_object_end(j);
}

static void destination(sc_json_t *j, sc_dest_t dest, const sc_dest_stats_t *s,
                        uint64_t cap_bytes)
{
    const char *items = sc_dest_item_name(dest);
    sc_json_key_str(j, sc_dest_name(dest));
    sc_json_object_begin(j);
    counters(j, "submitted", items, s->submitted_payloads, s->submitted_traces,
             s->submitted_bytes);
    counters(j, "delivered", items, s->delivered_payloads, s->delivered_traces,
             s->delivery.bytes_sent);
    counters(j, "buffered", items, s->buffered_payloads, s->buffered_traces,
             s->buffered_bytes);
    uint_member(j, "buffered_bytes_max", s->buffered_bytes_max);
    uint_member(j, "cap_bytes", cap_bytes);
    endpoint(j, "delivery", &s->delivery);
    sc_json_key_str(j, "drops");
    sc_json_object_begin(j);
    for (int r = 0; r < SC_DROP_REASON_COUNT; r++) {
        const sc_drop_stats_t *d = &s->drops[r];
        counters(j, sc_drop_reason_name((sc_drop_reason_t)r), items,
                 d->payloads, d->traces, d->bytes);
    }
    sc_json_object_end(j);
    sc_json_object_end(j);
}

/* The members of one delivery object (an agent's, or the totals). */
static void delivery_members(sc_json_t *j, const sc_flusher_stats_t *st,
                             const uint64_t cap_bytes[SC_DEST_COUNT],
                             const sc_stats_agent_t *agent)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        destination(j, (sc_dest_t)i, &st->dest[i], cap_bytes[i]);
    }
    endpoint(j, "info", &st->info);
    sc_json_key_str(j, "agent");
    sc_json_string(j, agent->agent, strlen(agent->agent));
    sc_json_key_str(j, "agent_info");
    sc_json_bool(j, agent->agent_info);
    if (agent->agent_version[0] != '\0') {
        sc_json_key_str(j, "agent_version");
        sc_json_string(j, agent->agent_version, strlen(agent->agent_version));
    }
}

/* Totals: counters add up; the last outcomes are the latest of any agent. */
static void add_endpoint(sc_endpoint_stats_t *to, const sc_endpoint_stats_t *e)
{
    to->requests += e->requests;
    to->ok += e->ok;
    to->failed += e->failed;
    to->retried += e->retried;
    to->bytes_sent += e->bytes_sent;
    if (e->last_ok_ms > to->last_ok_ms) {
        to->last_ok_ms = e->last_ok_ms;
    }
    if (e->last_error_ms > to->last_error_ms) {
        to->last_error_ms = e->last_error_ms;
        memcpy(to->last_error, e->last_error, sizeof to->last_error);
    }
}

/* Sums one agent's counters into the totals. */
static void add_agent(sc_flusher_stats_t *to, const sc_flusher_stats_t *from)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        sc_dest_stats_t *t = &to->dest[i];
        const sc_dest_stats_t *f = &from->dest[i];
        add_endpoint(&t->delivery, &f->delivery);
        t->submitted_payloads += f->submitted_payloads;
        t->submitted_traces += f->submitted_traces;
        t->submitted_bytes += f->submitted_bytes;
        t->delivered_payloads += f->delivered_payloads;
        t->delivered_traces += f->delivered_traces;
        t->buffered_payloads += f->buffered_payloads;
        t->buffered_traces += f->buffered_traces;
        t->buffered_bytes += f->buffered_bytes;
        t->buffered_bytes_max += f->buffered_bytes_max;
        for (int r = 0; r < SC_DROP_REASON_COUNT; r++) {
            t->drops[r].payloads += f->drops[r].payloads;
            t->drops[r].traces += f->drops[r].traces;
            t->drops[r].bytes += f->drops[r].bytes;
        }
    }
    add_endpoint(&to->info, &from->info);
}

bool sc_stats_agent_json(const sc_stats_agent_t *a, sc_buf_t *out)
{
    uint64_t caps[SC_DEST_COUNT];
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        caps[i] = a->cap_bytes[i];
    }
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    delivery_members(&j, &a->delivery, caps, a);
    sc_json_object_end(&j);
    return sc_json_ok(&j);
}

static void delivery(sc_json_t *j, const sc_stats_t *s)
{
    sc_flusher_stats_t total;
    uint64_t caps[SC_DEST_COUNT] = {0};
    memset(&total, 0, sizeof total);
    for (size_t a = 0; a < s->agent_count; a++) {
        add_agent(&total, &s->agents[a].delivery);
        for (int i = 0; i < SC_DEST_COUNT; i++) {
            caps[i] += s->agents[a].cap_bytes[i];
        }
    }
    const sc_stats_agent_t *def = &s->agents[0];
    sc_json_key_str(j, "delivery");
    sc_json_object_begin(j);
    delivery_members(j, &total, caps, def);
    sc_json_object_end(j);

    sc_json_key_str(j, "agents");
    sc_json_array_begin(j);
    for (size_t a = 0; a < s->agent_count; a++) {
        const sc_stats_agent_t *ag = &s->agents[a];
        uint64_t agent_caps[SC_DEST_COUNT];
        for (int i = 0; i < SC_DEST_COUNT; i++) {
            agent_caps[i] = ag->cap_bytes[i];
        }
        sc_json_object_begin(j);
        delivery_members(j, &ag->delivery, agent_caps, ag);
        sc_json_key_str(j, "default");
        sc_json_bool(j, ag->is_default);
        uint_member(j, "sessions", ag->sessions);
        uint_member(j, "flush_interval_ms", ag->flush_interval_ms);
        uint_member(j, "request_timeout_ms", ag->request_timeout_ms);
        sc_json_object_end(j);
    }
    sc_json_array_end(j);

    sc_json_key_str(j, "session_config");
    sc_json_object_begin(j);
    uint_member(j, "applied", s->session_configs_applied);
    uint_member(j, "refused_too_many_agents", s->session_configs_over_agents);
    uint_member(j, "flush_interval_ms", def->flush_interval_ms);
    uint_member(j, "request_timeout_ms", def->request_timeout_ms);
    uint_member(j, "trace_buffer_cap_bytes", def->cap_bytes[SC_DEST_TRACES]);
    sc_json_object_end(j);
}

static void flags_and_exposures(sc_json_t *j, const sc_stats_t *s)
{
    const sc_stats_flags_t *f = &s->flags;
    static const char *const flag_names[] = {
        "contexts",         "evaluations",
        "full_buckets",     "degraded_buckets",
        "dropped",          "rejected",
        "batches_rejected", "batches_without_context",
        "batches_disabled", "evaluations_disabled"};
    const uint64_t flag_values[] = {
        f->contexts,         f->evaluations,
        f->full_buckets,     f->degraded_buckets,
        f->dropped,          f->rejected,
        f->batches_rejected, f->batches_without_context,
        f->batches_disabled, f->evaluations_disabled};
    uint_object(j, "flag_evaluations", flag_names, flag_values, 10);
    static const char *const exp_names[] = {"sent", "batches_rejected",
                                            "attributes_skipped"};
    const uint64_t exp_values[] = {s->exposures.sent,
                                   s->exposures.batches_rejected,
                                   s->exposures.attributes_skipped};
    uint_object(j, "exposures", exp_names, exp_values, 3);
}

/* DogStatsD metrics (docs/metrics.md): where they go, what was
 * aggregated, sent, and dropped by reason. */
static void metrics(sc_json_t *j, const sc_metrics_report_t *m)
{
    sc_json_key_str(j, "metrics");
    sc_json_object_begin(j);
    sc_json_key_str(j, "destination");
    sc_json_string(j, m->destination, strlen(m->destination));
    static const char *const names[] = {"flush_interval_ms",
                                        "max_contexts",
                                        "max_values",
                                        "datagram_bytes",
                                        "points",
                                        "contexts",
                                        "values",
                                        "flushes",
                                        "lines_sent",
                                        "datagrams_sent",
                                        "bytes_sent"};
    const uint64_t values[] = {
        m->flush_interval_ms,   m->max_contexts,   m->max_values,
        m->datagram_bytes,      m->agg.points,     m->agg.contexts,
        m->agg.values,          m->flushes,        m->sent.lines_sent,
        m->sent.datagrams_sent, m->sent.bytes_sent};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint_member(j, names[i], values[i]);
    }
    static const char *const drop_names[] = {
        "contexts_overflow", "values_overflow", "no_memory",
        "lines_too_large",   "lines_unsent",    "datagrams_unsent"};
    const uint64_t drops[] = {
        m->agg.contexts_overflow, m->agg.values_overflow,
        m->agg.no_memory,         m->sent.lines_too_large,
        m->sent.lines_failed,     m->sent.datagrams_failed};
    uint_object(j, "dropped", drop_names, drops, 6);
    sc_json_key_str(j, "last_error");
    const char *err =
        m->sent.last_error != 0 ? uv_err_name(m->sent.last_error) : "";
    sc_json_string(j, err, strlen(err));
    sc_json_object_end(j);
}

/* Instrumentation telemetry (docs/telemetry.md): settings, applications,
 * events reported and what deduplication kept back. Delivery and drops of
 * the bodies are the "telemetry" destination of "delivery". */
static void telemetry(sc_json_t *j, const sc_telemetry_report_t *t)
{
    sc_json_key_str(j, "telemetry");
    sc_json_object_begin(j);
    sc_json_key_str(j, "enabled");
    sc_json_bool(j, t->settings.enabled);
    const sc_tel_stats_t *h = &t->hub;
    static const char *const names[] = {"heartbeat_interval_ms",
                                        "closing_delay_ms",
                                        "applications",
                                        "events",
                                        "events_disabled",
                                        "applications_started",
                                        "app_started_joined",
                                        "dependencies_sent",
                                        "dependencies_known",
                                        "integrations_sent",
                                        "integrations_unchanged",
                                        "heartbeats",
                                        "app_closing",
                                        "requests",
                                        "message_batches",
                                        "applications_overflow",
                                        "dependencies_overflow",
                                        "logs",
                                        "logs_sent",
                                        "logs_overflow",
                                        "metric_points",
                                        "metric_series_sent",
                                        "metrics_overflow",
                                        "no_memory"};
    const uint64_t values[] = {t->settings.heartbeat_ms,
                               t->settings.closing_delay_ms,
                               h->applications,
                               h->events,
                               h->events_disabled,
                               h->applications_started,
                               h->app_started_joined,
                               h->dependencies_sent,
                               h->dependencies_known,
                               h->integrations_sent,
                               h->integrations_unchanged,
                               h->heartbeats,
                               h->app_closing,
                               h->requests,
                               h->message_batches,
                               h->applications_overflow,
                               h->dependencies_overflow,
                               h->logs,
                               h->logs_sent,
                               h->logs_overflow,
                               h->metric_points,
                               h->metric_series_sent,
                               h->metrics_overflow,
                               h->no_memory};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint_member(j, names[i], values[i]);
    }
    sc_json_object_end(j);
}

static void server(sc_json_t *j, const sc_stats_t *s)
{
    const sc_server_stats_t *st = &s->server;
    uint_member(j, "pid", s->pid);
    sc_json_key_str(j, "version");
    sc_json_string(j, s->version, strlen(s->version));
    sc_json_key_str(j, "mode");
    sc_json_string(j, s->mode, strlen(s->mode));
    uint_member(j, "uptime_ms", s->uptime_ms);
    static const char *const conn_names[] = {"active",
                                             "accepted",
                                             "rejected",
                                             "refused",
                                             "refused_per_process",
                                             "refused_per_user",
                                             "stuck_readers_closed"};
    const uint64_t conn_values[] = {
        st->connections_active,   st->connections_accepted,
        st->connections_rejected, st->connections_refused,
        st->refused_per_process,  st->refused_per_user,
        st->stuck_readers_closed};
    uint_object(j, "connections", conn_names, conn_values, 7);
    static const char *const reassembly_names[] = {"held_bytes", "peak_bytes",
                                                   "budget_bytes", "waits",
                                                   "stalled_frames_closed"};
    const uint64_t reassembly_values[] = {
        st->reassembly_bytes, st->reassembly_peak, s->reassembly_budget,
        st->reassembly_waits, st->stalled_frames_closed};
    uint_object(j, "reassembly", reassembly_names, reassembly_values, 5);
    static const char *const ack_names[] = {"acks_sent", "duplicates_dropped",
                                            "sessions_forgotten"};
    const uint64_t ack_values[] = {st->acks_sent, st->duplicates_dropped,
                                   st->sessions_forgotten};
    uint_object(j, "acknowledgements", ack_names, ack_values, 3);
    static const char *const drop_names[] = {
        "trace_payloads", "traces", "flag_evaluation_batches",
        "exposure_batches", "other_actions"};
    const uint64_t drop_values[] = {
        st->client_drops.trace_payloads, st->client_drops.traces,
        st->client_drops.flag_evaluation_batches,
        st->client_drops.exposure_batches, st->client_drops.other_actions};
    uint_object(j, "client_drops", drop_names, drop_values, 5);
    uint_member(j, "frames_in", st->frames_in);
    uint_member(j, "bytes_in", st->bytes_in);
    uint_member(j, "oversized_frames", st->oversized_frames);
    uint_member(j, "decode_errors", st->decode_errors);
    uint_member(j, "unknown_actions", st->unknown_actions);
    uint_member(j, "invalid_actions", st->invalid_actions);
    const char *kinds[SC_ACTION_KIND_COUNT];
    for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
        kinds[k] = sc_action_kind_name((sc_action_kind_t)k);
    }
    uint_object(j, "actions", kinds, st->actions, SC_ACTION_KIND_COUNT);
    /* Invalid actions by kind (refused with CODE_INVALID_ACTION). */
    uint_object(j, "invalid", kinds, st->invalid, SC_ACTION_KIND_COUNT);
    if (s->has_rss) {
        uint_member(j, "rss_bytes", s->rss_bytes);
    }
}

bool sc_stats_json(const sc_stats_t *s, sc_buf_t *out)
{
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    server(&j, s);
    if (s->has_delivery && s->agent_count > 0) {
        delivery(&j, s);
        flags_and_exposures(&j, s);
    }
    if (s->predecessor.pid != 0) {
        /* The sidecar that listened here before; what it held when it was
         * killed is lost, and counted here. */
        sc_json_key_str(&j, "predecessor");
        sc_json_object_begin(&j);
        uint_member(&j, "pid", s->predecessor.pid);
        sc_json_key_str(&j, "killed");
        sc_json_bool(&j, s->predecessor.killed);
        const sc_ledger_loss_t *l = &s->predecessor.lost;
        uint_member(&j, "lost_payloads", l->payloads);
        uint_member(&j, "lost_traces", l->traces);
        uint_member(&j, "unconfirmed_payloads", l->unconfirmed_payloads);
        uint_member(&j, "unconfirmed_traces", l->unconfirmed_traces);
        sc_json_object_end(&j);
    }
    if (s->has_metrics) {
        metrics(&j, &s->metrics);
    }
    if (s->has_telemetry) {
        telemetry(&j, &s->telemetry);
    }
    sc_json_object_end(&j);
    return sc_json_ok(&j);
}
