/* The sidecar's own counters as DogStatsD metrics under "sidecar."
 * (docs/metrics.md, "Self-telemetry"), added to the aggregator before each
 * drain when DD_TRACE_SIDECAR_SELF_METRICS is on. Counters become counts
 * of what happened since the previous drain; current values are gauges. */
#include "daemon_internal.h"
#include "metrics_self.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc_metrics_self {
    sc_daemon_t *d;
    sc_stats_t *prev; /* the counters at the previous drain */
    sc_stats_t *now;
};

sc_metrics_self_t *sc_metrics_self_new(sc_daemon_t *d)
{
    sc_metrics_self_t *s = calloc(1, sizeof *s);
    if (s != NULL) {
        s->d = d;
        s->prev = calloc(1, sizeof *s->prev);
        s->now = calloc(1, sizeof *s->now);
        if (s->prev == NULL || s->now == NULL) {
            sc_metrics_self_free(s);
            return NULL;
        }
    }
    return s;
}

void sc_metrics_self_free(sc_metrics_self_t *s)
{
    if (s != NULL) {
        free(s->prev);
        free(s->now);
        free(s);
    }
}

static void point(sc_metrics_daemon_t *md, int type, const char *name,
                  double value, const char *tags)
{
    sidecar_v1_Metric m;
    memset(&m, 0, sizeof m);
    m.type = (sidecar_v1_Metric_Type)type;
    m.name = sc_view_str(name);
    m.value = value;
    m.tags = sc_view_str(tags);
    sc_metrics_daemon_add(md, &m);
}

/* A count of what `now` grew by since `prev` (nothing when it did not). */
static void delta(sc_metrics_daemon_t *md, const char *name, uint64_t now,
                  uint64_t prev, const char *tags)
{
    if (now > prev) {
        point(md, SC_MTYPE_COUNT, name, (double)(now - prev), tags);
    }
}

/* Every agent's counters of one destination, summed. */
static void dest_total(const sc_stats_t *st, int dest, sc_dest_stats_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t a = 0; a < st->agent_count; a++) {
        const sc_dest_stats_t *d = &st->agents[a].delivery.dest[dest];
        out->delivery.requests += d->delivery.requests;
        out->delivery.retried += d->delivery.retried;
        out->delivered_payloads += d->delivered_payloads;
        out->buffered_bytes += d->buffered_bytes;
        for (int r = 0; r < SC_DROP_REASON_COUNT; r++) {
            out->drops[r].payloads += d->drops[r].payloads;
        }
    }
}

static void server_points(sc_metrics_daemon_t *md, const sc_stats_t *now,
                          const sc_stats_t *prev)
{
    const sc_server_stats_t *n = &now->server, *p = &prev->server;
    char tags[64];
    for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
        snprintf(tags, sizeof tags, "kind:%s",
                 sc_action_kind_name((sc_action_kind_t)k));
        delta(md, "sidecar.actions", n->actions[k], p->actions[k], tags);
        delta(md, "sidecar.actions.invalid", n->invalid[k], p->invalid[k],
              tags);
    }
    delta(md, "sidecar.connections.accepted", n->connections_accepted,
          p->connections_accepted, NULL);
    delta(md, "sidecar.connections.rejected", n->connections_rejected,
          p->connections_rejected, "reason:credentials");
    delta(md, "sidecar.connections.rejected", n->connections_refused,
          p->connections_refused, "reason:full");
    delta(md, "sidecar.connections.rejected", n->refused_per_process,
          p->refused_per_process, "reason:per_process");
    delta(md, "sidecar.connections.rejected", n->refused_per_user,
          p->refused_per_user, "reason:per_user");
    delta(md, "sidecar.protocol_errors",
          n->oversized_frames + n->decode_errors + n->unknown_actions,
          p->oversized_frames + p->decode_errors + p->unknown_actions, NULL);
    point(md, SC_MTYPE_GAUGE, "sidecar.connections.active",
          (double)n->connections_active, NULL);
    if (now->has_rss) {
        point(md, SC_MTYPE_GAUGE, "sidecar.rss_bytes", (double)now->rss_bytes,
              NULL);
    }
}

static void delivery_points(sc_metrics_daemon_t *md, const sc_stats_t *now,
                            const sc_stats_t *prev)
{
    for (int dest = 0; dest < SC_DEST_COUNT; dest++) {
        sc_dest_stats_t n, p;
        dest_total(now, dest, &n);
        dest_total(prev, dest, &p);
        char tags[96];
        snprintf(tags, sizeof tags, "destination:%s",
                 sc_dest_name((sc_dest_t)dest));
        delta(md, "sidecar.delivery.requests", n.delivery.requests,
              p.delivery.requests, tags);
        delta(md, "sidecar.delivery.retries", n.delivery.retried,
              p.delivery.retried, tags);
        delta(md, "sidecar.delivery.delivered", n.delivered_payloads,
              p.delivered_payloads, tags);
        point(md, SC_MTYPE_GAUGE, "sidecar.delivery.buffered_bytes",
              (double)n.buffered_bytes, tags);
        for (int r = 0; r < SC_DROP_REASON_COUNT; r++) {
            snprintf(tags, sizeof tags, "destination:%s,reason:%s",
                     sc_dest_name((sc_dest_t)dest),
                     sc_drop_reason_name((sc_drop_reason_t)r));
            delta(md, "sidecar.delivery.dropped", n.drops[r].payloads,
                  p.drops[r].payloads, tags);
        }
    }
}

static void metrics_points(sc_metrics_daemon_t *md, const sc_stats_t *now,
                           const sc_stats_t *prev)
{
    const sc_metrics_stats_t *n = &now->metrics.agg, *p = &prev->metrics.agg;
    delta(md, "sidecar.metrics.dropped", n->contexts_overflow,
          p->contexts_overflow, "reason:contexts_overflow");
    delta(md, "sidecar.metrics.dropped", n->values_overflow, p->values_overflow,
          "reason:values_overflow");
    const sc_dogstatsd_stats_t *ns = &now->metrics.sent,
                               *ps = &prev->metrics.sent;
    delta(md, "sidecar.metrics.dropped", ns->lines_failed, ps->lines_failed,
          "reason:unsent");
    delta(md, "sidecar.metrics.dropped", ns->lines_too_large,
          ps->lines_too_large, "reason:too_large");
}

void sc_metrics_self_emit(sc_metrics_self_t *s, sc_metrics_daemon_t *md)
{
    sc_daemon_t *d = s->d;
    sc_stats_t *now = s->now;
    memset(now, 0, sizeof *now);
    now->server = *sc_server_stats(d->server);
    now->has_rss = uv_resident_set_memory(&now->rss_bytes) == 0;
    sc_daemon_routes_stats(d, now);
    sc_metrics_daemon_report(md, &now->metrics);
    server_points(md, now, s->prev);
    delivery_points(md, now, s->prev);
    metrics_points(md, now, s->prev);
    s->now = s->prev;
    s->prev = now;
}
