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

function sidecar_flush(int $timeout_ms = 1000): bool {}

function sidecar_stats(int $sidecar_timeout_ms = 1000): array {}
