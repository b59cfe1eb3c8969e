/* The flusher against a real HTTP intake (tests/intake/intake.py).
 *
 *     test_flusher <scenario> <agent-url>
 *
 * Runs one scenario on a real libuv loop with the real flusher and libcurl,
 * checks the flusher's own accounting (exit 1 on a failed check), and
 * prints a JSON report on stdout for tests/integration/flusher_check.py,
 * which started the intake, told it how to misbehave, and now checks what
 * it received against the report with an independent msgpack decoder. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "flusher.h"
#include "stats.h"
#include "json.h"
#include "msgpack.h"

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__,   \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

#define NUM_CLIENTS 4

typedef struct run run_t;

typedef struct scenario {
    const char *name;
    void (*configure)(sc_flusher_config_t *cfg);
    /* Called every millisecond until it returns true. */
    bool (*produce)(run_t *r);
    uint32_t close_deadline_ms;
    /* Checks on the final state, inside the close callback. */
    void (*final)(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s);
} scenario_t;

struct run {
    const scenario_t *sc;
    uv_loop_t loop;
    sc_flusher_t *f;
    sc_flusher_config_t cfg;
    uv_timer_t tick;
    unsigned ticks;
    unsigned info_wait;
    uint64_t submitted;
    uint64_t next_trace_id;
    uint64_t next_evp;
    sc_buf_t expected_ids;       /* JSON numbers, comma separated */
    sc_buf_t evp[SC_DEST_COUNT]; /* JSON strings, comma separated */
    int barrier_status[2];
    int barriers_done;
    bool second_barrier;
    bool closed;
    sc_buf_t report_stats;
    char rates[256];
    bool info_valid, info_has_traces;
};

static uint32_t rng = 0x9e3779b9u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return n > 0 ? rng % n : 0;
}

/* ---- payloads ---------------------------------------------------------- */

static char lang_versions[NUM_CLIENTS][16];
static char tracer_versions[NUM_CLIENTS][16];

static sc_trace_meta_t client_meta(int client)
{
    snprintf(lang_versions[client], sizeof lang_versions[client], "8.2.%d",
             client);
    snprintf(tracer_versions[client], sizeof tracer_versions[client], "1.%d.0",
             client);
    sc_trace_meta_t m = {sc_view_str("php"), sc_view_str(lang_versions[client]),
                         sc_view_str(tracer_versions[client])};
    return m;
}

static void put_kv_str(sc_buf_t *b, const char *k, const char *v, size_t n)
{
    sc_msgpack_put_str(b, k, strlen(k));
    sc_msgpack_put_str(b, v, n);
}

static void put_kv_uint(sc_buf_t *b, const char *k, uint64_t v)
{
    sc_msgpack_put_str(b, k, strlen(k));
    sc_msgpack_put_uint(b, v);
}

/* A payload of `traces` traces of `spans` spans. Each span's meta repeats
 * the client's versions, so the checker can match them with the headers
 * of the request that carried it; `pad` bytes make it bigger. The trace ids
 * go to the expected list when `expect`. */
static void make_payload(run_t *r, sc_buf_t *b, int client, uint32_t traces,
                         uint32_t spans, size_t pad, bool expect)
{
    static char *padding;
    static size_t padding_len;
    if (pad > padding_len) {
        free(padding);
        padding = malloc(pad);
        if (padding == NULL) {
            abort();
        }
        memset(padding, 'p', pad);
        padding_len = pad;
    }
    sc_buf_reset(b);
    sc_msgpack_put_array(b, traces);
    for (uint32_t t = 0; t < traces; t++) {
        uint64_t id = ++r->next_trace_id;
        if (expect) {
            char num[24];
            snprintf(num, sizeof num, "%s%" PRIu64,
                     r->expected_ids.len > 0 ? "," : "", id);
            sc_buf_append_str(&r->expected_ids, num);
        }
        sc_msgpack_put_array(b, spans);
        for (uint32_t s = 0; s < spans; s++) {
            sc_msgpack_put_map(b, 8);
            put_kv_uint(b, "trace_id", id);
            put_kv_uint(b, "span_id", id * 16 + s);
            put_kv_uint(b, "parent_id", s == 0 ? 0 : id * 16);
            put_kv_str(b, "name", "web.request", 11);
            put_kv_str(b, "service", "svc", 3);
            put_kv_uint(b, "start", 1700000000000000000ull + id);
            put_kv_uint(b, "duration", 1000 + s);
            sc_msgpack_put_str(b, "meta", 4);
            sc_msgpack_put_map(b, 3);
            put_kv_str(b, "lang_version", lang_versions[client],
                       strlen(lang_versions[client]));
            put_kv_str(b, "tracer_version", tracer_versions[client],
                       strlen(tracer_versions[client]));
            put_kv_str(b, "pad", padding, s == 0 ? pad : 0);
        }
    }
}

static sc_buf_t payload;

/* Submits one generated payload; `want` is the expected result. */
static void submit_traces(run_t *r, int client, uint32_t traces, uint32_t spans,
                          size_t pad, int want)
{
    sc_trace_meta_t meta = client_meta(client);
    make_payload(r, &payload, client, traces, spans, pad, want == 0);
    int rc = sc_flusher_submit_traces(r->f, &meta, payload.data, payload.len,
                                      traces);
    CHECK(rc == want, "submit returned %d, wanted %d", rc, want);
    r->submitted++;
}

static void submit_evp(run_t *r, sc_dest_t dest, size_t pad)
{
    sc_buf_t body = {0};
    sc_json_t j;
    sc_json_init(&j, &body);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "n");
    sc_json_uint64(&j, ++r->next_evp);
    sc_json_key_str(&j, "kind");
    sc_json_string(&j, sc_dest_name(dest), strlen(sc_dest_name(dest)));
    char *pad_text = calloc(1, pad + 1);
    memset(pad_text, 'e', pad);
    sc_json_key_str(&j, "pad");
    sc_json_string(&j, pad_text, pad);
    free(pad_text);
    sc_json_object_end(&j);
    int rc = sc_flusher_submit_evp(r->f, dest, body.data, body.len, 1);
    CHECK(rc == 0, "submit_evp returned %d", rc);
    /* The report lists each body as a JSON string. */
    sc_buf_t *list = &r->evp[dest];
    if (list->len > 0) {
        sc_buf_append_str(list, ",");
    }
    sc_json_t l;
    sc_json_init(&l, list);
    sc_json_string(&l, body.data, body.len);
    sc_buf_free(&body);
}

/* ---- checks shared by scenarios ---------------------------------------- */

/* submitted = delivered + dropped + buffered, for payloads and traces. */
static void check_conservation(const sc_flusher_stats_t *s)
{
    for (int d = 0; d < SC_DEST_COUNT; d++) {
        const sc_dest_stats_t *x = &s->dest[d];
        uint64_t dropped_p = 0, dropped_t = 0;
        for (int why = 0; why < SC_DROP_REASON_COUNT; why++) {
            dropped_p += x->drops[why].payloads;
            dropped_t += x->drops[why].traces;
        }
        CHECK(x->submitted_payloads ==
                  x->delivered_payloads + dropped_p + x->buffered_payloads,
              "%s payloads: %" PRIu64 " submitted, %" PRIu64
              " delivered, %" PRIu64 " dropped, %" PRIu64 " buffered",
              sc_dest_name((sc_dest_t)d), x->submitted_payloads,
              x->delivered_payloads, dropped_p, x->buffered_payloads);
        CHECK(x->submitted_traces ==
                  x->delivered_traces + dropped_t + x->buffered_traces,
              "%s traces", sc_dest_name((sc_dest_t)d));
    }
}

static uint64_t total_drops(const sc_dest_stats_t *x)
{
    uint64_t n = 0;
    for (int why = 0; why < SC_DROP_REASON_COUNT; why++) {
        n += x->drops[why].payloads;
    }
    return n;
}

/* Everything submitted was delivered: nothing dropped or left. */
static void check_all_delivered(const sc_flusher_stats_t *s)
{
    for (int d = 0; d < SC_DEST_COUNT; d++) {
        const sc_dest_stats_t *x = &s->dest[d];
        CHECK(total_drops(x) == 0, "%s: %" PRIu64 " drops",
              sc_dest_name((sc_dest_t)d), total_drops(x));
        CHECK(x->delivered_payloads == x->submitted_payloads,
              "%s: %" PRIu64 " of %" PRIu64 " delivered",
              sc_dest_name((sc_dest_t)d), x->delivered_payloads,
              x->submitted_payloads);
        CHECK(x->buffered_bytes == 0, "%s still buffers bytes",
              sc_dest_name((sc_dest_t)d));
    }
}

/* /info was read, and (after trace deliveries) the agent's rates kept. */
static void check_agent_state(run_t *r, bool rates)
{
    CHECK(r->info_valid, "no /info answer was parsed");
    CHECK(r->info_has_traces, "/info endpoints lack /v0.4/traces");
    if (rates) {
        CHECK(strcmp(r->rates, "{\"service:,env:\":1}") == 0, "rates are '%s'",
              r->rates);
    }
}

/* ---- scenarios ----------------------------------------------------------- */

/* Many payloads from several clients, a body close to 10 MiB and one over
 * it: merged per meta, cut at 1 MiB, never a body over 10 MiB. */
static bool produce_merge(run_t *r)
{
    for (int i = 0; i < 2 && r->submitted < 3000; i++) {
        int client = (int)rnd(NUM_CLIENTS);
        submit_traces(r, client, 1 + rnd(4), 1 + rnd(3), rnd(2000), 0);
        if (r->submitted == 1500) {
            submit_traces(r, 0, 1, 1, (size_t)(9.5 * 1048576), 0);
            submit_traces(r, 1, 1, 1, 10u << 20, UV_E2BIG);
        }
    }
    return r->submitted >= 3000;
}

static void final_merge(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s)
{
    (void)f;
    const sc_dest_stats_t *t = &s->dest[SC_DEST_TRACES];
    CHECK(t->drops[SC_DROP_TOO_LARGE].payloads == 1, "too_large %" PRIu64,
          t->drops[SC_DROP_TOO_LARGE].payloads);
    CHECK(total_drops(t) == 1, "drops %" PRIu64, total_drops(t));
    CHECK(t->delivered_payloads == t->submitted_payloads - 1, "delivered");
    CHECK(t->delivery.failed == 0 && t->delivery.retried == 0, "failures");
    CHECK(t->delivery.ok < t->submitted_payloads / 10,
          "%" PRIu64 " requests for %" PRIu64 " payloads: not merged",
          t->delivery.ok, t->submitted_payloads);
    check_agent_state(r, true);
}

static void configure_retry(sc_flusher_config_t *cfg)
{
    (void)cfg; /* defaults: 5 attempts from 100 ms */
}

static bool produce_some(run_t *r)
{
    for (int i = 0; i < 20; i++) {
        submit_traces(r, i % 2, 1 + rnd(3), 2, rnd(200), 0);
    }
    for (int i = 0; i < 3; i++) {
        submit_evp(r, SC_DEST_FLAGEVALUATIONS, 10);
        submit_evp(r, SC_DEST_EXPOSURES, 10);
    }
    return true;
}

/* The intake answers traces 500 x3, exposures 503 x2, flag evaluations
 * 429 x1 (set by the checker): one retry per failure, then delivery. */
static void final_retry(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s)
{
    (void)r;
    (void)f;
    check_all_delivered(s);
    CHECK(s->dest[SC_DEST_TRACES].delivery.retried == 3,
          "traces retried %" PRIu64, s->dest[SC_DEST_TRACES].delivery.retried);
    CHECK(s->dest[SC_DEST_EXPOSURES].delivery.retried == 2,
          "exposures retried");
    CHECK(s->dest[SC_DEST_FLAGEVALUATIONS].delivery.retried == 1,
          "flagevaluations retried");
}

/* The intake answers 400 to traces and 404 to flag evaluations: dropped as
 * client errors, never retried. */
static void final_client_error(run_t *r, sc_flusher_t *f,
                               const sc_flusher_stats_t *s)
{
    (void)r;
    (void)f;
    const sc_dest_stats_t *t = &s->dest[SC_DEST_TRACES];
    const sc_dest_stats_t *fe = &s->dest[SC_DEST_FLAGEVALUATIONS];
    CHECK(t->delivery.retried == 0 && fe->delivery.retried == 0, "retried");
    CHECK(t->drops[SC_DROP_CLIENT_ERROR_4XX].payloads == t->submitted_payloads,
          "traces client_error_4xx %" PRIu64,
          t->drops[SC_DROP_CLIENT_ERROR_4XX].payloads);
    CHECK(t->drops[SC_DROP_CLIENT_ERROR_4XX].traces == t->submitted_traces,
          "trace count of the drops");
    CHECK(t->delivery.requests == t->delivery.failed, "one request a batch");
    CHECK(fe->drops[SC_DROP_CLIENT_ERROR_4XX].payloads == 3, "flagevals");
    CHECK(s->dest[SC_DEST_EXPOSURES].delivered_payloads == 3, "exposures");
}

static void configure_stall(sc_flusher_config_t *cfg)
{
    cfg->request_timeout_ms = 400;
}

/* The first traces request stalls past the 400 ms timeout: retried. */
static void final_stall(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s)
{
    (void)r;
    (void)f;
    check_all_delivered(s);
    CHECK(s->dest[SC_DEST_TRACES].delivery.retried >= 1, "not retried");
}

static void configure_down(sc_flusher_config_t *cfg)
{
    cfg->cap_bytes[SC_DEST_TRACES] = 256u << 10;
    cfg->cap_bytes[SC_DEST_EXPOSURES] = 16u << 10;
    cfg->trace_flush_bytes = 16u << 10;
    cfg->flush_interval_ms = 50;
    cfg->request_timeout_ms = 500;
}

/* Nobody listens. 1 s of heavy submissions (the caps evict), then 2.5 s of
 * light ones (batches live long enough to exhaust their retries). */
static bool produce_down(run_t *r)
{
    bool heavy = r->ticks < 1000;
    if (heavy || r->ticks % 50 == 0) {
        for (int i = 0; i < (heavy ? 4 : 1); i++) {
            submit_traces(r, (int)rnd(NUM_CLIENTS), 1 + rnd(2), 2,
                          500 + rnd(1500), 0);
        }
        if (r->ticks % 10 == 0) {
            submit_evp(r, SC_DEST_EXPOSURES, 500);
        }
    }
    sc_flusher_stats_t s;
    sc_flusher_get_stats(r->f, &s);
    for (int d = 0; d < SC_DEST_COUNT; d++) {
        CHECK(s.dest[d].buffered_bytes <= r->cfg.cap_bytes[d],
              "%s buffers %" PRIu64 " bytes, cap %zu",
              sc_dest_name((sc_dest_t)d), s.dest[d].buffered_bytes,
              r->cfg.cap_bytes[d]);
    }
    return r->ticks >= 3500;
}

static void final_down(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s)
{
    (void)f;
    const sc_dest_stats_t *t = &s->dest[SC_DEST_TRACES];
    const sc_dest_stats_t *e = &s->dest[SC_DEST_EXPOSURES];
    CHECK(t->delivered_payloads == 0, "delivered with no agent?");
    CHECK(t->drops[SC_DROP_BUFFER_FULL].payloads > 0, "no buffer_full");
    CHECK(t->drops[SC_DROP_RETRIES_EXHAUSTED].payloads > 0,
          "no retries_exhausted");
    CHECK(e->drops[SC_DROP_BUFFER_FULL].payloads > 0, "no exposures evicted");
    CHECK(t->buffered_bytes_max <= r->cfg.cap_bytes[SC_DEST_TRACES], "peak");
    CHECK(t->buffered_bytes == 0 && e->buffered_bytes == 0, "left over");
    CHECK(t->delivery.retried > 0, "no retries");
    CHECK(s->info.failed > 0 && s->info.ok == 0, "/info without agent");
    fprintf(stderr,
            "down: %" PRIu64 " payloads submitted, peak %" PRIu64
            " bytes buffered (cap %zu); dropped buffer_full %" PRIu64
            ", retries_exhausted %" PRIu64 ", shutdown %" PRIu64 "\n",
            t->submitted_payloads, t->buffered_bytes_max,
            r->cfg.cap_bytes[SC_DEST_TRACES],
            t->drops[SC_DROP_BUFFER_FULL].payloads,
            t->drops[SC_DROP_RETRIES_EXHAUSTED].payloads,
            t->drops[SC_DROP_SHUTDOWN].payloads);
}

static bool produce_unix(run_t *r)
{
    for (int i = 0; i < 200; i++) {
        submit_traces(r, i % 2, 1 + rnd(3), 1 + rnd(2), rnd(300), 0);
    }
    submit_evp(r, SC_DEST_EXPOSURES, 100);
    submit_evp(r, SC_DEST_EXPOSURES, 100);
    return true;
}

static void final_delivered(run_t *r, sc_flusher_t *f,
                            const sc_flusher_stats_t *s)
{
    (void)f;
    check_all_delivered(s);
    check_agent_state(r, s->dest[SC_DEST_TRACES].submitted_payloads > 0);
}

/* Payloads that are not one v0.4 array, and bad metadata: rejected and
 * counted; the valid ones around them are delivered. */
static bool produce_reject(run_t *r)
{
    static const uint8_t map_top[] = {0x81, 0xa1, 'k', 0x01};
    static const uint8_t truncated[] = {0x92, 0x91, 0x80};
    static const uint8_t trailing[] = {0x91, 0x91, 0x80, 0xc0};
    static const uint8_t not_span[] = {0x91, 0x91, 0x05};
    static const uint8_t huge[] = {0x91, 0x91, 0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t invalid[] = {0x91, 0x91, 0x81, 0xa1, 'k', 0xc1};
    const struct {
        const uint8_t *p;
        size_t len;
    } bad[] = {
        {map_top, sizeof map_top},
        {truncated, sizeof truncated},
        {trailing, sizeof trailing},
        {not_span, sizeof not_span},
        {huge, sizeof huge},
        {invalid, sizeof invalid},
        {map_top, 0},
    };
    sc_trace_meta_t meta = client_meta(0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        submit_traces(r, 0, 2, 1, 10, 0);
        int rc = sc_flusher_submit_traces(r->f, &meta, bad[i].p, bad[i].len, 1);
        CHECK(rc == UV_EINVAL, "bad payload %zu: %d", i, rc);
        r->submitted++;
    }
    /* A depth bomb: 1 MiB of nested one-element arrays inside a span. */
    sc_buf_t bomb = {0};
    static const uint8_t head[] = {0x91, 0x91, 0x81, 0xa1, 'k'};
    sc_buf_append(&bomb, head, sizeof head);
    sc_buf_reserve(&bomb, 1u << 20);
    memset(bomb.data + bomb.len, 0x91, 1u << 20);
    bomb.len += 1u << 20;
    CHECK(sc_flusher_submit_traces(r->f, &meta, bomb.data, bomb.len, 1) ==
              UV_EINVAL,
          "depth bomb accepted");
    sc_buf_free(&bomb);
    /* A header injection through the metadata. */
    make_payload(r, &payload, 0, 1, 1, 0, false);
    sc_trace_meta_t evil = meta;
    evil.tracer_version = sc_view_str("1.0\r\nX-Evil: 1");
    CHECK(sc_flusher_submit_traces(r->f, &evil, payload.data, payload.len, 1) ==
              UV_EINVAL,
          "header injection accepted");
    return true;
}

static void final_reject(run_t *r, sc_flusher_t *f, const sc_flusher_stats_t *s)
{
    (void)r;
    (void)f;
    const sc_dest_stats_t *t = &s->dest[SC_DEST_TRACES];
    CHECK(t->drops[SC_DROP_REJECTED_PAYLOAD].payloads == 9, "rejected %" PRIu64,
          t->drops[SC_DROP_REJECTED_PAYLOAD].payloads);
    /* Each declared one trace; none parsed: none is counted. */
    CHECK(t->drops[SC_DROP_REJECTED_PAYLOAD].traces == 0,
          "rejected traces %" PRIu64,
          t->drops[SC_DROP_REJECTED_PAYLOAD].traces);
    CHECK(total_drops(t) == 9, "other drops");
    CHECK(t->delivered_payloads == 7, "delivered %" PRIu64,
          t->delivered_payloads);
}

static bool produce_evp(run_t *r)
{
    for (int i = 0; i < 50; i++) {
        submit_evp(r, SC_DEST_FLAGEVALUATIONS, rnd(2000));
        submit_evp(r, SC_DEST_EXPOSURES, rnd(2000));
    }
    return true;
}

static void configure_barrier(sc_flusher_config_t *cfg)
{
    cfg->max_inflight = 1;
    cfg->request_timeout_ms = 5000;
}

static void on_barrier(int status, void *data)
{
    run_t *r = data;
    r->barrier_status[r->barriers_done++] = status;
}

/* The first traces request stalls for 1 s (set by the checker) and only
 * one request may be in flight: a 200 ms barrier times out (the second
 * meta's batch has not started); a 5 s barrier then succeeds.
 * sc_flusher_barrier_reached (a Flush answered at once) says so at each
 * step: with nothing submitted, not while a batch waits, and once all
 * started. */
static bool produce_barrier(run_t *r)
{
    if (r->ticks == 1) {
        CHECK(sc_flusher_barrier_reached(r->f), "nothing submitted yet");
        submit_traces(r, 0, 1, 1, 0, 0);
        submit_traces(r, 1, 1, 1, 0, 0);
        CHECK(!sc_flusher_barrier_reached(r->f),
              "a batch waits for the only request slot");
        CHECK(sc_flusher_barrier(r->f, 200, on_barrier, r) == 0, "barrier");
    }
    if (r->barriers_done == 1 && !r->second_barrier) {
        r->second_barrier = true;
        CHECK(sc_flusher_barrier(r->f, 5000, on_barrier, r) == 0, "barrier");
    }
    if (r->barriers_done == 2) {
        CHECK(sc_flusher_barrier_reached(r->f), "every batch started");
    }
    return r->barriers_done == 2;
}

static void final_barrier(run_t *r, sc_flusher_t *f,
                          const sc_flusher_stats_t *s)
{
    (void)f;
    check_all_delivered(s);
    CHECK(r->barrier_status[0] == UV_ETIMEDOUT, "first barrier: %d",
          r->barrier_status[0]);
    CHECK(r->barrier_status[1] == 0, "second barrier: %d",
          r->barrier_status[1]);
}

static const scenario_t scenarios[] = {
    {"merge", NULL, produce_merge, 20000, final_merge},
    {"retry", configure_retry, produce_some, 20000, final_retry},
    {"client_error", NULL, produce_some, 10000, final_client_error},
    {"stall", configure_stall, produce_some, 20000, final_stall},
    {"down", configure_down, produce_down, 300, final_down},
    {"unix", NULL, produce_unix, 10000, final_delivered},
    {"reject", NULL, produce_reject, 10000, final_reject},
    {"evp", NULL, produce_evp, 10000, final_delivered},
    {"barrier", configure_barrier, produce_barrier, 10000, final_barrier},
};

/* ---- running ------------------------------------------------------------- */

static void on_closed(sc_flusher_t *f, void *data)
{
    run_t *r = data;
    r->closed = true;
    sc_flusher_stats_t s;
    sc_flusher_get_stats(f, &s);
    check_conservation(&s);
    const sc_agent_info_t *info = sc_flusher_agent_info(f);
    r->info_valid = info->valid;
    r->info_has_traces = sc_agent_info_has_endpoint(info, "/v0.4/traces");
    size_t len;
    const char *rates = sc_flusher_rates(f, &len);
    snprintf(r->rates, sizeof r->rates, "%.*s", rates != NULL ? (int)len : 0,
             rates != NULL ? rates : "");
    sc_stats_agent_t agent;
    memset(&agent, 0, sizeof agent);
    const sc_flusher_config_t *cfg = sc_flusher_config(f);
    sc_agent_addr_describe(&cfg->agent, agent.agent, sizeof agent.agent);
    agent.agent_info = info->valid;
    memcpy(agent.cap_bytes, cfg->cap_bytes, sizeof agent.cap_bytes);
    agent.delivery = s;
    CHECK(sc_stats_agent_json(&agent, &r->report_stats), "stats json");
    r->sc->final(r, f, &s);
}

static void on_tick_closed(uv_handle_t *handle)
{
    (void)handle;
}

static void on_tick(uv_timer_t *timer)
{
    run_t *r = timer->data;
    /* Scenarios with an agent start once /info was read (at start). */
    if (strcmp(r->sc->name, "down") != 0 &&
        !sc_flusher_agent_info(r->f)->valid && r->info_wait++ < 5000) {
        return;
    }
    r->ticks++;
    if (r->sc->produce(r)) {
        uv_close((uv_handle_t *)&r->tick, on_tick_closed);
        sc_flusher_close(r->f, r->sc->close_deadline_ms, on_closed, r);
    }
}

static int len_of(const sc_buf_t *b)
{
    return (int)b->len;
}

static const char *text_of(const sc_buf_t *b)
{
    return b->data != NULL ? (const char *)b->data : "";
}

static void print_report(run_t *r)
{
    printf("{\"scenario\":\"%s\",\"failures\":%d,\"submitted\":%" PRIu64
           ",\n\"stats\":%.*s,\n\"expected_trace_ids\":[%.*s]",
           r->sc->name, failures, r->submitted, len_of(&r->report_stats),
           text_of(&r->report_stats), len_of(&r->expected_ids),
           text_of(&r->expected_ids));
    for (int d = SC_DEST_FLAGEVALUATIONS; d < SC_DEST_COUNT; d++) {
        printf(",\n\"%s\":[%.*s]", sc_dest_name((sc_dest_t)d),
               len_of(&r->evp[d]), text_of(&r->evp[d]));
    }
    printf("}\n");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <scenario> <agent-url>\n", argv[0]);
        return 2;
    }
    static run_t run;
    run_t *r = &run;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(scenarios[i].name, argv[1]) == 0) {
            r->sc = &scenarios[i];
        }
    }
    if (r->sc == NULL) {
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
        return 2;
    }
    sc_flusher_config_defaults(&r->cfg);
    if (sc_agent_addr_parse_url(argv[2], &r->cfg.agent) != 0) {
        fprintf(stderr, "bad agent url %s\n", argv[2]);
        return 2;
    }
    if (r->sc->configure != NULL) {
        r->sc->configure(&r->cfg);
    }
    CHECK(uv_loop_init(&r->loop) == 0, "loop");
    CHECK(sc_flusher_new(&r->loop, &r->cfg, &r->f) == 0, "flusher");
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, 1, 1);
    uint64_t start = uv_hrtime();
    uv_run(&r->loop, UV_RUN_DEFAULT);
    double seconds = (double)(uv_hrtime() - start) / 1e9;
    CHECK(r->closed, "close callback never ran");
    /* Every handle of the flusher and of libcurl's glue is closed. */
    CHECK(uv_loop_close(&r->loop) == 0, "uv_loop_close: handles left open");
    fprintf(stderr, "%s: %" PRIu64 " submissions, %.3f s, %d failed checks\n",
            r->sc->name, r->submitted, seconds, failures);
    print_report(r);
    sc_buf_free(&payload);
    return failures == 0 ? 0 : 1;
}
