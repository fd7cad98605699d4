from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.util import load_config, load_model_from_config, registry

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import trf_pipeline
from spacy_domain_ner.models.architectures import transformer_model_v3
from spacy_domain_ner.models.quantize import (TRANSFORMER_V1, TRANSFORMER_V3, is_quantized, load_time_overrides, load_with_quantization,
                                       pipeline_config, quantize_transformers, quantize_transformers_v1,
                                       quantize_transformers_v2, quantized_components)

CONFIGS = Path(__file__).parent.parent / "configs"


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


def saved_state(path: Path) -> dict:
    """The torch state_dict a saved pipeline's transformer holds."""
    import io

    import srsly

    shims = srsly.msgpack_loads((path / "transformer" / "model").read_bytes())["shims"]  # thinc: a list per node
    shim = next(data for node in shims for data in node)
    return torch.load(io.BytesIO(srsly.msgpack_loads(shim)["state"]))


def assert_float_state(state: dict, reference: dict) -> None:
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value), key


def test_saving_a_quantized_pipeline_writes_the_float_weights(tiny_bert, tmp_path):
    nlp = trf_pipeline(tiny_bert)
    float_hidden = hidden(nlp)
    nlp.to_disk(tmp_path / "float")
    quantize_transformers(nlp)
    nlp.to_disk(tmp_path / "quantized")  # refused before: now the float weights it was quantized from
    assert_float_state(saved_state(tmp_path / "quantized"), saved_state(tmp_path / "float"))
    assert nlp.to_bytes()
    reloaded = spacy.load(tmp_path / "quantized")
    numpy.testing.assert_array_equal(hidden(reloaded), float_hidden)
    assert quantize_transformers(reloaded) == ["transformer"]  # quantizing after loading gives the same model
    numpy.testing.assert_allclose(hidden(reloaded), hidden(nlp), rtol=1e-5, atol=1e-5)
    assert quantize_transformers(reloaded) == ["transformer"]  # already quantized: left as it is
    numpy.testing.assert_allclose(hidden(reloaded), hidden(nlp), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- load-time quantization (TransformerModel.v3)


def v3_pipeline(model_dir: Path, **settings):
    overrides = {"components.transformer.model.@architectures": TRANSFORMER_V3}
    overrides.update({f"components.transformer.model.{k}": v for k, v in settings.items()})
    return trf_pipeline(model_dir, overrides=overrides)


def test_v3_quantizes_at_load_and_saves_float_weights(tiny_bert, tmp_path, one_torch_thread):
    nlp = v3_pipeline(tiny_bert, quantize="qint8")
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    assert not is_quantized(module) and quantized_components(nlp) == []  # training stays float
    float_hidden = hidden(nlp)
    nlp.to_disk(tmp_path / "v3")
    loaded = spacy.load(tmp_path / "v3")  # spacy.load alone gets the int8 path
    assert quantized_components(loaded) == ["transformer"]
    assert float_linears(loaded.get_pipe("transformer").model.layers[0].shims[0]._model) == {
        "encoder.layer.0.output.dense", "encoder.layer.1.output.dense"}  # quantize_transformers' default keep_float
    int8_hidden = hidden(loaded)
    assert not numpy.array_equal(int8_hidden, float_hidden)
    assert numpy.corrcoef(float_hidden.ravel(), int8_hidden.ravel())[0, 1] > 0.99
    assert {e.label_ for e in loaded(TEXT).ents} <= {"GOVERNMENT", "BUSINESS", "LOCATION"}
    # the same model as quantizing the float pipeline after loading
    after = load_with_quantization(tmp_path / "v3", quantize=False)
    assert quantized_components(after) == [] and quantize_transformers(after) == ["transformer"]
    numpy.testing.assert_allclose(hidden(after), int8_hidden, rtol=1e-5, atol=1e-5)
    # round trip: the int8 pipeline re-saves its float weights and its setting
    loaded.to_disk(tmp_path / "again")
    assert_float_state(saved_state(tmp_path / "again"), saved_state(tmp_path / "v3"))
    assert loaded.config["components"]["transformer"]["model"]["quantize"] == "qint8"
    numpy.testing.assert_array_equal(hidden(load_with_quantization(tmp_path / "again", quantize=False)), float_hidden)
    numpy.testing.assert_allclose(hidden(spacy.load(tmp_path / "again")), int8_hidden, rtol=1e-5, atol=1e-5)
    # from_bytes quantizes too, and the bucketed forward of v2 survives
    fresh = v3_pipeline(tiny_bert, quantize="qint8").from_bytes(loaded.to_bytes())
    assert quantized_components(fresh) == ["transformer"]
    assert "forward" in vars(fresh.get_pipe("transformer").model.layers[0].shims[0]._model)


def test_v3_settings(tiny_bert, tmp_path, one_torch_thread):
    create = registry.architectures.get(TRANSFORMER_V3)
    assert create is transformer_model_v3
    spans = registry.span_getters.get("spacy-transformers.strided_spans.v1")(window=16, stride=12)
    with pytest.raises(ValueError, match="dtype must be one of"):
        create(name=str(tiny_bert), get_spans=spans, quantize="int4")
    with pytest.raises(ValueError, match="not a regular expression"):
        create(name=str(tiny_bert), get_spans=spans, quantize="qint8", quantize_keep_float=["(unclosed"])
    with pytest.raises(ValueError, match="quantize is not"):
        create(name=str(tiny_bert), get_spans=spans, quantize_keep_float=["x"])
    # off (the default): v2 exactly
    nlp = v3_pipeline(tiny_bert)
    nlp.to_disk(tmp_path / "off")
    assert quantized_components(spacy.load(tmp_path / "off")) == []
    nlp = v3_pipeline(tiny_bert, quantize="qint8", quantize_keep_float=[])
    nlp.to_disk(tmp_path / "all")
    assert float_linears(spacy.load(tmp_path / "all").get_pipe("transformer").model.layers[0].shims[0]._model) == set()


def test_v3_on_a_gpu_warns_and_stays_float(tiny_bert, tmp_path, monkeypatch):
    from spacy_domain_ner.models import quantize as quantize_module

    nlp = v3_pipeline(tiny_bert, quantize="qint8")
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    data = shim.to_bytes()
    meta = torch.nn.Parameter(torch.empty(1, device="meta"))
    loaded = {}

    def load_on_meta(bytes_data):
        loaded["module"] = torch.nn.Linear(1, 1)
        loaded["module"].weight = meta
        shim._model = loaded["module"]

    with pytest.warns(UserWarning, match="stays float32"):
        quantize_module.quantize_after_load(data, shim=shim, from_bytes=load_on_meta, dtype="qint8", keep_float=None)
    assert shim._model is loaded["module"] and not is_quantized(shim._model)


def test_load_time_overrides():
    from spacy.util import load_config

    config = load_config(CONFIGS / "ner_trf.cfg")
    overrides = load_time_overrides(config, dtype="qint8")
    assert overrides == {"components.transformer.model.@architectures": TRANSFORMER_V3,
                         "components.transformer.model.quantize": "qint8"}
    assert load_time_overrides(config, dtype=None)["components.transformer.model.quantize"] is None
    assert load_time_overrides(config, dtype="qint8", keep_float=["x$"])["components.transformer.model.quantize_keep_float"] == ["x$"]
    edited = load_config(CONFIGS / "ner_trf.cfg", overrides=overrides)
    assert edited["components"]["transformer"]["model"]["name"] == "${paths.transformer}"  # variables kept
    v1 = load_config(CONFIGS / "ner_trf.cfg", overrides={"components.transformer.model.@architectures": TRANSFORMER_V1})
    assert load_time_overrides(v1, dtype="qint8")["components.transformer.model.inference_max_tokens"] == 0  # v1 had no buckets
    other = load_config(CONFIGS / "ner_trf.cfg", overrides={"components.transformer.model.@architectures": "spacy-transformers.TransformerModel.v3"})
    with pytest.raises(ValueError, match="load-time quantization needs"):
        load_time_overrides(other, dtype="qint8")
    assert load_time_overrides(other, dtype=None) == {}
    cnn = load_config(CONFIGS / "ner_cnn.cfg")
    with pytest.raises(ValueError, match="no transformer component"):
        load_time_overrides(cnn, dtype="qint8")
    assert load_time_overrides(cnn, dtype=None) == {}
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_time_overrides(config, dtype="int4")


def test_pipeline_config_of_a_missing_pipeline(tmp_path):
    with pytest.raises(ValueError, match="cannot load the pipeline"):
        pipeline_config(tmp_path)
    with pytest.raises(ValueError, match="cannot load the pipeline"):
        pipeline_config("no_such_pipeline_package")


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
    v3_pipeline(tiny_bert, quantize="qint8").to_disk(tmp_path / "int8-at-load")
    runner = CliRunner()
    # as the config says by default, forced either way by the flag: the speed section says which was measured
    for model, extra, quantized in (("model", [], []), ("model", ["--quantize"], ["transformer"]),
                                    ("int8-at-load", [], ["transformer"]), ("int8-at-load", ["--no-quantize"], [])):
        out = tmp_path / "scores.json"
        res = runner.invoke(app, ["evaluate", str(tmp_path / model), str(gold), "-o", str(out), "--no-progress", *extra])
        assert res.exit_code == 0, res.output
        result = json.loads(out.read_text())
        assert result["ents_f"] is not None and result["speed"]["quantized"] == quantized, (model, extra)
        assert ("int8)" if quantized else "float)") in res.output
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
