"""The tables of benchmarks/speed.py: the results as Markdown, the rows that failed, and the JSON and
Markdown files.
"""
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple


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
