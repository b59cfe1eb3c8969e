<?php
// Reports the application's dependencies, integrations, a log and telemetry
// metrics through the sidecar, prints what the functions returned. Used by
// tests/php/php_check.py.
$ok = [];
$ok[] = sidecar_telemetry_dependencies(['guzzlehttp/guzzle' => '7.8.1', 'psr/log' => null, 'monolog/monolog']);
$ok[] = sidecar_telemetry_integrations([['name' => 'pdo', 'enabled' => true, 'version' => '8.2'],
                                        ['name' => 'curl', 'enabled' => false, 'compatible' => true]]);
$ok[] = sidecar_telemetry_log('warn', "pdo: slow query\n#0 query()", null, 'integration:pdo');
for ($i = 0; $i < 5; $i++) {
    $ok[] = sidecar_telemetry_metric('count', 'spans_created', 2, 'integration_name:pdo', true);
    $ok[] = sidecar_telemetry_metric('distribution', 'init_time', $i);
}
$ok[] = sidecar_telemetry_metric('gauge', 'workers', 3.5, null, false, 'general');
$bad = sidecar_telemetry_log('error', '');
$threw = 0;
foreach ([fn() => sidecar_telemetry_log('fatal', 'x'), fn() => sidecar_telemetry_metric('set', 'x', 1),
          fn() => sidecar_telemetry_integrations([['enabled' => true]]),
          fn() => sidecar_telemetry_dependencies([['nested']])] as $f) {
    try {
        $f();
    } catch (Error $e) {
        $threw++;
    }
}
$flushed = sidecar_flush(5000);
echo json_encode(['ok' => !in_array(false, $ok, true), 'bad' => $bad, 'threw' => $threw, 'flushed' => $flushed]), "\n";
