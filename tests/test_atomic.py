import json

import pytest

from spacy_domain_ner.io.atomic import replace_directory, temp_path_for, write_all_atomically, write_json_atomic


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


def test_replace_directory_creates_parents_and_swaps(tmp_path):
    target = tmp_path / "training" / "fusion" / "model-best"

    def write(path):
        path.mkdir()
        (path / "config.cfg").write_text("new")

    replace_directory(target, write)
    assert (target / "config.cfg").read_text() == "new"
    (target / "stale.txt").write_text("from the old run")
    replace_directory(target, write)
    assert sorted(p.name for p in target.iterdir()) == ["config.cfg"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["model-best"]


def test_replace_directory_failure_keeps_the_old_one(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def broken(path):
        path.mkdir()
        (path / "half.txt").write_text("half")
        raise RuntimeError("failed")

    with pytest.raises(RuntimeError):
        replace_directory(target, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "old.txt").read_text() == "old"


def fail_on_calls(numbers, real):
    """Wrap `real` (os.replace, os.link) to raise on the calls whose 1-based numbers are in `numbers`."""
    calls = []

    def fake(src, dst):
        calls.append((src, dst))
        if len(calls) in numbers:
            raise OSError("rename failed")
        real(src, dst)

    return fake


@pytest.mark.parametrize("existed", [True, False])
@pytest.mark.parametrize("no_links", [False, True])
def test_failure_during_the_rename_phase_leaves_all_old(tmp_path, monkeypatch, existed, no_links):
    import os

    names = ["train.spacy", "train.stats.json", "sub/dev.spacy"]
    if existed:
        for name in names:
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_text(f"old {name}")
    if no_links:  # a file system without hard links: the previous versions are copied aside
        monkeypatch.setattr(os, "link", fail_on_calls(range(1, 100), os.link))
    monkeypatch.setattr(os, "replace", fail_on_calls({2}, os.replace))  # the second rename; undoing works
    with pytest.raises(OSError, match="rename failed"):
        write_all_atomically([(tmp_path / name, lambda p, name=name: p.write_text(f"new {name}")) for name in names])
    for name in names:
        path = tmp_path / name
        assert (path.read_text() == f"old {name}") if existed else not path.exists(), name
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith("."))
    assert leftovers == []


def test_all_new_after_the_rename_phase(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("old")
    write_all_atomically([(tmp_path / name, lambda p: p.write_text("new")) for name in ("a.txt", "b.txt")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert [(tmp_path / name).read_text() for name in ("a.txt", "b.txt")] == ["new", "new"]
