#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "log.h"

/* One socket libcurl uses, with its poll handle. `owned`: opened through
 * on_open_socket, so it is closed (and its handle with it) in
 * on_close_socket. Sockets curl makes itself (the threaded resolver's
 * socketpair) are not owned: curl announces CURL_POLL_REMOVE right before it
 * closes them, so their handle is closed then. */
typedef struct sock_ctx {
    uv_poll_t poll;
    uv_os_sock_t sock;
    sc_http_t *http;
    bool owned;
    struct sock_ctx *next;
} sock_ctx_t;

struct sc_http {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    sc_http_req_t *reqs; /* started, not done */
    unsigned active;
    sock_ctx_t *socks; /* sockets whose handle is open */
    unsigned closing_handles;
    bool closing;
    void (*on_closed)(void *data);
    void *closed_data;
};

static uv_once_t curl_once = UV_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void maybe_finish_close(sc_http_t *http)
{
    if (!http->closing || http->multi != NULL || http->closing_handles > 0) {
        return;
    }
    void (*cb)(void *) = http->on_closed;
    void *data = http->closed_data;
    free(http);
    if (cb != NULL) {
        cb(data);
    }
}

static void on_handle_closed(uv_handle_t *handle)
{
    sc_http_t *http = handle->data;
    if (handle->type == UV_POLL) {
        free(handle); /* poll is the first member of sock_ctx_t */
    }
    http->closing_handles--;
    maybe_finish_close(http);
}

static sock_ctx_t *unlink_sock(sc_http_t *http, uv_os_sock_t sock)
{
    for (sock_ctx_t **p = &http->socks; *p != NULL; p = &(*p)->next) {
        if ((*p)->sock == sock) {
            sock_ctx_t *ctx = *p;
            *p = ctx->next;
            return ctx;
        }
    }
    return NULL;
}

static sock_ctx_t *find_sock(sc_http_t *http, uv_os_sock_t sock)
{
    for (sock_ctx_t *c = http->socks; c != NULL; c = c->next) {
        if (c->sock == sock) {
            return c;
        }
    }
    return NULL;
}

/* Closing the handle stops it, which removes the descriptor from the
 * loop's poller at once (before the caller closes the descriptor). */
static void close_sock_ctx(sock_ctx_t *ctx)
{
    ctx->http->closing_handles++;
    uv_close((uv_handle_t *)&ctx->poll, on_handle_closed);
}

static sock_ctx_t *new_sock_ctx(sc_http_t *http, uv_os_sock_t sock, bool owned)
{
    sock_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        return NULL;
    }
    if (uv_poll_init_socket(http->loop, &ctx->poll, sock) != 0) {
        free(ctx);
        return NULL;
    }
    ctx->poll.data = http;
    ctx->sock = sock;
    ctx->http = http;
    ctx->owned = owned;
    ctx->next = http->socks;
    http->socks = ctx;
    return ctx;
}

/* ---- completion ---------------------------------------------------------- */

static void finish(sc_http_req_t *req, CURLcode code, bool cancelled)
{
    sc_http_t *http = req->http;
    long status = 0;
    if (!cancelled) {
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_multi_remove_handle(http->multi, req->easy);
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
    if (req->prev != NULL) {
        req->prev->next = req->next;
    } else {
        http->reqs = req->next;
    }
    if (req->next != NULL) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
    http->active--;
    req->curl_code = code;
    req->status = code == CURLE_OK ? status : 0;
    req->cancelled = cancelled;
    req->on_done(req);
}

static void process_done(sc_http_t *http)
{
    CURLMsg *msg;
    int left;
    while (http->multi != NULL &&
           (msg = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        void *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        finish(priv, msg->data.result, false);
    }
}

/* ---- libcurl callbacks (never call user code) ---------------------------- */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_ctx_t *ctx = (sock_ctx_t *)poll;
    sc_http_t *http = ctx->http;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR; /* POLLERR (libuv stopped the handle) */
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
        if (events & UV_DISCONNECT) {
            flags |= CURL_CSELECT_ERR;
        }
    }
    int running;
    curl_multi_socket_action(http->multi, ctx->sock, flags, &running);
    process_done(http);
}

static int on_socket(CURL *easy, curl_socket_t sock, int what, void *userp,
                     void *socketp)
{
    (void)easy;
    (void)socketp;
    sc_http_t *http = userp;
    sock_ctx_t *ctx = find_sock(http, sock);
    if (what == CURL_POLL_REMOVE) {
        if (ctx != NULL && !ctx->owned) {
            unlink_sock(http, sock);
            close_sock_ctx(ctx);
        } else if (ctx != NULL) {
            uv_poll_stop(&ctx->poll);
        }
        return 0;
    }
    if (ctx == NULL) {
        /* A socket libcurl made itself (the threaded resolver's pair). */
        sc_plat_socket_set_cloexec(sock);
        ctx = new_sock_ctx(http, sock, false);
        if (ctx == NULL) {
            SC_LOG_LIMITED(SC_LOG_ERROR, "http: cannot poll socket");
            return -1;
        }
    }
    int events = 0;
    if (what & CURL_POLL_IN) {
        events |= UV_READABLE | UV_DISCONNECT;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

static void on_timer(uv_timer_t *timer)
{
    sc_http_t *http = timer->data;
    int running;
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process_done(http);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    sc_http_t *http = userp;
    if (uv_is_closing((uv_handle_t *)&http->timer)) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&http->timer);
    } else {
        uv_timer_start(&http->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static curl_socket_t on_open_socket(void *clientp, curlsocktype purpose,
                                    struct curl_sockaddr *addr)
{
    sc_http_t *http = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN) {
        return CURL_SOCKET_BAD;
    }
    uv_os_sock_t sock;
    int rc = sc_plat_socket_open(addr->family, addr->socktype, addr->protocol,
                                 &sock);
    if (rc != 0) {
        SC_LOG_LIMITED(SC_LOG_WARN, "http: socket: %s", uv_strerror(rc));
        return CURL_SOCKET_BAD;
    }
    if (new_sock_ctx(http, sock, true) == NULL) {
        sc_plat_socket_close(sock);
        return CURL_SOCKET_BAD;
    }
    return sock;
}

static int on_close_socket(void *clientp, curl_socket_t sock)
{
    sc_http_t *http = clientp;
    sock_ctx_t *ctx = unlink_sock(http, sock);
    if (ctx != NULL) {
        close_sock_ctx(ctx);
    }
    sc_plat_socket_close(sock);
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
    sc_http_req_t *req = userp;
    size_t n = size * nmemb;
    size_t room = req->max_response > req->response.len
                      ? req->max_response - req->response.len
                      : 0;
    /* What does not fit (or cannot be allocated) is discarded: the response
     * is informational, the delivery itself succeeded. */
    sc_buf_append(&req->response, ptr, n < room ? n : room);
    return n;
}

/* ---- public ---------------------------------------------------------------
 */

int sc_http_new(uv_loop_t *loop, sc_http_t **out)
{
    uv_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK) {
        return UV_EIO;
    }
    sc_http_t *http = calloc(1, sizeof *http);
    if (http == NULL) {
        return UV_ENOMEM;
    }
    http->loop = loop;
    /* libcurl's wakeup socketpair is created here, inheritable: made
     * close-on-exec (every descriptor of the sidecar is). */
    sc_plat_fds_t fds;
    sc_plat_fds_before(&fds);
    http->multi = curl_multi_init();
    sc_plat_cloexec_new_sockets(&fds);
    if (http->multi == NULL) {
        free(http);
        return UV_ENOMEM;
    }
    uv_timer_init(loop, &http->timer);
    http->timer.data = http;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    *out = http;
    return 0;
}

static bool setup_easy(sc_http_t *http, sc_http_req_t *req, CURL *e)
{
    bool ok = curl_easy_setopt(e, CURLOPT_URL, req->url) == CURLE_OK;
    if (req->unix_path != NULL && req->unix_path[0] != '\0') {
        ok = ok && curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH,
                                    req->unix_path) == CURLE_OK;
    }
    long timeout = (long)req->timeout_ms;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    /* The agent is local: never go through a proxy from the environment. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)http);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)http);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)req);
    if (req->headers != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    }
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return ok;
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                     req->body != NULL ? req->body : (const void *)"");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(req->body != NULL ? req->body_len : 0));
    if (strcmp(req->method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return ok;
}

int sc_http_start(sc_http_t *http, sc_http_req_t *req)
{
    if (http->closing) {
        return UV_ECANCELED;
    }
    CURL *e = curl_easy_init();
    if (e == NULL) {
        return UV_ENOMEM;
    }
    if (!setup_easy(http, req, e)) {
        curl_easy_cleanup(e);
        return UV_EINVAL;
    }
    req->easy = e;
    req->http = http;
    req->curl_code = CURLE_OK;
    req->status = 0;
    req->cancelled = false;
    sc_buf_reset(&req->response);
    if (curl_multi_add_handle(http->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        req->easy = NULL;
        return UV_ENOMEM;
    }
    req->prev = NULL;
    req->next = http->reqs;
    if (http->reqs != NULL) {
        http->reqs->prev = req;
    }
    http->reqs = req;
    http->active++;
    return 0;
}

void sc_http_cancel(sc_http_req_t *req)
{
    if (req->easy != NULL) {
        finish(req, CURLE_ABORTED_BY_CALLBACK, true);
    }
}

unsigned sc_http_active(const sc_http_t *http)
{
    return http->active;
}

void sc_http_close(sc_http_t *http, void (*on_closed)(void *data), void *data)
{
    http->closing = true;
    http->on_closed = on_closed;
    http->closed_data = data;
    while (http->reqs != NULL) {
        sc_http_cancel(http->reqs);
    }
    /* Closes the cached connections through on_close_socket. */
    curl_multi_cleanup(http->multi);
    http->multi = NULL;
    /* Anything left was not closed by curl; it is ours to close now. */
    while (http->socks != NULL) {
        sock_ctx_t *ctx = http->socks;
        http->socks = ctx->next;
        close_sock_ctx(ctx);
        if (ctx->owned) {
            sc_plat_socket_close(ctx->sock);
        }
    }
    http->closing_handles++;
    uv_close((uv_handle_t *)&http->timer, on_handle_closed);
}

bool sc_http_retryable(const sc_http_req_t *req)
{
    if (req->cancelled) {
        return false;
    }
    switch (req->curl_code) {
    case CURLE_OK:
        return req->status == 408 || req->status == 429 || req->status >= 500;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return false; /* configuration errors: trying again cannot help */
    default:
        return true; /* connection errors, timeouts, broken responses */
    }
}

const char *sc_http_outcome(const sc_http_req_t *req, char *buf, size_t size)
{
    if (req->cancelled) {
        snprintf(buf, size, "cancelled");
    } else if (req->curl_code != CURLE_OK) {
        snprintf(buf, size, "%s", curl_easy_strerror(req->curl_code));
    } else {
        snprintf(buf, size, "HTTP %ld", req->status);
    }
    return buf;
}
