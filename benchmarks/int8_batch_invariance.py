"""Speed and batch invariance of a pipeline's transformer in float32, torch's per-tensor dynamic
int8 (the former qint8 path) and the per-row int8 of `spacy_domain_ner.models.int8` (the current one).

For each input file and each mode: words/s (spaCy tokens, best of --repeats passes of nlp.pipe at
--batch-size, the modes interleaved so that a busy machine slows them alike); the number of texts
whose entities, and whose transformer outputs at their real word pieces (bitwise), differ between
batch size 1 and each of --compare; and, at batch size 1, the texts whose entities differ from
float32's and the mean relative error of the last hidden states against float32 (a proxy for
accuracy, not entity F1). The same float pipeline is loaded once per mode, whatever its config
says about quantization.

usage: python benchmarks/int8_batch_invariance.py MODEL INPUT [INPUT ...] [--limit 24] [--chars 3000]
       python benchmarks/int8_batch_invariance.py --build DIR INPUT ...   (builds DIR first, see --build)

MODEL: a pipeline directory or installed package; INPUT: JSONL ("text" per line), .txt
(paragraphs) or .spacy. --build writes configs/ner_trf.cfg on the offline MiniLM wheel to DIR
with an untrained NER head: its speed and invariance counts are meaningful, its entities are not.
"""
import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed_measure, next to this script
from speed_measure import read_texts  # noqa: E402

from spacy_domain_ner.models.quantize import (KEEP_FLOAT, linear_layers, load_with_quantization,  # noqa: E402
                                              quantize_transformers)

ROOT = Path(__file__).resolve().parent.parent
MODES = ("float32", "per-tensor", "per-row", "per-row-all")
NOTES = {
    "float32": "no quantization",
    "per-tensor": "torch.ao quantize_dynamic: one activation scale per Linear input (the batch), KEEP_FLOAT in float32",
    "per-row": "quantize_transformers default: Int8Linear, a scale per word piece, KEEP_FLOAT in float32",
    "per-row-all": "quantize_transformers(keep_float=()): every Linear layer Int8Linear",
}


def build_pipeline(path: Path) -> None:
    """Save configs/ner_trf.cfg on the offline MiniLM wheel, its NER head initialized but untrained.

    path (Path): The directory to write.
    """
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    config = load_config(ROOT / "configs" / "ner_trf.cfg", interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    text = "The Securities and Exchange Commission sued Acme Holdings in New York ."
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": [(4, 38, "GOVERNMENT"), (44, 57, "BUSINESS"), (61, 69, "LOCATION")]})]
    nlp.initialize(lambda: examples)
    nlp.to_disk(path)


def load_mode(model: str, mode: str) -> Any:
    """The pipeline, float, then quantized as the mode says.

    model (str): A pipeline directory or package name.
    mode (str): One of MODES.
    RETURNS (Language): The pipeline.
    """
    nlp = load_with_quantization(model, quantize=False)
    if mode == "per-row":
        quantize_transformers(nlp)
    elif mode == "per-row-all":
        quantize_transformers(nlp, keep_float=())
    elif mode == "per-tensor":
        from spacy_transformers import Transformer

        for _, pipe in nlp.pipeline:
            if isinstance(pipe, Transformer):
                module = pipe.model.layers[0].shims[0]._model
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.ao.quantization.quantize_dynamic(module, linear_layers(module, keep_float=KEEP_FLOAT),
                                                           dtype=torch.qint8, inplace=True)
    return nlp


def annotate(nlp: Any, texts: List[str], *, batch_size: int) -> List[Any]:
    """Each text's entities and transformer outputs at its real word pieces (their padded width is the batch's)."""
    results = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        outputs = []
        data = doc._.trf_data if doc.has_extension("trf_data") else None
        if data is not None and data.model_output:
            real = numpy.asarray(data.wordpieces.attention_mask).astype(bool)
            for key, value in sorted(data.model_output.items()):
                array = numpy.asarray(value)
                outputs.append((key, array[real] if array.ndim == 3 else array))
        results.append(([(e.text, e.start_char, e.end_char, e.label_) for e in doc.ents], outputs))
    return results


def same_outputs(one: List[Any], other: List[Any]) -> bool:
    """Whether two texts' transformer outputs are bitwise equal."""
    return len(one) == len(other) and all(k1 == k2 and v1.shape == v2.shape and v1.tobytes() == v2.tobytes()
                                          for (k1, v1), (k2, v2) in zip(one, other))


def relative_error(outputs: List[Any], reference: List[Any]) -> float:
    """||h - h_ref|| / ||h_ref|| of the last hidden states at the real word pieces (0 for texts without)."""
    hidden, ref = dict(outputs).get("last_hidden_state"), dict(reference).get("last_hidden_state")
    if hidden is None or ref is None or not ref.size:
        return 0.0
    return float(numpy.linalg.norm(hidden - ref) / max(numpy.linalg.norm(ref), 1e-12))


def words_per_second(nlp: Any, texts: List[str], *, batch_size: int) -> float:
    start = time.perf_counter()
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    return words / (time.perf_counter() - start)


def measure(model: str, inputs: Dict[str, List[str]], *, modes: List[str], batch_size: int, compare: List[int],
            repeats: int) -> Dict[str, Any]:
    """Invariance counts and words/s of every mode on every input (see the module docstring).

    model (str): A pipeline directory or package name.
    inputs (Dict[str, List[str]]): Texts by input name.
    modes (List[str]): Of MODES.
    batch_size (int): nlp.pipe batch size of the speed passes.
    compare (List[int]): Batch sizes whose annotations are compared with batch size 1.
    repeats (int): Speed passes per mode and input; the best counts.
    RETURNS (Dict[str, Any]): {"inputs": {name: {mode: {...}}}, "machine": {...}}.
    """
    pipelines = {mode: load_mode(model, mode) for mode in modes}
    results: Dict[str, Any] = {}
    for name, texts in inputs.items():
        rows = results[name] = {}
        reference = None
        for mode, nlp in pipelines.items():
            alone = annotate(nlp, texts, batch_size=1)
            row = rows[mode] = {"texts": len(texts), "words": sum(len(doc) for doc in nlp.tokenizer.pipe(texts)),
                                "note": NOTES[mode]}
            for size in compare:
                batched = annotate(nlp, texts, batch_size=size)
                row[f"entities_differ_b{size}"] = sum(a[0] != b[0] for a, b in zip(alone, batched))
                row[f"outputs_differ_b{size}"] = sum(not same_outputs(a[1], b[1]) for a, b in zip(alone, batched))
            if mode == "float32":
                reference = alone
            elif reference is not None:  # batch size 1 against batch size 1
                row["entities_differ_from_float32"] = sum(a[0] != r[0] for a, r in zip(alone, reference))
                errors = [relative_error(a[1], r[1]) for a, r in zip(alone, reference)]
                row["relative_error_vs_float32"] = round(float(numpy.mean(errors)), 5)
        speeds: Dict[str, List[float]] = {mode: [] for mode in modes}
        for _ in range(repeats):
            for mode, nlp in pipelines.items():
                speeds[mode].append(words_per_second(nlp, texts, batch_size=batch_size))
        for mode in modes:
            rows[mode]["words_per_second"] = round(max(speeds[mode]))
            rows[mode]["words_per_second_all"] = [round(s) for s in speeds[mode]]
    machine = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    return {"model": model, "batch_size": batch_size, "compare": compare, "repeats": repeats, "machine": machine,
            "inputs": results}


def to_markdown(result: Dict[str, Any]) -> str:
    compare = result["compare"]
    head = ["input", "mode", "words/s", *(f"ents differ b1 vs b{s}" for s in compare),
            *(f"outputs differ b1 vs b{s}" for s in compare), "ents differ from float32", "rel. error vs float32"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, rows in result["inputs"].items():
        for mode, row in rows.items():
            cells = [name, mode, f"{row['words_per_second']:,}",
                     *(f"{row[f'entities_differ_b{s}']}/{row['texts']}" for s in compare),
                     *(f"{row[f'outputs_differ_b{s}']}/{row['texts']}" for s in compare),
                     f"{row['entities_differ_from_float32']}/{row['texts']}" if "entities_differ_from_float32" in row else "",
                     f"{row['relative_error_vs_float32']:.4f}" if "relative_error_vs_float32" in row else ""]
            lines.append("| " + " | ".join(cells) + " |")
    machine = result["machine"]
    lines.append(f"\nbatch size {result['batch_size']} for words/s (best of {result['repeats']}); torch {machine['torch']}, "
                 f"{machine['threads']} threads, {machine['cpu_capability']}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="Pipeline directory or package name (with --build: the directory to write)")
    p.add_argument("inputs", nargs="+", type=Path, help="JSONL, .txt or .spacy files")
    p.add_argument("--build", action="store_true", help="First write MODEL: configs/ner_trf.cfg on the MiniLM wheel, untrained NER head")
    p.add_argument("--limit", type=int, default=0, help="First this many texts of each input (0: all)")
    p.add_argument("--chars", type=int, default=0, help="First this many characters of each text (0: all)")
    p.add_argument("--modes", default=",".join(MODES[:3]), help=f"Comma-separated, of {', '.join(MODES)}")
    p.add_argument("--batch-size", type=int, default=16, help="nlp.pipe batch size of the speed passes")
    p.add_argument("--compare", default="8,16", help="Batch sizes compared with batch size 1")
    p.add_argument("--repeats", type=int, default=3, help="Speed passes per mode and input (best counts)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--output", type=Path, help="Also write the results as JSON here")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        p.error(f"--modes: expected some of {', '.join(MODES)}, got {args.modes!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.build:
        build_pipeline(Path(args.model))
    inputs = {}
    for path in args.inputs:
        texts = [t if isinstance(t, str) else t.text for t in read_texts(path)]
        texts = texts[: args.limit] if args.limit else texts
        inputs[path.name] = [t[: args.chars] for t in texts] if args.chars else texts
    result = measure(args.model, inputs, modes=modes, batch_size=args.batch_size,
                     compare=[int(s) for s in args.compare.split(",") if s], repeats=args.repeats)
    print(to_markdown(result))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    return result


if __name__ == "__main__":
    main()
