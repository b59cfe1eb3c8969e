<?php
/* Readiness probe of the leg: no extension call of its own. */
echo json_encode(['pid' => getmypid(), 'ppid' => posix_getppid()]), "\n";
