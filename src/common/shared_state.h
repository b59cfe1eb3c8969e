/* State the sidecar publishes for workers to read without a round trip
 * (docs/shared-state.md): agent info (/info, the endpoints the agent supports),
 * the last rate_by_service, and the sidecar's health. One shared-memory segment
 * per endpoint, written under a seqlock so that a reader never sees a torn
 * record, mode 0600, handed to the worker uid when the owner is root. */
#ifndef SIDECAR_SHARED_STATE_H
#define SIDECAR_SHARED_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_url.h"

#define SC_SHARED_INFO_MAX  40960
#define SC_SHARED_RATES_MAX 20480

/* One consistent snapshot. Strings are NUL-terminated; a longer document
 * than fits is not published (its *_truncated flag is set instead). */
typedef struct sc_shared_record {
    uint32_t pid;       /* the sidecar (or the master in thread mode) */
    uint32_t flags;     /* SC_SHARED_* below */
    int64_t updated_ms; /* epoch ms of the last publication */
    uint32_t info_len;
    uint32_t rates_len;
    char info[SC_SHARED_INFO_MAX];   /* raw /info answer */
    char rates[SC_SHARED_RATES_MAX]; /* raw rate_by_service object */
} sc_shared_record_t;

#define SC_SHARED_HEALTHY         1u /* the sidecar is serving */
#define SC_SHARED_INFO_VALID      2u /* `info` holds an answer */
#define SC_SHARED_INFO_TRUNCATED  4u /* the answer did not fit */
#define SC_SHARED_RATES_TRUNCATED 8u /* the rates did not fit */

/* The segment: a header and the record as 64-bit words, each read and
 * written atomically (relaxed) between the sequence counter's fences. */
#define SC_SHARED_WORDS ((sizeof(sc_shared_record_t) + 7) / 8)
typedef struct sc_shared_segment {
    uint32_t magic;
    uint32_t layout;
    _Atomic uint64_t seq; /* odd while a write is in progress */
    _Atomic uint64_t words[SC_SHARED_WORDS];
} sc_shared_segment_t;

/* The seqlock itself, over any mapping of a segment. */
void sc_shared_write(sc_shared_segment_t *seg, const sc_shared_record_t *rec);
/* Returns 0 with a consistent copy, UV_EAGAIN when a writer kept it busy
 * for too many attempts, UV_EINVAL for a segment that is not ours. */
int sc_shared_read_segment(const sc_shared_segment_t *seg,
                           sc_shared_record_t *out);

/* The segment name for an endpoint (unique per endpoint string). */
void sc_shared_name(const char *endpoint, char *out, size_t size);

/* The string a segment is named from (sc_shared_name): the endpoint for
 * the sidecar's default agent; the endpoint, a space and the agent's
 * address for an agent a session chose (docs/shared-state.md). */
void sc_shared_key(const char *endpoint, const sc_agent_addr_t *agent,
                   char *out, size_t size);

/* Sidecar side: publishes what it is given, calls nothing above it. */
typedef struct sc_shared_writer sc_shared_writer_t;

int sc_shared_writer_open(const char *key, uint32_t pid,
                          sc_shared_writer_t **out);
void sc_shared_publish_info(sc_shared_writer_t *w, const char *json,
                            size_t len);
void sc_shared_publish_rates(sc_shared_writer_t *w, const char *json,
                             size_t len);
/* Hands the segment to a worker uid (first one of another user only). */
void sc_shared_give_to(sc_shared_writer_t *w, uint32_t uid);
/* The uid the segment was handed to, 0 when none. */
uint32_t sc_shared_given_to(const sc_shared_writer_t *w);
void sc_shared_writer_close(sc_shared_writer_t *w);

/* Worker side: one snapshot of the segment named from `key`. */
int sc_shared_read(const char *key, sc_shared_record_t *out);

#endif
