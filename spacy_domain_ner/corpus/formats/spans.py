"""Character-offset corpora: JSONL (doccano and Prodigy forms) and Label Studio exports."""
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from ...io.jsonl import parse_jsonl
from .base import ConversionError, SpanRecord, read_text

CharSpan = Tuple[int, int, str]


def _check_spans(location: str, text: str, spans: List[CharSpan]) -> List[CharSpan]:
    """Validate offsets and overlaps; returns the spans sorted by start."""
    for start, end, label in spans:
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
            raise ConversionError(location, f"span offsets must be integers, got [{start!r}, {end!r}, {label!r}]")
        if not isinstance(label, str) or not label:
            raise ConversionError(location, f"span [{start}, {end}] has no label")
        if not 0 <= start < end <= len(text):
            raise ConversionError(
                location, f"span [{start}, {end}, {label!r}] is outside the text of length {len(text)} or empty"
            )
    ordered = sorted(spans, key=lambda s: (s[0], s[1]))
    for prev, cur in zip(ordered, ordered[1:]):
        if cur[0] < prev[1]:
            raise ConversionError(
                location,
                f"overlapping spans [{prev[0]}, {prev[1]}, {prev[2]!r}] {text[prev[0]:prev[1]]!r} and "
                f"[{cur[0]}, {cur[1]}, {cur[2]!r}] {text[cur[0]:cur[1]]!r}: NER spans must not overlap",
            )
    return ordered


def _record_id(obj: Dict[str, Any], default: str) -> str:
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    for value in (obj.get("id"), meta.get("id"), meta.get("source")):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    return default


def read_jsonl(path: Path) -> Iterator[SpanRecord]:
    """Read JSONL with one text per line, spans as doccano `"label": [[start, end, "LABEL"]]`
    or Prodigy `"spans": [{"start", "end", "label"}]` (a line may have neither: no entities).

    path (Path): The JSONL file.
    YIELDS (SpanRecord): One record per non-blank line.
    """
    for line_no, location, obj in parse_jsonl(read_text(path), source=path, error=ConversionError):
        if not isinstance(obj, dict):
            raise ConversionError(location, f"expected a JSON object, found {type(obj).__name__}")
        text = obj.get("text")
        if not isinstance(text, str):
            raise ConversionError(location, 'the record has no "text" string')
        if "spans" in obj:
            raw = obj["spans"] or []
            if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
                raise ConversionError(location, '"spans" must be a list of {"start", "end", "label"} objects')
            spans = [(s.get("start"), s.get("end"), s.get("label")) for s in raw]
        else:
            raw = obj.get("label", obj.get("labels")) or []
            if not isinstance(raw, list) or not all(isinstance(s, (list, tuple)) and len(s) == 3 for s in raw):
                raise ConversionError(location, '"label" must be a list of [start, end, "LABEL"] triples')
            spans = [tuple(s) for s in raw]
        yield SpanRecord(
            doc_id=_record_id(obj, f"{path.name}:{line_no}"),
            location=location,
            text=text,
            spans=_check_spans(location, text, spans),  # type: ignore[arg-type]
            meta=obj.get("meta") if isinstance(obj.get("meta"), dict) else {},
        )


def _utf16_to_index(text: str, offset: int) -> int:
    """Convert a UTF-16 code-unit offset (JavaScript's string index) to a Python index."""
    units = 0
    for i, char in enumerate(text):
        if units >= offset:
            return i
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def read_label_studio(path: Path, *, text_key: str = "text") -> Iterator[SpanRecord]:
    """Read a Label Studio JSON export (a list of tasks). Of a task's annotations that were not
    cancelled, the latest (`updated_at`, else `created_at`, else the last listed) is used; the
    record id is `data.id` when the task has one (a record exported by `export-review`), else the
    task's id. Label Studio counts offsets in UTF-16 code units; where the
    stored span text shows that, offsets are converted and reported as repairs.

    path (Path): The exported JSON file.
    text_key (str): The key of the text in each task's "data".
    YIELDS (SpanRecord): One record per task.
    """
    try:
        tasks = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise ConversionError(f"{path}:{err.lineno}", f"not valid JSON ({err.msg})") from None
    if not isinstance(tasks, list):
        raise ConversionError(str(path), "a Label Studio export is a JSON list of tasks")
    for index, task in enumerate(tasks):
        location = f"{path} record {index}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise ConversionError(location, 'the task has no "data" object')
        text = task["data"].get(text_key)
        if not isinstance(text, str):
            raise ConversionError(location, f'the task has no data["{text_key}"] string')
        if isinstance(task.get("id"), int):
            location = f"{path} record {index} (id {task['id']})"
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        # a task annotated (corrected) more than once: the latest annotation is the reviewer's last word
        latest = max(enumerate(annotations), key=lambda pair: (str(pair[1].get("updated_at") or pair[1].get("created_at") or ""), pair[0]),
                     default=(None, None))[1]
        spans: List[CharSpan] = []
        repairs = []
        for result in latest.get("result", []) if latest else []:
            value = result.get("value") if isinstance(result, dict) else None
            if not isinstance(value, dict) or "start" not in value or not value.get("labels"):
                continue  # relations, choices and other non-span results carry no entity
            labels = value["labels"]
            if len(labels) != 1:
                raise ConversionError(location, f"span {value.get('text')!r} has {len(labels)} labels; NER needs exactly one")
            span = (value["start"], value["end"], labels[0])
            expected = value.get("text")
            if isinstance(expected, str) and isinstance(span[0], int) and isinstance(span[1], int):
                if text[span[0] : span[1]] != expected:
                    fixed = (_utf16_to_index(text, span[0]), _utf16_to_index(text, span[1]), span[2])
                    if text[fixed[0] : fixed[1]] != expected:
                        raise ConversionError(
                            location,
                            f"span [{span[0]}, {span[1]}] covers {text[span[0]:span[1]]!r} but its text is {expected!r}",
                        )
                    repairs.append((fixed, f"converted UTF-16 offsets [{span[0]}, {span[1]}]"))
                    span = fixed
            spans.append(span)
        yield SpanRecord(
            # the record's own id (exported into data by export-review) before Label Studio's task id
            doc_id=_record_id(task["data"], "") or _record_id(task, f"{path.name}#{index}"),
            location=location,
            text=text,
            spans=_check_spans(location, text, spans),
            meta=dict(task.get("meta") or {}),
            repairs=repairs,
        )
