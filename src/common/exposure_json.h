/* The EVP `exposures` request body (docs/flag-evaluations.md, "Exposures"),
 * one per ExposureBatch a client sends:
 *
 *   {"context":{"service":"…","env":"…","version":"…"},
 *    "exposures":[{"timestamp":…,"flag":{"key":"…"},"allocation":{"key":"…"},
 *      "variant":{"key":"…"},"subject":{"id":"…","attributes":{…}}}, …]}
 *
 * Absent or empty values are omitted, never null or empty placeholders.
 * Subject attributes go through the same pruning as evaluation contexts
 * (flageval_context.h). The body is valid JSON and UTF-8 whatever bytes
 * the batch holds (json.h). */
#ifndef SIDECAR_EXPOSURE_JSON_H
#define SIDECAR_EXPOSURE_JSON_H

#include "buf.h"
#include "flageval_context.h"
#include "sidecar.pb.h"

#include <stddef.h>

typedef struct sc_exposure_body {
    sc_buf_t out;   /* the body */
    size_t count;   /* exposures written */
    size_t skipped; /* subject attributes pruned away */
    /* Scratch space, kept between bodies. */
    sc_flageval_attr_t *attrs;
    size_t attrs_cap;
    sc_flageval_keybuf_t canonical;
} sc_exposure_body_t;

void sc_exposure_body_init(sc_exposure_body_t *b);
void sc_exposure_body_free(sc_exposure_body_t *b);

/* Writes the body of batch `m` into `b->out` (emptied first), with
 * `context` (service, env, version) as its "context". Returns NULL, or why
 * the batch is refused whole: an exposure without a flag key, an attribute
 * without exactly one value, a malformed list, out of memory. */
const char *sc_exposure_json_body(sc_exposure_body_t *b,
                                  const sidecar_v1_ExposureBatch *m,
                                  const sc_view_t context[3]);

#endif
