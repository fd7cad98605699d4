"""Knowledge bases of legal entities: the JSONL format, its entries, loading and writing.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.schemas import validate_token_pattern

from ..io.atomic import write_all_atomically
from ..io.errors import LocatedError
from ..io.jsonl import read_jsonl
from .regex_guard import guard_pattern

KEYS = ("label", "text", "pattern", "id", "aliases", "case_sensitive", "group", "precision", "meta", "canonical", "short_forms")
DEFAULT_EXCLUDED_GROUPS = ("citation",)


class KnowledgeError(LocatedError):
    """A bad knowledge base entry. The message starts with its location (file:line)."""


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


