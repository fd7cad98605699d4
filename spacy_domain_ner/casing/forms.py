"""Case forms: how a corpus writes each word, which texts carry no case signal, and truecasing.

A text written all in capitals ("THIS AGREEMENT is made by ACME CORP"), all in lower case, or
with every word capitalized tells a cased model nothing through its capitals, and a model
trained on ordinary text reads such text badly. `case_free_kind` recognises such texts;
`truecase` writes their words the way a corpus usually writes them: each word in its most
frequent form in the middle of a sentence, or the one its neighbours vote for (`mine_case_forms`),
a sentence's first word capitalized, and words the corpus never saw in the form `unknown` says
("auto": a word of up to four letters in capitals, a longer one capitalized, since in E-NER dev an
unseen short word is mostly an acronym - SCBV, FDC - and an unseen word inside an entity mostly
a capitalized name). `recase_entities` then rewrites the words of the entities found in such a
copy as the corpus writes its entities' words: a name made of common words ("Fidelity Advisor
Value Fund") is truecased to lower case, since "advisor" is mostly written so outside names.
"""
import collections
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

# how each kind of re-cased text writes a word (the robustness suite's perturbations, the
# augmenters' training copies and the restorer's kinds are the same three)
CASE_FUNCTIONS: Dict[str, Callable[[str], str]] = {
    "upper": str.upper, "lower": str.lower, "title": lambda w: w[:1].upper() + w[1:].lower()}
CASE_KINDS = tuple(CASE_FUNCTIONS)
UNKNOWN_POLICIES = ("auto", "title", "lower", "keep")
ACRONYM_LETTERS = 4  # "auto": an unknown word of at most this many letters is written in capitals
SENTENCE_END = frozenset({".", "!", "?"})
# {"words": {word: form}, "after": {"prev word": [form, n]}, "before": {"word next": [form, n]},
#  "entities": {word: form}} ("entities" is optional: forms mined before it existed lack it)
CaseForms = Dict[str, Dict[str, Any]]
FORM_PARTS = ("words", "after", "before")


def check_min_share(min_share: float) -> None:
    """Raise ValueError unless 0.5 < min_share <= 1 (see `case_free_kind`)."""
    if not 0.5 < min_share <= 1.0:
        raise ValueError(f"min_share must be above 0.5 and at most 1, not {min_share}")


def check_unknown(unknown: str) -> None:
    """Raise ValueError unless `unknown` is one of UNKNOWN_POLICIES (see `truecase`)."""
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, not {unknown!r}")


def _cased_letters(word: str) -> int:
    return sum(1 for c in word if c.lower() != c.upper())


def word_case(word: str) -> Optional[str]:
    """The case pattern of a word with at least two cased letters.

    word (str): A token text.
    RETURNS (Optional[str]): "upper" (ACME), "lower" (acme), "title" (Acme: first character
        upper, the rest lower) or "mixed" (SunGard, iPhone); None for a word with fewer than two
        cased letters ("a", "10-K", ","), which says nothing about the text's case.
    """
    if _cased_letters(word) < 2:
        return None
    if word.isupper():
        return "upper"
    if word.islower():
        return "lower"
    if word[0].isupper() and word[1:] == word[1:].lower():
        return "title"
    return "mixed"


def case_shares(words: Sequence[str]) -> Dict[str, float]:
    """The share of each case pattern among the words with two or more cased letters.

    words (Sequence[str]): The token texts.
    RETURNS (Dict[str, float]): "upper", "lower" and "title" -> share (all 0.0 without such words).
    """
    counts = collections.Counter(kind for kind in map(word_case, words) if kind is not None)
    total = sum(counts.values())
    return {kind: counts[kind] / total if total else 0.0 for kind in CASE_KINDS}


def case_free_kind(words: Sequence[str], *, min_share: float = 0.99) -> Optional[str]:
    """Whether a text is written without case signal, and how.

    words (Sequence[str]): The token texts.
    min_share (float): Least share of the words with two or more cased letters that must
        follow one pattern.
    RETURNS (Optional[str]): "upper", "lower" or "title" when at least `min_share` of those
        words are written so; None for ordinary text and for text without such words.
    """
    check_min_share(min_share)
    shares = case_shares(words)
    return next((kind for kind in CASE_KINDS if shares[kind] >= min_share), None)


def word_heads(doc: Doc) -> List[str]:
    """The text of the first token with a cased letter in each word written between spaces.

    Which case a text is written in is a property of its words: "Front-end", "Investor's" and
    "(The" are title-case words, though the tokenizer splits off a lower-case "end" or "'s" (and a
    text capitalized word by word keeps them so), and `case_free_kind` over all the tokens would
    miss the text's kind.

    doc (Doc): The Doc.
    RETURNS (List[str]): One token text per word that has a cased letter, in order.
    """
    heads, open_word = [], False
    for token in doc:
        if not open_word and _cased_letters(token.text):
            heads.append(token.text)
            open_word = True
        if token.whitespace_ or token.is_space:
            open_word = False
    return heads


def upper_passages(words: Sequence[str], *, min_words: int) -> List[Tuple[int, int]]:
    """Passages written in capitals inside a text: runs of at least `min_words` consecutive words
    written all upper ("by and between EMS TECHNOLOGIES, INC., a Georgia corporation").

    Words with fewer than two cased letters ("I", ",", "10-K") neither count nor end a run, so a
    passage may hold them; a lone acronym ("SCBV") is not a passage when `min_words` is 2 or more.

    words (Sequence[str]): The token texts.
    min_words (int): Least number of upper-case words in a passage (at least 1).
    RETURNS (List[Tuple[int, int]]): The passages as token ranges [start, end), from the first
        to the last upper-case word of each run, in order.
    """
    if min_words < 1:
        raise ValueError(f"min_words must be at least 1, not {min_words}")
    passages: List[Tuple[int, int]] = []
    start, end, count = None, 0, 0
    for i, word in enumerate(list(words) + ["Ab"]):  # a title-case word at the end closes the last run
        kind = word_case(word)
        if kind == "upper":
            start, count = (i, 0) if start is None else (start, count)
            count, end = count + 1, i + 1
        elif kind is not None:
            if start is not None and count >= min_words:
                passages.append((start, end))
            start = None
    return passages


def sentence_starts(doc: Doc) -> List[bool]:
    """Whether each token starts a sentence: the first token, and a token after ".", "!", "?"
    or after a line break (spaCy's sentence boundaries where the Doc has them).

    doc (Doc): The Doc.
    RETURNS (List[bool]): One flag per token.
    """
    if doc.has_annotation("SENT_START"):
        return [bool(token.is_sent_start) for token in doc]
    starts, boundary = [], True
    for token in doc:
        starts.append(boundary)
        if token.is_space:  # whitespace tokens pass the boundary on ("end.  Next")
            boundary = boundary or "\n" in token.text
        else:
            boundary = token.text in SENTENCE_END
        boundary = boundary or "\n" in token.whitespace_
    return starts


def _neighbours(doc: Doc) -> List[Tuple[Optional[str], Optional[str]]]:
    """The lower-cased previous and next non-space token of each token (None at the edges)."""
    texts = [(i, t.text.lower()) for i, t in enumerate(doc) if not t.is_space]
    found: List[Tuple[Optional[str], Optional[str]]] = [(None, None)] * len(doc)
    for k, (i, _) in enumerate(texts):
        found[i] = (texts[k - 1][1] if k else None, texts[k + 1][1] if k + 1 < len(texts) else None)
    return found


def mine_case_forms(docs: Iterable[Doc], *, min_share: float = 0.99) -> CaseForms:
    """How a corpus writes its words in the middle of a sentence, alone, next to a neighbour and
    inside its entities.

    Docs that carry no case signal themselves (`case_free_kind`) and sentence-initial tokens are
    left out: they do not say how the word is written. A word seen in more than one form
    ("Fidelity Investments", "fidelity bond") also gets its majority form after each previous
    word and before each next word, with the count, so that `truecase` can read the context.
    Ties go to the form seen first.

    docs (Iterable[Doc]): Docs of ordinary text (annotated or not).
    min_share (float): See `case_free_kind`.
    RETURNS (CaseForms): "words": lower-cased word -> its form, for every word with a cased
        letter; "after": "previous word" -> [form, count]; "before": "word next" -> [form, count]
        (keys lower-cased, joined by a space); "entities": lower-cased word -> its majority form
        inside the Docs' entities (empty for Docs without entities; see `recase_entities`).
    """
    words: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    after: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    before: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    entities: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for doc in docs:
        if case_free_kind([t.text for t in doc], min_share=min_share) is not None:
            continue
        inside = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        for token, start, (prev, nxt) in zip(doc, sentence_starts(doc), _neighbours(doc)):
            if not start and _cased_letters(token.text):
                word = token.text.lower()
                words[word][token.text] += 1
                if prev is not None:
                    after[f"{prev} {word}"][token.text] += 1
                if nxt is not None:
                    before[f"{word} {nxt}"][token.text] += 1
                if token.i in inside:
                    entities[word][token.text] += 1
    ambiguous = {word for word, forms in words.items() if len(forms) > 1}

    def majority(counts: Dict[str, collections.Counter], position: int) -> Dict[str, List]:
        return {key: list(forms.most_common(1)[0]) for key, forms in sorted(counts.items())
                if key.split(" ")[position] in ambiguous}

    return {
        "words": {word: forms.most_common(1)[0][0] for word, forms in sorted(words.items())},
        "after": majority(after, 1),
        "before": majority(before, 0),
        "entities": {word: forms.most_common(1)[0][0] for word, forms in sorted(entities.items())},
    }


def check_case_forms(forms: CaseForms) -> None:
    """Raise ValueError unless `forms` has the structure `mine_case_forms` returns.

    forms (CaseForms): The case forms.
    """
    if not isinstance(forms, dict) or not set(FORM_PARTS) <= set(forms) <= {*FORM_PARTS, "entities"}:
        raise ValueError("case forms must be a dict with the keys 'words', 'after' and 'before' (and optionally 'entities')")
    bad = [(k, v) for part in ("words", "entities") for k, v in forms.get(part, {}).items()
           if not isinstance(v, str) or v.lower() != k]
    for part, position in (("after", 1), ("before", 0)):
        for key, value in forms[part].items():
            pair = key.split(" ")
            if (len(pair) != 2 or not isinstance(value, (list, tuple)) or len(value) != 2
                    or not isinstance(value[0], str) or value[0].lower() != pair[position]):
                bad.append((key, value))
    if bad:
        raise ValueError(f"a case form must lower-case to its word: {bad[:3]}")


def _capitalize(word: str) -> str:
    for i, c in enumerate(word):
        if c.lower() != c.upper():
            return word[:i] + c.upper() + word[i + 1:]
    return word


def _unknown_form(word: str, unknown: str) -> str:
    if unknown == "auto":
        letters = sum(1 for c in word if c.isalpha())
        return word.upper() if letters <= ACRONYM_LETTERS else _capitalize(word.lower())
    return {"title": _capitalize(word.lower()), "lower": word.lower(), "keep": word}[unknown]


def truecase(doc: Doc, forms: CaseForms, *, unknown: str = "auto") -> List[str]:
    """The Doc's words as the corpus of `forms` writes them.

    A word with more than one form takes the majority of its contexts' votes (the form after the
    previous word and before the next word, weighted by their counts), else its own majority form.

    doc (Doc): A Doc without case signal (its words' case is ignored).
    forms (CaseForms): The output of `mine_case_forms`.
    unknown (str): A word not in `forms`: "auto" (up to four letters upper case, else capitalized),
        "title" (capitalized), "lower", or "keep" (as it is).
    RETURNS (List[str]): One word per token, each the same length as the token text when the
        form is (a form of another length, e.g. from Unicode case mapping, is not used); a
        sentence's first word capitalized.
    """
    check_unknown(unknown)
    words = []
    for token, start, (prev, nxt) in zip(doc, sentence_starts(doc), _neighbours(doc)):
        text = token.text
        if not _cased_letters(text):
            words.append(text)
            continue
        word = text.lower()
        votes: collections.Counter = collections.Counter()
        for vote in (forms["after"].get(f"{prev} {word}"), forms["before"].get(f"{word} {nxt}")):
            if vote is not None:
                votes[vote[0]] += vote[1]
        form = votes.most_common(1)[0][0] if votes else forms["words"].get(word)
        if form is None or len(form) != len(text):
            form = _unknown_form(text, unknown)
        if start:
            form = _capitalize(form)
        words.append(form if len(form) == len(text) else text)  # "İ".lower() has two characters
    return words


def recase_entities(words: Sequence[str], spans: Iterable[Tuple[int, int]], forms: CaseForms) -> List[str]:
    """Truecased words rewritten, inside the given entity spans, as the corpus writes entities.

    `truecase` writes each word in its usual form, and the usual form of the words of many names
    is lower case ("Fidelity Advisor Value Fund": "advisor" and "value" are mostly common words).
    Inside an entity found in the truecased copy, a word written in lower case takes its form
    inside the corpus's entities ("entities" of the forms: "of" stays "of", "fund" becomes "Fund"),
    and a word never seen inside an entity is capitalized. Words with a capital are kept: an
    acronym or a mixed-case form the corpus knows is better than a guess.

    words (Sequence[str]): The truecased words, one per token.
    spans (Iterable[Tuple[int, int]]): Token ranges [start, end) of the entities.
    forms (CaseForms): The output of `mine_case_forms` ("entities" may be missing: every word
        in lower case inside an entity is then capitalized).
    RETURNS (List[str]): The words, each the same length as before.
    """
    out = list(words)
    entity_forms = forms.get("entities", {})
    for start, end in spans:
        for i in range(start, end):
            word = out[i]
            if _cased_letters(word) and word == word.lower():
                form = entity_forms.get(word, _capitalize(word))
                out[i] = form if len(form) == len(word) else word
    return out
