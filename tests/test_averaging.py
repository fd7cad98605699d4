"""Tests of spacy_domain_ner.models.averaging and TransformerModel.v5's averaged encoder."""
import numpy
import pytest
import torch
from spacy.training import Example
from spacy.util import load_model_from_config, registry
from thinc.api import Adam

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import trf_pipeline
from spacy_domain_ner.models.architectures import transformer_model_v5
from spacy_domain_ner.models.averaging import use_averaged_params


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


@pytest.mark.parametrize("version", ["v2", "v4"])
def test_thinc_leaves_the_encoder_of_v2_v4_unaveraged(tiny_bert, version):
    # the reason for v5: spaCy's evaluation and saving used the last encoder weights
    nlp = trf_pipeline(tiny_bert, overrides={
        "components.transformer.model.@architectures": f"spacy_domain_ner.TransformerModel.{version}"})
    optimizer = train_with_averages(nlp)
    shim = shim_of(nlp)
    assert any(key[0] == shim.id for key in optimizer.averages)
    last = weights(shim)
    with nlp.use_params(optimizer.averages):
        inside = weights(shim)
    assert all(torch.equal(inside[name], last[name]) for name in last)


def test_v5_evaluates_with_the_encoder_averages_and_restores_them(tiny_bert):
    assert registry.architectures.get("spacy_domain_ner.TransformerModel.v5") is transformer_model_v5
    nlp = trf_pipeline(tiny_bert, overrides={
        "components.transformer.model.@architectures": "spacy_domain_ner.TransformerModel.v5"})
    optimizer = train_with_averages(nlp)
    shim = shim_of(nlp)
    last = weights(shim)
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
    nlp = trf_pipeline(tiny_bert, overrides={
        "components.transformer.model.@architectures": "spacy_domain_ner.TransformerModel.v5"})
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
