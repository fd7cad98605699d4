"""Score NER predictions against gold Docs: entity P/R/F, a token-level BIO report,
a label confusion table, a seeded sample of errors with context, and speed.

Entity scores are spaCy's own (`spacy.scorer.get_ner_prf`, what `spacy evaluate`
reports): exact span and label match, with predicted entities projected onto the
gold tokens through `Example` alignment, so a pipeline whose tokenizer differs
from the gold tokenization is scored correctly. The token report and the
confusion table use the same projection.

Span matching for the confusion table and the errors, per document, one to one:
1. exact boundaries and the same label: correct;
2. exact boundaries, another label: a "label" error;
3. the remaining pairs by largest token overlap (ties: earliest gold, then
   earliest prediction): a "boundary" error with the same label,
   "label_boundary" with another;
4. a gold entity left over is "missed" (predicted as O), a prediction left over
   is "spurious" (gold O).
As in spaCy's scorer, a prediction that touches gold tokens with missing
annotation is ignored, and so are docs without entity annotation.

`evaluate_pipeline` runs the pipeline's own tokenizer on the gold texts. (`spacy
evaluate` instead feeds the gold tokens to the pipeline when a gold Doc has
unknown whitespace, as Docs converted from token-per-line corpora do, so its
scores on such corpora can differ from these.)

The token report has the layout of scikit-learn's
`classification_report(y_true, y_pred, labels=<every tag but O>, output_dict=True,
zero_division=0)` over the BIO tags of the gold tokens: O is left out of the
averages (it would dominate them); `token_accuracy` counts every token.

`units` keeps the entity counts per source document, from which `evaluation.bootstrap` gives an
interval of the F1 (`n_resamples`) and `compare` the paired interval of two pipelines' difference.
"""
import random
import time
from collections import Counter, defaultdict
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.vocab import Vocab
from tqdm import tqdm

from ..corpus.labels import LabelMap
from ..io.atomic import write_all_atomically
from .bootstrap import f1_interval, unit_counts
from .boundaries import boundary_errors, boundary_table
from .markdown import pct, table
from .scoring import SpanKey, bio_tags, match_spans, project_predictions, token_report

ERROR_TYPES = ("label", "boundary", "label_boundary", "missed", "spurious")
CONTEXT_TOKENS = 10


def load_gold(path: Path, *, vocab: Optional[Vocab] = None) -> List[Doc]:
    """Read the Docs of a DocBin file.

    path (Path): The .spacy file.
    vocab (Optional[Vocab]): The vocab of the Docs; a new one by default.
    RETURNS (List[Doc]): The Docs, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        docs = list(DocBin().from_disk(path).get_docs(vocab or Vocab()))
    except Exception as err:  # msgpack/zlib raise many types on a file that is not a DocBin
        raise ValueError(f"{path}: not a spaCy DocBin file ({type(err).__name__}: {err})") from None
    if not docs:
        raise ValueError(f"{path}: the DocBin has no documents")
    return docs


def whole_documents(docs: Sequence[Doc]) -> List[Doc]:
    """Join the consecutive Docs of one source document (`user_data["doc_id"]`) into one Doc.

    `convert` cuts a token-per-line corpus into Docs of `n_sents` sentences, for training; an
    application (and `annotate`) feeds whole documents, and the document-level components
    (consistency, defined short forms) need them. Docs without a doc_id stay as they are.

    docs (Sequence[Doc]): Gold Docs in file order.
    RETURNS (List[Doc]): One Doc per run of Docs with the same doc_id, its text the run's texts joined.
    """
    joined: List[Doc] = []
    run: List[Doc] = []

    def close() -> None:
        if run:
            with warnings.catch_warnings():  # spaCy warns that it does not merge user_data: the doc_id is set below
                warnings.filterwarnings("ignore", message=r"\[W102\]")
                doc = run[0] if len(run) == 1 else Doc.from_docs(run, ensure_whitespace=True)
            doc.user_data["doc_id"] = run[0].user_data["doc_id"]
            joined.append(doc)
            run.clear()

    for doc in docs:
        doc_id = doc.user_data.get("doc_id")
        if doc_id is None or (run and run[0].user_data["doc_id"] != doc_id):
            close()
        if doc_id is None:
            joined.append(doc)
        else:
            run.append(doc)
    close()
    return joined


def _spans_as_ents(doc: Doc, key: str, i: int) -> Doc:
    """A copy of the Doc whose entities are doc.spans[key] (absent key: an error, not silently no entities)."""
    if key not in doc.spans:
        raise ValueError(f"predicted doc {i}: no doc.spans[{key!r}] (keys: {sorted(doc.spans)}); does the pipeline write that key?")
    new = doc.copy()
    try:
        new.set_ents(list(doc.spans[key]), default="outside")
    except ValueError as err:
        raise ValueError(f"predicted doc {i}: doc.spans[{key!r}] cannot be scored as entities ({err})") from None
    return new


def apply_label_map(docs: Sequence[Doc], label_map: Optional[LabelMap], *, name: str = "gold") -> List[Doc]:
    """Copy Docs with their entity labels mapped; a label mapped to null drops the entity (its tokens become O).

    Only `label_map.labels`/`unmapped` apply here; raw tag fixes (`tags`) are a conversion-time matter.

    docs (Sequence[Doc]): The Docs (not modified).
    label_map (Optional[LabelMap]): The map; None returns the Docs themselves.
    name (str): "gold" or "predicted", for error messages.
    RETURNS (List[Doc]): The mapped Docs.
    """
    if label_map is None:
        return list(docs)
    mapped = []
    for i, doc in enumerate(docs):
        new = doc.copy()
        kept, dropped = label_map.map_spans(new.ents, context=lambda ent: f"{name} doc {i}, entity {ent.text!r}")
        # "unmodified" keeps tokens with missing annotation missing
        new.set_ents(kept, outside=dropped, default="unmodified")
        mapped.append(new)
    return mapped


def _context(doc: Doc, gold: Optional[SpanKey], pred: Optional[SpanKey]) -> str:
    """The text around an error, gold span in [[...]], predicted span (on the gold tokens) in {{...}}."""
    spans = [s for s in (gold, pred) if s is not None]
    lo = max(0, min(s[0] for s in spans) - CONTEXT_TOKENS)
    hi = min(len(doc), max(s[1] for s in spans) + CONTEXT_TOKENS)
    first, last = doc[lo].idx, doc[hi - 1].idx + len(doc[hi - 1].text)
    # (char, order, marker): at one position closings come before openings, {{ nests inside [[.
    marks = []
    for span, (opening, closing), inner in ((gold, ("[[", "]]"), 0), (pred, ("{{", "}}"), 1)):
        if span is not None:
            marks.append((doc[span[0]].idx, 2 + inner, opening))
            marks.append((doc[span[1] - 1].idx + len(doc[span[1] - 1].text), 1 - inner, closing))
    pieces, cursor = [], first
    for char, _, marker in sorted(marks):
        pieces.extend([doc.text[cursor:char], marker])
        cursor = char
    pieces.append(doc.text[cursor:last])
    text = " ".join("".join(pieces).split())
    return ("… " if lo > 0 else "") + text + (" …" if hi < len(doc) else "")


def evaluate_docs(
    predicted: List[Doc], gold: List[Doc], *, gold_map: Optional[LabelMap] = None,
    pred_map: Optional[LabelMap] = None, n_errors: int = 20, seed: int = 0, n_resamples: int = 0,
) -> Dict[str, Any]:
    """Score predicted Docs against gold Docs of the same texts (no pipeline involved).

    predicted (List[Doc]): The pipeline's Docs.
    gold (List[Doc]): The gold Docs, in the same order.
    gold_map (Optional[LabelMap]): Maps the gold labels to the evaluation label set.
    pred_map (Optional[LabelMap]): Maps the predicted labels to the evaluation label set.
    n_errors (int): How many errors to sample (all when there are fewer).
    seed (int): Seed of the error sample and of the bootstrap.
    n_resamples (int): With n_resamples > 0, ents_f_interval: the 95% percentile-bootstrap interval
        of ents_f over source documents (`evaluation.bootstrap.f1_interval`).
    RETURNS (Dict[str, Any]): ents_p, ents_r, ents_f (None without any entity), ents_per_type,
        token_report, token_accuracy, confusion, errors, boundaries (each gold entity's boundary class,
        `evaluation.boundaries`), speed (None here), units (entity counts per
        source document, `doc.user_data["doc_id"]` or the Doc's index: what `compare` pairs), and
        ents_f_interval when asked for.
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted docs but {len(gold)} gold docs")
    if n_errors < 0:
        raise ValueError(f"n_errors must be >= 0, not {n_errors}")
    for i, (pred, ref) in enumerate(zip(predicted, gold)):
        if pred.text != ref.text:
            raise ValueError(f"doc {i}: the predicted text differs from the gold text ({pred.text[:40]!r}...)")
    gold = apply_label_map(gold, gold_map, name="gold")
    predicted = apply_label_map(predicted, pred_map, name="predicted")
    # spaCy's scorer skips docs without entity annotation; so does everything below
    indexed = [(i, Example(pred, ref)) for i, (pred, ref) in enumerate(zip(predicted, gold)) if ref.has_annotation("ENT_IOB")]
    scores = get_ner_prf([eg for _, eg in indexed])
    kinds: Counter = Counter()
    counts: Dict[str, Counter] = defaultdict(Counter)
    matrix: Dict[Tuple[str, str], int] = Counter()
    errors: List[Dict[str, Any]] = []
    y_true: List[str] = []
    y_pred: List[str] = []
    unit_rows: List[Tuple[str, int, int, int]] = []
    spans_per_doc: List[Tuple[Doc, List[SpanKey], List[SpanKey]]] = []
    for i, eg in indexed:
        ref = eg.reference
        gold_spans = [(e.start, e.end, e.label_) for e in ref.ents]
        pred_spans = project_predictions(eg)
        known = [t.ent_iob != 0 for t in ref]
        true_tags, pred_tags = bio_tags(len(ref), gold_spans), bio_tags(len(ref), pred_spans)
        y_true.extend(t for t, k in zip(true_tags, known) if k)
        y_pred.extend(t for t, k in zip(pred_tags, known) if k)
        matches = match_spans(gold_spans, pred_spans)
        spans_per_doc.append((ref, gold_spans, pred_spans))
        # the counts of spaCy's scorer: one-to-one exact matches, every projected prediction, every gold entity
        unit = ref.user_data.get("doc_id")
        unit_rows.append((f"doc {i}" if unit is None else str(unit), sum(m[0] == "correct" for m in matches),
                          len(pred_spans), len(gold_spans)))
        for kind, g, p in matches:
            g_span = gold_spans[g] if g is not None else None
            p_span = pred_spans[p] if p is not None else None
            g_label, p_label = (g_span[2] if g_span else "O"), (p_span[2] if p_span else "O")
            matrix[(g_label, p_label)] += 1
            kinds[kind] += 1
            counts[g_label]["tp" if kind == "correct" else "fn"] += g_span is not None
            counts[p_label]["fp"] += kind != "correct" and p_span is not None
            if kind != "correct":
                errors.append({
                    "type": kind, "doc": i,
                    "doc_id": ref.user_data.get("doc_id"),
                    "gold": {"label": g_label, "text": ref[g_span[0] : g_span[1]].text} if g_span else None,
                    "predicted": {"label": p_label, "text": ref[p_span[0] : p_span[1]].text} if p_span else None,
                    "context": _context(ref, g_span, p_span),
                })
    counts.pop("O", None)
    per_type = {}
    for label, prf in sorted((scores["ents_per_type"] or {}).items()):
        c = counts[label]
        per_type[label] = {**prf, "tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "support": c["tp"] + c["fn"]}
    labels = sorted({label for pair in matrix for label in pair} - {"O"}) + ["O"]
    rng = random.Random(seed)
    sample = sorted(rng.sample(range(len(errors)), min(n_errors, len(errors))))
    units = unit_counts(unit_rows)
    extra: Dict[str, Any] = {}
    if n_resamples > 0:
        extra["ents_f_interval"] = f1_interval(units, n_resamples=n_resamples, seed=seed)
    return {
        "ents_p": scores["ents_p"], "ents_r": scores["ents_r"], "ents_f": scores["ents_f"],
        "ents_per_type": per_type,
        "token_report": token_report(y_true, y_pred),
        "token_accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true) if y_true else None,
        "confusion": {
            "matching": "exact boundaries (same label, then other label), then largest token overlap, one to one; "
            "O = no entity (gold O: spurious, predicted O: missed)",
            "labels": labels,
            "matrix": {g: {p: matrix[(g, p)] for p in labels} for g in labels},
            "counts": {kind: kinds[kind] for kind in ("correct",) + ERROR_TYPES},
        },
        "errors": {"total": len(errors), "seed": seed, "sample": [errors[j] for j in sample]},
        "boundaries": boundary_errors(spans_per_doc),
        "speed": None,
        "n_docs": len(gold), "n_tokens": sum(len(d) for d in gold),
        "units": units,
        **extra,
    }


def evaluate_pipeline(
    nlp: Language, gold_docs: List[Doc], *, batch_size: int = 64, gold_map: Optional[LabelMap] = None,
    pred_map: Optional[LabelMap] = None, n_errors: int = 20, seed: int = 0, progress: bool = True,
    desc: str = "evaluate", spans_key: Optional[str] = None, n_resamples: int = 0,
) -> Dict[str, Any]:
    """Run a pipeline over the gold texts and score it, with its speed.

    nlp (Language): The pipeline.
    gold_docs (List[Doc]): The gold Docs; the pipeline reads their texts.
    batch_size (int): Batch size of `nlp.pipe`.
    gold_map, pred_map, n_errors, seed, n_resamples: See `evaluate_docs`.
    progress (bool): Show a tqdm progress bar.
    desc (str): The progress bar's label.
    spans_key (Optional[str]): Score the predicted `doc.spans[spans_key]` instead of `doc.ents`,
        e.g. "general" for the multi-task pipeline's general head.
    RETURNS (Dict[str, Any]): The `evaluate_docs` result, with speed: words (the pipeline's tokens),
        docs, seconds, words_per_second, batch_size; and training_performance: the entity P/R/F of
        the pipeline's meta.json (dev scores at training), empty if it has none.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    texts = [doc.text for doc in gold_docs]
    start = time.perf_counter()
    predicted = list(
        tqdm(nlp.pipe(texts, batch_size=batch_size), total=len(texts), desc=desc, unit="doc", disable=not progress)
    )
    seconds = time.perf_counter() - start
    if spans_key is not None:
        predicted = [_spans_as_ents(doc, spans_key, i) for i, doc in enumerate(predicted)]
    result = evaluate_docs(predicted, gold_docs, gold_map=gold_map, pred_map=pred_map, n_errors=n_errors, seed=seed,
                           n_resamples=n_resamples)
    n_words = sum(len(doc) for doc in predicted)
    result["speed"] = {
        "words": n_words, "docs": len(predicted), "seconds": seconds,
        "words_per_second": n_words / seconds if seconds > 0 else None, "batch_size": batch_size,
    }
    # The dev scores of training (meta.json), kept here so that the report reads metrics files only.
    performance = nlp.meta.get("performance") or {}
    result["training_performance"] = {key: performance[key] for key in ("ents_p", "ents_r", "ents_f") if key in performance}
    return result


def report_markdown(result: Dict[str, Any]) -> str:
    """A Markdown report of an evaluation result (entity scores in %, token report as fractions).

    result (Dict[str, Any]): The result of `evaluate_docs` / `evaluate_pipeline`, maybe with `robustness`.
    RETURNS (str): The report.
    """
    lines = ["# NER evaluation", "", f"{result.get('n_docs', '?')} docs, {result.get('n_tokens', '?')} gold tokens.", ""]
    lines += ["## Entities (exact span and label)", ""]
    lines += table(["", "P", "R", "F"], [["all", pct(result["ents_p"]), pct(result["ents_r"]), pct(result["ents_f"])]])
    interval = result.get("ents_f_interval")
    if interval and interval["low"] is not None:
        lines += [f"F {pct(interval['f'])}: {interval['confidence']:.0%} bootstrap interval {pct(interval['low'])}–"
                  f"{pct(interval['high'])} over {interval['n_units']} source documents "
                  f"({interval['n_resamples']} resamples).", ""]
    lines += table(
        ["label", "P", "R", "F", "TP", "FP", "FN", "support"],
        [[label, pct(s["p"]), pct(s["r"]), pct(s["f"]), s["tp"], s["fp"], s["fn"], s["support"]]
         for label, s in result["ents_per_type"].items()],
    )
    lines += ["## Tokens (BIO tags; O left out of the averages)", ""]
    lines += table(
        ["tag", "precision", "recall", "f1-score", "support"],
        [[tag, f"{s['precision']:.4f}", f"{s['recall']:.4f}", f"{s['f1-score']:.4f}", s["support"]]
         for tag, s in result["token_report"].items()],
    )
    if result.get("token_accuracy") is not None:
        lines += [f"Token accuracy (all tags): {result['token_accuracy']:.4f}", ""]
    confusion = result["confusion"]
    lines += ["## Confusion (rows: gold, columns: predicted)", "", f"Matching: {confusion['matching']}.", ""]
    lines += table(["gold \\ predicted"] + confusion["labels"],
                    [[g] + [confusion["matrix"][g][p] for p in confusion["labels"]] for g in confusion["labels"]])
    lines += [", ".join(f"{kind}: {n}" for kind, n in confusion["counts"].items()), ""]
    boundaries = result.get("boundaries")
    if boundaries:
        lines += ["## Boundaries (each gold entity by what the predictions overlapping it did; spurious by predicted label)", ""]
        lines += table(*boundary_table(boundaries))
        lines += ["Of the boundary errors, predicted (in part) with the gold label: "
                  + ", ".join(f"{kind} {n}" for kind, n in boundaries["same_label"].items()) + ".", ""]
        for kind, found in boundaries["examples"].items():
            if found:
                lines += [f"- {kind}: " + "; ".join(
                    f"{e['gold'] or '–'} → {' + '.join(e['predicted']) or '–'}" for e in found)]
        lines += [""]
    errors = result["errors"]
    lines += ["## Errors", "", f"{len(errors['sample'])} of {errors['total']} errors (seed {errors['seed']}); "
              "gold span in [[...]], predicted span in {{...}}.", ""]
    lines += table(
        ["type", "doc", "gold", "predicted", "context"],
        [[e["type"], e["doc_id"] if e.get("doc_id") is not None else e["doc"],
          f"{e['gold']['text']} ({e['gold']['label']})" if e["gold"] else "–",
          f"{e['predicted']['text']} ({e['predicted']['label']})" if e["predicted"] else "–", e["context"]]
         for e in errors["sample"]],
    )
    speed = result.get("speed")
    if speed:
        wps = speed["words_per_second"]
        lines += ["## Speed", "", f"{speed['words']} words in {speed['seconds']:.2f} s: "
                  f"{'–' if wps is None else f'{wps:,.0f}'} words/s (batch size {speed['batch_size']}).", ""]
    robustness = result.get("robustness")
    if robustness:
        lines += ["## Robustness (entity scores on perturbed gold sets)", "", f"Seed {robustness['seed']}.", ""]
        lines += table(
            ["perturbation", "P", "R", "F", "ΔF", "entities changed"],
            [[r["perturbation"], pct(r["ents_p"]), pct(r["ents_r"]), pct(r["ents_f"]),
              "–" if r["delta_f"] is None else f"{100 * r['delta_f']:+.2f}", f"{r['entities_changed']}/{r['entities']}"]
             for r in robustness["rows"]],
        )
    return "\n".join(lines)


def write_report(result: Dict[str, Any], *, output: Path, markdown: Optional[Path] = None) -> None:
    """Write the JSON result (and a Markdown report); both appear only once both are complete.

    result (Dict[str, Any]): The evaluation result.
    output (Path): The JSON file.
    markdown (Optional[Path]): The Markdown file, or None.
    """
    targets = [(Path(output), lambda p: srsly.write_json(p, result))]
    if markdown is not None:
        targets.append((Path(markdown), lambda p: Path(p).write_text(report_markdown(result), encoding="utf8")))
    write_all_atomically(targets)
