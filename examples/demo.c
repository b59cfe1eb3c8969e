/* The end-to-end demo's application: a master that initializes the runtime
 * (as PHP's MINIT would) and forks workers that each serve requests. Every
 * request produces one trace and three flag evaluations, handed to the
 * sidecar at request end.
 *
 * Usage: sidecar-demo WORKERS REQUESTS
 * The connection mode comes from DD_TRACE_SIDECAR_CONNECTION_MODE (auto by
 * default), the sidecar binary from DD_TRACE_SIDECAR_PATH. */
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Appends a msgpack string. */
static size_t put_str(uint8_t *out, const char *s)
{
    size_t l = strlen(s);
    out[0] = (uint8_t)(0xa0 | l);
    memcpy(out + 1, s, l);
    return 1 + l;
}

/* [[{"trace_id": id, "span_id": 1, "name": "demo.request",
 *    "service": "sidecar-demo"}]] */
static size_t demo_trace(uint8_t *out, uint64_t id)
{
    size_t n = 0;
    out[n++] = 0x91; /* one trace */
    out[n++] = 0x91; /* one span */
    out[n++] = 0x84; /* four fields */
    n += put_str(out + n, "trace_id");
    out[n++] = 0xcf;
    for (int i = 7; i >= 0; i--) {
        out[n++] = (uint8_t)(id >> (8 * i));
    }
    n += put_str(out + n, "span_id");
    out[n++] = 0x01;
    n += put_str(out + n, "name");
    n += put_str(out + n, "demo.request");
    n += put_str(out + n, "service");
    n += put_str(out + n, "sidecar-demo");
    return n;
}

/* What a feature-flag SDK would report for one request. */
static void evaluate_flags(int worker, int request)
{
    const char *plan = request % 2 == 0 ? "pro" : "free";
    sc_attr_t ctx[] = {
        {.key = "plan", .type = SC_ATTR_STRING, .string_value = plan},
        {.key = "seats", .type = SC_ATTR_NUMBER, .number_value = worker + 1},
        {.key = "beta", .type = SC_ATTR_BOOL, .bool_value = request % 3 == 0},
    };
    sc_flag_evaluation_t checkout = {
        .flag_key = "new-checkout",
        .variant_key = request % 2 == 0 ? "on" : "off",
        .allocation_key = "rollout-50",
        .reason = "TARGETING_MATCH",
        .targeting_key = plan,
        .context = ctx,
        .context_len = 3,
    };
    sc_flag_evaluation_record(&checkout);
    sc_flag_evaluation_t banner = {
        .flag_key = "banner-color", .variant_key = "blue", .reason = "STATIC"};
    sc_flag_evaluation_record(&banner);
    /* The default path counts too: no variant, an error. */
    sc_flag_evaluation_t missing = {.flag_key = "missing-flag",
                                    .reason = "ERROR",
                                    .error_message = "flag not found"};
    sc_flag_evaluation_record(&missing);
}

static int serve(int worker, int requests)
{
    uint8_t payload[128];
    int dropped = 0;
    for (int r = 0; r < requests; r++) {
        uint64_t id = ((uint64_t)(worker + 1) << 32) | (uint64_t)r;
        size_t len = demo_trace(payload, id);
        dropped += sc_send_trace(payload, len, 1) != 0;
        evaluate_flags(worker, r);
        /* Request end: never waits on the sidecar beyond the budget. */
        dropped += sc_flag_evaluations_flush() != 0;
        sc_flush();
    }
    int rc = sc_flush_sync(5000);
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    printf("worker %d (pid %d): %d requests, %d drops, %llu frames in %llu "
           "writes, final flush %s\n",
           worker, (int)getpid(), requests, dropped,
           (unsigned long long)st.frames_written, (unsigned long long)st.writes,
           rc == 0 ? "ok" : sc_strerror(rc));
    fflush(stdout); /* the worker ends with _exit() */
    return rc == 0 && dropped == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sidecar-demo WORKERS REQUESTS\n");
        return 2;
    }
    int workers = atoi(argv[1]);
    int requests = atoi(argv[2]);
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_config_from_env(&cfg);
    cfg.client.language = "php";
    cfg.client.language_version = "8.2";
    cfg.client.tracer_version = "demo";
    cfg.client.service = "sidecar-demo";
    cfg.client.env = "demo";
    sc_init(&cfg);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    printf("master pid %d: mode %s (%s), endpoint %s\n", (int)getpid(),
           sc_connection_mode_name(info.mode), info.reason, info.endpoint);
    fflush(stdout);
    int failed = 0;
    for (int w = 0; w < workers; w++) {
        if (fork() == 0) {
            _exit(serve(w, requests));
        }
    }
    for (int w = 0; w < workers; w++) {
        int status = 0;
        wait(&status);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    sc_shutdown();
    printf("%d workers done, %d failed\n", workers, failed);
    return failed == 0 ? 0 : 1;
}
