/* The PHP functions of the sidecar extension (sidecar.stub.php). Each is a
 * thin call into the runtime; none waits for the sidecar except
 * sidecar_flush() and sidecar_stats(), which are asked to. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "php_sidecar.h"

#include "ext/json/php_json.h"
#include "zend_smart_str.h"
#include "sidecar.h"
#include "sidecar_arginfo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

/* sidecar_send_trace(string $msgpack, int $trace_count): bool
 * `msgpack` is a v0.4 array of `trace_count` traces. false: dropped (and
 * counted), or the extension is not active. */
ZEND_FUNCTION(sidecar_send_trace)
{
    zend_string *msgpack;
    zend_long trace_count;
    ZEND_PARSE_PARAMETERS_START(2, 2)
    Z_PARAM_STR(msgpack)
    Z_PARAM_LONG(trace_count)
    ZEND_PARSE_PARAMETERS_END();
    if (trace_count < 0 || (zend_ulong)trace_count > UINT32_MAX) {
        zend_argument_value_error(2, "must be between 0 and %" PRIu32,
                                  UINT32_MAX);
        RETURN_THROWS();
    }
    if (!php_sidecar_active) {
        RETURN_FALSE;
    }
    int rc = sc_send_trace(ZSTR_VAL(msgpack), ZSTR_LEN(msgpack),
                           (uint32_t)trace_count);
    php_sidecar_counters_t *c = php_sidecar_counters();
    if (rc == 0) {
        c->traces_sent += (uint64_t)trace_count;
    } else {
        c->traces_dropped += (uint64_t)trace_count;
    }
    RETURN_BOOL(rc == 0);
}

static const char *str_or_null(const zend_string *s)
{
    return s != NULL ? ZSTR_VAL(s) : NULL;
}

/* PHP array → context attributes. Strings, ints, floats and bools are kept
 * (ints and floats as numbers); other values (null, arrays, objects) have
 * no attribute type and are left out. Integer keys become decimal strings,
 * written into `key_space` (one 24-byte slot per element). */
static size_t context_from_array(HashTable *ht, sc_attr_t *attrs,
                                 char (*key_space)[24])
{
    size_t n = 0;
    zend_ulong index;
    zend_string *key;
    zval *value;
    ZEND_HASH_FOREACH_KEY_VAL(ht, index, key, value)
    {
        ZVAL_DEREF(value);
        sc_attr_t *a = &attrs[n];
        memset(a, 0, sizeof *a);
        switch (Z_TYPE_P(value)) {
        case IS_STRING:
            a->type = SC_ATTR_STRING;
            a->string_value = Z_STRVAL_P(value);
            break;
        case IS_LONG:
            a->type = SC_ATTR_NUMBER;
            a->number_value = (double)Z_LVAL_P(value);
            break;
        case IS_DOUBLE:
            a->type = SC_ATTR_NUMBER;
            a->number_value = Z_DVAL_P(value);
            break;
        case IS_TRUE:
        case IS_FALSE:
            a->type = SC_ATTR_BOOL;
            a->bool_value = Z_TYPE_P(value) == IS_TRUE;
            break;
        default:
            continue;
        }
        if (key != NULL) {
            a->key = ZSTR_VAL(key);
        } else {
            snprintf(key_space[n], sizeof key_space[n], ZEND_ULONG_FMT, index);
            a->key = key_space[n];
        }
        n++;
    }
    ZEND_HASH_FOREACH_END();
    return n;
}

/* sidecar_record_flag_evaluation(string $flag, ?string $variant = null,
 *     ?string $allocation = null, ?string $reason = null,
 *     ?string $targeting_key = null, ?string $rule = null,
 *     ?string $error = null, array $context = []): bool
 * true: counted. false: counted as dropped, rejected, switched off
 * (DD_FLAGGING_EVALUATION_COUNTS_ENABLED), or the extension is inactive. */
ZEND_FUNCTION(sidecar_record_flag_evaluation)
{
    zend_string *flag;
    zend_string *variant = NULL, *allocation = NULL, *reason = NULL;
    zend_string *targeting_key = NULL, *rule = NULL, *error = NULL;
    HashTable *context = NULL;
    ZEND_PARSE_PARAMETERS_START(1, 8)
    Z_PARAM_STR(flag)
    Z_PARAM_OPTIONAL
    Z_PARAM_STR_OR_NULL(variant)
    Z_PARAM_STR_OR_NULL(allocation)
    Z_PARAM_STR_OR_NULL(reason)
    Z_PARAM_STR_OR_NULL(targeting_key)
    Z_PARAM_STR_OR_NULL(rule)
    Z_PARAM_STR_OR_NULL(error)
    Z_PARAM_ARRAY_HT(context)
    ZEND_PARSE_PARAMETERS_END();
    if (!php_sidecar_active) {
        RETURN_FALSE;
    }
    uint32_t count = context != NULL ? zend_hash_num_elements(context) : 0;
    sc_attr_t *attrs = NULL;
    char(*key_space)[24] = NULL;
    size_t attr_count = 0;
    if (count > 0) {
        attrs = safe_emalloc(count, sizeof *attrs, 0);
        key_space = safe_emalloc(count, sizeof *key_space, 0);
        attr_count = context_from_array(context, attrs, key_space);
    }
    sc_flag_evaluation_t e = {
        .flag_key = ZSTR_VAL(flag),
        .variant_key = str_or_null(variant),
        .allocation_key = str_or_null(allocation),
        .reason = str_or_null(reason),
        .targeting_key = str_or_null(targeting_key),
        .targeting_rule_key = str_or_null(rule),
        .error_message = str_or_null(error),
        .context = attrs,
        .context_len = attr_count,
    };
    int rc = sc_flag_evaluation_record(&e);
    if (attrs != NULL) {
        efree(attrs);
        efree(key_space);
    }
    php_sidecar_counters_t *c = php_sidecar_counters();
    if (rc == 0) {
        c->evaluations_counted++;
    } else {
        c->evaluations_not_counted++;
    }
    RETURN_BOOL(rc == 0);
}

/* A timeout argument (the first) in milliseconds; false after throwing. */
static bool timeout_in_range(zend_long timeout_ms)
{
    if (timeout_ms < 0 || (zend_ulong)timeout_ms > UINT32_MAX) {
        zend_argument_value_error(1, "must be between 0 and %" PRIu32,
                                  UINT32_MAX);
        return false;
    }
    return true;
}

/* ---- sidecar_send_exposures --------------------------------------------- */

/* The string at `key` of an exposure array, NULL when absent or null;
 * false (after throwing) when present with another type. */
static bool exposure_string(HashTable *ht, const char *key, uint32_t index,
                            const char **out)
{
    zval *v = zend_hash_str_find_deref(ht, key, strlen(key));
    *out = NULL;
    if (v == NULL || Z_TYPE_P(v) == IS_NULL) {
        return true;
    }
    if (Z_TYPE_P(v) != IS_STRING) {
        zend_argument_type_error(1,
                                 "exposure %" PRIu32 ": \"%s\" must be "
                                 "a string or null",
                                 index, key);
        return false;
    }
    *out = Z_STRVAL_P(v);
    return true;
}

/* One PHP exposure array into `e`; attributes go to attrs/key_space, which
 * the caller frees. false after throwing. */
static bool exposure_from_array(zval *item, uint32_t index, sc_exposure_t *e,
                                sc_attr_t **attrs, char (**key_space)[24])
{
    ZVAL_DEREF(item);
    if (Z_TYPE_P(item) != IS_ARRAY) {
        zend_argument_type_error(1, "exposure %" PRIu32 " must be an array",
                                 index);
        return false;
    }
    HashTable *ht = Z_ARRVAL_P(item);
    memset(e, 0, sizeof *e);
    if (!exposure_string(ht, "flag_key", index, &e->flag_key) ||
        !exposure_string(ht, "allocation_key", index, &e->allocation_key) ||
        !exposure_string(ht, "variant_key", index, &e->variant_key) ||
        !exposure_string(ht, "subject_id", index, &e->subject_id)) {
        return false;
    }
    if (e->flag_key == NULL || e->flag_key[0] == '\0') {
        zend_argument_value_error(1,
                                  "exposure %" PRIu32 " needs a "
                                  "\"flag_key\"",
                                  index);
        return false;
    }
    zval *ts =
        zend_hash_str_find_deref(ht, "timestamp_ms", sizeof "timestamp_ms" - 1);
    if (ts != NULL && Z_TYPE_P(ts) == IS_LONG) {
        e->timestamp_ms = (int64_t)Z_LVAL_P(ts);
    }
    zval *sa = zend_hash_str_find_deref(ht, "subject_attributes",
                                        sizeof "subject_attributes" - 1);
    if (sa != NULL && Z_TYPE_P(sa) == IS_ARRAY &&
        zend_hash_num_elements(Z_ARRVAL_P(sa)) > 0) {
        uint32_t count = zend_hash_num_elements(Z_ARRVAL_P(sa));
        *attrs = safe_emalloc(count, sizeof **attrs, 0);
        *key_space = safe_emalloc(count, sizeof **key_space, 0);
        e->subject_attributes = *attrs;
        e->subject_attributes_len =
            context_from_array(Z_ARRVAL_P(sa), *attrs, *key_space);
    }
    return true;
}

/* sidecar_send_exposures(array $exposures): bool
 * Each exposure is an array: "flag_key" (required), "allocation_key",
 * "variant_key", "subject_id" (strings), "subject_attributes" (array of
 * strings, numbers, bools), "timestamp_ms" (int; default now). Sent as one
 * batch, delivered by the sidecar to the agent's exposures endpoint. true:
 * queued; false: dropped (and counted) or the extension is not active. A
 * malformed exposure throws and nothing is sent. */
ZEND_FUNCTION(sidecar_send_exposures)
{
    HashTable *list;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_ARRAY_HT(list)
    ZEND_PARSE_PARAMETERS_END();
    uint32_t n = zend_hash_num_elements(list);
    if (n == 0) {
        RETURN_TRUE;
    }
    sc_exposure_t *exposures = safe_emalloc(n, sizeof *exposures, 0);
    sc_attr_t **attrs = ecalloc(n, sizeof *attrs);
    char(**key_space)[24] = ecalloc(n, sizeof *key_space);
    uint32_t i = 0;
    bool ok = true;
    zval *item;
    ZEND_HASH_FOREACH_VAL(list, item)
    {
        if (!exposure_from_array(item, i, &exposures[i], &attrs[i],
                                 &key_space[i])) {
            ok = false;
            break;
        }
        i++;
    }
    ZEND_HASH_FOREACH_END();
    int rc = -1;
    if (ok && php_sidecar_active) {
        rc = sc_send_exposures(exposures, n);
        php_sidecar_counters_t *c = php_sidecar_counters();
        if (rc == 0) {
            c->exposures_sent += n;
        } else {
            c->exposures_dropped += n;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        if (attrs[k] != NULL) {
            efree(attrs[k]);
            efree(key_space[k]);
        }
    }
    efree(attrs);
    efree(key_space);
    efree(exposures);
    if (!ok) {
        RETURN_THROWS();
    }
    RETURN_BOOL(rc == 0);
}

/* sidecar_flush(int $timeout_ms = 1000): bool
 * Sends the flag-evaluation counts so far and waits until the sidecar has
 * handled everything this process sent, at most timeout_ms. */
ZEND_FUNCTION(sidecar_flush)
{
    zend_long timeout_ms = 1000;
    ZEND_PARSE_PARAMETERS_START(0, 1)
    Z_PARAM_OPTIONAL
    Z_PARAM_LONG(timeout_ms)
    ZEND_PARSE_PARAMETERS_END();
    if (!timeout_in_range(timeout_ms)) {
        RETURN_THROWS();
    }
    if (!php_sidecar_active) {
        RETURN_FALSE;
    }
    int queued = sc_flag_evaluations_flush();
    int rc = sc_flush_sync((uint32_t)timeout_ms);
    RETURN_BOOL(queued == 0 && rc == 0);
}

/* ---- sidecar_stats ------------------------------------------------------- */

/* The public sc_action_kind_t, in order. */
static const char *const action_names[SC_ACTION_KIND_COUNT] = {
    "hello",       "session_config", "trace",     "flag_evaluations",
    "exposures",   "flush",          "ping",      "stats",
    "drop_report", "metric",         "telemetry",
};

static void add_u64(zval *arr, const char *key, uint64_t v)
{
    add_assoc_long(arr, key, v > ZEND_LONG_MAX ? ZEND_LONG_MAX : (zend_long)v);
}

static void add_by_kind(zval *arr, const char *key, const uint64_t *counts)
{
    zval kinds;
    array_init(&kinds);
    for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
        add_u64(&kinds, action_names[k], counts[k]);
    }
    add_assoc_zval(arr, key, &kinds);
}

static void add_runtime_info(zval *arr)
{
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    add_assoc_string(arr, "configured_mode",
                     sc_connection_mode_name(info.configured_mode));
    add_assoc_string(arr, "mode", sc_connection_mode_name(info.mode));
    add_assoc_string(arr, "reason", info.reason);
    add_assoc_string(arr, "endpoint", info.endpoint);
    add_u64(arr, "init_pid", info.init_pid);
    add_u64(arr, "master_pid", info.master_pid);
    add_assoc_bool(arr, "listener_here", info.listener_here);
    add_u64(arr, "sidecar_pid", info.sidecar_pid);
    add_u64(arr, "spawns", info.spawns);
    add_u64(arr, "spawn_failures", info.spawn_failures);
    add_u64(arr, "promotions", info.promotions);
}

static void add_client_stats(zval *arr)
{
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    zval client;
    array_init(&client);
    add_by_kind(&client, "enqueued", st.enqueued);
    add_by_kind(&client, "dropped_full", st.dropped_full);
    add_u64(&client, "dropped_in_flight", st.dropped_in_flight);
    add_u64(&client, "dropped_after_fork", st.dropped_after_fork);
    add_u64(&client, "frames_written", st.frames_written);
    add_u64(&client, "bytes_written", st.bytes_written);
    add_u64(&client, "writes", st.writes);
    add_u64(&client, "connects", st.connects);
    add_u64(&client, "connect_failures", st.connect_failures);
    add_u64(&client, "disconnects", st.disconnects);
    add_u64(&client, "buffered_bytes", st.buffered_bytes);
    /* Servers refused as not the sidecar (another user on its name). */
    add_u64(&client, "untrusted_servers", st.untrusted_servers);
    add_u64(&client, "frames_resent", st.frames_resent);
    add_assoc_zval(arr, "client", &client);
}

static void add_extension_counters(zval *arr)
{
    const php_sidecar_counters_t *c = php_sidecar_counters();
    zval ext;
    array_init(&ext);
    add_u64(&ext, "requests", c->requests);
    add_u64(&ext, "rshutdown_ns_last", c->rshutdown_ns_last);
    add_u64(&ext, "rshutdown_ns_max", c->rshutdown_ns_max);
    add_u64(&ext, "rshutdown_ns_max_unpreempted",
            c->rshutdown_ns_max_unpreempted);
    add_u64(&ext, "rshutdown_blocked", c->rshutdown_blocked);
    add_u64(&ext, "rshutdown_preempted", c->rshutdown_preempted);
    add_u64(&ext, "traces_sent", c->traces_sent);
    add_u64(&ext, "traces_dropped", c->traces_dropped);
    add_u64(&ext, "evaluations_counted", c->evaluations_counted);
    add_u64(&ext, "evaluations_not_counted", c->evaluations_not_counted);
    add_u64(&ext, "exposures_sent", c->exposures_sent);
    add_u64(&ext, "exposures_dropped", c->exposures_dropped);
    add_u64(&ext, "metrics_sent", c->metrics_sent);
    add_u64(&ext, "metrics_invalid", c->metrics_invalid);
    add_u64(&ext, "metrics_dropped", c->metrics_dropped);
    add_assoc_zval(arr, "extension", &ext);
}

/* The sidecar's own stats document, decoded; null (and "sidecar_error")
 * when it does not answer in time. */
static void add_sidecar_stats(zval *arr, uint32_t timeout_ms)
{
    char *json = NULL;
    int rc = sc_client_sidecar_stats(sc_runtime_client(), timeout_ms, &json);
    zval decoded;
    if (rc == 0 && php_json_decode_ex(
                       &decoded, json, strlen(json), PHP_JSON_OBJECT_AS_ARRAY,
                       PHP_JSON_PARSER_DEFAULT_DEPTH) == SUCCESS) {
        add_assoc_zval(arr, "sidecar", &decoded);
    } else {
        add_assoc_null(arr, "sidecar");
        add_assoc_string(arr, "sidecar_error",
                         rc != 0 ? sc_strerror(rc)
                                 : "stats document is not JSON");
    }
    free(json);
}

/* sidecar_stats(int $sidecar_timeout_ms = 1000): array
 * This process's view (runtime info, client counters, extension counters)
 * and the sidecar's stats; 0 skips asking the sidecar. */
ZEND_FUNCTION(sidecar_stats)
{
    zend_long timeout_ms = 1000;
    ZEND_PARSE_PARAMETERS_START(0, 1)
    Z_PARAM_OPTIONAL
    Z_PARAM_LONG(timeout_ms)
    ZEND_PARSE_PARAMETERS_END();
    if (!timeout_in_range(timeout_ms)) {
        RETURN_THROWS();
    }
    array_init(return_value);
    add_assoc_bool(return_value, "enabled", php_sidecar_active);
    add_u64(return_value, "pid", (uint64_t)getpid());
    add_assoc_string(return_value, "library_version", sc_version());
    add_extension_counters(return_value);
    if (!php_sidecar_active) {
        return;
    }
    add_runtime_info(return_value);
    add_client_stats(return_value);
    if (timeout_ms > 0) {
        add_sidecar_stats(return_value, (uint32_t)timeout_ms);
    }
}

/* ---- sidecar_metric ------------------------------------------------------ */

static bool metric_type(const zend_string *s, sc_metric_type_t *out)
{
    static const struct {
        const char *name;
        sc_metric_type_t type;
    } types[] = {{"count", SC_METRIC_COUNT},
                 {"gauge", SC_METRIC_GAUGE},
                 {"rate", SC_METRIC_RATE},
                 {"histogram", SC_METRIC_HISTOGRAM},
                 {"distribution", SC_METRIC_DISTRIBUTION},
                 {"set", SC_METRIC_SET}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (ZSTR_LEN(s) == strlen(types[i].name) &&
            strncasecmp(ZSTR_VAL(s), types[i].name, ZSTR_LEN(s)) == 0) {
            *out = types[i].type;
            return true;
        }
    }
    return false;
}

/* ["env" => "prod", "canary"] -> "env:prod,canary" (NUL-terminated, in
 * `out`); the library checks the result against the DogStatsD rules. */
static void tags_from_array(HashTable *ht, smart_str *out)
{
    zend_ulong index;
    zend_string *key;
    zval *value;
    ZEND_HASH_FOREACH_KEY_VAL(ht, index, key, value)
    {
        (void)index;
        if (out->s != NULL && ZSTR_LEN(out->s) > 0) {
            smart_str_appendc(out, ',');
        }
        zend_string *v = zval_get_string(value);
        if (key != NULL) {
            smart_str_append(out, key);
            smart_str_appendc(out, ':');
        }
        smart_str_append(out, v);
        zend_string_release(v);
    }
    ZEND_HASH_FOREACH_END();
    smart_str_0(out);
}

/* sidecar_metric(string $type, string $name, int|float|string $value,
 *     array $tags = [], float $sample_rate = 1.0): bool
 * One DogStatsD point, aggregated by the sidecar (docs/metrics.md). $type:
 * count, gauge, rate, histogram, distribution or set; a string $value is a
 * set member. false: the point breaks a rule (name, tags, rate) or was
 * dropped (counted), or the extension is inactive. */
ZEND_FUNCTION(sidecar_metric)
{
    zend_string *type_name, *name;
    zval *value;
    HashTable *tags = NULL;
    double sample_rate = 1.0;
    ZEND_PARSE_PARAMETERS_START(3, 5)
    Z_PARAM_STR(type_name)
    Z_PARAM_STR(name)
    Z_PARAM_ZVAL(value)
    Z_PARAM_OPTIONAL
    Z_PARAM_ARRAY_HT(tags)
    Z_PARAM_DOUBLE(sample_rate)
    ZEND_PARSE_PARAMETERS_END();
    sc_metric_t m = {.name = ZSTR_VAL(name),
                     .sample_rate = sample_rate == 1.0 ? 0 : sample_rate};
    if (!metric_type(type_name, &m.type)) {
        zend_argument_value_error(1, "must be one of count, gauge, rate, "
                                     "histogram, distribution, set");
        RETURN_THROWS();
    }
    ZVAL_DEREF(value);
    if (Z_TYPE_P(value) == IS_LONG) {
        m.value = (double)Z_LVAL_P(value);
    } else if (Z_TYPE_P(value) == IS_DOUBLE) {
        m.value = Z_DVAL_P(value);
    } else if (Z_TYPE_P(value) == IS_STRING && m.type == SC_METRIC_SET) {
        m.set_member = Z_STRVAL_P(value);
    } else {
        zend_argument_type_error(3, "must be of type int|float (a string "
                                    "only for a set)");
        RETURN_THROWS();
    }
    if (!php_sidecar_active) {
        RETURN_FALSE;
    }
    smart_str joined = {0};
    if (tags != NULL) {
        tags_from_array(tags, &joined);
        m.tags = joined.s != NULL ? ZSTR_VAL(joined.s) : NULL;
    }
    int rc = sc_send_metric(&m);
    smart_str_free(&joined);
    php_sidecar_counters_t *c = php_sidecar_counters();
    if (rc == 0) {
        c->metrics_sent++;
    } else if (rc == UV_EINVAL) {
        c->metrics_invalid++;
    } else {
        c->metrics_dropped++;
    }
    RETURN_BOOL(rc == 0);
}

/* clang-format off */
const zend_function_entry php_sidecar_functions[] = {
    ZEND_FE(sidecar_send_trace, arginfo_sidecar_send_trace)
    ZEND_FE(sidecar_record_flag_evaluation,
            arginfo_sidecar_record_flag_evaluation)
    ZEND_FE(sidecar_send_exposures, arginfo_sidecar_send_exposures)
    ZEND_FE(sidecar_flush, arginfo_sidecar_flush)
    ZEND_FE(sidecar_stats, arginfo_sidecar_stats)
    ZEND_FE(sidecar_metric, arginfo_sidecar_metric)
    ZEND_FE(sidecar_telemetry_dependencies,
            arginfo_sidecar_telemetry_dependencies)
    ZEND_FE(sidecar_telemetry_integrations,
            arginfo_sidecar_telemetry_integrations)
    ZEND_FE(sidecar_telemetry_log, arginfo_sidecar_telemetry_log)
    ZEND_FE(sidecar_telemetry_metric, arginfo_sidecar_telemetry_metric)
    ZEND_FE_END
};
/* clang-format on */
