import json
import subprocess
import sys
import threading
import time

import pytest

import chatstore
from conftest import DATA, HASH, SEEDS


def test_first_seed_response_value_for_value(store):
    expected = json.loads((DATA / "expected_history_list.json").read_text(encoding="utf-8"))
    assert store.history_list(2, employee=2) == expected
    # Key order too.
    assert list(store.history_list(2, employee=2)["data"]) == list(expected["data"])


def test_paginator_rules(store):
    d = store.history_list(2, employee=2, page=5, pagesize=2, page_url="/h")["data"]
    assert (d["current_page"], d["last_page"], d["from"], d["to"]) == (5, 2, None, None)
    assert d["next_page_url"] is None and d["prev_page_url"] == "/h?page=4"
    d = store.history_list(2, employee=2, page=0, pagesize=2, page_url="/api.php?r=x")["data"]
    assert d["current_page"] == 1 and d["next_page_url"] == "/api.php?r=x&page=2"
    d = store.history_list(77)["data"]
    assert (d["total"], d["last_page"], d["from"]) == (0, 0, None)
    assert store.history_list(2, pagesize=1000)["data"]["per_page"] == 100
    ids = [r["id"] for r in store.history_list(2, order="recent")["data"]["data"]]
    assert ids == [1, 3, 2, 4]


def test_hischat_shapes_and_refusals(store):
    r = store.hischat(218, HASH)
    assert r["status"] == 1 and r["error"] == ""
    first = r["history"][0]
    assert first["hash"] == "a18e6636339533c68691e5d782c85370"
    msg = first["last_msg"][0]
    assert msg["cha_id"] == "185185" and msg["cha_min_id"] == "218" and msg["cha_max_id"] == "156509782"
    assert msg["cha_owner_id"] == 156509782 and isinstance(msg["cha_owner_id"], int)
    assert all(isinstance(msg[k], str) for k in msg if k != "cha_owner_id")
    assert store.hischat(218, "") == {"error": "Khong co ma bao mat", "status": 0, "history": ""}
    wrong = store.hischat(218, "nope")
    assert wrong["status"] == 0 and wrong["history"] == "" and wrong["error"]
    assert wrong == store.hischat(99999, "nope")


@pytest.mark.parametrize(
    "query,uids",
    [
        ("小", [2671]),
        ("185-1669", [2665]),
        ("13912345678", [2671]),
        ("+86 139 1234", [2671]),
        ("150000000", [2665, 2669]),
        ("   ", []),
        ("zzz", []),
    ],
)
def test_search_rules(store, query, uids):
    assert [m["uid"] for m in store.search_members(2, query)] == uids


def test_vietnamese_and_fullwidth_normalization(store):
    store.upsert_member({"tenant": 2, "uid": 9000, "nickname": "Nguyễn Văn Đức", "mobile": "+84 916 123 456"})
    store.upsert_member({"tenant": 2, "uid": 9001, "nickname": "Trường", "mobile": "0912345678"})
    assert [m["uid"] for m in store.search_members(2, "duc")] == [9000]
    assert [m["uid"] for m in store.search_members(2, "ＶＡＮ")] == [9000]
    assert [m["uid"] for m in store.search_members(2, "truong")] == [9001]
    assert [m["uid"] for m in store.search_members(2, "0916123")] == [9000]
    assert [m["uid"] for m in store.search_members(2, "+84 912 345 678")] == [9001]


def test_writes(store):
    sid = store.upsert_session({"tenant": 2, "uid": 2669, "agent_id": 2})
    assert sid == 5
    mid = store.append_message({"tenant": 2, "session_id": sid, "sender": "agent", "sender_id": 2, "content": "您好", "time": 1800000000})
    assert mid == 11
    page = store.messages(2, sid)
    assert page["total"] == 1 and page["data"][0]["content"] == "您好"
    assert store.history_list(2, order="recent")["data"]["data"][0]["id"] == sid
    store.delete_session(2, sid)
    store.delete_member(2, 2662)
    assert store.history_list(2)["data"]["total"] == 3  # sessions 2, 3, 4
    assert store.check()["ok"] is True


def test_errors(store, tmp_path):
    with pytest.raises(chatstore.NotFoundError, match="member 424242"):
        store.upsert_session({"tenant": 2, "uid": 424242})
    with pytest.raises(chatstore.InvalidInputError, match="colour"):
        store.upsert_member({"tenant": 2, "uid": 1, "colour": "red"})
    with pytest.raises(chatstore.InvalidInputError, match="content_type"):
        store.append_message({"tenant": 2, "session_id": 4, "content_type": 9})
    with pytest.raises(chatstore.InvalidInputError):
        store.upsert_member({"tenant": "two", "uid": 1})
    with pytest.raises(chatstore.InvalidInputError, match="order"):
        store.history_list(2, order="name")
    with pytest.raises(chatstore.ConflictError, match="still has 3 sessions"):
        store.delete_agent(2, 2)
    with pytest.raises(chatstore.InvalidInputError, match="durability"):
        chatstore.open(tmp_path / "x", durability="sometimes")
    with pytest.raises(chatstore.InvalidInputError, match="tenant"):
        store.history_list(-1)
    for cls in (chatstore.LockedError, chatstore.NotFoundError, chatstore.InvalidInputError,
                chatstore.ConflictError, chatstore.ClosedError, chatstore.StorageError):
        assert issubclass(cls, chatstore.Error)
        assert cls.__module__ == "chatstore"


def test_second_open_shares_the_store(store, tmp_path):
    second = chatstore.open(tmp_path / "db")
    assert store.is_owner() and second.is_owner()
    assert second.history_list(2, employee=2)["data"]["total"] == 3
    second.close()
    assert store.history_list(2, employee=2)["data"]["total"] == 3


def test_another_process_uses_the_store_this_one_holds(store, tmp_path):
    store.upsert_member({"tenant": 2, "uid": 9001, "nickname": "Trần Đức"})
    code = (
        "import chatstore, json, sys\n"
        "s = chatstore.open(sys.argv[1])\n"
        # a sled store's holder serves the child; an LMDB store it opens itself
        "assert s.info()['backend'] == 'lmdb' or not s.is_owner()\n"
        "found = [m['uid'] for m in s.search_members(2, 'duc')]\n"
        "s.upsert_member({'tenant': 2, 'uid': 9002, 'nickname': 'from the child'})\n"
        "print(json.dumps(found))\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "db")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [9001]
    assert store.search_members(2, "from the child")[0]["uid"] == 9002


def test_context_manager_and_use_after_close(tmp_path):
    with chatstore.open(tmp_path / "db") as s:
        s.import_jsonl(SEEDS)
        assert not s.closed
    assert s.closed
    with pytest.raises(chatstore.ClosedError):
        s.history_list(2)
    s.close()  # idempotent
    # Reopen: the data is there.
    with chatstore.open(tmp_path / "db") as s2:
        assert s2.history_list(2, employee=2)["data"]["total"] == 3


def test_export_iterator_matches_export_file(store, tmp_path):
    n = store.export_jsonl(tmp_path / "out.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    records = list(store.export())
    assert n == len(records) == 20
    assert records == lines
    assert records[0] == {"kind": "account", "sso_id": 218, "tenant": 218, "hash": HASH}


def test_threads_make_progress_together(tmp_path):
    """While one thread is inside a long store call, another keeps running Python."""
    big = tmp_path / "big.jsonl"
    with big.open("w", encoding="utf-8") as f:
        for uid in range(1, 30001):
            f.write(json.dumps({"kind": "member", "tenant": 1, "uid": uid, "nickname": f"李小龙{uid}", "mobile": f"+86 139{uid:08d}"}) + "\n")
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    with chatstore.open(tmp_path / "db") as s:
        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.05)
        before = counter[0]
        s.import_jsonl(big)  # long: tens of thousands of members
        during = counter[0] - before
        stop.set()
        t.join()
        assert s.search_members(1, "小龙29999")[0]["uid"] == 29999
    # Holding the GIL for the whole import would leave the spinner at a
    # handful of increments (at most one switch interval around the call).
    assert during > 10000, during


def test_stub_matches_the_module():
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "chatstore._chatstore"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_csv_migration_example_reproduces_the_seed(tmp_path):
    here = DATA.parents[2] / "bindings" / "python" / "examples"
    r = subprocess.run(
        [sys.executable, str(here / "migrate_csv.py"), str(here / "yunshop_csv"), str(tmp_path / "db"), "--tenant", "2", "--employee", "2"],
        capture_output=True, text=True, check=True,
    )
    expected = json.loads((DATA / "expected_history_list.json").read_text(encoding="utf-8"))
    assert json.loads(r.stdout) == expected
    assert "imported 13 rows" in r.stderr


def test_bad_input_rows_of_reliability_md(store, tmp_path):
    """docs/RELIABILITY.md, Python column: each refusal names the field and writes nothing."""
    before = list(store.export())
    with pytest.raises(chatstore.InvalidInputError, match="nickname"):
        store.upsert_member({"tenant": 2, "uid": 1, "nickname": "x" * 256})
    with pytest.raises(chatstore.InvalidInputError, match="NUL"):
        store.upsert_member({"tenant": 2, "uid": 1, "nickname": "a\0b"})
    with pytest.raises(chatstore.InvalidInputError, match="content"):
        store.append_message({"tenant": 2, "session_id": 4, "content": "x" * 65537})
    with pytest.raises(chatstore.InvalidInputError, match="user_name"):
        store.search_members(2, "q" * 256)
    # A record is a JSON object, never a list taken field by field.
    with pytest.raises(chatstore.InvalidInputError, match="must be a JSON object"):
        store.upsert_member([2, 77, "x"])
    with pytest.raises(chatstore.InvalidInputError, match="must be a JSON object"):
        store.append_message([2, 4, "hi"])
    assert list(store.export()) == before
    assert store.check()["ok"]
    a_file = tmp_path / "a-file"
    a_file.write_text("not a store")
    with pytest.raises(chatstore.InvalidInputError, match="is a file"):
        chatstore.open(a_file)
    assert a_file.read_text() == "not a store"


def test_negative_and_huge_numbers(store):
    """docs/RELIABILITY.md, Python column: numbers out of range are refused, paging follows the platform."""
    before = list(store.export())
    for bad in (-1, 2**64):
        with pytest.raises(chatstore.InvalidInputError, match="tenant.*whole number"):
            store.history_list(tenant=bad)
    with pytest.raises(chatstore.InvalidInputError, match="tenant"):
        store.history_list(tenant="two")
    with pytest.raises(chatstore.InvalidInputError, match="tenant"):
        store.delete_session(-2, 1)
    with pytest.raises(chatstore.InvalidInputError, match="sso_id"):
        store.hischat(-218, HASH)
    r = store.history_list(tenant=2, page=-3, pagesize=-1)
    assert (r["data"]["current_page"], r["data"]["per_page"]) == (1, 10)
    r = store.history_list(tenant=2, page=2**63 - 1, pagesize=1000)
    assert (r["data"]["per_page"], r["data"]["data"]) == (100, [])
    assert list(store.export()) == before


def test_newer_store_format_is_refused(tmp_path):
    """A store written by a newer format version is refused with StorageError."""
    import shutil

    from conftest import ROOT

    copy = tmp_path / "newer.db"
    shutil.copytree(ROOT / "tests" / "fixtures" / "newer-format.db", copy)
    with pytest.raises(chatstore.StorageError, match="newer"):
        chatstore.open(copy)


def test_a_lock_nobody_serves_is_locked_error(tmp_path):
    """A sled store locked by something that does not serve it (a plain flock on its file, as sled takes)."""
    import fcntl

    chatstore.open(tmp_path / "closed", linger_ms=0, backend="sled").close()
    with open(tmp_path / "closed" / "db", "rb") as f:
        deadline = time.monotonic() + 10
        while True:  # sled lets go of the file a moment after the close
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        with pytest.raises(chatstore.LockedError, match="locked"):
            chatstore.open(tmp_path / "closed", attach_timeout_ms=100)


def test_an_lmdb_write_lock_held_elsewhere_is_locked_error_and_reads_go_on(store, tmp_path):
    """An LMDB store's writers wait for its write lock at most attach_timeout_ms;
    readers never wait."""
    import fcntl

    assert store.info()["backend"] == "lmdb"
    with open(tmp_path / "db" / "writer.lock", "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other = chatstore.open(tmp_path / "db", attach_timeout_ms=100)
        assert other.search_members(2, "小")  # a read
        with pytest.raises(chatstore.LockedError, match="write lock"):
            other.upsert_member({"tenant": 2, "uid": 9102, "nickname": "waits"})
        fcntl.flock(f, fcntl.LOCK_UN)
    other.upsert_member({"tenant": 2, "uid": 9102, "nickname": "waits"})


def test_a_forked_child_may_not_use_an_lmdb_store_its_parent_opened(store, tmp_path):
    """LMDB environments do not survive fork(): a child refuses the parent's
    store with an error saying so, and the parent goes on."""
    import os

    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            with pytest.raises(chatstore.StorageError, match="fork"):
                store.upsert_member({"tenant": 2, "uid": 9101, "nickname": "forked child"})
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert store.search_members(2, "forked child") == []
    assert store.check()["ok"]


def test_a_forked_child_reaches_a_sled_store_through_its_parent(tmp_path):
    """A child forked after open must not use the parent's engine (its threads
    are not in the child): it goes through the parent's socket."""
    import os

    store = chatstore.open(tmp_path / "db", media_base="http://localhost:82", backend="sled")
    store.import_jsonl(SEEDS)

    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            assert not store.is_owner()
            store.upsert_member({"tenant": 2, "uid": 9101, "nickname": "forked child"})
            again = chatstore.open(tmp_path / "db")
            assert not again.is_owner()
            assert again.search_members(2, "forked")[0]["uid"] == 9101
            again.close()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert store.search_members(2, "forked child")[0]["uid"] == 9101
    assert store.check()["ok"]
    store.close()


def test_read_state_and_live_sessions(store):
    mid = store.append_message({"tenant": 2, "session_id": 4, "sender": "member",
                                "content": "còn hàng không?", "time": 1800000300})
    live = store.live_sessions(2, 2)
    row = live["data"][0]
    assert row["session"]["id"] == 4
    assert row["read"]["unread_by_agent"] >= 1
    assert store.mark_read(2, 4, "agent", mid) == 0
    assert store.live_sessions(2, 2)["data"][0]["read"]["agent_read_upto"] == mid
    with pytest.raises(chatstore.InvalidInputError, match="reader"):
        store.mark_read(2, 4, "boss", 1)
    with pytest.raises(chatstore.NotFoundError):
        store.mark_read(2, 999, "member", 1)
    assert store.check()["ok"]


def test_recall_and_delete_message(store):
    before = store.messages(2, 4)["total"]
    mid = store.append_message({"tenant": 2, "session_id": 4, "sender": "agent",
                                "content": "sai giá", "time": 1800000400})
    store.recall_message(2, 4, mid)
    page = store.messages(2, 4)
    assert page["total"] == before + 1 and page["data"][0]["recalled"] is True
    store.delete_message(2, 4, mid)
    page = store.messages(2, 4)
    assert page["total"] == before and mid not in [m["id"] for m in page["data"]]
    with pytest.raises(chatstore.NotFoundError):
        store.delete_message(2, 4, mid)
    exported = [r for r in store.export() if r.get("kind") == "message" and r.get("id") == mid]
    assert exported and exported[0]["deleted_at"] > 0 and exported[0]["recalled"] is True
    assert store.check()["ok"]


def test_search_messages(store):
    a = store.append_message({"tenant": 2, "session_id": 4, "content": "Đơn hàng 20261202 đã giao",
                              "time": 1800000500})
    store.append_message({"tenant": 2, "session_id": 4, "content": "订单 20261202 发货了", "time": 1800000501})
    r = store.search_messages(2, "20261202")
    assert r["total"] == 2 and r["data"][0]["content"] == "订单 20261202 发货了"
    assert store.search_messages(2, "DON HANG", session_id=4)["total"] == 1
    assert store.search_messages(2, "don hang", session_id=1)["total"] == 0
    store.delete_message(2, 4, a)
    assert store.search_messages(2, "don hang")["total"] == 0
    with pytest.raises(chatstore.InvalidInputError, match="session_id"):
        store.search_messages(2, "订")


def test_a_store_without_the_text_index_searches_sessions_only(tmp_path):
    s = chatstore.open(tmp_path / "db", text_index=False, linger_ms=0)
    try:
        s.import_jsonl(SEEDS)
        s.append_message({"tenant": 2, "session_id": 4, "content": "订单 20261202 发货了", "time": 1800000501})
        with pytest.raises(chatstore.ConflictError, match="text_index"):
            s.search_messages(2, "20261202")
        assert s.search_messages(2, "20261202", session_id=4)["total"] == 1
        assert s.info() == {"format": 6, "text_index": False, "backend": "lmdb"}
        assert s.check()["ok"]
    finally:
        s.close()
    with pytest.raises(chatstore.InvalidInputError, match="text_index"):
        chatstore.open(tmp_path / "other", text_index="no")


def test_a_bad_argument_is_invalid_input_in_every_method(store, tmp_path):
    """Issue 18, item 15: an argument of the wrong type or out of range is
    chatstore.InvalidInputError naming it, for every method alike (it was a
    bare TypeError or OverflowError from the binding layer); the error is
    also a ValueError and a TypeError, as Python code expects."""
    assert issubclass(chatstore.InvalidInputError, (chatstore.Error, ValueError, TypeError))
    before = list(store.export())
    calls = [
        ("pagesize", lambda: store.history_list(2, pagesize="abc")),
        ("page", lambda: store.history_list(2, page=2.5)),
        ("employee", lambda: store.history_list(2, employee="2")),
        ("user_name", lambda: store.history_list(2, user_name=5)),
        ("order", lambda: store.history_list(2, order=None)),
        ("page", lambda: store.hischat(218, HASH, page="1")),
        ("hash", lambda: store.hischat(218, b"bytes")),
        ("pagesize", lambda: store.messages(2, 1, pagesize="abc")),
        ("session_id", lambda: store.messages(2, -1)),
        ("up_to", lambda: store.mark_read(2, 1, "agent", 1.0)),
        ("reader", lambda: store.mark_read(2, 1, 1, 1)),
        ("message_id", lambda: store.recall_message(2, 1, "x")),
        ("page", lambda: store.live_sessions(2, 2, page=[])),
        ("q", lambda: store.search_members(2, None)),
        ("agent_id", lambda: store.search_messages(2, "x", agent_id=True)),
        ("uid", lambda: store.delete_member(2, 2**64)),
        ("path", lambda: store.import_jsonl(42)),
        ("path", lambda: chatstore.open(None)),
    ]
    for name, call in calls:
        with pytest.raises(chatstore.InvalidInputError) as e:
            call()
        assert name in str(e.value), (name, str(e.value))
    assert list(store.export()) == before


def test_a_panic_under_a_call_is_a_storage_error_without_a_backtrace(capfd):
    """Issue 18, item 5: a panic under a call (chatstore's or a library's,
    such as sled's on a damaged file) is chatstore.StorageError, which
    `except chatstore.Error` and `except Exception` catch, where pyo3's
    PanicException escaped both; and the host's stderr gets no backtrace."""
    from chatstore import _chatstore

    with pytest.raises(chatstore.StorageError, match="a test panic"):
        _chatstore._panic_in_a_call()
    try:
        _chatstore._panic_in_a_call()
    except Exception as e:  # noqa: BLE001 - what a host writes
        assert isinstance(e, chatstore.Error)
    err = capfd.readouterr().err
    assert "panicked" not in err and "backtrace" not in err, err


def test_the_readme_example_runs_from_any_directory(tmp_path):
    """Issue 18, item 16: the README's example is examples/quickstart.py,
    which finds its sample data itself, so it runs from any directory."""
    import json
    import pathlib
    import subprocess
    import sys

    here = pathlib.Path(__file__).resolve().parent.parent
    example = here / "examples" / "quickstart.py"
    readme = (here / "README.md").read_text(encoding="utf-8")
    block = readme.split("```python\n", 1)[1].split("```\n", 1)[0]
    assert block == example.read_text(encoding="utf-8")
    out = subprocess.run([sys.executable, str(example)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    summary = json.loads(out[-1])
    assert summary["history_list_total"] == 1 and summary["hischat_status"] == 1, summary
    assert summary["hits"] >= 1 and summary["records"] > 20, summary
    assert list(tmp_path.iterdir()) == []
