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
from spacy_domain_ner.training.optimizers import HeadScaledOptimizer, adam_v1, encoder_lr_scale, is_transformer_param

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


@pytest.mark.parametrize("step_, delay, warmup, expected", [
    (0, 0, 0, 1.0),     # no delay, no warm-up (the default): the encoder from the start
    (0, 2, 0, 0.0), (1, 2, 0, 0.0), (2, 2, 0, 1.0),  # held back, then at once
    (2, 2, 4, 0.25), (4, 2, 4, 0.75), (5, 2, 4, 1.0), (50, 2, 4, 1.0),  # then a linear warm-up
    (0, 0, 2, 0.5),     # a warm-up without a delay
])
def test_encoder_lr_scale(step_, delay, warmup, expected):
    assert encoder_lr_scale(step_, delay=delay, warmup=warmup) == pytest.approx(expected)


def test_delay_holds_the_encoder_back_then_warms_it_up():
    optimizer = adam_v1(0.01, head_lr_scale=5.0, encoder_delay=2, encoder_warmup=4, use_averages=False, L2=0.0)
    assert isinstance(optimizer, HeadScaledOptimizer)
    encoder, head = (2, "encoder.weight"), (1, "W")
    for _ in range(2):  # the delay: the heads learn, the encoder neither moves nor starts its Adam moments
        assert (step(optimizer, head) != 0).all()
        assert (step(optimizer, encoder) == 0).all()
        optimizer.step_schedules()
    assert encoder not in optimizer.nr_update and encoder not in optimizer.mom1
    # the first encoder update is Adam's first step (lr * sign) at a quarter of the rate, the head's at 5x
    numpy.testing.assert_allclose(step(optimizer, encoder), -0.01 * 0.25, rtol=1e-4)
    assert optimizer.nr_update[encoder] == 1
    for _ in range(3):
        optimizer.step_schedules()
    # warm-up over: a parameter's first step is the full rate
    numpy.testing.assert_allclose(step(optimizer, (2, "encoder.bias")), -0.01, rtol=1e-4)
    # a delay and warm-up of 0 (the defaults) change nothing
    default = adam_v1(0.01, head_lr_scale=5.0, use_averages=False, L2=0.0)
    zero = adam_v1(0.01, head_lr_scale=5.0, encoder_delay=0, encoder_warmup=0, use_averages=False, L2=0.0)
    assert (default.encoder_delay, default.encoder_warmup) == (0, 0)
    for key in (encoder, head):
        numpy.testing.assert_allclose(step(zero, key), step(default, key))


@pytest.mark.parametrize("name, value", [("encoder_delay", -1), ("encoder_warmup", -5), ("encoder_delay", 1.5), ("encoder_warmup", True)])
def test_rejects_bad_steps(name, value):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 0"):
        adam_v1(0.01, **{name: value})


def test_delay_in_a_real_pipeline_freezes_the_transformer(tmp_path, one_torch_thread):
    bert = save_tiny_bert(tmp_path, [TEXT])
    config = load_config(CONFIGS / "ner_hybrid.cfg", overrides={
        "paths.transformer": str(bert), "training.optimizer.encoder_delay": 3, "training.optimizer.encoder_warmup": 2,
    }, interpolate=True)
    resolved = registry.resolve(config["training"])["optimizer"]
    assert (resolved.encoder_delay, resolved.encoder_warmup, resolved.head_lr_scale) == (3, 2, 10.0)
    nlp = load_model_from_config(config, auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    optimizer = nlp.initialize(lambda: examples)
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    ner_model = nlp.get_pipe("ner").model

    def snapshot():
        encoder = {name: p.detach().clone() for name, p in module.named_parameters()}
        head = [node.get_param(n).copy() for node in ner_model.walk() for n in node.param_names]  # walk() includes ner_model
        return encoder, head

    encoder0, head0 = snapshot()
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, losses={})
        optimizer.step_schedules()
    encoder1, head1 = snapshot()
    assert all((encoder1[n] == encoder0[n]).all() for n in encoder0)  # held back
    assert any(not numpy.array_equal(a, b) for a, b in zip(head0, head1))  # the heads learned
    assert not any(is_transformer_param(k) for k in optimizer.nr_update)
    for _ in range(2):
        nlp.update(examples, sgd=optimizer, losses={})
        optimizer.step_schedules()
    encoder2, _ = snapshot()
    assert any(not (encoder2[n] == encoder0[n]).all() for n in encoder0)  # then it learns
