"""Knowledge bases of legal entities: the JSONL format, loading, regex guards, mining and merging.

One JSON object per line::

    {"label": "GOVERNMENT", "text": "Securities and Exchange Commission", "id": "sec",
     "aliases": ["U.S. Securities and Exchange Commission", {"text": "SEC", "case_sensitive": true}],
     "case_sensitive": false}
    {"label": "LEGISLATION/ACT", "pattern": [{"TEXT": {"REGEX": "^\\\\d{0,3}CFR$"}}], "id": "cfr"}

Keys: `label` (required), exactly one of `text` (a phrase, tokenized by the pipeline's
tokenizer) or `pattern` (a spaCy Matcher token pattern), and optional `id`, `aliases`
(phrases, each a string or `{"text", "case_sensitive"}`), `case_sensitive` (phrases only;
missing means the component's default), `group` (entries of an excluded group are skipped
when loading; the starter KB puts citations E-NER leaves untagged in group "citation"),
`precision` (an estimate in [0, 1], written by mining; used by the `trusted` fusion mode and
as the confidence of the entities the entry sets), `meta` (free-form, kept as is), and for
linking (`legal_knowledge` sets `ent.kb_id_` to `id`): `canonical` (the canonical name, e.g. a
statute's citation "15 U.S.C. § 78a et seq.") and `short_forms` (phrases like aliases, but
case-sensitive unless they say otherwise, that are never matched on their own and only link an
entity once the entry's text or an alias occurred earlier in the same Doc: "Commission" after
"Securities and Exchange Commission"). Unknown keys are errors, so typos do not pass silently.
"""
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.schemas import validate_token_pattern
from spacy.tokens import Doc

from ..io.atomic import write_all_atomically
from ..io.jsonl import read_jsonl

try:  # Python >= 3.11
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

KEYS = ("label", "text", "pattern", "id", "aliases", "case_sensitive", "group", "precision", "meta", "canonical", "short_forms")
DEFAULT_EXCLUDED_GROUPS = ("citation",)
MAX_REGEX_LENGTH = 300
# Adjacent unbounded quantifiers backtrack polynomially (n ** k); with tokens capped at
# max_regex_chars, three keep the worst case to milliseconds.
MAX_UNBOUNDED = 3
_REPEATS = {
    getattr(_sre_constants, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre_constants, name)
}
_LEADING_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


class KnowledgeError(ValueError):
    """A bad knowledge base entry. The message starts with its location (file:line)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location


@dataclass
class KnowledgeEntry:
    """One KB entry; `source` (file:line) is where it came from and is not serialized."""

    label: str
    text: Optional[str] = None
    pattern: Optional[List[Dict[str, Any]]] = None
    id: Optional[str] = None
    aliases: List[Dict[str, Any]] = field(default_factory=list)
    case_sensitive: Optional[bool] = None
    group: Optional[str] = None
    precision: Optional[float] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    canonical: Optional[str] = None
    short_forms: List[Dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def phrases(self, *, default_case_sensitive: bool) -> List[Tuple[str, bool]]:
        """The phrases to match, each with its case sensitivity.

        default_case_sensitive (bool): Used where neither the alias nor the entry says.
        RETURNS (List[Tuple[str, bool]]): (phrase, case_sensitive) pairs.
        """
        own = default_case_sensitive if self.case_sensitive is None else self.case_sensitive
        phrases = [(self.text, own)] if self.text is not None else []
        for alias in self.aliases:
            flag = alias.get("case_sensitive")
            phrases.append((alias["text"], own if flag is None else flag))
        return phrases

    def short_form_phrases(self) -> List[Tuple[str, bool]]:
        """The short forms, each with its case sensitivity (true unless the short form says otherwise).

        RETURNS (List[Tuple[str, bool]]): (phrase, case_sensitive) pairs.
        """
        return [(form["text"], form.get("case_sensitive", True)) for form in self.short_forms]

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object of this entry (only the keys that are set)."""
        data: Dict[str, Any] = {"label": self.label}
        for key in KEYS[1:]:
            value = getattr(self, key)
            if value is not None and value != [] and value != {}:
                data[key] = value
        if self.aliases:  # an alias without its own case flag is written as a plain string
            data["aliases"] = [a["text"] if a.get("case_sensitive") is None else dict(a) for a in self.aliases]
        if self.short_forms:
            data["short_forms"] = [f["text"] if f.get("case_sensitive") is None else dict(f) for f in self.short_forms]
        return data


def validate_regex(pattern: str) -> None:
    """Reject a regex that does not compile or could backtrack catastrophically.

    Rejected: nested quantifiers where either is unbounded (`(a+)+`, `(\\d+\\.)*`,
    `(a*){2,9}`), unbounded repetition of an alternation (`(a|ab)*`), backreferences,
    more than MAX_UNBOUNDED unbounded quantifiers, and patterns over MAX_REGEX_LENGTH
    characters. This is deliberately conservative:
    write `[ab]*` instead of `(a|b)*` and bounded repeats such as `(\\.\\d{1,4}){0,3}`.

    pattern (str): The regular expression.
    RAISES (ValueError): With the reason.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"a REGEX value must be a string, not {type(pattern).__name__}")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(f"regex is {len(pattern)} characters long; at most {MAX_REGEX_LENGTH} are allowed")
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error as err:
        raise ValueError(f"regex {pattern!r} does not compile: {err}") from None
    _check_parsed(parsed, pattern)


def _items(parsed: Any) -> Iterable[Tuple[Any, Any]]:
    """Yield (op, argument) pairs of a parsed pattern, recursively through groups and branches."""
    for op, av in parsed:
        yield op, av
        for child in _children(op, av):
            yield from _items(child)


def _children(op: Any, av: Any) -> List[Any]:
    """The sub-patterns directly inside one parsed item."""
    if op in _REPEATS:
        return [av[2]]
    if op is _sre_constants.SUBPATTERN:
        return [av[3]]
    if op is _sre_constants.BRANCH:
        return list(av[1])
    if op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
        return [av[1]]
    if getattr(_sre_constants, "ATOMIC_GROUP", None) is op:
        return [av]
    if op is _sre_constants.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    return []


def _check_parsed(parsed: Any, pattern: str) -> None:
    unbounded_total = 0
    for op, av in _items(parsed):
        if op in (_sre_constants.GROUPREF, _sre_constants.GROUPREF_EXISTS):
            raise ValueError(f"regex {pattern!r} uses a backreference, which can backtrack catastrophically")
        if op not in _REPEATS:
            continue
        unbounded = av[1] == _sre_constants.MAXREPEAT
        unbounded_total += unbounded
        if unbounded_total > MAX_UNBOUNDED:
            raise ValueError(
                f"regex {pattern!r} has more than {MAX_UNBOUNDED} unbounded quantifiers; bound some (e.g. {{1,9}})"
            )
        inner = [(o, a) for o, a in _items(av[2])]
        for inner_op, inner_av in inner:
            if inner_op in _REPEATS and inner_av[1] > 1 and (unbounded or inner_av[1] == _sre_constants.MAXREPEAT):
                raise ValueError(f"regex {pattern!r} nests quantifiers (like (a+)+), which can backtrack catastrophically")
            if unbounded and inner_op is _sre_constants.BRANCH:
                raise ValueError(
                    f"regex {pattern!r} repeats an alternation without bound (like (a|ab)*); use a character class"
                )


def guard_regex(pattern: str, *, max_chars: int) -> str:
    """Validate a regex and cap the text it may see at `max_chars` characters.

    spaCy's Matcher applies REGEX to one token's text with `re.search`. The returned
    pattern does the same search but first checks, with an anchored lookahead, that the
    text is at most `max_chars` long; longer tokens never match. Together with
    `validate_regex` this bounds the time of every regex call.

    pattern (str): The regular expression.
    max_chars (int): The longest token text a regex is applied to.
    RETURNS (str): The guarded pattern.
    """
    validate_regex(pattern)
    flags_match = _LEADING_FLAGS.match(pattern)
    flags = flags_match.group(0) if flags_match else ""
    body = pattern[len(flags):]
    return f"{flags}\\A(?=[\\s\\S]{{0,{int(max_chars)}}}\\Z)[\\s\\S]*?(?:{body})"


def guard_pattern(pattern: Any, *, max_chars: Optional[int]) -> Any:
    """Validate every REGEX value of a token pattern; with `max_chars`, return a guarded copy.

    pattern (Any): A token pattern (or part of one).
    max_chars (Optional[int]): The cap of `guard_regex`; None only validates.
    RETURNS (Any): The (guarded) pattern.
    """
    if isinstance(pattern, list):
        return [guard_pattern(item, max_chars=max_chars) for item in pattern]
    if isinstance(pattern, dict):
        guarded = {}
        for key, value in pattern.items():
            if key == "REGEX":
                validate_regex(value)
                guarded[key] = value if max_chars is None else guard_regex(value, max_chars=max_chars)
            else:
                guarded[key] = guard_pattern(value, max_chars=max_chars)
        return guarded
    return pattern


def _parse_phrases(raw: Any, *, key: str, what: str, location: str) -> List[Dict[str, Any]]:
    """Check a list of phrases (`aliases`, `short_forms`): strings or {"text", "case_sensitive"} objects."""
    if not isinstance(raw, list):
        raise KnowledgeError(location, f"'{key}' must be a list")
    phrases = []
    for phrase in raw:
        phrase = {"text": phrase} if isinstance(phrase, str) else phrase
        if (
            not isinstance(phrase, dict) or set(phrase) - {"text", "case_sensitive"}
            or not isinstance(phrase.get("text"), str) or not phrase["text"].strip()
            or not isinstance(phrase.get("case_sensitive", False), bool)
        ):
            raise KnowledgeError(location, f"bad {what} {phrase!r}: use a string or {{\"text\": ..., \"case_sensitive\": ...}}")
        phrases.append(dict(phrase))
    return phrases


def parse_entry(data: Any, *, location: str) -> KnowledgeEntry:
    """Check one KB object and turn it into an entry.

    data (Any): The decoded JSON value.
    location (str): Where it came from, for errors (file:line).
    RETURNS (KnowledgeEntry): The entry.
    RAISES (KnowledgeError): Naming the location and the problem.
    """
    if not isinstance(data, dict):
        raise KnowledgeError(location, f"an entry is a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise KnowledgeError(location, f"unknown keys {unknown}; expected some of {', '.join(KEYS)}")
    label = data.get("label")
    if not isinstance(label, str) or not label.strip():
        raise KnowledgeError(location, "'label' must be a non-empty string")
    text, pattern = data.get("text"), data.get("pattern")
    if (text is None) == (pattern is None):
        raise KnowledgeError(location, "an entry needs exactly one of 'text' (a phrase) or 'pattern' (token pattern)")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise KnowledgeError(location, "'text' must be a non-empty string")
    if pattern is not None:
        if not isinstance(pattern, list) or not pattern:
            raise KnowledgeError(location, "'pattern' must be a non-empty list of token objects")
        errors = validate_token_pattern(pattern)
        if errors:
            raise KnowledgeError(location, f"invalid token pattern: {'; '.join(str(e) for e in errors)}")
        try:
            guard_pattern(pattern, max_chars=None)
        except ValueError as err:
            raise KnowledgeError(location, str(err)) from None
    for key in ("id", "group"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise KnowledgeError(location, f"'{key}' must be a string")
    canonical = data.get("canonical")
    if canonical is not None and (not isinstance(canonical, str) or not canonical.strip()):
        raise KnowledgeError(location, "'canonical' must be a non-empty string")
    case_sensitive = data.get("case_sensitive")
    if case_sensitive is not None and not isinstance(case_sensitive, bool):
        raise KnowledgeError(location, "'case_sensitive' must be true or false")
    precision = data.get("precision")
    if precision is not None and (isinstance(precision, bool) or not isinstance(precision, (int, float)) or not 0 <= precision <= 1):
        raise KnowledgeError(location, "'precision' must be a number between 0 and 1")
    if not isinstance(data.get("meta", {}), dict):
        raise KnowledgeError(location, "'meta' must be an object")
    aliases = _parse_phrases(data.get("aliases", []), key="aliases", what="alias", location=location)
    short_forms = _parse_phrases(data.get("short_forms", []), key="short_forms", what="short form", location=location)
    if short_forms and not data.get("id"):
        raise KnowledgeError(location, "'short_forms' need an 'id' to link to")
    return KnowledgeEntry(
        label=label, text=text, pattern=pattern, id=data.get("id"), aliases=aliases, case_sensitive=case_sensitive,
        group=data.get("group"), precision=None if precision is None else float(precision),
        meta=dict(data.get("meta", {})), canonical=canonical, short_forms=short_forms, source=location,
    )


def read_kb(path: Path, *, exclude_groups: Sequence[str] = DEFAULT_EXCLUDED_GROUPS) -> List[KnowledgeEntry]:
    """Read a JSONL knowledge base, checking every line.

    Blank lines are skipped. The same phrase with two labels is an error naming both lines.

    path (Path): The JSONL file.
    exclude_groups (Sequence[str]): Entries of these groups are skipped.
    RETURNS (List[KnowledgeEntry]): The entries, in file order.
    RAISES (KnowledgeError): For the first bad line, with file and line number.
    """
    path = Path(path)
    if not path.is_file():
        raise KnowledgeError(str(path), "no such file")
    entries: List[KnowledgeEntry] = []
    seen: Dict[str, KnowledgeEntry] = {}
    # The package's reader decodes with json, not srsly: srsly's ujson reads 0.95 as 0.9500000000000001.
    for _, location, data in read_jsonl(path, error=KnowledgeError):
        entry = parse_entry(data, location=location)
        for phrase, _ in entry.phrases(default_case_sensitive=True):
            other = seen.setdefault(phrase, entry)
            if other.label != entry.label:
                raise KnowledgeError(location, f"{phrase!r} is labelled {entry.label} here but {other.label} at {other.source}")
        if entry.group not in exclude_groups:
            entries.append(entry)
    return entries


def write_kb(entries: Iterable[KnowledgeEntry], path: Path) -> None:
    """Write entries as JSONL, atomically (temporary file, then rename).

    entries (Iterable[KnowledgeEntry]): The entries.
    path (Path): The output file.
    """
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")

    write_all_atomically([(Path(path), write)])


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
    from .component import KnowledgeMatcher  # the matcher lives with the component that uses it

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
