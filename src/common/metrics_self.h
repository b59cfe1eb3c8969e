/* The sidecar's own counters as metrics (metrics_self.c). */
#ifndef SIDECAR_METRICS_SELF_H
#define SIDECAR_METRICS_SELF_H

#include "metrics_daemon.h"

struct sc_daemon;
typedef struct sc_metrics_self sc_metrics_self_t;

sc_metrics_self_t *sc_metrics_self_new(struct sc_daemon *d);
void sc_metrics_self_free(sc_metrics_self_t *s);

/* Adds the points of what changed since the previous call to `md`. */
void sc_metrics_self_emit(sc_metrics_self_t *s, sc_metrics_daemon_t *md);

#endif
