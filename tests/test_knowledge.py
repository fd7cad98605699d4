import json
import re
import time

import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

import spacy_domain_ner.cli.knowledge  # noqa: F401  (registers mine-kb and add-knowledge)
from spacy_domain_ner.cli import app
from spacy_domain_ner.knowledge.kb import KnowledgeEntry, KnowledgeError, parse_entry, read_kb, write_kb
from spacy_domain_ner.corpus.labels import LabelMap
from spacy_domain_ner.knowledge.mining import merge_kb, mine_kb, relabel_curated
from spacy_domain_ner.knowledge.regex_guard import guard_pattern, guard_regex, validate_regex


def write_lines(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf8")
    return path


@pytest.fixture
def nlp():
    return spacy.blank("en")


# --- format ---------------------------------------------------------------------------

def test_parse_entry_text_and_pattern():
    entry = parse_entry(
        {"label": "GOVERNMENT", "text": "Securities and Exchange Commission", "id": "sec", "case_sensitive": False,
         "aliases": ["U.S. Securities and Exchange Commission", {"text": "SEC", "case_sensitive": True}]},
        location="kb.jsonl:1",
    )
    assert entry.phrases(default_case_sensitive=True) == [
        ("Securities and Exchange Commission", False), ("U.S. Securities and Exchange Commission", False), ("SEC", True),
    ]
    pattern = parse_entry({"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^CFR$"}}]}, location="kb.jsonl:2")
    assert pattern.text is None and pattern.phrases(default_case_sensitive=False) == []
    assert pattern.to_dict() == {"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^CFR$"}}]}
    # An entry without its own flag takes the default.
    plain = parse_entry({"label": "X", "text": "a"}, location="x")
    assert plain.phrases(default_case_sensitive=False) == [("a", False)]


@pytest.mark.parametrize(
    "data, message",
    [
        ([1], "JSON object"),
        ({"text": "x"}, "'label'"),
        ({"label": "X"}, "exactly one of"),
        ({"label": "X", "text": "x", "pattern": [{"ORTH": "x"}]}, "exactly one of"),
        ({"label": "X", "text": "  "}, "non-empty string"),
        ({"label": "X", "text": "x", "lable": "Y"}, "unknown keys ['lable']"),
        ({"label": "X", "pattern": []}, "non-empty list"),
        ({"label": "X", "pattern": [{"NOT_AN_ATTR": "x"}]}, "invalid token pattern"),
        ({"label": "X", "text": "x", "aliases": "y"}, "'aliases' must be a list"),
        ({"label": "X", "text": "x", "aliases": [{"text": "y", "cased": True}]}, "bad alias"),
        ({"label": "X", "text": "x", "case_sensitive": "yes"}, "'case_sensitive'"),
        ({"label": "X", "text": "x", "precision": 1.5}, "'precision'"),
        ({"label": "X", "text": "x", "id": 3}, "'id' must be a string"),
        ({"label": "X", "text": "x", "meta": []}, "'meta' must be an object"),
        ({"label": "X", "pattern": [{"TEXT": {"REGEX": "(a+)+$"}}]}, "nests quantifiers"),
    ],
)
def test_parse_entry_errors(data, message):
    with pytest.raises(KnowledgeError) as err:
        parse_entry(data, location="kb.jsonl:7")
    assert str(err.value).startswith("kb.jsonl:7: ") and message in str(err.value)


# --- regex guards ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "regex, reason",
    [
        ("(a+)+b", "nests quantifiers"),
        ("(a*)*b", "nests quantifiers"),
        ("(\\d+\\.)*x", "nests quantifiers"),
        ("(?:a{1,3}){2,}", "nests quantifiers"),
        ("(a|ab)*c", "alternation"),
        ("(a)\\1", "backreference"),
        ("a+b+c+d+", "unbounded quantifiers"),
        ("(unclosed", "does not compile"),
        ("a" * 301, "characters long"),
    ],
)
def test_pathological_regex_rejected(regex, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        validate_regex(regex)


# Safe regexes, with token texts they match and texts they do not (all at most 12 characters).
SAFE_REGEXES = {
    "^\\d{0,3}CFR$": (["17CFR", "CFR"], ["CFR17", "17 CFR", "1234CFR"]),
    "[ab]*c": (["abac", "c", "xxc"], ["abab", ""]),
    "\\d{1,3}(?:\\.\\d{1,4}){0,3}": (["1.22.333", "x7"], ["x", "."]),
    "(?i)^u\\.s\\.c\\.?$": (["U.S.C.", "u.s.c"], ["USC", "U.S.C.A."]),
    "(x{2,5}){2}": (["xxxx", "axxxxxxxxxx"], ["xxx", "x x x x"]),
}


@pytest.mark.parametrize("regex", sorted(SAFE_REGEXES))
def test_safe_regex_accepted(regex):
    matching, other = SAFE_REGEXES[regex]
    # accepted (guard_pattern validates) and guarded, it matches the texts the regex matches (leading flags kept), and no other
    guarded = guard_pattern([{"TEXT": {"REGEX": regex}}], max_chars=12)[0]["TEXT"]["REGEX"]
    assert guarded != regex and guarded.startswith("(?i)\\A" if regex.startswith("(?i)") else "\\A")
    for text in matching:
        assert re.search(regex, text) and re.search(guarded, text), text
    for text in other:
        assert not re.search(regex, text) and not re.search(guarded, text), text


def test_guard_regex_caps_text_length_and_keeps_semantics():
    guarded = re.compile(guard_regex("(?i)cfr$", max_chars=10))
    assert guarded.search("17CFR") and guarded.search("cfr")
    assert not guarded.search("x" * 8 + "CFR")  # 11 characters: over the cap
    assert not guarded.search("CFR17")
    # The worst polynomial case allowed stays fast because the text is capped.
    slow = re.compile(guard_regex("\\d+\\d+\\d+x", max_chars=100))
    start = time.perf_counter()
    assert not slow.search("1" * 100000)
    assert time.perf_counter() - start < 1.0


def test_guard_pattern_walks_nested_dicts():
    pattern = [{"LOWER": "rule"}, {"TEXT": {"REGEX": "^\\d+$"}, "OP": "?"}, {"_": {"flag": {"REGEX": "x"}}}]
    guarded = guard_pattern(pattern, max_chars=5)
    assert guarded[0] == {"LOWER": "rule"}
    assert guarded[1]["TEXT"]["REGEX"].startswith("\\A(?=[\\s\\S]{0,5}\\Z)") and guarded[1]["OP"] == "?"
    assert "{0,5}" in guarded[2]["_"]["flag"]["REGEX"]
    assert guard_pattern(pattern, max_chars=None) == pattern
    with pytest.raises(ValueError, match="nests"):
        guard_pattern([{"TEXT": {"REGEX": "(a+)+"}}], max_chars=None)


# --- reading and writing ----------------------------------------------------------------

def test_read_kb_reports_file_and_line_of_a_malformed_line(tmp_path):
    path = write_lines(tmp_path / "kb.jsonl", [{"label": "X", "text": "a"}, "", '{"label": "X", "text": "b"'])
    with pytest.raises(KnowledgeError) as err:
        read_kb(path)
    assert str(err.value).startswith(f"{path}:3: not valid JSON")
    path = write_lines(tmp_path / "kb2.jsonl", [{"label": "X", "text": "a"}, {"label": "X", "txt": "b"}])
    with pytest.raises(KnowledgeError, match=re.escape(f"{path}:2: unknown keys ['txt']")):
        read_kb(path)
    with pytest.raises(KnowledgeError, match="no such file"):
        read_kb(tmp_path / "missing.jsonl")


def test_read_kb_conflicting_labels_name_both_lines(tmp_path):
    path = write_lines(tmp_path / "kb.jsonl", [{"label": "X", "text": "Acme"}, {"label": "Y", "text": "B", "aliases": ["Acme"]}])
    with pytest.raises(KnowledgeError) as err:
        read_kb(path)
    assert str(err.value) == f"{path}:2: 'Acme' is labelled Y here but X at {path}:1"


def test_read_kb_groups_and_blank_lines(tmp_path):
    path = write_lines(
        tmp_path / "kb.jsonl",
        [{"label": "X", "text": "a"}, "", {"label": "X", "text": "b", "group": "citation"}, {"label": "X", "text": "c", "group": "g"}],
    )
    assert [e.text for e in read_kb(path)] == ["a", "c"]
    assert [e.text for e in read_kb(path, exclude_groups=())] == ["a", "b", "c"]
    assert [e.text for e in read_kb(path, exclude_groups=("g", "citation"))] == ["a"]
    assert read_kb(path)[1].source == f"{path}:4"


def test_write_kb_round_trip(tmp_path):
    entries = [
        KnowledgeEntry(label="X", text="a", id="a", aliases=[{"text": "A", "case_sensitive": True}], precision=0.5, meta={"n": 1}),
        KnowledgeEntry(label="Y", pattern=[{"LOWER": "b"}], group="g"),
    ]
    path = tmp_path / "out" / "kb.jsonl"
    write_kb(entries, path)
    back = read_kb(path, exclude_groups=())
    assert [e.to_dict() for e in back] == [e.to_dict() for e in entries]
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


# --- mining -------------------------------------------------------------------------------

def make_doc(nlp, words, ents):
    doc = Doc(nlp.vocab, words=words)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


@pytest.fixture
def corpus(nlp):
    docs = []
    for _ in range(3):
        docs.append(make_doc(nlp, ["Acme", "Corp", "sued", "Zed", "in", "Delaware", "."], [(0, 2, "BUSINESS"), (3, 4, "PERSON"), (5, 6, "LOCATION")]))
    docs.append(make_doc(nlp, ["Delaware", "Trust", "and", "Zed"], [(0, 2, "BUSINESS")]))  # Delaware inside a longer entity; Zed as O
    docs.append(make_doc(nlp, ["Mixed", "met", "Mixed", "and", "Mixed", "and", "1933"], [(0, 1, "PERSON"), (2, 3, "BUSINESS"), (4, 5, "PERSON"), (6, 7, "MISCELLANEOUS")]))
    docs.append(make_doc(nlp, ["1933", "1933", "Acme", "Corp"], [(0, 1, "MISCELLANEOUS"), (1, 2, "MISCELLANEOUS"), (2, 4, "BUSINESS")]))
    return docs


def test_mine_kb_thresholds(corpus):
    entries, report = mine_kb(corpus, min_count=3, min_purity=0.9, o_weight=1.0)
    by_text = {e.text: e for e in entries}
    assert set(by_text) == {"Acme Corp", "Delaware"}
    assert by_text["Acme Corp"].label == "BUSINESS" and by_text["Acme Corp"].meta["count"] == 4
    assert entries[0].text == "Acme Corp"  # most frequent first
    assert by_text["Delaware"].meta["partial"] == 1 and by_text["Delaware"].meta["o_count"] == 0
    assert by_text["Delaware"].case_sensitive is True and by_text["Delaware"].precision == 1.0
    # Zed by purity; Mixed (2 PERSON) and Delaware Trust (1) by count; 1933 has no letter.
    assert report["rejected"] == {"min_purity": 1, "min_count": 2, "no_letter": 1}
    assert report["candidates"] == 6 and report["kept"] == 2 and report["kept_per_label"] == {"BUSINESS": 1, "LOCATION": 1}
    # O occurrences can be made not to count: Zed becomes pure.
    entries, _ = mine_kb(corpus, min_count=3, min_purity=0.9, o_weight=0.0)
    zed = [e for e in entries if e.text == "Zed"][0]
    assert zed.label == "PERSON" and zed.meta["purity"] == 1.0 and zed.precision == 0.75
    # min_count: everything seen once is dropped at 2, kept at 1.
    texts_1 = {e.text for e in mine_kb(corpus, min_count=1, min_purity=0.0)[0]}
    texts_2 = {e.text for e in mine_kb(corpus, min_count=2, min_purity=0.0)[0]}
    assert "Delaware Trust" in texts_1 and "Delaware Trust" not in texts_2
    # min_purity: Mixed (2/3) is kept at 0.6 and not at 0.7.
    assert "Mixed" in {e.text for e in mine_kb(corpus, min_count=2, min_purity=0.6)[0]}
    assert "Mixed" not in {e.text for e in mine_kb(corpus, min_count=2, min_purity=0.7)[0]}


def test_mine_kb_rejects_bad_settings_and_handles_no_docs(corpus):
    for kwargs in ({"min_count": 0}, {"min_purity": 1.5}, {"o_weight": -1.0}):
        with pytest.raises(ValueError):
            mine_kb(corpus, **kwargs)
    assert mine_kb([], min_count=1)[0] == []


# --- merging ------------------------------------------------------------------------------

def test_merge_kb_curated_wins_and_reports_conflicts(nlp):
    curated = [
        parse_entry({"label": "GOVERNMENT", "text": "Securities and Exchange Commission", "case_sensitive": False}, location="c:1"),
        parse_entry({"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^\\d{0,3}CFR$"}}]}, location="c:2"),
        parse_entry({"label": "BUSINESS", "text": "Acme"}, location="c:3"),
    ]
    mined = [
        KnowledgeEntry(label="BUSINESS", text="SECURITIES AND EXCHANGE COMMISSION", case_sensitive=True, source="mined"),
        KnowledgeEntry(label="MISCELLANEOUS", text="17CFR", case_sensitive=True, source="mined"),
        KnowledgeEntry(label="BUSINESS", text="Acme", case_sensitive=True, source="mined"),
        KnowledgeEntry(label="BUSINESS", text="acme", case_sensitive=True, source="mined"),  # curated "Acme" is case-sensitive
        KnowledgeEntry(label="PERSON", text="Jane Roe", case_sensitive=True, source="mined"),
    ]
    merged, report = merge_kb(curated, mined, nlp=nlp)
    assert [e.text for e in merged] == [curated[0].text, None, "Acme", "acme", "Jane Roe"]
    assert report["duplicates"] == 1
    assert [(c["text"], c["mined_label"], c["curated_label"], c["curated_source"]) for c in report["conflicts"]] == [
        ("SECURITIES AND EXCHANGE COMMISSION", "BUSINESS", "GOVERNMENT", "c:1"),
        ("17CFR", "MISCELLANEOUS", "LEGISLATION/ACT", "c:2"),
    ]
    # A mined string only partly covered by a curated entry is kept.
    merged, report = merge_kb(curated, [KnowledgeEntry(label="BUSINESS", text="Acme Corp")], nlp=nlp)
    assert merged[-1].text == "Acme Corp" and report["conflicts"] == []


def test_relabel_curated_maps_labels_and_keeps_only_the_corpus_labels():
    curated = [KnowledgeEntry(label="BUSINESS", text="Acme", source="c:1"), KnowledgeEntry(label="COURT", text="Court", source="c:2"),
               KnowledgeEntry(label="PERSON", text="Roe", source="c:3"), KnowledgeEntry(label="LOCATION", text="Ohio", source="c:4")]
    label_map = LabelMap(labels={"BUSINESS": "ORG", "COURT": "ORG", "LOCATION": "LOC", "PERSON": None})
    kept, report = relabel_curated(curated, label_map=label_map, labels={"ORG", "PARTY"})
    assert [(e.text, e.label) for e in kept] == [("Acme", "ORG"), ("Court", "ORG")]
    assert curated[0].label == "BUSINESS"  # the curated entries are not changed in place
    assert report == {"entries": 4, "kept": 2, "dropped_by_map": {"PERSON": 1}, "not_in_corpus": {"LOC": 1}}
    # the default of the workflow drops the whole curated KB; 'error' names the entry's line
    assert relabel_curated(curated, label_map=LabelMap(unmapped="drop"), labels={"ORG"})[0] == []
    with pytest.raises(ValueError, match="c:1: label 'BUSINESS' is not in the label map"):
        relabel_curated(curated, label_map=LabelMap(unmapped="error"), labels={"ORG"})


# --- CLI ----------------------------------------------------------------------------------

def test_mine_kb_cli(tmp_path, nlp, corpus):
    docbin = tmp_path / "train.spacy"
    DocBin(docs=corpus).to_disk(docbin)
    curated = write_lines(tmp_path / "curated.jsonl", [{"label": "LOCATION", "text": "Acme Corp"}])
    out, report = tmp_path / "kb.jsonl", tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["mine-kb", str(docbin), "-o", str(out), "--curated", str(curated), "--report", str(report), "--min-count", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "1 conflicts" in result.output and "'Acme Corp' mined as BUSINESS, curated LOCATION" in result.output
    assert "1 curated from" in result.output and "(labels as they are)" in result.output
    assert [(e.text, e.label) for e in read_kb(out)] == [("Acme Corp", "LOCATION"), ("Delaware", "LOCATION")]
    data = srsly.read_json(report)
    assert data["mined"]["kept"] == 2 and len(data["merge"]["conflicts"]) == 1
    # Without a curated KB: the mined entries only.
    result = CliRunner().invoke(app, ["mine-kb", str(docbin), "-o", str(out), "--min-count", "3"])
    assert result.exit_code == 0 and [e.label for e in read_kb(out)] == ["BUSINESS", "LOCATION"]
    assert "2 entries mined from" in result.output and "no curated KB" in result.output


def test_mine_kb_cli_uses_a_curated_kb_only_through_its_label_map(tmp_path, corpus):
    """A corpus whose labels are not the curated KB's: the KB's entries reach it through the map, or not at all."""
    renamed = LabelMap(labels={"BUSINESS": "PARTY", "LOCATION": "PLACE", "PERSON": "PLACE", "MISCELLANEOUS": None})
    docs = []
    for doc in corpus:
        doc.ents = renamed.map_spans(doc.ents, context=str)[0]
        docs.append(doc)
    docbin = tmp_path / "train.spacy"
    DocBin(docs=docs).to_disk(docbin)
    curated = write_lines(tmp_path / "curated.jsonl", [{"label": "BUSINESS", "text": "Zenith Holdings"},
                                                       {"label": "COURT", "text": "Supreme Court"}])
    out, report = tmp_path / "kb.jsonl", tmp_path / "report.json"
    drop_all = tmp_path / "drop_all.json"
    drop_all.write_text('{"labels": {}, "unmapped": "drop"}', encoding="utf8")
    result = CliRunner().invoke(app, ["mine-kb", str(docbin), "-o", str(out), "--curated", str(curated), "--curated-labels", str(drop_all)])
    assert result.exit_code == 0, result.output
    assert "none of the 2 curated entries" in result.output and "labels PARTY, PLACE" in result.output
    assert {e.label for e in read_kb(out)} == {"PARTY", "PLACE"}
    kb_map = tmp_path / "kb_map.json"
    kb_map.write_text('{"labels": {"BUSINESS": "PARTY", "COURT": "TRIBUNAL"}, "unmapped": "drop"}', encoding="utf8")
    result = CliRunner().invoke(app, ["mine-kb", str(docbin), "-o", str(out), "--curated", str(curated), "--curated-labels", str(kb_map),
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"1 curated from {curated} through {kb_map} (1 left out: 1 labelled TRIBUNAL, which the corpus lacks)" in result.output
    assert ("Zenith Holdings", "PARTY") in [(e.text, e.label) for e in read_kb(out)]
    assert srsly.read_json(report)["curated"]["not_in_corpus"] == {"TRIBUNAL": 1}
    result = CliRunner().invoke(app, ["mine-kb", str(docbin), "-o", str(out), "--curated-labels", str(kb_map)])
    assert result.exit_code == 1 and "give it with --curated" in result.output


def test_mine_kb_cli_errors(tmp_path, corpus):
    docbin = tmp_path / "train.spacy"
    DocBin(docs=corpus).to_disk(docbin)
    bad = write_lines(tmp_path / "bad.jsonl", [{"label": "X", "text": "a"}, "not json"])
    out = tmp_path / "kb.jsonl"
    result = CliRunner().invoke(app, ["mine-kb", str(docbin), "-o", str(out), "--curated", str(bad)])
    assert result.exit_code == 1 and f"{bad}:2: not valid JSON" in result.output and not out.exists()
    result = CliRunner().invoke(app, ["mine-kb", str(tmp_path / "none.spacy"), "-o", str(out)])
    assert result.exit_code == 1 and "no such file" in result.output
    (tmp_path / "notes.spacy").write_text("not a DocBin", encoding="utf8")
    result = CliRunner().invoke(app, ["mine-kb", str(tmp_path / "notes.spacy"), "-o", str(out)])
    assert result.exit_code == 1 and "notes.spacy: not a spaCy DocBin file" in result.output and not out.exists()
