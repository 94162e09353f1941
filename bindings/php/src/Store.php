<?php

declare(strict_types=1);

namespace ChatStore;

/**
 * A chatstore store, through the C ABI. Every method converts its arguments
 * to JSON, calls the library, and converts the answer back; the rules live in
 * the engine. Errors are exceptions under ChatStore\.
 *
 * One Store object owns a store path: a second Store::open() of the same path
 * (in this process or another) throws LockedException. Share the one object.
 */
final class Store
{
    private \FFI $ffi;
    /** @var \FFI\CData|null the cs_store* handle; null once closed */
    private ?\FFI\CData $handle;

    private function __construct(\FFI $ffi, \FFI\CData $handle)
    {
        $this->ffi = $ffi;
        $this->handle = $handle;
    }

    /**
     * Opens (creating when absent) the store at $path.
     *
     * @param array $options durability ("buffered"|"sync"), flush_every_ms,
     *   cache_capacity, media_base, default_avatar, utc_offset, compression,
     *   linger_ms, attach_timeout_ms, text_index (false: a new store keeps
     *   no message-text index; fixed when the store is created), and lib
     *   (the library path).
     */
    public static function open(string $path, array $options = []): self
    {
        self::cPath($path);
        $ffi = Library::load(Library::path($options));
        unset($options['lib']);
        $out = $ffi->new('cs_store*');
        $json = $options === [] ? null : self::encode($options);
        self::raise($ffi, $ffi->cs_store_open($path, $json, \FFI::addr($out)));
        return new self($ffi, $out);
    }

    /** Imports a JSON Lines file; returns the summary (lines, members, ...). */
    public function importJsonl(string $file): array
    {
        self::cPath($file);
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_import_jsonl($this->h(), $file, $out)));
    }

    /** Exports every record to a JSON Lines file; returns the record count. */
    public function exportJsonl(string $file): int
    {
        self::cPath($file);
        $n = $this->ffi->new('uint64_t');
        $this->call($this->ffi->cs_export_jsonl($this->h(), $file, \FFI::addr($n)));
        return (int) $n->cdata;
    }

    /**
     * The whole history-list response as JSON text. $params: tenant
     * (required), employee, user_name, page, pagesize, order ("id"|"recent"),
     * page_url; request values may be passed as strings, as PHP receives them.
     */
    public function historyListJson(array $params): string
    {
        $json = self::encode($params);
        return $this->callString(fn ($out) => $this->ffi->cs_history_list($this->h(), $json, strlen($json), $out));
    }

    /** The whole history-list response as an array. */
    public function historyList(array $params): array
    {
        return $this->decode($this->historyListJson($params));
    }

    /** The whole hischat response as JSON text (a refusal is a normal answer). */
    public function hischatJson(int $ssoId, string $hash, int $page = 1): string
    {
        return $this->callString(fn ($out) => $this->ffi->cs_hischat($this->h(), self::u64($ssoId, 'sso_id'), $hash, strlen($hash), $page, $out));
    }

    /** The whole hischat response as an array. */
    public function hischat(int $ssoId, string $hash, int $page = 1): array
    {
        return $this->decode($this->hischatJson($ssoId, $hash, $page));
    }

    /** Inserts or replaces a member (a JSONL member record without "kind"). */
    public function upsertMember(array $member): void
    {
        $json = self::encode($member);
        $this->call($this->ffi->cs_upsert_member($this->h(), $json, strlen($json)));
    }

    /** Inserts or replaces an agent. */
    public function upsertAgent(array $agent): void
    {
        $json = self::encode($agent);
        $this->call($this->ffi->cs_upsert_agent($this->h(), $json, strlen($json)));
    }

    /** Inserts or replaces a session; returns its id (assigned when absent). */
    public function upsertSession(array $session): int
    {
        $json = self::encode($session);
        $id = $this->ffi->new('uint64_t');
        $this->call($this->ffi->cs_upsert_session($this->h(), $json, strlen($json), \FFI::addr($id)));
        return (int) $id->cdata;
    }

    /** Inserts or replaces an account (sso_id, tenant, hash). */
    public function upsertAccount(array $account): void
    {
        $json = self::encode($account);
        $this->call($this->ffi->cs_upsert_account($this->h(), $json, strlen($json)));
    }

    /** Deletes an account. */
    public function deleteAccount(int $ssoId): void
    {
        $this->call($this->ffi->cs_delete_account($this->h(), self::u64($ssoId, 'sso_id')));
    }

    /** Appends a message; returns its id (assigned when absent). */
    public function appendMessage(array $message): int
    {
        $json = self::encode($message);
        $id = $this->ffi->new('uint64_t');
        $this->call($this->ffi->cs_append_message($this->h(), $json, strlen($json), \FFI::addr($id)));
        return (int) $id->cdata;
    }

    /**
     * A session's messages, newest first. $params: tenant, session_id,
     * page (default 1), pagesize (default 20). Returns total, page, pagesize, data.
     */
    public function messages(array $params): array
    {
        // Checked by the core as history-list's parameters are ('abc',
        // '2abc' and 2.9 are refused naming the key; paging is lenient).
        $json = self::encode($params);
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_messages_json($this->h(), $json, strlen($json), $out)));
    }

    /**
     * Searches message text. $params: tenant, q (required), session_id,
     * agent_id, page, pagesize. Returns total (exact), page, pagesize, data
     * (messages, newest first).
     */
    public function searchMessages(array $params): array
    {
        $json = self::encode($params);
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_search_messages($this->h(), $json, strlen($json), $out)));
    }

    /** Members of the tenant whose nickname or mobile matches $q. */
    public function searchMembers(int $tenant, string $q): array
    {
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_search_members($this->h(), self::u64($tenant, 'tenant'), $q, strlen($q), $out)));
    }

    /**
     * Marks a session's messages read by $reader ('agent' reads the member's
     * messages, 'member' the agent's) up to message id $upTo; a read mark
     * never moves back. Returns that reader's unread count after.
     */
    public function markRead(int $tenant, int $sessionId, string $reader, int $upTo): int
    {
        $code = match ($reader) {
            'agent' => 0,
            'member' => 1,
            default => throw new InvalidInputException("invalid reader: \"$reader\" is neither \"agent\" nor \"member\"", -1),
        };
        $unread = $this->ffi->new('uint64_t');
        $this->call($this->ffi->cs_mark_read($this->h(), self::u64($tenant, 'tenant'), self::u64($sessionId, 'session_id'),
            $code, self::u64($upTo, 'up_to'), \FFI::addr($unread)));
        return (int) $unread->cdata;
    }

    /**
     * An agent's live session list, newest activity first: total, page,
     * pagesize, data (rows with session, member, agent, last_message and
     * read; read.unread_by_agent is the platform's un_read_num).
     */
    public function liveSessions(int $tenant, int $agentId, int $page = 1, int $pagesize = 20): array
    {
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_live_sessions(
            $this->h(), self::u64($tenant, 'tenant'), self::u64($agentId, 'agent_id'), max(1, $page), max(1, $pagesize), $out)));
    }

    /** Recalls a message: kept in history, flagged 'recalled' (the platform's is_backed), no longer unread. */
    public function recallMessage(int $tenant, int $sessionId, int $messageId): void
    {
        $this->call($this->ffi->cs_recall_message($this->h(), self::u64($tenant, 'tenant'),
            self::u64($sessionId, 'session_id'), self::u64($messageId, 'message_id')));
    }

    /** Deletes a message softly: out of every view (lists, counts, last message, unread), kept for export. */
    public function deleteMessage(int $tenant, int $sessionId, int $messageId): void
    {
        $this->call($this->ffi->cs_delete_message($this->h(), self::u64($tenant, 'tenant'),
            self::u64($sessionId, 'session_id'), self::u64($messageId, 'message_id')));
    }

    /** Deletes a session and its messages. */
    public function deleteSession(int $tenant, int $id): void
    {
        $this->call($this->ffi->cs_delete_session($this->h(), self::u64($tenant, 'tenant'), self::u64($id, 'id')));
    }

    /** Deletes a member, its sessions and their messages. */
    public function deleteMember(int $tenant, int $uid): void
    {
        $this->call($this->ffi->cs_delete_member($this->h(), self::u64($tenant, 'tenant'), self::u64($uid, 'uid')));
    }

    /** Deletes an agent; refused (ConflictException) while it has sessions. */
    public function deleteAgent(int $tenant, int $id): void
    {
        $this->call($this->ffi->cs_delete_agent($this->h(), self::u64($tenant, 'tenant'), self::u64($id, 'id')));
    }

    /** What the store was created as: ['format' => int, 'text_index' => bool]. */
    public function info(): array
    {
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_store_info($this->h(), $out)));
    }

    /** Verifies every invariant: ['ok' => bool, 'violations' => [...], ...]. */
    public function check(): array
    {
        return $this->decode($this->callString(fn ($out) => $this->ffi->cs_check($this->h(), $out)));
    }

    /** Whether this process owns the store (holds it and serves the other processes that open it). */
    public function isOwner(): bool
    {
        $owner = $this->ffi->new('int32_t');
        $this->call($this->ffi->cs_store_is_owner($this->h(), \FFI::addr($owner)));
        return $owner->cdata === 1;
    }

    /** Makes every write so far durable. */
    public function flush(): void
    {
        $this->call($this->ffi->cs_store_flush($this->h()));
    }

    /** Flushes and releases the store. Idempotent; later calls throw ClosedException. */
    public function close(): void
    {
        if ($this->handle !== null) {
            $h = $this->handle;
            $this->handle = null;
            $this->ffi->cs_store_close($h);
        }
    }

    public function __destruct()
    {
        $this->close();
    }

    /**
     * A path handed to C ends at its first NUL byte: refuse one rather than
     * open, import or export another file than the caller named.
     */
    private static function cPath(string $path): void
    {
        if (str_contains($path, "\0")) {
            throw new InvalidInputException('invalid path: contains a NUL byte', -1);
        }
    }

    private function h(): \FFI\CData
    {
        if ($this->handle === null) {
            throw new ClosedException('store is closed', -8);
        }
        return $this->handle;
    }

    private function call(int $rc): void
    {
        self::raise($this->ffi, $rc);
    }

    /** Calls $f with a char** out-parameter; copies and frees the result exactly once. */
    private function callString(callable $f): string
    {
        $out = $this->ffi->new('char*');
        $this->call($f(\FFI::addr($out)));
        if (\FFI::isNull($out)) {
            return '';
        }
        try {
            return \FFI::string($out);
        } finally {
            $this->ffi->cs_string_free($out);
        }
    }

    private function decode(string $json): array
    {
        $v = json_decode($json, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        return is_array($v) ? $v : [];
    }

    /**
     * A PHP int passed as a C uint64_t: a negative one would wrap to a huge
     * id, so it is refused naming the argument.
     */
    private static function u64(int $v, string $name): int
    {
        if ($v < 0) {
            throw new InvalidInputException("invalid $name: $v is negative", -1);
        }
        return $v;
    }

    private static function encode(array $v): string
    {
        try {
            return json_encode($v, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
        } catch (\JsonException $e) {
            throw new InvalidInputException('invalid argument: ' . $e->getMessage(), -1, $e);
        }
    }

    private static function raise(\FFI $ffi, int $rc): void
    {
        if ($rc === 0) {
            return;
        }
        $msg = (string) $ffi->cs_last_error_message();
        throw match ($rc) {
            -1 => new InvalidInputException($msg, $rc),
            -2 => new NotFoundException($msg, $rc),
            -3 => new LockedException($msg, $rc),
            -4 => new ConflictException($msg, $rc),
            -8 => new ClosedException($msg, $rc),
            default => new StorageException($msg, $rc),
        };
    }
}
