"""Mining a KB from annotated Docs (frequent, unambiguous entity strings) and merging it into a curated one."""
import dataclasses
from collections import Counter, defaultdict
from typing import Any, Collection, Dict, Iterable, List, Sequence, Tuple

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from ..corpus.labels import LabelMap
from .kb import KnowledgeEntry
from .matcher import KnowledgeMatcher


def mine_kb(
    docs: Iterable[Doc], *, min_count: int = 3, min_purity: float = 0.9, o_weight: float = 1.0
) -> Tuple[List[KnowledgeEntry], Dict[str, Any]]:
    """Mine a dictionary of unambiguous, frequent entity strings from annotated Docs.

    Each distinct entity string (exact tokens, case-sensitive) gets its label counts and
    the number of times the same tokens occur with every token outside any entity (`O`).
    Its purity is `majority / (annotated + o_weight * o_count)`; it is kept when the
    majority label occurs at least `min_count` times and purity >= `min_purity`.
    Occurrences inside a different entity span are reported but do not count against
    it: longest-first matching lets the longer entry win there. Strings without a letter
    (numbers, punctuation) are never kept.

    docs (Iterable[Doc]): Docs with gold entities.
    min_count (int): Least occurrences of the majority label.
    min_purity (float): Least purity, in [0, 1].
    o_weight (float): How much one un-annotated occurrence counts against a string (>= 0).
    RETURNS (Tuple[List[KnowledgeEntry], Dict[str, Any]]): The kept entries (most frequent
        first) and a report of the counts.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, not {min_count}")
    if not 0 <= min_purity <= 1:
        raise ValueError(f"min_purity must be between 0 and 1, not {min_purity}")
    if o_weight < 0:
        raise ValueError(f"o_weight must not be negative, not {o_weight}")
    docs = list(docs)
    if not docs:
        return [], {"candidates": 0, "kept": 0, "rejected": {}, "kept_per_label": {}}
    labels: Dict[Tuple[str, ...], Counter] = defaultdict(Counter)
    texts: Dict[Tuple[str, ...], str] = {}
    for doc in docs:
        for ent in doc.ents:
            key = tuple(token.text for token in ent)
            labels[key][ent.label_] += 1
            texts.setdefault(key, ent.text)
    vocab = docs[0].vocab
    matcher = PhraseMatcher(vocab, attr="ORTH")
    keys = list(labels)
    for index, key in enumerate(keys):
        matcher.add(str(index), [Doc(vocab, words=list(key))])
    o_counts, partial_counts = Counter(), Counter()
    for doc in docs:
        exact = {(ent.start, ent.end) for ent in doc.ents}
        for match_id, start, end in matcher(doc):
            if (start, end) in exact:
                continue
            key = keys[int(vocab.strings[match_id])]
            if all(token.ent_iob_ == "O" for token in doc[start:end]):
                o_counts[key] += 1
            elif any(token.ent_iob_ in ("B", "I") for token in doc[start:end]):
                partial_counts[key] += 1
    kept, rejected = [], Counter()
    for key in keys:
        label, count = labels[key].most_common(1)[0]
        annotated = sum(labels[key].values())
        purity = count / (annotated + o_weight * o_counts[key])
        if not any(ch.isalpha() for ch in texts[key]):
            rejected["no_letter"] += 1
        elif count < min_count:
            rejected["min_count"] += 1
        elif purity < min_purity:
            rejected["min_purity"] += 1
        else:
            kept.append(
                KnowledgeEntry(
                    label=label, text=texts[key], case_sensitive=True,
                    precision=round(count / (annotated + o_counts[key]), 4),
                    meta={
                        "count": count, "annotated": annotated, "o_count": o_counts[key],
                        "partial": partial_counts[key], "labels": dict(labels[key]), "purity": round(purity, 4),
                    },
                    source="mined",
                )
            )
    kept.sort(key=lambda e: (-e.meta["count"], e.text))
    report = {
        "candidates": len(keys), "kept": len(kept), "rejected": dict(rejected),
        "kept_per_label": dict(sorted(Counter(e.label for e in kept).items())),
        "settings": {"min_count": min_count, "min_purity": min_purity, "o_weight": o_weight},
    }
    return kept, report


def merge_kb(
    curated: Sequence[KnowledgeEntry], mined: Sequence[KnowledgeEntry], *, nlp: Language, case_sensitive: bool = True
) -> Tuple[List[KnowledgeEntry], Dict[str, Any]]:
    """Merge a mined KB into a curated one; the curated KB wins on conflicts.

    A mined phrase that a curated entry (phrase or token pattern) matches in full is a
    duplicate when the labels agree and a conflict when they differ; either way it is
    dropped. Conflicts are reported with both labels and the curated entry's location.

    curated (Sequence[KnowledgeEntry]): The curated entries (kept in order, first).
    mined (Sequence[KnowledgeEntry]): The mined entries.
    nlp (Language): Provides the tokenizer the phrases are matched with.
    case_sensitive (bool): Default case sensitivity of curated phrases without one.
    RETURNS (Tuple[List[KnowledgeEntry], Dict[str, Any]]): The merged entries and a report
        with `duplicates` (count) and `conflicts` (list).
    """
    matcher = KnowledgeMatcher(nlp, curated, case_sensitive=case_sensitive)
    merged, conflicts, duplicates = list(curated), [], 0
    for entry in mined:
        phrases = [p for p, _ in entry.phrases(default_case_sensitive=True)]
        hits = []
        for phrase in phrases:
            doc = nlp.make_doc(phrase)
            hits.extend(curated[i] for start, end, i in matcher.candidates(doc) if (start, end) == (0, len(doc)))
        if not hits:
            merged.append(entry)
        elif any(hit.label == entry.label for hit in hits):
            duplicates += 1
        else:
            conflicts.append(
                {
                    "text": entry.text, "mined_label": entry.label, "curated_label": hits[0].label,
                    "curated_source": hits[0].source, "mined_meta": entry.meta,
                }
            )
    return merged, {"curated": len(curated), "mined": len(mined), "duplicates": duplicates, "conflicts": conflicts}


def relabel_curated(
    entries: Sequence[KnowledgeEntry], *, label_map: LabelMap, labels: Collection[str]
) -> Tuple[List[KnowledgeEntry], Dict[str, Any]]:
    """Map a curated KB's labels onto a corpus's labels, keeping only entries the corpus can use.

    A curated KB is written for one label set (the shipped one for E-NER's): its entries reach a
    pipeline with other labels only through a label map, and an entry whose mapped label the
    corpus does not annotate is left out (the NER could never have predicted it).

    entries (Sequence[KnowledgeEntry]): The curated entries.
    label_map (LabelMap): From the KB's labels to the corpus's; a label mapped to null is dropped.
    labels (Collection[str]): The labels of the corpus (and so of the trained NER).
    RETURNS (Tuple[List[KnowledgeEntry], Dict[str, Any]]): The relabelled entries kept, and a report:
        `entries`, `kept`, `dropped_by_map` and `not_in_corpus` (counts per label).
    """
    kept: List[KnowledgeEntry] = []
    dropped_by_map: Counter = Counter()
    not_in_corpus: Counter = Counter()
    for entry in entries:
        target = label_map.map_at(entry.label, where=entry.source or "curated KB")
        if target is None:
            dropped_by_map[entry.label] += 1
        elif target not in labels:
            not_in_corpus[target] += 1
        else:
            kept.append(dataclasses.replace(entry, label=target))
    report = {
        "entries": len(entries), "kept": len(kept),
        "dropped_by_map": dict(sorted(dropped_by_map.items())), "not_in_corpus": dict(sorted(not_in_corpus.items())),
    }
    return kept, report
