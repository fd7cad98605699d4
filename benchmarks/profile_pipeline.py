"""Where a pipeline's inference time goes: the tokenizer, each component, and known stages inside them.

usage: python benchmarks/profile_pipeline.py PIPELINE [PIPELINE ...] TEXTS -o benchmarks/out/profile
           [--modes config,float32,int8] [--batch-size 16] [--threads N] [--limit N] [--chars N]

PIPELINE is a directory or package name; TEXTS a DocBin (.spacy: its docs' text), JSONL ("text") or
.txt (paragraphs). Each run (a pipeline in a mode) has its own Python process, so that its peak RSS
is its own. A run loads the pipeline (mode "config": as its config says; "float32"/"int8": the
transformer's load-time int8 forced off/on), warms up on two texts, times plain
`nlp.pipe(texts, batch_size=B)`, then runs the same batches by hand: make_doc, then each component's
`pipe` (or `__call__`) with its output materialised batch by batch, so that a generator's time is
its own component's, not the one downstream that pulls from it. Inside components, wrappers set up
by this script only (the package is not edited) time known stages:
- every component with a thinc model: its model's forward pass ("model forward");
- entity_confidence: the replay of the NER's greedy path (and the NER model forward inside it) and
  the scoring of the entities;
- case_restorer: marking case-free Docs, building truecased copies, the second pass (each upstream
  component on the copies, and the check whether the transformer ignores case) and the transfer;
- `Doc(...)` constructions made by the package's modules (Doc.copy and Doc.from_docs cannot be
  wrapped: spaCy's Doc is an immutable extension type; they are not counted).
The sum of the top-level stages should match the plain nlp.pipe time: the table gives both, and
whether the hand-run loop found the same entities. Writes OUTPUT.json, OUTPUT.md and OUTPUT.png.
"""
import argparse
import contextlib
import functools
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the speed_* modules next to this script
from speed_measure import current_rss_mb, read_texts  # noqa: E402
from speed_report import machine_info  # noqa: E402

MODES = {"config": None, "float32": False, "int8": True}
SEP = " › "


def load_texts(path: Path, *, limit: Optional[int] = None, chars: Optional[int] = None) -> List[str]:
    """The first `limit` texts of a source, each cut to its first `chars` characters."""
    texts = [item if isinstance(item, str) else item.text for item in read_texts(path)][:limit or None]
    return [text[:chars] for text in texts] if chars else texts


class Clock:
    """Seconds and calls per stage; stages nest, a key is the path of the stages open when it ran."""

    def __init__(self) -> None:
        self.stack: List[str] = []
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        key = SEP.join(self.stack)
        self.seconds.setdefault(key, 0.0)  # keys in the order the stages first start: parents first
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] += time.perf_counter() - start
            self.calls[key] += 1
            self.stack.pop()

    def wrap(self, name: str, func: Callable) -> Callable:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return func(*args, **kwargs)
        return timed


class TimedComponent:
    """Stands in for a component that another one runs (the case restorer's second pass)."""

    def __init__(self, proc: Any, name: str, clock: Clock) -> None:
        self.proc, self.name, self.clock = proc, name, clock

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.proc, attr)

    def pipe(self, docs: Any, **kwargs: Any) -> Iterator[Any]:
        with self.clock.stage(self.name):
            return iter(list(self.proc.pipe(docs, **kwargs)) if hasattr(self.proc, "pipe") else [self.proc(d) for d in docs])

    def __call__(self, doc: Any) -> Any:
        return next(self.pipe([doc]))


def timed_forward(func: Callable, name: str, clock: Clock) -> Callable:
    """A thinc model's forward function, timed as "model forward" of its component, or as
    "NAME model forward" when another component runs it."""
    def forward(*args: Any, **kwargs: Any) -> Any:
        with clock.stage("model forward" if clock.stack and clock.stack[-1] == name else f"{name} model forward"):
            return func(*args, **kwargs)
    return forward


def stage_patches(nlp: Any, clock: Clock) -> List[Tuple[Any, str, Any]]:
    """(object, attribute, timed replacement) for the known stages inside the components."""
    from spacy.tokens import Doc
    from thinc.api import Model

    import spacy_domain_ner.casing.restorer as restorer_module
    import spacy_domain_ner.evaluation.confidence as confidence_module

    patches: List[Tuple[Any, str, Any]] = []
    names = {id(proc): name for name, proc in nlp.pipeline}
    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if isinstance(model, Model):
            patches.append((model, "_func", timed_forward(model._func, name, clock)))
        if isinstance(proc, confidence_module.EntityConfidence):
            patches.append((proc, "score", clock.wrap("scoring", proc.score)))
        if isinstance(proc, restorer_module.CaseRestorer):
            upstream = proc._upstream
            patches += [(proc, "_mark", clock.wrap("mark case-free docs", proc._mark)),
                        (proc, "_copy", clock.wrap("truecased copy", proc._copy)),
                        (proc, "_recopy", clock.wrap("entity-pass copy", proc._recopy)),
                        (proc, "_annotate", clock.wrap("second pass", proc._annotate)),
                        (proc, "_upstream", lambda _up=upstream: [TimedComponent(p, names[id(p)], clock) for p in _up()])]
    patches.append((confidence_module, "greedy_entity_scores", clock.wrap("replay", confidence_module.greedy_entity_scores)))
    ignores_case = restorer_module.ignores_case
    patches += [(restorer_module, "ignores_case", clock.wrap(
                    "ignores-case check", lambda p: ignores_case(p.proc if isinstance(p, TimedComponent) else p))),
                (restorer_module, "transfer_annotations", clock.wrap("transfer annotations", restorer_module.transfer_annotations))]

    class CountedDoc:  # Doc(...) in the package's modules; Doc's own attributes pass through
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with clock.stage("Doc()"):
                return Doc(*args, **kwargs)

        def __getattr__(self, attr: str) -> Any:
            return getattr(Doc, attr)

    patches += [(module, "Doc", CountedDoc()) for module_name, module in list(sys.modules.items())
                if module_name.startswith("spacy_domain_ner") and getattr(module, "Doc", None) is Doc]
    return patches


@contextlib.contextmanager
def patched(patches: Sequence[Tuple[Any, str, Any]]) -> Iterator[None]:
    # A method bound to the object is dropped again (the class's shows through); anything else is put back.
    saved = [(obj, attr, getattr(obj, attr), getattr(getattr(obj, attr), "__self__", None) is obj
              and attr not in getattr(obj, "__dict__", {})) for obj, attr, _ in patches]
    for obj, attr, value in patches:
        setattr(obj, attr, value)
    try:
        yield
    finally:
        for obj, attr, old, method in reversed(saved):
            if method:
                delattr(obj, attr)
            else:
                setattr(obj, attr, old)


def profiled_pipe(nlp: Any, texts: Sequence[str], *, batch_size: int, clock: Clock) -> List[Any]:
    """nlp.pipe(texts, batch_size) by hand, each stage timed and materialised batch by batch."""
    out: List[Any] = []
    with patched(stage_patches(nlp, clock)):
        for start in range(0, len(texts), batch_size):
            with clock.stage("tokenizer"):
                docs = [nlp.make_doc(text) for text in texts[start:start + batch_size]]
            for name, proc in nlp.pipeline:
                with clock.stage(name):
                    docs = list(proc.pipe(docs, batch_size=batch_size)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
            out.extend(docs)
    return out


def entities(docs: Sequence[Any]) -> List[List[Tuple[int, int, str, str]]]:
    return [[(e.start, e.end, e.label_, e.kb_id_) for e in doc.ents] for doc in docs]


def profile(nlp: Any, texts: Sequence[str], *, batch_size: int = 16, repeats: int = 1) -> Dict[str, Any]:
    """Plain nlp.pipe and the profiled loop over the same texts (after a warm-up on two of them),
    `repeats` times each, alternated; the fastest round of each is kept.

    RETURNS (Dict[str, Any]): docs, words (spaCy tokens), plain_seconds, profiled_seconds, parts_seconds
        (the top-level stages' sum), overhead (profiled / plain - 1), same_entities, differing_docs,
        entities, stages: [{stage, level, seconds, share (of parts_seconds), words_per_second, calls}].
    """
    texts = list(texts)
    nlp.max_length = max(nlp.max_length, max(len(t) for t in texts) + 1)
    list(nlp.pipe(texts[:2], batch_size=2))  # lazy initialisation stays out of the timing
    plain_seconds = profiled_seconds = float("inf")
    for _ in range(repeats):  # alternated, the fastest of each: a busy machine slows some rounds
        start = time.perf_counter()
        plain = list(nlp.pipe(texts, batch_size=batch_size))
        plain_seconds = min(plain_seconds, time.perf_counter() - start)
        round_clock = Clock()
        start = time.perf_counter()
        round_docs = profiled_pipe(nlp, texts, batch_size=batch_size, clock=round_clock)
        if time.perf_counter() - start < profiled_seconds:
            profiled_seconds, clock, manual = time.perf_counter() - start, round_clock, round_docs
    words = sum(len(doc) for doc in plain)
    parts = sum(s for key, s in clock.seconds.items() if SEP not in key)
    order = {name: i for i, name in enumerate(["tokenizer", *nlp.pipe_names])}
    keys = sorted(clock.seconds, key=lambda k: order[k.split(SEP)[0]])  # stable: sub-stages in call order
    stages = [{"stage": key, "level": key.count(SEP), "seconds": clock.seconds[key], "share": clock.seconds[key] / parts,
               "words_per_second": words / clock.seconds[key] if clock.seconds[key] else None, "calls": clock.calls[key]}
              for key in keys]
    differing = sum(a != b for a, b in zip(entities(plain), entities(manual)))
    return {"docs": len(texts), "words": words, "chars": sum(len(t) for t in texts), "batch_size": batch_size,
            "repeats": repeats,
            "plain_seconds": plain_seconds, "words_per_second": words / plain_seconds,
            "profiled_seconds": profiled_seconds, "parts_seconds": parts, "overhead": profiled_seconds / plain_seconds - 1,
            "same_entities": differing == 0, "differing_docs": differing, "entities": sum(len(d.ents) for d in plain),
            "restored_docs": sum(bool(getattr(d._, "case_free", None) or getattr(d._, "case_free_passages", None))
                                 for d in manual if d.has_extension("case_free")),
            "stages": stages}


def int8_components(nlp: Any) -> List[str]:
    """The transformer components holding the package's Int8Linear layers."""
    from spacy_domain_ner.models.quantize import quantized_components

    names = quantized_components(nlp)
    if not names:
        return []
    from spacy_domain_ner.models.int8 import Int8Linear

    return [n for n in names if any(isinstance(m, Int8Linear) for m in nlp.get_pipe(n).model.layers[0].shims[0]._model.modules())]


def run(*, pipeline: str, mode: str, texts: str, limit: Optional[int], chars: Optional[int], batch_size: int,
        threads: Optional[int], repeats: int = 1) -> Dict[str, Any]:
    """One run: load the pipeline in a mode and profile it on the texts."""
    from spacy_domain_ner.models.quantize import load_with_quantization

    if threads:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    nlp = load_with_quantization(pipeline, quantize=MODES[mode])
    result = {"name": f"{Path(pipeline).name} [{mode}]", "pipeline": pipeline, "mode": mode,
              "load_seconds": time.perf_counter() - start, "loaded_mb": current_rss_mb(), "pipes": nlp.pipe_names,
              "int8": int8_components(nlp),
              **profile(nlp, load_texts(Path(texts), limit=limit, chars=chars), batch_size=batch_size, repeats=repeats)}
    result["threads"] = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    # ru_maxrss lags the RSS by a few pages: the peak is at least what is held now and after loading
    result["peak_mb"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, current_rss_mb(), result["loaded_mb"])
    return result


def to_markdown(results: Dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# Pipeline profile", "", f"{m['cpus']} CPUs, Python {m['python']}, spaCy {m['spacy']}, torch {m['torch']}. "
             f"Texts: {results['texts']}. Words are spaCy tokens. Share: of the sum of the top-level stages; a "
             "stage's words/s is the pipeline's words over that stage's seconds (its speed if only it ran). Rows "
             "marked › are stages inside the row above them, already counted there.", ""]
    for r in results["runs"]:
        lines += [f"## {r['name']}", "",
                  f"{r['docs']} docs, {r['words']:,} words, batch size {r['batch_size']}, {r['threads']} torch threads, "
                  f"int8: {', '.join(r['int8']) or 'no'}; peak RSS {r['peak_mb']:,.0f} MB (after loading "
                  f"{r['loaded_mb']:,.0f} MB). Plain nlp.pipe {r['plain_seconds']:.2f} s ({r['words_per_second']:,.0f} "
                  f"words/s); the profiled loop {r['profiled_seconds']:.2f} s, its stages sum to {r['parts_seconds']:.2f} s "
                  f"({r['overhead']:+.1%} against plain); same entities as nlp.pipe: "
                  f"{'yes' if r['same_entities'] else 'no, %d docs differ' % r['differing_docs']}; "
                  f"{r['restored_docs']} docs restored by the case restorer.", "",
                  "| stage | seconds | share | words/s if only this ran | calls |", "| --- | ---: | ---: | ---: | ---: |"]
        for s in r["stages"]:
            name = "› " * s["level"] + s["stage"].split(SEP)[-1]
            wps = "–" if s["words_per_second"] is None else f"{s['words_per_second']:,.0f}"
            lines.append(f"| {name} | {s['seconds']:.3f} | {s['share']:.1%} | {wps} | {s['calls']} |")
        lines.append("")
    if len(results["runs"]) > 1:
        runs = results["runs"]
        lines += ["## Side by side (seconds, share)", "", "| stage | " + " | ".join(r["name"] for r in runs) + " |",
                  "| --- |" + " ---: |" * len(runs)]
        for stage in dict.fromkeys(s["stage"] for r in runs for s in r["stages"] if not s["level"]):
            cells = [next((f"{s['seconds']:.3f} ({s['share']:.0%})" for s in r["stages"] if s["stage"] == stage), "–") for r in runs]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        lines.append("| nlp.pipe words/s | " + " | ".join(f"{r['words_per_second']:,.0f}" for r in runs) + " |")
    return "\n".join(lines) + "\n"


def plot(results: Dict[str, Any], path: Path) -> None:
    """Horizontal bars of every stage's seconds, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    stages = list(dict.fromkeys(s["stage"] for r in runs for s in r["stages"]))
    height = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.3 * len(stages) * max(1, len(runs) / 2)))
    for i, r in enumerate(runs):
        seconds = {s["stage"]: s["seconds"] for s in r["stages"]}
        bars = ax.barh([k + i * height for k in range(len(stages))], [seconds.get(s, 0.0) for s in stages], height=height,
                       label=f"{r['name']}: {r['words_per_second']:,.0f} words/s")
        for bar, stage in zip(bars, stages):
            bar.set_alpha(1.0 if SEP not in stage else 0.45)
    ax.set_yticks([k + height * (len(runs) - 1) / 2 for k in range(len(stages))])
    ax.set_yticklabels(["› " * s.count(SEP) + s.split(SEP)[-1] for s in stages], fontsize=8)
    for label, stage in zip(ax.get_yticklabels(), stages):
        label.set_color("black" if SEP not in stage else "dimgray")
    ax.invert_yaxis()
    ax.set_xlabel("seconds (pale, › : a stage inside the one above, already counted there)")
    ax.set_title(f"Where the time goes: {results['texts']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("pipelines", nargs="+", help="Pipeline directories or package names")
    p.add_argument("texts", type=Path, help="Texts: .spacy (the docs' text), .jsonl ('text') or .txt")
    p.add_argument("--output", "-o", type=Path, default=Path("benchmarks/out/profile"), help="Writes OUTPUT.json, .md and .png")
    p.add_argument("--modes", default=None, help=f"Comma-separated, of {', '.join(MODES)} (default: config)")
    p.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None,
                   help="Force the transformer's int8 on (--modes int8) or off (--modes float32)")
    p.add_argument("--batch-size", type=int, default=16, help="nlp.pipe batch size")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=1, help="Rounds of plain and profiled runs, alternated; the fastest of each is kept")
    p.add_argument("--limit", type=int, default=None, help="First N texts")
    p.add_argument("--chars", type=int, default=None, help="Cut each text to its first N characters")
    p.add_argument("--in-process", action="store_true", help="Run every profile in this process (peak RSS then shared)")
    args = p.parse_args(argv)
    modes = args.modes or {None: "config", True: "int8", False: "float32"}[args.quantize]
    args.modes = [m.strip() for m in modes.split(",") if m.strip()]
    if not args.modes or set(args.modes) - set(MODES):
        p.error(f"--modes takes {', '.join(MODES)}, not {modes!r}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    texts = load_texts(args.texts, limit=args.limit, chars=args.chars)  # fails early on a bad source
    results: Dict[str, Any] = {"machine": machine_info(), "texts": f"{args.texts.name}, {len(texts)} texts"
                               + (f" of at most {args.chars:,} chars" if args.chars else ""), "runs": []}
    for pipeline in args.pipelines:
        for mode in args.modes:
            spec = {"pipeline": pipeline, "mode": mode, "texts": str(args.texts), "limit": args.limit,
                    "chars": args.chars, "batch_size": args.batch_size, "threads": args.threads, "repeats": args.repeats}
            print(f"profiling {pipeline} [{mode}]", file=sys.stderr)
            if args.in_process:
                results["runs"].append(run(**spec))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "result.json"
                done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec), str(out)])
                if done.returncode:
                    print(f"error: the run of {pipeline} [{mode}] failed", file=sys.stderr)
                    return 1
                results["runs"].append(json.loads(out.read_text(encoding="utf8")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.output}.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf8")
    Path(f"{args.output}.md").write_text(to_markdown(results), encoding="utf8")
    plot(results, Path(f"{args.output}.png"))
    print(to_markdown(results))
    print(f"wrote {args.output}.json, .md and .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        Path(sys.argv[3]).write_text(json.dumps(run(**json.loads(sys.argv[2]))), encoding="utf8")
    else:
        sys.exit(main())
