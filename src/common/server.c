/* Listener, peer admission, lifecycle and stats of the sidecar server. */
#include "server_internal.h"

#include "codec.h"
#include "log.h"
#include "stats.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[SC_ACTION_KIND_COUNT] = {
    "hello",     "session_config", "trace", "flag_evaluations",
    "exposures", "flush",          "ping",  "stats", "drop_report", "metric",
    "telemetry"};

const char *sc_action_kind_name(sc_action_kind_t kind)
{
    return kind < SC_ACTION_KIND_COUNT ? kind_names[kind] : "unknown";
}

void sc_server_config_defaults(sc_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_frame = 4u * 1024 * 1024;
    cfg->max_connections = 4096;
    cfg->max_connections_per_process = 64;
    cfg->frame_timeout_ms = 10000;
    cfg->max_reply_backlog = 1024 * 1024;
    cfg->drain_ms = 200;
    cfg->mode = "subprocess";
}

sc_admission_t sc_server_admission(const sc_server_config_t *cfg, size_t active,
                                   size_t same_process, size_t same_user)
{
    size_t kept = cfg->connections_kept_for_others != 0
                      ? cfg->connections_kept_for_others
                      : cfg->max_connections / 8;
    if (active >= cfg->max_connections) {
        return SC_REFUSE_FULL;
    }
    if (cfg->max_connections_per_process != 0 &&
        same_process >= cfg->max_connections_per_process) {
        return SC_REFUSE_PROCESS;
    }
    /* One user may fill what the others leave, except the kept slots. */
    if (kept < cfg->max_connections &&
        same_user >= cfg->max_connections - kept) {
        return SC_REFUSE_USER;
    }
    return SC_ADMIT;
}

size_t sc_server_reassembly_budget(const sc_server_config_t *cfg)
{
    size_t largest = SC_FRAME_HEADER_SIZE + cfg->max_frame;
    size_t budget =
        cfg->max_reassembly != 0 ? cfg->max_reassembly : 16 * largest;
    /* Two largest frames within the three quarters large reads may use, so
     * that one always fits beside another one stalling. */
    size_t least = (2 * largest + SC_FRAME_READ_CHUNK + 2) / 3 * 4;
    return budget > least ? budget : least;
}

bool sc_server_budget_take(sc_server_t *s, sc_server_conn_t *c, size_t cap)
{
    if (cap <= c->charged) {
        return true;
    }
    size_t more = cap - c->charged;
    /* Reads of a chunk may use it all; growing for a large frame may not
     * use the quarter kept for them. */
    size_t limit = cap <= SC_FRAME_READ_CHUNK ? s->budget : s->budget / 4 * 3;
    if (s->stats.reassembly_bytes + more > limit) {
        return false;
    }
    s->stats.reassembly_bytes += more;
    if (s->stats.reassembly_bytes > s->stats.reassembly_peak) {
        s->stats.reassembly_peak = s->stats.reassembly_bytes;
    }
    c->charged = cap;
    return true;
}

void sc_server_budget_settle(sc_server_t *s, sc_server_conn_t *c)
{
    size_t held = sc_frame_reader_capacity(&c->reader);
    if (held >= c->charged) {
        /* Taken before the read (equal), or more than charged, which the
         * reader never does: counted all the same. */
        s->stats.reassembly_bytes += held - c->charged;
        c->charged = held;
        return;
    }
    s->stats.reassembly_bytes -= c->charged - held;
    c->charged = held;
    if (s->budget_waiters == 0) {
        return;
    }
    /* Everyone waiting tries again; who still does not fit waits again. */
    for (sc_server_conn_t *w = s->conns; w != NULL; w = w->next) {
        if (w->budget_wait && !w->closing) {
            sc_conn_resume(w);
        }
    }
}

static void on_sweep_timer(uv_timer_t *t)
{
    sc_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (sc_server_conn_t *c = s->conns; c != NULL; c = c->next) {
        sc_conn_sweep(c, now);
    }
}

static void handle_closed(uv_handle_t *h)
{
    sc_server_t *s = h->data;
    if (--s->open_handles == 0 && s->close_done != NULL) {
        s->close_done(s->close_arg);
    }
}

static void on_idle_timer(uv_timer_t *t)
{
    sc_server_t *s = t->data;
    if (s->conns == NULL && s->h.on_idle != NULL) {
        s->h.on_idle(s->h.ctx);
    }
}

static void arm_idle_timer(sc_server_t *s)
{
    if (s->cfg.idle_timeout_ms != 0 && s->conns == NULL && !s->closing) {
        uv_timer_start(&s->idle_timer, on_idle_timer, s->cfg.idle_timeout_ms,
                       0);
    }
}

sc_server_t *sc_server_new(uv_loop_t *loop, const sc_server_config_t *cfg,
                           const sc_server_handlers_t *handlers)
{
    sc_server_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->sessions = calloc(1, sizeof *s->sessions)) == NULL) {
        free(s);
        return NULL;
    }
    s->own_sessions = true;
    s->loop = loop;
    s->cfg = *cfg;
    if (handlers != NULL) {
        s->h = *handlers;
    }
    s->started_ms = uv_now(loop);
    s->budget = sc_server_reassembly_budget(&s->cfg);
    uv_timer_init(loop, &s->idle_timer);
    s->idle_timer.data = s;
    uv_timer_init(loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    s->open_handles = 2;
    if (s->cfg.frame_timeout_ms != 0) {
        /* Checked a few times per timeout: a stalled frame is closed
         * between 1 and 1.25 timeouts after it began. */
        uint64_t every = s->cfg.frame_timeout_ms / 4;
        every = every < 10 ? 10 : every > 1000 ? 1000 : every;
        uv_timer_start(&s->sweep_timer, on_sweep_timer, every, every);
        uv_unref((uv_handle_t *)&s->sweep_timer);
    }
    return s;
}

static void reject_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
    sc_server_t *s = listener->data;
    if (status != 0) {
        SC_LOG_LIMITED(SC_LOG_WARN, "accept failed: %s", uv_strerror(status));
        return;
    }
    sc_server_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL || uv_pipe_init(s->loop, &c->pipe, 0) != 0) {
        free(c);
        SC_LOG_LIMITED(SC_LOG_ERROR, "out of memory accepting a connection");
        return;
    }
    c->server = s;
    if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0) {
        uv_close((uv_handle_t *)&c->pipe, reject_closed);
        return;
    }
    int rc = sc_plat_peer(&c->pipe, &c->peer);
    /* Abstract sockets carry no permissions (and Wine ignores pipe DACLs):
     * every peer is checked (docs/transport.md). */
    if (rc != 0 || !sc_access_admits(&s->cfg.access, &c->peer)) {
        s->stats.connections_rejected++;
        SC_LOG_LIMITED(SC_LOG_WARN, "rejected peer pid=%u uid=%u%s%s (%s)",
                       c->peer.pid, c->peer.uid,
                       c->peer.sid[0] != '\0' ? " sid=" : "", c->peer.sid,
                       rc != 0 ? uv_strerror(rc) : "identity not admitted");
        uv_close((uv_handle_t *)&c->pipe, reject_closed);
        return;
    }
    size_t same_process = 0, same_user = 0;
    for (sc_server_conn_t *o = s->conns; o != NULL; o = o->next) {
        same_process += c->peer.pid != 0 && o->peer.pid == c->peer.pid;
        same_user +=
            o->peer.uid == c->peer.uid && strcmp(o->peer.sid, c->peer.sid) == 0;
    }
    sc_admission_t verdict = sc_server_admission(
        &s->cfg, (size_t)s->stats.connections_active, same_process, same_user);
    if (verdict != SC_ADMIT) {
        const char *why = "all connections in use";
        if (verdict == SC_REFUSE_FULL) {
            s->stats.connections_refused++;
        } else if (verdict == SC_REFUSE_PROCESS) {
            s->stats.refused_per_process++;
            why = "its process holds as many connections as one may";
        } else {
            s->stats.refused_per_user++;
            why = "its user holds all connections but those kept for others";
        }
        SC_LOG_LIMITED(SC_LOG_WARN, "refused pid=%u uid=%u: %s", c->peer.pid,
                       c->peer.uid, why);
        uv_close((uv_handle_t *)&c->pipe, reject_closed);
        return;
    }
    s->stats.connections_accepted++;
    s->stats.connections_active++;
    s->open_handles++;
    uv_os_fd_t fd;
    if (s->cfg.conn_fds != NULL &&
        uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0) {
        c->registered_fd = (int64_t)(intptr_t)fd;
        c->fd_registered =
            sc_fd_registry_add(s->cfg.conn_fds, c->registered_fd);
    }
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    uv_timer_stop(&s->idle_timer);
    if (s->h.on_admitted != NULL) {
        s->h.on_admitted(s->h.ctx, c->peer.uid);
    }
    sc_conn_start(c);
}

static void close_connections(sc_server_t *s);

void sc_server_conn_released(sc_server_t *s, sc_server_conn_t *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (s->conns == c) {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->stats.connections_active--;
    if (s->h.on_released != NULL) {
        s->h.on_released(s->h.ctx, c);
    }
    arm_idle_timer(s);
    /* Draining before a close, and the last peer left: no need to wait. */
    if (s->closing && s->conns == NULL &&
        uv_is_active((uv_handle_t *)&s->idle_timer)) {
        uv_timer_stop(&s->idle_timer);
        close_connections(s);
    }
    if (--s->open_handles == 0 && s->close_done != NULL) {
        s->close_done(s->close_arg);
    }
}

/* The configured identities of other users (Windows SIDs) are let in by
 * the endpoint's access control too. A failure is logged and those peers
 * stay outside (refused and counted), but the sidecar serves its own. */
static void allow_configured(sc_server_t *s)
{
    const sc_access_t *a = &s->cfg.access;
    const char *sids[SC_MAX_ALLOWED_SIDS];
    for (size_t i = 0; i < a->allowed_sid_count; i++) {
        sids[i] = a->allowed_sids[i];
    }
    int rc = sc_plat_listen_allow(&s->listener, s->endpoint, sids,
                                  a->allowed_sid_count);
    if (rc == UV_ENOTSUP) {
        sc_log(SC_LOG_WARN,
               "allowed SIDs ignored on %s: this platform "
               "admits other users by uid (allowed_uids)",
               s->endpoint);
    } else if (rc != 0) {
        sc_log(SC_LOG_ERROR, "cannot admit the allowed SIDs on %s: %s",
               s->endpoint, uv_strerror(rc));
    }
}

static int start_listening(sc_server_t *s, const char *endpoint, int64_t handle,
                           bool use_handle)
{
    if (s->listening || strlen(endpoint) >= sizeof s->endpoint) {
        return UV_EINVAL;
    }
    uv_pipe_init(s->loop, &s->listener, 0);
    s->listener.data = s;
    int rc = use_handle
                 ? sc_plat_listen_handle(&s->listener, endpoint, handle,
                                         on_connection)
                 : sc_plat_listen(&s->listener, endpoint, 1024, on_connection);
    s->open_handles++;
    if (rc != 0) {
        uv_close((uv_handle_t *)&s->listener, handle_closed);
        return rc;
    }
    strcpy(s->endpoint, endpoint);
    s->listening = true;
    allow_configured(s);
    arm_idle_timer(s);
    return 0;
}

int sc_server_listen(sc_server_t *s, const char *endpoint)
{
    return start_listening(s, endpoint, 0, false);
}

int sc_server_listen_handle(sc_server_t *s, int64_t handle,
                            const char *endpoint)
{
    return start_listening(s, endpoint, handle, true);
}

static void close_connections(sc_server_t *s)
{
    for (sc_server_conn_t *c = s->conns; c != NULL; c = c->next) {
        sc_conn_close(c);
    }
    uv_close((uv_handle_t *)&s->idle_timer, handle_closed);
    uv_close((uv_handle_t *)&s->sweep_timer, handle_closed);
}

static void on_drained(uv_timer_t *t)
{
    close_connections(t->data);
}

void sc_server_close(sc_server_t *s, void (*done)(void *arg), void *arg)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    s->close_done = done;
    s->close_arg = arg;
    if (s->listening) {
        s->listening = false;
        /* The name goes first, while it is certainly still ours: once the
         * socket is closed, a new sidecar may bind the same name. */
        sc_plat_unlisten(s->endpoint);
        uv_close((uv_handle_t *)&s->listener, handle_closed);
    }
    /* What peers wrote before the stop is still in the sockets: closing at
     * once would lose it without a count. New peers are refused already;
     * connected ones are read for drain_ms more (the loop keeps running),
     * then closed. */
    uv_timer_stop(&s->idle_timer);
    if (s->conns != NULL && s->cfg.drain_ms > 0) {
        uv_timer_start(&s->idle_timer, on_drained, s->cfg.drain_ms, 0);
    } else {
        close_connections(s);
    }
}

int64_t sc_server_listen_fd(sc_server_t *s)
{
    uv_os_fd_t fd;
    if (!s->listening || uv_fileno((uv_handle_t *)&s->listener, &fd) != 0) {
        return -1;
    }
    return (int64_t)(intptr_t)fd;
}

void sc_server_use_sessions(sc_server_t *s, sc_sessions_t *table)
{
    if (s->own_sessions) {
        free(s->sessions);
        s->own_sessions = false;
    }
    s->sessions = table;
}

void sc_server_free(sc_server_t *s)
{
    if (s != NULL && s->own_sessions) {
        free(s->sessions);
    }
    free(s);
}

const sc_server_stats_t *sc_server_stats(const sc_server_t *s)
{
    return &s->stats;
}

void sc_server_stats_json(sc_server_t *s, sc_buf_t *out)
{
    sc_stats_t *st = calloc(1, sizeof *st);
    if (st == NULL) {
        return;
    }
    st->pid = sc_plat_getpid();
    st->version = SIDECAR_VERSION;
    st->mode = s->cfg.mode;
    st->uptime_ms = uv_now(s->loop) - s->started_ms;
    st->server = s->stats;
    st->reassembly_budget = s->budget;
    st->server.sessions_forgotten = s->sessions->forgotten;
    st->has_rss = uv_resident_set_memory(&st->rss_bytes) == 0;
    if (s->h.collect_stats != NULL) {
        s->h.collect_stats(s->h.ctx, st);
    }
    sc_stats_json(st, out);
    free(st);
}
