"""Rendering annotated batches into output, error and review lines, and the run's counts (records =
annotated + errors, entities = kept + review).
"""
import json
from collections import Counter
from typing import Any, Dict, Optional, Sequence, Tuple

from .pipeline import ChunkResult
from .records import Batch


def new_counts() -> Dict[str, Any]:
    return {
        "records": 0, "annotated": 0, "errors": 0, "blank_lines": 0, "chunked_records": 0, "chunks": 0,
        "words": 0, "entities": 0, "entities_kept": 0, "entities_review": 0, "entities_unscored": 0, "review_records": 0,
        "errors_by_reason": {}, "entities_per_label": {},
    }


def render_batch(
    batch: Batch, results: Sequence[ChunkResult], *, counts: Dict[str, Any], text_key: str, id_key: str, keep_text: bool,
    min_confidence: Optional[float] = None,
) -> Tuple[bytes, bytes, bytes]:
    """Turn a batch and its chunk results into output, error and review lines, updating `counts`.

    min_confidence (Optional[float]): Entities with a confidence below it go to the review lines.
    RETURNS (Tuple[bytes, bytes, bytes]): The output, error and review lines, UTF-8.
    """
    # A checkpoint written before these counts existed: every entity so far was kept.
    counts.setdefault("entities_kept", counts["entities"])
    for key in ("entities_review", "entities_unscored", "review_records"):
        counts.setdefault(key, 0)
    out, err, review, cursor = [], [], [], 0
    by_reason, per_label = Counter(counts["errors_by_reason"]), Counter(counts["entities_per_label"])
    for item, spans in zip(batch.items, batch.spans):
        if item.blank:
            counts["blank_lines"] += 1
            continue
        counts["records"] += 1
        chunk_results, cursor = results[cursor : cursor + len(spans)], cursor + len(spans)
        failure = next((result[2] for result in chunk_results if result[2] is not None), None)
        if item.error is None and failure is not None:
            item.error = ("annotation_failed", failure)
        if item.error is not None:
            counts["errors"] += 1
            by_reason[item.error[0]] += 1
            # ASCII escapes: an id of an unencodable record must still be writable.
            err.append(json.dumps({"line": item.line, "id": item.doc_id, "error": item.error[0], "reason": item.error[1]}) + "\n")
            continue
        entities, uncertain = [], []
        for (start, _), (ents, words, _) in zip(spans, chunk_results):
            counts["words"] += words
            for ent_start, ent_end, label, *extra in ents or []:
                begin, end = start + ent_start, start + ent_end
                entity = {"start": begin, "end": end, "label": label, "text": item.text[begin:end]}
                confidence, kb_id = (extra + [None, ""])[:2]
                if confidence is not None:
                    entity["confidence"] = confidence
                else:
                    counts["entities_unscored"] += 1
                if kb_id:
                    entity["kb_id"] = kb_id
                below = min_confidence is not None and confidence is not None and confidence < min_confidence
                (uncertain if below else entities).append(entity)
                per_label[label] += 1
        assert item.record is not None
        record = dict(item.record)
        record.setdefault(id_key, item.doc_id)
        record["entities"] = entities
        if not keep_text:
            record.pop(text_key, None)
        out.append(json.dumps(record, ensure_ascii=False) + "\n")
        if uncertain:
            review.append(json.dumps({**record, "entities": uncertain}, ensure_ascii=False) + "\n")
            counts["review_records"] += 1
        counts["annotated"] += 1
        counts["entities"] += len(entities) + len(uncertain)
        counts["entities_kept"] += len(entities)
        counts["entities_review"] += len(uncertain)
        counts["chunks"] += len(spans)
        counts["chunked_records"] += len(spans) > 1
    counts["errors_by_reason"], counts["entities_per_label"] = dict(sorted(by_reason.items())), dict(sorted(per_label.items()))
    return "".join(out).encode("utf-8"), "".join(err).encode("utf-8"), "".join(review).encode("utf-8")


def reconciled(counts: Dict[str, Any]) -> bool:
    """Records = annotated + errors, and entities found = kept + sent to review."""
    entities_ok = counts["entities"] == counts.get("entities_kept", counts["entities"]) + counts.get("entities_review", 0)
    return counts["records"] == counts["annotated"] + counts["errors"] and entities_ok
