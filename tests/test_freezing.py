"""Tests of spacy_domain_ner.models.freezing and TransformerModel.v1's frozen embeddings and layers."""
from pathlib import Path

import pytest
import torch
from spacy.training import Example
from spacy.util import load_model_from_config, registry
from thinc.api import Adam

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import trf_pipeline
from spacy_domain_ner.models.architectures import transformer_model_v1
from spacy_domain_ner.models.freezing import encoder_layers, freeze_lower


def trainable(module) -> set:
    return {name.split(".")[0] if name.startswith("embeddings") else ".".join(name.split(".")[:3])
            for name, weight in module.named_parameters() if weight.requires_grad}


def test_freeze_lower_on_a_bert(tiny_bert):
    from transformers import BertModel

    module = BertModel.from_pretrained(tiny_bert)
    assert len(encoder_layers(module)) == 2
    embeddings = sum(w.numel() for w in module.embeddings.parameters())
    layer0 = sum(w.numel() for w in module.encoder.layer[0].parameters())
    assert freeze_lower(module, embeddings=False, layers=0) == 0
    assert freeze_lower(module, embeddings=True, layers=1) == embeddings + layer0
    assert trainable(module) == {"encoder.layer.1", "pooler.dense.weight", "pooler.dense.bias"}


def test_freeze_lower_checks_the_layers(tiny_bert):
    from transformers import BertModel

    module = BertModel.from_pretrained(tiny_bert)
    with pytest.raises(ValueError, match="has 2 layers"):
        freeze_lower(module, embeddings=False, layers=3)

    class NoStack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.words = torch.nn.Embedding(5, 3)

        def get_input_embeddings(self):
            return self.words

    odd = NoStack()
    assert encoder_layers(odd) is None
    with pytest.raises(ValueError, match="no layer stack"):
        freeze_lower(odd, embeddings=False, layers=1)
    assert freeze_lower(odd, embeddings=True, layers=0) == 15 and not odd.words.weight.requires_grad


def freezing_pipeline(model_dir: Path, **freeze):
    return trf_pipeline(model_dir, overrides={f"components.transformer.model.{k}": v for k, v in freeze.items()})


def hf_module(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]._model


def moved_by_updates(nlp, steps=2):
    """The encoder's parameters that `steps` updates on TEXT change (the listener's gradient reaches the
    encoder one update late)."""
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    module = hf_module(nlp)
    before = {name: w.detach().clone() for name, w in module.named_parameters()}
    optimizer = Adam(0.01)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, losses={})
    return {name for name, w in module.named_parameters() if not torch.equal(w, before[name])}


def test_trains_only_the_upper_layers_and_reloads_frozen(tiny_bert):
    assert registry.architectures.get("spacy_domain_ner.TransformerModel.v1") is transformer_model_v1
    nlp = freezing_pipeline(tiny_bert, freeze_embeddings=True, freeze_layers=1)
    module = hf_module(nlp)
    moved = moved_by_updates(nlp)
    assert moved and all(name.startswith("encoder.layer.1.") for name in moved)
    # a resumed or pretrained encoder is loaded by from_bytes, which builds a new module
    again = load_model_from_config(nlp.config, auto_fill=True).from_bytes(nlp.to_bytes())
    assert trainable(hf_module(again)) == trainable(module) == {"encoder.layer.1", "pooler.dense.weight",
                                                               "pooler.dense.bias"}
    assert [e.text for e in again(TEXT).ents] == [e.text for e in nlp(TEXT).ents]


def test_without_freezing_trains_everything(tiny_bert):
    # the same updates as above with the defaults (freeze_embeddings false, freeze_layers 0) train the
    # embeddings and every layer: all but the pooler, which no gradient reaches
    nlp = freezing_pipeline(tiny_bert)
    moved = moved_by_updates(nlp)
    assert moved == {name for name, _ in hf_module(nlp).named_parameters() if not name.startswith("pooler.")}
    assert {".".join(name.split(".")[:3]) if name.startswith("encoder.") else name.split(".")[0] for name in moved} == {
        "embeddings", "encoder.layer.0", "encoder.layer.1"}


def test_checks_freeze_layers(tiny_bert):
    with pytest.raises(ValueError, match="freeze_layers"):
        freezing_pipeline(tiny_bert, freeze_layers=-1)
