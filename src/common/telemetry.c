/* The telemetry hub (docs/telemetry.md): applications, the connections that
 * keep them alive, what they reported, and the bodies due. */
#include "codec.h"
#include "json.h"
#include "log.h"
#include "telemetry.h"
#include "telemetry_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The state of an integration. */
typedef struct tel_istate {
    char *version; /* NULL: absent */
    bool enabled, has_compatible, compatible, has_auto, auto_enabled;
} tel_istate_t;

/* An integration: its state as last received (`cur`) and as last reported
 * (`sent`); `pending` when `cur` changed since the last request. Several
 * changes between two requests make one item, the last state, and none
 * when that is the state already reported. */
typedef struct tel_integr {
    char *name;
    tel_istate_t cur, sent;
    bool ever_sent, pending;
} tel_integr_t;

/* A log due, and how many identical ones it stands for. */
typedef struct tel_log {
    char *message, *stack, *tags; /* stack, tags: NULL when absent */
    int level;
    uint64_t count;
} tel_log_t;

typedef struct tel_app {
    /* Identity: NULL service/env/version are absent (not the same as ""). */
    char *service, *env, *version;
    char *language, *language_version, *tracer_version;
    char runtime_id[37];
    uint64_t seq;
    void *route;
    unsigned live;    /* connections that keep it alive */
    uint64_t gone_at; /* when `live` dropped to 0 */
    /* Due events, in the order a body lists them. */
    sc_buf_t started;       /* app-started payload, or empty: none due */
    sc_buf_t deps;          /* dependency objects, comma-separated */
    size_t integrs_pending; /* integrations with `pending` */
    tel_log_t logs[SC_TELEMETRY_MAX_LOGS];
    size_t log_count;
    sc_tel_metrics_t metrics; /* series until the next heartbeat */
    bool heartbeat, closing;
    /* What was reported: dependencies ("name\x01version", a hash set) and
     * integrations. */
    char **dep_set;
    size_t dep_slots, dep_count;
    tel_integr_t *integr;
    size_t integr_count;
} tel_app_t;

typedef struct tel_conn {
    const void *conn;
    tel_app_t *app;
} tel_conn_t;

struct sc_tel_hub {
    sc_tel_config_t cfg;
    tel_app_t *apps[SC_TELEMETRY_MAX_APPS];
    size_t app_count;
    tel_conn_t *conns;
    size_t conn_count, conn_cap;
    sc_tel_stats_t stats;
};

sc_tel_hub_t *sc_tel_hub_new(const sc_tel_config_t *cfg)
{
    sc_tel_hub_t *h = calloc(1, sizeof *h);
    if (h != NULL) {
        h->cfg = *cfg;
    }
    return h;
}

static void logs_clear(tel_app_t *a)
{
    for (size_t i = 0; i < a->log_count; i++) {
        free(a->logs[i].message);
        free(a->logs[i].stack);
        free(a->logs[i].tags);
    }
    a->log_count = 0;
}

static void app_free(tel_app_t *a)
{
    logs_clear(a);
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

/* ---- validation --------------------------------------------------------- */

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

static const char *check(const sidecar_v1_Telemetry *m)
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

/* ---- events -------------------------------------------------------------- */

static void json_member(sc_json_t *j, const char *key, sc_view_t v)
{
    sc_json_key_str(j, key);
    sc_json_string(j, v.ptr != NULL ? (const char *)v.ptr : "", v.len);
}

/* Starts one more item of a comma-separated list held in `list`. */
static void list_item(sc_buf_t *list, sc_json_t *j)
{
    if (list->len > 0) {
        sc_buf_append(list, ",", 1);
    }
    sc_json_init(j, list);
}

static void queue_started(tel_app_t *a, const sc_list_t *configuration)
{
    sc_json_t j;
    sc_json_init(&j, &a->started);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "configuration");
    sc_json_array_begin(&j);
    sc_list_iter_t it;
    sidecar_v1_TelemetryConfiguration c;
    sc_list_iter_init(&it, configuration);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryConfiguration, &c) > 0) {
        sc_json_object_begin(&j);
        json_member(&j, "name", c.name);
        json_member(&j, "value", c.value);
        json_member(&j, "origin",
                    c.origin.len > 0 ? c.origin : sc_view_str("unknown"));
        sc_json_object_end(&j);
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
}

static uint32_t fnv1a(const char *s, size_t len)
{
    uint32_t x = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        x = (x ^ (uint8_t)s[i]) * 16777619u;
    }
    return x;
}

/* The slot of `key` in the dependency set: itself, or the empty slot it
 * would go in. The set has slots (dep_slots > 0). */
static char **dep_slot(char **set, size_t slots, const char *key, size_t len)
{
    size_t mask = slots - 1;
    for (size_t k = fnv1a(key, len) & mask;; k = (k + 1) & mask) {
        if (set[k] == NULL ||
            (strlen(set[k]) == len && memcmp(set[k], key, len) == 0)) {
            return &set[k];
        }
    }
}

/* Doubles the set, keeping it at most half full. */
static bool dep_grow(tel_app_t *a)
{
    size_t slots = a->dep_slots > 0 ? a->dep_slots * 2 : 32;
    char **n = calloc(slots, sizeof *n);
    if (n == NULL) {
        return false;
    }
    for (size_t i = 0; i < a->dep_slots; i++) {
        if (a->dep_set[i] != NULL) {
            *dep_slot(n, slots, a->dep_set[i], strlen(a->dep_set[i])) =
                a->dep_set[i];
        }
    }
    free(a->dep_set);
    a->dep_set = n;
    a->dep_slots = slots;
    return true;
}

/* Adds `key` to the application's reported dependencies: 1 added, 0 known
 * already, -1 over SC_TELEMETRY_MAX_DEPS or out of memory. */
static int dep_remember(tel_app_t *a, const char *key, size_t len)
{
    if (a->dep_slots > 0 && *dep_slot(a->dep_set, a->dep_slots, key, len)) {
        return 0;
    }
    if (a->dep_count >= SC_TELEMETRY_MAX_DEPS ||
        (2 * (a->dep_count + 1) > a->dep_slots && !dep_grow(a))) {
        return -1;
    }
    char *e = malloc(len + 1);
    if (e == NULL) {
        return -1;
    }
    memcpy(e, key, len);
    e[len] = '\0';
    *dep_slot(a->dep_set, a->dep_slots, key, len) = e;
    a->dep_count++;
    return 1;
}

static void queue_dependencies(sc_tel_hub_t *h, tel_app_t *a,
                               const sc_list_t *deps)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryDependency d;
    sc_list_iter_init(&it, deps);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryDependency, &d) > 0) {
        char key[2 * SC_TELEMETRY_STRING_MAX + 2];
        size_t len = 0;
        memcpy(key, d.name.ptr, d.name.len);
        len += d.name.len;
        key[len++] = '\x01'; /* never in a valid string */
        if (d.version.ptr != NULL) {
            memcpy(key + len, d.version.ptr, d.version.len);
            len += d.version.len;
        }
        int added = dep_remember(a, key, len);
        if (added == 0) {
            h->stats.dependencies_known++;
            continue;
        }
        if (added < 0) {
            h->stats.dependencies_overflow++;
            continue;
        }
        sc_json_t j;
        list_item(&a->deps, &j);
        sc_json_object_begin(&j);
        json_member(&j, "name", d.name);
        if (d.version.ptr != NULL) {
            json_member(&j, "version", d.version);
        }
        sc_json_object_end(&j);
        h->stats.dependencies_sent++;
    }
}

static bool same_view(const char *s, sc_view_t v)
{
    return s == NULL ? v.ptr == NULL
                     : v.ptr != NULL && strlen(s) == v.len &&
                           memcmp(s, v.ptr, v.len) == 0;
}

static char *view_dup(sc_view_t v)
{
    char *s = malloc(v.len + 1);
    if (s != NULL) {
        memcpy(s, v.ptr, v.len);
        s[v.len] = '\0';
    }
    return s;
}

/* The entry of integration `name`, made when new; NULL when none can be
 * (SC_TELEMETRY_MAX_INTEGRS, or memory). */
static tel_integr_t *integr_entry(tel_app_t *a, sc_view_t name, bool *made)
{
    *made = false;
    for (size_t i = 0; i < a->integr_count; i++) {
        if (same_view(a->integr[i].name, name)) {
            return &a->integr[i];
        }
    }
    if (a->integr_count == SC_TELEMETRY_MAX_INTEGRS) {
        return NULL;
    }
    tel_integr_t *n = realloc(a->integr, (a->integr_count + 1) * sizeof *n);
    if (n == NULL) {
        return NULL;
    }
    a->integr = n;
    tel_integr_t *e = &n[a->integr_count];
    memset(e, 0, sizeof *e);
    if ((e->name = view_dup(name)) == NULL) {
        return NULL;
    }
    a->integr_count++;
    *made = true;
    return e;
}

static bool same_state(const tel_istate_t *x, const tel_istate_t *y)
{
    return x->enabled == y->enabled && x->has_compatible == y->has_compatible &&
           x->compatible == y->compatible && x->has_auto == y->has_auto &&
           x->auto_enabled == y->auto_enabled &&
           (x->version == NULL
                ? y->version == NULL
                : y->version != NULL && strcmp(x->version, y->version) == 0);
}

/* *to = a copy of *from (false: out of memory, *to unchanged). */
static bool copy_state(tel_istate_t *to, const tel_istate_t *from)
{
    char *v =
        from->version != NULL ? view_dup(sc_view_str(from->version)) : NULL;
    if (from->version != NULL && v == NULL) {
        return false;
    }
    free(to->version);
    *to = *from;
    to->version = v;
    return true;
}

/* Records the state received for each integration; one that differs from
 * the state received before becomes pending. */
static void queue_integrations(sc_tel_hub_t *h, tel_app_t *a,
                               const sc_list_t *list)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryIntegration i;
    sc_list_iter_init(&it, list);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryIntegration, &i) > 0) {
        bool made;
        tel_integr_t *e = integr_entry(a, i.name, &made);
        if (e == NULL) {
            h->stats.no_memory++;
            continue;
        }
        char version[SC_TELEMETRY_STRING_MAX + 1];
        tel_istate_t st = {.enabled = i.enabled,
                           .has_compatible = i.has_compatible,
                           .compatible = i.compatible,
                           .has_auto = i.has_auto_enabled,
                           .auto_enabled = i.auto_enabled};
        if (i.version.ptr != NULL) {
            memcpy(version, i.version.ptr, i.version.len);
            version[i.version.len] = '\0';
            st.version = version;
        }
        if (!made && same_state(&e->cur, &st)) {
            h->stats.integrations_unchanged++;
            continue;
        }
        if (!copy_state(&e->cur, &st)) {
            h->stats.no_memory++;
            continue;
        }
        if (!e->pending) {
            e->pending = true;
            a->integrs_pending++;
        }
    }
}

/* {"integrations":[...]} of the pending integrations whose state differs
 * from the one reported; returns how many it lists (0: no request). */
static size_t integrations_payload(sc_tel_hub_t *h, tel_app_t *a, sc_buf_t *out)
{
    sc_json_t j;
    size_t n = 0;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "integrations");
    sc_json_array_begin(&j);
    for (size_t k = 0; k < a->integr_count; k++) {
        tel_integr_t *e = &a->integr[k];
        if (!e->pending) {
            continue;
        }
        e->pending = false;
        if ((e->ever_sent && same_state(&e->cur, &e->sent)) ||
            !copy_state(&e->sent, &e->cur)) {
            h->stats.integrations_unchanged++;
            continue;
        }
        e->ever_sent = true;
        const tel_istate_t *st = &e->cur;
        sc_json_object_begin(&j);
        json_member(&j, "name", sc_view_str(e->name));
        sc_json_key_str(&j, "enabled");
        sc_json_bool(&j, st->enabled);
        if (st->version != NULL) {
            json_member(&j, "version", sc_view_str(st->version));
        }
        if (st->has_compatible) {
            sc_json_key_str(&j, "compatible");
            sc_json_bool(&j, st->compatible);
        }
        if (st->has_auto) {
            sc_json_key_str(&j, "auto_enabled");
            sc_json_bool(&j, st->auto_enabled);
        }
        sc_json_object_end(&j);
        h->stats.integrations_sent++;
        n++;
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    a->integrs_pending = 0;
    return n;
}

/* Logs due: an identical one (message, level, stack trace, tags) already
 * due counts one more; a new one takes a slot (SC_TELEMETRY_MAX_LOGS). */
static void queue_logs(sc_tel_hub_t *h, tel_app_t *a, const sc_list_t *list)
{
    sc_list_iter_t it;
    sidecar_v1_TelemetryLog g;
    sc_list_iter_init(&it, list);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryLog, &g) > 0) {
        h->stats.logs++;
        tel_log_t *e = NULL;
        for (size_t i = 0; i < a->log_count && e == NULL; i++) {
            tel_log_t *l = &a->logs[i];
            if (l->level == (int)g.level && same_view(l->message, g.message) &&
                same_view(l->stack, g.stack_trace) &&
                same_view(l->tags, g.tags)) {
                e = l;
            }
        }
        if (e != NULL) {
            e->count++;
            continue;
        }
        if (a->log_count == SC_TELEMETRY_MAX_LOGS) {
            h->stats.logs_overflow++;
            continue;
        }
        e = &a->logs[a->log_count];
        memset(e, 0, sizeof *e);
        e->message = view_dup(g.message);
        e->stack = g.stack_trace.ptr != NULL ? view_dup(g.stack_trace) : NULL;
        e->tags = g.tags.ptr != NULL ? view_dup(g.tags) : NULL;
        if (e->message == NULL || (g.stack_trace.ptr != NULL && !e->stack) ||
            (g.tags.ptr != NULL && !e->tags)) {
            free(e->message);
            free(e->stack);
            free(e->tags);
            h->stats.no_memory++;
            continue;
        }
        e->level = (int)g.level;
        e->count = 1;
        a->log_count++;
    }
}

/* {"logs":[...]} of the logs due, which are then no longer due. */
static void logs_payload(sc_tel_hub_t *h, tel_app_t *a, sc_buf_t *out)
{
    static const char *const levels[] = {"", "ERROR", "WARN", "DEBUG"};
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "logs");
    sc_json_array_begin(&j);
    for (size_t i = 0; i < a->log_count; i++) {
        const tel_log_t *l = &a->logs[i];
        sc_json_object_begin(&j);
        json_member(&j, "message", sc_view_str(l->message));
        json_member(&j, "level", sc_view_str(levels[l->level]));
        sc_json_key_str(&j, "count");
        sc_json_uint64(&j, l->count);
        if (l->stack != NULL) {
            json_member(&j, "stack_trace", sc_view_str(l->stack));
        }
        if (l->tags != NULL) {
            json_member(&j, "tags", sc_view_str(l->tags));
        }
        sc_json_object_end(&j);
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    h->stats.logs_sent += a->log_count;
    logs_clear(a);
}

const char *sc_tel_hub_event(sc_tel_hub_t *h, const sc_client_identity_t *id,
                             const void *conn, void *route,
                             const sidecar_v1_Telemetry *m, uint64_t now_ms)
{
    const char *why = check(m);
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
        queue_started(a, m->event == sidecar_v1_Telemetry_EVENT_APP_STARTED
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
        queue_dependencies(h, a, &m->dependencies);
        break;
    case sidecar_v1_Telemetry_EVENT_LOGS:
        queue_logs(h, a, &m->logs);
        break;
    case sidecar_v1_Telemetry_EVENT_GENERATE_METRICS:
    case sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS:
        h->stats.metric_points += m->metrics.count;
        sc_tel_metrics_add(&a->metrics, &m->metrics,
                           m->event == sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS,
                           &h->stats.metrics_overflow, &h->stats.no_memory);
        break;
    default:
        queue_integrations(h, a, &m->integrations);
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

/* ---- bodies ------------------------------------------------------------- */

typedef struct due {
    const char *type;
    const char *payload; /* NULL: {} */
    size_t len;
} due_t;

/* "{"<key>":[<items>]}" into `out`. */
static void wrap_list(sc_buf_t *out, const char *key, const sc_buf_t *items)
{
    sc_buf_appendf(out, "{\"%s\":[", key);
    sc_buf_append(out, items->data, items->len);
    sc_buf_append(out, "]}", 2);
}

static void submit(sc_tel_hub_t *h, tel_app_t *a, const due_t *due, size_t n)
{
    sc_buf_t batch = {0}, body = {0};
    const char *type = due[0].type;
    const char *payload = due[0].payload;
    size_t len = due[0].len;
    if (n > 1) {
        sc_buf_append(&batch, "[", 1);
        for (size_t i = 0; i < n; i++) {
            sc_buf_appendf(&batch, "%s{\"request_type\":\"%s\",\"payload\":",
                           i > 0 ? "," : "", due[i].type);
            if (due[i].payload != NULL) {
                sc_buf_append(&batch, due[i].payload, due[i].len);
            } else {
                sc_buf_append(&batch, "{}", 2);
            }
            sc_buf_append(&batch, "}", 1);
        }
        sc_buf_append(&batch, "]", 1);
        type = "message-batch";
        payload = (const char *)batch.data;
        len = batch.len;
        h->stats.message_batches++;
    }
    sc_telemetry_app_info_t info = {
        .service = a->service,
        .env = a->env != NULL ? a->env : "",
        .version = a->version != NULL ? a->version : "",
        .language = a->language,
        .language_version = a->language_version,
        .tracer_version = a->tracer_version,
        .runtime_id = a->runtime_id,
    };
    char unnamed[SC_IDENTITY_MAX + 32];
    if (info.service == NULL) {
        snprintf(unnamed, sizeof unnamed, "unnamed-%s-service",
                 a->language[0] != '\0' ? a->language : "c");
        info.service = unnamed;
    }
    uv_timeval64_t tv;
    int64_t now_s = uv_gettimeofday(&tv) == 0 ? tv.tv_sec : 0;
    if (sc_telemetry_body(&body, &info, h->cfg.host, type, ++a->seq, now_s,
                          payload, len) &&
        (n == 1 || batch.data != NULL)) {
        h->cfg.submit(h->cfg.ctx, a->route, type, a->language,
                      a->tracer_version, (const char *)body.data, body.len);
        h->stats.requests++;
    } else {
        h->stats.no_memory++;
    }
    sc_buf_free(&batch);
    sc_buf_free(&body);
}

/* Submits what is due for `a` as one body. */
static void send_due(sc_tel_hub_t *h, tel_app_t *a)
{
    due_t due[8];
    size_t n = 0;
    sc_buf_t deps = {0}, integrs = {0}, logs = {0}, gen = {0}, dists = {0};
    if (a->started.len > 0) {
        due[n++] = (due_t){"app-started", (const char *)a->started.data,
                           a->started.len};
    }
    if (a->deps.len > 0) {
        wrap_list(&deps, "dependencies", &a->deps);
        due[n++] = (due_t){"app-dependencies-loaded", (const char *)deps.data,
                           deps.len};
    }
    if (a->integrs_pending > 0 && integrations_payload(h, a, &integrs) > 0) {
        due[n++] = (due_t){"app-integrations-change",
                           (const char *)integrs.data, integrs.len};
    }
    if (a->log_count > 0) {
        logs_payload(h, a, &logs);
        due[n++] = (due_t){"logs", (const char *)logs.data, logs.len};
    }
    /* Metrics are aggregated over the heartbeat interval. */
    if (a->heartbeat || a->closing) {
        uv_timeval64_t tv;
        int64_t now_s = uv_gettimeofday(&tv) == 0 ? tv.tv_sec : 0;
        size_t k = sc_tel_metrics_payload(&a->metrics, false, now_s,
                                          h->cfg.metrics_interval_ms, &gen);
        if (k > 0) {
            due[n++] =
                (due_t){"generate-metrics", (const char *)gen.data, gen.len};
        }
        size_t d = sc_tel_metrics_payload(&a->metrics, true, now_s,
                                          h->cfg.metrics_interval_ms, &dists);
        if (d > 0) {
            due[n++] =
                (due_t){"distributions", (const char *)dists.data, dists.len};
        }
        h->stats.metric_series_sent += k + d;
    }
    if (a->heartbeat) {
        due[n++] = (due_t){"app-heartbeat", NULL, 0};
        h->stats.heartbeats++;
    }
    if (a->closing) {
        due[n++] = (due_t){"app-closing", NULL, 0};
        h->stats.app_closing++;
    }
    if (n > 0) {
        submit(h, a, due, n);
    }
    sc_buf_free(&deps);
    sc_buf_free(&integrs);
    sc_buf_free(&logs);
    sc_buf_free(&gen);
    sc_buf_free(&dists);
    sc_buf_reset(&a->started);
    sc_buf_reset(&a->deps);
    a->heartbeat = false;
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
        send_due(h, a);
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
