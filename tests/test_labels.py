import pytest
import srsly

from spacy_domain_ner.corpus.labels import LabelMap, load_label_map


def test_identity_map():
    assert load_label_map(None).map("ORG") == "ORG"


def test_rename_merge_drop(tmp_path):
    path = tmp_path / "map.json"
    srsly.write_json(path, {"labels": {"BUSINESS": "ORG", "COURT": "ORG", "MISCELLANEOUS": None}, "tags": {"P": "I-MISC"}})
    label_map = load_label_map(path)
    assert label_map.map("BUSINESS") == label_map.map("COURT") == "ORG"
    assert label_map.map("MISCELLANEOUS") is None
    assert label_map.map("PERSON") == "PERSON"
    assert label_map.tags == {"P": "I-MISC"}


def test_flat_map_and_unmapped_policies(tmp_path):
    path = tmp_path / "flat.json"
    srsly.write_json(path, {"PERSON": "PER"})
    assert load_label_map(path).map("PERSON") == "PER"
    assert LabelMap(labels={}, unmapped="drop").map("X") is None
    with pytest.raises(ValueError, match="not in the label map"):
        LabelMap(labels={}, unmapped="error").map("X")


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"labels": {"A": 3}}', "maps to 3"),
        ('{"labels": {}, "unmapped": "maybe"}', "unmapped"),
        ('{"labels": {}, "extra": 1}', "unknown label map keys"),
        ("[1, 2]", "a label map is a JSON object"),
        ("{not json", "not a valid JSON label map"),
        ('{"tags": {"P": ""}}', "tag 'P'"),
    ],
)
def test_bad_label_maps(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_label_map(path)
    assert str(path) in str(err.value)


def test_shipped_label_maps_load():
    from pathlib import Path

    configs = Path(__file__).parent.parent / "configs" / "labels"
    for path in configs.glob("*.json"):
        load_label_map(path)
    ener4 = load_label_map(configs / "ener_to_conll.json")
    assert {ener4.map(label) for label in ("BUSINESS", "GOVERNMENT", "COURT")} == {"ORG"}
    assert ener4.map("LEGISLATION/ACT") == ener4.map("MISCELLANEOUS") == "MISC"


def test_map_spans_keeps_drops_and_names_the_span():
    import spacy
    from spacy.tokens import Span

    doc = spacy.blank("en").make_doc("Acme sued Jane in Boston")
    doc.ents = [Span(doc, 0, 1, label="ORG", kb_id="Q1"), Span(doc, 2, 3, label="PER"), Span(doc, 4, 5, label="LOC")]
    kept, dropped = LabelMap(labels={"ORG": "BUSINESS", "PER": None}).map_spans(doc.ents, context=lambda s: s.text)
    assert [(s.text, s.label_, s.kb_id_) for s in kept] == [("Acme", "BUSINESS", "Q1"), ("Boston", "LOC", "")]
    assert [s.text for s in dropped] == ["Jane"]
    with pytest.raises(ValueError, match=r"^doc 3, 'Jane': label 'PER' is not in the label map"):
        LabelMap(labels={"ORG": "BUSINESS", "LOC": "LOC"}, unmapped="error").map_spans(
            doc.ents, context=lambda s: f"doc 3, {s.text!r}")
