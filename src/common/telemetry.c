/* The telemetry hub (docs/telemetry.md): its lifetime, the applications
 * (one per identity and agent) and the connections that keep them alive,
 * the dispatch of each Telemetry action, heartbeats, closing and stats.
 * Checking an action is telemetry_check.c's, what an application has due
 * telemetry_events.c's, the bodies telemetry_send.c's;
 * telemetry_internal.h holds what they share. */
#include "telemetry_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

sc_tel_hub_t *sc_tel_hub_new(const sc_tel_config_t *cfg)
{
    sc_tel_hub_t *h = calloc(1, sizeof *h);
    if (h != NULL) {
        h->cfg = *cfg;
    }
    return h;
}

static void app_free(tel_app_t *a)
{
    sc_telemetry__logs_clear(a);
    sc_tel_metrics_free(&a->metrics);
    free(a->service);
    free(a->env);
    free(a->version);
    free(a->language);
    free(a->language_version);
    free(a->tracer_version);
    sc_buf_free(&a->started);
    sc_buf_free(&a->deps);
    for (size_t i = 0; i < a->dep_slots; i++) {
        free(a->dep_set[i]);
    }
    free(a->dep_set);
    for (size_t i = 0; i < a->integr_count; i++) {
        free(a->integr[i].name);
        free(a->integr[i].cur.version);
        free(a->integr[i].sent.version);
    }
    free(a->integr);
    free(a);
}

void sc_tel_hub_free(sc_tel_hub_t *h)
{
    if (h != NULL) {
        for (size_t i = 0; i < h->app_count; i++) {
            app_free(h->apps[i]);
        }
        free(h->conns);
        free(h);
    }
}
/* ---- applications ------------------------------------------------------- */

static bool same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The application of `id` at the agent `route`: the same identity reported
 * by sessions routed to two agents is two applications, so that nothing of
 * one agent's sessions reaches the other (docs/delivery.md, "Routing"). */
static tel_app_t *find_app(sc_tel_hub_t *h, const sc_client_identity_t *id,
                           const void *route)
{
    for (size_t i = 0; i < h->app_count; i++) {
        tel_app_t *a = h->apps[i];
        if (a->route == route && same(a->service, id->service) &&
            same(a->env, id->env) && same(a->version, id->version) &&
            same(a->language, id->language) &&
            same(a->language_version, id->language_version) &&
            same(a->tracer_version, id->tracer_version)) {
            return a;
        }
    }
    return NULL;
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d == NULL) {
        *failed = true;
        return NULL;
    }
    memcpy(d, s, n);
    return d;
}

/* A version 4 UUID (RFC 4122). */
static void new_runtime_id(char out[37])
{
    uint8_t b[16];
    if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
        uint64_t t = uv_hrtime();
        for (size_t i = 0; i < sizeof b; i++) {
            b[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
        }
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
             "%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

static tel_app_t *new_app(sc_tel_hub_t *h, const sc_client_identity_t *id,
                          void *route)
{
    if (h->app_count == SC_TELEMETRY_MAX_APPS) {
        h->stats.applications_overflow++;
        return NULL;
    }
    tel_app_t *a = calloc(1, sizeof *a);
    bool failed = a == NULL;
    if (!failed) {
        a->service = dup_or_null(id->service, &failed);
        a->env = dup_or_null(id->env, &failed);
        a->version = dup_or_null(id->version, &failed);
        a->language = dup_or_null(id->language, &failed);
        a->language_version = dup_or_null(id->language_version, &failed);
        a->tracer_version = dup_or_null(id->tracer_version, &failed);
    }
    if (failed) {
        if (a != NULL) {
            app_free(a);
        }
        h->stats.no_memory++;
        return NULL;
    }
    new_runtime_id(a->runtime_id);
    a->route = route;
    h->apps[h->app_count++] = a;
    return a;
}

static void attach(sc_tel_hub_t *h, tel_app_t *a, const void *conn)
{
    for (size_t i = 0; i < h->conn_count; i++) {
        if (h->conns[i].conn == conn && h->conns[i].app == a) {
            return;
        }
    }
    if (h->conn_count == h->conn_cap) {
        size_t cap = h->conn_cap > 0 ? h->conn_cap * 2 : 16;
        tel_conn_t *n = realloc(h->conns, cap * sizeof *n);
        if (n == NULL) {
            h->stats.no_memory++;
            return; /* the application then closes after its delay */
        }
        h->conns = n;
        h->conn_cap = cap;
    }
    h->conns[h->conn_count++] = (tel_conn_t){conn, a};
    a->live++;
}

/* Removes the (conn, app) entries of `conn` (of `only` when not NULL). */
static void detach(sc_tel_hub_t *h, const void *conn, const tel_app_t *only,
                   uint64_t now)
{
    for (size_t i = 0; i < h->conn_count;) {
        tel_conn_t *e = &h->conns[i];
        if (e->conn != conn || (only != NULL && e->app != only)) {
            i++;
            continue;
        }
        if (--e->app->live == 0) {
            e->app->gone_at = now;
        }
        *e = h->conns[--h->conn_count];
    }
}

void sc_tel_hub_conn_gone(sc_tel_hub_t *h, const void *conn, uint64_t now_ms)
{
    detach(h, conn, NULL, now_ms);
}

const char *sc_tel_hub_event(sc_tel_hub_t *h, const sc_client_identity_t *id,
                             const void *conn, void *route,
                             const sidecar_v1_Telemetry *m, uint64_t now_ms)
{
    const char *why = sc_telemetry__check(m);
    if (why != NULL) {
        return why;
    }
    h->stats.events++;
    if (!h->cfg.enabled) {
        h->stats.events_disabled++;
        return NULL;
    }
    tel_app_t *a = find_app(h, id, route);
    bool created = false;
    if (a == NULL) {
        if (m->event == sidecar_v1_Telemetry_EVENT_APP_CLOSING) {
            return NULL; /* nothing to close */
        }
        if ((a = new_app(h, id, route)) == NULL) {
            return NULL; /* counted */
        }
        created = true;
        /* app-started comes first, with the configuration of the event
         * that made the application (none unless it is an app-started). */
        static const sc_list_t none;
        sc_telemetry__queue_started(
            a, m->event == sidecar_v1_Telemetry_EVENT_APP_STARTED
                   ? &m->configuration
                   : &none);
        h->stats.applications_started++;
    }
    switch (m->event) {
    case sidecar_v1_Telemetry_EVENT_APP_CLOSING:
        detach(h, conn, a, now_ms);
        return NULL;
    case sidecar_v1_Telemetry_EVENT_APP_STARTED:
        if (!created) {
            h->stats.app_started_joined++;
        }
        break;
    case sidecar_v1_Telemetry_EVENT_DEPENDENCIES_LOADED:
        sc_telemetry__queue_dependencies(h, a, &m->dependencies);
        break;
    case sidecar_v1_Telemetry_EVENT_LOGS:
        sc_telemetry__queue_logs(h, a, &m->logs);
        break;
    case sidecar_v1_Telemetry_EVENT_GENERATE_METRICS:
    case sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS:
        h->stats.metric_points += m->metrics.count;
        sc_tel_metrics_add(&a->metrics, &m->metrics,
                           m->event == sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS,
                           &h->stats.metrics_overflow, &h->stats.no_memory);
        break;
    default:
        sc_telemetry__queue_integrations(h, a, &m->integrations);
        break;
    }
    attach(h, a, conn);
    return NULL;
}

void sc_tel_hub_heartbeat(sc_tel_hub_t *h)
{
    for (size_t i = 0; i < h->app_count; i++) {
        if (h->apps[i]->live > 0) {
            h->apps[i]->heartbeat = true;
        }
    }
}

uint64_t sc_tel_hub_process(sc_tel_hub_t *h, uint64_t now_ms, bool closing_all)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < h->app_count;) {
        tel_app_t *a = h->apps[i];
        uint64_t due_at = a->gone_at + h->cfg.closing_delay_ms;
        if (closing_all || (a->live == 0 && now_ms >= due_at)) {
            a->closing = true;
        } else if (a->live == 0 && due_at - now_ms < next) {
            next = due_at - now_ms;
        }
        sc_telemetry__send_due(h, a);
        if (!a->closing) {
            i++;
            continue;
        }
        /* Closed: a later process of the application starts it anew. */
        for (size_t k = 0; k < h->conn_count;) {
            if (h->conns[k].app == a) {
                h->conns[k] = h->conns[--h->conn_count];
            } else {
                k++;
            }
        }
        app_free(a);
        h->apps[i] = h->apps[--h->app_count];
    }
    return next;
}

void sc_tel_hub_stats(const sc_tel_hub_t *h, sc_tel_stats_t *out)
{
    *out = h->stats;
    out->applications = h->app_count;
}
