/* Sending DogStatsD datagrams to the agent (docs/metrics.md, "Where metrics
 * go"): UDP to DD_DOGSTATSD_HOST:DD_DOGSTATSD_PORT (127.0.0.1:8125 by
 * default), or a Unix datagram socket named by DD_DOGSTATSD_URL=unix://.
 * Lines are packed into datagrams of at most the configured size; a send
 * never waits (a full socket buffer is a counted drop). */
#ifndef SIDECAR_DOGSTATSD_H
#define SIDECAR_DOGSTATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SC_DOGSTATSD_UDP_DATAGRAM  1432 /* fits a 1500-byte MTU */
#define SC_DOGSTATSD_UNIX_DATAGRAM 8192 /* the agent's default buffer */
#define SC_DOGSTATSD_DATAGRAM_MAX  65507

typedef struct sc_dogstatsd_config {
    char host[256];      /* UDP: a name or an address literal */
    uint16_t port;       /* UDP */
    char unix_path[256]; /* non-empty: a Unix datagram socket instead */
    size_t max_datagram; /* 0: per transport, see above */
} sc_dogstatsd_config_t;

/* 127.0.0.1:8125 over UDP. */
void sc_dogstatsd_config_defaults(sc_dogstatsd_config_t *cfg);

/* Applies DD_DOGSTATSD_URL ("udp://host:port" or "unix:///path"), else
 * DD_DOGSTATSD_HOST (else DD_AGENT_HOST) and DD_DOGSTATSD_PORT, and
 * DD_TRACE_SIDECAR_DOGSTATSD_MAX_DATAGRAM. UV_EINVAL when a value does not
 * parse (it is ignored and logged; the others apply). */
int sc_dogstatsd_config_from_env(sc_dogstatsd_config_t *cfg);

/* Parses a DogStatsD URL into `cfg` (host/port or unix_path). */
int sc_dogstatsd_parse_url(const char *url, sc_dogstatsd_config_t *cfg);

/* The datagram size in effect. */
size_t sc_dogstatsd_datagram_size(const sc_dogstatsd_config_t *cfg);

/* "udp://host:port" or "unix:///path". */
void sc_dogstatsd_describe(const sc_dogstatsd_config_t *cfg, char *out,
                           size_t size);

/* ---- packing lines into datagrams ------------------------------------- */

typedef struct sc_dgram_packer {
    char *buf;  /* `cap` bytes */
    size_t cap; /* the datagram size */
    size_t len;
    size_t lines;       /* lines in `buf` */
    uint64_t too_large; /* lines longer than a datagram: dropped */
    void (*send)(void *ctx, const char *datagram, size_t len, size_t lines);
    void *ctx;
} sc_dgram_packer_t;

/* Lines are joined by '\n'; a datagram goes out through `send` once the
 * next line would not fit. */
bool sc_dgram_packer_init(sc_dgram_packer_t *p, size_t cap,
                          void (*send)(void *, const char *, size_t, size_t),
                          void *ctx);
void sc_dgram_packer_add(sc_dgram_packer_t *p, const char *line, size_t len);
/* Sends what is packed. */
void sc_dgram_packer_flush(sc_dgram_packer_t *p);
void sc_dgram_packer_free(sc_dgram_packer_t *p);

/* ---- the sender ------------------------------------------------------- */

typedef struct sc_dogstatsd sc_dogstatsd_t;

typedef struct sc_dogstatsd_stats {
    uint64_t datagrams_sent, lines_sent, bytes_sent;
    /* Datagrams (and their lines) the socket refused or could not take:
     * no address yet, no socket, a full socket buffer, a refused send. */
    uint64_t datagrams_failed, lines_failed;
    uint64_t lines_too_large; /* longer than a datagram */
    int last_error;           /* UV_E* of the last failure, 0 */
} sc_dogstatsd_stats_t;

/* Starts resolving the destination (a name is resolved in the
 * background); nothing is opened before the first datagram. */
int sc_dogstatsd_new(uv_loop_t *loop, const sc_dogstatsd_config_t *cfg,
                     sc_dogstatsd_t **out);

/* Sends one datagram of `lines` lines now (never waits). */
void sc_dogstatsd_send(sc_dogstatsd_t *s, const char *datagram, size_t len,
                       size_t lines);

/* Counts lines a packer dropped as too large. */
void sc_dogstatsd_count_too_large(sc_dogstatsd_t *s, uint64_t lines);

void sc_dogstatsd_stats(const sc_dogstatsd_t *s, sc_dogstatsd_stats_t *out);

/* Closes the socket and a resolution in progress; `done` runs on the loop
 * once nothing of the sender is left, and frees it. */
void sc_dogstatsd_close(sc_dogstatsd_t *s, void (*done)(void *arg), void *arg);

#endif
