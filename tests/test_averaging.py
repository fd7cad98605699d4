"""Tests of spacy_domain_ner.models.averaging, TransformerModel.v1's averaged encoder and
benchmarks/averaged_pairs.py."""
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_model_from_config, registry
from thinc.api import Adam

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import load_benchmark, trf_pipeline
from spacy_domain_ner.models.architectures import transformer_model_v1
from spacy_domain_ner.models.averaging import use_averaged_params

ROOT = Path(__file__).parent.parent


def shim_of(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]


def weights(shim):
    return {name: w.detach().clone() for name, w in shim._model.named_parameters()}


def train_with_averages(nlp, steps=3):
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    optimizer = Adam(0.01, use_averages=True)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, losses={})
    return optimizer


def test_evaluates_with_the_encoder_averages_and_restores_them(tiny_bert):
    assert registry.architectures.get("spacy_domain_ner.TransformerModel.v1") is transformer_model_v1
    nlp = trf_pipeline(tiny_bert)
    optimizer = train_with_averages(nlp)
    shim = shim_of(nlp)
    last = weights(shim)
    # the averages are keyed (shim id, parameter name), which thinc's own PyTorchShim.use_params does not
    # look up: without the architecture's use_params, `inside` below would be the last weights
    averaged = {name for name in last if (shim.id, name) in optimizer.averages}
    # the pooler never gets a gradient: it has no average and keeps its weights
    assert averaged and any(name.startswith("pooler.") for name in set(last) - averaged)
    doc_last = nlp(TEXT)
    with nlp.use_params(optimizer.averages):
        inside = weights(shim)
        doc_inside = nlp(TEXT)
        saved = nlp.to_bytes()
    for name in last:
        if name in averaged:
            expected = optimizer.averages[(shim.id, name)]
            assert numpy.allclose(inside[name].numpy(), expected) and not torch.equal(inside[name], last[name])
        else:
            assert torch.equal(inside[name], last[name])
    assert not numpy.allclose(doc_inside._.trf_data.tensors[0], doc_last._.trf_data.tensors[0])
    assert all(torch.equal(w, last[name]) for name, w in weights(shim).items())
    # what is saved inside use_params is the averaged pipeline
    again = load_model_from_config(nlp.config, auto_fill=True).from_bytes(saved)
    assert all(torch.equal(w, inside[name]) for name, w in weights(shim_of(again)).items())


def test_use_averaged_params_restores_on_error_and_ignores_other_keys(tiny_bert):
    nlp = trf_pipeline(tiny_bert)
    shim = shim_of(nlp)
    last = weights(shim)
    name = "encoder.layer.0.output.dense.bias"
    zeros = numpy.zeros(tuple(last[name].shape), dtype="float32")
    with pytest.raises(RuntimeError, match="boom"):
        with use_averaged_params({(shim.id, name): zeros}, shim=shim):
            assert not torch.count_nonzero(dict(shim._model.named_parameters())[name])
            raise RuntimeError("boom")
    assert all(torch.equal(w, last[n]) for n, w in weights(shim).items())
    # keys of other models, and thinc's string keys, leave the module alone
    with use_averaged_params({(shim.id + 1, name): zeros, f"pytorch_{shim.id}_{name}": zeros}, shim=shim):
        assert all(torch.equal(w, last[n]) for n, w in weights(shim).items())


def test_averaged_pairs_scores_both_readouts_of_one_run(tiny_bert, tmp_path, monkeypatch):
    import spacy.training.loop as loop

    pairs = load_benchmark("averaged_pairs")
    nlp = spacy.blank("en")
    DocBin(docs=[Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS}).reference] * 4).to_disk(tmp_path / "c.spacy")
    monkeypatch.setattr(loop, "train_while_improving", loop.train_while_improving)  # main() patches it
    common = ["--paths.train", str(tmp_path / "c.spacy"), "--paths.dev", str(tmp_path / "c.spacy"),
              "--paths.transformer", str(tiny_bert), "--training.max_steps", "4", "--training.eval_frequency", "2"]
    config = str(ROOT / "configs" / "ner_trf.cfg")
    with pytest.raises(SystemExit, match="use_averages true"):
        pairs.main(config, str(tmp_path / "none"), str(tmp_path / "none.tsv"), *common,
                   "--training.optimizer.use_averages", "false")
    pairs.main(config, str(tmp_path / "out"), str(tmp_path / "curve.tsv"), *common,
               "--training.optimizer.use_averages", "true")
    rows = [line.split("\t") for line in (tmp_path / "curve.tsv").read_text().splitlines()]
    assert rows[0] == ["step", "last_f", "last_p", "last_r", "averaged_f", "averaged_p", "averaged_r"]
    assert [row[0] for row in rows[1:]] == ["0", "2", "4"] and all(len(row) == 7 for row in rows)
    assert (tmp_path / "out" / "model-best").is_dir()
    # the optimizer the loop updates with is the real one behind the hidden averages
    hidden = pairs.HiddenAverages(Adam(0.1, use_averages=True))
    assert hidden.averages is None and hidden.learn_rate == 0.1
    weights, gradient = numpy.ones(3, dtype="f"), numpy.ones(3, dtype="f")
    hidden((1, "W"), weights, gradient)
    assert (1, "W") in hidden._optimizer.averages and weights[0] < 1


def test_use_averaged_params_before_the_transformer_is_loaded(tiny_bert):
    config = trf_pipeline(tiny_bert).config
    fresh = load_model_from_config(config, auto_fill=True)
    shim = shim_of(fresh)
    assert shim._model is None
    with fresh.use_params({(shim.id, "encoder.layer.0.output.dense.bias"): numpy.zeros(4, dtype="f")}):
        assert shim._model is None
