"""The package's one JSONL reader, and every module that reads JSONL through it."""
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from conftest import load_benchmark
from spacy_domain_ner.corpus.convert import convert
from spacy_domain_ner.corpus.formats.base import ConversionError
from spacy_domain_ner.corpus.formats.spans import read_jsonl as read_span_records
from spacy_domain_ner.io.jsonl import JsonlError, parse_jsonl, read_jsonl, split_lines
from spacy_domain_ner.knowledge.kb import KnowledgeError, read_kb
from spacy_domain_ner.pretraining.mlm_data import read_raw_docs
from spacy_domain_ner.annotation.records import read_items
from spacy_domain_ner.evaluation.report import load_sentences

# What json.dumps(ensure_ascii=False) writes raw inside a string, and str.splitlines() splits on.
ODD = "page\u2028break\u2029para\x85next\x0cfeed\x1cfile"
TEXT = f"Acme Corp {ODD} Delaware"


def write_odd_jsonl(path: Path, records) -> Path:
    """CRLF line ends, a blank line after the first record, the odd characters written raw."""
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\r\n".join(lines[:1] + [" \t"] + lines[1:]) + "\r\n", encoding="utf8")
    assert "\u2028" in path.read_text(encoding="utf8")  # raw, not escaped
    return path


def test_split_lines_only_on_newline():
    assert list(split_lines(f"a{ODD}\r\n\r\n  \nb\r\nc")) == [(1, f"a{ODD}"), (4, "b"), (5, "c")]


def test_parse_jsonl_locations_and_values():
    text = json.dumps({"text": ODD}, ensure_ascii=False) + "\n\n[1, 2]\n"
    assert list(parse_jsonl(text, source="f.jsonl")) == [(1, "f.jsonl:1", {"text": ODD}), (3, "f.jsonl:3", [1, 2])]
    # raw tabs inside strings are accepted; NaN and Infinity are not JSON
    assert list(parse_jsonl('{"text": "a\tb"}', source="f"))[0].value == {"text": "a\tb"}
    for bad, reason in (('{"x": NaN}', "NaN is not JSON"), ("{oops", "Expecting property name")):
        with pytest.raises(JsonlError, match=f"^f.jsonl:2: not valid JSON \\({reason}"):
            list(parse_jsonl('{"ok": 1}\n' + bad, source="f.jsonl"))


def test_errors_use_the_callers_class(tmp_path):
    with pytest.raises(KnowledgeError, match="missing.jsonl: no such file"):
        list(read_jsonl(tmp_path / "missing.jsonl", error=KnowledgeError))
    (tmp_path / "latin1.jsonl").write_bytes('{"a": 1}\n"caf\u00e9"\n'.encode("latin-1"))
    with pytest.raises(ConversionError, match=r"latin1.jsonl:2: not valid UTF-8 \(byte 0xe9"):
        list(read_jsonl(tmp_path / "latin1.jsonl", error=ConversionError))
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert [line.value for line in read_jsonl(tmp_path / "bom.jsonl")] == [{"a": 1}]


def test_convert_reads_raw_line_separators(tmp_path):
    start = TEXT.index("Delaware")
    path = write_odd_jsonl(tmp_path / "odd.jsonl", [
        {"text": TEXT, "label": [[0, 9, "ORG"], [start, start + 8, "GPE"]]}, {"text": "Beta LLC", "label": [[0, 8, "ORG"]]},
    ])
    records = list(read_span_records(path))
    assert [(r.text, r.location) for r in records] == [(TEXT, f"{path}:1"), ("Beta LLC", f"{path}:3")]
    convert([path], tmp_path / "out.spacy")
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [(e.text, e.label_) for doc in docs for e in doc.ents] == [("Acme Corp", "ORG"), ("Delaware", "GPE"), ("Beta LLC", "ORG")]


def test_pretraining_knowledge_and_report_read_raw_line_separators(tmp_path):
    path = write_odd_jsonl(tmp_path / "texts.jsonl", [{"text": TEXT}, {"text": "second"}])
    assert [(d.text, d.location) for d in read_raw_docs([path])] == [(TEXT, f"{path}:1"), ("second", f"{path}:3")]
    assert load_sentences(path) == [TEXT, "second"]
    kb = write_odd_jsonl(tmp_path / "kb.jsonl", [{"label": "COURT", "text": f"Supreme{ODD}Court"}, {"label": "ORG", "text": "Acme"}])
    assert [(e.label, e.text) for e in read_kb(kb)] == [("COURT", f"Supreme{ODD}Court"), ("ORG", "Acme")]


def test_annotate_reads_raw_line_separators(tmp_path):
    path = write_odd_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": TEXT}, {"id": "b", "text": "second"}])
    items = list(read_items(path, text_key="text", id_key="id"))
    assert [(i.line, i.blank, i.text, i.error) for i in items] == [(1, False, TEXT, None), (2, True, "", None), (3, False, "second", None)]


def test_speed_benchmark_reads_raw_line_separators(tmp_path):
    speed = load_benchmark("speed")
    path = write_odd_jsonl(tmp_path / "texts.jsonl", [{"text": TEXT}, {"text": "second"}])
    assert speed.read_texts(path) == [TEXT, "second"]
