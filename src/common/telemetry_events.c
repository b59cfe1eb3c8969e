/* What an application of the telemetry hub has due, event by event, until
 * its next body (telemetry_send.c): the app-started payload; dependencies,
 * each reported once in the application's life (a hash set of those
 * reported); integrations, reported when their state differs from the one
 * reported; logs, an identical one counted instead of sent again. Each is
 * queued from a checked action and written as its payload here. */
#include "telemetry_internal.h"

#include "codec.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

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

void sc_telemetry__queue_started(tel_app_t *a, const sc_list_t *configuration)
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

void sc_telemetry__queue_dependencies(sc_tel_hub_t *h, tel_app_t *a,
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
void sc_telemetry__queue_integrations(sc_tel_hub_t *h, tel_app_t *a,
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
size_t sc_telemetry__integrations_payload(sc_tel_hub_t *h, tel_app_t *a,
                                          sc_buf_t *out)
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

void sc_telemetry__logs_clear(tel_app_t *a)
{
    for (size_t i = 0; i < a->log_count; i++) {
        free(a->logs[i].message);
        free(a->logs[i].stack);
        free(a->logs[i].tags);
    }
    a->log_count = 0;
}

/* Logs due: an identical one (message, level, stack trace, tags) already
 * due counts one more; a new one takes a slot (SC_TELEMETRY_MAX_LOGS). */
void sc_telemetry__queue_logs(sc_tel_hub_t *h, tel_app_t *a,
                              const sc_list_t *list)
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
void sc_telemetry__logs_payload(sc_tel_hub_t *h, tel_app_t *a, sc_buf_t *out)
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
    sc_telemetry__logs_clear(a);
}
