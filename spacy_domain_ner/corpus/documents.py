"""One source document to spaCy Docs: token-per-line documents (tags to spans, natural spacing rebuilt)
and character-span records, with the label map applied and every read, written, dropped and repaired
span counted in ConversionStats.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from .formats.base import ConversionError, SpanRecord, TokenDocument
from .formats.spacing import count_changed, natural_spaces
from .formats.tags import TagError, tags_to_spans
from .labels import LabelMap


@dataclass
class ConversionStats:
    """Counts of one output file. `dropped` and `repaired` list every affected span."""

    documents: int = 0
    output_docs: int = 0
    sentences: int = 0
    tokens: int = 0
    # tokens not followed by a space once natural spacing is rebuilt (formats/spacing.py)
    tokens_unspaced: int = 0
    entities_read: Counter = field(default_factory=Counter)
    entities_written: Counter = field(default_factory=Counter)
    dropped: List[Dict[str, Any]] = field(default_factory=list)
    repaired: List[Dict[str, Any]] = field(default_factory=list)

    def add(self, other: "ConversionStats") -> None:
        for name in ("documents", "output_docs", "sentences", "tokens", "tokens_unspaced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.entities_read.update(other.entities_read)
        self.entities_written.update(other.entities_written)
        self.dropped.extend(other.dropped)
        self.repaired.extend(other.repaired)

    def to_dict(self) -> Dict[str, Any]:
        n_read, n_written = sum(self.entities_read.values()), sum(self.entities_written.values())
        return {
            "documents": self.documents,
            "output_docs": self.output_docs,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "tokens_unspaced": self.tokens_unspaced,
            "entities_read": n_read,
            "entities_written": n_written,
            "entities_dropped": len(self.dropped),
            "reconciled": n_read == n_written + len(self.dropped),
            "entities_read_per_label": dict(sorted(self.entities_read.items())),
            "entities_written_per_label": dict(sorted(self.entities_written.items())),
            "dropped": self.dropped,
            "repaired": self.repaired,
        }


@dataclass
class ConvertedDocument:
    """One source document: its id, the Docs made from it and their stats."""

    doc_id: str
    docs: List[Doc]
    stats: ConversionStats


def _map_span(
    label: str, label_map: LabelMap, location: str, text: str, stats: ConversionStats
) -> Optional[str]:
    """Count a read span and map its label; a dropped span is recorded."""
    stats.entities_read[label] += 1
    try:
        target = label_map.map(label)
    except ValueError as err:
        raise ConversionError(location, str(err)) from None
    if target is None:
        stats.dropped.append({"source": location, "label": label, "text": text, "reason": "dropped by the label map"})
    return target


def convert_token_document(
    document: TokenDocument, *, vocab: Any, scheme: str, label_map: LabelMap, n_sents: int,
    natural_spacing: bool = True,
) -> ConvertedDocument:
    """Turn a token-per-line document into Docs of `n_sents` sentences (0: one Doc).

    document (TokenDocument): The source document.
    vocab (Vocab): The vocab of the output Docs.
    scheme (str): The tag scheme ("iob1", "iob2", "io", "biluo", "iobes").
    label_map (LabelMap): Label renames, merges and drops, and raw tag fixes.
    n_sents (int): Sentences per output Doc; 0 keeps the document whole.
    natural_spacing (bool): Rebuild the spacing of written text ("Inc., filed") with the rules
        of `formats.spacing`; False puts a space after every token.
    RETURNS (ConvertedDocument): The Docs and their stats.
    """
    stats = ConversionStats(documents=1)
    sentences = document.sentences
    size = n_sents if n_sents > 0 else max(len(sentences), 1)
    docs = []
    for first in range(0, len(sentences), size):
        group = sentences[first : first + size]
        words: List[str] = []
        spaces: List[bool] = []
        sent_starts: List[bool] = []
        entities: List[Tuple[int, int, str]] = []
        for sentence in group:
            offset = len(words)
            tags = []
            for tag, line in zip(sentence.tags, sentence.lines):
                fixed = label_map.tags.get(tag, tag)
                if fixed != tag:
                    stats.repaired.append({"source": f"{document.source}:{line}", "reason": f"tag {tag!r} read as {fixed!r}"})
                tags.append(fixed)
            try:
                spans, repairs = tags_to_spans(tags, scheme=scheme)
            except TagError as err:
                raise ConversionError(f"{document.source}:{sentence.lines[err.index]}", str(err)) from None
            for index, reason in repairs:
                line = sentence.lines[min(index, len(sentence.lines) - 1)]
                stats.repaired.append({"source": f"{document.source}:{line}", "reason": reason})
            for start, end, label in spans:
                location = f"{document.source}:{sentence.lines[start]}"
                target = _map_span(label, label_map, location, " ".join(sentence.words[start:end]), stats)
                if target is not None:
                    entities.append((offset + start, offset + end, target))
            words.extend(sentence.words)
            spaces.extend(natural_spaces(sentence.words) if natural_spacing else [True] * len(sentence.words))
            sent_starts.extend([True] + [False] * (len(sentence.words) - 1))
        doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in entities]
        doc.user_data["doc_id"] = document.doc_id
        docs.append(doc)
        stats.sentences += len(group)
        stats.tokens += len(words)
        stats.tokens_unspaced += count_changed(spaces)
        stats.entities_written.update(label for _, _, label in entities)
    stats.output_docs = len(docs)
    return ConvertedDocument(document.doc_id, docs, stats)


def convert_span_record(record: SpanRecord, *, nlp: Language, label_map: LabelMap) -> ConvertedDocument:
    """Tokenize a character-offset record and align its spans to tokens.

    A span whose edges fall inside a token is expanded to whole tokens, and one with
    surrounding whitespace is trimmed; both are written and reported as repaired. A
    span that cannot be aligned at all is dropped and reported.

    record (SpanRecord): The source record.
    nlp (Language): Provides the tokenizer and a sentencizer.
    label_map (LabelMap): Label renames, merges and drops.
    RETURNS (ConvertedDocument): One Doc and its stats.
    """
    stats = ConversionStats(documents=1, output_docs=1)
    doc = nlp(record.text)
    for span, reason in record.repairs:
        stats.repaired.append({"source": record.location, "span": list(span), "reason": reason})
    entities = []
    for start, end, label in record.spans:
        text = record.text[start:end]
        target = _map_span(label, label_map, record.location, text, stats)
        if target is None:
            continue
        trimmed_start = start + len(text) - len(text.lstrip())
        trimmed_end = end - (len(text) - len(text.rstrip()))
        entity = doc.char_span(trimmed_start, trimmed_end, label=target) if trimmed_start < trimmed_end else None
        if entity is None and trimmed_start < trimmed_end:
            entity = doc.char_span(trimmed_start, trimmed_end, label=target, alignment_mode="expand")
        if entity is None:
            stats.dropped.append(
                {"source": record.location, "label": label, "text": text, "reason": f"span [{start}, {end}] has no token to align to"}
            )
            continue
        if (entity.start_char, entity.end_char) != (start, end):
            stats.repaired.append(
                {
                    "source": record.location,
                    "span": [start, end, label],
                    "reason": f"misaligned with the tokens: {text!r} became {entity.text!r}",
                }
            )
        entities.append(entity)
    try:
        doc.ents = entities
    except ValueError:
        raise ConversionError(record.location, "two spans overlap once aligned to token boundaries") from None
    doc.user_data["doc_id"] = record.doc_id
    stats.sentences = sum(1 for _ in doc.sents)
    stats.tokens = len(doc)
    stats.entities_written.update(ent.label_ for ent in doc.ents)
    return ConvertedDocument(record.doc_id, [doc], stats)
