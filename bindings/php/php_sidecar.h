/* The sidecar PHP extension: shared declarations of its two files.
 * sidecar.c owns the module lifecycle and INI; sidecar_functions.c the
 * PHP functions. */
#ifndef PHP_SIDECAR_H
#define PHP_SIDECAR_H

#include "php.h" /* first: its configuration selects the libc features */

#include <stdbool.h>
#include <stdint.h>

#define PHP_SIDECAR_EXTNAME "sidecar"
#define PHP_SIDECAR_VERSION "0.1.0"

extern zend_module_entry sidecar_module_entry;
#define phpext_sidecar_ptr &sidecar_module_entry

/* Per-process counters of the extension itself (the runtime counts the
 * rest). A forked process starts from zero: see php_sidecar_counters(). */
typedef struct php_sidecar_counters {
    uint32_t pid;
    uint64_t requests;
    /* The flush at the end of a request, wall time. On a loaded machine a
     * slow one is usually preemption, not waiting: the context switches
     * tell (voluntary = this thread blocked, involuntary = preempted). */
    uint64_t rshutdown_ns_last;
    uint64_t rshutdown_ns_max;
    uint64_t rshutdown_ns_max_unpreempted;
    uint64_t rshutdown_blocked;   /* request ends that blocked at all */
    uint64_t rshutdown_preempted; /* request ends that were preempted */
    uint64_t traces_sent;
    uint64_t traces_dropped;
    uint64_t evaluations_counted;
    uint64_t evaluations_not_counted; /* dropped, rejected or switched off */
    uint64_t exposures_sent;
    uint64_t exposures_dropped;
    uint64_t metrics_sent;
    uint64_t metrics_invalid; /* broke a rule: not sent */
    uint64_t metrics_dropped;
    bool app_started; /* this process sent its APP_STARTED */
} php_sidecar_counters_t;

/* This process's counters, reset on the first use after a fork. */
php_sidecar_counters_t *php_sidecar_counters(void);

/* True once sc_init() ran (here or in the process we were forked from). */
extern bool php_sidecar_active;

extern const zend_function_entry php_sidecar_functions[];

/* sidecar_telemetry.c */
ZEND_FUNCTION(sidecar_telemetry_dependencies);
ZEND_FUNCTION(sidecar_telemetry_integrations);
ZEND_FUNCTION(sidecar_telemetry_log);
ZEND_FUNCTION(sidecar_telemetry_metric);

#endif
