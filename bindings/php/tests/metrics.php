<?php
// Sends DogStatsD points of every kind through the sidecar, prints what the
// functions returned. Used by tests/php/php_check.py.
$ok = [];
for ($i = 0; $i < 50; $i++) {
    $ok[] = sidecar_metric('count', 'php.check.requests', 1, ['route' => '/a', 'canary']);
}
$ok[] = sidecar_metric('gauge', 'php.check.gauge', 7.5);
$ok[] = sidecar_metric('set', 'php.check.users', 'alice');
$ok[] = sidecar_metric('set', 'php.check.users', 'bob');
$ok[] = sidecar_metric('distribution', 'php.check.latency', 12.5, [], 0.5);
$bad = sidecar_metric('count', 'bad name', 1);
try {
    sidecar_metric('nope', 'x', 1);
    $threw = false;
} catch (ValueError $e) {
    $threw = true;
}
$flushed = sidecar_flush(5000);
$s = sidecar_stats(0);
echo json_encode(['ok' => !in_array(false, $ok, true), 'bad' => $bad, 'threw' => $threw, 'flushed' => $flushed,
                  'sent' => $s['extension']['metrics_sent'], 'invalid' => $s['extension']['metrics_invalid']]), "\n";
