"""Robustness suite: seeded perturbations of a gold set that keep its gold spans valid,
and the entity scores of a pipeline on each of them next to the clean scores.

Perturbations (each returns new gold Docs; entity i of a perturbed Doc is the
perturbed version of entity i of the original, with the same label):
- upper, lower, title: the whole text upper-cased, lower-cased, or each token
  capitalized (first character upper, the rest lower);
- upper_passages: each sentence written in capitals with probability `noise_rate`, as
  contracts write headings and party blocks (the sentences from the Doc's boundaries, else
  from `casing.forms.sentence_starts`);
- typos: one character edit (swap of two neighbours, deletion, insertion or
  replacement of a letter) in one token of every entity that has a token with
  two or more letters;
- swap: every entity replaced by a different entity of the same label drawn
  from a pool (e.g. the training data); kept when the pool has no other;
- whitespace, punctuation: extra whitespace tokens (spaces, a tab, a newline)
  or stray punctuation tokens inserted between words outside entities, at a
  rate of `noise_rate` per word boundary;
- natural, spaced: the same tokens with the spacing of written text rebuilt by the
  converters' rules (`formats.spacing`: "Acme Inc., filed"), or with a space after
  every token ("Acme Inc. , filed"), as token-per-line corpora used to be.
Every Doc is perturbed with its own `random.Random(f"{seed}:{kind}:{index}")`,
so results do not depend on the other Docs.
"""
import random
import string
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span
from tqdm import tqdm

from ..casing.forms import CASE_FUNCTIONS, sentence_starts
from ..corpus.formats.spacing import natural_spaces
from ..corpus.labels import LabelMap
from .evaluate import evaluate_pipeline

PERTURBATIONS = ("upper", "lower", "title", "upper_passages", "typos", "swap", "whitespace", "punctuation", "natural", "spaced")
WHITESPACE_NOISE = (" ", "  ", "\t", "\n")
PUNCTUATION_NOISE = (",", ";", ":", "-", "--", "...", "*", "/", "|", "~", "•", "(", ")")
# label -> sorted unique entities, each (words, spaces between them)
EntityPool = Dict[str, List[Tuple[Tuple[str, ...], Tuple[bool, ...]]]]


@dataclass
class _Piece:
    """A run of tokens rebuilt as a unit: one entity, or one token outside entities."""

    words: List[str]
    spaces: List[bool]
    label: Optional[str] = None  # the entity label; None outside entities
    missing: bool = False  # gold annotation missing on these tokens
    sent_start: Optional[bool] = None  # of the first token; None when the Doc has no sentences

    @property
    def text(self) -> str:
        return "".join(w + (" " if s else "") for w, s in zip(self.words, self.spaces))


def build_entity_pool(docs: Sequence[Doc]) -> EntityPool:
    """Collect the entities of Docs by label, as swap candidates.

    docs (Sequence[Doc]): E.g. the training data.
    RETURNS (EntityPool): label -> sorted unique (words, inner spaces).
    """
    pool: Dict[str, set] = {}
    for doc in docs:
        for ent in doc.ents:
            words = tuple(t.text for t in ent)
            spaces = tuple(bool(t.whitespace_) for t in ent[:-1])
            pool.setdefault(ent.label_, set()).add((words, spaces))
    return {label: sorted(entries) for label, entries in sorted(pool.items())}


def _pieces(doc: Doc) -> List[_Piece]:
    has_sents = doc.has_annotation("SENT_START")
    starts = {ent.start: ent for ent in doc.ents}
    pieces, i = [], 0
    while i < len(doc):
        ent = starts.get(i)
        end = ent.end if ent is not None else i + 1
        tokens = doc[i:end]
        pieces.append(_Piece(
            words=[t.text for t in tokens], spaces=[bool(t.whitespace_) for t in tokens],
            label=ent.label_ if ent is not None else None, missing=ent is None and doc[i].ent_iob == 0,
            sent_start=bool(doc[i].is_sent_start) if has_sents else None,
        ))
        i = end
    return pieces


def _build(original: Doc, pieces: List[_Piece]) -> Doc:
    words, spaces, sent_starts = [], [], []
    ents, missing = [], []
    for piece in pieces:
        start = len(words)
        words.extend(piece.words)
        spaces.extend(piece.spaces)
        sent_starts.extend([piece.sent_start] + [False if piece.sent_start is not None else None] * (len(piece.words) - 1))
        if piece.label is not None:
            ents.append((start, len(words), piece.label))
        elif piece.missing:
            missing.append((start, len(words)))
    has_sents = original.has_annotation("SENT_START")
    doc = Doc(original.vocab, words=words, spaces=spaces,
              sent_starts=[bool(s) for s in sent_starts] if has_sents else None)
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in ents],
                 missing=[doc[s:e] for s, e in missing], default="outside")
    doc.user_data.update(original.user_data)
    return doc


def _respace(doc: Doc, pieces: List[_Piece], *, natural: bool) -> None:
    """Set the spacing of every token but whitespace tokens and the Doc's last, in place."""
    words = [w for piece in pieces for w in piece.words]
    bounds = [(s.start, s.end) for s in doc.sents] if doc.has_annotation("SENT_START") else [(0, len(doc))]
    flags = [f for start, end in bounds for f in (natural_spaces(words[start:end]) if natural else [True] * (end - start))]
    i = 0
    for piece in pieces:
        for j, word in enumerate(piece.words):
            if not word.isspace() and i + 1 < len(words):
                piece.spaces[j] = flags[i]
            i += 1


def _typo(word: str, rng: random.Random) -> str:
    """One character edit of a word with two or more letters; the result differs and has no whitespace."""
    letters = [i for i, c in enumerate(word) if c.isalpha()]
    edit = rng.choice(("swap", "delete", "insert", "replace"))
    pairs = [i for i in letters if i + 1 in letters and word[i].lower() != word[i + 1].lower()]
    if edit == "swap" and pairs:
        i = rng.choice(pairs)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "delete" and len(word) >= 3:
        i = rng.choice(letters)
        return word[:i] + word[i + 1 :]
    i = rng.choice(letters)
    if edit == "insert":  # after a letter, in the word's case ("Act" -> "Acxt", "ACT" -> "ACXT")
        alphabet = string.ascii_uppercase if word.isupper() else string.ascii_lowercase
        return word[: i + 1] + rng.choice(alphabet) + word[i + 1 :]
    alphabet = string.ascii_uppercase if word[i].isupper() else string.ascii_lowercase
    return word[:i] + rng.choice([c for c in alphabet if c != word[i]]) + word[i + 1 :]


def perturb_doc(
    doc: Doc, *, kind: str, rng: random.Random, pool: Optional[EntityPool] = None, noise_rate: float = 0.2
) -> Doc:
    """One perturbed copy of a gold Doc.

    doc (Doc): The gold Doc (not modified).
    kind (str): One of PERTURBATIONS.
    rng (random.Random): The random source.
    pool (Optional[EntityPool]): Swap candidates; required for "swap".
    noise_rate (float): Insertion rate per word boundary of "whitespace" and "punctuation", and
        share of the sentences that "upper_passages" writes in capitals.
    RETURNS (Doc): The perturbed Doc, its entities in the same order and with the same labels.
    """
    pieces = _pieces(doc)
    if kind in ("whitespace", "punctuation", "upper_passages") and not 0.0 <= noise_rate <= 1.0:
        raise ValueError(f"noise_rate must be in [0, 1], not {noise_rate}")
    if kind in CASE_FUNCTIONS:
        case = CASE_FUNCTIONS[kind]
        for piece in pieces:
            piece.words = [case(w) for w in piece.words]
    elif kind == "upper_passages":
        starts, i, upper = sentence_starts(doc), 0, False
        for piece in pieces:  # a piece starting a sentence draws for the whole sentence
            upper = rng.random() < noise_rate if starts[i] else upper
            i += len(piece.words)
            piece.words = [w.upper() for w in piece.words] if upper else piece.words
    elif kind == "typos":
        for piece in pieces:
            candidates = [i for i, w in enumerate(piece.words) if sum(c.isalpha() for c in w) >= 2]
            if piece.label is not None and candidates:
                i = rng.choice(candidates)
                piece.words[i] = _typo(piece.words[i], rng)
    elif kind == "swap":
        if pool is None:
            raise ValueError("the swap perturbation needs an entity pool (e.g. from the training data)")
        for piece in pieces:
            if piece.label is None:
                continue
            entries = pool.get(piece.label, [])
            current = (tuple(piece.words), tuple(piece.spaces[:-1]))
            if not entries or entries == [current]:
                continue
            i = rng.randrange(len(entries))
            if entries[i] == current:  # draw uniformly among the others
                i = (i + 1 + rng.randrange(len(entries) - 1)) % len(entries)
            words, inner = entries[i]
            piece.words, piece.spaces = list(words), list(inner) + [piece.spaces[-1]]
    elif kind in ("natural", "spaced"):
        _respace(doc, pieces, natural=kind == "natural")
    elif kind in ("whitespace", "punctuation"):
        noisy = []
        for n, piece in enumerate(pieces):
            noisy.append(piece)
            # only at a word boundary, so no token of the gold text is split or glued
            if n + 1 < len(pieces) and piece.spaces[-1] and rng.random() < noise_rate:
                sent = None if piece.sent_start is None else False
                if kind == "whitespace":
                    noisy.append(_Piece([rng.choice(WHITESPACE_NOISE)], [False], missing=piece.missing, sent_start=sent))
                else:
                    noisy.append(_Piece([rng.choice(PUNCTUATION_NOISE)], [True], missing=piece.missing, sent_start=sent))
        pieces = noisy
    else:
        raise ValueError(f"unknown perturbation {kind!r}: expected one of {', '.join(PERTURBATIONS)}")
    return _build(doc, pieces)


def perturb_docs(
    docs: Sequence[Doc], *, kind: str, seed: int = 0, pool: Optional[EntityPool] = None, noise_rate: float = 0.2
) -> List[Doc]:
    """Perturb every Doc of a gold set, each with its own seeded random source.

    docs (Sequence[Doc]): The gold Docs.
    kind, pool, noise_rate: See `perturb_doc`.
    seed (int): The seed.
    RETURNS (List[Doc]): The perturbed Docs, in order.
    """
    return [
        perturb_doc(doc, kind=kind, rng=random.Random(f"{seed}:{kind}:{i}"), pool=pool, noise_rate=noise_rate)
        for i, doc in enumerate(docs)
    ]


def _row(name: str, result: Dict[str, Any], clean_f: Optional[float], changed: int, total: int) -> Dict[str, Any]:
    f = result["ents_f"]
    return {
        "perturbation": name, "ents_p": result["ents_p"], "ents_r": result["ents_r"], "ents_f": f,
        "delta_f": None if f is None or clean_f is None else f - clean_f,
        "entities_changed": changed, "entities": total,
    }


def evaluate_robustness(
    nlp: Language, gold_docs: List[Doc], *, pool: Optional[EntityPool] = None,
    perturbations: Optional[Sequence[str]] = None, seed: int = 0, noise_rate: float = 0.2, batch_size: int = 64,
    gold_map: Optional[LabelMap] = None, pred_map: Optional[LabelMap] = None,
    clean: Optional[Dict[str, Any]] = None, progress: bool = True,
) -> Dict[str, Any]:
    """Entity scores of a pipeline on the clean gold set and on each perturbation.

    nlp (Language): The pipeline.
    gold_docs (List[Doc]): The gold Docs, in their own label set (the pool shares it).
    pool (Optional[EntityPool]): Swap candidates; without one, "swap" is left out.
    perturbations (Optional[Sequence[str]]): Which perturbations; all by default.
    seed (int): The perturbations' seed.
    noise_rate (float): See `perturb_doc`.
    batch_size, gold_map, pred_map: See `evaluate_pipeline`.
    clean (Optional[Dict[str, Any]]): An evaluation of the clean set, to reuse.
    progress (bool): Show progress bars.
    RETURNS (Dict[str, Any]): seed, noise_rate, skipped (name -> reason) and rows (clean first):
        perturbation, ents_p, ents_r, ents_f, delta_f (vs clean), entities_changed, entities.
    """
    kinds = list(PERTURBATIONS if perturbations is None else perturbations)
    unknown = [k for k in kinds if k not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"unknown perturbations {unknown}: expected some of {', '.join(PERTURBATIONS)}")
    skipped = {}
    if pool is None and "swap" in kinds:
        kinds.remove("swap")
        skipped["swap"] = "no entity pool given"
    # one progress bar over the perturbations; the inner runs are short
    run = dict(batch_size=batch_size, gold_map=gold_map, pred_map=pred_map, n_errors=0, seed=seed, progress=False)
    if clean is None:
        clean = evaluate_pipeline(nlp, gold_docs, **run)
    total = sum(len(doc.ents) for doc in gold_docs)
    rows = [_row("clean", clean, clean["ents_f"], 0, total)]
    for kind in tqdm(kinds, desc="robustness", unit="perturbation", disable=not progress):
        docs = perturb_docs(gold_docs, kind=kind, seed=seed, pool=pool, noise_rate=noise_rate)
        changed = sum(a.text != b.text for old, new in zip(gold_docs, docs) for a, b in zip(old.ents, new.ents))
        rows.append(_row(kind, evaluate_pipeline(nlp, docs, **run), clean["ents_f"], changed, total))
    return {"seed": seed, "noise_rate": noise_rate, "skipped": skipped, "rows": rows}
