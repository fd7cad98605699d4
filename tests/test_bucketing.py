"""spacy_domain_ner.models.bucketing and TransformerModel.v1's inference_max_tokens: same outputs, in length-sorted chunks."""
import copy
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from transformers import AutoModel, AutoTokenizer

from conftest import save_tiny_bert
from spacy_domain_ner.models.architectures import transformer_model_v1
from spacy_domain_ner.models.bucketing import bucketed_forward, enable_bucketing

CONFIGS = Path(__file__).parent.parent / "configs"
TEXTS = [
    "The Securities and Exchange Commission sued Acme Holdings in New York .",
    "Acme paid .",
    "John Smith filed the motion before the Supreme Court of Delaware on behalf of the Company and its directors .",
    "Under the Securities Act the Company must register the notes .",
    "Texas .",
]
ENTS = [(4, 38, "GOVERNMENT"), (44, 57, "BUSINESS"), (61, 69, "LOCATION")]


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), TEXTS, max_positions=512)


def encode(bert: Path, padding_side: str = "right"):
    tokenizer = AutoTokenizer.from_pretrained(str(bert))
    tokenizer.padding_side = padding_side
    return tokenizer(TEXTS, padding=True, return_tensors="pt")


def reference(bert: Path, batch) -> dict:
    model = AutoModel.from_pretrained(str(bert)).eval()
    with torch.no_grad():
        out = model(**batch)
    return {k: v for k, v in out.items()}


@pytest.mark.parametrize("max_tokens", [1, 40, 100000])
def test_bucketed_inference_matches_the_plain_forward(bert, max_tokens):
    batch = encode(bert)
    expected = reference(bert, batch)
    model = enable_bucketing(AutoModel.from_pretrained(str(bert)).eval(), max_tokens=max_tokens)
    chunks = []  # the embeddings run once per chunk, on the chunk's (rows, cut length)
    model.embeddings.register_forward_hook(lambda mod, args, out: chunks.append(tuple(out.shape[:2])))
    with torch.no_grad():
        out = model(**batch)
    assert type(out).__name__ == "BaseModelOutputWithPoolingAndCrossAttentions"
    padded = batch["attention_mask"]
    real = padded.bool()
    numpy.testing.assert_allclose(out["last_hidden_state"][real].numpy(), expected["last_hidden_state"][real].numpy(), rtol=1e-5, atol=1e-5)
    numpy.testing.assert_allclose(out["pooler_output"].numpy(), expected["pooler_output"].numpy(), rtol=1e-5, atol=1e-5)
    lengths = sorted(padded.sum(1).tolist(), reverse=True)
    if max_tokens == 1:  # a span a chunk, longest first, each cut to its own length: no padding computed
        assert chunks == [(1, n) for n in lengths]
        assert (out["last_hidden_state"][~real] == 0).all()
    elif max_tokens == 100000:  # one chunk: the plain batch
        assert chunks == [(len(TEXTS), lengths[0])]
    else:
        assert all(rows * cut <= max_tokens or rows == 1 for rows, cut in chunks) and sum(r for r, _ in chunks) == len(TEXTS)


def test_training_left_padding_and_extra_outputs_take_the_plain_path(bert):
    model = enable_bucketing(AutoModel.from_pretrained(str(bert)), max_tokens=1)
    shapes = []
    model.embeddings.register_forward_hook(lambda mod, args, out: shapes.append(out.shape[0]))
    batch = encode(bert)
    model.train()
    model(**batch)  # grad enabled, training: one pass over the whole batch
    model.eval()
    with torch.no_grad():
        left = encode(bert, padding_side="left")
        out = model(**left)
        numpy.testing.assert_allclose(out["last_hidden_state"].numpy(), reference(bert, left)["last_hidden_state"].numpy(), atol=1e-5)  # plain path: padding included
        hidden = model(**batch, output_hidden_states=True)  # a tuple of layers is not bucketed
    assert shapes[:2] == [len(TEXTS), len(TEXTS)] and len(hidden["hidden_states"]) == 3
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        enable_bucketing(model, max_tokens=0)


def test_copies_and_int8_quantization_keep_bucketing_on_the_copy(bert):
    model = enable_bucketing(AutoModel.from_pretrained(str(bert)).eval(), max_tokens=40)
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    assert quantized.forward.__self__ is quantized and copy.deepcopy(model).forward.__self__ is not model
    assert isinstance(quantized.encoder.layer[0].intermediate.dense, torch.ao.nn.quantized.dynamic.Linear)
    with torch.no_grad():
        out = quantized(**encode(bert))
    real = encode(bert)["attention_mask"].bool()
    numpy.testing.assert_allclose(out["last_hidden_state"][real].numpy(), reference(bert, encode(bert))["last_hidden_state"][real].numpy(), atol=0.2)


def pipeline(bert: Path, max_tokens: int):
    config = load_config(CONFIGS / "ner_trf.cfg", overrides={
        "paths.transformer": str(bert), "components.transformer.model.inference_max_tokens": max_tokens}, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(TEXTS[0]), {"entities": ENTS})]
    nlp.initialize(lambda: examples)
    return nlp


def test_architecture_patches_after_initialize_and_after_loading(bert, tmp_path, one_torch_thread):
    nlp = pipeline(bert, 40)
    assert nlp.get_pipe("transformer").model.layers[0].shims[0]._model.forward.__func__.func is bucketed_forward
    assert "forward" in vars(nlp.get_pipe("transformer").model.layers[0].shims[0]._model)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert "forward" in vars(loaded.get_pipe("transformer").model.layers[0].shims[0]._model)
    plain = spacy.load(tmp_path / "model", config={"components": {"transformer": {"model": {"inference_max_tokens": 0}}}})
    assert "forward" not in vars(plain.get_pipe("transformer").model.layers[0].shims[0]._model)
    long_text = " ".join(TEXTS * 40)  # many strided spans of different lengths
    for a, b in zip(loaded.pipe([long_text] + TEXTS), plain.pipe([long_text] + TEXTS)):
        real = numpy.asarray(a._.trf_data.wordpieces.attention_mask).astype(bool)  # padding is never read
        numpy.testing.assert_allclose(numpy.asarray(a._.trf_data.model_output.last_hidden_state)[real],
                                      numpy.asarray(b._.trf_data.model_output.last_hidden_state)[real], rtol=1e-4, atol=1e-5)
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]


def test_architecture_checks_inference_max_tokens():
    with pytest.raises(ValueError, match="inference_max_tokens must be >= 0"):
        transformer_model_v1(name="x", get_spans=lambda docs: [], inference_max_tokens=-1)
