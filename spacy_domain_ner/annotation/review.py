"""Export annotated records for review: tasks for Label Studio, doccano or Prodigy, most useful first.

Input: the output of `annotate` (one JSON object per line: the input's fields, its id and
`"entities": [{"start", "end", "label", "text", "confidence"?, "kb_id"?}]`), and optionally its
review file (`--min-confidence`: the entities scored below the threshold, by record). The review
file's entities go back into their record, so a reviewer sees every entity the model found.

Order (`strategy`), so that a reviewer's hour goes to the records the model is least sure of:

- `lowest-mean`: the lowest mean entity confidence first;
- `lowest-min`: the lowest single entity confidence first;
- `most-uncertain`: the most entities below `threshold` first (ties: lowest mean);
- `random`: shuffled with `seed` (the baseline a selection strategy must beat).

Entities without a confidence do not count; a record without a scored entity comes after every
record with one (confidence cannot say what it missed), in input order. `limit` keeps the first N.

Output, one task per record, nothing of the record lost or altered:

- `labelstudio`: a JSON list of tasks; `data` holds every field of the record but `entities`
  (so `data.text` and `data.id`), `predictions` the entities as `labels` results with their
  confidence as `score` (and the record's mean as the prediction's score), to review in Label
  Studio's NER template (`from_name` "label", `to_name` "text");
- `doccano`: JSONL, the record with `"label": [[start, end, LABEL], ...]` added;
- `prodigy`: JSONL, the record with `"spans": [{"start", "end", "label", "score"?}]` added.

`convert` reads the reviewers' exports of these formats back (`--format labelstudio|jsonl`),
keeping the record ids.
"""
import json
import random
from pathlib import Path
from statistics import mean
from typing import Any, Dict, List, Optional, Tuple

from ..io.atomic import write_all_atomically
from ..io.jsonl import iter_jsonl

STRATEGIES = ("lowest-mean", "lowest-min", "most-uncertain", "random")
FORMATS = ("labelstudio", "doccano", "prodigy")


class ReviewError(ValueError):
    """Bad annotated input; the message starts with its location (file:line)."""


def _check_record(record: Any, *, location: str, text_key: str, id_key: str) -> Dict[str, Any]:
    if not isinstance(record, dict):
        raise ReviewError(f"{location}: not a JSON object")
    if not isinstance(record.get(text_key), str):
        raise ReviewError(f"{location}: no {text_key!r} string (annotate without --no-text to export for review)")
    if id_key not in record:
        raise ReviewError(f"{location}: no {id_key!r}")
    entities = record.get("entities")
    if not isinstance(entities, list):
        raise ReviewError(f"{location}: no 'entities' list (is this the output of annotate?)")
    for ent in entities:
        if not isinstance(ent, dict) or not {"start", "end", "label"} <= set(ent):
            raise ReviewError(f"{location}: an entity needs start, end and label: {ent!r}")
        if not 0 <= ent["start"] < ent["end"] <= len(record[text_key]):
            raise ReviewError(f"{location}: entity {ent!r} is outside the text")
    return record


def read_annotated(path: Path, *, review: Optional[Path] = None, text_key: str = "text",
                   id_key: str = "id") -> List[Dict[str, Any]]:
    """The annotated records, with the entities of the review file back in their records.

    path (Path): The output JSONL of `annotate`.
    review (Optional[Path]): Its review JSONL (`--min-confidence`), or None.
    text_key (str): The text field.
    id_key (str): The id field.
    RETURNS (List[Dict[str, Any]]): The records in input order, entities sorted by start.
    """
    records: List[Dict[str, Any]] = []
    by_id: Dict[Any, Dict[str, Any]] = {}
    for line in iter_jsonl(path, error=lambda location, message: ReviewError(f"{location}: {message}")):
        record = _check_record(line.value, location=line.location, text_key=text_key, id_key=id_key)
        key = json.dumps(record[id_key])
        if key in by_id:
            raise ReviewError(f"{line.location}: id {record[id_key]!r} occurs twice")
        by_id[key] = record
        records.append(record)
    if review is not None:
        for line in iter_jsonl(review, error=lambda location, message: ReviewError(f"{location}: {message}")):
            uncertain = _check_record(line.value, location=line.location, text_key=text_key, id_key=id_key)
            record = by_id.get(json.dumps(uncertain[id_key]))
            if record is None:
                raise ReviewError(f"{line.location}: id {uncertain[id_key]!r} is not in {path}")
            record["entities"] = sorted(record["entities"] + uncertain["entities"], key=lambda e: (e["start"], e["end"]))
    return records


def _confidences(record: Dict[str, Any]) -> List[float]:
    return [e["confidence"] for e in record["entities"] if isinstance(e.get("confidence"), (int, float))]


def selection_key(record: Dict[str, Any], *, strategy: str, threshold: float) -> Tuple:
    """The sort key of a record under a strategy other than `random` (smaller: reviewed first).

    record (Dict[str, Any]): An annotated record.
    strategy (str): One of STRATEGIES but "random".
    threshold (float): The confidence below which an entity is uncertain (`most-uncertain`).
    RETURNS (Tuple): The key; records without a scored entity sort after all others.
    """
    scores = _confidences(record)
    if not scores:
        return (1,)
    if strategy == "lowest-mean":
        return (0, mean(scores))
    if strategy == "lowest-min":
        return (0, min(scores), mean(scores))
    if strategy == "most-uncertain":
        return (0, -sum(s < threshold for s in scores), mean(scores))
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")


def order_records(records: List[Dict[str, Any]], *, strategy: str, threshold: float = 0.8,
                  seed: int = 0, limit: Optional[int] = None) -> List[Dict[str, Any]]:
    """The records in the order a reviewer should see them.

    records (List[Dict[str, Any]]): Annotated records in input order.
    strategy (str): One of STRATEGIES.
    threshold (float): See `selection_key`.
    seed (int): The shuffle's seed (`random`).
    limit (Optional[int]): Keep the first N; None keeps all.
    RETURNS (List[Dict[str, Any]]): The selected records (stable: ties keep input order).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be at least 0, not {limit}")
    if strategy == "random":
        ordered = list(records)
        random.Random(seed).shuffle(ordered)
    else:
        ordered = sorted(records, key=lambda r: selection_key(r, strategy=strategy, threshold=threshold))
    return ordered if limit is None else ordered[:limit]


def to_task(record: Dict[str, Any], *, fmt: str, text_key: str = "text", model_version: str = "") -> Dict[str, Any]:
    """One record as a review task.

    record (Dict[str, Any]): An annotated record.
    fmt (str): One of FORMATS.
    text_key (str): The text field.
    model_version (str): Label Studio's `model_version` of the predictions.
    RETURNS (Dict[str, Any]): The task.
    """
    text, entities = record[text_key], record["entities"]
    if fmt == "labelstudio":
        data = {key: value for key, value in record.items() if key != "entities"}
        data["text"] = text
        results = []
        for i, ent in enumerate(entities):
            result = {"id": f"e{i}", "from_name": "label", "to_name": "text", "type": "labels",
                      "value": {"start": ent["start"], "end": ent["end"], "text": text[ent["start"]:ent["end"]],
                                "labels": [ent["label"]]}}
            if isinstance(ent.get("confidence"), (int, float)):
                result["score"] = ent["confidence"]
            results.append(result)
        prediction: Dict[str, Any] = {"model_version": model_version, "result": results}
        scores = _confidences(record)
        if scores:
            prediction["score"] = mean(scores)
        return {"data": data, "predictions": [prediction]}
    if fmt == "doccano":
        return {**record, "label": [[e["start"], e["end"], e["label"]] for e in entities]}
    if fmt == "prodigy":
        spans = [{"start": e["start"], "end": e["end"], "label": e["label"],
                  **({"score": e["confidence"]} if isinstance(e.get("confidence"), (int, float)) else {})}
                 for e in entities]
        return {**record, "spans": spans}
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def export_review(annotated: Path, output: Path, *, review: Optional[Path] = None, fmt: str = "labelstudio",
                  strategy: str = "lowest-mean", threshold: float = 0.8, seed: int = 0, limit: Optional[int] = None,
                  text_key: str = "text", id_key: str = "id", model_version: str = "") -> Dict[str, Any]:
    """Write review tasks for the annotated records, most useful first, and say what was written.

    annotated (Path): The output JSONL of `annotate`.
    output (Path): The tasks: JSON (labelstudio) or JSONL (doccano, prodigy); written atomically.
    review (Optional[Path]): The review JSONL of the same run, merged back into its records.
    fmt (str): One of FORMATS.
    strategy (str): One of STRATEGIES.
    threshold (float): Below it an entity is uncertain.
    seed (int): The seed of `random`.
    limit (Optional[int]): Export the first N records of the order.
    text_key (str): The text field.
    id_key (str): The id field.
    model_version (str): Label Studio's `model_version` of the predictions.
    RETURNS (Dict[str, Any]): The summary: records read = exported + left, entities exported, per
        record the id in export order.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    records = read_annotated(annotated, review=review, text_key=text_key, id_key=id_key)
    selected = order_records(records, strategy=strategy, threshold=threshold, seed=seed, limit=limit)
    tasks = [to_task(r, fmt=fmt, text_key=text_key, model_version=model_version) for r in selected]

    def write(path: Path) -> None:
        with path.open("w", encoding="utf8") as f:
            if fmt == "labelstudio":
                json.dump(tasks, f, ensure_ascii=False, indent=1)
            else:
                f.writelines(json.dumps(task, ensure_ascii=False) + "\n" for task in tasks)

    write_all_atomically([(output, write)])
    entities = sum(len(r["entities"]) for r in selected)
    return {"output": str(output), "format": fmt, "strategy": strategy, "threshold": threshold, "seed": seed,
            "records": len(records), "records_exported": len(selected), "records_left": len(records) - len(selected),
            "entities": sum(len(r["entities"]) for r in records), "entities_exported": entities,
            "ids": [r[id_key] for r in selected]}

