/* Sample messages and descriptor-driven helpers shared by the wire-contract
 * tests (round trip, golden vectors, schema evolution) and by the golden
 * vector generator (tests/tools/gen_wire_vectors.c).
 *
 * Every action of sidecar.proto has a "full" sample (every field present,
 * with values distinct enough that two swapped fields cannot compare equal),
 * an "absent" sample (no field present) and, where the message has optional
 * fields, a "zero" sample (optional fields present with zero / empty values,
 * which must stay distinguishable from absent).
 *
 * The comparison helpers walk nanopb's field descriptors, so a field added
 * to the proto is compared without touching this file; the coverage check
 * in test_codec.c then fails until a full sample sets it. */
#ifndef SIDECAR_TESTS_WIRE_SAMPLES_H
#define SIDECAR_TESTS_WIRE_SAMPLES_H

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default maximum frame body length (docs/wire.md: 4 MiB). */
#define SC_TEST_MAX_FRAME (4u * 1024u * 1024u)

typedef enum sc_sample_kind {
    SC_SAMPLE_FULL,      /* every field of the action present */
    SC_SAMPLE_ABSENT,    /* the action present, none of its fields */
    SC_SAMPLE_ZERO,      /* optional fields present with zero / empty */
    SC_SAMPLE_NO_ACTION, /* an envelope without an action */
} sc_sample_kind_t;

typedef struct sc_wire_sample {
    const char *name; /* also the golden vector's file name */
    sc_sample_kind_t kind;
    const sidecar_v1_Envelope *envelope;
} sc_wire_sample_t;

extern const sc_wire_sample_t sc_wire_samples[];
extern const size_t sc_wire_sample_count;

const sc_wire_sample_t *sc_wire_sample_find(const char *name);

/* Name and struct size of a generated message type ("?" / 0 if unknown). */
const char *sc_wire_message_name(const pb_msgdesc_t *desc);
size_t sc_wire_message_size(const pb_msgdesc_t *desc);

/* Encodes into a malloc'd buffer (NULL on failure). */
uint8_t *sc_wire_encode_alloc(const sidecar_v1_Envelope *env, size_t *len);

/* Fails the running cmocka test unless `actual` (decoded) holds exactly the
 * values of `expected` (built to be encoded): scalars, has_ flags, views
 * (absent vs present-empty included), oneof members, and list items walked
 * with sc_list_next(). `what` names the message in failure output. */
void sc_wire_assert_equal(const char *what, const pb_msgdesc_t *desc,
                          const void *expected, const void *actual);

/* Fails unless every view of decoded `msg` (nested list items included)
 * points into [base, base + len): decoding must not copy. */
void sc_wire_assert_views_within(const pb_msgdesc_t *desc, const void *msg,
                                 const uint8_t *base, size_t len);

/* Memory of sc_wire_materialize(), released at once. */
typedef struct sc_wire_arena {
    void **blocks;
    size_t count;
    size_t cap;
} sc_wire_arena_t;

void sc_wire_arena_free(sc_wire_arena_t *arena);

/* Turns decoded lists of `msg` (nested ones included) into item arrays so
 * that the message can be encoded again; views keep pointing into the
 * decoded bytes. False if an item does not decode or memory runs out. */
bool sc_wire_materialize(const pb_msgdesc_t *desc, void *msg,
                         sc_wire_arena_t *arena);

/* Which (message type, field number) pairs occur in encoded messages. */
typedef struct sc_wire_coverage {
    struct {
        const pb_msgdesc_t *desc;
        uint32_t tag;
    } seen[256];
    size_t count;
} sc_wire_coverage_t;

/* Records every field present in `bytes` (an encoded `desc`), descending
 * into sub-messages. False if the bytes are malformed. */
bool sc_wire_coverage_add(sc_wire_coverage_t *cov, const pb_msgdesc_t *desc,
                          const uint8_t *bytes, size_t len);

/* Fails unless every field of `desc` and of every message type reachable
 * from it was recorded. */
void sc_wire_assert_coverage_complete(const sc_wire_coverage_t *cov,
                                      const pb_msgdesc_t *desc);

#endif
