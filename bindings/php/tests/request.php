<?php
/* One FPM request of the leg (ci/fpm/leg.py): records three flag
 * evaluations and sends one trace, timing the extension calls, and answers
 * a JSON line describing what this worker saw.
 *
 * Query: scn=<scenario> (trace resource prefix and flag-key prefix),
 * phase=<label>, sleep_ms=<before working>, flush_ms=<sync flush after>. */
require __DIR__ . '/msgpack.php';

parse_str($_SERVER['QUERY_STRING'] ?? '', $q);
$scn = $q['scn'] ?? 'manual';
$phase = $q['phase'] ?? 'main';
$sleep_ms = (int)($q['sleep_ms'] ?? 0);
$flush_ms = (int)($q['flush_ms'] ?? 0);
if ($sleep_ms > 0) {
    usleep($sleep_ms * 1000);
}

$trace_id = sidecar_new_trace_id();
$payload = sidecar_one_span_payload($trace_id, 'fpm.request', "$scn/$phase");
$context = ['country' => 'FR', 'age' => 42, 'beta' => true, 'ratio' => 0.5];

$r0 = getrusage();
$t0 = hrtime(true);
$evals_ok = (int)sidecar_record_flag_evaluation("$scn:checkout", 'on', 'alloc-1',
    'TARGETING_MATCH', 'user-1', 'rule-1', null, $context);
$evals_ok += (int)sidecar_record_flag_evaluation("$scn:checkout", 'on', 'alloc-1',
    'TARGETING_MATCH', 'user-1', 'rule-1', null, $context);
$evals_ok += (int)sidecar_record_flag_evaluation("$scn:banner", null, null,
    'ERROR', 'user-1', null, 'flag not found');
$sent = sidecar_send_trace($payload, 1);
$calls_ns = hrtime(true) - $t0;
/* Outside the timed calls: the overhead figures stay comparable. */
$metric = sidecar_metric('count', 'fpm.requests', 1, ['scn' => $scn]);
$r1 = getrusage();

$flushed = null;
if ($flush_ms > 0) {
    $flushed = sidecar_flush($flush_ms);
}
$s = sidecar_stats(0);
echo json_encode([
    'pid' => getmypid(),
    'ppid' => posix_getppid(),
    'uid' => posix_geteuid(),
    'scn' => $scn,
    'phase' => $phase,
    'trace_id' => $trace_id,
    'sent' => $sent,
    'metric' => $metric,
    'evals_ok' => $evals_ok,
    'calls_ns' => $calls_ns,
    /* Context switches during the calls: voluntary = blocked, involuntary
     * = preempted (a loaded machine, not the extension). */
    'calls_blocked' => $r1['ru_nvcsw'] - $r0['ru_nvcsw'],
    'calls_preempted' => $r1['ru_nivcsw'] - $r0['ru_nivcsw'],
    'flushed' => $flushed,
    'mode' => $s['mode'] ?? null,
    'reason' => $s['reason'] ?? null,
    'master_pid' => $s['master_pid'] ?? null,
    'listener_here' => $s['listener_here'] ?? null,
    'promotions' => $s['promotions'] ?? null,
    'extension' => $s['extension'],
    'client' => $s['client'] ?? null,
]), "\n";
