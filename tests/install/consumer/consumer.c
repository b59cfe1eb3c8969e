/* A program built against an installed sidecar, using only installed files
 * (tests/install/install_check.py builds it with pkg-config and with CMake's
 * find_package). It initializes the runtime from the environment as an
 * application would, sends one trace whose service is argv[1], waits for
 * the sidecar to have it, and prints what the runtime resolved:
 *
 *   sidecar_path=... mode=... spawns=N sidecar_pid=P
 *
 * Exits 0 when the trace was handed over to a sidecar it started, 1
 * otherwise. */
#include <sidecar.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t put_str(unsigned char *out, const char *s)
{
    size_t len = strlen(s);
    out[0] = (unsigned char)(0xa0 | len); /* fixstr: under 32 bytes */
    memcpy(out + 1, s, len);
    return 1 + len;
}

/* [[{"trace_id": 7, "span_id": 1, "name": "consumer.run", "service": S}]] */
static size_t one_trace(unsigned char *out, const char *service)
{
    size_t n = 0;
    out[n++] = 0x91;
    out[n++] = 0x91;
    out[n++] = 0x84;
    n += put_str(out + n, "trace_id");
    out[n++] = 0x07;
    n += put_str(out + n, "span_id");
    out[n++] = 0x01;
    n += put_str(out + n, "name");
    n += put_str(out + n, "consumer.run");
    n += put_str(out + n, "service");
    n += put_str(out + n, service);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) > 31) {
        fprintf(stderr, "usage: consumer SERVICE (at most 31 bytes)\n");
        return 2;
    }
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    if (sc_config_from_env(&cfg) != 0) {
        fprintf(stderr, "consumer: bad DD_* setting\n");
        return 1;
    }
    if (sc_init(&cfg) != 0) {
        fprintf(stderr, "consumer: sc_init failed\n");
        return 1;
    }
    unsigned char trace[128];
    int sent = sc_send_trace(trace, one_trace(trace, argv[1]), 1);
    int flushed = sc_flush_sync(5000);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    printf("sidecar_path=%s mode=%s spawns=%llu sidecar_pid=%u version=%s\n",
           cfg.sidecar_path, sc_connection_mode_name(info.mode),
           (unsigned long long)info.spawns, (unsigned)info.sidecar_pid,
           sc_version());
    sc_shutdown();
    if (sent != 0 || flushed != 0) {
        fprintf(stderr, "consumer: send %s, flush %s\n", sc_strerror(sent),
                sc_strerror(flushed));
        return 1;
    }
    return info.mode == SC_MODE_SUBPROCESS && info.spawns > 0 ? 0 : 1;
}
