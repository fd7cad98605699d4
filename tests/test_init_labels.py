"""Entity labels read from a corpus for a component's initialize (spacy_domain_ner.entity_labels.v1)."""
import pytest
import spacy
from spacy.pipeline._parser_internals.ner import BiluoPushDown
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import registry

from spacy_domain_ner.training.init_labels import entity_labels, entity_labels_v1


def _docbin(path, labels):
    nlp = spacy.blank("en")
    docs = []
    for label in labels:
        doc = nlp.make_doc("Acme sued the Court today")
        doc.ents = [doc.char_span(0, 4, label=label)] if label else []
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def test_labels_of_a_file_and_of_a_directory(tmp_path):
    (tmp_path / "dir").mkdir()
    _docbin(tmp_path / "dir" / "a.spacy", ["BUSINESS", None])
    _docbin(tmp_path / "dir" / "b.spacy", ["COURT"])
    assert entity_labels(tmp_path / "dir" / "a.spacy") == ["BUSINESS"]
    assert entity_labels(tmp_path / "dir") == ["BUSINESS", "COURT"]


def test_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="missing.spacy does not exist"):
        entity_labels(tmp_path / "missing.spacy")
    with pytest.raises(ValueError, match="holds no entities"):
        entity_labels(_docbin(tmp_path / "empty.spacy", [None]))
    with pytest.raises(ValueError, match="path is not set"):
        entity_labels_v1(None)


def test_registered_reader_gives_what_the_ner_would_learn_from_examples(tmp_path):
    path = _docbin(tmp_path / "c.spacy", ["BUSINESS"] * 150 + ["COURT"])
    actions = registry.readers.get("spacy_domain_ner.entity_labels.v1")(path=str(path))
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    learned = BiluoPushDown.get_actions(examples=[Example(d, d) for d in docs])
    assert {a: set(c) for a, c in actions.items()} == {a: set(c) for a, c in learned.items()}
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    # As spaCy does with a streamed corpus: the first 100 examples only, and the labels given.
    ner.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs[:100]], nlp=nlp, labels=actions)
    assert ner.labels == ("BUSINESS", "COURT")
