<?php
// A private MariaDB server for the benchmarks: its own data directory and
// Unix socket in a directory of this user (0700), no TCP, started with a
// deadline and stopped with the script. Debian's mariadb-server provides
// mariadbd and mariadb-install-db; without them mariadb_start() says why
// and returns null, and the benchmark skips the MySQL peer.

declare(strict_types=1);

final class MariaDb
{
    /** @param resource|null $proc the mariadbd process; null once stopped */
    private function __construct(public readonly string $socket, private $proc, private string $dir)
    {
    }

    /** The reason MariaDB cannot be started here, or null when it can. */
    public static function missing(): ?string
    {
        foreach (['mariadbd', 'mariadb-install-db'] as $tool) {
            if (self::find($tool) === null) {
                return "$tool not found (apt install mariadb-server)";
            }
        }
        return null;
    }

    /**
     * Starts a server in the new directory $dir (mode $mode: 0711 lets
     * another user, a PHP-FPM pool's, reach the socket); waits at most
     * $deadline seconds for it.
     */
    public static function start(string $dir, int $deadline = 60, int $mode = 0700): self
    {
        if (($why = self::missing()) !== null) {
            throw new RuntimeException($why);
        }
        if (!mkdir($dir, 0700, true) && !is_dir($dir)) {
            throw new RuntimeException("cannot make $dir");
        }
        chmod($dir, $mode);
        $user = posix_getpwuid(posix_geteuid())['name'];
        $common = ['--no-defaults', "--datadir=$dir/data", "--user=$user"];
        self::run(array_merge([self::find('mariadb-install-db')], $common, ['--auth-root-authentication-method=normal', '--skip-test-db']), "$dir/install.log");
        $args = array_merge([self::find('mariadbd')], $common, [
            "--socket=$dir/mysqld.sock", "--pid-file=$dir/mysqld.pid", "--log-error=$dir/error.log",
            '--skip-networking', '--skip-grant-tables', '--innodb-buffer-pool-size=256M',
            '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
        ]);
        $proc = proc_open($args, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/server.out", 'w'], 2 => ['file', "$dir/server.out", 'a']], $pipes);
        if ($proc === false) {
            throw new RuntimeException('cannot start mariadbd');
        }
        $server = new self("$dir/mysqld.sock", $proc, $dir);
        $until = microtime(true) + $deadline;
        while (microtime(true) < $until) {
            if (!proc_get_status($proc)['running']) {
                throw new RuntimeException("mariadbd exited: " . @file_get_contents("$dir/error.log"));
            }
            try {
                $server->connect(null)->exec('CREATE DATABASE IF NOT EXISTS chatstore_bench');
                return $server;
            } catch (PDOException) {
                usleep(100_000);
            }
        }
        $server->stop();
        throw new RuntimeException("mariadbd did not answer within {$deadline} s: " . @file_get_contents("$dir/error.log"));
    }

    /** A connection over the private socket (to database $db when given). */
    public function connect(?string $db = 'chatstore_bench'): PDO
    {
        $dsn = "mysql:unix_socket={$this->socket};charset=utf8mb4" . ($db === null ? '' : ";dbname=$db");
        return new PDO($dsn, 'root', '', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    }

    /** Stops the server (TERM, then KILL after 30 s) and removes its directory. */
    public function stop(): void
    {
        if ($this->proc !== null) {
            proc_terminate($this->proc, SIGTERM);
            for ($i = 0; $i < 300 && proc_get_status($this->proc)['running']; $i++) {
                usleep(100_000);
            }
            if (proc_get_status($this->proc)['running']) {
                proc_terminate($this->proc, SIGKILL);
            }
            proc_close($this->proc);
            $this->proc = null;
            exec('rm -rf ' . escapeshellarg($this->dir));
        }
    }

    public function __destruct()
    {
        $this->stop();
    }

    private static function find(string $tool): ?string
    {
        foreach (array_merge(explode(':', getenv('PATH') ?: ''), ['/usr/sbin', '/usr/bin']) as $d) {
            if ($d !== '' && is_executable("$d/$tool")) {
                return "$d/$tool";
            }
        }
        return null;
    }

    private static function run(array $args, string $log): void
    {
        $proc = proc_open($args, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'w'], 2 => ['file', $log, 'a']], $pipes);
        if ($proc === false || proc_close($proc) !== 0) {
            throw new RuntimeException(implode(' ', $args) . ' failed: ' . @file_get_contents($log));
        }
    }
}
