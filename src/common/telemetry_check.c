/* Whether an incoming Telemetry action is valid (docs/telemetry.md): the
 * event, which lists it may carry and how long, and the strings of every
 * item; the metrics' rules are telemetry_metrics.c's. An invalid action is
 * refused whole, before the hub acts on any of it. */
#include "telemetry_internal.h"

#include "codec.h"

static const char *check_configuration(const sc_list_t *l)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryConfiguration c;
    sc_list_iter_init(&it, l);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryConfiguration, &c) > 0) {
        if (!sc_telemetry_string_ok(c.name, SC_TELEMETRY_STRING_MAX, true) ||
            !sc_telemetry_string_ok(c.value, SC_TELEMETRY_VALUE_MAX, false)) {
            return "Telemetry.configuration: a name is empty, or a name or "
                   "value is too long, not UTF-8 or holds a control "
                   "character";
        }
        if (!sc_telemetry_origin_ok(c.origin)) {
            return "Telemetry.configuration: an origin is not env_var, code, "
                   "dd_config, remote_config, app.config, default or "
                   "unknown";
        }
    }
    return NULL;
}

static bool name_version_ok(sc_view_t name, sc_view_t version)
{
    return sc_telemetry_string_ok(name, SC_TELEMETRY_STRING_MAX, true) &&
           sc_telemetry_string_ok(version, SC_TELEMETRY_STRING_MAX, false);
}

static const char *check_dependencies(const sc_list_t *l)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryDependency d;
    sc_list_iter_init(&it, l);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryDependency, &d) > 0) {
        if (!name_version_ok(d.name, d.version)) {
            return "Telemetry.dependencies: a name is empty, or a name or "
                   "version is over 256 bytes, not UTF-8 or holds a control "
                   "character";
        }
    }
    return NULL;
}

static const char *check_integrations(const sc_list_t *l)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryIntegration i;
    sc_list_iter_init(&it, l);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryIntegration, &i) > 0) {
        if (!name_version_ok(i.name, i.version)) {
            return "Telemetry.integrations: a name is empty, or a name or "
                   "version is over 256 bytes, not UTF-8 or holds a control "
                   "character";
        }
    }
    return NULL;
}

static const char *check_logs(const sc_list_t *l)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryLog g;
    sc_list_iter_init(&it, l);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryLog, &g) > 0) {
        if (!sc_telemetry_text_ok(g.message, SC_TELEMETRY_TEXT_MAX, true) ||
            !sc_telemetry_text_ok(g.stack_trace, SC_TELEMETRY_TEXT_MAX,
                                  false) ||
            !sc_telemetry_string_ok(g.tags, SC_TELEMETRY_TAGS_MAX, false)) {
            return "Telemetry.logs: a message is empty, or a message or stack "
                   "trace is over 8192 bytes, tags over 1024, not UTF-8 or "
                   "with a control character";
        }
        if (g.level < sidecar_v1_TelemetryLog_LEVEL_ERROR ||
            g.level > sidecar_v1_TelemetryLog_LEVEL_DEBUG) {
            return "Telemetry.logs: a level is not ERROR, WARN or DEBUG";
        }
    }
    return NULL;
}

const char *sc_telemetry__check(const sidecar_v1_Telemetry *m)
{
    if (m->event < sidecar_v1_Telemetry_EVENT_APP_STARTED ||
        m->event > sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS) {
        return "Telemetry.event is not APP_STARTED, DEPENDENCIES_LOADED, "
               "INTEGRATIONS_CHANGE, APP_CLOSING, LOGS, GENERATE_METRICS or "
               "DISTRIBUTIONS";
    }
    bool metric_event =
        m->event == sidecar_v1_Telemetry_EVENT_GENERATE_METRICS ||
        m->event == sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS;
    if (m->metrics.count > 0 && !metric_event) {
        return "Telemetry: a list the event does not take";
    }
    if (m->metrics.count > SC_TELEMETRY_MAX_ITEMS) {
        return "Telemetry: a list of over 1024 items";
    }
    /* Each list and the one event that takes it. */
    const struct {
        const sc_list_t *list;
        int event;
    } lists[] = {
        {&m->configuration, sidecar_v1_Telemetry_EVENT_APP_STARTED},
        {&m->dependencies, sidecar_v1_Telemetry_EVENT_DEPENDENCIES_LOADED},
        {&m->integrations, sidecar_v1_Telemetry_EVENT_INTEGRATIONS_CHANGE},
        {&m->logs, sidecar_v1_Telemetry_EVENT_LOGS},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (lists[i].list->count > 0 && (int)m->event != lists[i].event) {
            return "Telemetry: a list the event does not take";
        }
        if (lists[i].list->count > SC_TELEMETRY_MAX_ITEMS) {
            return "Telemetry: a list of over 1024 items";
        }
    }
    const char *why = check_configuration(&m->configuration);
    if (why == NULL) {
        why = check_dependencies(&m->dependencies);
    }
    if (why == NULL) {
        why = check_integrations(&m->integrations);
    }
    if (why == NULL) {
        why = check_logs(&m->logs);
    }
    return why != NULL ? why : sc_tel_metrics_check(&m->metrics, (int)m->event);
}
