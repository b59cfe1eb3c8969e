#include "daemon.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

#define WATCHDOG_INTERVAL_MS 1000

struct sc_daemon {
    uv_loop_t *loop;
    sc_daemon_options_t opt;
    sc_server_t *server;
    uv_timer_t watchdog;
    bool watchdog_on;
    bool stopping;
    int pending_closes;
    void (*done)(void *arg);
    void *done_arg;
};

void sc_daemon_options_defaults(sc_daemon_options_t *o)
{
    memset(o, 0, sizeof *o);
    sc_server_config_defaults(&o->server);
    o->listen_handle = -1;
}

sc_server_t *sc_daemon_server(sc_daemon_t *d)
{
    return d->server;
}

static void self_stop(sc_daemon_t *d, const char *why)
{
    if (d->stopping) {
        return;
    }
    sc_log(SC_LOG_INFO, "stopping: %s", why);
    if (d->opt.on_self_stop != NULL) {
        d->opt.on_self_stop(d->opt.arg, why);
    } else {
        sc_daemon_stop(d, NULL, NULL);
    }
}

static void on_idle(void *ctx)
{
    self_stop(ctx, "idle timeout with no connections");
}

/* Subprocess mode only: past the RSS cap the daemon exits after its final
 * flush, and the next client starts a fresh one. */
static void on_watchdog(uv_timer_t *t)
{
    sc_daemon_t *d = t->data;
    size_t rss = 0;
    if (uv_resident_set_memory(&rss) == 0 && rss > d->opt.rss_cap) {
        sc_log(SC_LOG_ERROR, "watchdog: RSS %zu bytes exceeds the cap of %zu",
               rss, d->opt.rss_cap);
        self_stop(d, "watchdog: memory cap exceeded");
    }
}

int sc_daemon_start(uv_loop_t *loop, const sc_daemon_options_t *o,
                    sc_daemon_t **out)
{
    sc_daemon_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return UV_ENOMEM;
    }
    d->loop = loop;
    d->opt = *o;
    sc_server_handlers_t h = {.ctx = d, .on_idle = on_idle};
    d->server = sc_server_new(loop, &o->server, &h);
    if (d->server == NULL) {
        free(d);
        return UV_ENOMEM;
    }
    int rc =
        o->listen_handle >= 0
            ? sc_server_listen_handle(d->server, o->listen_handle, o->endpoint)
            : sc_server_listen(d->server, o->endpoint);
    if (rc != 0) {
        d->stopping = true;
        sc_server_close(d->server, NULL, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* let the closes finish */
        sc_server_free(d->server);
        free(d);
        return rc;
    }
    if (o->rss_cap > 0) {
        uv_timer_init(loop, &d->watchdog);
        d->watchdog.data = d;
        uv_timer_start(&d->watchdog, on_watchdog, WATCHDOG_INTERVAL_MS,
                       WATCHDOG_INTERVAL_MS);
        d->watchdog_on = true;
    }
    *out = d;
    return 0;
}

static void one_closed(sc_daemon_t *d)
{
    if (--d->pending_closes == 0 && d->done != NULL) {
        d->done(d->done_arg);
    }
}

static void on_server_closed(void *arg)
{
    one_closed(arg);
}

static void on_watchdog_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

void sc_daemon_stop(sc_daemon_t *d, void (*done)(void *arg), void *arg)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    d->done = done;
    d->done_arg = arg;
    d->pending_closes = 1;
    if (d->watchdog_on) {
        d->pending_closes++;
        uv_close((uv_handle_t *)&d->watchdog, on_watchdog_closed);
    }
    sc_server_close(d->server, on_server_closed, d);
}

void sc_daemon_free(sc_daemon_t *d)
{
    if (d != NULL) {
        sc_server_free(d->server);
        free(d);
    }
}
