/* The sidecar's metrics pipeline: Metric actions -> aggregator (metrics.c)
 * -> DogStatsD lines -> datagrams (dogstatsd.c), on the daemon's loop. */
#include "metrics_daemon.h"

#include "env.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc_metrics_daemon {
    uv_loop_t *loop;
    sc_metrics_config_t cfg;
    sc_metrics_t *agg;
    sc_dogstatsd_t *statsd;
    uv_timer_t timer;
    uint64_t flushes;
    void (*on_drain)(void *ctx, sc_metrics_daemon_t *md);
    void *on_drain_ctx;
    unsigned pending; /* timer and sender not yet closed */
    void (*done)(void *arg);
    void *done_arg;
};

void sc_metrics_config_defaults(sc_metrics_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    sc_dogstatsd_config_defaults(&cfg->statsd);
    cfg->flush_interval_ms = 10000;
    cfg->max_contexts = 4096;
    cfg->max_values = 65536;
}

/* A positive decimal from the environment into *out; UV_EINVAL (logged)
 * when set but not one, `*out` unchanged. */
static int env_count(const char *name, uint64_t max, uint64_t *out)
{
    char buf[32];
    if (sc_env(name, buf, sizeof buf) == NULL) {
        return 0;
    }
    char *end = NULL;
    unsigned long long n = strtoull(buf, &end, 10);
    if (*end != '\0' || buf[0] == '-' || n == 0 || n > max) {
        sc_log(SC_LOG_WARN, "ignoring %s=%s (a number from 1 to %llu)", name,
               buf, (unsigned long long)max);
        return UV_EINVAL;
    }
    *out = n;
    return 0;
}

int sc_metrics_config_from_env(sc_metrics_config_t *cfg)
{
    int rc = sc_dogstatsd_config_from_env(&cfg->statsd);
    uint64_t interval = cfg->flush_interval_ms, contexts = cfg->max_contexts,
             values = cfg->max_values;
    if (env_count("DD_TRACE_SIDECAR_METRICS_FLUSH_INTERVAL", UINT32_MAX,
                  &interval) != 0 ||
        env_count("DD_TRACE_SIDECAR_METRICS_MAX_CONTEXTS", 1u << 20,
                  &contexts) != 0 ||
        env_count("DD_TRACE_SIDECAR_METRICS_MAX_VALUES", 1u << 24, &values) !=
            0) {
        rc = UV_EINVAL;
    }
    cfg->flush_interval_ms = (uint32_t)interval;
    cfg->max_contexts = (size_t)contexts;
    cfg->max_values = (size_t)values;
    char flag[16];
    const char *v = sc_env("DD_TRACE_SIDECAR_SELF_METRICS", flag, sizeof flag);
    if (v != NULL && !sc_env_bool(v, &cfg->self_metrics)) {
        rc = sc_env_invalid("DD_TRACE_SIDECAR_SELF_METRICS", v);
    }
    return rc;
}

static void on_timer(uv_timer_t *t)
{
    sc_metrics_daemon_flush(t->data);
}

int sc_metrics_daemon_new(uv_loop_t *loop, const sc_metrics_config_t *cfg,
                          sc_metrics_daemon_t **out)
{
    sc_metrics_daemon_t *md = calloc(1, sizeof *md);
    if (md == NULL) {
        return UV_ENOMEM;
    }
    md->loop = loop;
    md->cfg = *cfg;
    sc_metrics_limits_t limits = {cfg->max_contexts, cfg->max_values};
    md->agg = sc_metrics_new(&limits);
    int rc = md->agg != NULL ? 0 : UV_ENOMEM;
    if (rc == 0) {
        rc = sc_dogstatsd_new(loop, &cfg->statsd, &md->statsd);
    }
    if (rc != 0) {
        sc_metrics_free(md->agg);
        free(md);
        return rc;
    }
    uv_timer_init(loop, &md->timer);
    md->timer.data = md;
    uv_timer_start(&md->timer, on_timer, cfg->flush_interval_ms,
                   cfg->flush_interval_ms);
    uv_unref((uv_handle_t *)&md->timer); /* never keeps a loop alive */
    *out = md;
    return 0;
}

const char *sc_metrics_daemon_add(sc_metrics_daemon_t *md,
                                  const sidecar_v1_Metric *m)
{
    sc_metric_point_t p = {
        .type = (int)m->type,
        .name = m->name,
        .value = m->value,
        .tags = m->tags,
        .has_rate = m->has_sample_rate,
        .rate = m->sample_rate,
        .member = m->set_member,
    };
    const char *why = sc_metric_check(&p);
    if (why == NULL) {
        sc_metrics_add(md->agg, &p); /* a drop is counted there */
    }
    return why;
}

static void send_datagram(void *ctx, const char *d, size_t len, size_t lines)
{
    sc_dogstatsd_send(ctx, d, len, lines);
}

static void pack_line(void *ctx, const char *line, size_t len)
{
    sc_dgram_packer_add(ctx, line, len);
}

void sc_metrics_daemon_on_drain(sc_metrics_daemon_t *md,
                                void (*fn)(void *ctx, sc_metrics_daemon_t *md),
                                void *ctx)
{
    md->on_drain = fn;
    md->on_drain_ctx = ctx;
}

void sc_metrics_daemon_flush(sc_metrics_daemon_t *md)
{
    if (md->on_drain != NULL) {
        md->on_drain(md->on_drain_ctx, md);
    }
    sc_metrics_stats_t st;
    sc_metrics_stats(md->agg, &st);
    if (st.contexts == 0) {
        return;
    }
    size_t size = sc_dogstatsd_datagram_size(&md->cfg.statsd);
    sc_dgram_packer_t packer;
    if (!sc_dgram_packer_init(&packer, size, send_datagram, md->statsd)) {
        return; /* kept for the next interval */
    }
    md->flushes++;
    sc_metrics_drain(md->agg, md->cfg.flush_interval_ms / 1000.0, size,
                     pack_line, &packer);
    sc_dgram_packer_flush(&packer);
    sc_dogstatsd_count_too_large(md->statsd, packer.too_large);
    sc_dgram_packer_free(&packer);
}

void sc_metrics_daemon_report(const sc_metrics_daemon_t *md,
                              sc_metrics_report_t *out)
{
    memset(out, 0, sizeof *out);
    sc_dogstatsd_describe(&md->cfg.statsd, out->destination,
                          sizeof out->destination);
    out->flush_interval_ms = md->cfg.flush_interval_ms;
    out->max_contexts = md->cfg.max_contexts;
    out->max_values = md->cfg.max_values;
    out->datagram_bytes = sc_dogstatsd_datagram_size(&md->cfg.statsd);
    out->flushes = md->flushes;
    sc_metrics_stats(md->agg, &out->agg);
    sc_dogstatsd_stats(md->statsd, &out->sent);
}

static void one_closed(sc_metrics_daemon_t *md)
{
    if (--md->pending == 0) {
        void (*done)(void *) = md->done;
        void *arg = md->done_arg;
        sc_metrics_free(md->agg);
        free(md);
        if (done != NULL) {
            done(arg);
        }
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

static void on_sender_closed(void *arg)
{
    one_closed(arg);
}

void sc_metrics_daemon_close(sc_metrics_daemon_t *md, void (*done)(void *arg),
                             void *arg)
{
    sc_metrics_daemon_flush(md);
    md->done = done;
    md->done_arg = arg;
    md->pending = 2;
    uv_close((uv_handle_t *)&md->timer, on_timer_closed);
    sc_dogstatsd_close(md->statsd, on_sender_closed, md);
}
