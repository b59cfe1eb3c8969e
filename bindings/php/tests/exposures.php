<?php
// Sends one trace and two exposures, waits for the sidecar to have them,
// prints what the functions returned. Used by tests/php/php_check.py.
require __DIR__ . '/msgpack.php';

$service = $argv[1] ?? 'php-exposures';
$sent = sidecar_send_trace(sidecar_one_span_payload(sidecar_new_trace_id(), 'php.cli', $service), 1);
$exposed = sidecar_send_exposures([
    ['flag_key' => 'checkout', 'allocation_key' => 'rollout', 'variant_key' => 'on',
     'subject_id' => 'user-1', 'subject_attributes' => ['plan' => 'pro', 'seats' => 3, 'beta' => true]],
    ['flag_key' => 'search', 'variant_key' => 'off', 'subject_id' => 'user-2', 'timestamp_ms' => 1700000000000],
]);
try {
    sidecar_send_exposures([['variant_key' => 'no flag']]);
    $threw = false;
} catch (ValueError $e) {
    $threw = true;
}
$flushed = sidecar_flush(5000);
echo json_encode(['sent' => $sent, 'exposed' => $exposed, 'threw' => $threw, 'flushed' => $flushed]), "\n";
