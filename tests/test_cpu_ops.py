"""Tests of spacy_domain_ner.models.cpu_ops: the pipeline's CPU thinc layers multiply through numpy."""
import pytest
import spacy
from spacy.training import Example
from spacy.util import registry
from thinc.api import Model, NumpyOps, Ops

from spacy_domain_ner.models.cpu_ops import numpy_matmul_v1, set_cpu_ops, use_numpy_matmul

from conftest import LEGAL_TEXTS, load_benchmark


def _trained_ner():
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in LEGAL_TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    return nlp


def test_cpu_layers_lose_blis_and_keep_their_entities(one_torch_thread):
    nlp = _trained_ner()
    nodes = list(nlp.get_pipe("ner").model.walk())
    assert any(isinstance(n.ops, NumpyOps) and n.ops.use_blis for n in nodes)  # thinc's default on CPU
    texts = [text for text, _ in LEGAL_TEXTS]
    before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    assert any(before)
    other = Model("other_ops", lambda model, X, is_train: (X, lambda d: d))
    other.ops = Ops()  # not NumpyOps (as CupyOps on a GPU): left alone
    nlp.get_pipe("ner").model.layers.append(other)
    assert use_numpy_matmul(nlp) is nlp
    assert all(not n.ops.use_blis for n in nodes if isinstance(n.ops, NumpyOps))
    assert type(other.ops) is Ops
    nlp.get_pipe("ner").model.layers.pop()
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)] == before
    set_cpu_ops(nlp, NumpyOps())  # back to BLIS, as benchmarks/cpu_matmul.py compares
    assert all(n.ops.use_blis for n in nodes)


def test_registered_callback_applies_at_creation_and_load(tmp_path):
    assert registry.callbacks.get("spacy_domain_ner.numpy_matmul.v1") is numpy_matmul_v1
    nlp = _trained_ner()
    nlp.config["nlp"]["after_pipeline_creation"] = {"@callbacks": "spacy_domain_ner.numpy_matmul.v1"}
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    ops = [n.ops for n in loaded.get_pipe("ner").model.walk()]
    assert ops and all(isinstance(o, NumpyOps) and not o.use_blis for o in ops)


def test_benchmark_counts_differing_entities_and_confidence_changes():
    bench = load_benchmark("cpu_matmul")
    blis = [[(0, 4, "ORG", 0.9), (10, 14, "LOC", None)], [(2, 5, "PER", 0.5)]]
    numpy_ = [[(0, 4, "ORG", 0.8999), (10, 14, "LOC", 0.7)], [(2, 6, "PER", 0.5)]]
    result = bench.compare(blis, numpy_)
    assert result["entities"] == 3 and result["differing"] == 2
    assert result["largest_confidence_change"] == pytest.approx(0.0001)
