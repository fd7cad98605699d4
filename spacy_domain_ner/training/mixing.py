"""A training corpus that mixes legal and general-domain (news) documents.

`spacy_domain_ner.MixedCorpus.v1` reads two DocBin corpora (a .spacy file or
a directory of them) and yields spaCy Examples. It prepares each reference
for the head(s) that should learn from it, as set by `general_target`:

- "spans" (multi-task, configs/ner_multitask.cfg): legal references keep
  their ents and lose any `spans[general_key]` group; general references get
  their ents moved to `spans[general_key]` and their ENT annotation set to
  *missing*. spaCy's `ner` computes no loss on missing tokens, so news
  sentences never teach the legal head that everything is O, and the
  `general_ner` head (heads.py) treats legal references, which lack the
  group, as missing.
- "ents" (single head, configs/ner_mixed.cfg): general references keep their
  entities in `doc.ents`, renamed by `label_map`. An entity whose label the
  map drops becomes *missing* tokens (not O): CoNLL ORG and MISC have no
  one-to-one legal class, so the head is taught neither a wrong class nor
  that the span is not an entity (configs/labels/conll_to_legal.json).

Sampling (`ratio` = share of legal examples): the reader is deterministic
given (seed, epoch), where epoch counts the calls of one reader instance.
spaCy's loop calls the train corpus once when `max_epochs >= 0` (and then
reshuffles that one sample itself) and once per epoch when `max_epochs = -1`
(the configs use -1, so each epoch is a new sample). For epoch e, with
rng = Random(f"{seed}:{e}"):

1. n = size, or ceil(n_legal_docs / ratio) when size = 0 (every legal
   document once per epoch; n_general_docs when ratio = 0);
2. n_legal = round(n * ratio) legal and n - n_legal general examples are
   drawn from their corpora, each by concatenating fresh rng permutations
   (no document repeats before all of its corpus has been drawn);
3. the two draws are interleaved evenly (legal at the positions where
   floor(i * n_legal / n) steps), so any k consecutive examples hold
   round(k * ratio) +- 1 legal ones and streamed batches mix both domains.

ratio = null reads without sampling: every legal document, then every general
one, once, in file order (for a dev corpus scored per head).

`augmenter`, as spacy.Corpus.v1 has it: each example of both domains goes through it
(e.g. the re-cased copies of spacy_domain_ner.case_augmenter.v1, so that a mixed or
multi-task run of the hybrid recipe sees the same data as the recipe itself).
"""
import itertools
import math
import random
from functools import partial
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.training.corpus import walk_corpus
from spacy.util import registry

from ..corpus.labels import LabelMap, load_label_map

DOMAIN_KEY = "spacy_domain_ner.domain"
LEGAL, GENERAL = "legal", "general"
TARGETS = ("spans", "ents")


def mix_plan(
    *, n_legal_docs: int, n_general_docs: int, ratio: float, size: int, seed: int, epoch: int
) -> List[Tuple[str, int]]:
    """The (domain, document index) sequence of one epoch.

    n_legal_docs (int): Documents in the legal corpus.
    n_general_docs (int): Documents in the general corpus.
    ratio (float): Share of legal examples, 0 to 1.
    size (int): Examples per epoch; 0 for ceil(n_legal_docs / ratio).
    seed (int): The random seed.
    epoch (int): The epoch; (seed, epoch) fixes the plan.
    RETURNS (List[Tuple[str, int]]): ("legal" or "general", index) pairs.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"MixedCorpus: ratio is the share of legal examples, between 0 and 1, not {ratio}")
    if size < 0:
        raise ValueError(f"MixedCorpus: size must be 0 (automatic) or positive, not {size}")
    if size == 0:
        size = math.ceil(n_legal_docs / ratio) if ratio > 0 else n_general_docs
    n_legal = round(size * ratio)
    n_general = size - n_legal
    if n_legal and not n_legal_docs:
        raise ValueError("MixedCorpus: the legal corpus is empty but the ratio asks for legal examples")
    if n_general and not n_general_docs:
        raise ValueError("MixedCorpus: the general corpus is empty or not set but the ratio asks for general examples")
    rng = random.Random(f"{seed}:{epoch}")
    legal = _draw(rng, n_legal_docs, n_legal)
    general = _draw(rng, n_general_docs, n_general)
    plan = []
    for i in range(size):
        # Evenly spread: position i is legal when the running quota steps up.
        if (i + 1) * n_legal // size > i * n_legal // size:
            plan.append((LEGAL, legal.pop()))
        else:
            plan.append((GENERAL, general.pop()))
    return plan


def _draw(rng: random.Random, pool: int, k: int) -> List[int]:
    # Reversed, so that pop() takes them in drawn order.
    drawn: List[int] = []
    while len(drawn) < k:
        order = list(range(pool))
        rng.shuffle(order)
        drawn.extend(order[: k - len(drawn)])
    return drawn[::-1]


def prepare_legal(doc: Doc, *, target: str, general_key: str) -> Doc:
    """Mark a legal reference for the heads (in place).

    doc (Doc): The reference.
    target (str): "spans" or "ents" (see the module docstring).
    general_key (str): The span group of the general head.
    RETURNS (Doc): The doc.
    """
    doc.user_data[DOMAIN_KEY] = LEGAL
    if target == "spans" and general_key in doc.spans:
        del doc.spans[general_key]  # no general annotation: missing for the general head
    return doc


def prepare_general(doc: Doc, *, target: str, general_key: str, label_map: LabelMap, source: str) -> Doc:
    """Map the labels of a general reference and place them for the heads (in place).

    doc (Doc): The reference.
    target (str): "spans" (ents moved to the span group, ENT annotation
        missing) or "ents" (ents renamed; dropped labels become missing tokens).
    general_key (str): The span group of the general head.
    label_map (LabelMap): Label renames and drops.
    source (str): Where the doc comes from, for error messages.
    RETURNS (Doc): The doc.
    """
    kept, dropped = label_map.map_spans(doc.ents, context=lambda ent: source)
    doc.user_data[DOMAIN_KEY] = GENERAL
    if target == "spans":
        if dropped:
            raise ValueError(
                f"{source}: the label map drops {dropped[0].label_!r}, which the general head would then "
                "learn as O; keep the label, or use general_target = \"ents\""
            )
        doc.spans[general_key] = kept
        doc.set_ents([], default="missing")
    else:
        doc.set_ents(kept, missing=dropped, default="unmodified")
    return doc


def read_docs(path: Path, nlp: Language, *, limit: int) -> List[Doc]:
    """The docs of a .spacy file or of every .spacy file under a directory.

    path (Path): The file or directory.
    nlp (Language): Supplies the vocab.
    limit (int): Read at most this many docs; 0 for all.
    RETURNS (List[Doc]): The docs, in file order.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"MixedCorpus: {path} does not exist")
    docs: List[Doc] = []
    for file in walk_corpus(path, ".spacy"):
        try:
            docs.extend(DocBin().from_disk(file).get_docs(nlp.vocab))
        except ValueError as err:
            raise ValueError(f"MixedCorpus: {file} is not a readable DocBin ({err})") from None
        if limit and len(docs) >= limit:
            return docs[:limit]
    return docs


def _example(nlp: Language, reference: Doc) -> Example:
    # As spacy.Corpus: tokenize the text, unless the reference has no spaces to rebuild it.
    if reference.has_unknown_spaces:
        words = [token.text for token in reference]
        return Example(Doc(nlp.vocab, words=words, spaces=[bool(t.whitespace_) for t in reference]), reference)
    return Example(nlp.make_doc(reference.text), reference)


def mixed_examples(
    nlp: Language,
    *,
    legal_path: Path,
    general_path: Optional[Path],
    ratio: Optional[float],
    size: int,
    seed: int,
    epoch: int,
    general_target: str,
    general_key: str,
    label_map: LabelMap,
    limit: int,
) -> Iterator[Example]:
    """The Examples of one epoch (see the module docstring).

    nlp (Language): The pipeline (tokenizer and vocab).
    legal_path (Path): Legal .spacy file or directory.
    general_path (Optional[Path]): General .spacy file or directory, or None.
    ratio (Optional[float]): Share of legal examples; None reads both corpora once, unsampled.
    size (int): Examples per epoch; 0 for automatic.
    seed (int): The random seed.
    epoch (int): The epoch.
    general_target (str): "spans" or "ents".
    general_key (str): The span group of the general head.
    label_map (LabelMap): Applied to the general corpus.
    limit (int): Read at most this many docs of each corpus; 0 for all.
    YIELDS (Example): The examples.
    """
    legal = [
        prepare_legal(doc, target=general_target, general_key=general_key)
        for doc in read_docs(legal_path, nlp, limit=limit)
    ]
    general = []
    if general_path is not None:
        general = [
            prepare_general(
                doc, target=general_target, general_key=general_key, label_map=label_map,
                source=f"{general_path}: document {i}",
            )
            for i, doc in enumerate(read_docs(general_path, nlp, limit=limit))
        ]
    if ratio is None:
        plan = [(LEGAL, i) for i in range(len(legal))] + [(GENERAL, i) for i in range(len(general))]
    else:
        plan = mix_plan(
            n_legal_docs=len(legal), n_general_docs=len(general), ratio=ratio, size=size, seed=seed, epoch=epoch
        )
    docs = {LEGAL: legal, GENERAL: general}
    for domain, index in plan:
        yield _example(nlp, docs[domain][index])


def _read_epoch(nlp: Language, *, epochs: Iterator[int], **settings) -> Iterator[Example]:
    # A plain function (not a generator), so the epoch is taken at call time.
    return mixed_examples(nlp, epoch=next(epochs), **settings)


def augmented(
    examples: Iterator[Example], nlp: Language, *, augmenter: Optional[Callable[[Language, Example], Iterator[Example]]]
) -> Iterator[Example]:
    """Every example through `augmenter` (none: unchanged), as spacy.Corpus applies it."""
    for example in examples:
        if augmenter is None:
            yield example
        else:
            yield from augmenter(nlp, example)


def _read_epoch_augmented(nlp: Language, *, augmenter, **settings) -> Iterator[Example]:
    return augmented(_read_epoch(nlp, **settings), nlp, augmenter=augmenter)


@registry.readers("spacy_domain_ner.MixedCorpus.v1")
def mixed_corpus_v1(
    *,
    legal_path: Path,
    general_path: Optional[Path] = None,
    ratio: Optional[float] = 0.5,
    size: int = 0,
    seed: int = 0,
    general_target: str = "spans",
    general_key: str = "general",
    label_map: Optional[Path] = None,
    limit: int = 0,
    augmenter: Optional[Callable[[Language, Example], Iterator[Example]]] = None,
) -> Callable[[Language], Iterator[Example]]:
    """Legal and general documents mixed by ratio, each prepared for its head.

    legal_path (Path): Legal .spacy file or directory.
    general_path (Optional[Path]): General (news) .spacy file or directory.
    ratio (Optional[float]): Share of legal examples, 0 to 1; null reads both
        corpora once each, unsampled (a dev corpus).
    size (int): Examples per epoch; 0 for ceil(legal docs / ratio).
    seed (int): The random seed; each call (epoch) e samples with (seed, e).
    general_target (str): "spans" (multi-task: general entities in
        spans[general_key]) or "ents" (single head: mapped into doc.ents).
    general_key (str): The span group of the general head.
    label_map (Optional[Path]): JSON label map for the general corpus
        (labels.py format), e.g. configs/labels/conll_to_legal.json.
    limit (int): Read at most this many docs of each corpus; 0 for all.
    augmenter (Optional[Callable[[Language, Example], Iterator[Example]]]): A spaCy
        augmenter (registry.augmenters) applied to the examples of both domains, or None for none.
    RETURNS (Callable[[Language], Iterator[Example]]): The reader.
    """
    if legal_path is None:
        raise ValueError("MixedCorpus: legal_path is not set")
    if general_target not in TARGETS:
        raise ValueError(f"MixedCorpus: general_target must be one of {', '.join(TARGETS)}, not {general_target!r}")
    if not general_key:
        raise ValueError("MixedCorpus: general_key must be a non-empty string")
    if ratio is not None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"MixedCorpus: ratio is the share of legal examples, between 0 and 1, not {ratio}")
        if ratio < 1.0 and general_path is None:
            raise ValueError(f"MixedCorpus: ratio {ratio} asks for general examples but general_path is not set")
    if size < 0 or limit < 0:
        raise ValueError(f"MixedCorpus: size and limit must be 0 or positive, not {size} and {limit}")
    if augmenter is not None and not callable(augmenter):
        raise ValueError(f"MixedCorpus: augmenter must be a registered augmenter or null, not {augmenter!r}")
    return partial(
        _read_epoch_augmented,
        augmenter=augmenter,
        epochs=itertools.count(),
        legal_path=Path(legal_path),
        general_path=Path(general_path) if general_path is not None else None,
        ratio=ratio,
        size=size,
        seed=seed,
        general_target=general_target,
        general_key=general_key,
        label_map=load_label_map(Path(label_map) if label_map is not None else None),
        limit=limit,
    )
