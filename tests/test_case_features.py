"""Tests of spacy_domain_ner.models.case_features: a transformer listener next to a cased hash-embedding tok2vec."""
import numpy
import pytest
import spacy
from spacy.training import Example
from spacy.util import registry
from thinc.api import Model, NumpyOps

from spacy_domain_ner.models.case_features import (
    build_case_tok2vec,
    case_aware_listener,
    case_aware_listener_v1,
)

from conftest import LEGAL_TEXTS, save_tiny_bert


def _fixed(width, d_docs=()):
    """A stand-in listener: a fixed vector per token whatever its case (like an uncased encoder).
    Its backward pass returns `d_docs`: None as a transformer's non-last listener does."""

    def forward(model, docs, is_train):
        return [model.ops.alloc2f(len(d), width) + 1.0 for d in docs], lambda d_out: d_docs if d_docs is None else []

    return Model("fixed", forward, dims={"nO": width})


def test_case_side_tells_case_apart_where_listener_cannot():
    nlp = spacy.blank("en")
    model = case_aware_listener(_fixed(4), build_case_tok2vec(
        width=8, attrs=["ORTH", "SHAPE"], rows=[50, 20], depth=1, window_size=1, include_static_vectors=False))
    docs = [nlp("SCBV sued"), nlp("scbv sued")]
    model.initialize(X=docs)
    upper, lower = model.predict(docs)
    assert upper.shape == lower.shape == (2, 12)
    numpy.testing.assert_array_equal(upper[:, :4], lower[:, :4])  # the listener's part: the same
    assert not numpy.allclose(upper[0, 4:], lower[0, 4:])  # the cased part sees SCBV vs scbv


@pytest.mark.parametrize("kwargs", [
    {"width": 0}, {"attrs": [], "rows": []}, {"attrs": ["ORTH"], "rows": [10, 20]}, {"rows": [0, 1, 1, 1, 1]},
    {"depth": -1}, {"window_size": 0},
])
def test_builder_checks_arguments(kwargs):
    with pytest.raises(ValueError):
        case_aware_listener_v1(listener=_fixed(4), **kwargs)


def test_registered_and_depth_zero():
    assert registry.architectures.get("spacy_domain_ner.CaseAwareListener.v1") is case_aware_listener_v1
    model = case_aware_listener_v1(listener=_fixed(4), width=6, depth=0)
    docs = [spacy.blank("en")("Acme Inc.")]
    model.initialize(X=docs)
    assert model.predict(docs)[0].shape == (2, 10)


def test_serves_a_listener_that_is_not_the_last():
    docs = [spacy.blank("en")("SCBV sued Acme Inc.")]
    settings = dict(width=6, attrs=["ORTH", "SHAPE"], rows=[50, 20], depth=1)
    case = build_case_tok2vec(window_size=1, include_static_vectors=False, **settings)
    # the plain concatenation cannot add None (the listener's) to [] (the cased side's)
    plain = case_aware_listener(_fixed(4, None), case)
    plain.initialize(X=docs)
    outputs, backprop = plain.begin_update(docs)
    with pytest.raises(TypeError):
        backprop([plain.ops.alloc2f(*y.shape) + 1 for y in outputs])
    model = case_aware_listener_v1(listener=_fixed(4, None), **settings)
    model.initialize(X=docs)
    assert model.get_dim("nO") == 10
    outputs, backprop = model.begin_update(docs)
    assert outputs[0].shape == (4, 10)
    embed = next(n for n in model.walk() if n.name == "hashembed")
    assert backprop([model.ops.alloc2f(*y.shape) + 1 for y in outputs]) == []
    assert numpy.abs(embed.get_grad("E")).sum() > 0  # the cased side still learns
    # a last listener's gradient ([] for Docs) passes through unchanged
    outputs, backprop = case_aware_listener_v1(listener=_fixed(4), **settings).initialize(X=docs).begin_update(docs)
    assert backprop([model.ops.alloc2f(*y.shape) for y in outputs]) == []


def test_hybrid_pipeline_trains_and_round_trips(tmp_path, one_torch_thread):
    (tmp_path / "bert").mkdir()
    bert = save_tiny_bert(tmp_path / "bert", [t for t, _ in LEGAL_TEXTS] + ["Form 10-K."])
    config = spacy.util.load_config("configs/ner_hybrid.cfg", overrides={"paths.transformer": str(bert)}, interpolate=True)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in LEGAL_TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    case_params = [n for n in nlp.get_pipe("ner").model.walk() if n.name == "hashembed"]
    assert case_params, "the NER's tok2vec has the cased hash embeddings"
    table = case_params[0].get_param("E").copy()
    for _ in range(3):  # as spaCy's training loop: the warm-up schedule starts at rate 0
        losses = nlp.update(examples, sgd=optimizer, losses={})
        optimizer.step_schedules()
    assert losses["ner"] > 0
    assert not numpy.array_equal(table, case_params[0].get_param("E"))  # the cased side learns
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    # the recipe's CPU layers multiply through numpy (models/cpu_ops.py), as trained, so when loaded
    assert all(not n.ops.use_blis for n in reloaded.get_pipe("ner").model.walk() if isinstance(n.ops, NumpyOps))
    text = LEGAL_TEXTS[0][0]
    assert [(e.text, e.label_) for e in reloaded(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]
    assert [t.text for t in reloaded("Form 10-K.")][-2:] == ["K", "."]  # the legal tokenizer rule came along
