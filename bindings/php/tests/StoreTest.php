<?php

declare(strict_types=1);

use ChatStore\ClosedException;
use ChatStore\ConflictException;
use ChatStore\InvalidInputException;
use ChatStore\LockedException;
use ChatStore\NotFoundException;
use ChatStore\StorageException;
use ChatStore\Store;
use PHPUnit\Framework\TestCase;

final class StoreTest extends TestCase
{
    private const HASH = '5f4dcc3b5aa765d61d8327deb882cf99';
    private string $dir;
    private Store $store;

    private static function root(): string
    {
        return dirname(__DIR__, 3);
    }

    private static function seeds(): string
    {
        return self::root() . '/crates/chatstore/data/seeds.jsonl';
    }

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/chatstore-php-' . bin2hex(random_bytes(6));
        $this->store = Store::open($this->dir, ['media_base' => 'http://localhost:82']);
        $this->store->importJsonl(self::seeds());
    }

    protected function tearDown(): void
    {
        $this->store->close();
        exec('rm -rf ' . escapeshellarg($this->dir));
    }

    public function testFirstSeedResponseValueForValue(): void
    {
        $expected = json_decode(file_get_contents(self::root() . '/crates/chatstore/data/expected_history_list.json'), true);
        $this->assertSame($expected, $this->store->historyList(['tenant' => 2, 'employee' => 2]));
        // Request values arrive as strings in PHP: same answer.
        $this->assertSame($expected, $this->store->historyList(['tenant' => '2', 'employee' => '2', 'page' => '1', 'pagesize' => '10']));
    }

    public function testPaginatorAndFilter(): void
    {
        $r = $this->store->historyList(['tenant' => 2, 'employee' => 2, 'page' => 'abc', 'pagesize' => 2, 'page_url' => '/api.php?r=x']);
        $this->assertSame(1, $r['data']['current_page']);
        $this->assertSame('/api.php?r=x&page=2', $r['data']['next_page_url']);
        $r = $this->store->historyList(['tenant' => 2, 'user_name' => '185-1669']);
        $this->assertSame(1, $r['data']['total']);
        $this->assertSame(2665, $r['data']['data'][0]['uid']);
        $r = $this->store->historyList(['tenant' => 77]);
        $this->assertSame(0, $r['data']['last_page']);
        $this->assertNull($r['data']['from']);
    }

    public function testHischatShapesAndRefusals(): void
    {
        $r = $this->store->hischat(218, self::HASH);
        $this->assertSame(1, $r['status']);
        $this->assertCount(2, $r['history']);
        $msg = $r['history'][0]['last_msg'][0];
        $this->assertSame('185185', $msg['cha_id']);
        $this->assertSame(156509782, $msg['cha_owner_id']);
        $this->assertSame('218', $msg['cha_min_id']);
        $this->assertSame(['error' => 'Khong co ma bao mat', 'status' => 0, 'history' => ''], $this->store->hischat(218, ''));
        $this->store->upsertAccount(['sso_id' => 300, 'tenant' => 2, 'hash' => 'h300']);
        $this->assertSame(4, count($this->store->hischat(300, 'h300')['history']));
        $this->store->deleteAccount(300);
        $this->assertSame(0, $this->store->hischat(300, 'h300')['status']);
        $wrong = $this->store->hischat(218, 'nope');
        $this->assertSame(0, $wrong['status']);
        $this->assertSame($wrong, $this->store->hischat(4242, 'nope'));
        $this->assertJson($this->store->hischatJson(218, self::HASH, 0));
    }

    public function testWritesAndQueries(): void
    {
        $this->store->upsertMember(['tenant' => 2, 'uid' => 9000, 'nickname' => 'Nguyễn Văn Đức', 'mobile' => '+84 916 123 456']);
        $sid = $this->store->upsertSession(['tenant' => 2, 'uid' => 9000, 'agent_id' => 2]);
        $this->assertSame(5, $sid);
        $mid = $this->store->appendMessage(['tenant' => 2, 'session_id' => $sid, 'sender' => 'member', 'sender_id' => 9000, 'content' => 'Chào shop', 'time' => 1800000000]);
        $this->assertSame(11, $mid);
        $this->assertSame(9000, $this->store->searchMembers(2, 'duc')[0]['uid']);
        $this->assertSame(9000, $this->store->searchMembers(2, '0916123')[0]['uid']);
        $m = $this->store->messages(['tenant' => 2, 'session_id' => $sid]);
        $this->assertSame(1, $m['total']);
        $this->assertSame('Chào shop', $m['data'][0]['content']);
        $r = $this->store->historyList(['tenant' => 2, 'order' => 'recent']);
        $this->assertSame($sid, $r['data']['data'][0]['id']);
        $this->store->deleteSession(2, $sid);
        $this->store->deleteMember(2, 9000);
        $this->assertSame([], $this->store->searchMembers(2, 'duc'));
        $this->assertTrue($this->store->check()['ok']);
    }

    public function testErrorsAreExceptions(): void
    {
        try {
            $this->store->upsertSession(['tenant' => 2, 'uid' => 424242]);
            $this->fail('no exception');
        } catch (NotFoundException $e) {
            $this->assertStringContainsString('member 424242', $e->getMessage());
            $this->assertSame(-2, $e->getCode());
        }
        try {
            $this->store->historyList(['tenant' => 2, 'pgae' => 2]);
            $this->fail('no exception');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('pgae', $e->getMessage());
        }
        try {
            $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content_type' => 9]);
            $this->fail('no exception');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('content_type', $e->getMessage());
        }
        $this->expectException(InvalidInputException::class);
        $this->store->upsertMember(['tenant' => 2, 'uid' => 1, 'nickname' => "\xff\xfe"]);
    }

    public function testDeletingAnAgentWithSessionsIsAConflict(): void
    {
        try {
            $this->store->deleteAgent(2, 2);
            $this->fail('no exception');
        } catch (ConflictException $e) {
            $this->assertStringContainsString('still has 3 sessions', $e->getMessage());
        }
        $this->store->upsertAgent(['tenant' => 2, 'id' => 9, 'nickname' => 'idle']);
        $this->store->deleteAgent(2, 9);
        $this->assertTrue($this->store->check()['ok']);
    }

    public function testCloseIsIdempotentAndUseAfterCloseThrows(): void
    {
        $this->store->close();
        $this->store->close();
        $this->expectException(ClosedException::class);
        $this->store->historyList(['tenant' => 2]);
    }

    public function testReopenKeepsData(): void
    {
        $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => 'x', 'time' => 1800000000]);
        $this->store->close();
        $this->store = Store::open($this->dir);
        $r = $this->store->historyList(['tenant' => 2, 'order' => 'recent']);
        $this->assertSame(4, $r['data']['data'][0]['id']);
        $this->assertTrue($this->store->check()['ok']);
    }

    /** Two Store objects on one path in one process share the store; closing one leaves the other working. */
    public function testSecondStoreObjectOnTheSamePathSharesIt(): void
    {
        $second = Store::open($this->dir);
        $this->assertTrue($this->store->isOwner() && $second->isOwner());
        $this->assertSame(3, $second->historyList(['tenant' => 2, 'employee' => 2])['data']['total']);
        $second->close();
        $this->assertSame(3, $this->store->historyList(['tenant' => 2, 'employee' => 2])['data']['total']);
    }

    /** Another PHP process opens the same store while this one holds it, reads and writes through it. */
    public function testAnotherProcessUsesTheStoreThisOneHolds(): void
    {
        $this->store->upsertMember(['tenant' => 2, 'uid' => 9001, 'nickname' => 'Trần Đức']);
        $code = 'require ' . var_export(dirname(__DIR__) . '/autoload.php', true) . ';'
            . '$s = ChatStore\Store::open(' . var_export($this->dir, true) . ');'
            // On a sled store the child is the holder's client; an LMDB store
            // (the default) it opens itself.
            . 'if ($s->info()["backend"] === "sled" && $s->isOwner()) { exit(3); }'
            . '$found = $s->searchMembers(2, "duc");'
            . '$s->upsertMember(["tenant" => 2, "uid" => 9002, "nickname" => "from the child"]);'
            . 'echo json_encode(array_column($found, "uid"));';
        $out = [];
        exec(PHP_BINARY . ' -d ffi.enable=1 -r ' . escapeshellarg($code) . ' 2>&1', $out, $rc);
        $this->assertSame(0, $rc, implode("\n", $out));
        $this->assertSame('[9001]', end($out));
        $this->assertSame(9002, $this->store->searchMembers(2, 'from the child')[0]['uid']);
    }

    public function testExportRoundTrip(): void
    {
        $a = $this->dir . '.a.jsonl';
        $b = $this->dir . '.b.jsonl';
        $this->assertSame(20, $this->store->exportJsonl($a));
        $other = Store::open($this->dir . '.copy');
        $other->importJsonl($a);
        $other->exportJsonl($b);
        $other->close();
        $this->assertSame(file_get_contents($a), file_get_contents($b));
        exec('rm -rf ' . escapeshellarg($this->dir . '.copy') . ' ' . escapeshellarg($a) . ' ' . escapeshellarg($b));
    }

    /** A NUL byte in a path is refused, not cut there (issue 18, item 7). */
    public function testNulInAPathIsRefused(): void
    {
        $out = $this->dir . '-export.jsonl';
        foreach ([
            fn () => Store::open($this->dir . "\0-other"),
            fn () => $this->store->importJsonl(__FILE__ . "\0.jsonl"),
            fn () => $this->store->exportJsonl($out . "\0.other"),
        ] as $i => $call) {
            try {
                $call();
                $this->fail("call $i took a path with a NUL byte");
            } catch (InvalidInputException $e) {
                $this->assertStringContainsString('NUL', $e->getMessage());
            }
        }
        $this->assertFileDoesNotExist($out);
        $this->assertDirectoryDoesNotExist($this->dir . '-other');
    }

    /** messages() checks its parameters as historyList() does (item 7). */
    public function testMessagesParametersAreCheckedLikeHistoryList(): void
    {
        foreach (['abc', '2abc', 2.9, -1] as $bad) {
            try {
                $this->store->messages(['tenant' => $bad, 'session_id' => 4]);
                $this->fail('tenant ' . var_export($bad, true) . ' was taken');
            } catch (InvalidInputException $e) {
                $this->assertStringContainsString('tenant', $e->getMessage());
            }
        }
        try {
            $this->store->messages(['tenant' => 2]);
            $this->fail('no session_id was taken');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('session_id', $e->getMessage());
        }
        // Paging is lenient, as history-list's: unusable values are defaults.
        $m = $this->store->messages(['tenant' => '2', 'session_id' => '4', 'page' => 'x', 'pagesize' => 0]);
        $this->assertSame([1, 20], [$m['page'], $m['pagesize']]);
    }

    /** docs/RELIABILITY.md, PHP column: each refusal names the field and writes nothing. */
    public function testBadInputRowsOfReliabilityMd(): void
    {
        $before = $this->store->check();
        foreach ([
            'nickname' => fn () => $this->store->upsertMember(['tenant' => 2, 'uid' => 1, 'nickname' => str_repeat('x', 256)]),
            'NUL' => fn () => $this->store->upsertMember(['tenant' => 2, 'uid' => 1, 'nickname' => "a\0b"]),
            'content' => fn () => $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => str_repeat('x', 65537)]),
            'user_name' => fn () => $this->store->searchMembers(2, str_repeat('q', 256)),
            // A record is a JSON object: a list is not taken field by field.
            'must be a JSON object' => fn () => $this->store->upsertMember([2, 77, 'x']),
        ] as $field => $call) {
            try {
                $call();
                $this->fail("no exception for $field");
            } catch (InvalidInputException $e) {
                $this->assertStringContainsString($field, $e->getMessage());
            }
        }
        $this->assertSame($before, $this->store->check());
        $file = $this->dir . '-a-file';
        file_put_contents($file, 'not a store');
        try {
            Store::open($file);
            $this->fail('a file opened as a store');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('is a file', $e->getMessage());
        } finally {
            $this->assertSame('not a store', file_get_contents($file));
            unlink($file);
        }
    }
    /** docs/RELIABILITY.md, PHP column: negative and huge numbers. */
    public function testNegativeAndHugeNumbers(): void
    {
        $before = $this->store->check();
        foreach ([['tenant' => -1], ['tenant' => '18446744073709551616'], ['tenant' => 'two']] as $params) {
            try {
                $this->store->historyList($params);
                $this->fail('accepted ' . json_encode($params));
            } catch (InvalidInputException $e) {
                $this->assertStringContainsString('tenant', $e->getMessage());
            }
        }
        // page and pagesize follow the platform: the default, or the clamp.
        $r = $this->store->historyList(['tenant' => 2, 'page' => -3, 'pagesize' => -1]);
        $this->assertSame([1, 10], [$r['data']['current_page'], $r['data']['per_page']]);
        $r = $this->store->historyList(['tenant' => 2, 'page' => PHP_INT_MAX, 'pagesize' => 1000]);
        $this->assertSame([100, []], [$r['data']['per_page'], $r['data']['data']]);
        try {
            $this->store->hischat(-218, self::HASH, 1);
            $this->fail('a negative sso_id was accepted');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('sso_id', $e->getMessage());
        }
        // A negative PHP int never wraps to a huge C id.
        try {
            $this->store->deleteSession(-2, 1);
            $this->fail('a negative tenant was accepted');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('tenant', $e->getMessage());
        }
        $this->assertSame($before, $this->store->check());
    }

    /** A store written by a newer format version is refused (StorageException, code -5). */
    public function testNewerStoreFormatIsRefused(): void
    {
        $copy = $this->dir . '-newer';
        exec('cp -r ' . escapeshellarg(self::root() . '/tests/fixtures/newer-format.db') . ' ' . escapeshellarg($copy));
        try {
            Store::open($copy);
            $this->fail('a newer store format was opened');
        } catch (StorageException $e) {
            $this->assertSame(-5, $e->getCode());
            $this->assertStringContainsString('newer', $e->getMessage());
        } finally {
            exec('rm -rf ' . escapeshellarg($copy));
        }
    }

    /** A sled store locked by something that does not serve it (a plain flock on its file, as sled takes). */
    public function testALockNobodyServesIsLockedException(): void
    {
        $dir = $this->dir . '-closed';
        Store::open($dir, ['linger_ms' => 0, 'backend' => 'sled'])->close();
        $fp = null;
        $deadline = microtime(true) + 10;
        // sled lets go of the file a moment after the close.
        while (($fp === null || !flock($fp, LOCK_EX | LOCK_NB)) && microtime(true) < $deadline) {
            $fp = $fp ?? fopen($dir . '/db', 'r');
            usleep(10000);
        }
        try {
            Store::open($dir, ['attach_timeout_ms' => 100]);
            $this->fail('a locked store opened');
        } catch (LockedException $e) {
            $this->assertStringContainsString($dir, $e->getMessage());
        } finally {
            fclose($fp);
            exec('rm -rf ' . escapeshellarg($dir));
        }
    }

    /** Read state: an append counts as unread for the agent until it marks it read. */
    public function testReadStateAndLiveSessions(): void
    {
        $id = $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'sender' => 'member', 'content' => 'còn hàng không?', 'time' => 1800000200]);
        $live = $this->store->liveSessions(2, 2);
        $this->assertSame(4, $live['data'][0]['session']['id']);
        $unread = $live['data'][0]['read']['unread_by_agent'];
        $this->assertGreaterThanOrEqual(1, $unread);
        $this->assertSame(0, $this->store->markRead(2, 4, 'agent', $id));
        $this->assertSame(0, $this->store->liveSessions(2, 2)['data'][0]['read']['unread_by_agent']);
        $this->assertSame($id, $this->store->liveSessions(2, 2)['data'][0]['read']['agent_read_upto']);
        try {
            $this->store->markRead(2, 4, 'boss', 1);
            $this->fail('a reader that is neither side was accepted');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('reader', $e->getMessage());
        }
        $this->assertTrue($this->store->check()['ok']);
    }

    /** Search inside message text: exact totals, scoped, recalled messages not found. */
    public function testSearchMessages(): void
    {
        $a = $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => 'Đơn hàng 20261202 đã giao', 'time' => 1800000500]);
        $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => '订单 20261202 发货了', 'time' => 1800000501]);
        $r = $this->store->searchMessages(['tenant' => 2, 'q' => '20261202']);
        $this->assertSame(2, $r['total']);
        $this->assertSame('订单 20261202 发货了', $r['data'][0]['content']);
        $this->assertSame(1, $this->store->searchMessages(['tenant' => 2, 'q' => 'DON HANG'])['total']);
        $this->store->recallMessage(2, 4, $a);
        $this->assertSame(0, $this->store->searchMessages(['tenant' => 2, 'q' => 'don hang'])['total']);
        try {
            $this->store->searchMessages(['tenant' => 2, 'q' => '订']);
            $this->fail('a one-character query over a whole tenant was accepted');
        } catch (InvalidInputException $e) {
            $this->assertStringContainsString('session_id', $e->getMessage());
        }
    }

    /** A store created without the text index searches one session at a time. */
    public function testStoreWithoutTextIndex(): void
    {
        $dir = $this->dir . '-noindex';
        $s = Store::open($dir, ['text_index' => false, 'linger_ms' => 0]);
        try {
            $s->importJsonl(self::seeds());
            $s->appendMessage(['tenant' => 2, 'session_id' => 4, 'content' => '订单 20261202 发货了', 'time' => 1800000501]);
            try {
                $s->searchMessages(['tenant' => 2, 'q' => '20261202']);
                $this->fail('a tenant-wide search without the text index was accepted');
            } catch (ConflictException $e) {
                $this->assertStringContainsString('text_index', $e->getMessage());
            }
            $this->assertSame(1, $s->searchMessages(['tenant' => 2, 'q' => '20261202', 'session_id' => 4])['total']);
            $this->assertSame(['format' => 6, 'text_index' => false, 'backend' => 'lmdb'], $s->info());
            $this->assertSame(['format' => 6, 'text_index' => true, 'backend' => 'lmdb'], $this->store->info());
        } finally {
            $s->close();
            exec('rm -rf ' . escapeshellarg($dir));
        }
    }

    /** Recall keeps a message flagged; delete takes it out of every view. */
    public function testRecallAndDeleteMessage(): void
    {
        $before = $this->store->messages(['tenant' => 2, 'session_id' => 4])['total'];
        $id = $this->store->appendMessage(['tenant' => 2, 'session_id' => 4, 'sender' => 'agent', 'content' => 'sai giá', 'time' => 1800000400]);
        $this->store->recallMessage(2, 4, $id);
        $m = $this->store->messages(['tenant' => 2, 'session_id' => 4]);
        $this->assertSame($before + 1, $m['total']);
        $this->assertTrue($m['data'][0]['recalled']);
        $this->store->deleteMessage(2, 4, $id);
        $m = $this->store->messages(['tenant' => 2, 'session_id' => 4]);
        $this->assertSame($before, $m['total']);
        $this->assertNotContains($id, array_column($m['data'], 'id'));
        try {
            $this->store->deleteMessage(2, 4, $id);
            $this->fail('a deleted message was deleted again');
        } catch (NotFoundException $e) {
            $this->assertStringContainsString((string) $id, $e->getMessage());
        }
        $this->assertTrue($this->store->check()['ok']);
    }
}
