import pathlib

import pytest

import chatstore

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT / "crates" / "chatstore" / "data"
SEEDS = DATA / "seeds.jsonl"
HASH = "5f4dcc3b5aa765d61d8327deb882cf99"


@pytest.fixture
def store(tmp_path):
    s = chatstore.open(tmp_path / "db", media_base="http://localhost:82")
    s.import_jsonl(SEEDS)
    yield s
    s.close()
