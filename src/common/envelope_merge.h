/* Protobuf merging of an Envelope whose action field appears more than once.
 *
 * Protobuf says that the same message field twice is one message, the merge
 * of both, and that a later member of a oneof replaces an earlier one. nanopb
 * follows that for scalars, but the codec's lazily decoded lists (sc_list_t)
 * record one span per list, which cannot cover items in two separate
 * occurrences of the action. So before decoding, the server rewrites such a
 * frame into the equivalent one with a single occurrence: concatenating the
 * encodings of two messages is, by protobuf's definition, merging them. */
#ifndef SIDECAR_ENVELOPE_MERGE_H
#define SIDECAR_ENVELOPE_MERGE_H

#include "buf.h"

/* Looks at the top-level fields of the encoded Envelope `msg`. When the
 * action that wins (the last action field, with every occurrence of it since
 * a different action field last appeared) occurs more than once, writes the
 * merged Envelope into `scratch` and points `*out` there; otherwise `*out`
 * is `msg` itself. Bytes that are not a well-formed sequence of fields are
 * left alone for the decoder to refuse. Returns false only when memory runs
 * out. */
bool sc_envelope_merge_actions(const uint8_t *msg, size_t len,
                               sc_buf_t *scratch, const uint8_t **out,
                               size_t *out_len);

#endif
