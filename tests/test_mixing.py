"""The mixing reader: ratio, seeded determinism, per-head references, label mapping."""
from collections import Counter
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin, Span
from spacy.util import registry

from spacy_domain_ner.corpus.labels import LabelMap, load_label_map
from spacy_domain_ner.training.mixing import (
    DOMAIN_KEY,
    GENERAL,
    LEGAL,
    mix_plan,
    mixed_corpus_v1,
    prepare_general,
    prepare_legal,
    read_docs,
)

READER = "spacy_domain_ner.MixedCorpus.v1"
CONLL_TO_LEGAL = Path(__file__).parent.parent / "configs" / "labels" / "conll_to_legal.json"
LEGAL_TEXTS = [
    ("Acme Holdings, Inc. sued the Commission in Delaware.", [(0, 19, "BUSINESS"), (29, 39, "GOVERNMENT"), (43, 51, "LOCATION")]),
    ("John Smith appealed to the Supreme Court.", [(0, 10, "PERSON"), (27, 40, "COURT")]),
    ("The Clean Air Act applies.", [(4, 17, "LEGISLATION/ACT")]),
]
NEWS_TEXTS = [
    ("Peter Blackburn of Reuters flew to Paris.", [(0, 15, "PER"), (19, 26, "ORG"), (35, 40, "LOC")]),
    ("German officials met in Bonn.", [(0, 6, "MISC"), (24, 28, "LOC")]),
    ("Nothing happened today.", []),
    ("Juventus beat Milan in Rome.", [(0, 8, "ORG"), (14, 19, "ORG"), (23, 27, "LOC")]),
    ("Clinton spoke.", [(0, 7, "PER")]),
]


def _docbin(path: Path, data: List[Tuple[str, list]], *, repeat: int = 1) -> Path:
    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    for i in range(repeat):
        for text, spans in data:
            doc = nlp.make_doc(text)
            doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans]
            doc.user_data["n"] = i
            db.add(doc)
    db.to_disk(path)
    return path


@pytest.fixture()
def corpora(tmp_path) -> Tuple[Path, Path]:
    return _docbin(tmp_path / "legal.spacy", LEGAL_TEXTS), _docbin(tmp_path / "news.spacy", NEWS_TEXTS)


def _read(reader, nlp=None):
    nlp = nlp or spacy.blank("en")
    return list(reader(nlp))


# The sampling plan


@pytest.mark.parametrize("ratio,size", [(0.3, 100), (0.5, 7), (0.75, 40), (0.0, 9), (1.0, 5)])
def test_plan_has_the_exact_ratio_spread_evenly(ratio, size):
    plan = mix_plan(n_legal_docs=4, n_general_docs=6, ratio=ratio, size=size, seed=1, epoch=0)
    assert len(plan) == size
    domains = [domain for domain, _ in plan]
    n_legal = round(size * ratio)
    assert domains.count(LEGAL) == n_legal and domains.count(GENERAL) == size - n_legal
    # Any window of k consecutive examples holds round(k * ratio) +- 1 legal ones.
    for k in range(1, size + 1):
        for start in range(size - k + 1):
            assert abs(domains[start : start + k].count(LEGAL) - k * n_legal / size) <= 1


def test_plan_draws_without_replacement_before_repeating():
    plan = mix_plan(n_legal_docs=3, n_general_docs=4, ratio=0.5, size=22, seed=0, epoch=0)
    legal = Counter(i for domain, i in plan if domain == LEGAL)
    general = Counter(i for domain, i in plan if domain == GENERAL)
    assert set(legal) == {0, 1, 2} and sorted(legal.values()) == [3, 4, 4]  # 11 over 3 docs
    assert set(general) == {0, 1, 2, 3} and sorted(general.values()) == [2, 3, 3, 3]  # 11 over 4
    # Within one pass through a corpus no document repeats.
    first_pass = [i for domain, i in plan if domain == LEGAL][:3]
    assert sorted(first_pass) == [0, 1, 2]


def test_plan_default_size_uses_every_legal_document_once():
    plan = mix_plan(n_legal_docs=5, n_general_docs=100, ratio=0.4, size=0, seed=0, epoch=0)
    assert len(plan) == 13  # ceil(5 / 0.4)
    assert sorted(i for domain, i in plan if domain == LEGAL) == [0, 1, 2, 3, 4]
    only_general = mix_plan(n_legal_docs=0, n_general_docs=6, ratio=0.0, size=0, seed=0, epoch=0)
    assert sorted(i for _, i in only_general) == list(range(6)) and {d for d, _ in only_general} == {GENERAL}
    only_legal = mix_plan(n_legal_docs=4, n_general_docs=0, ratio=1.0, size=0, seed=0, epoch=0)
    assert sorted(i for _, i in only_legal) == [0, 1, 2, 3] and {d for d, _ in only_legal} == {LEGAL}


def test_plan_is_seeded_per_epoch():
    kwargs = dict(n_legal_docs=20, n_general_docs=30, ratio=0.5, size=40)
    assert mix_plan(seed=3, epoch=2, **kwargs) == mix_plan(seed=3, epoch=2, **kwargs)
    assert mix_plan(seed=3, epoch=2, **kwargs) != mix_plan(seed=3, epoch=3, **kwargs)
    assert mix_plan(seed=3, epoch=2, **kwargs) != mix_plan(seed=4, epoch=2, **kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(ratio=1.5), "between 0 and 1"),
        (dict(ratio=-0.1), "between 0 and 1"),
        (dict(size=-1), "size must be"),
        (dict(n_legal_docs=0), "legal corpus is empty"),
        (dict(n_general_docs=0), "general corpus is empty"),
    ],
)
def test_plan_rejects_bad_settings(kwargs, message):
    settings = dict(n_legal_docs=3, n_general_docs=3, ratio=0.5, size=4, seed=0, epoch=0)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mix_plan(**settings)


# Preparing references for the heads


def test_spans_target_moves_news_entities_out_of_ents():
    nlp = spacy.blank("en")
    doc = nlp.make_doc(NEWS_TEXTS[0][0])
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in NEWS_TEXTS[0][1]]
    prepare_general(doc, target="spans", general_key="general", label_map=LabelMap(), source="news")
    assert [(s.text, s.label_) for s in doc.spans["general"]] == [("Peter Blackburn", "PER"), ("Reuters", "ORG"), ("Paris", "LOC")]
    assert not doc.has_annotation("ENT_IOB") and doc.ents == ()  # missing: no loss for the legal head
    assert doc.user_data[DOMAIN_KEY] == GENERAL


def test_spans_target_renames_but_refuses_to_drop(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp.make_doc(NEWS_TEXTS[0][0])
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in NEWS_TEXTS[0][1]]
    renamed = prepare_general(doc.copy(), target="spans", general_key="g", label_map=LabelMap(labels={"PER": "PERSON"}), source="x")
    assert [s.label_ for s in renamed.spans["g"]] == ["PERSON", "ORG", "LOC"]
    with pytest.raises(ValueError, match=r"news.spacy: document 0: the label map drops 'ORG'"):
        prepare_general(doc, target="spans", general_key="g", label_map=load_label_map(CONLL_TO_LEGAL), source="news.spacy: document 0")


def test_ents_target_maps_conll_onto_legal_and_marks_dropped_as_missing():
    nlp = spacy.blank("en")
    doc = nlp.make_doc(NEWS_TEXTS[0][0])  # Peter Blackburn of Reuters flew to Paris .
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in NEWS_TEXTS[0][1]]
    prepare_general(doc, target="ents", general_key="general", label_map=load_label_map(CONLL_TO_LEGAL), source="news")
    assert [(e.text, e.label_) for e in doc.ents] == [("Peter Blackburn", "PERSON"), ("Paris", "LOCATION")]
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O", "", "O", "O", "B", "O"]  # Reuters: missing
    assert "general" not in doc.spans


def test_ents_target_keeps_missing_tokens_missing():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Clinton met Reuters staff")
    doc.set_ents([Span(doc, 0, 1, label="PER")], missing=[doc[3:4]], default="outside")
    prepare_general(doc, target="ents", general_key="general", label_map=load_label_map(CONLL_TO_LEGAL), source="x")
    assert [t.ent_iob_ for t in doc] == ["B", "O", "O", ""]
    assert [e.label_ for e in doc.ents] == ["PERSON"]


def test_unmapped_label_is_an_error_naming_the_document():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Monday was a DATE")
    doc.ents = [doc[0:1].char_span(0, 6, label="DATE")]
    with pytest.raises(ValueError, match=r"news.spacy: document 7: label 'DATE' is not in the label map"):
        prepare_general(doc, target="ents", general_key="general", label_map=load_label_map(CONLL_TO_LEGAL), source="news.spacy: document 7")


def test_legal_reference_loses_a_general_group_in_spans_target_only():
    nlp = spacy.blank("en")
    doc = nlp.make_doc(LEGAL_TEXTS[1][0])
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in LEGAL_TEXTS[1][1]]
    doc.spans["general"] = [doc[0:2]]
    kept = prepare_legal(doc.copy(), target="ents", general_key="general")
    assert "general" in kept.spans and kept.user_data[DOMAIN_KEY] == LEGAL
    prepare_legal(doc, target="spans", general_key="general")
    assert "general" not in doc.spans  # absent group = missing for the general head
    assert [e.label_ for e in doc.ents] == ["PERSON", "COURT"]


def test_conll_to_legal_map():
    label_map = load_label_map(CONLL_TO_LEGAL)
    assert [label_map.map(label) for label in ("PER", "LOC", "ORG", "MISC")] == ["PERSON", "LOCATION", None, None]
    with pytest.raises(ValueError):
        label_map.map("GPE")
    assert srsly.read_json(CONLL_TO_LEGAL)["unmapped"] == "error"


# Reading DocBins


def test_read_docs_file_directory_and_limit(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    _docbin(folder / "a.spacy", LEGAL_TEXTS)
    _docbin(folder / "b.spacy", NEWS_TEXTS)
    nlp = spacy.blank("en")
    assert len(read_docs(folder, nlp, limit=0)) == 8
    assert [d.text for d in read_docs(folder, nlp, limit=4)] == [t for t, _ in LEGAL_TEXTS] + [NEWS_TEXTS[0][0]]
    assert len(read_docs(folder / "a.spacy", nlp, limit=0)) == 3


def test_read_docs_errors_name_the_file(tmp_path):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="missing.spacy does not exist"):
        read_docs(tmp_path / "missing.spacy", nlp, limit=0)
    bad = tmp_path / "bad.spacy"
    bad.write_bytes(b"not a docbin")
    with pytest.raises(ValueError, match="bad.spacy is not a readable DocBin"):
        read_docs(bad, nlp, limit=0)


# The registered reader


def test_reader_yields_the_ratio_and_is_deterministic(tmp_path):
    legal = _docbin(tmp_path / "legal.spacy", LEGAL_TEXTS, repeat=4)  # 12 docs
    news = _docbin(tmp_path / "news.spacy", NEWS_TEXTS, repeat=4)  # 20 docs
    make = registry.readers.get(READER)
    settings = dict(legal_path=legal, general_path=news, ratio=0.25, size=40, seed=7)
    first, again = make(**settings), make(**settings)
    epoch0, epoch1 = _read(first), _read(first)
    assert Counter(eg.reference.user_data[DOMAIN_KEY] for eg in epoch0) == {LEGAL: 10, GENERAL: 30}
    key = lambda egs: [(eg.reference.text, eg.reference.user_data["n"]) for eg in egs]  # noqa: E731
    # A fresh reader with the same seed replays the same epochs.
    assert key(_read(again)) == key(epoch0) and key(_read(again)) == key(epoch1)
    assert key(epoch0) != key(epoch1)  # each call is a new epoch
    assert key(_read(make(**{**settings, "seed": 8}))) != key(epoch0)
    for eg in epoch0:
        assert eg.predicted.text == eg.reference.text and not eg.predicted.has_annotation("ENT_IOB")
        if eg.reference.user_data[DOMAIN_KEY] == GENERAL:
            assert not eg.reference.has_annotation("ENT_IOB") and "general" in eg.reference.spans
        else:
            assert eg.reference.has_annotation("ENT_IOB") and "general" not in eg.reference.spans


def test_reader_default_size_and_limit(corpora):
    legal, news = corpora
    examples = _read(mixed_corpus_v1(legal_path=legal, general_path=news, ratio=0.5))
    assert [eg.reference.user_data[DOMAIN_KEY] for eg in examples] == [GENERAL, LEGAL] * 3
    assert sorted(eg.reference.text for eg in examples[1::2]) == sorted(t for t, _ in LEGAL_TEXTS)
    limited = _read(mixed_corpus_v1(legal_path=legal, general_path=news, ratio=0.5, limit=2))
    assert {eg.reference.text for eg in limited} == {t for t, _ in LEGAL_TEXTS[:2] + NEWS_TEXTS[:2]}


def test_reader_without_sampling_reads_everything_once_in_order(corpora):
    legal, news = corpora
    examples = _read(mixed_corpus_v1(legal_path=legal, general_path=news, ratio=None))
    assert [eg.reference.text for eg in examples] == [t for t, _ in LEGAL_TEXTS + NEWS_TEXTS]
    legal_only = _read(mixed_corpus_v1(legal_path=legal, ratio=None))
    assert [eg.reference.text for eg in legal_only] == [t for t, _ in LEGAL_TEXTS]


def test_reader_ents_target_with_label_map(corpora):
    legal, news = corpora
    reader = mixed_corpus_v1(legal_path=legal, general_path=news, ratio=None, general_target="ents", label_map=CONLL_TO_LEGAL)
    examples = _read(reader)
    labels = Counter(e.label_ for eg in examples for e in eg.reference.ents)
    assert labels == {"PERSON": 3, "LOCATION": 4, "BUSINESS": 1, "GOVERNMENT": 1, "COURT": 1, "LEGISLATION/ACT": 1}
    juventus = next(eg.reference for eg in examples if eg.reference.text.startswith("Juventus"))
    assert [t.ent_iob_ for t in juventus] == ["", "O", "", "O", "B", "O"]  # ORG -> missing


def test_reader_keeps_unknown_spaces_tokenization(tmp_path):
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["Acme", "Inc", "sued"])  # spaces unknown
    doc.ents = [doc[0:2].char_span(0, 8, label="BUSINESS")]
    DocBin(docs=[doc]).to_disk(tmp_path / "legal.spacy")
    (eg,) = _read(mixed_corpus_v1(legal_path=tmp_path / "legal.spacy", ratio=1.0))
    assert [t.text for t in eg.predicted] == ["Acme", "Inc", "sued"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(legal_path=None), "legal_path is not set"),
        (dict(general_target="both"), "general_target must be one of spans, ents"),
        (dict(general_key=""), "general_key must be"),
        (dict(ratio=2.0), "between 0 and 1"),
        (dict(general_path=None), "general_path is not set"),
        (dict(size=-3), "must be 0 or positive"),
        (dict(limit=-1), "must be 0 or positive"),
    ],
)
def test_reader_rejects_bad_settings(corpora, kwargs, message):
    legal, news = corpora
    settings = dict(legal_path=legal, general_path=news, ratio=0.5)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=message):
        mixed_corpus_v1(**settings)


def test_reader_with_empty_general_corpus_fails_when_read(tmp_path, corpora):
    legal, _ = corpora
    DocBin().to_disk(tmp_path / "empty.spacy")
    reader = mixed_corpus_v1(legal_path=legal, general_path=tmp_path / "empty.spacy", ratio=0.5)
    with pytest.raises(ValueError, match="general corpus is empty"):
        _read(reader)


# The augmenter option


def test_augmenter_null_reads_as_without_one(corpora):
    legal, news = corpora
    settings = dict(legal_path=legal, general_path=news, ratio=0.5, seed=3)
    key = lambda egs: [(eg.reference.text, [(e.start, e.end, e.label_) for e in eg.reference.ents]) for eg in egs]  # noqa: E731
    assert key(_read(registry.readers.get(READER)(**settings, augmenter=None))) == key(_read(mixed_corpus_v1(**settings)))


@pytest.mark.parametrize("target", ["spans", "ents"])
def test_augmenter_acts_on_both_domains_and_keeps_each_heads_annotation(corpora, target):
    legal, news = corpora
    upper = registry.augmenters.get("spacy_domain_ner.case_augmenter.v1")(upper=1.0, lower=0.0)
    label_map = CONLL_TO_LEGAL if target == "ents" else None
    settings = dict(legal_path=legal, general_path=news, ratio=None, general_target=target, label_map=label_map)
    plain, copies = _read(mixed_corpus_v1(**settings)), _read(mixed_corpus_v1(**settings, augmenter=upper))
    assert [eg.reference.text.upper() for eg in plain] == [eg.reference.text for eg in copies]
    assert [eg.predicted.text for eg in copies] == [eg.reference.text for eg in copies]
    for before, after in zip(plain, copies):
        assert [t.ent_iob_ for t in after.reference] == [t.ent_iob_ for t in before.reference]  # missing stays missing
        assert [(e.start, e.end, e.label_) for e in after.reference.ents] == [
            (e.start, e.end, e.label_) for e in before.reference.ents
        ]
        groups = lambda eg: {k: [(s.start, s.end, s.label_) for s in v] for k, v in eg.reference.spans.items()}  # noqa: E731
        assert groups(after) == groups(before)
    if target == "spans":
        assert sum(bool(eg.reference.spans.get("general")) for eg in copies) == 4  # the news entities, for general_ner


def test_rejects_an_augmenter_that_is_not_callable(corpora):
    legal, news = corpora
    with pytest.raises(ValueError, match="augmenter must be"):
        mixed_corpus_v1(legal_path=legal, general_path=news, augmenter="upper")
    with pytest.raises(ValueError, match="between 0 and 1"):
        mixed_corpus_v1(legal_path=legal, general_path=news, ratio=2.0)
