"""Label maps: rename, merge or drop labels, and fix stray raw tags, from a JSON file.

File format (JSON object)::

    {
      "labels": {"BUSINESS": "ORG", "COURT": "ORG", "MISCELLANEOUS": null},
      "tags": {"P": "I-MISCELLANEOUS"},
      "unmapped": "keep"
    }

`labels` renames (two labels to one name merge them; null drops the label),
`tags` replaces raw token tags before decoding (for corpora with stray tags),
`unmapped` says what happens to a label missing from `labels`: "keep" (default),
"drop" or "error". A flat object `{"BUSINESS": "ORG", ...}` is read as `labels`.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import srsly
from spacy.tokens import Span

UNMAPPED = ("keep", "drop", "error")


@dataclass(frozen=True)
class LabelMap:
    labels: Dict[str, Optional[str]] = field(default_factory=dict)
    tags: Dict[str, str] = field(default_factory=dict)
    unmapped: str = "keep"

    def __post_init__(self) -> None:
        if self.unmapped not in UNMAPPED:
            raise ValueError(f"label map: 'unmapped' must be one of {', '.join(UNMAPPED)}, not {self.unmapped!r}")
        for source, target in self.labels.items():
            if target is not None and (not isinstance(target, str) or not target):
                raise ValueError(f"label map: {source!r} maps to {target!r}; use a label string or null to drop it")
        for source, target in self.tags.items():
            if not isinstance(target, str) or not target:
                raise ValueError(f"label map: tag {source!r} maps to {target!r}; use a tag string such as 'I-MISC'")

    def map(self, label: str) -> Optional[str]:
        """Map one label.

        label (str): The source label.
        RETURNS (Optional[str]): The target label, or None when the label is dropped.
        """
        if label in self.labels:
            return self.labels[label]
        if self.unmapped == "keep":
            return label
        if self.unmapped == "drop":
            return None
        raise ValueError(f"label {label!r} is not in the label map (its 'unmapped' setting is 'error')")

    def map_at(self, label: str, *, where: str) -> Optional[str]:
        """Map one label; an unmapped label's error (under 'unmapped': 'error') says where it was.

        label (str): The source label.
        where (str): Where the label was (a file and line, a document), prefixed to the error.
        RETURNS (Optional[str]): The target label, or None when the label is dropped.
        """
        try:
            return self.map(label)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def map_spans(self, spans: Iterable[Span], *, context: Callable[[Span], str]) -> Tuple[List[Span], List[Span]]:
        """Map the labels of spans (entities), for evaluation and for training readers alike.

        spans (Iterable[Span]): The spans, e.g. `doc.ents`.
        context (Callable[[Span], str]): Says where a span is, to prefix the error of an unmapped label.
        RETURNS (Tuple[List[Span], List[Span]]): The kept spans relabelled (new Spans on the same
            Doc, kb_id kept) and the dropped spans (mapped to null).
        """
        kept: List[Span] = []
        dropped: List[Span] = []
        for span in spans:
            target = self.map_at(span.label_, where=context(span))
            if target is None:
                dropped.append(span)
            else:
                kept.append(Span(span.doc, span.start, span.end, label=target, kb_id=span.kb_id))
        return kept, dropped


def load_label_map(path: Optional[Path]) -> LabelMap:
    """Read a label map file; no path means the identity map.

    path (Optional[Path]): The JSON file, or None.
    RETURNS (LabelMap): The label map.
    """
    if path is None:
        return LabelMap()
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(f"{path}: not a valid JSON label map ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a label map is a JSON object")
    if not {"labels", "tags", "unmapped"} & set(data):
        data = {"labels": data}
    unknown = set(data) - {"labels", "tags", "unmapped"}
    if unknown:
        raise ValueError(f"{path}: unknown label map keys {sorted(unknown)}; expected labels, tags, unmapped")
    try:
        return LabelMap(
            labels=dict(data.get("labels") or {}), tags=dict(data.get("tags") or {}), unmapped=data.get("unmapped", "keep")
        )
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
