/* Codec benchmark (docs/performance.md): ns per encode + decode of one trace
 * action (an Envelope with a 300-byte TracePayload) with the project's codec
 * (sc_codec_*: the trace fast path of codec_trace.c), next to protobuf-c on
 * the same message, measured in the same run; and, for reference, nanopb's
 * general path alone (what every other action costs). All must produce the
 * same bytes, or the program fails.
 *
 * Without protobuf-c at build time the row says so and has no baseline.
 * Prints one JSON line (bench/run.sh makes the table). */
#include "codec.h"

#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#ifdef SIDECAR_BENCH_HAVE_PROTOBUF_C
#include "sidecar.pb-c.h"
#endif

#define PAYLOAD 300
#define OPS     100000
#define BLOCKS  5

static uint8_t payload[PAYLOAD];
static uint8_t wire[1024];
static volatile size_t sink; /* keeps the decoded results alive */

static void make_payload(void)
{
    memset(payload, 'x', PAYLOAD);
    const uint8_t head[8] = {0x91, 0x91, 0x81, 0xa1, 'p', 0xda, 0x01, 0x24};
    memcpy(payload, head, sizeof head); /* str16 of 292 = 0x124 bytes */
}

static sidecar_v1_Envelope trace_action(uint64_t seq)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_trace_payload_tag;
    env.action.trace_payload.msgpack = sc_view_bytes(payload, PAYLOAD);
    env.action.trace_payload.trace_count = 1;
    return env;
}

static size_t project_once(uint64_t seq)
{
    sidecar_v1_Envelope env = trace_action(seq);
    size_t size = 0, written = 0;
    if (!sc_codec_encoded_size(&env, &size) ||
        !sc_codec_encode(&env, wire, sizeof wire, &written)) {
        fprintf(stderr, "bench_codec: nanopb encode failed\n");
        exit(1);
    }
    sidecar_v1_Envelope out;
    if (!sc_codec_decode(wire, written, &out, NULL) ||
        out.action.trace_payload.msgpack.len != PAYLOAD) {
        fprintf(stderr, "bench_codec: nanopb decode failed\n");
        exit(1);
    }
    sink += out.action.trace_payload.trace_count;
    return written;
}

/* nanopb alone: its size pass, encode pass and decoder. */
static uint8_t wire_n[1024];

static size_t nanopb_general_once(uint64_t seq)
{
    sidecar_v1_Envelope env = trace_action(seq);
    size_t size = 0;
    pb_ostream_t os = pb_ostream_from_buffer(wire_n, sizeof wire_n);
    if (!pb_get_encoded_size(&size, sidecar_v1_Envelope_fields, &env) ||
        !pb_encode(&os, sidecar_v1_Envelope_fields, &env)) {
        fprintf(stderr, "bench_codec: nanopb encode failed\n");
        exit(1);
    }
    sidecar_v1_Envelope out;
    if (!sc_codec_decode_nanopb(wire_n, os.bytes_written, &out, NULL) ||
        out.action.trace_payload.msgpack.len != PAYLOAD) {
        fprintf(stderr, "bench_codec: nanopb decode failed\n");
        exit(1);
    }
    sink += out.action.trace_payload.trace_count;
    return os.bytes_written;
}

#ifdef SIDECAR_BENCH_HAVE_PROTOBUF_C
static uint8_t wire_c[1024];

static size_t protobuf_c_once(uint64_t seq)
{
    Sidecar__V1__TracePayload tp = SIDECAR__V1__TRACE_PAYLOAD__INIT;
    tp.msgpack.data = payload;
    tp.msgpack.len = PAYLOAD;
    tp.trace_count = 1;
    Sidecar__V1__Envelope env = SIDECAR__V1__ENVELOPE__INIT;
    env.seq = seq;
    env.action_case = SIDECAR__V1__ENVELOPE__ACTION_TRACE_PAYLOAD;
    env.trace_payload = &tp;
    size_t size = sidecar__v1__envelope__get_packed_size(&env);
    if (size > sizeof wire_c) {
        exit(1);
    }
    size_t written = sidecar__v1__envelope__pack(&env, wire_c);
    Sidecar__V1__Envelope *out =
        sidecar__v1__envelope__unpack(NULL, written, wire_c);
    if (out == NULL || out->trace_payload == NULL ||
        out->trace_payload->msgpack.len != PAYLOAD) {
        fprintf(stderr, "bench_codec: protobuf-c decode failed\n");
        exit(1);
    }
    sink += out->trace_payload->trace_count;
    sidecar__v1__envelope__free_unpacked(out, NULL);
    return written;
}
#endif

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over BLOCKS blocks of OPS calls of ns per call. */
static double time_ns(size_t (*fn)(uint64_t))
{
    double v[BLOCKS];
    for (int b = 0; b < BLOCKS; b++) {
        uint64_t t0 = uv_hrtime();
        for (uint64_t i = 0; i < OPS; i++) {
            fn(i + 1000);
        }
        v[b] = (double)(uv_hrtime() - t0) / OPS;
    }
    qsort(v, BLOCKS, sizeof v[0], compare_doubles);
    return v[BLOCKS / 2];
}

static void print_row(const char *metric, double proj, const char *base_name,
                      double base, const char *target, double ratio_max)
{
    printf("{\"metric\":\"%s\",\"unit\":\"ns\",\"project\":%.1f,"
           "\"baseline_name\":\"%s\",",
           metric, proj, base_name);
    if (base > 0) {
        printf("\"baseline\":%.1f,\"ratio\":%.3f,", base, proj / base);
    } else {
        printf("\"baseline\":null,\"ratio\":null,");
    }
    printf("\"target\":\"%s\",\"ratio_max\":%g,\"ratio_min\":0,"
           "\"value_max\":0,\"dropped\":0}\n",
           target, ratio_max);
}

int main(void)
{
    make_payload();
    size_t fast = project_once(123456), general = nanopb_general_once(123456);
    if (fast != general || memcmp(wire, wire_n, fast) != 0) {
        fprintf(stderr, "bench_codec: the fast path and nanopb differ\n");
        return 1;
    }
    double base = 0;
    const char *base_name = "protobuf-c: not built (libprotobuf-c-dev or "
                            "protoc-c missing)";
#ifdef SIDECAR_BENCH_HAVE_PROTOBUF_C
    size_t a = project_once(123456), b = protobuf_c_once(123456);
    if (a != b || memcmp(wire, wire_c, a) != 0) {
        fprintf(stderr, "bench_codec: nanopb and protobuf-c bytes differ\n");
        return 1;
    }
    base = time_ns(protobuf_c_once);
    base_name = "protobuf-c, same bytes";
#endif
    double proj = time_ns(project_once);
    double ref = time_ns(nanopb_general_once);
    print_row("codec: encode+decode of a 300 B trace action", proj, base_name,
              base, "<= 1.2x", 1.2);
    print_row("codec, nanopb general path (reference, every other action)", ref,
              base_name, base, "-", 0);
    return 0;
}
