<?php
/* The worker's and the sidecar's view, for the leg (ci/fpm/leg.py). */
echo json_encode(sidecar_stats(2000) + ['ppid' => posix_getppid()]), "\n";
