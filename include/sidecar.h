/* sidecar: hand telemetry actions from many processes to one helper process
 * (the sidecar) that aggregates them and delivers them to a
 * Datadog-compatible agent.
 *
 * This header is the whole public C API. Errors are negative numbers that
 * share libuv's error space (UV_E*); sc_strerror() names them. Every function
 * that takes an sc_client_t is safe to call from several threads at once. */
#ifndef SIDECAR_H
#define SIDECAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SC_API marks the public API: the only symbols libsidecar exports (the
 * library is built with hidden visibility). SIDECAR_STATIC: linking the
 * static library (set by sidecar::sidecar_static and `pkg-config --static`);
 * SIDECAR_BUILDING: compiling the library itself. */
#if defined(SIDECAR_STATIC)
#define SC_API
#elif defined(_WIN32) || defined(__CYGWIN__)
#if defined(SIDECAR_BUILDING)
#define SC_API __declspec(dllexport)
#else
#define SC_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define SC_API __attribute__((visibility("default")))
#else
#define SC_API
#endif

/* Version of this build, "MAJOR.MINOR.PATCH". */
SC_API const char *sc_version(void);

/* A readable description of a status returned by this library. */
SC_API const char *sc_strerror(int status);

/* Where and how much the library logs in this process (a sidecar the
 * runtime starts reads DD_TRACE_SIDECAR_LOG_LEVEL / DD_TRACE_SIDECAR_LOG_FILE
 * from the environment it inherits). `level`: "error", "warn" (the default),
 * "info" or "debug"; NULL or "" leaves it. `file`: a path appended to, ""
 * for stderr, NULL leaves it. Overrides DD_TRACE_SIDECAR_LOG_LEVEL and
 * DD_TRACE_SIDECAR_LOG_FILE. Returns 0, UV_EINVAL for an unknown level
 * (nothing changed), or the error opening the file (the level still
 * applies; the previous destination is kept). */
SC_API int sc_set_logging(const char *level, const char *file);

/* The logging in effect: the level's name, and the file ("" for stderr).
 * Either pointer may be NULL. */
SC_API void sc_get_logging(const char **level, const char **file);

/* The action was dropped (buffer full, or no sidecar reachable); it is
 * counted in the client's stats. */
#define SC_EDROPPED (-10001)

/* Kinds of actions, as counted in stats. */
typedef enum sc_action_kind {
    SC_ACTION_HELLO,
    SC_ACTION_SESSION_CONFIG,
    SC_ACTION_TRACE,
    SC_ACTION_FLAG_EVALUATIONS,
    SC_ACTION_EXPOSURES,
    SC_ACTION_FLUSH,
    SC_ACTION_PING,
    SC_ACTION_STATS,
    SC_ACTION_DROP_REPORT, /* what this process dropped (docs/wire.md) */
    SC_ACTION_METRIC,
    SC_ACTION_TELEMETRY,
    SC_ACTION_KIND_COUNT
} sc_action_kind_t;

/* ---- client connection -------------------------------------------------- */

typedef struct sc_client sc_client_t;

/* How a client connects and who it says it is. Strings are copied by
 * sc_client_new(); NULL means absent (not sent). */
typedef struct sc_client_options {
    /* sizeof(sc_client_options_t) as the caller compiled it, or 0 for the
     * 0.1 layout: lets a newer library tell which fields a caller knows
     * (docs/install.md, "ABI"). */
    uint32_t struct_size;
    const char *endpoint;        /* required, see docs/transport.md */
    uint32_t connect_timeout_ms; /* 0: default 500 */
    uint32_t enqueue_budget_us;  /* 0: default 200 (docs/transport.md) */
    size_t buffer_cap;           /* 0: default 4 MiB of encoded frames */
    size_t write_threshold;      /* 0: default 16 KiB; enqueue writes once
                                    this much is buffered */
    uint32_t reconnect_min_ms;   /* 0: default 50; doubles per failure */
    uint32_t reconnect_max_ms;   /* 0: default 5000 */
    /* Hello (sent on every (re)connect). Each string at most 128 bytes of
     * UTF-8 without control characters: the sidecar refuses a Hello that
     * breaks this, and then the connection's traces and flag data
     * (docs/wire.md, "Identity strings"). */
    const char *language;         /* default "c" */
    const char *language_version; /* default "" */
    const char *tracer_version;   /* default sc_version() */
    const char *runtime_id;
    const char *service;
    const char *env;
    const char *version;
    /* SessionConfig (sent after the Hello when agent_url is set or any
     * number below is non-zero). */
    const char *agent_url;
    uint32_t flush_interval_ms;
    uint32_t request_timeout_ms;
} sc_client_options_t;

/* Creates a client. Nothing is connected until the first action. Returns
 * NULL when out of memory or when options->endpoint is missing. */
SC_API sc_client_t *sc_client_new(const sc_client_options_t *options);

/* Writes what is buffered (within the enqueue budget) and frees the client.
 * Use sc_client_flush_sync() first to wait for delivery. */
SC_API void sc_client_free(sc_client_t *c);

/* Enqueues one trace payload: `msgpack` is a msgpack v0.4 array of
 * `trace_count` traces. Returns 0 or SC_EDROPPED; never blocks longer than
 * the enqueue budget. */
SC_API int sc_client_send_trace(sc_client_t *c, const void *msgpack, size_t len,
                                uint32_t trace_count);

/* Writes buffered actions now, within the enqueue budget; what does not fit
 * stays buffered. Call at request end. Returns 0, or a negative status when
 * no sidecar is reachable (actions stay buffered up to the cap). */
SC_API int sc_client_flush(sc_client_t *c);

/* Writes everything and waits until the sidecar has handled it (a Flush
 * barrier), at most timeout_ms. Returns 0, UV_ETIMEDOUT, or another
 * negative status. */
SC_API int sc_client_flush_sync(sc_client_t *c, uint32_t timeout_ms);

/* Round trip to the sidecar. On success fills the sidecar's pid, mode
 * ("subprocess"/"thread") and the round trip time. */
typedef struct sc_ping_result {
    uint32_t server_pid;
    char mode[16];
    char server_version[32];
    uint64_t round_trip_ns;
} sc_ping_result_t;

SC_API int sc_client_ping(sc_client_t *c, uint32_t timeout_ms,
                          sc_ping_result_t *out);

/* Fetches the sidecar's stats document (JSON). On success *json is a
 * NUL-terminated string to release with free(). */
SC_API int sc_client_sidecar_stats(sc_client_t *c, uint32_t timeout_ms,
                                   char **json);

/* Counters of this client (this process's side). */
typedef struct sc_client_stats {
    uint64_t enqueued[SC_ACTION_KIND_COUNT];
    uint64_t dropped_full[SC_ACTION_KIND_COUNT]; /* buffer full */
    /* Always 0 since acknowledged delivery: a half-written frame is sent
     * again whole (frames_resent). Kept for compatibility. */
    uint64_t dropped_in_flight;
    uint64_t dropped_after_fork; /* parent's buffer discarded in a child */
    uint64_t frames_written;
    uint64_t bytes_written;
    uint64_t writes; /* write calls that sent something */
    uint64_t connects;
    uint64_t connect_failures;
    uint64_t disconnects;
    uint64_t buffered_bytes;
    /* Connects refused because the server ran as an untrusted identity
     * (someone else bound the sidecar's name first; docs/transport.md).
     * Also counted in connect_failures. */
    uint64_t untrusted_servers;
    /* Frames written but not yet acknowledged by the sidecar when a
     * connection ended: kept, and sent again on the next connection (the
     * sidecar drops any it had handled). docs/wire.md, "Acknowledgements". */
    uint64_t frames_resent;
} sc_client_stats_t;

SC_API void sc_client_stats(sc_client_t *c, sc_client_stats_t *out);

/* ---- the process runtime (docs/runtime.md) ----------------------------------
 *
 * One per process. The process that calls sc_init() is the *master* (PHP's
 * MINIT). Its forked children (FPM workers, pcntl_fork() children) inherit
 * the runtime and reconnect on first use. */

typedef enum sc_connection_mode {
    SC_MODE_AUTO = 0,   /* subprocess; thread when that fails */
    SC_MODE_SUBPROCESS, /* one sidecar process per (version, user) */
    SC_MODE_THREAD,     /* the master runs the listener on its own thread */
} sc_connection_mode_t;

/* "auto" / "subprocess" / "thread". */
SC_API const char *sc_connection_mode_name(sc_connection_mode_t mode);
/* Parses a mode name (case-insensitive); UV_EINVAL when unknown. */
SC_API int sc_connection_mode_parse(const char *s, sc_connection_mode_t *out);

typedef struct sc_config {
    /* sizeof(sc_config_t) as the caller compiled it (sc_config_init and
     * sc_config_defaults set it), or 0 for the 0.1 layout. */
    uint32_t struct_size;
    sc_connection_mode_t mode;      /* DD_TRACE_SIDECAR_CONNECTION_MODE */
    const char *sidecar_path;       /* DD_TRACE_SIDECAR_PATH: the `sidecar`
                                       binary subprocess mode starts */
    const char *endpoint_dir;       /* DD_TRACE_SIDECAR_ENDPOINT_DIR: use
                                       socket files there instead of abstract
                                       names (NULL: the platform default) */
    uint32_t connect_timeout_ms;    /* DD_TRACE_SIDECAR_CONNECT_TIMEOUT (ms):
                                       how long a new sidecar may take to
                                       answer (default 1000) */
    uint32_t idle_timeout_ms;       /* DD_TRACE_SIDECAR_IDLE_TIMEOUT (ms):
                                       subprocess sidecar exits after this
                                       long without connections (60000) */
    uint32_t exit_flush_timeout_ms; /* sync flush at exit (1000) */
    /* Other users whose processes the sidecar admits (docs/transport.md),
     * besides its own euid and root: FPM's pool user under a root master in
     * subprocess mode. DD_TRACE_SIDECAR_ALLOWED_UIDS="33,1000". */
    uint32_t allowed_uids[16];
    size_t allowed_uid_count;
    /* Windows: other identities admitted by the sidecar's pipe (its DACL
     * and the peer check), besides its own user and SYSTEM: SID strings,
     * comma-separated, at most 8, e.g. an IIS application pool's
     * "S-1-5-82-...". DD_TRACE_SIDECAR_ALLOWED_SIDS. Copied by sc_init();
     * POSIX admits other users by uid and ignores this (with a warning). */
    const char *allowed_sids;
    /* Flag-evaluation counts: -1 keeps DD_FLAGGING_EVALUATION_COUNTS_ENABLED
     * (default on), 0 turns them off, 1 on. */
    int flag_evaluation_counts;
    /* The process that forks the workers becomes the master, even when
     * sc_init() ran in an ancestor that exits (PHP-FPM with daemonize =
     * yes: MINIT runs in a launcher). Off for CLI. */
    bool listener_follows_forker;
    /* Client settings and identity (endpoint is set by the runtime). */
    sc_client_options_t client;
    /* ---- added after the 0.1 layout: read only when struct_size covers
     * it (sc_config_defaults and sc_config_init set struct_size) ---- */
    /* DD_TRACE_SIDECAR_RSS_CAP (bytes): a sidecar the runtime starts exits
     * when its resident memory exceeds this (its memory watchdog, as
     * `sidecar run --rss-cap`); the next process starts a fresh one. 0: no
     * cap. Default 536870912 (512 MiB). */
    uint64_t rss_cap_bytes;
} sc_config_t;

/* Defaults as documented above. Writes sizeof(sc_config_t) of the
 * library's own version: code built against another version uses
 * sc_config_init(). */
SC_API void sc_config_defaults(sc_config_t *cfg);

/* sc_config_defaults() for a caller whose sc_config_t is `size` bytes
 * (pass sizeof(sc_config_t)): writes at most that much and records it in
 * struct_size. Returns 0, or UV_EINVAL for a size this library does not
 * know (cfg untouched). */
SC_API int sc_config_init(sc_config_t *cfg, size_t size);

/* Overrides `cfg` with the DD_* environment variables listed above (plus
 * DD_SERVICE, DD_ENV, DD_VERSION, DD_TRACE_AGENT_URL for the client).
 * Returns 0, or UV_EINVAL when a value cannot be parsed (that value is
 * ignored; the others apply). Strings point into the environment. */
SC_API int sc_config_from_env(sc_config_t *cfg);

/* Makes this process the master: resolves the mode (and says why), starts
 * or finds the sidecar, or starts the listener thread. Never fails hard:
 * when no sidecar can be had, actions are dropped and counted. Returns 0 or
 * UV_EALREADY. */
SC_API int sc_init(const sc_config_t *cfg);

/* Master-only teardown (MSHUTDOWN): in the process that called sc_init()
 * (or was promoted), flushes, stops the listener thread after its final
 * delivery, and frees the runtime. In any other process it only writes what
 * is buffered. */
SC_API void sc_shutdown(void);

/* The runtime's client (valid after sc_init), for the sc_client_* calls. */
SC_API sc_client_t *sc_runtime_client(void);

/* sc_client_send_trace / sc_client_flush / sc_client_flush_sync on the
 * runtime's client; SC_EDROPPED / UV_EINVAL before sc_init(). */
SC_API int sc_send_trace(const void *msgpack, size_t len, uint32_t trace_count);
SC_API int sc_flush(void);
SC_API int sc_flush_sync(uint32_t timeout_ms);

/* sc_client_ping / sc_client_sidecar_stats on the runtime's client. Like
 * the calls above (and unlike the sc_client_* calls on the runtime's
 * client), they first make the sidecar reachable when this process may:
 * start it (subprocess mode), or take over from a master that is gone
 * (thread mode). UV_EINVAL before sc_init(). */
SC_API int sc_ping(uint32_t timeout_ms, sc_ping_result_t *out);
SC_API int sc_sidecar_stats(uint32_t timeout_ms, char **json);

typedef struct sc_runtime_info {
    sc_connection_mode_t configured_mode;
    sc_connection_mode_t mode; /* SUBPROCESS or THREAD once resolved */
    char reason[192];          /* why this mode */
    char endpoint[257];
    uint32_t init_pid;    /* the process that called sc_init() */
    uint32_t master_pid;  /* thread mode: whose listener is used */
    bool listener_here;   /* this process runs the listener thread */
    uint32_t sidecar_pid; /* subprocess mode: last started by us */
    uint64_t spawns;      /* sidecars this process started */
    uint64_t spawn_failures;
    uint64_t promotions; /* times this process became master */
} sc_runtime_info_t;

SC_API void sc_runtime_info(sc_runtime_info_t *out);

/* ---- shared state (docs/shared-state.md) ------------------------------------
 *
 * What the sidecar publishes for every process to read without a round
 * trip: the agent's /info answer and the latest rate_by_service. */

typedef struct sc_agent_state {
    uint32_t sidecar_pid;
    bool healthy;       /* the sidecar is serving */
    int64_t updated_ms; /* epoch ms of the last publication */
    char *info_json;    /* /info answer, or NULL before the first one */
    char *rates_json;   /* rate_by_service object, or NULL */
} sc_agent_state_t;

/* Reads the state published on `endpoint` (NULL: the runtime's endpoint).
 * Returns 0, UV_ENOENT when nothing is published there, or another error.
 * Release with sc_agent_state_free(). */
SC_API int sc_agent_state_read(const char *endpoint, sc_agent_state_t *out);

/* The same for the agent `agent_url` that a session chose with
 * SessionConfig.agent_url (NULL: the sidecar's default agent); each agent
 * has its own /info and rates (docs/shared-state.md). UV_EINVAL when the
 * URL does not parse. */
SC_API int sc_agent_state_read_for(const char *endpoint, const char *agent_url,
                                   sc_agent_state_t *out);
SC_API void sc_agent_state_free(sc_agent_state_t *state);

/* ---- flag-evaluation counts (docs/flag-evaluations.md) ----------------------
 *
 * Record every evaluation (success, error and default paths alike) with
 * sc_flag_evaluation_record(); at request end sc_flag_evaluations_flush()
 * sends what the process aggregated as one FlagEvaluationBatch action. With
 * DD_FLAGGING_EVALUATION_COUNTS_ENABLED=false neither touches anything. */

typedef enum sc_attr_type {
    SC_ATTR_STRING = 0,
    SC_ATTR_NUMBER = 1,
    SC_ATTR_BOOL = 2,
} sc_attr_type_t;

/* One context attribute; strings are NUL-terminated. */
typedef struct sc_attr {
    const char *key;
    sc_attr_type_t type;
    const char *string_value;
    double number_value;
    bool bool_value;
} sc_attr_t;

/* One evaluation. NULL strings are absent (not the same as ""). */
typedef struct sc_flag_evaluation {
    const char *flag_key; /* required */
    const char *variant_key;
    const char *allocation_key;
    const char *reason;
    const char *targeting_key;
    const char *targeting_rule_key;
    const char *error_message;
    const sc_attr_t *context;
    size_t context_len;
    int64_t timestamp_ms; /* epoch ms; 0: now */
} sc_flag_evaluation_t;

/* Adds one evaluation to the process's aggregator. Returns 0 when counted
 * (full or degraded tier), SC_EDROPPED when counted as dropped, UV_EINVAL
 * when rejected (no flag key), UV_ECANCELED when the kill switch is off. */
SC_API int sc_flag_evaluation_record(const sc_flag_evaluation_t *e);

/* Drains the process's aggregator into FlagEvaluationBatch actions on the
 * runtime's client (request end). Returns 0 or SC_EDROPPED (the batch is
 * then counted as dropped by the client). */
SC_API int sc_flag_evaluations_flush(void);

/* One exposure (a flag assignment shown to a subject). */
typedef struct sc_exposure {
    const char *flag_key; /* required */
    const char *allocation_key;
    const char *variant_key;
    const char *subject_id;
    const sc_attr_t *subject_attributes;
    size_t subject_attributes_len;
    int64_t timestamp_ms; /* epoch ms; 0: now */
} sc_exposure_t;

/* Sends `n` exposures as one ExposureBatch action, posted by the sidecar to
 * /evp_proxy/v2/api/v2/exposures. Returns 0, SC_EDROPPED, or UV_EINVAL. */
SC_API int sc_send_exposures(const sc_exposure_t *exposures, size_t n);

/* ---- DogStatsD metrics (docs/metrics.md) ------------------------------------
 *
 * A metric point is one action like any other (same buffer, same enqueue
 * budget, same drop counting, under SC_ACTION_METRIC). The sidecar
 * aggregates the points of every process per (name, type, tags) over its
 * flush interval (10 s by default) and sends DogStatsD datagrams to the
 * agent: the request never waits for the network. */

typedef enum sc_metric_type {
    SC_METRIC_COUNT = 1,        /* summed; sent as |c */
    SC_METRIC_GAUGE = 2,        /* last value wins; |g */
    SC_METRIC_RATE = 3,         /* summed, sent per second of the interval */
    SC_METRIC_HISTOGRAM = 4,    /* every value; |h */
    SC_METRIC_DISTRIBUTION = 5, /* every value; |d */
    SC_METRIC_SET = 6,          /* distinct members; |s */
} sc_metric_type_t;

/* One point. Strings are NUL-terminated; NULL means absent. */
typedef struct sc_metric {
    sc_metric_type_t type;
    /* 1 to 200 bytes: an ASCII letter, then ASCII letters, digits, '_' and
     * '.' (e.g. "php.requests"). */
    const char *name;
    double value; /* finite */
    /* "key:value,key2:value2": at most 64 tags of at most 200 bytes each,
     * each starting with a letter, without spaces, control characters or
     * any of | , # @ (the comma separates them). NULL or "": none. */
    const char *tags;
    /* The fraction of events the caller reports (it sampled them itself),
     * in (0, 1]; 0 means 1 (unsampled). docs/metrics.md says how each type
     * uses it. */
    double sample_rate;
    /* SET only: the member (at most 200 bytes, without | , : # spaces or
     * control characters); NULL: `value` is the member. */
    const char *set_member;
} sc_metric_t;

/* Enqueues one metric point as a Metric action. Returns 0, SC_EDROPPED
 * (counted by the client), or UV_EINVAL when the point breaks one of the
 * rules above (nothing is sent; the sidecar would refuse it). */
SC_API int sc_client_send_metric(sc_client_t *c, const sc_metric_t *m);

/* sc_client_send_metric on the runtime's client; SC_EDROPPED before
 * sc_init(). */
SC_API int sc_send_metric(const sc_metric_t *m);

/* ---- instrumentation telemetry (docs/telemetry.md) --------------------------
 *
 * Lifecycle events of the application this process belongs to (the
 * service, env, version, language, language version and tracer version of
 * its client). The sidecar turns the events of all the processes of an
 * application into telemetry v2 requests: one app-started however many
 * processes start, what is new of their dependencies and integrations, a
 * heartbeat while any of them is connected, and app-closing when the last
 * one is gone. Strings are NUL-terminated; NULL means absent. */

typedef enum sc_telemetry_event {
    SC_TELEMETRY_APP_STARTED = 1,
    SC_TELEMETRY_DEPENDENCIES_LOADED = 2,
    SC_TELEMETRY_INTEGRATIONS_CHANGE = 3,
    SC_TELEMETRY_APP_CLOSING = 4,
    SC_TELEMETRY_LOGS = 5,
    SC_TELEMETRY_GENERATE_METRICS = 6,
    SC_TELEMETRY_DISTRIBUTIONS = 7,
} sc_telemetry_event_t;

/* A configuration setting; `origin`: env_var, code, dd_config,
 * remote_config, app.config, default or unknown (NULL: unknown). */
typedef struct sc_telemetry_config {
    const char *name;
    const char *value;
    const char *origin;
} sc_telemetry_config_t;

typedef struct sc_telemetry_dependency {
    const char *name;
    const char *version;
} sc_telemetry_dependency_t;

/* `compatible`, `auto_enabled`: -1 unknown (not sent), 0 false, 1 true. */
typedef struct sc_telemetry_integration {
    const char *name;
    const char *version;
    bool enabled;
    int compatible;
    int auto_enabled;
} sc_telemetry_integration_t;

typedef enum sc_telemetry_log_level {
    SC_TELEMETRY_LOG_ERROR = 1,
    SC_TELEMETRY_LOG_WARN = 2,
    SC_TELEMETRY_LOG_DEBUG = 3,
} sc_telemetry_log_level_t;

/* A log message (an error or warning of the tracer or an integration):
 * message required, message and stack trace at most 8192 bytes of UTF-8
 * (line feeds and tabs allowed), tags ("key:value,...") at most 1024. */
typedef struct sc_telemetry_log {
    const char *message;
    sc_telemetry_log_level_t level;
    const char *stack_trace;
    const char *tags;
} sc_telemetry_log_t;

/* A telemetry metric's type: COUNT, GAUGE, RATE for GENERATE_METRICS,
 * DISTRIBUTION for DISTRIBUTIONS. */
typedef enum sc_telemetry_metric_type {
    SC_TELEMETRY_DISTRIBUTION = 0,
    SC_TELEMETRY_COUNT = 1,
    SC_TELEMETRY_GAUGE = 2,
    SC_TELEMETRY_RATE = 3,
} sc_telemetry_metric_type_t;

/* One point of a telemetry metric (docs/telemetry.md, "Metrics"): `ns`
 * the namespace (NULL: tracers), name required, both at most 256 bytes;
 * tags "key:value,..." at most 1024; value finite; `common` as the API's
 * flag. The sidecar sums counts and rates, keeps a gauge's last value and
 * every distribution value per application and series until the next
 * heartbeat. */
typedef struct sc_telemetry_metric {
    const char *ns;
    const char *name;
    const char *tags;
    double value;
    bool common;
    sc_telemetry_metric_type_t type;
} sc_telemetry_metric_t;

/* One event. Only the list the event takes may be non-empty:
 * configuration for APP_STARTED, dependencies for DEPENDENCIES_LOADED,
 * integrations for INTEGRATIONS_CHANGE, logs for LOGS, metrics for
 * GENERATE_METRICS and DISTRIBUTIONS; each at most 1024
 * items. Names are required; strings at most 256 bytes (values 4096) of
 * UTF-8 without control characters. */
typedef struct sc_telemetry {
    sc_telemetry_event_t event;
    const sc_telemetry_config_t *configuration;
    size_t configuration_len;
    const sc_telemetry_dependency_t *dependencies;
    size_t dependencies_len;
    const sc_telemetry_integration_t *integrations;
    size_t integrations_len;
    const sc_telemetry_log_t *logs;
    size_t logs_len;
    const sc_telemetry_metric_t *metrics;
    size_t metrics_len;
} sc_telemetry_t;

/* Enqueues one event as a Telemetry action (SC_ACTION_TELEMETRY). Returns
 * 0, SC_EDROPPED, or UV_EINVAL when it breaks a rule above (nothing is
 * sent). */
SC_API int sc_client_send_telemetry(sc_client_t *c, const sc_telemetry_t *t);

/* sc_client_send_telemetry on the runtime's client; SC_EDROPPED before
 * sc_init(). */
SC_API int sc_send_telemetry(const sc_telemetry_t *t);

#ifdef __cplusplus
}
#endif

#endif
