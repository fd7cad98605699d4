"""A training corpus read as Docs of a few sentences, whatever the DocBin's Docs hold.

The converters write Docs of `--n-sents` sentences (10 by default): long enough that
evaluation, document-level consistency and the packaged pipeline see text as an application
feeds it. This reader lets the training examples be shorter than those Docs, so that a batch of
2,000 padded tokens holds sentences of many filings instead of a few stretches of ten. On E-NER
(seed 1, the recipe's 2,000 steps) one sentence per example learned faster (dev F1 40.7 against
23.9 at step 200, 65.1 against 60.4 at step 800) but ended lower (65.9 against 68.3), so the
recipe keeps whole Docs (docs/BENCHMARKS.md, issue 13, session 19).

`spacy.Corpus.v1` can split Docs into sentences (`max_length`), but drops every sentence that is
as long as `max_length` or longer without a word. `spacy_domain_ner.SentenceCorpus.v1` cuts each
reference Doc into pieces of `n_sents` sentences and loses nothing: it never cuts inside an entity
or a span of `doc.spans` (the piece takes the next sentence too), keeps the entities,
missing-annotation tokens, span groups and user data of each piece, and checks that the pieces
hold all of the Doc's spans:

    [corpora.train]
    @readers = "spacy_domain_ner.SentenceCorpus.v1"
    path = ${paths.train}
    n_sents = 1
    augmenter = null

Keep the dev corpus `spacy.Corpus.v1`, so that model selection scores whole Docs.
"""
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Corpus, Example


def sentence_cuts(doc: Doc, *, n_sents: int) -> List[int]:
    """The token indices where the pieces of `n_sents` sentences start.

    A sentence that starts inside an entity or inside a span of one of `doc.spans`' groups stays
    with the piece before it, so a cut never splits a span.

    doc (Doc): A Doc with sentence boundaries.
    n_sents (int): Sentences per piece, positive.
    RETURNS (List[int]): Start indices, the first 0.
    """
    inside = {i for span in _all_spans(doc) for i in range(span.start + 1, span.end)}
    cuts = [0]
    count = 0
    for sent in doc.sents:
        if count >= n_sents and sent.start not in inside:
            cuts.append(sent.start)
            count = 0
        count += 1
    return cuts


def _all_spans(doc: Doc) -> List[Span]:
    return list(doc.ents) + [span for group in doc.spans.values() for span in group]


def split_sentences(doc: Doc, *, n_sents: int) -> List[Doc]:
    """Cut a reference Doc into Docs of `n_sents` sentences, losing no entity or span.

    doc (Doc): The reference Doc.
    n_sents (int): Sentences per piece; 0 keeps the Doc whole, as does a Doc without
        sentence boundaries.
    RETURNS (List[Doc]): The pieces, in order; [doc] when there is nothing to cut.
    """
    if n_sents < 0:
        raise ValueError(f"SentenceCorpus: n_sents must be 0 (whole Docs) or positive, not {n_sents}")
    if n_sents == 0 or len(doc) == 0 or not doc.has_annotation("SENT_START"):
        return [doc]
    cuts = sentence_cuts(doc, n_sents=n_sents)
    if len(cuts) == 1:
        return [doc]
    bounds = list(zip(cuts, cuts[1:] + [len(doc)]))
    pieces = [doc[start:end].as_doc(copy_user_data=True) for start, end in bounds]
    for name, group in doc.spans.items():
        # Span.as_doc keeps the entities but not the span groups.
        for piece, (start, end) in zip(pieces, bounds):
            piece.spans[name] = SpanGroup(
                piece, name=name, attrs=dict(group.attrs),
                spans=[Span(piece, s.start - start, s.end - start, label=s.label, kb_id=s.kb_id)
                       for s in group if start <= s.start and s.end <= end],
            )
    total, kept = len(_all_spans(doc)), sum(len(_all_spans(piece)) for piece in pieces)
    if kept != total:
        # Unreachable while the cuts avoid every span; the check keeps a loss from passing silently.
        raise ValueError(f"SentenceCorpus: {total - kept} of {total} spans lost in cutting a Doc")
    return pieces


class SentenceCorpus(Corpus):
    """spacy.Corpus.v1 whose reference Docs are first cut into pieces of `n_sents` sentences."""

    def __init__(
        self, path: Path, *, n_sents: int, limit: int = 0,
        augmenter: Optional[Callable[[Language, Example], Iterator[Example]]] = None,
    ) -> None:
        super().__init__(path, limit=limit, augmenter=augmenter)
        self.n_sents = n_sents

    def make_examples(self, nlp: Language, reference_docs: Iterable[Doc]) -> Iterator[Example]:
        pieces = (piece for doc in reference_docs for piece in split_sentences(doc, n_sents=self.n_sents))
        yield from super().make_examples(nlp, pieces)


def sentence_corpus_v1(
    *,
    path: Optional[Path],
    n_sents: int = 1,
    limit: int = 0,
    augmenter: Optional[Callable[[Language, Example], Iterator[Example]]] = None,
) -> Callable[[Language], Iterator[Example]]:
    """Read a DocBin corpus as Examples of `n_sents` sentences each (more only where a
    sentence starts inside an entity or a span).

    path (Optional[Path]): A .spacy file or a directory of them.
    n_sents (int): Sentences per Example; 0 reads the Docs whole, like spacy.Corpus.v1.
    limit (int): Read at most this many Docs (before cutting); 0 for all.
    augmenter (Optional[Callable[[Language, Example], Iterator[Example]]]): A spaCy augmenter
        applied to each piece, or None.
    RETURNS (Callable[[Language], Iterator[Example]]): The reader.
    """
    if path is None:
        raise ValueError("SentenceCorpus: path is null; set it, e.g. --paths.train corpus/legal/train.spacy")
    if n_sents < 0:
        raise ValueError(f"SentenceCorpus: n_sents must be 0 (whole Docs) or positive, not {n_sents}")
    if limit < 0:
        raise ValueError(f"SentenceCorpus: limit must be 0 (all) or positive, not {limit}")
    if augmenter is not None and not callable(augmenter):
        raise ValueError(f"SentenceCorpus: augmenter must be a registered augmenter or null, not {augmenter!r}")
    return SentenceCorpus(Path(path), n_sents=n_sents, limit=limit, augmenter=augmenter)
