/* The public telemetry calls: check an event against the rules the sidecar
 * applies, then enqueue it as one Telemetry action. */
#include "client.h"
#include "codec.h"
#include "process.h"
#include "sidecar.h"
#include "telemetry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static bool str_ok(const char *s, size_t max, bool required)
{
    return sc_telemetry_string_ok(sc_view_str(s), max, required);
}

/* The metric points of `t` (their event checked by the caller). */
static bool check_metrics(const sc_telemetry_t *t)
{
    bool dist = t->event == SC_TELEMETRY_DISTRIBUTIONS;
    if (t->metrics_len > 0 && !dist &&
        t->event != SC_TELEMETRY_GENERATE_METRICS) {
        return false;
    }
    for (size_t i = 0; i < t->metrics_len; i++) {
        const sc_telemetry_metric_t *m = &t->metrics[i];
        if (!str_ok(m->name, SC_TELEMETRY_STRING_MAX, true) ||
            !str_ok(m->ns, SC_TELEMETRY_STRING_MAX, false) ||
            !str_ok(m->tags, SC_TELEMETRY_TAGS_MAX, false) ||
            !isfinite(m->value) ||
            (dist ? m->type != SC_TELEMETRY_DISTRIBUTION
                  : m->type < SC_TELEMETRY_COUNT ||
                        m->type > SC_TELEMETRY_RATE)) {
            return false;
        }
    }
    return t->metrics_len <= SC_TELEMETRY_MAX_ITEMS;
}

static bool check(const sc_telemetry_t *t)
{
    if (t->event < SC_TELEMETRY_APP_STARTED ||
        t->event > SC_TELEMETRY_DISTRIBUTIONS || !check_metrics(t) ||
        (t->logs_len > 0 && t->event != SC_TELEMETRY_LOGS) ||
        t->logs_len > SC_TELEMETRY_MAX_ITEMS ||
        (t->configuration_len > 0 && t->event != SC_TELEMETRY_APP_STARTED) ||
        (t->dependencies_len > 0 &&
         t->event != SC_TELEMETRY_DEPENDENCIES_LOADED) ||
        (t->integrations_len > 0 &&
         t->event != SC_TELEMETRY_INTEGRATIONS_CHANGE) ||
        t->configuration_len > SC_TELEMETRY_MAX_ITEMS ||
        t->dependencies_len > SC_TELEMETRY_MAX_ITEMS ||
        t->integrations_len > SC_TELEMETRY_MAX_ITEMS) {
        return false;
    }
    for (size_t i = 0; i < t->configuration_len; i++) {
        const sc_telemetry_config_t *c = &t->configuration[i];
        if (!str_ok(c->name, SC_TELEMETRY_STRING_MAX, true) ||
            !str_ok(c->value, SC_TELEMETRY_VALUE_MAX, false) ||
            !sc_telemetry_origin_ok(sc_view_str(c->origin))) {
            return false;
        }
    }
    for (size_t i = 0; i < t->dependencies_len; i++) {
        const sc_telemetry_dependency_t *d = &t->dependencies[i];
        if (!str_ok(d->name, SC_TELEMETRY_STRING_MAX, true) ||
            !str_ok(d->version, SC_TELEMETRY_STRING_MAX, false)) {
            return false;
        }
    }
    for (size_t i = 0; i < t->integrations_len; i++) {
        const sc_telemetry_integration_t *n = &t->integrations[i];
        if (!str_ok(n->name, SC_TELEMETRY_STRING_MAX, true) ||
            !str_ok(n->version, SC_TELEMETRY_STRING_MAX, false)) {
            return false;
        }
    }
    for (size_t i = 0; i < t->logs_len; i++) {
        const sc_telemetry_log_t *g = &t->logs[i];
        if (!sc_telemetry_text_ok(sc_view_str(g->message),
                                  SC_TELEMETRY_TEXT_MAX, true) ||
            !sc_telemetry_text_ok(sc_view_str(g->stack_trace),
                                  SC_TELEMETRY_TEXT_MAX, false) ||
            !str_ok(g->tags, SC_TELEMETRY_TAGS_MAX, false) ||
            g->level < SC_TELEMETRY_LOG_ERROR ||
            g->level > SC_TELEMETRY_LOG_DEBUG) {
            return false;
        }
    }
    return true;
}

/* The wire lists of `t` (arrays freed by the caller). */
static bool to_wire(const sc_telemetry_t *t, sidecar_v1_Telemetry *w,
                    void **owned)
{
    size_t n = t->configuration_len + t->dependencies_len +
               t->integrations_len + t->logs_len + t->metrics_len;
    /* One array serves the one list an event takes. */
    size_t size = sizeof(sidecar_v1_TelemetryConfiguration);
    if (sizeof(sidecar_v1_TelemetryDependency) > size) {
        size = sizeof(sidecar_v1_TelemetryDependency);
    }
    if (sizeof(sidecar_v1_TelemetryIntegration) > size) {
        size = sizeof(sidecar_v1_TelemetryIntegration);
    }
    if (sizeof(sidecar_v1_TelemetryLog) > size) {
        size = sizeof(sidecar_v1_TelemetryLog);
    }
    if (sizeof(sidecar_v1_TelemetryMetric) > size) {
        size = sizeof(sidecar_v1_TelemetryMetric);
    }
    *owned = calloc(n > 0 ? n : 1, size);
    if (*owned == NULL) {
        return false;
    }
    memset(w, 0, sizeof *w);
    w->event = (sidecar_v1_Telemetry_Event)t->event;
    sidecar_v1_TelemetryConfiguration *c = *owned;
    for (size_t i = 0; i < t->configuration_len; i++) {
        c[i].name = sc_view_str(t->configuration[i].name);
        c[i].value = sc_view_str(t->configuration[i].value);
        c[i].origin = sc_view_str(t->configuration[i].origin);
    }
    w->configuration = SC_LIST_OF(c, t->configuration_len);
    sidecar_v1_TelemetryDependency *d = *owned;
    for (size_t i = 0; i < t->dependencies_len; i++) {
        d[i].name = sc_view_str(t->dependencies[i].name);
        d[i].version = sc_view_str(t->dependencies[i].version);
    }
    w->dependencies = SC_LIST_OF(d, t->dependencies_len);
    sidecar_v1_TelemetryIntegration *g = *owned;
    for (size_t i = 0; i < t->integrations_len; i++) {
        const sc_telemetry_integration_t *in = &t->integrations[i];
        g[i].name = sc_view_str(in->name);
        g[i].version = sc_view_str(in->version);
        g[i].enabled = in->enabled;
        g[i].has_compatible = in->compatible >= 0;
        g[i].compatible = in->compatible > 0;
        g[i].has_auto_enabled = in->auto_enabled >= 0;
        g[i].auto_enabled = in->auto_enabled > 0;
    }
    w->integrations = SC_LIST_OF(g, t->integrations_len);
    sidecar_v1_TelemetryLog *l = *owned;
    for (size_t i = 0; i < t->logs_len; i++) {
        l[i].message = sc_view_str(t->logs[i].message);
        l[i].level = (sidecar_v1_TelemetryLog_Level)t->logs[i].level;
        l[i].stack_trace = sc_view_str(t->logs[i].stack_trace);
        l[i].tags = sc_view_str(t->logs[i].tags);
    }
    w->logs = SC_LIST_OF(l, t->logs_len);
    sidecar_v1_TelemetryMetric *m = *owned;
    for (size_t i = 0; i < t->metrics_len; i++) {
        const sc_telemetry_metric_t *p = &t->metrics[i];
        m[i].namespace = sc_view_str(p->ns);
        m[i].name = sc_view_str(p->name);
        m[i].tags = sc_view_str(p->tags);
        m[i].value = p->value;
        m[i].common = p->common;
        m[i].type = (sidecar_v1_TelemetryMetric_Type)p->type;
    }
    w->metrics = SC_LIST_OF(m, t->metrics_len);
    return true;
}

int sc_client_send_telemetry(sc_client_t *c, const sc_telemetry_t *t)
{
    if (c == NULL || t == NULL || !check(t)) {
        return UV_EINVAL;
    }
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    void *owned = NULL;
    if (!to_wire(t, &env.action.telemetry, &owned)) {
        return UV_ENOMEM;
    }
    env.which_action = sidecar_v1_Envelope_telemetry_tag;
    int rc = sc_client_enqueue(c, SC_ACTION_TELEMETRY, &env);
    free(owned);
    return rc;
}

int sc_send_telemetry(const sc_telemetry_t *t)
{
    sc_client_t *client = sc_process_client();
    if (client == NULL) {
        return t == NULL ? UV_EINVAL : SC_EDROPPED;
    }
    int rc = sc_client_send_telemetry(client, t);
    if (rc != UV_EINVAL && rc != UV_ENOMEM) {
        sc_process_after_send(client);
    }
    return rc;
}
