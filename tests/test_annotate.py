import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from itertools import islice

import pytest
import spacy
import torch
from spacy.language import Language
from threadpoolctl import threadpool_info, threadpool_limits
from typer.testing import CliRunner

import spacy_domain_ner.annotation.local_executor as local_executor_module
import spacy_domain_ner.annotation.pipeline as pipeline_module
import spacy_domain_ner.annotation.runner as annotate_module
import spacy_domain_ner.cli.annotate  # noqa: F401  (registers the command)
from spacy_domain_ner.annotation.journal import RunPaths
from spacy_domain_ner.annotation.local_executor import LocalExecutor, threads_per_process
from spacy_domain_ner.annotation.pipeline import annotate_texts, load_pipeline
from spacy_domain_ner.annotation.runner import annotate, run_annotation
from conftest import jsonl_lines, save_ruler_pipeline
from spacy_domain_ner.annotation.records import IdStore, parse_line, read_items, split_text
from spacy_domain_ner.cli import app

PATTERNS = [
    {"label": "ORG", "pattern": "Acme Corp"},
    {"label": "GPE", "pattern": "Delaware"},
    {"label": "ORG", "pattern": "עכמה"},
]
SLOW_CODE = """import time
from spacy.language import Language


@Language.component("test_annotate_slow")
def slow(doc):
    time.sleep(0.002)
    return doc
"""


@Language.component("test_annotate_boom")
def boom(doc):
    if "BOOM" in doc.text:
        raise RuntimeError("boom component refused the text")
    return doc


def save_pipeline(path, *extra):
    return save_ruler_pipeline(path, PATTERNS, *extra)


@pytest.fixture(scope="module")
def ruler(tmp_path_factory):
    return save_pipeline(tmp_path_factory.mktemp("ruler") / "model")


lines = jsonl_lines


def write_jsonl(path, records):
    data = b"".join(r if isinstance(r, bytes) else (json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records)
    path.write_bytes(data)
    return path


BIG_BLOCK = ("lorem " * 300 + "Acme Corp of Delaware.\n\n") * 4 + "x" * 3000 + " "
HOSTILE = [
    {"id": "plain", "text": "Acme Corp is in Delaware.", "meta": {"source": "a.txt"}, "n": 1},
    {"id": "empty", "text": ""},
    {"id": "spaces", "text": "  \n\t  "},
    b"\n",
    b"   \r\n",
    {"id": "ctrl", "text": "a\x00b\x07\x1b Acme Corp \x00"},
    {"id": "crlf", "text": "line one\r\nAcme Corp\r\n\r\nDelaware"},
    {"id": "rtl", "text": "שלום עכמה ו Acme Corp مرحبا"},
    {"id": "emoji", "text": "👩‍👩‍👧 🇺🇸 Acme Corp 😀 Delaware"},
    b"this is not json\n",
    {"id": "notext"},
    {"id": "numtext", "text": 42},
    {"id": "plain", "text": "a duplicate of Acme Corp"},
    [1, 2, 3],
    {"id": True, "text": "boolean id"},
    {"id": 3.5, "text": "float id"},
    b'{"id": "surrogate", "text": "bad \\ud800 half"}\n',
    b'{"id": "pair", "text": "ok \\ud83d\\ude00 Acme Corp"}\n',
    b'{"id": "nan", "text": NaN}\n',
    b'{"id": "utf8", "text": "caf\xe9 Acme Corp"}\n',
    {"text": "no id, Acme Corp"},
    {"id": 7, "text": "integer id Delaware"},
    b'{"id": "tab", "text": "raw\ttab Acme Corp"}',  # last line without a line break
]


def test_split_text_prefers_paragraphs_lines_sentences_spaces():
    text = "aaaa bbbb.\ncccc dddd\n\neeee ffff. gggg"
    for max_chars in (4, 7, 12, 20, 100):
        spans = split_text(text, max_chars=max_chars)
        assert "".join(text[s:e] for s, e in spans) == text
        assert all(e - s <= max_chars for s, e in spans) and spans[0][0] == 0
    assert split_text(text, max_chars=30) == [(0, 22), (22, len(text))]  # after the blank line
    assert split_text("aaaa bbbb.\ncccc dddd", max_chars=15) == [(0, 11), (11, 20)]  # after the line break
    assert split_text("aaaaaa. bb cc dd", max_chars=12) == [(0, 8), (8, 16)]  # after the sentence, not the last space
    assert split_text("aaaaaa bb cc dd", max_chars=12) == [(0, 13 - 3), (10, 15)]
    assert split_text("x" * 10, max_chars=4) == [(0, 4), (4, 8), (8, 10)]  # hard cuts
    assert split_text("", max_chars=5) == [(0, 0)]
    with pytest.raises(ValueError, match="at least 2"):
        split_text("abc", max_chars=1)


@pytest.mark.parametrize(
    "raw,line,expected",
    [
        (b'{"id": "a", "text": "t"}\n', 1, None),
        (b'\xef\xbb\xbf{"id": "a", "text": "t"}\r\n', 1, None),  # BOM on line 1, CRLF
        (b'\xef\xbb\xbf{"id": "a", "text": "t"}\n', 2, "invalid_json"),  # a BOM elsewhere is not JSON
        (b" \t\r\n", 3, "blank"),
        (b"\x00\n", 3, "invalid_json"),
        (b'{"text": "t", "id": Infinity}\n', 1, "invalid_json"),
        (b'"just a string"\n', 1, "not_an_object"),
        (b'{"id": null, "text": "t"}\n', 1, "bad_id"),
        (b'{"id": {"a": 1}, "text": "t"}\n', 1, "bad_id"),
        (b'{"id": "a", "text": null}\n', 1, "text_not_string"),
        (b'{"id": "a", "body": "t"}\n', 1, "missing_text"),
        (b'{"id": "a", "text": "t", "m": "\\uDC00"}\n', 1, "unencodable"),
        (b'{"id": "a", "text": "\\ud83d\\ude00"}\n', 1, None),
        (b'{"id": "a", "text": "\xc3"}\n', 1, "invalid_utf8"),
    ],
)
def test_parse_line_outcomes(raw, line, expected):
    item = parse_line(raw, line=line, position={"line": line, "offset": 9}, text_key="text", id_key="id")
    outcome = "blank" if item.blank else (item.error[0] if item.error else None)
    assert outcome == expected
    assert item.line == line and item.position == {"line": line, "offset": 9}
    if expected is None:
        assert item.record is not None and item.text == item.record["text"] and item.doc_id == "a"
    else:
        assert item.record is None


def test_hostile_input_has_a_defined_outcome_per_record(tmp_path, ruler):
    big = (BIG_BLOCK * (5_000_000 // len(BIG_BLOCK) + 1))[:5_000_000]
    records = HOSTILE[:3] + [{"id": "big", "text": big}] + HOSTILE[3:]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    summary = annotate(source, tmp_path / "out.jsonl", model=ruler, batch_size=4, progress=False)
    out = {r["id"]: r for r in lines(tmp_path / "out.jsonl")}
    assert list(out) == ["plain", "empty", "spaces", "big", "ctrl", "crlf", "rtl", "emoji", "pair", 22, 7, "tab"]
    for record in out.values():  # offsets are str offsets into the text as given
        assert all(record["text"][e["start"] : e["end"]] == e["text"] for e in record["entities"])
    assert out["plain"]["meta"] == {"source": "a.txt"} and out["plain"]["n"] == 1
    assert out["empty"]["entities"] == [] and out["spaces"]["entities"] == []
    expected_big = sorted([m.start() for m in re.finditer("Acme Corp", big)] + [m.start() for m in re.finditer("Delaware", big)])
    assert [e["start"] for e in out["big"]["entities"]] == expected_big  # chunks cut at blank lines lose nothing
    assert [e["start"] for e in out["emoji"]["entities"]] == [out["emoji"]["text"].index("Acme"), out["emoji"]["text"].index("Delaware")]
    assert out["ctrl"]["text"] == "a\x00b\x07\x1b Acme Corp \x00" and out["ctrl"]["entities"][0]["start"] == 6
    assert [e["text"] for e in out["crlf"]["entities"]] == ["Acme Corp", "Delaware"]
    assert [(e["text"], e["label"]) for e in out["rtl"]["entities"]] == [("עכמה", "ORG"), ("Acme Corp", "ORG")]
    assert out[22]["text"] == "no id, Acme Corp"  # no id: the line number
    errors = lines(tmp_path / "out.errors.jsonl")
    assert [(e["line"], e["id"], e["error"]) for e in errors] == [
        (11, None, "invalid_json"), (12, "notext", "missing_text"), (13, "numtext", "text_not_string"),
        (14, "plain", "duplicate_id"), (15, None, "not_an_object"), (16, None, "bad_id"), (17, None, "bad_id"),
        (18, "surrogate", "unencodable"), (20, None, "invalid_json"), (21, None, "invalid_utf8"),
    ]
    assert "already taken by line 1" in errors[3]["reason"] and "0xe9" in errors[9]["reason"]
    assert summary["records"] == 22 == summary["annotated"] + summary["errors"] and summary["reconciled"]
    assert summary["blank_lines"] == 2 and summary["chunked_records"] == 1 and summary["chunks"] > 50
    assert summary["errors_by_reason"]["bad_id"] == 2 and summary["entities"] == sum(len(r["entities"]) for r in out.values())
    assert json.loads((tmp_path / "out.summary.json").read_text()) == summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.errors.jsonl", "out.jsonl", "out.summary.json"]


def test_output_options_keys_and_text(tmp_path, ruler):
    source = write_jsonl(tmp_path / "in.jsonl", [{"doc": "x1", "body": "Acme Corp", "entities": "old"}, {"doc": "x2", "text": "t"}])
    summary = annotate(
        source, tmp_path / "o" / "out.jsonl", model=ruler, text_key="body", id_key="doc", keep_text=False,
        errors_path=tmp_path / "errs.jsonl", summary_path=tmp_path / "sum.json", progress=False,
    )
    assert lines(tmp_path / "o" / "out.jsonl") == [{"doc": "x1", "entities": [{"start": 0, "end": 9, "label": "ORG", "text": "Acme Corp"}]}]
    assert lines(tmp_path / "errs.jsonl")[0]["error"] == "missing_text"
    assert json.loads((tmp_path / "sum.json").read_text())["errors_file"] == str(tmp_path / "errs.jsonl") == summary["errors_file"]


def make_folder(root):
    (root / "b").mkdir(parents=True)
    (root / "a" / "deep").mkdir(parents=True)
    (root / "z.txt").write_text("Acme Corp in Delaware.", encoding="utf-8")
    (root / "m.TXT").write_bytes("\ufeffDelaware first".encode("utf-8"))
    (root / "notes.md").write_text("Acme Corp", encoding="utf-8")
    (root / "a" / "one.txt").write_bytes(b"ok\nbad \xff byte")
    (root / "a" / "deep" / "two.txt").write_text("", encoding="utf-8")
    (root / "b" / "three.txt").write_text("Acme Corp\r\n", encoding="utf-8")
    return root


def test_folder_input_ids_order_and_errors(tmp_path, ruler):
    folder = make_folder(tmp_path / "docs")
    summary = annotate(folder, tmp_path / "out.jsonl", model=ruler, batch_size=2, progress=False)
    out = lines(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["m.TXT", "z.txt", "a/deep/two.txt", "b/three.txt"]
    assert out[0]["text"] == "Delaware first" and out[0]["entities"][0]["start"] == 0  # BOM dropped
    assert lines(tmp_path / "out.errors.jsonl") == [
        {"line": 3, "id": "a/one.txt", "error": "invalid_utf8", "reason": "not valid UTF-8: byte 0xff at line 2"}
    ]
    assert (summary["records"], summary["annotated"], summary["errors"]) == (5, 4, 1)
    items = list(read_items(folder, text_key="text", id_key="id", position={"line": 3, "offset": 0}))
    assert [i.doc_id for i in items] == ["a/deep/two.txt", "b/three.txt"] and [i.line for i in items] == [4, 5]


def test_annotation_failure_only_fails_its_record(tmp_path):
    model = save_pipeline(tmp_path / "boom", "test_annotate_boom")
    nlp = spacy.load(model)
    results = annotate_texts(nlp, ["Acme Corp", "BOOM", "Delaware"], batch_size=8)
    assert results[0] == ([(0, 9, "ORG", None, "")], 2, None) and results[2] == ([(0, 8, "GPE", None, "")], 1, None)
    assert results[1][0] is None and "boom component refused" in results[1][2]
    long_text = "Acme Corp. " * 10 + "BOOM"
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "Acme Corp"}, {"id": 2, "text": long_text}, {"id": 3, "text": "fine"}])
    summary = annotate(source, tmp_path / "out.jsonl", model=model, max_chars=20, progress=False)
    assert [r["id"] for r in lines(tmp_path / "out.jsonl")] == [1, 3]
    assert [(e["id"], e["error"]) for e in lines(tmp_path / "out.errors.jsonl")] == [(2, "annotation_failed")]
    assert summary["errors_by_reason"] == {"annotation_failed": 1} and summary["reconciled"]


def test_id_store_claims_and_rolls_back(tmp_path):
    ids = IdStore(tmp_path / "ids.sqlite")
    assert ids.claim("a", 1) is None and ids.claim(1, 2) is None and ids.claim("1", 3) is None
    assert ids.claim("a", 4) == 1
    ids.commit()
    assert ids.claim("b", 9) is None
    ids.rollback_after(3)
    assert ids.claim("b", 10) is None and ids.claim("a", 11) == 1
    ids.close()


class FlakyExecutor:
    """Reads `lookahead` jobs ahead (like a process pool) and dies after `fail_after` batches."""

    def __init__(self, inner, *, fail_after, lookahead=3):
        self.inner, self.fail_after, self.lookahead = inner, fail_after, lookahead

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        self.inner.__exit__(*exc)

    def map(self, jobs):
        jobs = iter(jobs)
        window = deque(islice(jobs, self.lookahead))
        number = 0
        while window:
            job = window.popleft()
            window.extend(islice(jobs, 1))  # ids of the jobs read ahead are claimed but not committed
            if number == self.fail_after:
                raise KeyboardInterrupt("killed")
            yield from self.inner.map([job])
            number += 1


def dup_heavy_records(n):
    records = []
    for i in range(n):
        records.append({"id": f"r{i % (n // 2)}", "text": f"Acme Corp number {i}" if i % 5 else "Delaware"})
        if i % 17 == 0:
            records.append(b"{broken\n")
    return records


def run_files(path):
    return path.read_bytes(), RunPaths.for_output(path).errors.read_bytes()


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, ruler):
    source = write_jsonl(tmp_path / "in.jsonl", dup_heavy_records(120))
    reference = annotate(source, tmp_path / "ref.jsonl", model=ruler, batch_size=7, progress=False)
    out = tmp_path / "out.jsonl"
    paths = RunPaths.for_output(out)
    flaky = FlakyExecutor(LocalExecutor(model=ruler, batch_size=5), fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_annotation(source, out, executor=flaky, model=ruler, batch_size=5, progress=False)
    state = json.loads(paths.checkpoint.read_text())
    assert state["counts"]["records"] >= 20 and not out.exists() and paths.ids.exists()
    with paths.partial.open("ab") as file:  # what a killed run wrote after its last commit
        file.write(b'{"id": "torn')
    with paths.errors_partial.open("ab") as file:
        file.write(b"garbage\n")
    with pytest.raises(ValueError, match="--resume"):
        annotate(source, out, model=ruler, progress=False)
    with pytest.raises(ValueError, match="differ: max_chars"):
        annotate(source, out, model=ruler, max_chars=500, resume=True, progress=False)
    summary = annotate(source, out, model=ruler, batch_size=11, resume=True, progress=False)
    assert run_files(out) == run_files(tmp_path / "ref.jsonl")
    assert summary["resumed"] and summary["run_records"] == summary["records"] - state["counts"]["records"]
    ignore = ("output", "errors_file", "fingerprint", "seconds", "load_seconds", "docs_per_second", "words_per_second", "resumed", "run_records", "run_words")
    assert {k: v for k, v in summary.items() if k not in ignore} == {k: v for k, v in reference.items() if k not in ignore}
    assert not paths.checkpoint.exists() and not paths.partial.exists() and not paths.ids.exists()

    class Unused:
        def __enter__(self):
            raise AssertionError("a complete run must not load the pipeline")

    assert run_annotation(source, out, executor=Unused(), model=ruler, resume=True, progress=False) == summary
    with pytest.raises(ValueError, match="exists: pass --overwrite"):
        annotate(source, out, model=ruler, progress=False)
    with pytest.raises(ValueError, match="exists: pass --overwrite"):  # complete, but with other settings
        annotate(source, out, model=ruler, keep_text=False, resume=True, progress=False)
    rerun = annotate(source, out, model=ruler, keep_text=False, resume=True, overwrite=True, progress=False)
    assert not rerun["resumed"] and rerun["run_records"] == rerun["records"] and "text" not in lines(out)[0]


def test_resume_finishes_a_run_killed_while_renaming(tmp_path, ruler, monkeypatch):
    source = write_jsonl(tmp_path / "in.jsonl", dup_heavy_records(30))
    annotate(source, tmp_path / "ref.jsonl", model=ruler, progress=False)
    out = tmp_path / "out.jsonl"
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith("errors.jsonl.partial"):
            raise KeyboardInterrupt("killed")
        real_replace(src, dst)

    monkeypatch.setattr(annotate_module.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        annotate(source, out, model=ruler, batch_size=4, progress=False)
    monkeypatch.setattr(annotate_module.os, "replace", real_replace)
    assert out.exists() and RunPaths.for_output(out).errors_partial.exists()
    assert json.loads(RunPaths.for_output(out).checkpoint.read_text())["done"]
    summary = annotate(source, out, model=ruler, resume=True, progress=False)
    assert run_files(out) == run_files(tmp_path / "ref.jsonl") and summary["resumed"] and summary["run_records"] == 0


def test_resume_refuses_a_damaged_or_changed_run(tmp_path, ruler):
    source = write_jsonl(tmp_path / "in.jsonl", dup_heavy_records(40))
    out = tmp_path / "out.jsonl"
    paths = RunPaths.for_output(out)
    with pytest.raises(KeyboardInterrupt):
        run_annotation(source, out, executor=FlakyExecutor(LocalExecutor(model=ruler, batch_size=4), fail_after=3), model=ruler, batch_size=4, progress=False)
    committed = json.loads(paths.checkpoint.read_text())["output_bytes"]
    with paths.partial.open("r+b") as file:
        file.truncate(committed - 1)
    with pytest.raises(ValueError, match="fewer than the .* committed"):
        annotate(source, out, model=ruler, resume=True, progress=False)
    source.write_bytes(source.read_bytes()[:50])
    with pytest.raises(ValueError, match="differ: input"):
        annotate(source, out, model=ruler, resume=True, progress=False)
    summary = annotate(source, out, model=ruler, overwrite=True, progress=False)  # start over
    assert summary["records"] >= 1 and not summary["resumed"] and not paths.checkpoint.exists()


def test_resume_continues_a_folder_run(tmp_path, ruler):
    folder = make_folder(tmp_path / "docs")
    annotate(folder, tmp_path / "ref.jsonl", model=ruler, progress=False)
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_annotation(folder, out, executor=FlakyExecutor(LocalExecutor(model=ruler, batch_size=1), fail_after=2, lookahead=1), model=ruler, batch_size=1, progress=False)
    summary = annotate(folder, out, model=ruler, batch_size=3, resume=True, progress=False)
    assert run_files(out) == run_files(tmp_path / "ref.jsonl") and summary["run_records"] == 3


def test_argument_checks_and_safe_loading(tmp_path, ruler, monkeypatch):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "x"}])
    out = tmp_path / "out.jsonl"
    for kwargs, message in (
        ({"engine": "spark"}, "unknown engine"), ({"engine": "ray", "n_process": 2}, "ray engine uses"),
        ({"engine": "ray", "threads": 1}, "ray engine uses"), ({"threads": 0}, "threads must be at least 1"),
        ({"batch_size": 0}, "must be positive"), ({"max_chars": 1}, "at least 2"),
    ):
        with pytest.raises(ValueError, match=message):
            annotate(source, out, model=ruler, progress=False, **kwargs)
    with pytest.raises(ValueError, match="no such file or folder"):
        annotate(tmp_path / "missing.jsonl", out, model=ruler, progress=False)
    with pytest.raises(ValueError, match="exceeds the pipeline's max_length"):
        annotate(source, out, model=ruler, max_chars=2_000_000, progress=False)
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(model=ruler, n_process=0)
    with pytest.raises(ValueError, match="n_process=1 with gpu_id"):
        LocalExecutor(model=ruler, n_process=2, gpu_id=0)
    with pytest.raises(ValueError, match="no such code file"):
        load_pipeline(ruler, code_paths=[tmp_path / "nope.py"])
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(ValueError, match="unrestricted pickle"):
        load_pipeline(ruler)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    calls = []
    monkeypatch.setattr(pipeline_module.spacy, "require_gpu", lambda gpu_id: calls.append(gpu_id))
    summary = annotate(source, out, model=ruler, gpu_id=0, progress=False)  # GPU path, faked
    assert calls == [0] and summary["annotated"] == 1


def test_threads_are_shared_out_among_the_processes(ruler, monkeypatch):
    monkeypatch.setattr(local_executor_module, "available_cpus", lambda: 8)
    assert [threads_per_process(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    assert threads_per_process(4, 3) == 3
    assert LocalExecutor(model=ruler).threads is None  # one process: torch's own default
    assert LocalExecutor(model=ruler, n_process=2).threads == 4
    before = torch.get_num_threads()
    blas = threadpool_limits(limits=None, user_api="blas")  # the BLAS threads now, restored below

    def blas_threads():
        return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    try:
        with LocalExecutor(model=ruler, threads=1):
            assert torch.get_num_threads() == 1 and blas_threads() == {1}
        torch.set_num_threads(before)
        blas.restore_original_limits()
        local_executor_module._init_worker(ruler, [], 5000, 1)  # what a pool process runs first
        assert torch.get_num_threads() == 1 and blas_threads() == {1} and "nlp" in local_executor_module._WORKER
    finally:
        torch.set_num_threads(before)
        blas.restore_original_limits()
        local_executor_module._WORKER.clear()


def test_custom_code_is_imported_before_loading(tmp_path):
    code = tmp_path / "slow_code.py"
    code.write_text(SLOW_CODE)
    spacy.util.import_file("slow_code_for_test", code)
    model = save_pipeline(tmp_path / "slow", "test_annotate_slow")
    assert load_pipeline(model, code_paths=[code]).pipe_names == ["entity_ruler", "test_annotate_slow"]


def test_cli_prints_and_writes_counts(tmp_path, ruler):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "Acme Corp"}, b"nope\n", {"id": 1, "text": "dup"}])
    result = CliRunner().invoke(app, ["annotate", ruler, str(source), str(tmp_path / "out.jsonl"), "--no-progress", "-b", "2"])
    assert result.exit_code == 0, result.output
    assert "3 records = 1 annotated + 2 errors (duplicate_id 1, invalid_json 1)" in result.output
    assert json.loads((tmp_path / "out.summary.json").read_text())["reconciled"]
    result = CliRunner().invoke(app, ["annotate", ruler, str(source), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1 and "--overwrite" in result.output
    result = CliRunner().invoke(app, ["annotate", ruler, str(source), str(tmp_path / "x.jsonl"), "--engine", "dask"])
    assert result.exit_code == 1 and "unknown engine" in result.output


@pytest.mark.slow
def test_process_pool_equals_one_process(tmp_path, ruler):
    records = dup_heavy_records(200) + [{"id": "long", "text": BIG_BLOCK * 30}]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    one = annotate(source, tmp_path / "one.jsonl", model=ruler, batch_size=9, max_chars=5000, progress=False)
    two = annotate(source, tmp_path / "two.jsonl", model=ruler, n_process=2, batch_size=9, max_chars=5000, progress=False)
    assert run_files(tmp_path / "one.jsonl") == run_files(tmp_path / "two.jsonl")
    assert (two["records"], two["words"], two["entities"]) == (one["records"], one["words"], one["entities"])
    with pytest.raises(OSError):  # a worker's load error reaches the driver
        annotate(source, tmp_path / "bad.jsonl", model=str(tmp_path / "no_model"), n_process=2, progress=False)


@pytest.mark.slow
def test_cli_killed_mid_run_resumes_to_identical_output(tmp_path):
    code = tmp_path / "slow_code.py"
    code.write_text(SLOW_CODE)
    spacy.util.import_file("slow_code_for_kill", code)
    model = save_pipeline(tmp_path / "slow", "test_annotate_slow")
    source = write_jsonl(tmp_path / "in.jsonl", dup_heavy_records(3000))
    reference = annotate(source, tmp_path / "ref.jsonl", model=model, code_paths=[code], batch_size=10, progress=False)
    out = tmp_path / "out.jsonl"
    paths = RunPaths.for_output(out)
    launcher = "import spacy_domain_ner.cli.annotate; from spacy_domain_ner.cli import app; app()"
    command = [sys.executable, "-c", launcher, "annotate", model, str(source), str(out), "--code", str(code), "-b", "10", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, committed = time.time() + 240, 0
    while time.time() < deadline and process.poll() is None:
        if paths.checkpoint.exists():
            committed = json.loads(paths.checkpoint.read_text())["counts"]["records"]
            if committed >= 300:
                break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 300 <= committed < reference["records"] and not out.exists() and paths.partial.exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert run_files(out) == run_files(tmp_path / "ref.jsonl")
    summary = json.loads(paths.summary.read_text())
    assert summary["resumed"] and summary["records"] == reference["records"] == summary["annotated"] + summary["errors"]
    assert summary["records"] == len(lines(out)) + len(lines(paths.errors)) and summary["errors_by_reason"] == reference["errors_by_reason"]
    assert f"{summary['records']} records = {summary['annotated']} annotated + {summary['errors']} errors" in resumed.stdout
