<?php

/** @generate-class-entries */

/* The PHP API of the sidecar extension; sidecar_arginfo.h matches it. */

function sidecar_send_trace(string $msgpack, int $trace_count): bool {}

function sidecar_record_flag_evaluation(
    string $flag,
    ?string $variant = null,
    ?string $allocation = null,
    ?string $reason = null,
    ?string $targeting_key = null,
    ?string $rule = null,
    ?string $error = null,
    array $context = []
): bool {}

/**
 * @param array<int, array{flag_key: string, allocation_key?: ?string,
 *   variant_key?: ?string, subject_id?: ?string,
 *   subject_attributes?: array<string, string|int|float|bool>,
 *   timestamp_ms?: int}> $exposures
 */
function sidecar_send_exposures(array $exposures): bool {}

function sidecar_flush(int $timeout_ms = 1000): bool {}

function sidecar_stats(int $sidecar_timeout_ms = 1000): array {}

/**
 * One DogStatsD point, aggregated by the sidecar (docs/metrics.md).
 * @param string $type count, gauge, rate, histogram, distribution or set
 * @param int|float|string $value a string only for a set (the member)
 * @param array<string|int, string|int|float|bool> $tags ["env" => "prod", "canary"]
 */
function sidecar_metric(string $type, string $name, int|float|string $value, array $tags = [],
                        float $sample_rate = 1.0): bool {}


/**
 * The application's telemetry (docs/telemetry.md); app-started and
 * app-closing the extension sends itself.
 * @param array<string|int, ?string> $dependencies ["vendor/pkg" => "1.2.3", "other/pkg" => null, "no/version"]
 */
function sidecar_telemetry_dependencies(array $dependencies): bool {}

/**
 * @param array<int, array{name: string, enabled?: bool, version?: ?string,
 *   compatible?: ?bool, auto_enabled?: ?bool}> $integrations
 */
function sidecar_telemetry_integrations(array $integrations): bool {}

/** @param string $level error, warn or debug; $tags "key:value,..." */
function sidecar_telemetry_log(string $level, string $message, ?string $stack_trace = null,
                               ?string $tags = null): bool {}

/**
 * A telemetry metric point (generate-metrics, distributions), aggregated by
 * the sidecar until the application's next heartbeat.
 * @param string $type count, gauge, rate or distribution
 */
function sidecar_telemetry_metric(string $type, string $name, float $value, ?string $tags = null,
                                  bool $common = false, ?string $namespace = null): bool {}
