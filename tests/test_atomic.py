import json

import pytest

from spacy_domain_ner.atomic import temp_path_for, write_all_atomically, write_json_atomic


def test_all_or_nothing(tmp_path):
    def boom(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    targets = [(tmp_path / "a.txt", lambda p: p.write_text("a")), (tmp_path / "sub" / "b.txt", boom)]
    with pytest.raises(RuntimeError, match="disk full"):
        write_all_atomically(targets)
    assert not (tmp_path / "a.txt").exists()
    assert list((tmp_path / "sub").iterdir()) == []
    assert not temp_path_for(tmp_path / "a.txt").exists()


def test_writes_and_replaces(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    write_all_atomically([(tmp_path / "a.txt", lambda p: p.write_text("new"))])
    assert (tmp_path / "a.txt").read_text() == "new"


def test_directory_target_is_refused_before_writing(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        write_all_atomically([(tmp_path / "a.txt", lambda p: p.write_text("a")), (tmp_path / "d", lambda p: None)])
    assert not (tmp_path / "a.txt").exists()


@pytest.mark.parametrize("fsync", [False, True])
def test_json(tmp_path, fsync):
    write_json_atomic(tmp_path / "x" / "m.json", {"f": 0.5, "label": "LEGISLATION/ACT"}, fsync=fsync)
    assert json.loads((tmp_path / "x" / "m.json").read_text()) == {"f": 0.5, "label": "LEGISLATION/ACT"}
