"""spacy_domain_ner.training.optimizers: discriminative learning rates for the heads."""
from pathlib import Path

import numpy
import pytest
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, registry
from thinc.api import Adam

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import save_tiny_bert
from spacy_domain_ner.training.optimizers import HeadScaledOptimizer, adam_v1, is_transformer_param

CONFIGS = Path(__file__).parent.parent / "configs"


def test_is_transformer_param():
    assert is_transformer_param((3, "encoder.layer.0.attention.self.query.weight"))
    assert not is_transformer_param((3, "W")) and not is_transformer_param((3, "hidden_b"))


def step(optimizer, key, value=1.0):
    weights = numpy.zeros((4,), dtype="float32")
    gradient = numpy.full((4,), value, dtype="float32")
    weights, _ = optimizer(key, weights, gradient)
    return weights


def test_heads_move_head_lr_scale_times_further():
    optimizer = adam_v1(0.01, head_lr_scale=5.0, use_averages=False, L2=0.0)
    assert isinstance(optimizer, HeadScaledOptimizer)
    head, transformer = step(optimizer, (1, "W")), step(optimizer, (2, "encoder.weight"))
    # Adam's first step is lr * sign(gradient): the ratio is exactly the scale
    numpy.testing.assert_allclose(head / transformer, 5.0, rtol=1e-4)
    # scale 1 is thinc's Adam.v1
    plain = Adam(0.01, use_averages=False, L2=0.0)
    numpy.testing.assert_allclose(step(adam_v1(0.01, head_lr_scale=1.0, use_averages=False, L2=0.0), (1, "W")), step(plain, (1, "W")))


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_rejects_non_positive_scale(scale):
    with pytest.raises(ValueError, match="head_lr_scale must be > 0"):
        adam_v1(0.01, head_lr_scale=scale)


def test_registered_and_keys_of_a_real_pipeline(tmp_path, one_torch_thread):
    # the heuristic is checked on a real transformer pipeline: its torch parameters are dotted, the NER's are not
    bert = save_tiny_bert(tmp_path, [TEXT])
    config = load_config(CONFIGS / "ner_trf.cfg", overrides={
        "paths.transformer": str(bert), "training.optimizer.@optimizers": "spacy_domain_ner.Adam.v1",
        "training.optimizer.head_lr_scale": 4.0,
    }, interpolate=True)
    assert registry.resolve(config["training"])["optimizer"].head_lr_scale == 4.0
    nlp = load_model_from_config(config, auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    optimizer = nlp.initialize(lambda: examples)
    assert isinstance(optimizer, HeadScaledOptimizer)
    for _ in range(2):  # as spacy train does; the transformer's parameters reach the optimizer from the second update
        nlp.update(examples, sgd=optimizer, losses={})
        optimizer.step_schedules()
    keys = list(optimizer.nr_update)
    assert any(is_transformer_param(k) for k in keys) and any(not is_transformer_param(k) for k in keys)
    torch_names = {name for _, name in keys if is_transformer_param((0, name))}
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    assert torch_names <= {name for name, _ in module.named_parameters()}
