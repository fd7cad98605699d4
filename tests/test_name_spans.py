"""name_spans: entities cut out of a long proper name become the whole name, from the form of the text."""
import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_domain_ner.cli import app
from spacy_domain_ner.knowledge.name_spans import NameSpans, add_name_spans, apply_name_spans
from spacy_domain_ner.knowledge.names import (check_designators, designator_key, find_name_spans, mine_name_designators,
                                              name_head, tail_ends)

DESIGNATORS = {
    "BUSINESS": {"fund": 0.95, "bank": 0.9, "trust": 0.92, "inc": 1.0, "portfolio": 0.7},
    "LOCATION": {"drive": 0.8, "county": 0.6},
}


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def doc_with(nlp, text, ents, confidences=None):
    """A Doc with entities given as (text, label) or (text, label, kb_id), each found from the left."""
    doc = nlp.make_doc(text)
    spans, offset = [], 0
    for text_label in ents:
        phrase, label, kb_id = (*text_label, "")[:3]
        start = text.index(phrase, offset)
        offset = start + len(phrase)
        spans.append(doc.char_span(start, offset, label=label, kb_id=kb_id))
    doc.ents = spans
    doc._.ent_confidences = confidences
    return doc


def names(nlp, text, ents, designators=DESIGNATORS, **settings):
    doc = doc_with(nlp, text, ents)
    return [(doc[s:e].text, label, [p.text for p in parts]) for s, e, label, parts in
            find_name_spans(doc, designators=designators, **settings)]


# --- the rules ------------------------------------------------------------------------------------

def test_extend_to_a_designator_and_its_tail(nlp):
    assert names(nlp, "He sold Acme Advisor Income Fund 2 shares.", [("Acme Advisor", "BUSINESS")]) == [
        ("Acme Advisor Income Fund 2", "BUSINESS", ["Acme Advisor"])]
    assert names(nlp, "He sold Acme Tax - Free Income Fund, Inc. stock.", [("Acme", "BUSINESS")]) == [
        ("Acme Tax - Free Income Fund, Inc.", "BUSINESS", ["Acme"])]
    assert names(nlp, "Shares of Acme Municipal Trust, Series 3 fell.", [("Acme", "BUSINESS")])[0][0] == "Acme Municipal Trust, Series 3"
    assert names(nlp, "Shares of Acme Capital Fund II, L.P. fell.", [("Acme Capital", "BUSINESS")])[0][0] == "Acme Capital Fund II, L.P."
    assert names(nlp, "the Bank of the West Fund holds it", [("Bank", "BUSINESS")])[0][0] == "Bank of the West Fund"
    # the furthest designator wins; a series word other than a tail does not end a name
    assert names(nlp, "Acme Bank Trust Portfolio Series said", [("Acme", "BUSINESS")])[0][0] == "Acme Bank Trust Portfolio"
    assert names(nlp, "He sold Acme Advisor Income Fund 2 shares.", [("Acme Advisor", "BUSINESS")], extend=False) == []


def test_extend_does_not_fire_on_counter_examples(nlp):
    ents = [("Acme", "BUSINESS")]
    assert names(nlp, "Acme said the Fund will pay.", ents) == []  # the run stops at lower case
    assert names(nlp, "Acme Income Fund", [("Acme Income Fund", "BUSINESS")]) == []  # already whole
    assert names(nlp, "The Fund and the Income Fund paid.", []) == []  # no entity: no name
    assert names(nlp, "Acme\nIncome Fund", ents) == []  # line break
    assert names(nlp, 'Acme "Income Fund"', ents) == [] and names(nlp, "Acme (Income Fund)", ents) == []
    assert names(nlp, "Acme, Income Fund", ents) == []  # a comma only before a company suffix or a series
    assert names(nlp, "Acme Under Income Fund", ents) == []  # a stop word ends the run
    assert names(nlp, "Acme Income Drive", ents) == []  # a designator of another label, and no strong one
    assert names(nlp, "Acme Fund", [("Acme Fund", "PERSON")], relabel=False) == []
    assert names(nlp, "Acme Fund 2020 Report", [("Acme Fund", "BUSINESS")]) == []  # a year is no series number
    assert names(nlp, "with Acme Investments and Silicon Valley Bank today", [("Acme Investments", "BUSINESS")]) == []
    # a sentence start is a boundary when the Doc has sentences, even without punctuation
    doc = doc_with(nlp, "He met Acme Income Fund holders", [("Acme", "BUSINESS")])
    for token in doc:
        token.is_sent_start = token.i in (0, 3)
    assert find_name_spans(doc, designators=DESIGNATORS) == []
    assert names(nlp, "Acme Income Income Income Fund", ents, max_tokens=4) == []


def test_merge_pieces_of_any_labels(nlp):
    text = "He bought Fidelity Advisor New York Municipal Income Fund shares."
    assert names(nlp, text, [("Fidelity Advisor", "BUSINESS"), ("New York", "LOCATION")]) == [
        ("Fidelity Advisor New York Municipal Income Fund", "BUSINESS", ["Fidelity Advisor", "New York"])]
    three = [("Fidelity Advisor", "BUSINESS"), ("New York", "LOCATION"), ("Municipal Income Fund", "BUSINESS")]
    assert names(nlp, text, three)[0][0] == "Fidelity Advisor New York Municipal Income Fund"
    assert names(nlp, text, three, merge=False) == []
    # without merge, the last piece alone is extended (and relabelled: "fund" is a strong designator)
    assert names(nlp, text, [("Fidelity Advisor", "BUSINESS"), ("New York", "LOCATION")], merge=False) == [
        ("New York Municipal Income Fund", "BUSINESS", ["New York"])]
    assert names(nlp, "LOAN BETWEEN SILICON VALLEY BANK AND ACME", [("SILICON", "BUSINESS"), ("BANK", "BUSINESS")]) == [
        ("SILICON VALLEY BANK", "BUSINESS", ["SILICON", "BANK"])]
    # two names joined by a conjunction, or a place after a complete bank, stay apart
    assert names(nlp, "Acme Bank and Zeta Trust", [("Acme Bank", "BUSINESS"), ("Zeta Trust", "BUSINESS")]) == []
    assert names(nlp, "Acme Bank Tasman Drive", [("Acme Bank", "BUSINESS"), ("Tasman Drive", "LOCATION")]) == []
    assert names(nlp, "Acme Bank 3003 Tasman Drive", [("Acme", "BUSINESS")]) == [("Acme Bank", "BUSINESS", ["Acme"])]
    assert names(nlp, "If to SVB: Silicon Valley Bank 535 Fifth Avenue", [("Silicon Valley", "BUSINESS"), ("Bank", "BUSINESS")]) == [
        ("Silicon Valley Bank", "BUSINESS", ["Silicon Valley", "Bank"])]  # a street number, not a series
    # a long run of capitalised words between two entities is a table row: only the words next to the bank are taken
    row = "Lender Commitment Commitment Percentage Silicon Valley Bank $1,500,000"
    assert names(nlp, row, [("Lender", "PERSON"), ("Bank", "BUSINESS")]) == [("Silicon Valley Bank", "BUSINESS", ["Bank"])]


def test_relabel_a_strongly_designated_name(nlp):
    assert names(nlp, "He sold Acme Bond Fund shares.", [("Acme Bond Fund", "MISCELLANEOUS")]) == [
        ("Acme Bond Fund", "BUSINESS", ["Acme Bond Fund"])]
    assert names(nlp, "with John Smith Trust today", [("John Smith", "PERSON")]) == [
        ("John Smith Trust", "BUSINESS", ["John Smith"])]
    # not strong enough (0.7 < 0.9), not capitalised throughout, relabel off, one word
    assert names(nlp, "Acme Growth Portfolio", [("Acme Growth Portfolio", "MISCELLANEOUS")]) == []
    assert names(nlp, "Acme Growth Portfolio", [("Acme Growth Portfolio", "MISCELLANEOUS")], strong_share=0.7) != []
    assert names(nlp, "the acme bond Fund", [("acme bond Fund", "MISCELLANEOUS")]) == []
    assert names(nlp, "Acme Bond Fund", [("Acme Bond Fund", "MISCELLANEOUS")], relabel=False) == []
    assert names(nlp, "the Fund", [("Fund", "MISCELLANEOUS")]) == []


def test_extend_left_over_capitalised_words(nlp):
    ents = [("Valley Bank", "BUSINESS")]
    assert names(nlp, "We hired Silicon Valley Bank today.", ents) == [("Silicon Valley Bank", "BUSINESS", ["Valley Bank"])]
    assert names(nlp, "We hired Silicon Valley Bank today.", [("Bank", "BUSINESS")])[0][0] == "Silicon Valley Bank"
    assert names(nlp, "The Silicon Valley Bank lent.", ents)[0][0] == "Silicon Valley Bank"  # a stop word stops it
    assert names(nlp, "Silicon Valley Bank lent.", ents) == []  # a sentence-initial capital says nothing
    assert names(nlp, "Notwithstanding Valley Bank's rights", ents) == []
    assert names(nlp, "Between Valley Bank and us", ents) == []
    assert names(nlp, "LENDERS: Silicon Valley Bank", ents)[0][0] == "Silicon Valley Bank"  # a colon ends no sentence
    assert names(nlp, "SILICON VALLEY BANK LENT.", [("VALLEY BANK", "BUSINESS")])[0][0] == "SILICON VALLEY BANK"
    assert names(nlp, "We hired 2 Valley Bank staff", ents) == []  # numbers do not start a name
    assert names(nlp, "We hired Silicon Valley Bank today.", ents, extend_left=False) == []
    assert names(nlp, "We met Acme Valley Corp today.", [("Valley Corp", "BUSINESS")]) == []  # no designator


def test_all_capitals(nlp):
    assert names(nlp, "PAY TO SILICON VALLEY BANK, INC NOW", [("SILICON", "BUSINESS"), ("BANK", "BUSINESS")])[0][0] == (
        "SILICON VALLEY BANK, INC")
    assert names(nlp, "ACME NEW YORK MUNICIPAL FUND 2", [("ACME", "BUSINESS"), ("NEW YORK", "LOCATION")])[0][0] == (
        "ACME NEW YORK MUNICIPAL FUND 2")
    assert designator_key("INC.") == designator_key("Inc") == "inc"


def test_tails_and_heads(nlp):
    doc = nlp.make_doc("Acme Fund, Inc., Series A and Acme Trust II shares")
    assert [t.text for t in doc][:8] == ["Acme", "Fund", ",", "Inc.", ",", "Series", "A", "and"]
    assert tail_ends(doc, 2) == [4, 7] and tail_ends(doc, 2, suffixes=False) == []
    assert tail_ends(doc, 10) == [11] and tail_ends(doc, 11) == []
    assert name_head(doc[0:7]) == 1 and name_head(doc[0:7], suffixes=False) == 3


# --- the component --------------------------------------------------------------------------------

def test_component_keeps_kb_ids_and_takes_the_lowest_confidence(nlp):
    text = "He bought Fidelity Advisor New York Municipal Income Fund and Acme shares."
    doc = doc_with(nlp, text, [("Fidelity Advisor", "BUSINESS", "fidelity"), ("New York", "LOCATION", "ny"), ("Acme", "BUSINESS")],
                   confidences=[[2, 4, "BUSINESS", 0.8], [4, 6, "LOCATION", 0.6], [10, 11, "BUSINESS", 0.9]])
    apply_name_spans(doc, designators=DESIGNATORS)
    assert [(e.text, e.label_, e.kb_id_, e._.confidence) for e in doc.ents] == [
        ("Fidelity Advisor New York Municipal Income Fund", "BUSINESS", "fidelity", 0.6), ("Acme", "BUSINESS", "", 0.9)]
    assert doc._.ent_confidences == [[10, 11, "BUSINESS", 0.9], [2, 9, "BUSINESS", 0.6]]
    doc = doc_with(nlp, "Acme Bond Fund", [("Acme Bond Fund", "MISCELLANEOUS", "misc")])
    apply_name_spans(doc, designators=DESIGNATORS)
    assert [(e.label_, e.kb_id_, e._.confidence) for e in doc.ents] == [("BUSINESS", "", None)]  # another kind of thing's id


def test_component_settings_and_serialization(nlp, tmp_path):
    pipeline = spacy.blank("en")
    ruler = pipeline.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "BUSINESS", "pattern": "Fidelity Advisor"},
                        {"label": "LOCATION", "pattern": [{"LOWER": "new"}, {"LOWER": "york"}]}])
    component = pipeline.add_pipe("name_spans", config={"relabel": False, "max_tokens": 9})
    assert pipeline("Fidelity Advisor New York Income Fund").ents[0].text == "Fidelity Advisor"  # no designators: no change
    component.set_designators({"BUSINESS": ["Fund", "L.P."]})
    assert component.designators == {"BUSINESS": {"fund": 1.0, "lp": 1.0}} and component.labels == ("BUSINESS",)
    text = "Fidelity Advisor New York Income Fund"
    assert [(e.text, e.label_) for e in pipeline(text).ents] == [(text, "BUSINESS")]
    pipeline.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("name_spans").designators == component.designators
    assert loaded.get_pipe("name_spans").cfg == {**component.cfg, "relabel": False, "max_tokens": 9}
    assert [(e.text, e.label_) for e in loaded(text).ents] == [(text, "BUSINESS")]
    off = spacy.load(tmp_path / "model", config={"components": {"name_spans": {"merge": False}}})
    assert [e.text for e in off(text).ents] == ["Fidelity Advisor", "New York"]
    fresh = NameSpans("again").from_bytes(component.to_bytes())
    assert fresh.designators == component.designators
    for bad in ({"merge": "yes"}, {"strong_share": 0}, {"max_tokens": 1}):
        with pytest.raises(ValueError):
            NameSpans(**bad)
    for bad in ({"BUSINESS": {"fund": 1.5}}, {"BUSINESS": "fund"}, ["fund"], {"": ["fund"]}, {"BUSINESS": [" "]}):
        with pytest.raises(ValueError):
            check_designators(bad)


def test_initialize_mines_or_reads_the_designators(tmp_path, corpus):
    component = NameSpans()
    component.initialize(lambda: [type("Example", (), {"reference": doc})() for doc in corpus], min_count=2)
    assert component.designators["BUSINESS"]["fund"] == 0.75
    srsly.write_json(tmp_path / "d.json", {"LOCATION": ["County"]})
    component.initialize(designators=tmp_path / "d.json")
    assert component.designators == {"LOCATION": {"county": 1.0}}
    with pytest.raises(ValueError, match="needs the designators"):
        NameSpans().initialize()


def test_add_name_spans_places_it_after_the_knowledge_and_before_consistency():
    pipeline = spacy.blank("en")
    for name in ("ner", "legal_knowledge", "entity_consistency", "case_restorer"):
        pipeline.add_pipe(name)
    add_name_spans(pipeline, designators={"BUSINESS": ["Fund"]})
    assert pipeline.pipe_names == ["ner", "legal_knowledge", "name_spans", "entity_consistency", "case_restorer"]
    add_name_spans(pipeline, designators={"BUSINESS": ["Trust"]}, after="ner", merge=False)
    assert pipeline.pipe_names[1] == "name_spans" and pipeline.pipe_names.count("name_spans") == 1
    assert pipeline.get_pipe("name_spans").cfg["merge"] is False
    with pytest.raises(ValueError, match="unknown name_spans settings"):
        add_name_spans(pipeline, designators={}, merges=False)
    with pytest.raises(ValueError, match="no component 'parser'"):
        add_name_spans(pipeline, designators={}, after="parser")
    bare = spacy.blank("en")
    add_name_spans(bare, designators={})
    assert bare.pipe_names == ["name_spans"]


# --- mining ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(nlp):
    rows = [  # (text, [(first token, end token, label)])
        ("Acme Income Fund paid the fund .", [(0, 3, "BUSINESS")]),
        ("Zeta Bond Fund , Series 2 and a fund .", [(0, 6, "BUSINESS")]),
        ("Omega Fund lost .", [(0, 2, "BUSINESS")]),
        ("Kappa Holdings , Inc. and Rho Holdings LLC .", [(0, 4, "BUSINESS"), (5, 8, "BUSINESS")]),
        ("Sigma Holdings , Inc. holdings .", [(0, 4, "BUSINESS")]),
        ("New York and New York and New York .", [(0, 2, "LOCATION"), (3, 5, "LOCATION"), (6, 8, "LOCATION")]),
        ("Borrower and Borrower and Borrower .", [(0, 1, "PERSON"), (2, 3, "PERSON"), (4, 5, "PERSON")]),
        ("Fund Jones Fund .", [(0, 3, "PERSON")]),
    ]
    docs = []
    for text, ents in rows:
        doc = Doc(nlp.vocab, words=text.split())
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in ents]
        docs.append(doc)
    return docs


def test_mine_name_designators_counts_and_thresholds(corpus):
    mined = mine_name_designators(corpus, min_count=2, min_share=0.5)
    # fund: 3 BUSINESS (after the series tail), 1 PERSON; holdings: before the suffixes; "york" is never
    # written in lower case, "Borrower" is one token, "llc"/"inc" are company suffixes
    assert mined == {"BUSINESS": {"fund": 0.75, "holdings": 1.0, "inc": 1.0}}
    assert list(mined["BUSINESS"]) == ["fund", "holdings", "inc"]  # most frequent first
    assert mine_name_designators(corpus, min_count=2, min_share=0.8) == {"BUSINESS": {"holdings": 1.0, "inc": 1.0}}
    assert "york" in mine_name_designators(corpus, min_count=2, common_only=False)["LOCATION"]
    assert mine_name_designators(corpus, min_count=4) == {}
    assert mine_name_designators(corpus, min_count=1, min_share=0.2)["PERSON"] == {"fund": 0.25}
    assert mine_name_designators([]) == {}
    with pytest.raises(ValueError):
        mine_name_designators(corpus, min_count=0)
    with pytest.raises(ValueError):
        mine_name_designators(corpus, min_share=0)


# --- CLI ------------------------------------------------------------------------------------------

def test_mine_name_designators_cli_and_add_knowledge(tmp_path, corpus):
    DocBin(docs=corpus).to_disk(tmp_path / "train.spacy")
    out = tmp_path / "designators.json"
    result = CliRunner().invoke(app, ["mine-name-designators", str(tmp_path / "train.spacy"), "-o", str(out), "--min-count", "2"])
    assert result.exit_code == 0, result.output
    assert srsly.read_json(out) == {"BUSINESS": {"fund": 0.75, "holdings": 1.0, "inc": 1.0}}
    assert "BUSINESS 3" in result.output and "from 8 docs" in result.output
    result = CliRunner().invoke(app, ["mine-name-designators", str(tmp_path / "train.spacy"), "-o", str(out), "--min-count", "2",
                                      "--no-common-only"])
    assert result.exit_code == 0 and "york" in srsly.read_json(out)["LOCATION"]
    result = CliRunner().invoke(app, ["mine-name-designators", str(tmp_path / "none.spacy"), "-o", str(tmp_path / "x.json")])
    assert result.exit_code == 1 and "no such file" in result.output and not (tmp_path / "x.json").exists()

    pipeline = spacy.blank("en")
    pipeline.add_pipe("entity_ruler").add_patterns([{"label": "BUSINESS", "pattern": "Acme"},
                                                    {"label": "LOCATION", "pattern": "Ohio"}])
    pipeline.to_disk(tmp_path / "model")
    srsly.write_jsonl(tmp_path / "kb.jsonl", [{"label": "BUSINESS", "text": "Zeta Corp"}])
    args = ["add-knowledge", str(tmp_path / "model"), str(tmp_path / "kb.jsonl"), str(tmp_path / "out"), "--no-strict-labels"]
    result = CliRunner().invoke(app, args + ["--name-designators", str(out)])
    assert result.exit_code == 0, result.output
    loaded = spacy.load(tmp_path / "out")
    assert loaded.pipe_names == ["entity_ruler", "legal_knowledge", "name_spans", "entity_consistency"]
    doc = loaded("Acme Ohio Income Fund paid Zeta Corp today.")
    assert [(e.text, e.label_) for e in doc.ents] == [("Acme Ohio Income Fund", "BUSINESS"), ("Zeta Corp", "BUSINESS")]
    result = CliRunner().invoke(app, args[:3] + [str(tmp_path / "out2"), "--no-strict-labels"])
    assert result.exit_code == 0 and "name_spans" not in spacy.load(tmp_path / "out2").pipe_names
    result = CliRunner().invoke(app, args[:3] + [str(tmp_path / "out3"), "--name-designators", str(tmp_path / "none.json")])
    assert result.exit_code == 1 and "none.json: no such file" in result.output
