/* A thread-mode master for the descriptor check (tests/conformance/fds.py):
 * runs the listener thread in this process (as PHP's master would), sends
 * a trace, flag evaluations and an exposure through it, waits for the
 * barrier, then prints "delivered" and waits for a line on stdin, so the
 * checker can read /proc/<pid>/fdinfo of a master that has delivered.
 *
 * The agent comes from DD_TRACE_AGENT_URL, the endpoint directory from the
 * environment too (sc_config_from_env). */
#include "sidecar.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_config_from_env(&cfg);
    cfg.mode = SC_MODE_THREAD;
    cfg.client.language = "c";
    if (sc_init(&cfg) != 0) {
        fprintf(stderr, "sc_init failed\n");
        return 1;
    }
    /* [[{"trace_id":7,"span_id":1}]] */
    static const unsigned char trace[] = {
        0x91, 0x91, 0x82, 0xa8, 't', 'r', 'a', 'c', 'e', '_', 'i',
        'd',  0x07, 0xa7, 's',  'p', 'a', 'n', '_', 'i', 'd', 0x01};
    sc_send_trace(trace, sizeof trace, 1);
    sc_flag_evaluation_t e = {.flag_key = "fd-check", .variant_key = "on"};
    sc_flag_evaluation_record(&e);
    sc_flag_evaluations_flush();
    sc_exposure_t x = {.flag_key = "fd-check", .subject_id = "u"};
    sc_send_exposures(&x, 1);
    int rc = sc_flush_sync(5000);
    printf("delivered %d\n", rc);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof line, stdin) == NULL) {
        line[0] = '\0';
    }
    sc_shutdown();
    return rc == 0 ? 0 : 1;
}
