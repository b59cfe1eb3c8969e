#include "listener_thread.h"

#include "fd_registry.h"
#include "log.h"
#include "platform.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* start_status while the thread has not said how its start went. */
#define STARTING 1

struct sc_listener_thread {
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t stop_async;
    sc_daemon_options_t opt;
    sc_daemon_t *daemon;
    atomic_int start_status; /* STARTING, then 0 or the error */
    uv_sem_t started;
    uv_mutex_t lock;
    uv_cond_t ended_cond;
    bool ended;
    bool abandoned; /* stop timed out: the thread frees itself */
    /* What a fork child must close. Atomic: a child may be forked while
     * the thread is still starting. */
    _Atomic int64_t listen_fd;
    sc_fd_registry_t *conn_fds; /* the server's accepted connections */
};

static void free_thread(sc_listener_thread_t *t)
{
    sc_fd_registry_free(t->conn_fds);
    uv_mutex_destroy(&t->lock);
    uv_cond_destroy(&t->ended_cond);
    uv_sem_destroy(&t->started);
    free(t);
}

static void on_daemon_done(void *arg)
{
    sc_listener_thread_t *t = arg;
    uv_close((uv_handle_t *)&t->stop_async, NULL);
}

static void on_stop(uv_async_t *a)
{
    sc_listener_thread_t *t = a->data;
    sc_daemon_stop(t->daemon, on_daemon_done, t);
}

/* Idle exit and the watchdog are subprocess-mode features; a listener
 * thread never stops on its own, but handles the request the same way. */
static void on_self_stop(void *arg, const char *why)
{
    sc_listener_thread_t *t = arg;
    sc_log(SC_LOG_WARN, "listener thread stopping: %s", why);
    sc_daemon_stop(t->daemon, on_daemon_done, t);
}

static void thread_main(void *arg)
{
    sc_listener_thread_t *t = arg;
    uv_loop_init(&t->loop);
    uv_async_init(&t->loop, &t->stop_async, on_stop);
    t->stop_async.data = t;
    t->opt.on_self_stop = on_self_stop;
    t->opt.arg = t;
    int rc = sc_daemon_start(&t->loop, &t->opt, &t->daemon);
    if (rc == 0) {
        /* Recorded for the fork child (sc_listener_thread_abandon_in_child). */
        atomic_store(&t->listen_fd,
                     sc_server_listen_fd(sc_daemon_server(t->daemon)));
        char agent[SC_AGENT_URL_MAX + 16];
        sc_agent_addr_describe(&t->opt.flusher.agent, agent, sizeof agent);
        sc_log_banner("thread", t->opt.endpoint, agent);
    } else {
        /* A handed-in socket was closed by the failed start. */
        atomic_store(&t->listen_fd, -1);
        sc_log(SC_LOG_ERROR, "listener thread on %s failed to start: %s",
               t->opt.endpoint, uv_strerror(rc));
        uv_close((uv_handle_t *)&t->stop_async, NULL);
    }
    atomic_store(&t->start_status, rc);
    uv_sem_post(&t->started);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    sc_daemon_free(t->daemon);
    uv_loop_close(&t->loop);
    uv_mutex_lock(&t->lock);
    t->ended = true;
    bool self_free = t->abandoned;
    uv_cond_signal(&t->ended_cond);
    uv_mutex_unlock(&t->lock);
    if (self_free) {
        free_thread(t);
    }
}

/* Waits until the thread has said how its start went. The token goes
 * back, so any number of waits (from any thread) return at once after. */
static int await_start(sc_listener_thread_t *t)
{
    if (atomic_load(&t->start_status) == STARTING) {
        uv_sem_wait(&t->started);
        uv_sem_post(&t->started);
    }
    return atomic_load(&t->start_status);
}

int sc_listener_thread_wait_started(sc_listener_thread_t *t)
{
    return await_start(t);
}

static void reap_failed(sc_listener_thread_t *t)
{
    uv_thread_join(&t->thread);
    free_thread(t);
}

int sc_listener_thread_start(const sc_daemon_options_t *o,
                             sc_listener_thread_t **out)
{
    sc_listener_thread_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        if (o->listen_handle >= 0) {
            sc_plat_close_raw(o->listen_handle);
        }
        return UV_ENOMEM;
    }
    t->opt = *o;
    t->conn_fds = sc_fd_registry_new(o->server.max_connections);
    t->opt.server.conn_fds = t->conn_fds; /* NULL: children keep them */
    atomic_init(&t->listen_fd, o->listen_handle >= 0 ? o->listen_handle : -1);
    atomic_init(&t->start_status, STARTING);
    uv_sem_init(&t->started, 0);
    uv_mutex_init(&t->lock);
    uv_cond_init(&t->ended_cond);
    int rc = sc_plat_thread_create(&t->thread, thread_main, t);
    if (rc != 0) {
        if (o->listen_handle >= 0) {
            sc_plat_close_raw(o->listen_handle);
        }
        free_thread(t);
        return rc;
    }
    /* A bound, listening socket already queues connections: clients can
     * write while the thread starts, so only a thread that binds itself is
     * waited for. */
    if (o->listen_handle < 0) {
        rc = await_start(t);
        if (rc != 0) {
            reap_failed(t);
            return rc;
        }
    }
    *out = t;
    return 0;
}

int sc_listener_thread_status(const sc_listener_thread_t *t)
{
    int rc = atomic_load(&t->start_status);
    return rc == STARTING ? 0 : rc;
}

int sc_listener_thread_stop(sc_listener_thread_t *t, uint32_t timeout_ms)
{
    if (await_start(t) != 0) {
        reap_failed(t); /* it has ended already */
        return 0;
    }
    uv_async_send(&t->stop_async);
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    uv_mutex_lock(&t->lock);
    while (!t->ended) {
        uint64_t now = uv_hrtime();
        if (now >= deadline ||
            uv_cond_timedwait(&t->ended_cond, &t->lock, deadline - now) != 0) {
            if (!t->ended) {
                t->abandoned = true;
                uv_mutex_unlock(&t->lock);
                return UV_ETIMEDOUT;
            }
        }
    }
    uv_mutex_unlock(&t->lock);
    uv_thread_join(&t->thread);
    free_thread(t);
    return 0;
}

void sc_listener_thread_abandon_in_child(sc_listener_thread_t *t)
{
    int64_t fd = t != NULL ? atomic_load(&t->listen_fd) : -1;
    if (fd >= 0) {
        sc_plat_close_raw(fd);
    }
    if (t != NULL) {
        sc_fd_registry_close_all(t->conn_fds);
    }
}
