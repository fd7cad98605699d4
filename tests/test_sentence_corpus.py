"""The sentence reader: pieces of n sentences, no cut inside an entity, nothing lost."""
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.util import registry

from spacy_domain_ner.training.augmenters import case_augmenter_v1
from spacy_domain_ner.training.sentence_corpus import sentence_corpus_v1, sentence_cuts, split_sentences

READER = "spacy_domain_ner.SentenceCorpus.v1"
# one Doc of five sentences (their words) and its entities as (start token, end token, label)
SENTS = [
    ["Acme", "Inc.", "sued", "the", "SEC", "."],
    ["John", "Smith", "appealed", "."],
    ["Nothing", "happened", "."],
    ["The", "Clean", "Air", "Act", "applies", "."],
    ["Delaware", "agreed", "."],
]
ENTS = [(0, 2, "BUSINESS"), (4, 5, "GOVERNMENT"), (6, 8, "PERSON"), (14, 17, "LEGISLATION/ACT"), (19, 20, "LOCATION")]


def _doc(vocab, *, sents=SENTS, ents=ENTS, sent_starts=True) -> Doc:
    words = [w for s in sents for w in s]
    starts = [i == 0 for s in sents for i in range(len(s))] if sent_starts else None
    doc = Doc(vocab, words=words, sent_starts=starts)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def _ents(docs: List[Doc]) -> List[Tuple[str, str]]:
    return [(e.text, e.label_) for d in docs for e in d.ents]


def test_cuts_every_sentence():
    doc = _doc(spacy.blank("en").vocab)
    assert sentence_cuts(doc, n_sents=1) == [0, 6, 10, 13, 19]
    assert sentence_cuts(doc, n_sents=2) == [0, 10, 19]
    assert sentence_cuts(doc, n_sents=5) == [0]


def test_pieces_keep_every_entity_and_token():
    doc = _doc(spacy.blank("en").vocab)
    doc.user_data["doc_id"] = "filing-1"
    for n in (1, 2, 3):
        pieces = split_sentences(doc, n_sents=n)
        assert [t.text for p in pieces for t in p] == [t.text for t in doc]
        assert _ents(pieces) == _ents([doc])
        assert all(p.user_data["doc_id"] == "filing-1" for p in pieces)
    assert [len(p) for p in split_sentences(doc, n_sents=2)] == [10, 9, 3]


def test_no_cut_inside_an_entity():
    # A span-format Doc whose sentencizer put a boundary inside "Acme Inc. Holdings".
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab, sents=[["We", "met", "Acme", "Inc."], ["Holdings", "today", "."], ["It", "rained", "."]],
               ents=[(2, 5, "BUSINESS")])
    pieces = split_sentences(doc, n_sents=1)
    assert [p.text.strip() for p in pieces] == ["We met Acme Inc. Holdings today .", "It rained ."]
    assert _ents(pieces) == [("Acme Inc. Holdings", "BUSINESS")]


def test_missing_annotation_and_span_groups_survive():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab)
    doc.set_ents([], default="missing")
    doc.set_ents([Span(doc, 0, 2, "BUSINESS")], default="unmodified")
    doc.spans["general"] = SpanGroup(doc, name="general", spans=[Span(doc, 6, 8, "PER")])
    first, second = split_sentences(doc, n_sents=1)[:2]
    assert [t.ent_iob_ for t in first] == ["B", "I", "", "", "", ""]
    assert [(s.text, s.label_) for s in second.spans["general"]] == [("John Smith", "PER")]


def test_nothing_to_cut():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab)
    assert split_sentences(doc, n_sents=0) == [doc]
    unsplit = _doc(vocab, sent_starts=False)
    assert split_sentences(unsplit, n_sents=1) == [unsplit]
    assert split_sentences(Doc(vocab, words=[]), n_sents=1)[0].text == ""
    with pytest.raises(ValueError, match="n_sents"):
        split_sentences(doc, n_sents=-1)


def _corpus(tmp_path: Path) -> Path:
    nlp = spacy.blank("en")
    db = DocBin(store_user_data=True)
    db.add(_doc(nlp.vocab))
    db.add(_doc(nlp.vocab, sents=SENTS[:2], ents=ENTS[:3]))
    path = tmp_path / "train.spacy"
    db.to_disk(path)
    return path


def test_reader_yields_sentence_examples(tmp_path):
    path = _corpus(tmp_path)
    nlp = spacy.blank("en")
    reader = registry.readers.get(READER)(path=path, n_sents=1)
    examples = list(reader(nlp))
    assert [eg.reference.text.strip() for eg in examples][:2] == ["Acme Inc. sued the SEC .", "John Smith appealed ."]
    assert len(examples) == 5 + 2
    assert sum(len(eg.reference.ents) for eg in examples) == len(ENTS) + 3
    # the predicted side is the raw text tokenized by the pipeline, as spacy.Corpus.v1 makes it
    assert all(eg.predicted.text == eg.reference.text and not eg.predicted.ents for eg in examples)
    whole = list(sentence_corpus_v1(path=path, n_sents=0)(nlp))
    assert [len(eg.reference) for eg in whole] == [22, 10]
    assert len(list(sentence_corpus_v1(path=path, n_sents=2, limit=1)(nlp))) == 3


def test_reader_applies_the_augmenter(tmp_path):
    path = _corpus(tmp_path)
    nlp = spacy.blank("en")
    reader = sentence_corpus_v1(path=path, n_sents=1, augmenter=case_augmenter_v1(upper=1.0, lower=0.0))
    examples = list(reader(nlp))
    assert len(examples) == 7
    assert all(eg.reference.text == eg.reference.text.upper() for eg in examples)
    assert _ents([eg.reference for eg in examples])[0] == ("ACME INC.", "BUSINESS")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"path": None}, "path is null"), ({"n_sents": -1}, "n_sents"), ({"limit": -2}, "limit"), ({"augmenter": 3}, "augmenter")],
)
def test_builder_checks_arguments(tmp_path, kwargs, message):
    arguments = {"path": tmp_path / "train.spacy", **kwargs}
    with pytest.raises(ValueError, match=message):
        sentence_corpus_v1(**arguments)


def test_reader_in_a_config(tmp_path):
    path = _corpus(tmp_path)
    config = spacy.util.load_config_from_str(
        f"""
[corpora]
[corpora.train]
@readers = "{READER}"
path = "{path}"
n_sents = 2
"""
    )
    reader = registry.resolve(config)["corpora"]["train"]
    assert [len(eg.reference) for eg in reader(spacy.blank("en"))] == [10, 9, 3, 10]


def test_no_cut_inside_a_span_group_span():
    vocab = spacy.blank("en").vocab
    doc = _doc(vocab)
    # a span over the end of sentence 2 and the start of sentence 3 keeps them together
    doc.spans["sc"] = SpanGroup(doc, name="sc", spans=[Span(doc, 8, 12, "CLAIM"), Span(doc, 19, 20, "PLACE")])
    pieces = split_sentences(doc, n_sents=1)
    assert [len(p) for p in pieces] == [6, 7, 6, 3]
    assert [[(s.text, s.label_) for s in p.spans["sc"]] for p in pieces] == [
        [], [("appealed . Nothing happened", "CLAIM")], [], [("Delaware", "PLACE")]
    ]
