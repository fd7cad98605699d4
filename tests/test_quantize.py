from functools import partial
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.util import load_config, load_model_from_config, registry

from conftest import TRF_ENTS as ENTS
from conftest import TRF_TEXT as TEXT
from conftest import trf_pipeline
from spacy_domain_ner.models.architectures import transformer_model_v1
from spacy_domain_ner.models.quantize import (TRANSFORMER_ARCHITECTURES, TRANSFORMER_V1, is_quantized, load_time_overrides,
                                       load_with_quantization, pipeline_config, quantize_after_load, quantize_transformers,
                                       quantize_transformers_v1, quantized_components)
from spacy_domain_ner.models.int8 import Int8Linear, chunk_tokens, invariant_forward, padded_length
from spacy_domain_ner.models.quantize import KEEP_FLOAT, linear_layers

CONFIGS = Path(__file__).parent.parent / "configs"


def hidden(nlp) -> numpy.ndarray:
    return numpy.asarray(nlp(TEXT)._.trf_data.model_output.last_hidden_state)


def test_quantizes_linear_layers_and_keeps_outputs_close(tiny_bert):
    nlp = trf_pipeline(tiny_bert)
    before = hidden(nlp)
    assert quantize_transformers(nlp) == ["transformer"]
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    # 6 Linear layers a layer and the pooler; the feed-forward output projections stay float (KEEP_FLOAT)
    assert sum(isinstance(m, Int8Linear) for m in module.modules()) == 2 * 5 + 1
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


# ---------------------------------------------------------------- batch invariance (spacy_domain_ner.models.int8)


def per_tensor_int8(layer: torch.nn.Linear) -> torch.nn.Module:
    """torch's dynamic int8 Linear (one activation scale per input tensor), the path Int8Linear replaced."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(layer), {torch.nn.Linear}, dtype=torch.qint8)


def test_int8_linear_rows_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    float_layer = torch.nn.Linear(48, 40)
    layer = Int8Linear.from_float(float_layer)
    row = torch.randn(1, 48)
    batch = torch.cat([torch.randn(3, 48) * 1e3, row, torch.randn(5, 48) * 1e-3, torch.zeros(1, 48)])
    with torch.no_grad():
        alone = layer(row)
        assert torch.equal(layer(batch)[3:4], alone)
        assert torch.equal(layer(batch[3:]), layer(batch)[3:])
        assert torch.equal(layer(batch.reshape(2, 5, 48))[0, 3:4], alone)  # (spans, word pieces, width): a row a word piece
        assert torch.equal(layer(batch)[-1], float_layer.bias)  # an all-zero row (no scale to divide by) gives the bias
        assert layer(torch.empty(0, 48)).shape == (0, 40)
        # torch's per-tensor scales: the rows of 1e3 coarsen every other row's quantization
        dynamic = per_tensor_int8(float_layer)
        assert not torch.equal(dynamic(batch)[3:4], dynamic(row))


def test_int8_linear_is_close_to_float():
    torch.manual_seed(0)
    float_layer = torch.nn.Linear(384, 1536)
    weight = float_layer.weight.detach().clone()
    layer = Int8Linear.from_float(float_layer)
    assert torch.equal(float_layer.weight, weight)  # left unchanged: its weights are the ones saved
    assert layer.weight_t.dtype == torch.int8 and layer.weight_t.shape == (384, 1536) and layer.weight_scale.shape == (1536,)
    x = torch.randn(64, 384)
    x[::8] *= 100  # rows of another magnitude, as outlier tokens give
    with torch.no_grad():
        expected, got = float_layer(x), layer(x)
    errors = (got - expected).norm(dim=1) / expected.norm(dim=1)
    assert float(errors.max()) < 0.02  # 0.010 measured: each row keeps its own resolution


def test_padded_length():
    assert [padded_length(n, limit=None) for n in (0, 1, 16, 17, 130)] == [16, 16, 16, 32, 144]
    assert padded_length(500, limit=510) == 510 and padded_length(512, limit=512) == 512


@pytest.fixture(scope="module")
def invariance_bert(tmp_path_factory):
    # longer positions than tiny_bert: a 160-token document is two spans of up to 128 tokens
    from conftest import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("bert"), [TEXT], max_positions=512)


def test_invariant_forward_of_an_encoder(invariance_bert, one_torch_thread):
    from transformers import BertModel

    model = BertModel.from_pretrained(invariance_bert).eval()
    for name in linear_layers(model, keep_float=KEEP_FLOAT):
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, Int8Linear.from_float(getattr(model.get_submodule(parent), child)))
    torch.manual_seed(0)
    lengths = [5, 40, 17, 3, 33]
    ids = torch.randint(5, 30, (len(lengths), max(lengths)))
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask)
        batched = invariant_forward(model, ids, mask, max_tokens=64, output_hidden_states=True)
        for row, length in enumerate(lengths):
            alone = invariant_forward(model, ids[row:row + 1, :length], mask[row:row + 1, :length], max_tokens=None,
                                      output_hidden_states=True)
            assert torch.equal(batched.last_hidden_state[row, :length], alone.last_hidden_state[0])
            assert torch.equal(batched.pooler_output[row], alone.pooler_output[0])
            assert all(torch.equal(b[row, :length], a[0]) for b, a in zip(batched.hidden_states, alone.hidden_states))
            assert not batched.last_hidden_state[row, length:].any()  # padding: zeros
        # the same values as the plain forward, up to the padding the plain forward's attention sums over
        real = mask.bool()
        torch.testing.assert_close(batched.last_hidden_state[real], plain.last_hidden_state[real], rtol=1e-4, atol=1e-4)
        left_padded = invariant_forward(model, ids, mask.flip(1), max_tokens=64)  # not right-padded: the plain forward
        assert torch.equal(left_padded.last_hidden_state, model(input_ids=ids, attention_mask=mask.flip(1)).last_hidden_state)


INVARIANCE_TEXTS = [TEXT, " ".join([TEXT] * 12), "Acme Holdings sued New York .", "The Commission .",
                    " ".join([TEXT] * 3), "", "sued in New York and the Securities and Exchange Commission ."]


def transformer_outputs(doc) -> list:
    """The doc's transformer outputs at its real word pieces (their padded width is the batch's)."""
    data = doc._.trf_data
    real = numpy.asarray(data.wordpieces.attention_mask).astype(bool)
    return [(key, numpy.asarray(value)[real] if numpy.asarray(value).ndim == 3 else numpy.asarray(value))
            for key, value in sorted(data.model_output.items())]


def annotations(nlp, texts, *, batch_size: int) -> list:
    return [([(e.text, e.start_char, e.end_char, e.label_) for e in doc.ents], transformer_outputs(doc))
            for doc in nlp.pipe(texts, batch_size=batch_size)]


def same(one, other) -> bool:
    return one[0] == other[0] and len(one[1]) == len(other[1]) and all(
        k1 == k2 and v1.shape == v2.shape and v1.dtype == v2.dtype and v1.tobytes() == v2.tobytes()
        for (k1, v1), (k2, v2) in zip(one[1], other[1]))


def test_a_quantized_pipeline_annotates_each_text_as_alone(invariance_bert, tmp_path, one_torch_thread):
    nlp = trf_pipeline(invariance_bert)
    nlp.to_disk(tmp_path / "float")
    quantize_transformers(nlp)
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    assert vars(module)["forward"].__func__.func is invariant_forward and chunk_tokens(module) == 4096  # the config's buckets
    texts = INVARIANCE_TEXTS + INVARIANCE_TEXTS[::-1]
    alone = [annotations(nlp, [text], batch_size=1)[0] for text in texts]
    assert sum(len(ents) for ents, _ in alone) > 0 and len(alone[1][1][0][1]) > 128  # entities to compare; two spans
    for batch_size in (1, 3, 8):
        batched = annotations(nlp, texts, batch_size=batch_size)
        assert [i for i, (a, b) in enumerate(zip(alone, batched)) if not same(a, b)] == [], batch_size
    # the same pipeline quantized with torch's per-tensor scales: the test would see the batch
    float_nlp = spacy.load(tmp_path / "float")
    shim = float_nlp.get_pipe("transformer").model.layers[0].shims[0]
    for name in linear_layers(shim._model, keep_float=KEEP_FLOAT):
        parent, _, child = name.rpartition(".")
        setattr(shim._model.get_submodule(parent), child, per_tensor_int8(getattr(shim._model.get_submodule(parent), child)))
    alone = [annotations(float_nlp, [text], batch_size=1)[0] for text in texts]
    assert any(not same(a, b) for a, b in zip(alone, annotations(float_nlp, texts, batch_size=8)))
    # saving still writes the float weights, and loading them back quantizes to the same model, bit for bit
    nlp.to_disk(tmp_path / "quantized")
    assert_float_state(saved_state(tmp_path / "quantized"), saved_state(tmp_path / "float"))
    assert not any(value.dtype == torch.int8 for value in saved_state(tmp_path / "quantized").values())
    reloaded = spacy.load(tmp_path / "quantized")
    assert quantize_transformers(reloaded) == ["transformer"]
    assert all(same(a, b) for a, b in zip(annotations(nlp, texts, batch_size=8), annotations(reloaded, texts, batch_size=3)))



def test_batch_invariance_benchmark(invariance_bert, tmp_path, one_torch_thread):
    from conftest import load_benchmark

    benchmark = load_benchmark("int8_batch_invariance")
    trf_pipeline(invariance_bert).to_disk(tmp_path / "model")
    result = benchmark.measure(str(tmp_path / "model"), {"texts": INVARIANCE_TEXTS * 2}, modes=list(benchmark.MODES),
                               batch_size=4, compare=[8], repeats=1)
    rows = result["inputs"]["texts"]
    assert rows["per-row"]["outputs_differ_b8"] == rows["per-row"]["entities_differ_b8"] == 0
    assert rows["per-row-all"]["outputs_differ_b8"] == 0 and rows["per-tensor"]["outputs_differ_b8"] > 0
    assert all(row["words_per_second"] > 0 and row["texts"] == 14 for row in rows.values())
    assert 0 < rows["per-row"]["relative_error_vs_float32"] < 1 and "relative_error_vs_float32" not in rows["float32"]
    assert "| texts | per-row |" in benchmark.to_markdown(result)

# ---------------------------------------------------------------- load-time quantization (TransformerModel.v1 quantize)


def quantizing_pipeline(model_dir: Path, **settings):
    return trf_pipeline(model_dir, overrides={f"components.transformer.model.{k}": v for k, v in settings.items()})


def test_quantizes_at_load_and_saves_float_weights(tiny_bert, tmp_path, one_torch_thread):
    nlp = quantizing_pipeline(tiny_bert, quantize="qint8")
    module = nlp.get_pipe("transformer").model.layers[0].shims[0]._model
    assert not is_quantized(module) and quantized_components(nlp) == []  # training stays float
    float_hidden = hidden(nlp)
    nlp.to_disk(tmp_path / "int8")
    loaded = spacy.load(tmp_path / "int8")  # spacy.load alone gets the int8 path
    assert quantized_components(loaded) == ["transformer"]
    assert float_linears(loaded.get_pipe("transformer").model.layers[0].shims[0]._model) == {
        "encoder.layer.0.output.dense", "encoder.layer.1.output.dense"}  # quantize_transformers' default keep_float
    int8_hidden = hidden(loaded)
    assert not numpy.array_equal(int8_hidden, float_hidden)
    assert numpy.corrcoef(float_hidden.ravel(), int8_hidden.ravel())[0, 1] > 0.99
    assert {e.label_ for e in loaded(TEXT).ents} <= {"GOVERNMENT", "BUSINESS", "LOCATION"}
    # the same model as quantizing the float pipeline after loading
    after = load_with_quantization(tmp_path / "int8", quantize=False)
    assert quantized_components(after) == [] and quantize_transformers(after) == ["transformer"]
    numpy.testing.assert_allclose(hidden(after), int8_hidden, rtol=1e-5, atol=1e-5)
    # round trip: the int8 pipeline re-saves its float weights and its setting
    loaded.to_disk(tmp_path / "again")
    assert_float_state(saved_state(tmp_path / "again"), saved_state(tmp_path / "int8"))
    assert loaded.config["components"]["transformer"]["model"]["quantize"] == "qint8"
    numpy.testing.assert_array_equal(hidden(load_with_quantization(tmp_path / "again", quantize=False)), float_hidden)
    numpy.testing.assert_allclose(hidden(spacy.load(tmp_path / "again")), int8_hidden, rtol=1e-5, atol=1e-5)
    # from_bytes quantizes too, and the bucketed forward survives
    fresh = quantizing_pipeline(tiny_bert, quantize="qint8").from_bytes(loaded.to_bytes())
    assert quantized_components(fresh) == ["transformer"]
    assert "forward" in vars(fresh.get_pipe("transformer").model.layers[0].shims[0]._model)


def test_quantize_settings(tiny_bert, tmp_path, one_torch_thread):
    create = registry.architectures.get(TRANSFORMER_V1)
    assert create is transformer_model_v1
    spans = registry.span_getters.get("spacy-transformers.strided_spans.v1")(window=16, stride=12)
    with pytest.raises(ValueError, match="dtype must be one of"):
        create(name=str(tiny_bert), get_spans=spans, quantize="int4")
    with pytest.raises(ValueError, match="not a regular expression"):
        create(name=str(tiny_bert), get_spans=spans, quantize="qint8", quantize_keep_float=["(unclosed"])
    with pytest.raises(ValueError, match="quantize is not"):
        create(name=str(tiny_bert), get_spans=spans, quantize_keep_float=["x"])
    # off (the default): float at load
    nlp = quantizing_pipeline(tiny_bert)
    nlp.to_disk(tmp_path / "off")
    assert quantized_components(spacy.load(tmp_path / "off")) == []
    nlp = quantizing_pipeline(tiny_bert, quantize="qint8", quantize_keep_float=[])
    nlp.to_disk(tmp_path / "all")
    assert float_linears(spacy.load(tmp_path / "all").get_pipe("transformer").model.layers[0].shims[0]._model) == set()


def test_on_a_gpu_it_warns_and_stays_float(tiny_bert, tmp_path, monkeypatch):
    from spacy_domain_ner.models import quantize as quantize_module

    nlp = quantizing_pipeline(tiny_bert, quantize="qint8")
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
    assert overrides == {"components.transformer.model.quantize": "qint8",
                         "components.transformer.model.quantize_keep_float": None}
    assert load_time_overrides(config, dtype=None) == {"components.transformer.model.quantize": None,
                                                       "components.transformer.model.quantize_keep_float": None}
    assert load_time_overrides(config, dtype="qint8", keep_float=["x$"])["components.transformer.model.quantize_keep_float"] == ["x$"]
    edited = load_config(CONFIGS / "ner_trf.cfg", overrides=overrides)
    assert edited["components"]["transformer"]["model"]["name"] == "${paths.transformer}"  # variables kept
    # switching off also drops a keep_float of the earlier setting, which would be rejected without quantize
    kept = load_config(CONFIGS / "ner_trf.cfg", overrides=load_time_overrides(config, dtype="qint8", keep_float=["x$"]))
    off = load_config(CONFIGS / "ner_trf.cfg", overrides=load_time_overrides(kept, dtype=None), interpolate=True)
    assert off["components"]["transformer"]["model"]["quantize_keep_float"] is None
    load_model_from_config(off, auto_fill=True, validate=True)
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


def test_load_time_overrides_know_every_transformer_architecture_of_the_package():
    ours = {name for name in registry.architectures.get_all() if name.startswith("spacy_domain_ner.TransformerModel.")}
    assert ours == set(TRANSFORMER_ARCHITECTURES)


def _loads_quantized(nlp, component):
    shim = nlp.get_pipe(component).model.layers[0].shims[0]
    return isinstance(shim.from_bytes, partial) and shim.from_bytes.func is quantize_after_load


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.cfg")), ids=lambda p: p.name)
def test_load_time_overrides_switch_every_shipped_config(path):
    # built only (no weights): whether the transformer's shim quantizes once its weights are loaded
    config = load_config(path)
    transformers = [name for name, c in config["components"].items() if c.get("factory") == "transformer"]
    if not transformers:
        assert load_time_overrides(config, dtype=None) == {}
        return
    corpora = {"paths.train": "train.spacy", "paths.dev": "dev.spacy"}  # filling validates the readers' paths
    for dtype, expected in (("qint8", True), (None, False)):
        edited = load_config(path, overrides={**corpora, **load_time_overrides(config, dtype=dtype)}, interpolate=True)
        nlp = load_model_from_config(edited, auto_fill=True, validate=True)
        assert [_loads_quantized(nlp, name) for name in transformers] == [expected] * len(transformers)
        # and back: the switched config switches again
        again = load_time_overrides(edited, dtype=None if dtype else "qint8")
        assert again[f"components.{transformers[0]}.model.quantize"] == (None if dtype else "qint8")


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
    for keep, expected in ((None, 2), ([], 0)):  # None: KEEP_FLOAT, the feed-forward output projections
        nlp = trf_pipeline(tiny_bert)
        assert quantize_transformers_v1(keep_float=keep)(nlp) == ["transformer"]
        assert len(float_linears(nlp.get_pipe("transformer").model.layers[0].shims[0]._model)) == expected
    with pytest.raises(ValueError, match="is not a regular expression"):
        quantize_transformers_v1(keep_float=["(unclosed"])
    with pytest.raises(ValueError, match="dtype must be one of"):
        quantize_transformers_v1(dtype="int4")


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
    quantizing_pipeline(tiny_bert, quantize="qint8").to_disk(tmp_path / "int8-at-load")
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
