<?php
// The application of test_php_failover.py, run by PHP's built-in web server as
// its router script: it counts each visitor's requests in a PHP session that
// php-memcached's session handler keeps in the cluster store (the server's own
// sidecar, text protocol). Anything that goes wrong with the session (it cannot
// be read, locked or written: a warning) answers HTTP 500, so that the test
// sees every store error a PHP site would show.
set_error_handler(function (int $severity, string $message): bool {
    http_response_code(500);
    echo "error: $message\n";
    exit;
});

if ($_SERVER['REQUEST_URI'] === '/health') {
    echo "ok\n";
    return;
}
if (!session_start()) {
    http_response_code(500);
    echo "error: session_start failed\n";
    exit;
}
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$n = $_SESSION['n'];
$id = session_id();
if (!session_write_close()) {
    http_response_code(500);
    echo "error: the session was not written\n";
    exit;
}
echo 'server=' . getenv('CLUSTER_SERVER_ID') . " session=$id n=$n\n";
