/* Stop requests for the `sidecar run` daemon. Windows has no signal one
 * process can send another: a named event per process,
 * "Local\sidecar-stop-<pid>", that sc_plat_request_stop() sets, plus
 * Ctrl+C / Ctrl+Break when there is a console. */
#include "win32_internal.h"

#include <stdio.h>
#include <stdlib.h>

struct sc_plat_stop_watch {
    uv_signal_t sigint, sigbreak;
    uv_async_t async;
    HANDLE event, wait;
    void (*on_stop)(void *arg);
    void *arg;
    int open_handles;
};

static int event_name(uint32_t pid, WCHAR *out, size_t count)
{
    char name[64];
    snprintf(name, sizeof name, "Local\\sidecar-stop-%u", (unsigned)pid);
    return win32_widen(name, out, count);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    sc_plat_stop_watch_t *w = sig->data;
    w->on_stop(w->arg);
}

static void on_async(uv_async_t *a)
{
    sc_plat_stop_watch_t *w = a->data;
    w->on_stop(w->arg);
}

/* A thread-pool thread: only uv_async_send may touch the loop. */
static void CALLBACK on_event(void *ctx, BOOLEAN timed_out)
{
    (void)timed_out;
    sc_plat_stop_watch_t *w = ctx;
    uv_async_send(&w->async);
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
    uv_signal_init(loop, &w->sigint);
    uv_signal_init(loop, &w->sigbreak);
    uv_async_init(loop, &w->async, on_async);
    w->sigint.data = w->sigbreak.data = w->async.data = w;
    w->open_handles = 3;
    /* Console signals are a convenience: without a console they never
     * come, and a failure to watch them is not fatal. */
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sigbreak, on_signal, SIGBREAK);
    WCHAR name[64];
    int rc = event_name(GetCurrentProcessId(), name, 64);
    if (rc == 0) {
        w->event = win32_private_event(name);
        rc = w->event != NULL ? 0 : win32_error(GetLastError());
    }
    if (rc == 0 && !RegisterWaitForSingleObject(&w->wait, w->event, on_event, w,
                                                INFINITE, WT_EXECUTEONLYONCE)) {
        rc = win32_error(GetLastError());
        w->wait = NULL;
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
    if (w == NULL) {
        return;
    }
    if (w->wait != NULL) {
        /* Waits for a running callback: none can touch `w` afterwards. */
        UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
    }
    if (w->event != NULL) {
        CloseHandle(w->event);
    }
    uv_close((uv_handle_t *)&w->sigint, on_closed);
    uv_close((uv_handle_t *)&w->sigbreak, on_closed);
    uv_close((uv_handle_t *)&w->async, on_closed);
}

int sc_plat_request_stop(uint32_t pid)
{
    WCHAR name[64];
    int rc = event_name(pid, name, 64);
    if (rc != 0) {
        return rc;
    }
    HANDLE event = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
    if (event == NULL) {
        DWORD err = GetLastError();
        return err == ERROR_FILE_NOT_FOUND ? UV_ESRCH : win32_error(err);
    }
    rc = SetEvent(event) ? 0 : win32_error(GetLastError());
    CloseHandle(event);
    return rc;
}
