/* Fuzz target: bytes as a peer would send them, through everything the
 * sidecar does with untrusted input before any delivery: the frame reader
 * (the first byte chooses the chunking), the merge of a repeated action
 * field (envelope_merge.h), the envelope decoder (its trace fast path
 * checked against nanopb on every trace frame), the lazily
 * decoded lists (flag evaluations with their contexts, exposures), the
 * sidecar-side flag-evaluation merge, and trace payload validation.
 *
 * Built as a libFuzzer target with clang (-DSIDECAR_FUZZ=ON), and linked
 * with tests/fuzz/fuzz_driver.c into a plain program that CTest runs over
 * the golden vectors and seeded mutations of them in every build. */
#include "codec.h"
#include "envelope_merge.h"
#include "flageval.h"
#include "flageval_wire.h"
#include "frame.h"
#include "fuzz_bounds.h"
#include "log.h"
#include "msgpack.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_state {
    sc_flageval_t *agg;
} fuzz_state_t;

static void walk_attributes(const sc_list_t *list)
{
    sc_list_iter_t it;
    sc_list_iter_init(&it, list);
    sidecar_v1_ContextAttribute a;
    while (SC_LIST_NEXT(&it, sidecar_v1_ContextAttribute, &a) == 1) {
    }
}

static bool on_frame(void *ctx, const uint8_t *body, size_t len)
{
    fuzz_state_t *s = ctx;
    sidecar_v1_Envelope env;
    sc_buf_t merged = {0};
    if (!sc_envelope_merge_actions(body, len, &merged, &body, &len) ||
        !sc_codec_decode(body, len, &env, NULL)) {
        sc_buf_free(&merged);
        return true;
    }
    fuzz_check_bounds(sidecar_v1_Envelope_fields, &env, body, len);
    switch (env.which_action) {
    case sidecar_v1_Envelope_trace_payload_tag: {
        /* The trace fast path (codec_trace.c) must give what nanopb, the
         * codec of record, gives. */
        sidecar_v1_Envelope ref;
        if (!sc_codec_decode_nanopb(body, len, &ref, NULL) ||
            memcmp(&ref, &env, sizeof env) != 0) {
            abort();
        }
        const sc_view_t m = env.action.trace_payload.msgpack;
        sc_msgpack_traces_t traces;
        sc_msgpack_check_traces(m.ptr, m.len, &traces);
        break;
    }
    case sidecar_v1_Envelope_flag_evaluation_batch_tag:
        sc_flageval_wire_merge(s->agg, &env.action.flag_evaluation_batch, NULL);
        break;
    case sidecar_v1_Envelope_exposure_batch_tag: {
        sc_list_iter_t it;
        sc_list_iter_init(&it, &env.action.exposure_batch.exposures);
        sidecar_v1_Exposure e;
        while (SC_LIST_NEXT(&it, sidecar_v1_Exposure, &e) == 1) {
            walk_attributes(&e.subject_attributes);
        }
        break;
    }
    default:
        break;
    }
    sc_buf_free(&merged);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    static fuzz_state_t state;
    if (state.agg == NULL) {
        sc_flageval_config_t cfg;
        sc_flageval_config_default(&cfg);
        cfg.global_cap = 64; /* small caps: the tier logic runs too */
        cfg.per_flag_cap = 8;
        cfg.degraded_cap = 16;
        sc_log_configure(SC_LOG_ERROR, NULL); /* caps hit on every input */
        state.agg = sc_flageval_new(&cfg);
    }
    size_t chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, 1 << 20);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (sc_frame_reader_feed(&r, data + off, n, on_frame, &state) !=
            SC_FRAME_OK) {
            break;
        }
    }
    sc_frame_reader_free(&r);
    /* Keep memory flat across inputs. */
    sc_flageval_batch_t batch;
    sc_flageval_drain(state.agg, &batch);
    sc_flageval_batch_free(&batch);
    return 0;
}
