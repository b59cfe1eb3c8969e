/* Flag evaluations on the wire (proto/sidecar.proto, FlagEvaluationBatch).
 *
 * Client side: a drained batch becomes one FlagEvaluationBatch action, or
 * several when it would not fit in one frame. Sidecar side: a decoded
 * FlagEvaluationBatch is merged into the sidecar's aggregator with the same
 * rules and caps as local recording. */
#ifndef SIDECAR_FLAGEVAL_WIRE_H
#define SIDECAR_FLAGEVAL_WIRE_H

#include "buf.h"
#include "flageval.h"
#include "sidecar.pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Service / env / version override carried by each batch (absent: the
 * Hello's). */
typedef struct sc_flageval_wire_meta {
    sc_view_t service;
    sc_view_t env;
    sc_view_t version;
} sc_flageval_wire_meta_t;

/* Receives one envelope (which_action = flag_evaluation_batch, seq 0 for the
 * caller to set). Its views point into the batch and into memory freed after
 * the call returns; encode it (sc_codec_append_frame) during the call.
 * Returning false stops packing. */
typedef bool sc_flageval_envelope_fn(void *ctx, sidecar_v1_Envelope *env);

/* Packs `batch` into as few envelopes as keep every encoded envelope at
 * most `max_frame_len` bytes (the frame body, header excluded; 0 means the
 * 4 MiB default). The batch's `dropped` travels in the first envelope; a
 * bucket too large for an envelope of its own is not sent and its count is
 * added to that `dropped` (counted, never silently lost). An empty batch
 * with nothing dropped produces no envelope. Returns the number of
 * envelopes, or -1 when out of memory or stopped by `fn`. */
int sc_flageval_wire_pack(const sc_flageval_batch_t *batch,
                          const sc_flageval_wire_meta_t *meta,
                          size_t max_frame_len, sc_flageval_envelope_fn *fn,
                          void *ctx);

/* sc_flageval_wire_pack appending the frames to `out`, numbered from
 * `*next_seq` (which is advanced). On failure `out` may hold some frames. */
bool sc_flageval_wire_append_frames(const sc_flageval_batch_t *batch,
                                    const sc_flageval_wire_meta_t *meta,
                                    size_t max_frame_len, uint64_t *next_seq,
                                    sc_buf_t *out);

/* Merges a decoded batch (from sc_codec_decode) into `agg`: counts add,
 * first/last are min/max, degraded buckets stay degraded, the batch's
 * `dropped` adds to the aggregator's. The whole batch is validated first and
 * rejected (-1, nothing merged, `*error` says why) when an evaluation has no
 * flag key or a zero count, first after last, or an attribute has not
 * exactly one value. Returns 0 otherwise (also when `agg` is disabled, which
 * leaves it untouched). */
int sc_flageval_wire_merge(sc_flageval_t *agg,
                           const sidecar_v1_FlagEvaluationBatch *batch,
                           const char **error);

/* A decoded ContextAttribute (of an evaluation's context or an exposure's
 * subject) as the pruning takes it; false when it has not exactly one of
 * string / number / bool. An absent key is the empty key (proto3 string). */
bool sc_flageval_wire_attr(const sidecar_v1_ContextAttribute *w,
                           sc_flageval_attr_t *a);

#define SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME ((size_t)4 << 20)

#endif
