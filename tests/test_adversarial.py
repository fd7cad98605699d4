"""Adversarial training (FGM/PGD) on a CNN and a tiny-BERT transformer pipeline."""
import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy
import pytest
import spacy
import srsly
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train, train_while_improving
from spacy.util import fix_random_seed, load_config, load_model_from_config, registry
from thinc.api import Adam, Config

from conftest import LEGAL_TEXTS, save_tiny_bert
from spacy_domain_ner.training.adversarial.gradients import merge_gradients, take_gradients
from spacy_domain_ner.training.adversarial.perturbation import next_delta, unit_direction
from spacy_domain_ner.training.adversarial.settings import check_settings
from spacy_domain_ner.training.adversarial.tables import find_embedding_tables
from spacy_domain_ner.training.adversarial.update import AdversarialState, adversarial_passes, get_adversarial_state, install_adversarial_training
from spacy_domain_ner.training.loggers import adversarial_columns

CONFIGS = Path(__file__).parent.parent / "configs"
CALLBACK = "spacy_domain_ner.adversarial_training.v1"
LOGGER = "spacy_domain_ner.ConsoleLogger.v1"
TEXTS = LEGAL_TEXTS + [
    ("Acme Holdings, Inc. paid the Commission in Delaware.",
     [(0, 19, "BUSINESS"), (43, 51, "LOCATION")]),
    ("The Court of Appeals heard John Smith.", [(4, 20, "COURT"), (27, 37, "PERSON")]),
]
CNN_TABLES = ["tok2vec.NORM", "tok2vec.PREFIX", "tok2vec.SUFFIX", "tok2vec.SHAPE"]
TRF_TABLES = ["transformer.embeddings.word_embeddings"]
UPDATE = {"drop": 0.0}


def _settings(**overrides: Any):
    values = dict(method="fgm", epsilon=0.05, alpha=0.05, steps=3, start_step=0, tables=None, enabled=True)
    values.update(overrides)
    return check_settings(**values)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory) -> Path:
    """A tiny BERT (no dropout, so passes are deterministic) with its tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), (text for text, _ in TEXTS))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus")
    nlp = spacy.blank("en")
    db = DocBin()
    for text, spans in TEXTS:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=label) for s, e, label in spans]
        db.add(doc)
    db.to_disk(path / "train.spacy")
    db.to_disk(path / "dev.spacy")
    return path


def _config(kind: str, bert_dir: Path, *, interpolate: bool = True) -> Config:
    overrides = {"paths.transformer": str(bert_dir)} if kind == "trf" else {}
    return load_config(CONFIGS / f"ner_{kind}.cfg", overrides=overrides, interpolate=interpolate)


def _examples(nlp) -> List[Example]:
    return [Example.from_dict(nlp.make_doc(text), {"entities": spans}) for text, spans in TEXTS]


def _steps(nlp, examples: List[Example], n: int, optimizer) -> None:
    # As spaCy's loop: sgd=False updates, then finish_update on each trainable pipe.
    for _ in range(n):
        nlp.update(examples, sgd=False, losses={}, **UPDATE)
        for _, proc in nlp.pipeline:
            if getattr(proc, "is_trainable", False):
                proc.finish_update(optimizer)


def _trained(kind: str, bert_dir: Path, *, steps: int = 8):
    """A pipeline trained a few steps (so its losses are not those of a blank model)."""
    fix_random_seed(0)
    nlp = load_model_from_config(_config(kind, bert_dir), auto_fill=True)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    _steps(nlp, examples, steps, Adam(0.001))
    return nlp, examples


def _seeded_update(nlp, examples: List[Example]) -> None:
    fix_random_seed(0)  # the parser's update draws random numbers
    nlp.update(examples, sgd=False, losses={}, **UPDATE)


def _seed_passes(state: AdversarialState, record: Optional[List] = None) -> None:
    """Fix the random state before every pass (the parser's update draws random
    numbers), and optionally record the table weights each pass sees."""
    update = state.update

    def seeded(*args, **kwargs):
        if record is not None:
            record.append([_copy(t.get_weights()) for t in state.tables])
        fix_random_seed(0)
        return update(*args, **kwargs)

    state.update = seeded


def _copy(array: Any) -> numpy.ndarray:
    return array.detach().cpu().numpy().copy() if isinstance(array, torch.Tensor) else numpy.array(array)


def _same_array(a: Any, b: Any) -> bool:
    # Parameter.data is a new Python object at each access, on the same storage.
    return a.data_ptr() == b.data_ptr() if isinstance(a, torch.Tensor) else a is b


def _install(nlp, **overrides: Any) -> AdversarialState:
    install_adversarial_training(nlp, settings=_settings(**overrides))
    state = get_adversarial_state(nlp)
    assert state is not None
    return state


def _all_grads(nlp) -> Dict[Any, numpy.ndarray]:
    grads = {}
    for _, proc in nlp.pipeline:
        for node in proc.model.walk():
            for name in node.param_names:
                if node.has_grad(name):
                    grads[(node.id, name)] = _copy(node.get_grad(name))
            for shim in node.shims:
                for pname, param in shim._model.named_parameters():
                    if param.grad is not None:
                        grads[(shim.id, pname)] = _copy(param.grad)
    return grads


# Settings


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"method": "fsgm"}, "method must be one of"),
        ({"epsilon": 0.0}, "epsilon must be a finite number > 0"),
        ({"epsilon": -1.0}, "epsilon must be a finite number > 0"),
        ({"epsilon": float("nan")}, "epsilon must be a finite number > 0"),
        ({"method": "pgd", "alpha": 0.0}, "alpha"),
        ({"method": "pgd", "alpha": -0.1}, "alpha"),
        ({"steps": 0}, "steps"),
        ({"start_step": -1}, "start_step must be an integer >= 0"),
        ({"tables": []}, "tables is empty"),
    ],
)
def test_bad_setting_stops_when_built(overrides, message):
    create = registry.callbacks.get(CALLBACK)
    with pytest.raises(ValueError, match=message):
        create(**overrides)


def test_fgm_ignores_alpha_and_builder_returns_installer():
    callback = registry.callbacks.get(CALLBACK)(method="fgm", alpha=0.0, tables=["a.b", "a.b"])
    settings = callback.keywords["settings"]
    assert settings.method == "fgm" and settings.alpha == 0.0 and settings.tables == ("a.b",)


def test_bad_setting_in_config_stops_init_nlp(bert_dir, corpus):
    config = _config("cnn", bert_dir, interpolate=False)
    config["paths"]["train"] = config["paths"]["dev"] = str(corpus / "train.spacy")
    config["initialize"]["after_init"] = {"@callbacks": CALLBACK, "method": "xyz"}
    with pytest.raises(ValueError, match="method must be one of"):
        init_nlp(config)


def test_no_embedding_table_stops_at_after_init():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    with pytest.raises(ValueError, match="found no embedding table"):
        install_adversarial_training(nlp, settings=_settings())


def test_frozen_component_tables_are_skipped(bert_dir):
    config = _config("cnn", bert_dir)
    config["training"]["frozen_components"] = ["tok2vec"]
    config["initialize"]["after_init"] = {"@callbacks": CALLBACK}
    nlp = load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp)
    with pytest.raises(ValueError, match="frozen and disabled components are skipped"):
        nlp.initialize(lambda: examples)


def test_unknown_table_stops_at_after_init(bert_dir):
    config = _config("cnn", bert_dir)
    config["initialize"]["after_init"] = {"@callbacks": CALLBACK, "tables": ["tok2vec.LEMMA"]}
    nlp = load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp)
    with pytest.raises(ValueError, match=r"unknown embedding table\(s\) \['tok2vec.LEMMA'\].*tok2vec.NORM"):
        nlp.initialize(lambda: examples)


def test_disabled_callback_installs_nothing(bert_dir):
    config = _config("cnn", bert_dir)
    config["initialize"]["after_init"] = {"@callbacks": CALLBACK, "enabled": False}
    nlp = load_model_from_config(config, auto_fill=True)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    assert get_adversarial_state(nlp) is None and "update" not in nlp.__dict__


# Tables and pure functions


@pytest.mark.parametrize("kind,names", [("cnn", CNN_TABLES), ("trf", TRF_TABLES)])
def test_tables_found_and_selected(kind, names, bert_dir):
    nlp, _ = _trained(kind, bert_dir, steps=0)
    assert list(find_embedding_tables(nlp)) == names
    state = _install(nlp, tables=names[:1])
    assert [t.name for t in state.tables] == names[:1]
    if kind == "trf":
        hf = nlp.get_pipe("transformer").model.transformer
        assert state.tables[0].param is hf.get_input_embeddings().weight


def test_unit_direction_and_pgd_projection():
    assert unit_direction(None) is None
    assert unit_direction(numpy.zeros(3, dtype="f")) is None
    assert unit_direction(numpy.array([1.0, numpy.inf], dtype="f")) is None
    numpy.testing.assert_allclose(unit_direction(numpy.array([3.0, 4.0], dtype="f")), [0.6, 0.8], rtol=1e-6)
    assert torch.allclose(unit_direction(torch.tensor([0.0, 2.0])), torch.tensor([0.0, 1.0]))
    u, v = numpy.array([1.0, 0.0], dtype="f"), numpy.array([0.0, 1.0], dtype="f")
    fgm = _settings(epsilon=2.0)
    numpy.testing.assert_allclose(next_delta(None, u, settings=fgm), [2.0, 0.0])
    pgd = _settings(method="pgd", epsilon=1.0, alpha=0.8)
    d1 = next_delta(None, u, settings=pgd)
    numpy.testing.assert_allclose(d1, [0.8, 0.0], rtol=1e-6)
    d2 = next_delta(d1, v, settings=pgd)  # ||(0.8, 0.8)|| > 1: projected onto the ball
    numpy.testing.assert_allclose(d2, [math.sqrt(0.5), math.sqrt(0.5)], rtol=1e-6)
    assert next_delta(d2, None, settings=pgd) is d2


def test_take_and_merge_gradients(bert_dir):
    nlp, examples = _trained("cnn", bert_dir, steps=1)
    _seeded_update(nlp, examples)
    before = _all_grads(nlp)
    saved = take_gradients(nlp)
    assert all(not g.any() for g in _all_grads(nlp).values())
    _seeded_update(nlp, examples)
    fresh = _all_grads(nlp)
    merge_gradients(saved, keep=False)
    after_discard = _all_grads(nlp)
    assert all(numpy.array_equal(before[k], after_discard[k]) for k in before)
    saved = take_gradients(nlp)
    _seeded_update(nlp, examples)
    merge_gradients(saved, keep=True)
    merged = _all_grads(nlp)
    assert any(fresh[k].any() for k in fresh)
    for key in before:
        numpy.testing.assert_allclose(merged[key], before[key] + fresh[key], rtol=1e-5, atol=1e-7)


# The attack


@pytest.mark.parametrize("kind", ["cnn", "trf"])
@pytest.mark.parametrize("method", ["fgm", "pgd"])
def test_perturbation_norm_direction_and_loss(kind, method, bert_dir):
    nlp, examples = _trained(kind, bert_dir)
    eps = 0.05
    state = _install(nlp, method=method, epsilon=eps, alpha=eps, steps=3)
    record: List = []
    _seed_passes(state, record)
    take_gradients(nlp)
    fix_random_seed(0)
    clean = state.update(examples, sgd=False, losses={}, **UPDATE)
    clean_grads = [_copy(t.get_grad()) for t in state.tables]
    take_gradients(nlp)
    record.clear()
    losses = nlp.update(examples, sgd=False, losses={}, **UPDATE)
    assert losses["ner"] == pytest.approx(clean["ner"])
    assert set(losses) == {*clean, *(f"adv_{name}" for name in clean)}
    # Norms: FGM exactly eps per table; PGD with alpha = eps stays on the ball.
    assert set(state.last_norms) == {t.name for t in state.tables}
    for norm in state.last_norms.values():
        assert norm == pytest.approx(eps, rel=1e-4)
    original, perturbed = record[0], record[-1]
    assert len(record) == (1 + 3 if method == "pgd" else 1 + 1)  # clean + perturbed passes
    for table, w0, w1, g in zip(state.tables, original, perturbed, clean_grads):
        applied = w1 - w0
        assert numpy.linalg.norm(applied) == pytest.approx(eps, rel=1e-3)
        if method == "fgm":  # r = eps * g / ||g|| with THIS batch's clean gradient
            numpy.testing.assert_allclose(applied, eps * g / numpy.linalg.norm(g), atol=2e-6)
    # Adversarial: the loss rises, much more than under a random perturbation of the same norm.
    gain = losses["adv_ner"] - clean["ner"]
    assert gain > 0
    rng = numpy.random.RandomState(0)
    directions = []
    for table in state.tables:
        noise = rng.normal(size=tuple(table.get_weights().shape)).astype("float32")
        if isinstance(table.get_weights(), torch.Tensor):
            noise = torch.from_numpy(noise)
        directions.append(unit_direction(noise))
    state.settings = _settings(epsilon=eps)
    random_losses = adversarial_passes(state, examples, directions=directions, kwargs=UPDATE)
    assert gain > 5 * abs(random_losses["ner"] - clean["ner"])


@pytest.mark.parametrize("kind", ["cnn", "trf"])
@pytest.mark.parametrize("method", ["fgm", "pgd"])
def test_gradients_match_textbook_attack(kind, method, bert_dir):
    """Clean gradients plus the final perturbed pass's, intermediate PGD passes discarded."""
    nlp, examples = _trained(kind, bert_dir, steps=3)
    state = _install(nlp, method=method, epsilon=0.05, alpha=0.03, steps=3)
    plain = state.update
    _seed_passes(state)
    tables = state.tables

    def snapshot():
        return {k: v.copy() for k, v in _all_grads(nlp).items()}

    def run_plain():
        fix_random_seed(0)
        plain(examples, sgd=False, losses={}, **UPDATE)

    # Reference: plain updates, gradient of each pass by subtraction.
    take_gradients(nlp)
    run_plain()
    originals = [t.get_weights() for t in tables]
    directions = [unit_direction(t.get_grad() * 1.0) for t in tables]
    deltas: List = [None] * len(tables)
    n_passes = 3 if method == "pgd" else 1
    for k in range(n_passes):
        deltas = [next_delta(d, u, settings=state.settings) for d, u in zip(deltas, directions)]
        for table, w, d in zip(tables, originals, deltas):
            table.set_weights(w + d)
        if k < n_passes - 1:
            before = [t.get_grad() * 1.0 for t in tables]
            grads = snapshot()
            run_plain()
            directions = [unit_direction(t.get_grad() - b) for t, b in zip(tables, before)]
            for table, w in zip(tables, originals):
                table.set_weights(w)
            take_gradients(nlp)  # discard: put the snapshot back
            _restore(nlp, grads)
        else:
            run_plain()
    for table, w in zip(tables, originals):
        table.set_weights(w)
    expected = _all_grads(nlp)
    take_gradients(nlp)
    nlp.update(examples, sgd=False, losses={}, **UPDATE)
    actual = _all_grads(nlp)
    assert expected.keys() == actual.keys()
    for key in expected:
        numpy.testing.assert_allclose(actual[key], expected[key], rtol=1e-3, atol=1e-5)


def _restore(nlp, grads: Dict[Any, numpy.ndarray]) -> None:
    for _, proc in nlp.pipeline:
        for node in proc.model.walk():
            for name in node.param_names:
                if (node.id, name) in grads:
                    node.set_grad(name, node.ops.asarray(grads[(node.id, name)]))
            for shim in node.shims:
                for pname, param in shim._model.named_parameters():
                    if (shim.id, pname) in grads:
                        param.grad = torch.from_numpy(grads[(shim.id, pname)]).to(param.device)


@pytest.mark.parametrize("kind", ["cnn", "trf"])
@pytest.mark.parametrize("method", ["fgm", "pgd"])
def test_weights_bit_identical_after_step(kind, method, bert_dir):
    nlp, examples = _trained(kind, bert_dir, steps=1)
    state = _install(nlp, method=method, epsilon=0.5, alpha=0.3)
    objects = [t.get_weights() for t in state.tables]
    values = [_copy(w) for w in objects]
    losses = nlp.update(examples, sgd=False, losses={}, **UPDATE)
    assert "adv_ner" in losses and state.n_adversarial == 1
    for table, obj, value in zip(state.tables, objects, values):
        assert _same_array(table.get_weights(), obj)
        current = _copy(table.get_weights())
        assert current.dtype == value.dtype and numpy.array_equal(current, value)


def test_weights_restored_when_perturbed_pass_fails(bert_dir):
    nlp, examples = _trained("cnn", bert_dir, steps=1)
    state = _install(nlp)
    objects = [t.get_weights() for t in state.tables]
    values = [_copy(w) for w in objects]
    update, calls = state.update, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return update(*args, **kwargs)

    state.update = failing
    with pytest.raises(RuntimeError, match="boom"):
        nlp.update(examples, sgd=False, losses={}, **UPDATE)
    for table, obj, value in zip(state.tables, objects, values):
        assert _same_array(table.get_weights(), obj) and numpy.array_equal(_copy(obj), value)


def test_direction_is_this_batch_gradient_under_accumulation(bert_dir):
    nlp, examples = _trained("cnn", bert_dir, steps=2)
    state = _install(nlp, epsilon=0.1)
    record: List = []
    _seed_passes(state, record)
    batch_a, batch_b = examples[:2], examples[2:]

    def perturbation(batch):
        record.clear()
        nlp.update(batch, sgd=False, losses={}, **UPDATE)
        return [p - o for p, o in zip(record[1], record[0])]

    take_gradients(nlp)
    first_b = perturbation(batch_b)
    a = perturbation(batch_a)  # gradients accumulate: no optimizer step in between
    second_b = perturbation(batch_b)
    assert state.step == 0  # one step: three sub-batches
    for r1, r2, ra in zip(first_b, second_b, a):
        numpy.testing.assert_allclose(r2, r1, atol=1e-6)
        assert not numpy.allclose(ra, r1, atol=1e-4)


def test_several_listeners_all_run_in_perturbed_pass(bert_dir):
    config = _config("cnn", bert_dir)
    config["nlp"]["pipeline"] = ["tok2vec", "ner", "tagger"]
    config["components"]["tagger"] = {
        "factory": "tagger",
        "model": {
            "@architectures": "spacy.Tagger.v2",
            "nO": None,
            "tok2vec": {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"},
        },
    }
    fix_random_seed(0)
    nlp = load_model_from_config(config, auto_fill=True)
    docs = [(nlp.make_doc(text), spans) for text, spans in TEXTS]
    examples = [
        Example.from_dict(doc, {"entities": spans, "tags": ["N" if t.is_title else "X" for t in doc]})
        for doc, spans in docs
    ]
    nlp.initialize(lambda: examples)
    _steps(nlp, examples, 2, Adam(0.001))  # output layers start at zero: no gradient yet
    state = _install(nlp)
    losses = nlp.update(examples, sgd=False, losses={}, **UPDATE)
    assert losses["adv_tagger"] > 0 and losses["adv_ner"] > 0 and "adv_tok2vec" in losses
    assert len(nlp.get_pipe("tok2vec").listeners) == 2 and state.n_adversarial == 1


def test_no_gradient_means_no_perturbed_pass(bert_dir):
    # A new pipeline's output layers are zero: its first update sends no
    # gradient to the embeddings, so there is no direction to attack.
    nlp, examples = _trained("cnn", bert_dir, steps=0)
    state = _install(nlp)
    losses = nlp.update(examples, sgd=False, losses={}, **UPDATE)
    assert set(losses) == {"tok2vec", "ner"} and losses["tok2vec"] == 0.0
    assert state.step == 0 and state.n_adversarial == 0 and state.last_norms == {}


def test_given_optimizer_steps_once_after_both_passes(bert_dir):
    nlp, examples = _trained("cnn", bert_dir, steps=1)
    state = _install(nlp)
    table = state.tables[0]
    before = _copy(table.get_weights())
    optimizer = Adam(0.001)
    for _ in range(2):
        losses = nlp.update(examples, sgd=optimizer, losses={}, **UPDATE)
    assert "adv_ner" in losses and state.step == 1 and state.n_adversarial == 2
    assert not numpy.array_equal(_copy(table.get_weights()), before)
    assert all(not g.any() for g in _all_grads(nlp).values())  # the optimizer consumed them


def test_reinstalling_does_not_stack_wrappers(bert_dir):
    nlp, _ = _trained("cnn", bert_dir, steps=0)
    plain = nlp.update
    _install(nlp)
    state = _install(nlp, method="pgd")
    assert state.update == plain and state.settings.method == "pgd"


# Training loop: disabled/not started is identical; steps are counted per optimizer step


def _loop(nlp, examples, *, steps: int, accumulate: int = 1) -> Dict[Any, numpy.ndarray]:
    fix_random_seed(0)
    optimizer = Adam(0.001)
    data = iter([(0, examples)] * steps)
    for _ in train_while_improving(
        nlp, optimizer, data, lambda: (0.0, {}), dropout=0.0, eval_frequency=1000,
        accumulate_gradient=accumulate, patience=0, max_steps=steps, exclude=[],
        annotating_components=[], before_update=None,
    ):
        pass
    params = {}
    for name, proc in nlp.pipeline:
        for i, node in enumerate(proc.model.walk()):
            for param in node.param_names:
                if node.has_param(param):
                    params[(name, i, param)] = _copy(node.get_param(param))
    return params


@pytest.mark.parametrize("kind", ["cnn", "trf"])
def test_disabled_or_not_started_trains_identically(kind, bert_dir):
    runs = {}
    for variant in ["none", "disabled", "not_started", "active"]:
        nlp, examples = _trained(kind, bert_dir, steps=0)
        if variant == "disabled":
            install_adversarial_training(nlp, settings=_settings(enabled=False))
            assert get_adversarial_state(nlp) is None
        elif variant == "not_started":
            _install(nlp, start_step=1000)
        elif variant == "active":
            _install(nlp)
        runs[variant] = _loop(nlp, examples, steps=3, accumulate=2)
    for variant in ["disabled", "not_started"]:
        assert all(numpy.array_equal(runs["none"][k], runs[variant][k]) for k in runs["none"])
    assert not all(numpy.array_equal(runs["none"][k], runs["active"][k]) for k in runs["none"])


def test_start_step_counts_optimizer_steps_not_sub_batches(bert_dir):
    nlp, examples = _trained("cnn", bert_dir, steps=0)
    state = _install(nlp, start_step=2)
    _loop(nlp, examples, steps=2, accumulate=2)
    assert state.step == 1 and state.n_adversarial == 0
    _loop(nlp, examples, steps=1, accumulate=2)  # step 2: two sub-batches, both adversarial
    assert state.step == 2 and state.n_adversarial == 2


# Logger


def _info(losses: Dict[str, float]) -> Dict[str, Any]:
    return {"epoch": 0, "step": 4, "score": 0.5, "other_scores": {"ents_f": 0.5, "ents_p": 0.4, "ents_r": 0.6},
            "losses": losses, "checkpoints": [], "seconds": 1, "words": 10}


def test_console_logger_adds_adversarial_columns(bert_dir, tmp_path):
    nlp, _ = _trained("cnn", bert_dir, steps=0)
    create = registry.loggers.get(LOGGER)
    spacy_logger = registry.get("loggers", "spacy.ConsoleLogger.v2")
    plain_out, ours_out = io.StringIO(), io.StringIO()
    log_step, finalize = spacy_logger(progress_bar=False)(nlp, plain_out, io.StringIO())
    log_step(_info({"tok2vec": 1.0, "ner": 2.0}))
    log_step, finalize = create(progress_bar=False)(nlp, ours_out, io.StringIO())
    log_step(_info({"tok2vec": 1.0, "ner": 2.0}))
    assert ours_out.getvalue() == plain_out.getvalue()  # no adversarial training: as spaCy's
    _install(nlp)
    assert adversarial_columns(nlp) == ["adv_tok2vec", "adv_ner"]
    out = io.StringIO()
    log_file = tmp_path / "log.jsonl"
    log_step, finalize = create(progress_bar=False, output_file=log_file)(nlp, out, io.StringIO())
    log_step(None)
    log_step(_info({"tok2vec": 1.0, "ner": 2.0}))  # before start_step: no adversarial loss yet
    log_step(_info({"tok2vec": 1.0, "ner": 2.0, "adv_tok2vec": 3.0, "adv_ner": 4.25}))
    finalize()
    assert "Saving results to" in out.getvalue()
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["E", "#"])
    header, _, row1, row2 = lines[start : start + 4]
    assert header.split()[:8] == ["E", "#", "LOSS", "TOK2VEC", "LOSS", "NER", "LOSS", "ADV_T..."]
    assert "LOSS ADV_NER" in header
    assert row1.split()[2:6] == ["1.00", "2.00", "0.00", "0.00"]
    assert row2.split()[2:6] == ["1.00", "2.00", "3.00", "4.25"]
    records = list(srsly.read_jsonl(log_file))
    assert records[-1]["losses"] == {"tok2vec": 1.0, "ner": 2.0, "adv_tok2vec": 3.0, "adv_ner": 4.25}


# Real configs through init_nlp and spaCy's training loop


def _train_config(kind: str, bert_dir: Path, corpus: Path, block: Dict[str, Any]) -> Config:
    config = _config(kind, bert_dir, interpolate=False)
    config["paths"]["train"] = str(corpus / "train.spacy")
    config["paths"]["dev"] = str(corpus / "dev.spacy")
    config["training"]["max_steps"] = 3
    config["training"]["eval_frequency"] = 2
    config["training"]["logger"] = {"@loggers": LOGGER, "progress_bar": False}
    config["initialize"]["after_init"] = {"@callbacks": CALLBACK, **block}
    return config


def test_cnn_config_trains_and_saved_model_needs_no_callback(bert_dir, corpus, tmp_path):
    config = _train_config("cnn", bert_dir, corpus, {"method": "pgd", "epsilon": 0.1, "alpha": 0.05, "steps": 2})
    nlp = init_nlp(config)
    state = get_adversarial_state(nlp)  # after_init ran inside init_nlp: nothing to re-wrap
    assert state is not None and [t.name for t in state.tables] == CNN_TABLES
    out = io.StringIO()
    (tmp_path / "out").mkdir()
    train(nlp, tmp_path / "out", stdout=out, stderr=io.StringIO())
    assert state.n_adversarial >= 3 and state.step >= 2
    assert "LOSS ADV_NER" in out.getvalue()
    model = tmp_path / "out" / "model-last"
    saved = Config().from_disk(model / "config.cfg", interpolate=False)
    assert saved["initialize"]["after_init"]["@callbacks"] == CALLBACK
    reloaded = spacy.load(model)
    assert get_adversarial_state(reloaded) is None and "update" not in reloaded.__dict__
    # spacy.load runs no [initialize] callback: it works where this package cannot be imported.
    code = (
        "import sys\n"
        "for name in ('spacy_domain_ner.training.adversarial', 'spacy_domain_ner.training.loggers'):\n"
        "    sys.modules[name] = None  # importing them now fails\n"
        "import spacy\n"
        "nlp = spacy.load(sys.argv[1])\n"
        "doc = nlp('Acme Holdings sued the Commission in New York.')\n"
        "print(len(doc), nlp.pipe_names, 'update' in nlp.__dict__)\n"
        "try:\n"
        "    import spacy_domain_ner.training.adversarial\n"
        "except ImportError:\n"
        "    print('blocked')\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "9" and "False" in result.stdout and "blocked" in result.stdout


def test_trf_config_switched_on_by_override(bert_dir, corpus, tmp_path):
    # The wiring recommended for configs/ner_trf.cfg: the block is in the config
    # with enabled = false and a project variable turns it on.
    config = _train_config("trf", bert_dir, corpus, {"enabled": False, "method": "fgm", "epsilon": 1.0})
    path = tmp_path / "ner_trf.cfg"
    config.to_disk(path)
    off = init_nlp(load_config(path))
    assert get_adversarial_state(off) is None
    config = load_config(path, overrides={"initialize.after_init.enabled": True, "initialize.after_init.method": "pgd"})
    nlp = init_nlp(config)
    state = get_adversarial_state(nlp)
    assert state is not None and state.settings.method == "pgd"
    assert [t.name for t in state.tables] == TRF_TABLES
    out = io.StringIO()
    train(nlp, None, stdout=out, stderr=io.StringIO())
    assert state.n_adversarial >= 3
    assert "LOSS ADV_T..." in out.getvalue() and "LOSS ADV_NER" in out.getvalue()
