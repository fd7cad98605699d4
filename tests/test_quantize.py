from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import load_config, load_model_from_config, registry

from conftest import save_tiny_bert
from spacy_domain_ner.quantize import quantize_transformers, quantize_transformers_v1, quantize_transformers_v2

CONFIGS = Path(__file__).parent.parent / "configs"
TEXT = "The Securities and Exchange Commission sued Acme Holdings in New York ."
ENTS = [(4, 38, "GOVERNMENT"), (44, 57, "BUSINESS"), (61, 69, "LOCATION")]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), [TEXT])


def trf_pipeline(model_dir: Path):
    config = load_config(CONFIGS / "ner_trf.cfg", overrides={"paths.transformer": str(model_dir)}, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"entities": ENTS})]
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def hidden(nlp) -> numpy.ndarray:
    return numpy.asarray(nlp(TEXT)._.trf_data.model_output.last_hidden_state)


def test_quantizes_linear_layers_and_keeps_outputs_close(tiny_bert):
    nlp = trf_pipeline(tiny_bert)
    before = hidden(nlp)
    assert quantize_transformers(nlp) == ["transformer"]
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    # 6 Linear layers a layer and the pooler; the feed-forward output projections stay float (KEEP_FLOAT)
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules()) == 2 * 5 + 1
    assert float_linears(module) == {"encoder.layer.0.output.dense", "encoder.layer.1.output.dense"}
    assert nlp.get_pipe("transformer").model.transformer is module
    after = hidden(nlp)
    assert after.shape == before.shape and not numpy.array_equal(after, before)
    assert numpy.corrcoef(before.ravel(), after.ravel())[0, 1] > 0.99
    doc = nlp(TEXT)
    assert all(ent.label_ in {"GOVERNMENT", "BUSINESS", "LOCATION"} for ent in doc.ents)


def float_linears(module) -> set:
    return {name for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)}


def test_keep_float_patterns(tiny_bert):
    nlp = trf_pipeline(tiny_bert)
    quantize_transformers(nlp, keep_float=())
    assert float_linears(nlp.get_pipe("transformer").model.layers[0].shims[0]._model) == set()
    nlp = trf_pipeline(tiny_bert)
    quantize_transformers(nlp, keep_float=[r"attention\.self\.(query|key)$"])
    assert float_linears(nlp.get_pipe("transformer").model.layers[0].shims[0]._model) == {
        f"encoder.layer.{i}.attention.self.{p}" for i in (0, 1) for p in ("query", "key")}


def test_float16_weights(tiny_bert):
    nlp = trf_pipeline(tiny_bert)
    assert quantize_transformers(nlp, dtype="float16") == ["transformer"]
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    assert not any(isinstance(m, torch.nn.Linear) for m in module.modules())
    assert hidden(nlp).shape[-1] == 32


def test_saving_a_quantized_pipeline_raises_and_load_time_quantization_matches(tiny_bert, tmp_path):
    nlp = trf_pipeline(tiny_bert)
    nlp.to_disk(tmp_path / "float")  # the supported path: save first ...
    quantize_transformers(nlp)
    with pytest.raises(ValueError, match="save the pipeline before quantizing"):
        nlp.to_disk(tmp_path / "quantized")
    with pytest.raises(ValueError, match="random weights"):
        nlp.to_bytes()
    reloaded = spacy.load(tmp_path / "float")  # ... then quantize after loading
    assert quantize_transformers(reloaded) == ["transformer"]
    numpy.testing.assert_allclose(hidden(reloaded), hidden(nlp), rtol=1e-5, atol=1e-5)


def test_pipeline_without_transformer_is_left_alone():
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    assert quantize_transformers(nlp) == []


def test_rejects_bad_dtype_uninitialized_and_non_cpu(tiny_bert, monkeypatch):
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_transformers(spacy.blank("en"), dtype="int4")
    config = load_config(CONFIGS / "ner_trf.cfg", overrides={"paths.transformer": str(tiny_bert)}, interpolate=True)
    with pytest.raises(ValueError, match="not initialized"):
        quantize_transformers(load_model_from_config(config, auto_fill=True))
    nlp = trf_pipeline(tiny_bert)
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    monkeypatch.setattr(module, "parameters", lambda: iter([torch.empty(1, device="meta")]))
    with pytest.raises(ValueError, match="CPU only"):
        quantize_transformers(nlp)


def test_registered_builder(tiny_bert):
    assert registry.misc.get("spacy_domain_ner.quantize_transformers.v1") is quantize_transformers_v1
    quantize = quantize_transformers_v1(dtype="qint8")
    nlp = trf_pipeline(tiny_bert)
    assert quantize(nlp) == ["transformer"]
    assert float_linears(nlp.get_pipe("transformer").model.layers[0].shims[0]._model) == set()  # v1: every layer
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_transformers_v1(dtype="int4")
    assert registry.misc.get("spacy_domain_ner.quantize_transformers.v2") is quantize_transformers_v2
    for keep, expected in ((None, 2), ([], 0)):
        nlp = trf_pipeline(tiny_bert)
        assert quantize_transformers_v2(keep_float=keep)(nlp) == ["transformer"]
        assert len(float_linears(nlp.get_pipe("transformer").model.layers[0].shims[0]._model)) == expected
    with pytest.raises(ValueError, match="is not a regular expression"):
        quantize_transformers_v2(keep_float=["(unclosed"])
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_transformers_v2(dtype="int4")


def test_evaluate_cli_quantize(tiny_bert, tmp_path):
    import json

    from spacy.tokens import DocBin
    from typer.testing import CliRunner

    from spacy_domain_ner.cli import app

    nlp = trf_pipeline(tiny_bert)
    nlp.to_disk(tmp_path / "model")
    gold = tmp_path / "gold.spacy"
    doc = nlp.make_doc(TEXT)
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ENTS]
    DocBin(docs=[doc]).to_disk(gold)
    runner = CliRunner()
    scores = {}
    for name, extra in (("float", []), ("int8", ["--quantize"])):
        res = runner.invoke(app, ["evaluate", str(tmp_path / "model"), str(gold), "-o", str(tmp_path / f"{name}.json"), "--no-progress", *extra])
        assert res.exit_code == 0, res.output
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["ents_f"]
    assert scores["int8"] is not None and scores["float"] is not None
    # a pipeline without a transformer, or a GPU, cannot be quantized: clear error, no output
    blank = spacy.blank("en")
    blank.add_pipe("ner").add_label("BUSINESS")
    blank.initialize()
    blank.to_disk(tmp_path / "cnn")
    for model, extra, message in ((tmp_path / "cnn", [], "no transformer component"),
                                  (tmp_path / "model", ["--gpu-id", "0"], "CPU only")):
        res = runner.invoke(app, ["evaluate", str(model), str(gold), "-o", str(tmp_path / "never.json"), "--quantize", "--no-progress", *extra])
        assert res.exit_code == 1 and message in res.output, res.output
        assert not (tmp_path / "never.json").exists()
