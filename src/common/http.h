/* HTTP requests with libcurl's multi-socket API, driven by a libuv loop
 * (curl's multi-uv pattern, docs/delivery.md): one uv_poll_t per socket, one
 * uv_timer_t, no extra thread.
 *
 * Sockets are opened and closed here (CURLOPT_OPENSOCKETFUNCTION /
 * CURLOPT_CLOSESOCKETFUNCTION through platform.h), so the poll handle of a
 * socket is always stopped and closed before the socket is, and libuv never
 * polls a closed (or reused) descriptor. Sockets are polled with
 * uv_poll_init_socket, which takes an int on POSIX and a SOCKET on Windows
 * (uv_os_sock_t == curl_socket_t on both), so there is no platform
 * difference here. A poll error or UV_DISCONNECT reaches curl as
 * CURL_CSELECT_ERR. */
#ifndef SIDECAR_HTTP_H
#define SIDECAR_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"

typedef struct sc_http sc_http_t;
typedef struct sc_http_req sc_http_req_t;

typedef void (*sc_http_done_cb)(sc_http_req_t *req);

/* One request. The caller owns the struct, fills the inputs and keeps it,
 * its headers and its body alive until `on_done` has been called. */
struct sc_http_req {
    /* Inputs. */
    const char *method;         /* "GET", "POST", "PUT" */
    const char *url;            /* copied by curl */
    const char *unix_path;      /* NULL/"" for TCP; copied by curl */
    struct curl_slist *headers; /* not copied */
    const void *body;           /* not copied; NULL for none */
    size_t body_len;
    uint32_t timeout_ms; /* whole request, connect included */
    size_t max_response; /* response bytes kept; the rest is discarded */
    sc_http_done_cb on_done;
    void *data;

    /* Results, valid in on_done. */
    CURLcode curl_code; /* CURLE_OK: an HTTP response came back */
    long status;        /* HTTP status, 0 without a response */
    bool cancelled;     /* sc_http_cancel / sc_http_close stopped it */
    sc_buf_t response;  /* response body (at most max_response bytes);
                           the caller frees it with sc_buf_free */

    /* Private. */
    CURL *easy;
    sc_http_t *http;
    sc_http_req_t *prev, *next;
};

/* Creates the HTTP engine on `loop`. Returns 0 or a negative UV_E* error. */
int sc_http_new(uv_loop_t *loop, sc_http_t **out);

/* Starts a request; `on_done` is called later from the loop, never from
 * inside this call. Returns 0, or a negative UV_E* error (then `on_done` is
 * not called). */
int sc_http_start(sc_http_t *http, sc_http_req_t *req);

/* Stops a started request: `on_done` is called before this returns, with
 * `cancelled` set. */
void sc_http_cancel(sc_http_req_t *req);

/* Requests started and not yet done. */
unsigned sc_http_active(const sc_http_t *http);

/* Cancels every request (each `on_done` is called with `cancelled`), closes
 * every connection and handle, then calls `on_closed` from the loop and
 * frees `http`. Once `on_closed` has run, the engine holds no handle of the
 * loop. */
void sc_http_close(sc_http_t *http, void (*on_closed)(void *data), void *data);

/* Whether a failed request is worth trying again (docs/delivery.md): connection
 * errors, timeouts, 408, 429 and 5xx. False for success and other 4xx. */
bool sc_http_retryable(const sc_http_req_t *req);

/* A short description of the outcome for logs ("HTTP 503", "Timeout was
 * reached"...). */
const char *sc_http_outcome(const sc_http_req_t *req, char *buf, size_t size);

#endif
