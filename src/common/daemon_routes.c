/* Routing by agent (docs/delivery.md, "Routing"): one route per agent
 * address, each with its own flusher, flag-evaluation aggregators and
 * shared-state segment. A connection is bound to the route its last valid
 * SessionConfig chose (the default agent until then); what it submitted
 * stays with the route it was bound to when it submitted it, so a session
 * that moves or disconnects leaves its data delivered to its own agent. */
#include "daemon_internal.h"

#include "log.h"
#include "platform.h"

#include <stdlib.h>
#include <string.h>

static bool same_agent(const sc_agent_addr_t *a, const sc_agent_addr_t *b)
{
    return strcmp(a->url, b->url) == 0 &&
           strcmp(a->unix_path, b->unix_path) == 0;
}

/* What the daemon keeps per connection (sc_server_conn_owner_data): its
 * route, and every route it has used (bit i: d->routes[i]), which is what
 * its Flush waits for. NULL until a SessionConfig binds it: the default
 * route only. */
typedef struct sc_session {
    sc_route_t *route;
    uint32_t used;
} sc_session_t;

sc_route_t *sc_daemon_route_of(sc_daemon_t *d, const sc_server_conn_t *conn)
{
    const sc_session_t *s = sc_server_conn_owner_data(conn);
    return s != NULL ? s->route : d->routes[0];
}

uint32_t sc_daemon_routes_used(const sc_server_conn_t *conn)
{
    const sc_session_t *s = sc_server_conn_owner_data(conn);
    return s != NULL ? s->used : 1u;
}

static void publish_info(const sc_agent_info_t *info, void *data)
{
    sc_route_t *r = data;
    if (r->shared != NULL && info->valid) {
        sc_shared_publish_info(r->shared, info->raw_json, info->raw_len);
    }
}

static void publish_rates(const char *json, size_t len, void *data)
{
    sc_route_t *r = data;
    if (r->shared != NULL) {
        sc_shared_publish_rates(r->shared, json, len);
    }
}

/* A new route with its flusher and its segment. */
static sc_route_t *route_new(sc_daemon_t *d, const sc_flusher_config_t *cfg,
                             bool is_default, int *rc)
{
    sc_route_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        *rc = UV_ENOMEM;
        return NULL;
    }
    r->d = d;
    r->is_default = is_default;
    *rc = sc_flusher_new(d->loop, cfg, &r->flusher);
    if (*rc != 0) {
        free(r);
        return NULL;
    }
    /* Shared state is a convenience for readers: without it (no shared
     * memory and no writable temporary directory) the route still
     * delivers. */
    char key[SC_ENDPOINT_MAX + SC_AGENT_URL_MAX + 16];
    sc_shared_key(d->opt.endpoint, is_default ? NULL : &cfg->agent, key,
                  sizeof key);
    int shm_rc = sc_shared_writer_open(key, sc_plat_getpid(), &r->shared);
    if (shm_rc != 0) {
        sc_log(SC_LOG_WARN, "no shared state for %s: %s", key,
               uv_strerror(shm_rc));
    }
    /* The workers' uid, when the default segment was handed to one. */
    uint32_t uid = d->route_count > 0 && d->routes[0]->shared != NULL
                       ? sc_shared_given_to(d->routes[0]->shared)
                       : 0;
    if (r->shared != NULL && uid != 0) {
        sc_shared_give_to(r->shared, uid);
    }
    sc_flusher_hooks_t hooks = {
        .on_agent_info = publish_info, .on_rates = publish_rates, .data = r};
    sc_flusher_set_hooks(r->flusher, &hooks);
    sc_flusher_set_ledger(r->flusher, sc_ledger_held(d->ledger));
    char agent[SC_AGENT_URL_MAX + 8];
    sc_log(SC_LOG_INFO, "delivering to %s%s",
           sc_agent_addr_describe(&cfg->agent, agent, sizeof agent),
           is_default ? "" : " (for the sessions that chose it)");
    return r;
}

int sc_daemon_routes_open(sc_daemon_t *d)
{
    int rc;
    d->routes[0] = route_new(d, &d->opt.flusher, true, &rc);
    if (d->routes[0] == NULL) {
        return rc;
    }
    d->route_count = 1;
    return 0;
}

sc_route_t *sc_daemon_route_get(sc_daemon_t *d, const sc_agent_addr_t *agent,
                                const sc_flusher_config_t *cfg)
{
    for (size_t i = 0; i < d->route_count; i++) {
        sc_route_t *r = d->routes[i];
        if (same_agent(&sc_flusher_config(r->flusher)->agent, agent)) {
            return r;
        }
    }
    if (d->route_count == SC_DAEMON_MAX_AGENTS || d->stopping) {
        return NULL;
    }
    int rc;
    sc_route_t *r = route_new(d, cfg, false, &rc);
    if (r != NULL) {
        r->index = d->route_count;
        d->routes[d->route_count++] = r;
    }
    return r;
}

bool sc_daemon_route_bind(sc_server_conn_t *conn, sc_route_t *to)
{
    sc_session_t *s = sc_server_conn_owner_data(conn);
    if (s == NULL) {
        if ((s = calloc(1, sizeof *s)) == NULL) {
            return false;
        }
        s->used = 1u; /* unbound until now: the default route */
        sc_server_conn_set_owner_data(conn, s);
    } else if (s->route == to) {
        return true;
    } else {
        s->route->sessions--;
    }
    to->sessions++;
    s->route = to;
    s->used |= 1u << to->index;
    return true;
}

void sc_daemon_route_release(sc_daemon_t *d, sc_server_conn_t *conn)
{
    (void)d;
    sc_session_t *s = sc_server_conn_owner_data(conn);
    if (s != NULL) {
        s->route->sessions--;
        sc_server_conn_set_owner_data(conn, NULL);
        free(s);
    }
}

typedef struct close_ctx {
    sc_route_t *r;
    void (*closed)(sc_daemon_t *d);
} close_ctx_t;

static void on_flusher_closed(sc_flusher_t *f, void *arg)
{
    (void)f;
    close_ctx_t *c = arg;
    sc_route_t *r = c->r;
    void (*closed)(sc_daemon_t * d) = c->closed;
    free(c);
    r->flusher = NULL;
    closed(r->d);
}

void sc_daemon_routes_close(sc_daemon_t *d, void (*closed)(sc_daemon_t *d))
{
    for (size_t i = 0; i < d->route_count; i++) {
        sc_route_t *r = d->routes[i];
        close_ctx_t *c = malloc(sizeof *c);
        if (c == NULL) {
            abort(); /* 16 bytes at shutdown: nothing sensible is left */
        }
        c->r = r;
        c->closed = closed;
        sc_flusher_close(r->flusher, d->opt.final_flush_ms, on_flusher_closed,
                         c);
    }
}

void sc_daemon_routes_free(sc_daemon_t *d)
{
    for (size_t i = 0; i < d->route_count; i++) {
        sc_route_t *r = d->routes[i];
        sc_shared_writer_close(r->shared);
        sc_daemon_free_contexts(r);
        free(r);
    }
    d->route_count = 0;
}

void sc_daemon_routes_stats(sc_daemon_t *d, sc_stats_t *st)
{
    st->has_delivery = true;
    st->session_configs_applied = d->session_configs_applied;
    st->session_configs_over_agents = d->session_configs_over_agents;
    st->agent_count = d->route_count;
    /* Connections no SessionConfig routed are the default agent's. */
    uint64_t bound = 0;
    for (size_t i = 0; i < d->route_count; i++) {
        bound += d->routes[i]->sessions;
    }
    uint64_t unbound = st->server.connections_active > bound
                           ? st->server.connections_active - bound
                           : 0;
    for (size_t i = 0; i < d->route_count; i++) {
        const sc_route_t *r = d->routes[i];
        sc_stats_agent_t *a = &st->agents[i];
        const sc_flusher_config_t *cfg = sc_flusher_config(r->flusher);
        sc_agent_addr_describe(&cfg->agent, a->agent, sizeof a->agent);
        a->is_default = r->is_default;
        const sc_agent_info_t *info = sc_flusher_agent_info(r->flusher);
        a->agent_info = info->valid;
        memcpy(a->agent_version, info->version, sizeof a->agent_version);
        a->sessions = r->sessions + (r->is_default ? unbound : 0);
        a->flush_interval_ms = cfg->flush_interval_ms;
        a->request_timeout_ms = cfg->request_timeout_ms;
        memcpy(a->cap_bytes, cfg->cap_bytes, sizeof a->cap_bytes);
        sc_flusher_get_stats(r->flusher, &a->delivery);
    }
}
