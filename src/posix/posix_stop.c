/* Stop requests for the `sidecar run` daemon: SIGINT and SIGTERM. */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>

struct sc_plat_stop_watch {
    uv_signal_t sigint, sigterm;
    void (*on_stop)(void *arg);
    void *arg;
    int open_handles;
};

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    sc_plat_stop_watch_t *w = sig->data;
    w->on_stop(w->arg);
}

int sc_plat_stop_watch_start(uv_loop_t *loop, void (*on_stop)(void *arg),
                             void *arg, sc_plat_stop_watch_t **out)
{
    sc_plat_stop_watch_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->on_stop = on_stop;
    w->arg = arg;
    signal(SIGPIPE, SIG_IGN); /* the process is ours: see platform.h */
    uv_signal_init(loop, &w->sigint);
    uv_signal_init(loop, &w->sigterm);
    w->open_handles = 2;
    w->sigint.data = w->sigterm.data = w;
    int rc = uv_signal_start(&w->sigint, on_signal, SIGINT);
    if (rc == 0) {
        rc = uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    }
    if (rc != 0) {
        sc_plat_stop_watch_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    sc_plat_stop_watch_t *w = h->data;
    if (--w->open_handles == 0) {
        free(w);
    }
}

void sc_plat_stop_watch_close(sc_plat_stop_watch_t *w)
{
    if (w != NULL) {
        uv_close((uv_handle_t *)&w->sigint, on_closed);
        uv_close((uv_handle_t *)&w->sigterm, on_closed);
    }
}

int sc_plat_request_stop(uint32_t pid)
{
    return kill((pid_t)pid, SIGTERM) == 0 ? 0 : -errno;
}
