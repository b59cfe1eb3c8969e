/* See intake_dir.h. */
#include "intake_dir.h"

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

int th_intake_in_new_dir(char *dir_template)
{
    if (mkdtemp(dir_template) == NULL) {
        perror("mkdtemp");
        return 0;
    }
    int port = th_intake_start(dir_template);
    if (port == 0) {
        fprintf(stderr, "intake did not start\n");
        return 0;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("DD_TRACE_AGENT_URL", url, 1);
    return port;
}
