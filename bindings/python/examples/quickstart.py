"""The README's example: the seeds' sample data through both endpoints and the
entity calls. Runs from any directory: python bindings/python/examples/quickstart.py"""
import json
import pathlib
import tempfile

import chatstore

# The seeds' sample data (your own dump: JSON Lines in the import format of CONTRACT §5).
seeds = pathlib.Path(__file__).resolve().parents[3] / "crates" / "chatstore" / "data" / "seeds.jsonl"

with tempfile.TemporaryDirectory() as tmp, chatstore.open(pathlib.Path(tmp) / "shop.db", media_base="http://localhost:82") as store:
    print(store.import_jsonl(seeds))                       # -> {"lines": ..., "members": ...}
    page = store.history_list(2, employee=2, user_name="185-1669", page=1, pagesize=10)
    conv = store.hischat(218, "5f4dcc3b5aa765d61d8327deb882cf99", page=1)
    sid = store.upsert_session({"tenant": 2, "uid": 2669, "agent_id": 2})
    mid = store.append_message({"tenant": 2, "session_id": sid, "sender": "agent", "sender_id": 2, "content": "您好, 订单已发货"})
    live = store.live_sessions(2, 2)                       # agent 2's sessions, unread counts
    unread = store.mark_read(2, sid, "agent", mid)         # -> agent's unread count after
    hits = store.search_messages(2, "订单", agent_id=2)     # inside message text, exact total
    store.recall_message(2, sid, mid)                      # kept, "recalled": True
    store.delete_message(2, sid, mid)                      # out of every view
    records = sum(1 for _ in store.export())               # streams every record as a dict
    print(json.dumps({"history_list_total": page["data"]["total"], "hischat_status": conv["status"],
                      "live_total": live["total"], "unread": unread, "hits": hits["total"], "records": records}))
