<?php
/* pcntl_fork() lifecycles in the CLI, for the leg (ci/fpm/leg.py):
 *   P (the master: MINIT ran here) sends, forks C; C sends and forks G;
 *   G sends; each flushes and reports. Then P forks O and exits at once:
 *   O waits until P is gone, sends (thread mode: O finds no master and
 *   promotes itself), flushes and reports.
 * Every process writes one JSON report to <dir>/<name>.json.
 *
 * Usage: php -d extension=sidecar.so fork.php <scenario> <report dir> */
require __DIR__ . '/msgpack.php';

[$_, $scn, $dir] = $argv;

function work(string $scn, string $who): array
{
    $sent = sidecar_send_trace(
        sidecar_one_span_payload(sidecar_new_trace_id(), 'cli.fork', "$scn/$who"), 1);
    $counted = sidecar_record_flag_evaluation("$scn:fork", $who, 'alloc-1',
        'STATIC', "user-$who");
    return ['sent' => $sent, 'counted' => $counted];
}

function report(string $dir, string $who, array $work): void
{
    $flushed = sidecar_flush(5000);
    $s = sidecar_stats(0);
    $r = $work + [
        'who' => $who, 'pid' => getmypid(), 'ppid' => posix_getppid(),
        'flushed' => $flushed, 'mode' => $s['mode'] ?? null,
        'master_pid' => $s['master_pid'] ?? null,
        'listener_here' => $s['listener_here'] ?? null,
        'promotions' => $s['promotions'] ?? null,
        'client' => $s['client'] ?? null,
    ];
    file_put_contents("$dir/$who.tmp", json_encode($r) . "\n");
    rename("$dir/$who.tmp", "$dir/$who.json");
}

$parent_work = work($scn, 'parent');

$child = pcntl_fork();
if ($child === 0) {
    $w = work($scn, 'child');
    $grandchild = pcntl_fork();
    if ($grandchild === 0) {
        report($dir, 'grandchild', work($scn, 'grandchild'));
        exit(0);
    }
    pcntl_waitpid($grandchild, $status);
    report($dir, 'child', $w);
    exit(0);
}
pcntl_waitpid($child, $status);

$parent = getmypid();
$orphan = pcntl_fork();
if ($orphan === 0) {
    /* Until P is gone (reparented), at most 10 s. */
    for ($i = 0; $i < 1000 && posix_getppid() === $parent; $i++) {
        usleep(10000);
    }
    report($dir, 'orphan', work($scn, 'orphan'));
    exit(0);
}
report($dir, 'parent', $parent_work);
exit(0);
