/* Fuzz target: one envelope as the sidecar decodes it (no framing, so the
 * fuzzer spends its time inside the message), then what the sidecar does
 * with each action: every lazy list walked, with every view and item
 * checked to lie inside the envelope; flag evaluations merged into an
 * aggregator, drained and written as EVP JSON bodies (which must be valid
 * UTF-8 whatever the input); trace payloads validated. */
#include "codec.h"
#include "flageval.h"
#include "flageval_json.h"
#include "flageval_wire.h"
#include "fuzz_bounds.h"
#include "json.h"
#include "log.h"
#include "msgpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_body(void *ctx, const sc_buf_t *body, size_t events)
{
    (void)ctx;
    (void)events;
    if (!sc_utf8_valid(body->data, body->len)) {
        fprintf(stderr, "an EVP body that is not UTF-8\n");
        abort();
    }
    return true;
}

static void flag_evaluations(sc_flageval_t *agg,
                             const sidecar_v1_FlagEvaluationBatch *b)
{
    if (sc_flageval_wire_merge(agg, b, NULL) != 0) {
        return;
    }
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_json_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.service = b->service;
    opts.env = b->env;
    opts.version = b->version;
    opts.timestamp_ms = 1;
    opts.max_events = 3; /* bodies split often */
    opts.max_bytes = 4096;
    sc_flageval_json_bodies(&batch, &opts, check_body, NULL, NULL);
    sc_flageval_batch_free(&batch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sc_flageval_t *agg;
    if (agg == NULL) {
        sc_flageval_config_t cfg;
        sc_flageval_config_default(&cfg);
        cfg.global_cap = 64; /* small caps: the tier logic runs too */
        cfg.per_flag_cap = 8;
        cfg.degraded_cap = 16;
        sc_log_configure(SC_LOG_ERROR, NULL); /* caps hit on every input */
        agg = sc_flageval_new(&cfg);
    }
    /* A heap copy of exactly the input's length: ASan sees any read past
     * the envelope. */
    uint8_t *msg = malloc(size > 0 ? size : 1);
    if (msg == NULL) {
        return 0;
    }
    memcpy(msg, data, size);
    sidecar_v1_Envelope env;
    if (sc_codec_decode(msg, size, &env, NULL)) {
        fuzz_check_bounds(sidecar_v1_Envelope_fields, &env, msg, size);
        switch (env.which_action) {
        case sidecar_v1_Envelope_flag_evaluation_batch_tag:
            flag_evaluations(agg, &env.action.flag_evaluation_batch);
            break;
        case sidecar_v1_Envelope_trace_payload_tag: {
            sc_view_t m = env.action.trace_payload.msgpack;
            sc_msgpack_check_traces(m.ptr, m.len, NULL);
            break;
        }
        default:
            break; /* exposures and the rest: walked by fuzz_check_bounds */
        }
    }
    free(msg);
    return 0;
}
