"""The `entity_consistency` component: what a document says once, it says everywhere.

A filing names its parties again and again ("Fidelity", "SCBV"), and a sentence-level NER finds
some mentions and misses others. Placed after `ner` (and `legal_knowledge`), the component takes
every entity string of the Doc that qualifies (at least `min_chars` characters; with
`require_upper`, at least one capital letter, so "the company" never spreads) and labels its
other mentions - the same token texts, not overlapping an entity - with the string's most
frequent label in the Doc (ties: the first mention's), when the pipeline labelled at least
`min_share` of the string's mentions itself (0.5 by default: a loan agreement's "Lenders", labelled
once among a hundred mentions, is the pipeline's exception, not a name of the document). Existing
entities are never changed.

Each added entity gets `ent._.confidence` = the highest confidence of the mentions it was copied
from (None when none of them has one), so `annotate --min-confidence` treats it like its source,
and the kb id of the first of them that is linked.

Four settings reach beyond the exact string, the first three on by default:

- `case_insensitive_names`: a name of at least two words with capitals ("Acme Holdings Inc.") also
  labels its mentions written in another case - the all-capitals heading of a filing ("ACME
  HOLDINGS INC.") - as long as each letter the name capitalises (in all its labelled forms) is a
  capital in the mention too, so the lower-case phrase ("first national bank" as a common noun)
  is never taken. One-word
  strings keep exact matching: "APPLE" or "Apple" alone says too little. On because the strings
  are long, the case is the only difference, and names in capitals are those the NER misses most.
- `label_short_forms`: the short forms a filing defines right after an entity,
  `Silicon Valley Bank ("SVB")`, `Acme Inc. ("Acme" or the "Company")` (`short_forms.py` says
  what counts), label their mentions with the entity's label, confidence and kb id - the mention
  inside the definition too, since it names the entity as much as the later ones. A mention is
  given to the nearest definition of the short form before it (the first, when none is), and a
  mention followed by a capitalised word is left alone, being part of a longer name ("SVB
  Financial Group"). On because the filing itself says what the short form means.
- `label_tickers`: likewise the tickers after an entity, `Acme Inc. (NASDAQ: ACME)`. On because a
  ticker is one to five capitals after an exchange name, and one that the Doc also writes as a
  lower-case word ("ALL", "all") labels only its own mention.
- `label_generic_short_forms`: also defined terms made only of role words, `(the "Company")`,
  `(the "Fund")`, `(the "Borrower")`. Off by default: they name a party by its role, and
  annotation guidelines often leave "the Company" unannotated, so labelling every "Company" of a
  filing would risk many false positives for the gain on corpora that do annotate it.

Matching goes from the surest to the least sure: exact strings, then case variants, then short
forms; each only takes tokens that no entity and no earlier match has.
"""
import collections
from typing import Dict, Iterable, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..evaluation import confidence as _confidence  # noqa: F401  (registers Doc._.ent_confidences and Span._.confidence)
from .short_forms import ShortForm, find_short_forms

Key = Tuple[str, ...]
Scored = Tuple[Span, Optional[float]]


def _folds(key: Key) -> bool:
    """Whether a name is long enough to match in another case: two words with capitals."""
    return sum(any(c.isupper() for c in text) for text in key) >= 2


def _case_variant(doc: Doc, start: int, letters: str, capitals: Set[int]) -> int:
    """The end of the mention at `start` whose characters, spaces aside, are `letters` in any case
    with a capital wherever every variant of the name has one (tokenizations may differ: "Inc." and
    "INC" "."); 0 when there is none."""
    written = ""
    for end in range(start, len(doc)):
        written += doc[end].text
        if written.lower() != letters[:len(written)]:
            return 0
        if len(written) == len(letters):
            return end + 1 if all(written[i].isupper() for i in capitals) else 0
    return 0


def _string_matches(doc: Doc, taken: List[bool], *, min_chars: int, require_upper: bool,
                    allowed: Optional[Set[str]], case_insensitive: bool, min_share: float) -> List[Scored]:
    """The exact-string (and case-variant) mentions of the Doc's entity strings; a string spreads only
    when the pipeline labelled at least `min_share` of its mentions itself."""
    # key: (False, token texts) for the exact string; (True, (its letters without spaces, its first word),
    # both lower case) for its case variants, whose tokens may differ
    votes: Dict[Tuple[bool, Key], collections.Counter] = collections.defaultdict(collections.Counter)
    best: Dict[Tuple[bool, Key], Optional[float]] = {}
    kb_ids: Dict[Tuple[bool, Key], str] = {}
    capitals: Dict[Key, Set[int]] = {}  # letter positions that every variant of a name capitalises
    for ent in doc.ents:
        if len(ent.text) < min_chars or (require_upper and not any(c.isupper() for c in ent.text)):
            continue
        if allowed is not None and ent.label_ not in allowed:
            continue
        exact = tuple(t.text for t in ent)
        keys = [(False, exact)]
        if case_insensitive and _folds(exact):
            written = "".join(exact)
            folded = (written.lower(), ent[0].lower_)
            keys.append((True, folded))
            upper = {i for i, c in enumerate(written) if c.isupper()}
            capitals[folded] = capitals[folded] & upper if folded in capitals else upper
        for key in keys:
            votes[key][ent.label_] += 1
            if ent.kb_id_:
                kb_ids.setdefault(key, ent.kb_id_)
            confidence = ent._.confidence
            if confidence is not None:
                best[key] = max(confidence, best.get(key) or 0.0)
    if not votes:
        return []
    # most_common keeps insertion order among equal counts: a tie goes to the first mention's label
    label_of = {key: counts.most_common(1)[0][0] for key, counts in votes.items()}
    by_first_token: Dict[Tuple[bool, str], List[Tuple[bool, Key]]] = collections.defaultdict(list)
    for folded, key in votes:
        by_first_token[folded, key[1] if folded else key[0]].append((folded, key))

    def length(candidate: Tuple[bool, Key]) -> Tuple[int, bool]:
        folded, key = candidate
        return -len(key[0] if folded else "".join(key)), folded

    def match(free: List[bool], keys: Set[Tuple[bool, Key]]) -> List[Tuple[Tuple[bool, Key], int, int]]:
        found = []
        for i, token in enumerate(doc):
            candidates = by_first_token.get((False, token.text), []) + by_first_token.get((True, token.lower_), [])
            # longest first ("Fidelity Investments" before "Fidelity"), and an exact string before a case variant
            for candidate in sorted((c for c in candidates if c in keys), key=length):
                folded, key = candidate
                if folded:
                    end = _case_variant(doc, i, key[0], capitals[key])
                else:
                    end = i + len(key) if tuple(t.text for t in doc[i:i + len(key)]) == key else 0
                if end and not any(free[i:end]):
                    found.append((candidate, i, end))
                    free[i:end] = [True] * (end - i)
                    break
        return found

    keys = set(votes)
    if min_share > 0:
        # a string the pipeline labelled once among many mentions ("Lenders" once in a loan agreement)
        # is the pipeline's exception, not the document's name: it does not spread
        unlabelled = collections.Counter(candidate for candidate, _, _ in match(list(taken), keys))
        keys = {k for k in keys if sum(votes[k].values()) / (sum(votes[k].values()) + unlabelled[k]) >= min_share}
    added = []
    for candidate, start, end in match(taken, keys):
        added.append((Span(doc, start, end, label=label_of[candidate], kb_id=kb_ids.get(candidate, "")),
                      best.get(candidate)))
    return added


def _short_form_matches(doc: Doc, taken: List[bool], forms: Dict[Key, List[ShortForm]]) -> List[Scored]:
    """The mentions of the Doc's defined short forms, each labelled by its nearest earlier definition."""
    added = []

    def take(start: int, end: int, form: ShortForm) -> None:
        added.append((Span(doc, start, end, label=form.label, kb_id=form.kb_id), form.confidence))
        taken[start:end] = [True] * (end - start)

    for definitions in forms.values():  # a word-like ticker labels only its own mention
        for form in definitions:
            if not form.spread and not any(taken[form.start:form.end]):
                take(form.start, form.end, form)
    by_first_token: Dict[str, List[Key]] = collections.defaultdict(list)
    for key in sorted(forms, key=len, reverse=True):
        if any(form.spread for form in forms[key]):
            by_first_token[key[0]].append(key)
    for i, token in enumerate(doc):
        for key in by_first_token.get(token.text, ()):
            end = i + len(key)
            if end > len(doc) or any(taken[i:end]) or tuple(t.text for t in doc[i:end]) != key:
                continue
            if end < len(doc) and doc[end].text[:1].isupper():  # part of a longer name: "SVB Financial Group"
                continue
            spread = [form for form in forms[key] if form.spread]
            earlier = [form for form in spread if form.start <= i]
            take(i, end, earlier[-1] if earlier else spread[0])
            break
    return added


def consistent_entities(doc: Doc, *, min_chars: int = 2, require_upper: bool = True,
                        labels: Optional[Iterable[str]] = None, case_insensitive_names: bool = True,
                        label_short_forms: bool = True, label_tickers: bool = True,
                        label_generic_short_forms: bool = False, min_share: float = 0.5) -> List[Scored]:
    """The mentions of the Doc's entity strings and of their short forms that are not entities yet,
    labelled like them (see the module docstring).

    doc (Doc): A Doc with entities (`doc.ents`).
    min_chars (int): Shortest entity text (and short form) that spreads.
    require_upper (bool): Only entity texts with a capital letter spread.
    labels (Optional[Iterable[str]]): Only these labels spread (default: all).
    case_insensitive_names (bool): Names of two or more capitalised words also label their
        mentions written in another case.
    label_short_forms (bool): Defined short forms (`Silicon Valley Bank ("SVB")`) label their mentions.
    label_tickers (bool): Tickers (`Acme Inc. (NASDAQ: ACME)`) label their mentions.
    label_generic_short_forms (bool): With `label_short_forms`, also defined role words (`(the "Company")`).
    min_share (float): A string spreads only when at least this share of its mentions are entities
        already (0: always); short forms and tickers, which the text defines, are not held to it.
        The default, 0.5, was chosen on E-NER dev (docs/lab/boundaries.md).
    RETURNS (List[Tuple[Span, Optional[float]]]): The new entities in Doc order, each with the
        highest confidence of its source mentions (a short form: its entity's confidence).
    """
    allowed = None if labels is None else set(labels)
    taken = [False] * len(doc)
    for ent in doc.ents:
        taken[ent.start:ent.end] = [True] * len(ent)
    added = _string_matches(doc, taken, min_chars=min_chars, require_upper=require_upper, allowed=allowed,
                            case_insensitive=case_insensitive_names, min_share=min_share)
    if label_short_forms or label_tickers:
        # the entities just added may be the ones a definition follows
        sources = [(ent, ent._.confidence) for ent in doc.ents] + added
        sources = [(ent, c) for ent, c in sources if allowed is None or ent.label_ in allowed]
        forms = find_short_forms(doc, sources, min_chars=min_chars, generic=label_generic_short_forms,
                                 names=label_short_forms, tickers=label_tickers)
        added += _short_form_matches(doc, taken, forms)
    return sorted(added, key=lambda pair: pair[0].start)


SETTINGS = {"min_chars": 2, "require_upper": True, "labels": None, "case_insensitive_names": True,
            "label_short_forms": True, "label_tickers": True, "label_generic_short_forms": False, "min_share": 0.5}


class EntityConsistency:
    """Labels the other mentions of a Doc's entity strings and short forms (see the module docstring)."""

    def __init__(self, name: str, *, min_chars: int, require_upper: bool, labels: Optional[List[str]],
                 case_insensitive_names: bool, label_short_forms: bool, label_tickers: bool,
                 label_generic_short_forms: bool, min_share: float) -> None:
        if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 1:
            raise ValueError(f"min_chars must be an integer >= 1, not {min_chars!r}")
        flags = {"require_upper": require_upper, "case_insensitive_names": case_insensitive_names,
                 "label_short_forms": label_short_forms, "label_tickers": label_tickers,
                 "label_generic_short_forms": label_generic_short_forms}
        for setting, value in flags.items():
            if not isinstance(value, bool):
                raise ValueError(f"{setting} must be true or false, not {value!r}")
        if labels is not None and (isinstance(labels, str) or not all(isinstance(label, str) for label in labels)):
            raise ValueError(f"labels must be a list of label names or null, not {labels!r}")
        if label_generic_short_forms and not label_short_forms:
            raise ValueError("label_generic_short_forms needs label_short_forms")
        if isinstance(min_share, bool) or not isinstance(min_share, (int, float)) or not 0 <= min_share <= 1:
            raise ValueError(f"min_share must be a number in [0, 1], not {min_share!r}")
        self.name = name
        self.cfg = {"min_chars": min_chars, "labels": None if labels is None else list(labels), **flags,
                    "min_share": float(min_share)}

    def __call__(self, doc: Doc) -> Doc:
        added = consistent_entities(doc, **self.cfg)
        if added:
            scores = list(doc._.ent_confidences or [])
            scores += [[span.start, span.end, span.label_, c] for span, c in added if c is not None]
            doc.ents = sorted(list(doc.ents) + [span for span, _ in added], key=lambda s: s.start)
            doc._.ent_confidences = scores
        return doc


@Language.factory("entity_consistency", default_config=SETTINGS)
def make_entity_consistency(nlp: Language, name: str, min_chars: int, require_upper: bool, labels: Optional[List[str]],
                            case_insensitive_names: bool, label_short_forms: bool, label_tickers: bool,
                            label_generic_short_forms: bool, min_share: float) -> EntityConsistency:
    """Create the `entity_consistency` component (add it last, after `ner` and `legal_knowledge`).

    min_chars (int): Shortest entity text (and short form) that spreads.
    require_upper (bool): Only entity texts with a capital letter spread.
    labels (Optional[List[str]]): Only these labels spread (None: all).
    case_insensitive_names (bool): Names of two or more capitalised words also label their
        mentions written in another case.
    label_short_forms (bool): Defined short forms (`Silicon Valley Bank ("SVB")`) label their mentions.
    label_tickers (bool): Tickers (`Acme Inc. (NASDAQ: ACME)`) label their mentions.
    label_generic_short_forms (bool): With `label_short_forms`, also defined role words (`(the "Company")`).
    min_share (float): A string spreads only when at least this share of its mentions are entities already.
    RETURNS (EntityConsistency): The component.
    """
    return EntityConsistency(name, min_chars=min_chars, require_upper=require_upper, labels=labels,
                             case_insensitive_names=case_insensitive_names, label_short_forms=label_short_forms,
                             label_tickers=label_tickers, label_generic_short_forms=label_generic_short_forms,
                             min_share=min_share)
