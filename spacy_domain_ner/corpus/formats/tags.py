"""Decode token-level NER tags (IOB1, IOB2, IO, BILUO, IOBES) into spans.

spaCy's own `biluo_tags_to_spans` only reads BILUO and raises on the first
invalid sequence; corpora in the wild use every scheme and contain invalid
sequences, which must be repaired *and reported* rather than lost.
"""
from typing import Iterable, List, Optional, Sequence, Set, Tuple

SCHEMES = ("auto", "iob1", "iob2", "io", "biluo", "iobes")
# Prefixes each scheme allows besides the bare "O".
_PREFIXES = {
    "iob1": {"I", "B"},
    "iob2": {"I", "B"},
    "io": {"I"},
    "biluo": {"B", "I", "L", "U"},
    "iobes": {"B", "I", "E", "S"},
}
# A decoded span: (start token, end token exclusive, label).
TokenSpan = Tuple[int, int, str]


class TagError(ValueError):
    """A tag that no scheme can read; `index` is the token's position."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def split_tag(tag: str, *, index: int = 0) -> Tuple[str, str]:
    """Split a tag into prefix and label.

    tag (str): A tag such as "I-ORG", "B-LEGISLATION/ACT" or "O".
    index (int): The token's position, reported in errors.
    RETURNS (Tuple[str, str]): The prefix ("O" for outside) and the label ("" for O).
    """
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or len(prefix) != 1 or prefix not in "BILUES":
        raise TagError(
            f"unknown tag {tag!r}: expected O or a prefix B-, I-, L-, U-, E- or S- "
            "followed by a label (map stray tags with the 'tags' section of a label map)",
            index,
        )
    return prefix, label


def detect_scheme(tags: Iterable[str]) -> str:
    """Guess the tagging scheme of a whole corpus.

    tags (Iterable[str]): Every tag of the corpus, sentence boundaries marked by "O"
        or simply concatenated (a boundary only matters for I- after O).
    RETURNS (str): "biluo", "iobes", "iob1", "iob2" or "io".
    """
    prefixes: Set[str] = set()
    starts_with_i = False
    prev_label = ""
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag, index=i)
        prefixes.add(prefix)
        if prefix == "I" and label != prev_label:
            starts_with_i = True
        prev_label = label if prefix in ("B", "I") else ""
    if prefixes & {"L", "U"}:
        return "biluo"
    if prefixes & {"E", "S"}:
        return "iobes"
    if "B" in prefixes:
        return "iob1" if starts_with_i else "iob2"
    return "io"


def tags_to_spans(tags: Sequence[str], *, scheme: str) -> Tuple[List[TokenSpan], List[Tuple[int, str]]]:
    """Decode one sentence's tags into token spans.

    tags (Sequence[str]): The tags of one sentence.
    scheme (str): One of "iob1", "iob2", "io", "biluo", "iobes".
    RETURNS (Tuple[List[TokenSpan], List[Tuple[int, str]]]): The spans, and the
        repairs made to invalid sequences as (token index, description).
    """
    if scheme not in _PREFIXES:
        raise ValueError(f"unknown tag scheme {scheme!r}: expected one of {', '.join(SCHEMES[1:])}")
    allowed = _PREFIXES[scheme]
    spans: List[TokenSpan] = []
    repairs: List[Tuple[int, str]] = []
    start: Optional[int] = None
    label = ""

    def close(end: int) -> None:
        nonlocal start, label
        if start is not None:
            spans.append((start, end, label))
        start, label = None, ""

    for i, tag in enumerate(tags):
        prefix, tag_label = split_tag(tag, index=i)
        if prefix != "O" and prefix not in allowed:
            raise TagError(f"tag {tag!r} has prefix {prefix}- which the {scheme} scheme does not use", i)
        if prefix in ("O", "B", "U", "S") and start is not None and scheme in ("biluo", "iobes"):
            repairs.append((i, f"entity {label} ended without an end tag before {tag}"))
        if prefix == "O":
            close(i)
        elif prefix in ("B", "U", "S"):
            close(i)
            start, label = i, tag_label
            if prefix in ("U", "S"):
                close(i + 1)
        else:  # I, L, E: continue an entity of the same label
            if start is None or label != tag_label:
                if scheme in ("iob2", "biluo", "iobes"):
                    repairs.append((i, f"{tag} does not continue an entity; started a new one"))
                close(i)
                start, label = i, tag_label
            if prefix in ("L", "E"):
                close(i + 1)
    if start is not None and scheme in ("biluo", "iobes"):
        repairs.append((len(tags), f"entity {label} ended without an end tag at the sentence end"))
    close(len(tags))
    return spans, repairs
