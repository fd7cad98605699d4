"""Tests of spacy_domain_ner.models.memo: a prediction reused once by a later one on the same Docs."""
from functools import partial

import numpy
import pytest
import spacy
from spacy_transformers import install_extensions
from spacy.training import Example
from thinc.api import Model, concatenate

from spacy_domain_ner.models.case_features import build_case_tok2vec, case_aware_listener
from spacy_domain_ner.models.memo import MAX_ENTRIES, Memo, keeping_predictions, memo_of, memoized_forward

from conftest import LEGAL_TEXTS, save_tiny_bert


def _counting(calls):
    """A node whose forward counts its calls and returns a new array per Doc each time."""

    def forward(model, docs, is_train):
        calls.append(len(docs))
        return [model.ops.alloc2f(len(d), 2) + len(calls) for d in docs], lambda d_out: []

    return forward


def _memoized(calls):
    return Model("memoized", partial(memoized_forward, forward=_counting(calls), memo=Memo()))


def test_second_prediction_on_the_same_docs_is_reused_once():
    nlp = spacy.blank("en")
    docs = [nlp("Acme Inc. sued."), nlp("The Fund")]
    calls = []
    model = _memoized(calls)
    model.predict(docs)
    model.predict(docs)
    assert calls == [2, 2]  # outside keeping_predictions nothing is kept
    with keeping_predictions(model):
        first = model.predict(docs)
    second = model.predict(docs)
    assert calls == [2, 2, 2]  # computed once
    assert all(numpy.array_equal(a, b) for a, b in zip(first, second))
    third = model.predict(docs)  # the memo served its one reuse
    assert calls == [2, 2, 2, 2]
    assert not numpy.array_equal(first[0], third[0])
    assert memo_of(model).hits == 1 and memo_of(model).keeping == 0


def test_other_docs_a_new_transformer_output_or_training_miss():
    install_extensions()  # Doc._.trf_data, as a Transformer component installs it
    nlp = spacy.blank("en")
    docs = [nlp("Acme Inc. sued.")]
    calls = []
    model = _memoized(calls)
    with keeping_predictions(model):
        model.predict(docs)
    model.predict([nlp("Acme Inc. sued.")])  # equal text, another Doc
    assert calls == [1, 1]
    docs[0]._.trf_data = object()  # the transformer ran again on this Doc
    model.predict(docs)
    assert calls == [1, 1, 1]
    with keeping_predictions(model):
        model.predict(docs)
        outputs, backprop = model.begin_update(docs)  # training computes and clears the memo
    assert calls == [1, 1, 1, 1, 1] and backprop(outputs) == []
    model.predict(docs)
    assert len(calls) == 6
    with keeping_predictions(model):
        model.predict(docs)
    _, backprop = model(docs, is_train=False)  # the hit
    assert len(calls) == 7
    with pytest.raises(ValueError, match="no backward pass"):
        backprop([])


def test_keeps_a_batch_worth_of_parts_and_forgets_the_oldest():
    nlp = spacy.blank("en")
    parts = [[nlp(f"Doc {i}")] for i in range(MAX_ENTRIES + 1)]
    calls = []
    model = _memoized(calls)
    with keeping_predictions(model):
        for part in parts:
            model.predict(part)
    for part in parts[1:]:  # all but the oldest come back from the memo
        model.predict(part)
    assert len(calls) == MAX_ENTRIES + 1
    model.predict(parts[0])
    assert len(calls) == MAX_ENTRIES + 2


def test_case_aware_listener_loads_what_thinc_concatenate_saved():
    nlp = spacy.blank("en")
    docs = [nlp("SCBV sued Acme Inc.")]
    settings = dict(width=6, attrs=["ORTH", "SHAPE"], rows=[50, 20], depth=1, window_size=1, include_static_vectors=False)

    def listener():
        return Model("fixed", lambda model, X, is_train: ([model.ops.alloc2f(len(d), 4) + 1 for d in X], lambda d: []),
                     dims={"nO": 4})

    saved = concatenate(listener(), build_case_tok2vec(**settings)).initialize(X=docs)
    model = case_aware_listener(listener(), build_case_tok2vec(**settings)).from_bytes(saved.to_bytes())
    numpy.testing.assert_array_equal(saved.predict(docs)[0], model.predict(docs)[0])
    assert memo_of(model) is not None


def test_confidence_and_ner_compute_the_tok2vec_once(tmp_path, one_torch_thread):
    (tmp_path / "bert").mkdir()
    bert = save_tiny_bert(tmp_path / "bert", [t for t, _ in LEGAL_TEXTS])
    config = spacy.util.load_config("configs/ner_hybrid.cfg", overrides={"paths.transformer": str(bert)}, interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in LEGAL_TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(20):
        nlp.update(examples, sgd=optimizer, losses={})
        optimizer.step_schedules()
    texts = [t for t, _ in LEGAL_TEXTS] * 3
    memo = memo_of(next(n for n in nlp.get_pipe("ner").model.walk() if n.name == "case_aware_listener"))
    plain = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=4)]
    assert not any(memo.entries.values())  # ner alone keeps nothing
    nlp.add_pipe("entity_confidence", before="ner")
    hits = memo.hits
    docs = list(nlp.pipe(texts, batch_size=4))
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs] == plain
    assert all(ent._.confidence is not None for doc in docs for ent in doc.ents)
    # every prediction of ner took the replay's output: one hit per part of each batch of 4 (parts of 2)
    assert memo.hits - hits == len(texts) // 2 + len(texts) % 2
    assert not any(memo.entries.values())  # each kept output was taken
