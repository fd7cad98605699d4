import json
import time
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example
from typer.testing import CliRunner

import spacy_domain_ner.cli.knowledge  # noqa: F401  (registers mine-kb and add-knowledge)
from spacy_domain_ner.cli import app
from spacy_domain_ner.knowledge.component import LegalKnowledge, add_knowledge, make_legal_knowledge
from spacy_domain_ner.knowledge.fusion import fuse_entities
from spacy_domain_ner.knowledge.matcher import KnowledgeMatcher, resolve_overlaps
from spacy_domain_ner.knowledge.kb import KnowledgeEntry, KnowledgeError, parse_entry, read_kb

ASSET_KB = Path(__file__).parent.parent / "assets" / "knowledge" / "legal_kb.jsonl"
ENER_LABELS = {"BUSINESS", "GOVERNMENT", "COURT", "LOCATION", "PERSON", "LEGISLATION/ACT", "MISCELLANEOUS"}

KB = [
    {"label": "GOVERNMENT", "text": "Securities and Exchange Commission", "id": "sec", "case_sensitive": False,
     "aliases": [{"text": "SEC", "case_sensitive": True}]},
    {"label": "LEGISLATION/ACT", "text": "Securities Exchange Act of 1934", "id": "exchange-act", "aliases": ["Exchange Act"]},
    {"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^\\d{0,3}CFR$"}}], "id": "cfr"},
    {"label": "MISCELLANEOUS", "text": "Acme Index", "id": "acme-index", "precision": 0.5},
    {"label": "BUSINESS", "text": "Acme", "id": "acme", "precision": 0.95},
]


def write_kb_file(path, entries=KB):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf8")
    return path


def entries_of(data):
    return [parse_entry(d, location=f"test:{i}") for i, d in enumerate(data, start=1)]


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def doc_with_ents(nlp, text, spans):
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in spans]
    return doc


@pytest.fixture
def nlp():
    return spacy.blank("en")


def knowledge(nlp, mode, entries=KB, **cfg):
    component = nlp.add_pipe("legal_knowledge", config={"mode": mode, **cfg})
    component.add_entries(entries_of(entries))
    return component


# --- overlap resolution ----------------------------------------------------------------------

def test_resolve_overlaps_longest_then_earliest_then_kb_order():
    # (start, end, entry): the 3-token match wins over everything it overlaps.
    assert resolve_overlaps([(0, 2, 0), (1, 4, 1), (3, 5, 2)]) == [(1, 4, 1)]
    # Equal lengths: the earlier start wins; then the next non-overlapping one is kept.
    assert resolve_overlaps([(2, 4, 0), (1, 3, 1), (4, 5, 2)]) == [(1, 3, 1), (4, 5, 2)]
    # Same span: the entry first in the KB wins, whatever the input order.
    assert resolve_overlaps([(0, 2, 5), (0, 2, 3), (0, 2, 4)]) == [(0, 2, 3)]
    assert resolve_overlaps([]) == []


def test_component_resolves_overlapping_matches_deterministically(nlp):
    data = [
        {"label": "BUSINESS", "pattern": [{"LOWER": "acme"}, {"LOWER": "index"}], "id": "pattern-first"},
        {"label": "MISCELLANEOUS", "text": "Acme Index", "id": "phrase-second"},
        {"label": "LOCATION", "text": "Index Fund", "id": "later-overlap"},
        {"label": "PERSON", "text": "Acme Index Fund", "id": "longest"},
    ]
    component = knowledge(nlp, "override", data)
    doc = nlp("The Acme Index and the Acme Index Fund and Index Fund.")
    assert [(e.text, e.label_, e.id_) for e in doc.ents] == [
        ("Acme Index", "BUSINESS", "pattern-first"),  # same span as "phrase-second": KB order
        ("Acme Index Fund", "PERSON", "longest"),  # longest over both "Acme Index" and "Index Fund"
        ("Index Fund", "LOCATION", "later-overlap"),
    ]
    assert [s.text for s, _ in component.find(nlp.make_doc("Acme Index Fund"))] == ["Acme Index Fund"]


# --- fusion modes ------------------------------------------------------------------------------

TEXT = "Acme Index filed with the SEC under the Exchange Act and 17CFR ."
# Model entities: "Acme" (a BUSINESS that overlaps the KB's "Acme Index"), "SEC" as BUSINESS (wrong), "Exchange" alone.
MODEL = [(0, 1, "BUSINESS"), (5, 6, "BUSINESS"), (8, 9, "MISCELLANEOUS")]


def test_fill_only_adds_where_the_model_left_nothing(nlp):
    knowledge(nlp, "fill")
    doc = nlp(doc_with_ents(nlp, TEXT, MODEL))
    assert ents(doc) == [("Acme", "BUSINESS"), ("SEC", "BUSINESS"), ("Exchange", "MISCELLANEOUS"), ("17CFR", "LEGISLATION/ACT")]


def test_override_replaces_overlapping_model_entities(nlp):
    knowledge(nlp, "override")
    doc = nlp(doc_with_ents(nlp, TEXT, MODEL))
    assert ents(doc) == [
        ("Acme Index", "MISCELLANEOUS"), ("SEC", "GOVERNMENT"), ("Exchange Act", "LEGISLATION/ACT"), ("17CFR", "LEGISLATION/ACT"),
    ]
    assert [t.ent_iob_ for t in doc[:3]] == ["B", "I", "O"]
    assert doc.ents[1].id_ == "sec"


def test_trusted_overrides_only_with_precise_entries(nlp):
    knowledge(nlp, "trusted", trusted_precision=0.9)
    doc = nlp(doc_with_ents(nlp, TEXT, MODEL))
    # "Acme Index" (precision 0.5) only fills, so the model's "Acme" stays; entries without a
    # precision (curated) override.
    assert ents(doc) == [
        ("Acme", "BUSINESS"), ("SEC", "GOVERNMENT"), ("Exchange Act", "LEGISLATION/ACT"), ("17CFR", "LEGISLATION/ACT"),
    ]
    nlp.get_pipe("legal_knowledge").cfg["trusted_precision"] = 0.4
    assert ents(nlp(doc_with_ents(nlp, TEXT, MODEL)))[0] == ("Acme Index", "MISCELLANEOUS")


def test_fuse_entities_plain_function(nlp):
    doc = nlp.make_doc("a b c d e")
    model = [Span(doc, 0, 2, "X"), Span(doc, 3, 4, "X")]
    over, fill = [Span(doc, 1, 3, "Y")], [Span(doc, 3, 5, "Z"), Span(doc, 4, 5, "Z")]
    new, removed = fuse_entities(model, over, fill)
    assert [(s.start, s.end, s.label_) for s in new] == [(1, 3, "Y"), (3, 4, "X"), (4, 5, "Z")]
    assert [(s.start, s.end) for s in removed] == [(0, 2)]
    assert fuse_entities(model, [], []) == (model, [])


def test_fill_keeps_missing_tokens_missing(nlp):
    knowledge(nlp, "override")
    doc = nlp.make_doc("the SEC said")
    assert [t.ent_iob_ for t in doc] == ["", "", ""]
    nlp.get_pipe("legal_knowledge")(doc)
    assert [t.ent_iob_ for t in doc] == ["", "B", ""]


# --- case handling, ids, spans_key --------------------------------------------------------------

def test_case_handling_per_entry_and_global(nlp):
    knowledge(nlp, "fill", case_sensitive=True)
    doc = nlp("SECURITIES AND EXCHANGE COMMISSION ; sec ; SEC ; EXCHANGE ACT ; Exchange Act")
    # The SEC name is case-insensitive (all-caps headings), its acronym is not; "Exchange Act"
    # has no flag and takes the global default (case-sensitive).
    assert ents(doc) == [
        ("SECURITIES AND EXCHANGE COMMISSION", "GOVERNMENT"), ("SEC", "GOVERNMENT"), ("Exchange Act", "LEGISLATION/ACT"),
    ]
    other = spacy.blank("en")
    knowledge(other, "fill", case_sensitive=False)
    assert ("EXCHANGE ACT", "LEGISLATION/ACT") in ents(other("EXCHANGE ACT"))
    assert ents(other("sec")) == []  # the alias's own flag beats the global default


def test_spans_key_keeps_the_resolved_matches(nlp):
    knowledge(nlp, "fill", spans_key="knowledge")
    doc = nlp(doc_with_ents(nlp, TEXT, MODEL))
    assert [s.text for s in doc.spans["knowledge"]] == ["Acme Index", "SEC", "Exchange Act", "17CFR"]
    assert [d.ents for d in nlp.pipe([nlp.make_doc("SEC")])][0][0].label_ == "GOVERNMENT"


# --- regex guards inside the component -------------------------------------------------------

def test_pathological_regex_is_rejected_by_the_component(nlp):
    component = nlp.add_pipe("legal_knowledge")
    with pytest.raises(KnowledgeError, match="nests quantifiers"):
        component.add_entries([KnowledgeEntry(label="X", pattern=[{"TEXT": {"REGEX": "(a+)+$"}}], source="kb.jsonl:4")])
    with pytest.raises(KnowledgeError, match="kb.jsonl:4"):
        component.add_entries([KnowledgeEntry(label="X", pattern=[{"TEXT": {"REGEX": "(a|aa)*$"}}], source="kb.jsonl:4")])


def test_regex_sees_at_most_max_regex_chars(nlp):
    knowledge(nlp, "fill", [{"label": "X", "pattern": [{"TEXT": {"REGEX": "\\d+\\d+\\d+x"}}]}], max_regex_chars=20)
    assert ents(nlp("1234x")) == [("1234x", "X")]
    start = time.perf_counter()
    assert ents(nlp("1" * 5000)) == []  # too long: the guard fails at once
    assert time.perf_counter() - start < 1.0


def test_settings_are_checked(nlp):
    for config in ({"mode": "boost"}, {"max_regex_chars": 0}, {"trusted_precision": 2.0}):
        with pytest.raises(ValueError):
            spacy.blank("en").add_pipe("legal_knowledge", config=config)
    direct = make_legal_knowledge(nlp, "kb", "override", False, 10, 0.5, "k")
    assert isinstance(direct, LegalKnowledge) and direct.cfg["mode"] == "override" and direct.labels == ()


# --- serialization -------------------------------------------------------------------------------

def test_round_trip_to_disk_without_the_kb_file(tmp_path, nlp):
    kb_path = write_kb_file(tmp_path / "kb.jsonl")
    add_knowledge(nlp, kb_path=kb_path, mode="override", spans_key="kb")
    expected = ents(nlp(doc_with_ents(nlp, TEXT, MODEL)))
    nlp.to_disk(tmp_path / "model")
    kb_path.unlink()  # nothing outside the pipeline directory is needed to load it
    loaded = spacy.load(tmp_path / "model")
    component = loaded.get_pipe("legal_knowledge")
    assert ents(loaded(doc_with_ents(loaded, TEXT, MODEL))) == expected
    assert component.cfg == nlp.get_pipe("legal_knowledge").cfg
    assert [e.to_dict() for e in component.entries] == KB
    assert component.labels == ("BUSINESS", "GOVERNMENT", "LEGISLATION/ACT", "MISCELLANEOUS")
    # The settings come from the config, so they can be changed at load time.
    filling = spacy.load(tmp_path / "model", config={"components": {"legal_knowledge": {"mode": "fill"}}})
    assert filling.get_pipe("legal_knowledge").cfg["mode"] == "fill"
    assert ents(filling(doc_with_ents(filling, TEXT, MODEL)))[0] == ("Acme", "BUSINESS")


def test_round_trip_to_bytes(tmp_path, nlp):
    config = {"mode": "trusted", "trusted_precision": 0.3}
    add_knowledge(nlp, kb_path=write_kb_file(tmp_path / "kb.jsonl"), **config)
    other = spacy.blank("en")
    other.add_pipe("legal_knowledge", config=config)
    assert ents(other("the SEC")) == []
    other.from_bytes(nlp.to_bytes())
    assert ents(other(doc_with_ents(other, TEXT, MODEL))) == ents(nlp(doc_with_ents(nlp, TEXT, MODEL)))
    assert ents(other(doc_with_ents(other, TEXT, MODEL)))[0] == ("Acme Index", "MISCELLANEOUS")
    restored = LegalKnowledge(spacy.blank("en")).from_bytes(other.get_pipe("legal_knowledge").to_bytes())
    assert [e.to_dict() for e in restored.entries] == KB


def test_corrupt_saved_entries_name_their_file(tmp_path, nlp):
    knowledge(nlp, "fill")
    nlp.to_disk(tmp_path / "model")
    path = tmp_path / "model" / "legal_knowledge" / "entries.jsonl"
    lines = path.read_text(encoding="utf8").splitlines()
    lines[1] = json.dumps({"label": "X"})
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    with pytest.raises(KnowledgeError, match=f"{path}:2: an entry needs exactly one of"):
        spacy.load(tmp_path / "model")


# --- add_knowledge, initialize, scoring ---------------------------------------------------------

def ner_pipeline(labels):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in labels:
        ner.add_label(label)
    nlp.initialize()
    return nlp


def test_add_knowledge_places_the_component_after_ner(tmp_path):
    kb_path = write_kb_file(tmp_path / "kb.jsonl")
    nlp = ner_pipeline(["GOVERNMENT", "LEGISLATION/ACT", "MISCELLANEOUS", "BUSINESS"])
    nlp.add_pipe("sentencizer")
    component = add_knowledge(nlp, kb_path=kb_path, mode="override")
    assert nlp.pipe_names == ["ner", "legal_knowledge", "sentencizer"]
    assert len(component.entries) == len(KB)
    assert ("SEC", "GOVERNMENT") in ents(nlp("the SEC"))
    # Labels the NER does not know are an error unless allowed.
    nlp = ner_pipeline(["GOVERNMENT"])
    with pytest.raises(ValueError, match="BUSINESS"):
        add_knowledge(nlp, kb_path=kb_path)
    add_knowledge(nlp, kb_path=kb_path, strict_labels=False, name="kb")
    assert nlp.pipe_names == ["ner", "kb"]
    with pytest.raises(ValueError, match="unknown fusion mode"):
        add_knowledge(spacy.blank("en"), kb_path=kb_path, mode="boost")


def test_initialize_loads_a_kb_from_the_config(tmp_path, nlp):
    kb_path = write_kb_file(tmp_path / "kb.jsonl", KB + [{"label": "X", "text": "Rule 1", "group": "citation"}])
    nlp.add_pipe("legal_knowledge")
    nlp.config["initialize"]["components"]["legal_knowledge"] = {"kb_path": str(kb_path)}
    nlp.initialize()
    assert len(nlp.get_pipe("legal_knowledge").entries) == len(KB)
    nlp.get_pipe("legal_knowledge").initialize(kb_path=kb_path, exclude_groups=())
    assert len(nlp.get_pipe("legal_knowledge").entries) == len(KB) + 1
    nlp.get_pipe("legal_knowledge").initialize()  # no path: entries kept
    assert len(nlp.get_pipe("legal_knowledge").entries) == len(KB) + 1


def test_score_gives_per_label_prf(nlp):
    knowledge(nlp, "override")
    reference = doc_with_ents(nlp, "the SEC and Acme", [(1, 2, "GOVERNMENT"), (3, 4, "PERSON")])
    scores = nlp.evaluate([Example(nlp.make_doc(reference.text), reference)])
    assert scores["ents_p"] == 0.5 and scores["ents_r"] == 0.5
    assert scores["ents_per_type"]["GOVERNMENT"]["f"] == 1.0 and scores["ents_per_type"]["BUSINESS"]["p"] == 0.0


def test_knowledge_matcher_lists_overlapping_candidates(nlp):
    matcher = KnowledgeMatcher(nlp, entries_of(KB))
    doc = nlp.make_doc("Acme Index")
    assert matcher.candidates(doc) == [(0, 1, 4), (0, 2, 3)]
    assert KnowledgeMatcher(nlp, []).candidates(doc) == []


# --- the curated starter KB --------------------------------------------------------------------

def test_asset_kb_follows_ener_conventions(nlp):
    entries = read_kb(ASSET_KB, exclude_groups=())
    assert {e.label for e in entries} <= ENER_LABELS
    ids = [e.id for e in entries]
    assert all(ids) and len(ids) == len(set(ids))
    component = knowledge(nlp, "override", [e.to_dict() for e in read_kb(ASSET_KB)])
    doc = nlp(
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION . Annual report on Form 10-K pursuant to Section 13(a) of the "
        "Securities Exchange Act of 1934 ; see Rule 10b-5 and 17 CFR 240.14a-12 and 15 U.S.C. 78m . The Commission , "
        "the SEC and the United States District Court for the Southern District of New York ."
    )
    found = ents(doc)
    assert ("UNITED STATES SECURITIES AND EXCHANGE COMMISSION", "GOVERNMENT") in found
    assert ("Form 10-K", "MISCELLANEOUS") in found
    assert ("Securities Exchange Act of 1934", "LEGISLATION/ACT") in found
    assert ("CFR", "LEGISLATION/ACT") in found and ("U.S.C.", "LEGISLATION/ACT") in found
    assert ("SEC", "GOVERNMENT") in found
    assert ("United States District Court for the Southern District of New York", "COURT") in found
    # E-NER leaves these O, and so does the default KB.
    assert not [t for t in found if t[0].startswith(("Section", "Rule", "The Commission", "Commission"))]
    # The citation group (excluded by default) tags sections and rules when asked for.
    nlp.get_pipe("legal_knowledge").initialize(kb_path=ASSET_KB, exclude_groups=())
    found = ents(nlp("pursuant to Section 13(a) and Rule 10b-5 ."))
    assert found == [("Section 13(a)", "LEGISLATION/ACT"), ("Rule 10b-5", "LEGISLATION/ACT")]
    assert len(component.entries) > 200


# --- CLI ---------------------------------------------------------------------------------------

def test_add_knowledge_cli_writes_atomically(tmp_path):
    model_dir, out = tmp_path / "model", tmp_path / "out"
    ner_pipeline(["GOVERNMENT", "LEGISLATION/ACT", "MISCELLANEOUS", "BUSINESS"]).to_disk(model_dir)
    kb_path = write_kb_file(tmp_path / "kb.jsonl")
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(out), "--mode", "override"])
    assert result.exit_code == 0, result.output
    loaded = spacy.load(out)
    # the workflow's defaults: entity_consistency after the KB
    assert loaded.pipe_names == ["ner", "legal_knowledge", "entity_consistency"] and loaded.get_pipe("legal_knowledge").cfg["mode"] == "override"
    assert ("SEC", "GOVERNMENT") in ents(loaded("the SEC"))
    # A second run replaces the output; a failing run leaves it and no temporary directory behind.
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(out), "--mode", "fill", "--no-consistency"])
    assert result.exit_code == 0 and spacy.load(out).get_pipe("legal_knowledge").cfg["mode"] == "fill"
    assert spacy.load(out).pipe_names == ["ner", "legal_knowledge"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "X", "text": "a"}\n{"label": "X", "pattern": [{"TEXT": {"REGEX": "(a+)+"}}]}\n', encoding="utf8")
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(bad), str(out)])
    assert result.exit_code == 1 and f"{bad}:2:" in result.output and "nests quantifiers" in result.output
    assert spacy.load(out).get_pipe("legal_knowledge").cfg["mode"] == "fill"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "kb.jsonl", "model", "out"]
    result = CliRunner().invoke(app, ["add-knowledge", str(tmp_path / "none"), str(kb_path), str(out)])
    assert result.exit_code == 1 and "no such pipeline directory" in result.output
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(tmp_path / "o2"), "--no-strict-labels",
                                      "--mode", "trusted", "--exclude-groups", ""])
    assert result.exit_code == 0 and spacy.load(tmp_path / "o2").get_pipe("legal_knowledge").cfg["mode"] == "trusted"
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(tmp_path / "o3"), "--consistency"])
    assert result.exit_code == 0 and spacy.load(tmp_path / "o3").pipe_names == ["ner", "legal_knowledge", "entity_consistency"]
    # a project variable's value (`--consistency=${vars.consistency}`), and one that is not a boolean
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(tmp_path / "o3"), "--consistency=false"])
    assert result.exit_code == 0 and spacy.load(tmp_path / "o3").pipe_names == ["ner", "legal_knowledge"]
    result = CliRunner().invoke(app, ["add-knowledge", str(model_dir), str(kb_path), str(tmp_path / "o4"), "--consistency=maybe"])
    assert result.exit_code == 2 and "--consistency takes true or false" in result.output and not (tmp_path / "o4").exists()
    # an input pipeline's entity_consistency keeps its settings when it is moved last again
    tuned = spacy.load(model_dir)
    tuned.add_pipe("entity_consistency", config={"label_tickers": False, "min_chars": 3})
    tuned.to_disk(tmp_path / "tuned")
    result = CliRunner().invoke(app, ["add-knowledge", str(tmp_path / "tuned"), str(kb_path), str(tmp_path / "o5")])
    assert result.exit_code == 0, result.output
    moved = spacy.load(tmp_path / "o5")
    assert moved.pipe_names[-1] == "entity_consistency" and moved.pipe_names.count("entity_consistency") == 1
    assert moved.get_pipe("entity_consistency").cfg["label_tickers"] is False and moved.get_pipe("entity_consistency").cfg["min_chars"] == 3
