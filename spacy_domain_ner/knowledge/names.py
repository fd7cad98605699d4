"""Whole proper names from the form of the text: designators, and the spans they close.

A filing's long names end in a word that says what kind of thing they name: "Fidelity Advisor New
York Municipal Income Fund", "Silicon Valley Bank", "Acme Holdings, Inc.". A sentence-level NER
often cuts them into pieces ("Fidelity Advisor" + "New York") or labels them as something else;
names it never saw are the rule, so the fix reads the text's form, not a list of names.

Designators (`mine_name_designators`) are mined per label from an annotated corpus: the last word
of entities of at least two tokens (after a series tail such as "2", "II" or ", Series A"),
and, when that word is a company suffix, also the word before it ("Holdings" in "Acme Holdings,
Inc."), compared by `designator_key` (lower case, no periods: "Inc." = "INC" = "inc"). A word is a
designator of a label when it ends at least `min_count` such entities of the label and the label
has at least `min_share` of the entities it ends. Single-token entities do not count: "Borrower"
or "Worksoft" is a name by itself, not a word that closes longer names. With `common_only`, a
word must also occur written in lower case outside entities (a common noun: fund, bank, trust),
or be a company suffix (`COMPANY_SUFFIXES`): a name such as "York" ends "New York" every time,
and as a designator it would glue any capitalised words before it into a place.

`find_name_spans` applies the rules to a Doc's predicted entities (see its docstring).
"""
import re
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, Span, Token

# Inside a run of name words only: "Bank of the West", "Procter & Gamble", "Tax - Free".
CONNECTORS = frozenset({"and", "of", "&", "-", "the"})
# A conjunction after a complete name (or a predicted entity) starts another name, not a longer one.
CONJUNCTIONS = frozenset({"and", "&"})
# After a designator, optionally preceded by a comma: "Fund, Inc.", "Partners II, L.P.".
COMPANY_SUFFIXES = frozenset({
    "inc", "incorporated", "llc", "llp", "lllp", "lp", "ltd", "limited", "corp", "co", "plc", "pllc", "pc",
    "na", "sa", "ag", "nv", "bv", "gmbh", "pte", "sarl", "spa", "ulc",
})
# Followed by a number, a roman numeral or a capital letter: "Series A", "Class 2", "No. 3".
SERIES_WORDS = frozenset({"series", "class", "no"})
ROMAN = re.compile(r"[IVX]{1,5}")
# A capital after a colon is meaningful ("LENDERS: Silicon Valley Bank"), after a full stop it is not.
SENTENCE_END = frozenset({".", "!", "?"})
# Between two entities of one name, and before its first entity, at most this many words are taken:
# a longer run of capitalised words is a heading or a flattened table row, not one name.
MAX_GAP_WORDS = 2
MAX_LEFT_WORDS = 2

Designators = Dict[str, Dict[str, float]]  # {label: {designator key: share}}


def designator_key(text: str) -> str:
    """How designators are compared: lower case without periods ("Inc." = "INC" = "inc")."""
    return text.lower().replace(".", "")


def is_name_word(token: Token) -> bool:
    """A word with a letter, written with a capital first (title case or all capitals)."""
    return token.text[:1].isupper() and any(c.isalpha() for c in token.text)


def is_number(token: Token) -> bool:
    """A token that starts with a digit ("2", "2020", "3M")."""
    return token.text[:1].isdigit()


def is_connector(token: Token) -> bool:
    """"and", "of", "&", "-", "the", in any case: allowed inside a name, never at its ends."""
    return token.text.lower() in CONNECTORS


def series_number(token: Token, *, after_series_word: bool) -> bool:
    """A series number: at most 3 digits (not a year or a street number) or a roman numeral; after
    "Series"/"Class"/"No." also a single capital letter."""
    text = token.text
    if text.isdigit():
        return len(text) <= 3
    return bool(ROMAN.fullmatch(text)) or (after_series_word and len(text) == 1 and text.isupper())


def breaks_before(doc: Doc, i: int) -> bool:
    """Whether a name cannot run from token i - 1 into token i: a line break, a whitespace token,
    or a sentence start when the Doc has sentence boundaries."""
    if i <= 0 or i >= len(doc):
        return True
    if "\n" in doc[i - 1].whitespace_ or doc[i].text.isspace() or doc[i - 1].text.isspace():
        return True
    return doc.has_annotation("SENT_START") and doc[i].is_sent_start is True


def sentence_initial(doc: Doc, i: int) -> bool:
    """Whether token i starts a sentence, so that its capital says nothing about it being a name."""
    if doc.has_annotation("SENT_START") and doc[i].is_sent_start:
        return True
    j = i - 1
    while j >= 0 and doc[j].text.isspace():
        j -= 1
    return j < 0 or doc[j].text in SENTENCE_END


def tail_ends(doc: Doc, start: int, *, limit: Optional[int] = None, suffixes: bool = True) -> List[int]:
    """The ends of a series or company tail that starts at token `start` (right after a designator).

    Up to two parts, each optionally after a comma: a company suffix ("Inc.", "L.P."), "Series"/
    "Class"/"No." and its number or letter, or a bare series number ("2", "II").

    doc (Doc): The document.
    start (int): The token after the designator.
    limit (Optional[int]): No tail reaches past this token (default: the Doc's end).
    suffixes (bool): Whether a company suffix is a tail part (False: series parts only).
    RETURNS (List[int]): The end of each tail part found, in order (empty: no tail).
    """
    limit = len(doc) if limit is None else min(limit, len(doc))
    ends, i = [], start
    for _ in range(2):
        j = i + 1 if i < limit and doc[i].text == "," else i
        if j >= limit or breaks_before(doc, j):
            break
        key = designator_key(doc[j].text)
        if suffixes and key in COMPANY_SUFFIXES and doc[j].text[:1].isupper():
            i = j + 1
        elif key in SERIES_WORDS and doc[j].text[:1].isupper() and j + 1 < limit and not breaks_before(doc, j + 1) \
                and series_number(doc[j + 1], after_series_word=True):
            i = j + 2
        elif j == i and series_number(doc[j], after_series_word=False) and not _address_number(doc, j):
            i = j + 1  # a bare number takes no comma
        else:
            break
        ends.append(i)
    return ends


def _address_number(doc: Doc, i: int) -> bool:
    """A number followed on its line by a word that is no company suffix, or by another number: the
    street number of an address ("Silicon Valley Bank 535 Fifth Avenue"), not a series number."""
    if not doc[i].text.isdigit() or i + 1 >= len(doc) or breaks_before(doc, i + 1):
        return False
    after = doc[i + 1]
    return is_number(after) or (is_name_word(after) and designator_key(after.text) not in COMPANY_SUFFIXES)


def name_head(span: Span, *, suffixes: bool = True) -> int:
    """The index of a span's last word before its tail (e.g. "Fund" in "Income Fund, Series 2").

    span (Span): The span.
    suffixes (bool): Whether a company suffix is part of the tail (False: "Inc." is the last word
        of "Acme Fund, Inc.").
    RETURNS (int): The token index (the span's last token when it has no tail).
    """
    for head in range(span.start, span.end):
        if span.end in tail_ends(span.doc, head + 1, limit=span.end, suffixes=suffixes):
            return head
    return span.end - 1


def _closing_words(ent: Span) -> List[Token]:
    """The words of an entity that count as closing it when mining: its last word before a series
    tail, and, when that is a company suffix, the word before the suffix ("Holdings" in "Acme
    Holdings, Inc."), each with a word before it in the entity."""
    doc = ent.doc
    head = name_head(ent, suffixes=False)
    words = [doc[head]] if head > ent.start else []
    if designator_key(doc[head].text) in COMPANY_SUFFIXES:
        before = head - 2 if head - 1 > ent.start and doc[head - 1].text == "," else head - 1
        if before > ent.start:
            words.append(doc[before])
    # an initial ("E") or a number closes no kind of name
    return [w for w in words if sum(c.isalpha() for c in w.text) >= 2 and not is_connector(w)]


def mine_name_designators(docs: Iterable[Doc], *, min_count: int = 3, min_share: float = 0.5,
                          common_only: bool = True) -> Designators:
    """Mine each label's designators from annotated Docs (rules in the module docstring).

    docs (Iterable[Doc]): Docs with gold entities.
    min_count (int): Least number of entities of the label that the word ends.
    min_share (float): Least share of the label among the entities the word ends, in (0, 1].
    common_only (bool): Keep only words also written in lower case outside entities, and company suffixes.
    RETURNS (Designators): {label: {designator key: share}}, labels sorted, each label's words most
        frequent first; JSON-serialisable.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, not {min_count}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be in (0, 1], not {min_share}")
    ends: Dict[str, Counter] = defaultdict(Counter)
    common: Counter = Counter()
    for doc in docs:
        inside = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        for token in doc:
            if token.i not in inside and token.text.islower():
                common[designator_key(token.text)] += 1
        for ent in doc.ents:
            for word in _closing_words(ent):
                ends[designator_key(word.text)][ent.label_] += 1
    mined: Dict[str, List[Tuple[int, str, float]]] = defaultdict(list)
    for key, labels in ends.items():
        if common_only and not common[key] and key not in COMPANY_SUFFIXES:
            continue
        total = sum(labels.values())
        for label, count in labels.items():
            if count >= min_count and count / total >= min_share:
                mined[label].append((count, key, round(count / total, 4)))
    return {label: {key: share for _, key, share in sorted(mined[label], key=lambda x: (-x[0], x[1]))}
            for label in sorted(mined)}


def check_designators(designators: Mapping[str, Union[Sequence[str], Mapping[str, float]]]) -> Designators:
    """Validate designators and bring them to {label: {designator key: share}}.

    designators (Mapping): {label: {word: share}} as mined, or {label: [word, ...]} written by hand
        (each word's share is then 1.0: a strong designator). Words are keyed by `designator_key`.
    RETURNS (Designators): A new dict.
    """
    if not isinstance(designators, Mapping):
        raise ValueError(f"designators must map labels to words, not {type(designators).__name__}")
    checked: Designators = {}
    for label, words in designators.items():
        if not isinstance(label, str) or not label:
            raise ValueError(f"designator labels must be non-empty strings, not {label!r}")
        shares = {word: 1.0 for word in words} if isinstance(words, (list, tuple)) else words
        if not isinstance(shares, Mapping):
            raise ValueError(f"designators of {label}: expected a list of words or a {{word: share}} dict")
        checked[label] = {}
        for word, share in shares.items():
            if not isinstance(word, str) or not designator_key(word).strip():
                raise ValueError(f"designators of {label}: bad word {word!r}")
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
                raise ValueError(f"designators of {label}: share of {word!r} must be in (0, 1], not {share!r}")
            checked[label][designator_key(word)] = float(share)
    return checked


def find_name_spans(doc: Doc, *, designators: Designators, extend: bool = True, extend_left: bool = True,
                    merge: bool = True, relabel: bool = True, strong_share: float = 0.9,
                    max_tokens: int = 12) -> List[Tuple[int, int, str, List[Span]]]:
    """The whole names that a Doc's predicted entities are part of.

    For each entity, left to right, the run of name tokens after it is scanned: capitalised or
    all-capital words, numbers, other entities (whole, themselves made of name tokens), connectors
    (`CONNECTORS`), and a comma only before a company suffix or "Series"/"Class"/"No.". The run
    stops at a line break, a sentence start, any other token (quotes, parentheses, lower-case and
    stop words other than the connectors), after `max_tokens` tokens, at an entity more than
    `MAX_GAP_WORDS` tokens after the previous one, at a conjunction right after a designator or an
    entity (two names: "Fidelity Investments and Silicon Valley Bank"), and at a number after a
    designator that is not a series number ("Bank 3003 Tasman Drive"; a number followed by a word,
    as in "Bank 535 Fifth Avenue", is a street number).

    The name ends at the furthest designator of the run (with its tail) such that:
    - its label is a designator label of that word that one of the covered entities has (the
      highest share wins), else - `relabel` - the word's label whose share is at least
      `strong_share` ("John Smith Trust", PER, becomes the trust's label);
    - every other designator that could end the name before it is also one of that label ("Silicon
      Valley Bank Tasman Drive" does not become a place);
    - there is a word before the designator, and the rules it needs are on: `extend` (tokens after
      the last entity), `merge` (two or more entities, and the tokens between them), `relabel`
      (a label none of them has).
    A name that ends in a designator of its label then takes, with `extend_left`, up to
    `MAX_LEFT_WORDS` capitalised words directly before it ("Silicon" before "Valley Bank"): not
    stop words (The, Under, Between), numbers, connectors or tokens of another entity, and not a
    title-case word that starts the sentence, whose capital says nothing.

    doc (Doc): A Doc with predicted entities.
    designators (Designators): {label: {designator key: share}} (`check_designators`).
    extend, extend_left, merge, relabel (bool): Which rules may fire.
    strong_share (float): Least share of a designator that gives a name a label none of its
        entities had.
    max_tokens (int): Longest name.
    RETURNS (List[Tuple[int, int, str, List[Span]]]): Each changed name's start, end and label, with
        the entities it replaces, in Doc order; never overlapping, each covering its entities whole.
    """
    by_word: Dict[str, Dict[str, float]] = {}
    for label, words in designators.items():
        for key, share in words.items():
            by_word.setdefault(key, {})[label] = share
    ends_at: Dict[int, int] = {}  # end of a designator or of its tail -> the designator's index
    for token in doc:
        if designator_key(token.text) in by_word and is_name_word(token):
            for end in [token.i + 1, *tail_ends(doc, token.i + 1)]:
                ends_at.setdefault(end, token.i)
    ents = list(doc.ents)
    owner = [-1] * len(doc)
    for k, ent in enumerate(ents):
        owner[ent.start:ent.end] = [k] * len(ent)
    name_like = [_name_like(ent) for ent in ents]
    taken = [False] * len(doc)
    found = []
    k = 0
    while k < len(ents):
        first = ents[k]
        best = _best_end(doc, k, ents, owner, name_like, ends_at, by_word, extend=extend, merge=merge, relabel=relabel,
                         strong_share=strong_share, max_tokens=max_tokens) if name_like[k] else None
        if best is None:
            start, end, label, last = first.start, first.end, first.label_, k
            designated = name_like[k] and end in ends_at and label in by_word[designator_key(doc[ends_at[end]].text)]
        else:
            (end, label, last), start, designated = best, first.start, True
        if designated and extend_left:
            start = _left_start(doc, start, end, label, owner, taken, by_word, max_tokens=max_tokens)
        if (start, end, label) != (first.start, first.end, first.label_):
            found.append((start, end, label, ents[k:last + 1]))
            taken[start:end] = [True] * (end - start)
        k = last + 1
    return found


def _name_like(ent: Span) -> bool:
    """Name tokens throughout: name words, numbers or connectors, not starting in lower case, no break inside."""
    doc = ent.doc
    if ent[0].text.islower() or not any(is_name_word(t) for t in ent):
        return False
    return all((is_name_word(t) or is_number(t) or is_connector(t)) and (t.i == ent.start or not breaks_before(doc, t.i))
               for t in ent)


def _best_end(doc: Doc, k: int, ents: List[Span], owner: List[int], name_like: List[bool], ends_at: Dict[int, int],
              by_word: Dict[str, Dict[str, float]], *, extend: bool, merge: bool, relabel: bool, strong_share: float,
              max_tokens: int) -> Optional[Tuple[int, str, int]]:
    """The furthest valid end of a name that starts with entity k: (end, label, last entity index), or None."""
    first = ents[k]
    limit = min(len(doc), first.start + max_tokens)
    candidates = [first.end] if first.end in ends_at else []
    j = last_piece_end = first.end
    while j < limit and not breaks_before(doc, j):
        token = doc[j]
        if j in ends_at:  # the tokens so far end in a designator: its tail ("2", ", Inc.", ", Series A") may follow
            parts = tail_ends(doc, j, limit=limit)
            if parts and all(owner[i] < 0 for i in range(j, parts[0])):
                j = parts[0]
                candidates.append(j)
                continue
            if is_number(token) or token.text.lower() in CONJUNCTIONS:  # an address, or a second name
                break
        if owner[j] >= 0:
            ent = ents[owner[j]]
            if ent.start != j or ent.end > limit or not name_like[owner[j]] or j - last_piece_end > MAX_GAP_WORDS:
                break
            j = last_piece_end = ent.end
        elif token.text.lower() in CONJUNCTIONS and owner[j - 1] >= 0:
            break
        elif token.text == ",":
            if j + 1 >= limit or designator_key(doc[j + 1].text) not in COMPANY_SUFFIXES | SERIES_WORDS:
                break
            j += 1
        elif (is_name_word(token) and not token.is_stop) or is_number(token) or is_connector(token):
            j += 1
        else:
            break
        if j in ends_at:
            candidates.append(j)
    for end in reversed(candidates):
        head = ends_at[end]
        if head == first.start:  # "Bank" alone is not a designated name (extend_left may make it one)
            continue
        last = k
        while last + 1 < len(ents) and ents[last + 1].end <= end:
            last += 1
        pieces = ents[k:last + 1]
        labels = by_word[designator_key(doc[head].text)]
        piece_labels = {p.label_ for p in pieces}
        shared = [label for label in labels if label in piece_labels]
        if shared:
            label = max(shared, key=lambda l: labels[l])
        elif relabel and max(labels.values()) >= strong_share:
            label = max(labels, key=lambda l: labels[l])
        else:
            continue
        if (len(pieces) > 1 and not merge) or (end > pieces[-1].end and not extend):
            continue
        inner = {ends_at[p] for p in range(first.start + 1, end) if p in ends_at and ends_at[p] != head}
        if any(label not in by_word[designator_key(doc[i].text)] for i in inner):
            continue
        return end, label, last
    return None


def _left_start(doc: Doc, start: int, end: int, label: str, owner: List[int], taken: List[bool],
                by_word: Dict[str, Dict[str, float]], *, max_tokens: int) -> int:
    """Where a designated name starts once the capitalised words directly before it are taken."""
    i = start
    while i > 0 and start - i < MAX_LEFT_WORDS and end - (i - 1) <= max_tokens and not breaks_before(doc, i):
        token = doc[i - 1]
        if owner[i - 1] >= 0 or taken[i - 1] or not is_name_word(token) or token.is_stop or is_connector(token):
            break
        labels = by_word.get(designator_key(token.text))
        if labels and label not in labels:  # the end of another kind of name
            break
        i -= 1
    if i < start and sentence_initial(doc, i) and not doc[i].text.isupper():
        i += 1
    return i
