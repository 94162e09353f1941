"""Build a chatstore from CSV exports of the platform's MySQL tables, then
print the first history-list page: the migration path a shop takes.

    mysql ... -e 'SELECT uid, uniacid, nickname, mobile, avatar FROM ims_mc_members' > members.csv   (and so on)
    python migrate_csv.py CSV_DIR STORE_DIR --tenant 2 --employee 2

CSV_DIR holds members.csv, agents.csv, sessions.csv and messages.csv with
the columns of the files in examples/yunshop_csv/. Datetimes are MySQL
`Y-m-d H:i:s` in the shop's offset (--utc-offset, default +08:00); empty means
never. The rows become JSON Lines and go through Store.import_jsonl, which
batches them, keeps the MySQL ids, and names the line of any bad row.
"""

import argparse
import csv
import datetime
import json
import os
import pathlib
import sys
import tempfile

import chatstore

SENDERS = {"member": "member", "user": "member", "employee": "agent", "agent": "agent", "system": "system"}


def unix(text, tz):
    if not text:
        return 0
    return int(datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz).timestamp())


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def records(src, tz):
    for r in rows(src / "members.csv"):
        yield {"kind": "member", "tenant": int(r["uniacid"]), "uid": int(r["uid"]), "nickname": r["nickname"],
               "mobile": r["mobile"], "avatar": r["avatar"]}
    for r in rows(src / "agents.csv"):
        yield {"kind": "agent", "tenant": int(r["uniacid"]), "id": int(r["id"]), "uid": int(r["uid"]),
               "nickname": r["nickname"], "avatar": r["avatar"]}
    for r in rows(src / "sessions.csv"):
        yield {"kind": "session", "tenant": int(r["uniacid"]), "id": int(r["id"]), "uid": int(r["uid"]),
               "agent_id": int(r["employee_id"] or 0), "created_at": unix(r["created_at"], tz),
               "last_updated_at": unix(r["last_updated_at"], tz)}
    for r in rows(src / "messages.csv"):
        yield {"kind": "message", "tenant": int(r["uniacid"]), "session_id": int(r["session_id"]), "id": int(r["id"]),
               "sender": SENDERS[r["sender_type"]], "sender_id": int(r["sender_id"]), "content": r["content"],
               "content_type": int(r["type"] or 0), "time": unix(r["created_at"], tz), "ip": r.get("ip", "")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv_dir", type=pathlib.Path)
    ap.add_argument("store", type=pathlib.Path)
    ap.add_argument("--tenant", type=int, default=2)
    ap.add_argument("--employee", type=int)
    ap.add_argument("--utc-offset", default="+08:00")
    ap.add_argument("--media-base", default="http://localhost:82")
    args = ap.parse_args(argv)
    sign = -1 if args.utc_offset.startswith("-") else 1
    hours, minutes = args.utc_offset.lstrip("+-").split(":")
    tz = datetime.timezone(sign * datetime.timedelta(hours=int(hours), minutes=int(minutes)))
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as out:
        for rec in records(args.csv_dir, tz):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    try:
        with chatstore.open(args.store, media_base=args.media_base, utc_offset=args.utc_offset) as store:
            summary = store.import_jsonl(out.name)
            print(f"imported {summary['lines']} rows", file=sys.stderr)
            page = store.history_list(args.tenant, employee=args.employee)
            print(json.dumps(page, ensure_ascii=False, indent=2))
    finally:
        os.unlink(out.name)


if __name__ == "__main__":
    main()
