/* The telemetry hub (src/common/telemetry*.c) with time passed in: one
 * app-started per application however many connections report it, seq_id
 * 1..N, dependencies once, integrations on change only (last state per
 * request), message-batch order, heartbeats only while a connection is
 * attached, app-closing after the closing delay and a fresh application
 * after it, one application per agent, the switch, the limits. Bodies are
 * read back with cJSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "codec.h"
#include "telemetry.h"
#include "telemetry_metrics.h"

#define MAX_BODIES 300

typedef struct sink {
    cJSON *bodies[MAX_BODIES];
    void *routes[MAX_BODIES]; /* the route each body was submitted for */
    size_t n;
} sink_t;

static void collect(void *ctx, void *route, const char *type,
                    const char *language, const char *version, const char *json,
                    size_t len)
{
    (void)language;
    (void)version;
    sink_t *s = ctx;
    assert_true(s->n < MAX_BODIES);
    s->routes[s->n] = route;
    cJSON *b = cJSON_ParseWithLength(json, len);
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(b, "request_type")->valuestring,
                        type);
    s->bodies[s->n++] = b;
}

static void sink_clear(sink_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cJSON_Delete(s->bodies[i]);
    }
    s->n = 0;
}

static sc_telemetry_host_t host = {.hostname = "h", .os = "Linux"};

static sc_tel_hub_t *hub(sink_t *s, bool enabled)
{
    sc_tel_config_t cfg = {.enabled = enabled,
                           .closing_delay_ms = 1000,
                           .host = &host,
                           .submit = collect,
                           .ctx = s};
    sc_tel_hub_t *h = sc_tel_hub_new(&cfg);
    assert_non_null(h);
    return h;
}

static char lang[] = "php", lang_v[] = "8.2", tracer[] = "1.0", svc[] = "shop";

static sc_client_identity_t identity(char *service)
{
    sc_client_identity_t id = {.language = lang,
                               .language_version = lang_v,
                               .tracer_version = tracer,
                               .service = service};
    return id;
}

/* An event as the sidecar sees it: encoded, then decoded (lists decoded
 * lazily point into `frame`). */
typedef struct event {
    uint8_t frame[4096];
    sidecar_v1_Envelope env;
} event_t;

static const sidecar_v1_Telemetry *decode(event_t *e,
                                          const sidecar_v1_Telemetry *t)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_telemetry_tag;
    env.action.telemetry = *t;
    size_t len = 0;
    assert_true(sc_codec_encode(&env, e->frame, sizeof e->frame, &len));
    assert_true(sc_codec_decode(e->frame, len, &e->env, NULL));
    return &e->env.action.telemetry;
}

static const char *post(sc_tel_hub_t *h, char *service, const void *conn,
                        const sidecar_v1_Telemetry *t, uint64_t now)
{
    event_t e;
    sc_client_identity_t id = identity(service);
    return sc_tel_hub_event(h, &id, conn, NULL, decode(&e, t), now);
}

/* post() for a connection routed to `route`. */
static const char *post_routed(sc_tel_hub_t *h, const void *conn, void *route,
                               const sidecar_v1_Telemetry *t, uint64_t now)
{
    event_t e;
    sc_client_identity_t id = identity(svc);
    return sc_tel_hub_event(h, &id, conn, route, decode(&e, t), now);
}

static const char *type_of(const cJSON *b)
{
    return cJSON_GetObjectItem(b, "request_type")->valuestring;
}

static int seq_of(const cJSON *b)
{
    return cJSON_GetObjectItem(b, "seq_id")->valueint;
}

static void test_one_app_started_and_batch_order(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *h = hub(&s, true);
    int conns[3];
    sidecar_v1_TelemetryConfiguration cfg[] = {
        {.name = sc_view_str("DD_ENV"), .value = sc_view_str("prod")}};
    sidecar_v1_TelemetryDependency deps[] = {
        {.name = sc_view_str("a"), .version = sc_view_str("1")},
        {.name = sc_view_str("b")}};
    sidecar_v1_TelemetryIntegration integ[] = {
        {.name = sc_view_str("curl"), .enabled = true}};
    for (int c = 0; c < 3; c++) {
        sidecar_v1_Telemetry started = {
            .event = sidecar_v1_Telemetry_EVENT_APP_STARTED,
            .configuration = SC_LIST_OF(cfg, 1)};
        sidecar_v1_Telemetry loaded = {
            .event = sidecar_v1_Telemetry_EVENT_DEPENDENCIES_LOADED,
            .dependencies = SC_LIST_OF(deps, 2)};
        sidecar_v1_Telemetry changed = {
            .event = sidecar_v1_Telemetry_EVENT_INTEGRATIONS_CHANGE,
            .integrations = SC_LIST_OF(integ, 1)};
        assert_null(post(h, svc, &conns[c], &started, 0));
        assert_null(post(h, svc, &conns[c], &loaded, 0));
        assert_null(post(h, svc, &conns[c], &changed, 0));
    }
    assert_int_equal(sc_tel_hub_process(h, 0, false), UINT64_MAX);
    assert_int_equal(s.n, 1);
    const cJSON *b = s.bodies[0];
    assert_string_equal(type_of(b), "message-batch");
    assert_int_equal(seq_of(b), 1);
    const cJSON *items = cJSON_GetObjectItem(b, "payload");
    assert_int_equal(cJSON_GetArraySize(items), 3);
    static const char *const order[] = {
        "app-started", "app-dependencies-loaded", "app-integrations-change"};
    for (int i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetArrayItem(items, i);
        assert_string_equal(
            cJSON_GetObjectItem(it, "request_type")->valuestring, order[i]);
    }
    const cJSON *dl = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "payload"),
        "dependencies");
    assert_int_equal(cJSON_GetArraySize(dl), 2);
    sc_tel_stats_t st;
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.applications, 1);
    assert_int_equal(st.app_started_joined, 2);
    assert_int_equal(st.dependencies_sent, 2);
    assert_int_equal(st.dependencies_known, 4);
    assert_int_equal(st.integrations_sent, 1);
    assert_int_equal(st.integrations_unchanged, 2);
    sink_clear(&s);
    sc_tel_hub_free(h);
}

static void test_heartbeat_closing_and_restart(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *h = hub(&s, true);
    int a, b;
    sidecar_v1_Telemetry started = {.event =
                                        sidecar_v1_Telemetry_EVENT_APP_STARTED};
    assert_null(post(h, svc, &a, &started, 0));
    assert_null(post(h, svc, &b, &started, 0));
    sc_tel_hub_process(h, 0, false);
    sc_tel_hub_heartbeat(h);
    sc_tel_hub_process(h, 10, false);
    assert_int_equal(s.n, 2);
    assert_string_equal(type_of(s.bodies[1]), "app-heartbeat");
    assert_int_equal(seq_of(s.bodies[1]), 2);
    const char *rid =
        cJSON_GetObjectItem(s.bodies[0], "runtime_id")->valuestring;
    char runtime_id[40];
    snprintf(runtime_id, sizeof runtime_id, "%s", rid);

    /* One connection leaves: still alive. The other reports app-closing:
     * the last one gone at t=100, closing due at t=1100. */
    sc_tel_hub_conn_gone(h, &a, 50);
    sidecar_v1_Telemetry closing = {.event =
                                        sidecar_v1_Telemetry_EVENT_APP_CLOSING};
    assert_null(post(h, svc, &b, &closing, 100));
    sc_tel_hub_heartbeat(h); /* no connection: no heartbeat */
    assert_int_equal(sc_tel_hub_process(h, 1099, false), 1);
    assert_int_equal(s.n, 2);
    assert_int_equal(sc_tel_hub_process(h, 1100, false), UINT64_MAX);
    assert_int_equal(s.n, 3);
    assert_string_equal(type_of(s.bodies[2]), "app-closing");
    assert_int_equal(seq_of(s.bodies[2]), 3);
    sc_tel_stats_t st;
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.applications, 0);
    assert_int_equal(st.heartbeats, 1);

    /* A process of it after its app-closing: a new application instance. */
    assert_null(post(h, svc, &a, &started, 2000));
    sc_tel_hub_process(h, 2000, false);
    assert_int_equal(s.n, 4);
    assert_string_equal(type_of(s.bodies[3]), "app-started");
    assert_int_equal(seq_of(s.bodies[3]), 1);
    assert_string_not_equal(
        cJSON_GetObjectItem(s.bodies[3], "runtime_id")->valuestring,
        runtime_id);
    /* The sidecar stops: app-closing although a connection is attached. */
    sc_tel_hub_process(h, 2001, true);
    assert_int_equal(s.n, 5);
    assert_string_equal(type_of(s.bodies[4]), "app-closing");
    sink_clear(&s);
    sc_tel_hub_free(h);
}

static void test_integration_last_state(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *h = hub(&s, true);
    int c;
    sidecar_v1_TelemetryIntegration on = {.name = sc_view_str("pdo"),
                                          .enabled = true};
    sidecar_v1_TelemetryIntegration off = {.name = sc_view_str("pdo")};
    sidecar_v1_Telemetry ev = {
        .event = sidecar_v1_Telemetry_EVENT_INTEGRATIONS_CHANGE};
    ev.integrations = SC_LIST_OF(&on, 1);
    assert_null(post(h, svc, &c, &ev, 0));
    sc_tel_hub_process(h, 0, false); /* app-started + pdo on */
    ev.integrations = SC_LIST_OF(&off, 1);
    assert_null(post(h, svc, &c, &ev, 1));
    ev.integrations = SC_LIST_OF(&on, 1);
    assert_null(post(h, svc, &c, &ev, 2));
    sc_tel_hub_process(h, 2, false); /* back where it was: nothing */
    assert_int_equal(s.n, 1);
    ev.integrations = SC_LIST_OF(&off, 1);
    assert_null(post(h, svc, &c, &ev, 3));
    sc_tel_hub_process(h, 3, false);
    assert_int_equal(s.n, 2);
    assert_string_equal(type_of(s.bodies[1]), "app-integrations-change");
    const cJSON *i = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(s.bodies[1], "payload"),
                            "integrations"),
        0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(i, "enabled")));
    sink_clear(&s);
    sc_tel_hub_free(h);
}

static void test_rules_switch_and_limits(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *off = hub(&s, false);
    int c;
    sidecar_v1_Telemetry started = {.event =
                                        sidecar_v1_Telemetry_EVENT_APP_STARTED};
    assert_null(post(off, svc, &c, &started, 0));
    sc_tel_hub_process(off, 0, true);
    assert_int_equal(s.n, 0);
    sc_tel_stats_t st;
    sc_tel_hub_stats(off, &st);
    assert_int_equal(st.events_disabled, 1);
    sc_tel_hub_free(off);

    sc_tel_hub_t *h = hub(&s, true);
    sidecar_v1_Telemetry bad = {.event = 9};
    assert_non_null(post(h, svc, &c, &bad, 0));
    sidecar_v1_TelemetryDependency d = {.name = sc_view_str("x")};
    sidecar_v1_Telemetry wrong_list = {
        .event = sidecar_v1_Telemetry_EVENT_APP_STARTED,
        .dependencies = SC_LIST_OF(&d, 1)};
    assert_non_null(post(h, svc, &c, &wrong_list, 0));
    sidecar_v1_TelemetryConfiguration origin = {
        .name = sc_view_str("a"), .origin = sc_view_str("nowhere")};
    sidecar_v1_Telemetry bad_origin = {
        .event = sidecar_v1_Telemetry_EVENT_APP_STARTED,
        .configuration = SC_LIST_OF(&origin, 1)};
    assert_non_null(post(h, svc, &c, &bad_origin, 0));
    /* 256 applications, then one more: dropped and counted. */
    static char names[SC_TELEMETRY_MAX_APPS + 1][16];
    for (int i = 0; i <= SC_TELEMETRY_MAX_APPS; i++) {
        snprintf(names[i], sizeof names[i], "svc-%d", i);
        assert_null(post(h, names[i], &c, &started, 0));
    }
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.applications, SC_TELEMETRY_MAX_APPS);
    assert_int_equal(st.applications_overflow, 1);
    assert_int_equal(st.events, SC_TELEMETRY_MAX_APPS + 1);
    sc_tel_hub_process(h, 0, true);
    assert_int_equal(s.n, SC_TELEMETRY_MAX_APPS);
    sink_clear(&s);
    sc_tel_hub_free(h);
}

static void test_logs_counted_together(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *h = hub(&s, true);
    int conns[3];
    sidecar_v1_TelemetryLog same = {
        .message = sc_view_str("pdo: timeout\n#0 query()"),
        .level = sidecar_v1_TelemetryLog_LEVEL_ERROR,
        .tags = sc_view_str("integration:pdo")};
    sidecar_v1_TelemetryLog other = {.message = sc_view_str("slow"),
                                     .level =
                                         sidecar_v1_TelemetryLog_LEVEL_WARN};
    sidecar_v1_TelemetryLog both[] = {same, other};
    for (int c = 0; c < 3; c++) {
        sidecar_v1_Telemetry ev = {
            .event = sidecar_v1_Telemetry_EVENT_LOGS,
            .logs = SC_LIST_OF(c == 0 ? both : &same, c == 0 ? 2 : 1)};
        assert_null(post(h, svc, &conns[c], &ev, 0));
    }
    sidecar_v1_TelemetryLog no_level = {.message = sc_view_str("x")};
    sidecar_v1_Telemetry bad = {.event = sidecar_v1_Telemetry_EVENT_LOGS,
                                .logs = SC_LIST_OF(&no_level, 1)};
    assert_non_null(post(h, svc, &conns[0], &bad, 0));
    sc_tel_hub_process(h, 0, false);
    assert_int_equal(s.n, 1); /* app-started and the logs */
    const cJSON *items = cJSON_GetObjectItem(s.bodies[0], "payload");
    const cJSON *logs = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "payload"), "logs");
    assert_int_equal(cJSON_GetArraySize(logs), 2);
    const cJSON *first = cJSON_GetArrayItem(logs, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "message")->valuestring,
                        "pdo: timeout\n#0 query()");
    assert_string_equal(cJSON_GetObjectItem(first, "level")->valuestring,
                        "ERROR");
    assert_int_equal(cJSON_GetObjectItem(first, "count")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(first, "tags")->valuestring,
                        "integration:pdo");
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(logs, 1), "count")->valueint, 1);
    /* More distinct logs due than the bound: the rest counted. */
    static char text[SC_TELEMETRY_MAX_LOGS + 1][16];
    for (int i = 0; i <= SC_TELEMETRY_MAX_LOGS; i++) {
        snprintf(text[i], sizeof text[i], "log %d", i);
        sidecar_v1_TelemetryLog g = {.message = sc_view_str(text[i]),
                                     .level =
                                         sidecar_v1_TelemetryLog_LEVEL_DEBUG};
        sidecar_v1_Telemetry ev = {.event = sidecar_v1_Telemetry_EVENT_LOGS,
                                   .logs = SC_LIST_OF(&g, 1)};
        assert_null(post(h, svc, &conns[0], &ev, 1));
    }
    sc_tel_stats_t st;
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.logs, 4 + SC_TELEMETRY_MAX_LOGS + 1);
    assert_int_equal(st.logs_overflow, 1);
    sc_tel_hub_process(h, 1, false);
    assert_int_equal(s.n, 2);
    assert_string_equal(type_of(s.bodies[1]), "logs");
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.logs_sent, 2 + SC_TELEMETRY_MAX_LOGS);
    sink_clear(&s);
    sc_tel_hub_free(h);
}

/* The `series` payload of the request of type `type` in body `b` (one
 * request or a message-batch), or NULL. */
static const cJSON *series_in(const cJSON *b, const char *type)
{
    const cJSON *p = cJSON_GetObjectItem(b, "payload");
    if (strcmp(type_of(b), type) == 0) {
        return cJSON_GetObjectItem(p, "series");
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, p)
    {
        const cJSON *t = cJSON_GetObjectItem(item, "request_type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0) {
            return cJSON_GetObjectItem(cJSON_GetObjectItem(item, "payload"),
                                       "series");
        }
    }
    return NULL;
}

static const cJSON *series_named(const cJSON *series, const char *metric)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, series)
    {
        if (strcmp(cJSON_GetObjectItem(s, "metric")->valuestring, metric) ==
            0) {
            return s;
        }
    }
    return NULL;
}

static double point_value(const cJSON *s)
{
    return cJSON_GetArrayItem(
               cJSON_GetArrayItem(cJSON_GetObjectItem(s, "points"), 0), 1)
        ->valuedouble;
}

static void test_metrics_until_heartbeat(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_config_t cfg = {.enabled = true,
                           .closing_delay_ms = 1000,
                           .metrics_interval_ms = 2000,
                           .host = &host,
                           .submit = collect,
                           .ctx = &s};
    sc_tel_hub_t *h = sc_tel_hub_new(&cfg);
    assert_non_null(h);
    int conns[2];
    for (int c = 0; c < 2; c++) {
        sidecar_v1_TelemetryMetric points[] = {
            {.name = sc_view_str("spans"),
             .tags = sc_view_str("a:1,,b:2"),
             .value = 2,
             .common = true,
             .type = sidecar_v1_TelemetryMetric_TYPE_COUNT},
            {.namespace = sc_view_str("general"),
             .name = sc_view_str("workers"),
             .value = 10 + c,
             .type = sidecar_v1_TelemetryMetric_TYPE_GAUGE},
            {.name = sc_view_str("flushes"),
             .value = 3,
             .type = sidecar_v1_TelemetryMetric_TYPE_RATE},
            /* Other tags: another series. */
            {.name = sc_view_str("spans"),
             .value = 1,
             .type = sidecar_v1_TelemetryMetric_TYPE_COUNT},
        };
        sidecar_v1_TelemetryMetric values[] = {
            {.name = sc_view_str("init"), .value = c},
            {.name = sc_view_str("init"), .value = 0.25},
        };
        sidecar_v1_Telemetry gen = {
            .event = sidecar_v1_Telemetry_EVENT_GENERATE_METRICS,
            .metrics = SC_LIST_OF(points, 4)};
        sidecar_v1_Telemetry dist = {
            .event = sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS,
            .metrics = SC_LIST_OF(values, 2)};
        assert_null(post(h, svc, &conns[c], &gen, 0));
        assert_null(post(h, svc, &conns[c], &dist, 0));
    }
    /* Refused whole: a distribution value in generate-metrics, a count in
     * distributions, a NaN, no name, metrics in another event. */
    sidecar_v1_TelemetryMetric dv = {.name = sc_view_str("x")};
    sidecar_v1_TelemetryMetric cv = {.name = sc_view_str("x"),
                                     .type =
                                         sidecar_v1_TelemetryMetric_TYPE_COUNT};
    sidecar_v1_TelemetryMetric nan = cv, unnamed = cv;
    nan.value = 0.0 / 0.0;
    unnamed.name = sc_view_str("");
    const struct {
        int event;
        sidecar_v1_TelemetryMetric *m;
    } bad[] = {{sidecar_v1_Telemetry_EVENT_GENERATE_METRICS, &dv},
               {sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS, &cv},
               {sidecar_v1_Telemetry_EVENT_GENERATE_METRICS, &nan},
               {sidecar_v1_Telemetry_EVENT_GENERATE_METRICS, &unnamed},
               {sidecar_v1_Telemetry_EVENT_LOGS, &cv}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sidecar_v1_Telemetry ev = {.event = bad[i].event,
                                   .metrics = SC_LIST_OF(bad[i].m, 1)};
        assert_non_null(post(h, svc, &conns[0], &ev, 0));
    }
    /* Gathered events go out; the metrics wait for the heartbeat. */
    sc_tel_hub_process(h, 0, false);
    assert_int_equal(s.n, 1);
    assert_string_equal(type_of(s.bodies[0]), "app-started");
    sc_tel_hub_heartbeat(h);
    sc_tel_hub_process(h, 1, false);
    assert_int_equal(s.n, 2);
    assert_string_equal(type_of(s.bodies[1]), "message-batch");
    const cJSON *gen = series_in(s.bodies[1], "generate-metrics");
    assert_int_equal(cJSON_GetArraySize(gen), 4);
    const cJSON *spans = cJSON_GetArrayItem(gen, 0);
    assert_string_equal(cJSON_GetObjectItem(spans, "metric")->valuestring,
                        "spans");
    assert_string_equal(cJSON_GetObjectItem(spans, "namespace")->valuestring,
                        "tracers");
    assert_true(point_value(spans) == 4);
    const cJSON *tags = cJSON_GetObjectItem(spans, "tags");
    assert_int_equal(cJSON_GetArraySize(tags), 2);
    assert_string_equal(cJSON_GetArrayItem(tags, 1)->valuestring, "b:2");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(spans, "common")));
    assert_string_equal(cJSON_GetObjectItem(spans, "type")->valuestring,
                        "count");
    assert_null(cJSON_GetObjectItem(spans, "interval"));
    assert_true(point_value(cJSON_GetArrayItem(gen, 3)) == 2);
    const cJSON *workers = series_named(gen, "workers");
    assert_true(point_value(workers) == 11); /* the last */
    assert_string_equal(cJSON_GetObjectItem(workers, "namespace")->valuestring,
                        "general");
    assert_int_equal(cJSON_GetObjectItem(workers, "interval")->valueint, 2);
    assert_true(point_value(series_named(gen, "flushes")) == 3.0); /* 6/2s */
    const cJSON *dist = series_in(s.bodies[1], "distributions");
    assert_int_equal(cJSON_GetArraySize(dist), 1);
    const cJSON *vals =
        cJSON_GetObjectItem(cJSON_GetArrayItem(dist, 0), "points");
    assert_int_equal(cJSON_GetArraySize(vals), 4);
    double sum = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vals)
    {
        sum += v->valuedouble;
    }
    assert_true(sum == 1.5);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(dist, 0), "type"));
    /* Sent once: the next heartbeat has none. */
    sc_tel_hub_heartbeat(h);
    sc_tel_hub_process(h, 2, false);
    assert_int_equal(s.n, 3);
    assert_string_equal(type_of(s.bodies[2]), "app-heartbeat");
    /* Beyond the series limit: counted, the rest still kept. */
    static char names[SC_TELEMETRY_MAX_SERIES + 1][16];
    for (int i = 0; i <= SC_TELEMETRY_MAX_SERIES; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        sidecar_v1_TelemetryMetric m = {
            .name = sc_view_str(names[i]),
            .value = 1,
            .type = sidecar_v1_TelemetryMetric_TYPE_COUNT};
        sidecar_v1_Telemetry ev = {
            .event = sidecar_v1_Telemetry_EVENT_GENERATE_METRICS,
            .metrics = SC_LIST_OF(&m, 1)};
        assert_null(post(h, svc, &conns[0], &ev, 3));
    }
    sc_tel_stats_t st;
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.metric_points, 12 + SC_TELEMETRY_MAX_SERIES + 1);
    assert_int_equal(st.metrics_overflow, 1);
    assert_int_equal(st.metric_series_sent, 5);
    /* The application closing sends what it holds. */
    sc_tel_hub_process(h, 4, true);
    assert_int_equal(s.n, 4);
    assert_int_equal(
        cJSON_GetArraySize(series_in(s.bodies[3], "generate-metrics")),
        SC_TELEMETRY_MAX_SERIES);
    sink_clear(&s);
    sc_tel_hub_free(h);
}

/* The same application reported by sessions of two agents is one per
 * agent: each agent gets an app-started and the dependencies of its own
 * sessions only, under its own runtime_id; nothing of one reaches the
 * other. */
static void test_one_app_per_agent(void **state)
{
    (void)state;
    sink_t s = {0};
    sc_tel_hub_t *h = hub(&s, true);
    int conns[4], agent_a, agent_b;
    void *route_of[4] = {&agent_a, &agent_b, &agent_a, &agent_b};
    sidecar_v1_TelemetryDependency deps[] = {
        {.name = sc_view_str("dep-a"), .version = sc_view_str("1")},
        {.name = sc_view_str("dep-b"), .version = sc_view_str("1")}};
    for (int c = 0; c < 4; c++) {
        sidecar_v1_Telemetry started = {
            .event = sidecar_v1_Telemetry_EVENT_APP_STARTED};
        /* agent A's sessions load dep-a, agent B's dep-b */
        sidecar_v1_Telemetry loaded = {
            .event = sidecar_v1_Telemetry_EVENT_DEPENDENCIES_LOADED,
            .dependencies = SC_LIST_OF(&deps[c % 2], 1)};
        assert_null(post_routed(h, &conns[c], route_of[c], &started, 0));
        assert_null(post_routed(h, &conns[c], route_of[c], &loaded, 0));
    }
    sc_tel_hub_process(h, 0, false);
    assert_int_equal(s.n, 2);
    const char *runtime_ids[2];
    for (size_t i = 0; i < 2; i++) {
        const cJSON *b = s.bodies[i];
        int agent = s.routes[i] == &agent_a ? 0 : 1;
        assert_true(s.routes[i] == &agent_a || s.routes[i] == &agent_b);
        assert_true(s.routes[0] != s.routes[1]);
        assert_string_equal(type_of(b), "message-batch");
        assert_int_equal(seq_of(b), 1);
        runtime_ids[i] = cJSON_GetObjectItem(b, "runtime_id")->valuestring;
        const cJSON *items = cJSON_GetObjectItem(b, "payload");
        assert_int_equal(cJSON_GetArraySize(items), 2);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "request_type")
                ->valuestring,
            "app-started");
        const cJSON *dl = cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "payload"),
            "dependencies");
        assert_int_equal(cJSON_GetArraySize(dl), 1);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetArrayItem(dl, 0), "name")->valuestring,
            agent == 0 ? "dep-a" : "dep-b");
    }
    assert_string_not_equal(runtime_ids[0], runtime_ids[1]);
    sc_tel_stats_t st;
    sc_tel_hub_stats(h, &st);
    assert_int_equal(st.applications, 2);
    assert_int_equal(st.app_started_joined, 2);
    sink_clear(&s);
    sc_tel_hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_app_started_and_batch_order),
        cmocka_unit_test(test_heartbeat_closing_and_restart),
        cmocka_unit_test(test_integration_last_state),
        cmocka_unit_test(test_rules_switch_and_limits),
        cmocka_unit_test(test_logs_counted_together),
        cmocka_unit_test(test_metrics_until_heartbeat),
        cmocka_unit_test(test_one_app_per_agent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
