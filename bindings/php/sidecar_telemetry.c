/* The PHP functions for the application's telemetry (docs/telemetry.md,
 * sidecar.stub.php): dependencies loaded, integrations changed, log
 * messages and telemetry metrics. app-started and app-closing the extension
 * sends itself (sidecar.c). Each is one sc_send_telemetry() call: true
 * when queued; false when it breaks a rule of the runtime, was dropped
 * (counted by the runtime) or the extension is inactive. A malformed
 * argument throws and nothing is sent. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php_sidecar.h"

#include "sidecar.h"

#include <string.h>

/* A string or null member `key` of `item`: NULL when absent or null;
 * false when another type (thrown). */
static bool opt_string(HashTable *item, const char *key, const char **out,
                       uint32_t arg)
{
    zval *v = zend_hash_str_find_deref(item, key, strlen(key));
    *out = NULL;
    if (v == NULL || Z_TYPE_P(v) == IS_NULL) {
        return true;
    }
    if (Z_TYPE_P(v) != IS_STRING) {
        zend_argument_type_error(arg, "member \"%s\" must be a string", key);
        return false;
    }
    *out = Z_STRVAL_P(v);
    return true;
}

/* -1 when member `key` is absent or null, else 0/1 (any truthy value). */
static int opt_bool(HashTable *item, const char *key)
{
    zval *v = zend_hash_str_find_deref(item, key, strlen(key));
    return v == NULL || Z_TYPE_P(v) == IS_NULL ? -1 : zend_is_true(v);
}

static bool send_event(const sc_telemetry_t *ev)
{
    return php_sidecar_active && sc_send_telemetry(ev) == 0;
}

/* sidecar_telemetry_dependencies(array $dependencies): bool
 * ["vendor/package" => "1.2.3", "other/package" => null, "no/version"]. */
ZEND_FUNCTION(sidecar_telemetry_dependencies)
{
    HashTable *list;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_ARRAY_HT(list)
    ZEND_PARSE_PARAMETERS_END();
    uint32_t n = zend_hash_num_elements(list);
    if (n == 0) {
        RETURN_TRUE;
    }
    sc_telemetry_dependency_t *deps = safe_emalloc(n, sizeof *deps, 0);
    uint32_t i = 0;
    zend_string *key;
    zval *v;
    ZEND_HASH_FOREACH_STR_KEY_VAL(list, key, v)
    {
        ZVAL_DEREF(v);
        if (key != NULL &&
            (Z_TYPE_P(v) == IS_STRING || Z_TYPE_P(v) == IS_NULL)) {
            deps[i].name = ZSTR_VAL(key);
            deps[i].version = Z_TYPE_P(v) == IS_STRING ? Z_STRVAL_P(v) : NULL;
        } else if (key == NULL && Z_TYPE_P(v) == IS_STRING) {
            deps[i].name = Z_STRVAL_P(v);
            deps[i].version = NULL;
        } else {
            efree(deps);
            zend_argument_type_error(1, "must map package names to version "
                                        "strings or null, or list names");
            RETURN_THROWS();
        }
        i++;
    }
    ZEND_HASH_FOREACH_END();
    sc_telemetry_t ev = {.event = SC_TELEMETRY_DEPENDENCIES_LOADED,
                         .dependencies = deps,
                         .dependencies_len = n};
    bool ok = send_event(&ev);
    efree(deps);
    RETURN_BOOL(ok);
}

/* sidecar_telemetry_integrations(array $integrations): bool
 * A list of ["name" => "pdo", "enabled" => true, "version" => ?string,
 * "compatible" => ?bool, "auto_enabled" => ?bool]. */
ZEND_FUNCTION(sidecar_telemetry_integrations)
{
    HashTable *list;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_ARRAY_HT(list)
    ZEND_PARSE_PARAMETERS_END();
    uint32_t n = zend_hash_num_elements(list);
    if (n == 0) {
        RETURN_TRUE;
    }
    sc_telemetry_integration_t *in = safe_emalloc(n, sizeof *in, 0);
    uint32_t i = 0;
    zval *item;
    ZEND_HASH_FOREACH_VAL(list, item)
    {
        ZVAL_DEREF(item);
        if (Z_TYPE_P(item) != IS_ARRAY) {
            efree(in);
            zend_argument_type_error(1, "must be a list of arrays");
            RETURN_THROWS();
        }
        HashTable *h = Z_ARRVAL_P(item);
        if (!opt_string(h, "name", &in[i].name, 1) ||
            !opt_string(h, "version", &in[i].version, 1)) {
            efree(in);
            RETURN_THROWS();
        }
        if (in[i].name == NULL) {
            efree(in);
            zend_argument_value_error(1, "needs a \"name\" in every item");
            RETURN_THROWS();
        }
        in[i].enabled = opt_bool(h, "enabled") != 0; /* absent: enabled */
        in[i].compatible = opt_bool(h, "compatible");
        in[i].auto_enabled = opt_bool(h, "auto_enabled");
        i++;
    }
    ZEND_HASH_FOREACH_END();
    sc_telemetry_t ev = {.event = SC_TELEMETRY_INTEGRATIONS_CHANGE,
                         .integrations = in,
                         .integrations_len = n};
    bool ok = send_event(&ev);
    efree(in);
    RETURN_BOOL(ok);
}

/* sidecar_telemetry_log(string $level, string $message,
 *     ?string $stack_trace = null, ?string $tags = null): bool
 * $level: error, warn or debug; $tags "key:value,...". */
ZEND_FUNCTION(sidecar_telemetry_log)
{
    zend_string *level, *message, *stack = NULL, *tags = NULL;
    ZEND_PARSE_PARAMETERS_START(2, 4)
    Z_PARAM_STR(level)
    Z_PARAM_STR(message)
    Z_PARAM_OPTIONAL
    Z_PARAM_STR_OR_NULL(stack)
    Z_PARAM_STR_OR_NULL(tags)
    ZEND_PARSE_PARAMETERS_END();
    static const char *const levels[] = {"error", "warn", "debug"};
    sc_telemetry_log_t log = {.message = ZSTR_VAL(message),
                              .stack_trace = stack ? ZSTR_VAL(stack) : NULL,
                              .tags = tags ? ZSTR_VAL(tags) : NULL};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(ZSTR_VAL(level), levels[i]) == 0) {
            log.level = (sc_telemetry_log_level_t)(SC_TELEMETRY_LOG_ERROR + i);
        }
    }
    if (log.level == 0) {
        zend_argument_value_error(1, "must be one of error, warn, debug");
        RETURN_THROWS();
    }
    sc_telemetry_t ev = {
        .event = SC_TELEMETRY_LOGS, .logs = &log, .logs_len = 1};
    RETURN_BOOL(send_event(&ev));
}

/* sidecar_telemetry_metric(string $type, string $name, int|float $value,
 *     ?string $tags = null, bool $common = false,
 *     ?string $namespace = null): bool
 * $type: count, gauge, rate (generate-metrics) or distribution. */
ZEND_FUNCTION(sidecar_telemetry_metric)
{
    zend_string *type, *name, *tags = NULL, *ns = NULL;
    double value;
    bool common = false;
    ZEND_PARSE_PARAMETERS_START(3, 6)
    Z_PARAM_STR(type)
    Z_PARAM_STR(name)
    Z_PARAM_DOUBLE(value)
    Z_PARAM_OPTIONAL
    Z_PARAM_STR_OR_NULL(tags)
    Z_PARAM_BOOL(common)
    Z_PARAM_STR_OR_NULL(ns)
    ZEND_PARSE_PARAMETERS_END();
    static const struct {
        const char *name;
        sc_telemetry_metric_type_t type;
    } types[] = {{"count", SC_TELEMETRY_COUNT},
                 {"gauge", SC_TELEMETRY_GAUGE},
                 {"rate", SC_TELEMETRY_RATE},
                 {"distribution", SC_TELEMETRY_DISTRIBUTION}};
    int k = -1;
    for (int i = 0; i < 4; i++) {
        if (strcmp(ZSTR_VAL(type), types[i].name) == 0) {
            k = i;
        }
    }
    if (k < 0) {
        zend_argument_value_error(1, "must be one of count, gauge, rate, "
                                     "distribution");
        RETURN_THROWS();
    }
    sc_telemetry_metric_t m = {.ns = ns ? ZSTR_VAL(ns) : NULL,
                               .name = ZSTR_VAL(name),
                               .tags = tags ? ZSTR_VAL(tags) : NULL,
                               .value = value,
                               .common = common,
                               .type = types[k].type};
    sc_telemetry_t ev = {.event = types[k].type == SC_TELEMETRY_DISTRIBUTION
                                      ? SC_TELEMETRY_DISTRIBUTIONS
                                      : SC_TELEMETRY_GENERATE_METRICS,
                         .metrics = &m,
                         .metrics_len = 1};
    RETURN_BOOL(send_event(&ev));
}
