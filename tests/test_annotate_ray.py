import json
import sys

import pytest
import spacy

from spacy_domain_ner.annotation.journal import RunPaths
from spacy_domain_ner.annotation.local_executor import LocalExecutor
from spacy_domain_ner.annotation.pipeline import annotate_texts
from spacy_domain_ner.annotation.runner import annotate, run_annotation
from spacy_domain_ner.annotation.ray_executor import RayAnnotator, RayExecutor

from test_annotate import BIG_BLOCK, HOSTILE, FlakyExecutor, dup_heavy_records, run_files, save_pipeline, write_jsonl

# The [ray] extra (ray[data], which brings pyarrow): without it these tests skip, not fail.
pyarrow = pytest.importorskip("pyarrow")
pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ruler(tmp_path_factory):
    return save_pipeline(tmp_path_factory.mktemp("ruler") / "model")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_actor_annotates_pyarrow_batches_keeping_nul_characters(ruler):
    actor = RayAnnotator(model=ruler, code_paths=[], use_gpu=False, batch_size=2, max_chars=1000)
    texts = ["Acme Corp \x00\x00", "\x00 Delaware \x00"]
    result = actor(pyarrow.table({"index": [4, 9], "text": texts}))
    assert result.column("index").to_pylist() == [4, 9]
    decoded = [json.loads(r) for r in result.column("result").to_pylist()]
    assert [ents for ents, _, _ in decoded] == [[[0, 9, "ORG", None, ""]], [[2, 10, "GPE", None, ""]]]  # trailing NULs kept
    assert decoded == json.loads(json.dumps(annotate_texts(spacy.load(ruler), texts, batch_size=2)))
    with pytest.raises(ValueError, match="max_length"):
        RayAnnotator(model=ruler, code_paths=[], use_gpu=False, batch_size=2, max_chars=10**7)


def test_executor_checks_arguments_and_needs_ray(ruler, monkeypatch):
    for kwargs in ({"n_actors": 0}, {"num_gpus": -1}, {"window_chars": 0}):
        with pytest.raises(ValueError, match="need n_actors"):
            RayExecutor(model=ruler, **kwargs)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    with pytest.raises(ValueError, match=r"spacy-domain-ner\[ray\]"):
        RayExecutor(model=ruler).__enter__()


@pytest.mark.slow
def test_ray_output_equals_local_output(tmp_path, ruler, local_ray):
    records = [{"id": "long", "text": BIG_BLOCK * 40, "meta": [1, None]}, {"id": "nul", "text": "Acme Corp \x00\x00"}]
    source = write_jsonl(tmp_path / "in.jsonl", records + dup_heavy_records(40) + HOSTILE)  # HOSTILE ends without a line break
    options = {"model": ruler, "batch_size": 8, "max_chars": 20_000, "progress": False}
    local = annotate(source, tmp_path / "local.jsonl", **options)
    distributed = annotate(source, tmp_path / "ray.jsonl", engine="ray", n_actors=2, window_chars=300_000, **options)
    assert run_files(tmp_path / "ray.jsonl") == run_files(tmp_path / "local.jsonl")
    assert local["chunked_records"] == 1 and local["errors"] > 0
    for key in ("records", "annotated", "errors", "errors_by_reason", "words", "entities", "entities_per_label"):
        assert distributed[key] == local[key]


@pytest.mark.slow
def test_local_run_resumed_on_ray_equals_uninterrupted(tmp_path, ruler, local_ray):
    source = write_jsonl(tmp_path / "in.jsonl", dup_heavy_records(90))
    annotate(source, tmp_path / "ref.jsonl", model=ruler, progress=False)
    out = tmp_path / "out.jsonl"
    flaky = FlakyExecutor(LocalExecutor(model=ruler, batch_size=6), fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_annotation(source, out, executor=flaky, model=ruler, batch_size=6, progress=False)
    assert json.loads(RunPaths.for_output(out).checkpoint.read_text())["counts"]["records"] == 18
    summary = annotate(source, out, model=ruler, engine="ray", batch_size=16, resume=True, progress=False)
    assert run_files(out) == run_files(tmp_path / "ref.jsonl") and summary["resumed"] and summary["reconciled"]
