"""legal_knowledge: a confidence for KB entities, kb_id linking (aliases, short forms), canonical names."""
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from conftest import load_benchmark
from spacy_domain_ner.knowledge.kb import KnowledgeError, parse_entry, read_kb

ASSET_KB = Path(__file__).parent.parent / "assets" / "knowledge" / "legal_kb.jsonl"
KB = [
    {"label": "GOVERNMENT", "text": "Securities and Exchange Commission", "id": "sec", "case_sensitive": False,
     "aliases": [{"text": "SEC", "case_sensitive": True}], "short_forms": ["Commission"], "precision": 0.98},
    {"label": "GOVERNMENT", "text": "Federal Trade Commission", "id": "ftc", "case_sensitive": False, "short_forms": ["Commission"]},
    {"label": "LEGISLATION/ACT", "text": "Securities Exchange Act of 1934", "id": "exchange-act", "aliases": ["Exchange Act"],
     "canonical": "15 U.S.C. § 78a et seq."},
    {"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^\\d{0,3}CFR$"}}], "id": "cfr"},
    {"label": "BUSINESS", "text": "Acme", "precision": 0.6},
]


def entries(data=KB):
    return [parse_entry(d, location=f"test:{i}") for i, d in enumerate(data, start=1)]


@pytest.fixture
def nlp():
    return spacy.blank("en")


def component(nlp, **cfg):
    kb = nlp.add_pipe("legal_knowledge", config=cfg)
    kb.add_entries(entries())
    return kb


def run(nlp, kb, text, spans=(), scores=None):
    """`spans`: (first word, words, label) entities set before the KB, as `ner` would."""
    doc = nlp.make_doc(text)
    words = [t.text for t in doc]
    ents = []
    for first, n, label in spans:
        start = words.index(first) if isinstance(first, str) else first
        ents.append(Span(doc, start, start + n, label=label))
    doc.ents = ents
    if scores is not None:
        doc._.ent_confidences = [[e.start, e.end, e.label_, scores] for e in doc.ents]
    return kb(doc)


def linked(doc):
    return [(e.text, e.kb_id_) for e in doc.ents]


def test_kb_entities_get_a_confidence(nlp):
    kb = component(nlp, curated_confidence=0.9)
    doc = run(nlp, kb, "The SEC and the Exchange Act and 12 CFR and Acme .")
    assert [(e.text, e._.confidence) for e in doc.ents] == [("SEC", 0.98), ("Exchange Act", 0.9), ("CFR", 0.9), ("Acme", 0.6)]
    assert all(0 <= e._.confidence <= 1 for e in doc.ents)
    # an entity ner also found (same span and label) keeps the NER's score; ner's other entities keep theirs
    doc = run(nlp, component(spacy.blank("en"), mode="override"), "The SEC met Bob .", [("SEC", 1, "GOVERNMENT"), ("Bob", 1, "PERSON")], scores=0.7)
    assert [(e.text, e._.confidence) for e in doc.ents] == [("SEC", 0.7), ("Bob", 0.7)]
    with pytest.raises(ValueError, match="curated_confidence"):
        spacy.blank("en").add_pipe("legal_knowledge", config={"curated_confidence": 1.5})


def test_ner_and_kb_entities_are_linked(nlp):
    kb = component(nlp, mode="fill")  # ner's longer span stays (override, the default, would replace it)
    text = "The Securities and Exchange Commission 's rules under the Exchange Act . Acme and 12 CFR ."
    doc = run(nlp, kb, text, [(0, 5, "GOVERNMENT")])  # ner took "The ... Commission": the determiner is ignored
    assert linked(doc) == [("The Securities and Exchange Commission", "sec"), ("Exchange Act", "exchange-act"), ("Acme", ""), ("CFR", "")]
    assert doc.ents[0].ent_id_ == "" and doc.ents[1].ent_id_ == "exchange-act"  # the KB's span id is kept
    # the label must agree; an existing kb_id is kept
    doc = nlp.make_doc("The SEC and the SEC")
    doc.ents = [Span(doc, 1, 2, label="BUSINESS"), Span(doc, 4, 5, label="GOVERNMENT", kb_id="other")]
    assert linked(kb(doc)) == [("SEC", ""), ("SEC", "other")]
    assert kb.lookup("exchange-act").canonical == "15 U.S.C. § 78a et seq." and kb.lookup("nope") is None


def test_short_forms_link_only_after_the_full_name(nlp):
    kb = component(nlp)
    text = "The Commission met . The SEC filed . The Commission agreed with the Federal Trade Commission . The Commission left . the commission"
    doc = nlp.make_doc(text)
    words = [t.text for t in doc]
    starts = [i for i, w in enumerate(words) if w == "Commission"]
    doc.ents = [Span(doc, i - 1, i + 1, label="GOVERNMENT") for i in starts if words[i - 1] == "The"] + [
        Span(doc, len(doc) - 2, len(doc), label="GOVERNMENT")
    ]
    doc = kb(doc)
    got = [(e.start, e.text, e.kb_id_) for e in doc.ents]
    assert [g[1:] for g in got] == [
        ("The Commission", ""),  # before any full name: not linked
        ("SEC", "sec"),
        ("The Commission", "sec"),
        ("Federal Trade Commission", "ftc"),
        ("The Commission", "ftc"),  # the entry mentioned most recently
        ("the commission", ""),  # short forms are case-sensitive by default
    ]


def test_link_can_be_turned_off(nlp):
    kb = component(nlp, link=False)
    assert linked(run(nlp, kb, "The SEC .")) == [("SEC", "")]


def test_format_canonical_and_short_forms_roundtrip(tmp_path, nlp):
    kb = component(nlp)
    data = kb.to_bytes()
    other = spacy.blank("en").add_pipe("legal_knowledge").from_bytes(data)
    assert [e.to_dict() for e in other.entries] == [e.to_dict() for e in kb.entries]
    assert other.entries[0].short_forms == [{"text": "Commission"}] and other.entries[2].canonical.startswith("15 U.S.C.")
    kb.to_disk(tmp_path / "kb")
    again = spacy.blank("en").add_pipe("legal_knowledge").from_disk(tmp_path / "kb")
    assert linked(run(spacy.blank("en"), again, "The SEC and the Commission .", [(4, 1, "GOVERNMENT")])) == [("SEC", "sec"), ("Commission", "sec")]
    bad = [
        ({"label": "G", "text": "x", "id": "x", "canonical": ""}, "'canonical'"),
        ({"label": "G", "text": "x", "id": "x", "short_forms": "y"}, "'short_forms' must be a list"),
        ({"label": "G", "text": "x", "id": "x", "short_forms": [{"text": "y", "bad": 1}]}, "bad short form"),
        ({"label": "G", "text": "x", "short_forms": ["y"]}, "need an 'id'"),
    ]
    for data, message in bad:
        with pytest.raises(KnowledgeError, match=message):
            parse_entry(data, location="t:1")


def test_shipped_kb_links_agencies_statutes_and_courts():
    nlp = spacy.blank("en")
    kb = nlp.add_pipe("legal_knowledge")
    kb.add_entries(read_kb(ASSET_KB))
    text = (
        "The Securities and Exchange Commission sued in the United States District Court for the Southern District of New York "
        "under the Securities Exchange Act of 1934 . The Commission relied on the Act and the Exchange Act ."
    )
    words = [t.text for t in nlp.make_doc(text)]
    last = {w: i for i, w in enumerate(words)}  # the last "Commission"; the standalone "Act" is before the last "Act"
    act = max(i for i, w in enumerate(words) if w == "Act" and words[i - 1] == "the")
    doc = run(nlp, kb, text, [(last["Commission"], 1, "GOVERNMENT"), (act, 1, "LEGISLATION/ACT")])
    assert linked(doc) == [
        ("Securities and Exchange Commission", "sec"),
        ("United States District Court for the Southern District of New York", "district-court-sdny"),
        ("Securities Exchange Act of 1934", "exchange-act"),
        ("Commission", "sec"),
        ("Act", ""),  # "the Act" is too ambiguous to link
        ("Exchange Act", "exchange-act"),
    ]
    assert all(e._.confidence is not None for e in doc.ents if e.text not in ("Act", "Commission"))  # those two: "ner"
    ids = [e.id for e in kb.entries if e.id]
    assert len(ids) == len(set(ids))
    assert kb.lookup("exchange-act").canonical == "15 U.S.C. § 78a et seq."
    assert kb.lookup("securities-act").canonical == "15 U.S.C. § 77a et seq."
    assert not any(f["text"] in ("Act", "the Act") for e in kb.entries for f in e.short_forms)


def test_linking_eval_scores_a_tiny_sample(tmp_path):
    import json

    from spacy.tokens import DocBin

    module = load_benchmark("linking_eval")
    nlp = spacy.blank("en")
    doc = nlp.make_doc("The SEC and the Commission under the Exchange Act and FHLB .")
    doc.ents = [Span(doc, 1, 2, label="GOVERNMENT"), Span(doc, 4, 5, label="GOVERNMENT"), Span(doc, 7, 9, label="LEGISLATION/ACT"),
                Span(doc, 10, 11, label="GOVERNMENT")]
    DocBin(docs=[doc]).to_disk(tmp_path / "dev.spacy")
    sample = [(1, 2, "SEC", "sec"), (4, 5, "Commission", "sec"), (7, 9, "Exchange Act", "securities-act"), (10, 11, "FHLB", "none")]
    (tmp_path / "s.jsonl").write_text("".join(
        json.dumps({"doc": 0, "start": s, "end": e, "label": doc.ents[i].label_, "text": t, "gold": g}) + "\n"
        for i, (s, e, t, g) in enumerate(sample)))
    kb_path = tmp_path / "kb.jsonl"
    kb_path.write_text("".join(json.dumps(e) + "\n" for e in KB[:3]))
    result = module.evaluate(tmp_path / "dev.spacy", tmp_path / "s.jsonl", kb_path)
    assert (result["predicted"], result["correct"], result["gold"]) == (3, 2, 3)
    assert result["precision"] == round(2 / 3, 4) and result["recall"] == round(2 / 3, 4)
    assert result["errors"] == [{"text": "Exchange Act", "label": "LEGISLATION/ACT", "gold": "securities-act", "predicted": "exchange-act"}]
