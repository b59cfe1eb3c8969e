/* DogStatsD over UDP (libuv's uv_udp) or a Unix datagram socket (connected
 * by the platform layer, then driven by uv_udp too). Sends use
 * uv_udp_try_send: a datagram goes out at once or is counted as failed,
 * so a slow or absent agent never holds memory in the sidecar. */
#include "dogstatsd.h"

#include "env.h"
#include "log.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sc_dogstatsd_config_defaults(sc_dogstatsd_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    cfg->port = 8125;
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end = NULL;
    unsigned long n = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || s[0] == '-' || n == 0 || n > 65535) {
        return UV_EINVAL;
    }
    *out = (uint16_t)n;
    return 0;
}

int sc_dogstatsd_parse_url(const char *url, sc_dogstatsd_config_t *cfg)
{
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        if (path[0] != '/' || strlen(path) >= sizeof cfg->unix_path) {
            return UV_EINVAL;
        }
        snprintf(cfg->unix_path, sizeof cfg->unix_path, "%s", path);
        return 0;
    }
    if (strncmp(url, "udp://", 6) != 0) {
        return UV_EINVAL;
    }
    const char *host = url + 6, *colon;
    size_t host_len;
    if (host[0] == '[') { /* [v6]:port */
        const char *close = strchr(host, ']');
        if (close == NULL || close[1] != ':') {
            return UV_EINVAL;
        }
        host++;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(host, ':');
        if (colon == NULL) {
            return UV_EINVAL;
        }
        host_len = (size_t)(colon - host);
    }
    uint16_t port;
    if (host_len == 0 || host_len >= sizeof cfg->host ||
        parse_port(colon + 1, &port) != 0) {
        return UV_EINVAL;
    }
    memcpy(cfg->host, host, host_len);
    cfg->host[host_len] = '\0';
    cfg->port = port;
    cfg->unix_path[0] = '\0';
    return 0;
}

int sc_dogstatsd_config_from_env(sc_dogstatsd_config_t *cfg)
{
    char url[512], host[256], port[32], size[32];
    int rc = 0;
    const char *v = sc_env("DD_DOGSTATSD_URL", url, sizeof url);
    sc_dogstatsd_config_t parsed = *cfg;
    if (v != NULL && sc_dogstatsd_parse_url(v, &parsed) != 0) {
        rc = sc_env_invalid("DD_DOGSTATSD_URL", v);
        v = NULL;
    }
    if (v != NULL) {
        *cfg = parsed;
    } else {
        const char *h = sc_env("DD_DOGSTATSD_HOST", host, sizeof host);
        if (h == NULL) {
            h = sc_env("DD_AGENT_HOST", host, sizeof host);
        }
        if (h != NULL) {
            snprintf(cfg->host, sizeof cfg->host, "%s", h);
        }
        const char *p = sc_env("DD_DOGSTATSD_PORT", port, sizeof port);
        if (p != NULL && parse_port(p, &cfg->port) != 0) {
            rc = sc_env_invalid("DD_DOGSTATSD_PORT", p);
        }
    }
    const char *s =
        sc_env("DD_TRACE_SIDECAR_DOGSTATSD_MAX_DATAGRAM", size, sizeof size);
    if (s != NULL) {
        char *end = NULL;
        unsigned long n = strtoul(s, &end, 10);
        if (*end != '\0' || s[0] == '-' || n < 64 ||
            n > SC_DOGSTATSD_DATAGRAM_MAX) {
            rc = sc_env_invalid("DD_TRACE_SIDECAR_DOGSTATSD_MAX_DATAGRAM", s);
        } else {
            cfg->max_datagram = n;
        }
    }
    return rc;
}

size_t sc_dogstatsd_datagram_size(const sc_dogstatsd_config_t *cfg)
{
    if (cfg->max_datagram != 0) {
        return cfg->max_datagram;
    }
    return cfg->unix_path[0] != '\0' ? SC_DOGSTATSD_UNIX_DATAGRAM
                                     : SC_DOGSTATSD_UDP_DATAGRAM;
}

void sc_dogstatsd_describe(const sc_dogstatsd_config_t *cfg, char *out,
                           size_t size)
{
    if (cfg->unix_path[0] != '\0') {
        snprintf(out, size, "unix://%s", cfg->unix_path);
    } else if (strchr(cfg->host, ':') != NULL) {
        snprintf(out, size, "udp://[%s]:%u", cfg->host, cfg->port);
    } else {
        snprintf(out, size, "udp://%s:%u", cfg->host, cfg->port);
    }
}

/* ---- packing ------------------------------------------------------------ */

bool sc_dgram_packer_init(sc_dgram_packer_t *p, size_t cap,
                          void (*send)(void *, const char *, size_t, size_t),
                          void *ctx)
{
    memset(p, 0, sizeof *p);
    p->buf = malloc(cap);
    p->cap = cap;
    p->send = send;
    p->ctx = ctx;
    return p->buf != NULL;
}

void sc_dgram_packer_flush(sc_dgram_packer_t *p)
{
    if (p->len > 0) {
        p->send(p->ctx, p->buf, p->len, p->lines);
    }
    p->len = 0;
    p->lines = 0;
}

void sc_dgram_packer_add(sc_dgram_packer_t *p, const char *line, size_t len)
{
    if (len > p->cap) {
        p->too_large++;
        return;
    }
    if (p->len > 0 && p->len + 1 + len > p->cap) {
        sc_dgram_packer_flush(p);
    }
    if (p->len > 0) {
        p->buf[p->len++] = '\n';
    }
    memcpy(p->buf + p->len, line, len);
    p->len += len;
    p->lines++;
}

void sc_dgram_packer_free(sc_dgram_packer_t *p)
{
    free(p->buf);
    p->buf = NULL;
}

/* ---- the sender --------------------------------------------------------- */

struct sc_dogstatsd {
    uv_loop_t *loop;
    sc_dogstatsd_config_t cfg;
    struct sockaddr_storage addr;
    bool resolved;
    uv_getaddrinfo_t *resolving; /* in flight, or NULL */
    uv_udp_t *udp;               /* NULL until the first datagram */
    unsigned pending;            /* resolutions and handles not yet done */
    bool closing;
    void (*done)(void *arg);
    void *done_arg;
    sc_dogstatsd_stats_t stats;
};

static void maybe_done(sc_dogstatsd_t *s)
{
    if (s->closing && s->pending == 0) {
        void (*done)(void *) = s->done;
        void *arg = s->done_arg;
        free(s);
        if (done != NULL) {
            done(arg);
        }
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    sc_dogstatsd_t *s = req->data;
    s->resolving = NULL;
    s->pending--;
    if (status == 0 && ai != NULL && ai->ai_addrlen <= sizeof s->addr) {
        memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
        s->resolved = true;
    } else if (status != UV_ECANCELED) {
        SC_LOG_LIMITED(SC_LOG_WARN, "DogStatsD host %s does not resolve: %s",
                       s->cfg.host, uv_strerror(status));
    }
    uv_freeaddrinfo(ai);
    free(req);
    maybe_done(s);
}

/* An address literal at once; a name in the background (what is sent
 * before it resolves is counted as failed). */
static void resolve(sc_dogstatsd_t *s)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&s->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->addr;
    if (uv_ip4_addr(s->cfg.host, s->cfg.port, v4) == 0 ||
        uv_ip6_addr(s->cfg.host, s->cfg.port, v6) == 0) {
        s->resolved = true;
        return;
    }
    if (s->resolving != NULL || s->closing) {
        return;
    }
    uv_getaddrinfo_t *req = malloc(sizeof *req);
    if (req == NULL) {
        return;
    }
    req->data = s;
    char port[8];
    snprintf(port, sizeof port, "%u", s->cfg.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    if (uv_getaddrinfo(s->loop, req, on_resolved, s->cfg.host, port, &hints) !=
        0) {
        free(req);
        return;
    }
    s->resolving = req;
    s->pending++;
}

int sc_dogstatsd_new(uv_loop_t *loop, const sc_dogstatsd_config_t *cfg,
                     sc_dogstatsd_t **out)
{
    sc_dogstatsd_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return UV_ENOMEM;
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (cfg->unix_path[0] == '\0') {
        resolve(s);
    }
    *out = s;
    return 0;
}

static void on_udp_closed(uv_handle_t *h)
{
    sc_dogstatsd_t *s = h->data;
    free(h);
    s->pending--;
    maybe_done(s);
}

static void drop_socket(sc_dogstatsd_t *s)
{
    if (s->udp != NULL) {
        uv_close((uv_handle_t *)s->udp, on_udp_closed);
        s->udp = NULL;
    }
}

/* The socket to send on, opened on first use; NULL with the reason. */
static uv_udp_t *socket_for(sc_dogstatsd_t *s, int *err)
{
    if (s->udp != NULL) {
        return s->udp;
    }
    bool unix_dgram = s->cfg.unix_path[0] != '\0';
    if (!unix_dgram && !s->resolved) {
        resolve(s);
        if (!s->resolved) {
            *err = UV_EAI_AGAIN;
            return NULL;
        }
    }
    uv_udp_t *udp = malloc(sizeof *udp);
    if (udp == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    int rc;
    udp->data = s;
    if (unix_dgram) {
        uv_os_sock_t sock;
        rc = sc_plat_unix_dgram_connect(s->cfg.unix_path, &sock);
        if (rc == 0 && (rc = uv_udp_init(s->loop, udp)) != 0) {
            sc_plat_socket_close(sock);
        } else if (rc == 0 && (rc = uv_udp_open(udp, sock)) != 0) {
            /* The handle exists: it is closed like any other. */
            sc_plat_socket_close(sock);
            s->pending++;
            uv_close((uv_handle_t *)udp, on_udp_closed);
            *err = rc;
            return NULL;
        }
    } else {
        rc = uv_udp_init_ex(s->loop, udp, s->addr.ss_family);
    }
    if (rc != 0) { /* no handle was made */
        free(udp);
        *err = rc;
        return NULL;
    }
    s->pending++; /* until closed */
    s->udp = udp;
    return udp;
}

static void fail(sc_dogstatsd_t *s, size_t lines, int err)
{
    s->stats.datagrams_failed++;
    s->stats.lines_failed += lines;
    if (s->stats.last_error != err) {
        SC_LOG_LIMITED(SC_LOG_WARN, "DogStatsD send failed: %s",
                       uv_strerror(err));
    }
    s->stats.last_error = err;
}

void sc_dogstatsd_send(sc_dogstatsd_t *s, const char *datagram, size_t len,
                       size_t lines)
{
    int err = 0;
    uv_udp_t *udp = socket_for(s, &err);
    if (udp == NULL) {
        fail(s, lines, err);
        return;
    }
    /* libuv only reads the buffer of a send. */
    uv_buf_t buf = uv_buf_init((char *)(uintptr_t)datagram, (unsigned)len);
    bool unix_dgram = s->cfg.unix_path[0] != '\0';
    int rc = uv_udp_try_send(
        udp, &buf, 1, unix_dgram ? NULL : (const struct sockaddr *)&s->addr);
    if (rc < 0) {
        fail(s, lines, rc);
        if (unix_dgram && rc != UV_EAGAIN && rc != UV_ENOBUFS) {
            drop_socket(s); /* the agent went away: connect again later */
        }
        return;
    }
    s->stats.datagrams_sent++;
    s->stats.lines_sent += lines;
    s->stats.bytes_sent += len;
}

void sc_dogstatsd_count_too_large(sc_dogstatsd_t *s, uint64_t lines)
{
    s->stats.lines_too_large += lines;
}

void sc_dogstatsd_stats(const sc_dogstatsd_t *s, sc_dogstatsd_stats_t *out)
{
    *out = s->stats;
}

void sc_dogstatsd_close(sc_dogstatsd_t *s, void (*done)(void *arg), void *arg)
{
    s->closing = true;
    s->done = done;
    s->done_arg = arg;
    drop_socket(s);
    if (s->resolving != NULL) {
        uv_cancel((uv_req_t *)s->resolving);
    }
    maybe_done(s);
}
