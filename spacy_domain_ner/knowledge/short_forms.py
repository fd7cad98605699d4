"""Short forms a filing defines for an entity: `Silicon Valley Bank ("SVB")`, `Acme Inc. (NASDAQ: ACME)`.

A filing writes a long name once, defines its short form in parentheses right after it, and then
uses the short form. `find_short_forms` reads those definitions after the Doc's entities; the
`entity_consistency` component (`consistency.py`) labels the short form's mentions like the entity.

What counts as a definition: an entity followed by parentheses, directly or after a comma, a
corporate suffix the entity left out (`Acme Holdings` + `, Inc.`) or an appositive ending in a
kind of organisation (`, a Delaware limited liability company`), holding either

- defined terms in straight or curly double quotes, optionally introduced ("the", "collectively,",
  "together with its subsidiaries,", "hereinafter referred to as", ...) and joined by "or", "and"
  or commas: `(the "Fund")`, `("Acme" or the "Company")`, `(collectively, the "Sellers")`. Single
  quotes are not read: the closing one is also the apostrophe. A term counts when it looks like a
  name: its first character a capital letter (or a digit, with a capital later: "3M"), at most
  eight words, not a pronoun ("We", "Us", "Our"), and drawn from the entity (`derives_from`: its
  words are the name's, or it abbreviates the name, as "SVB"), since a definition after an entity
  may define something else the sentence speaks of (`a certificate signed by Borrower (the
  "Perfection Certificate")`). A term made only of role words (`GENERIC_WORDS`:
  "Company", "Fund", "Borrower", "Credit Agreement", "Administrative Agent") is generic: it names
  the entity by its role, and annotation guidelines often leave "the Company" unannotated, so
  generic terms count only when asked (`generic=True`). A term introduced by "collectively",
  "each", "jointly", "individually" or "respectively" names a group or each of several entities
  by a role, so it is generic too, and keeps the entity's label but not its kb id.
- tickers, `(NASDAQ: ACME)`, `(NYSE American: XYZ; TSX: XY)`, `(ticker: ACME)`, `(OTCQB: ACME)`:
  one to five capital letters, and at least `min_chars` of them, because one-letter tickers ("A",
  "T") are words too. A ticker that the Doc also writes in lower case ("ALL" and "all") is a word
  as well: only its mention in the parentheses is labelled.

Parentheses may follow one another: `Acme Inc. (NASDAQ: ACME) (the "Company")`.
"""
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc, Span

_OPEN, _CLOSE, _INSIDE = "[\"“]", "[\"”]", "[^\"“”()]"
_INTRO = (r"(?:collectively|together(?:\s+with\s+(?:its|their)\s+(?:consolidated\s+)?subsidiaries)?|jointly|individually"
          r"|each|respectively|herein(?:after)?(?:\s+(?:referred\s+to\s+as|called))?|referred\s+to\s+(?:herein\s+)?as"
          r"|also\s+known\s+as)")
_TERM = rf"(?:(?:the|a|an)\s+)?{_OPEN}{_INSIDE}{{1,100}}{_CLOSE}"
_LINK = rf"\s*[,;]?\s*(?:(?:and/or|or|and)\s+)?(?:{_INTRO}\s*,?\s*)?"
_DEFINITION = re.compile(rf"\s*(?:{_INTRO}\s*,?\s*)?{_TERM}(?:{_LINK}{_TERM})*\s*", re.IGNORECASE)
_QUOTED = re.compile(rf"{_OPEN}({_INSIDE}{{1,100}}){_CLOSE}")
_GROUP = re.compile(r"\b(?:collectively|each|jointly|individually|respectively)\b", re.IGNORECASE)
# Exchange names as filings write them (case matters: "NYSE", "Nasdaq"); "ticker"/"symbol" in any case.
_EXCHANGE = (r"(?:NASDAQ|Nasdaq(?:GS|GM|CM)?|NYSE(?:\s+(?:American|MKT|Arca))?|AMEX|OTC(?:QB|QX|BB)?(?:\s+(?:Pink|Markets))?"
             r"|TSX(?:-?V)?|CBOE|(?i:ticker(?:\s+symbol)?|trading\s+symbol|symbol))")
_SYMBOL = r"[A-Z]{1,5}(?![A-Za-z])"
_TICKERS = re.compile(rf"\s*{_EXCHANGE}\s*:\s*{_SYMBOL}(?:\s*[,;]\s*{_EXCHANGE}\s*:\s*{_SYMBOL})*\s*")
_TICKER = re.compile(rf"{_EXCHANGE}\s*:\s*({_SYMBOL})")
_SUFFIX = r"(?:,?\s*(?:Inc|Corp|Co|Ltd|LLC|L\.L\.C|LP|L\.P|LLP|N\.A|plc|PLC|S\.A|AG|SE|N\.V|B\.V|GmbH)\.?)"
_APPOSITIVE = (r"(?:,\s*an?\s+(?:[^\W\d_][\w.&'’-]*\s+){0,6}?"
               r"(?:corporation|company|partnership|bank|association|trust|fund|entity)\b)")
_LEAD = re.compile(rf"{_SUFFIX}?{_APPOSITIVE}?\s*,?\s*(?=\()")
_NEXT = re.compile(r"\s*,?\s*(?=\()")
_PARENS = re.compile(r"\(([^()]{1,300})\)")

PRONOUNS = frozenset("i we us our ours you your it its they them their he him his she her".split())
# Words that name a party by its role (or an agreement by its kind), singular: a term made only of
# them is generic. Plurals are read as their singular ("Lenders", "Parties"). Not "security" or
# "exchange": "Securities Act" and "Exchange Act" are the short names of laws.
GENERIC_WORDS = frozenset("""
    company corporation corp bank fund portfolio series trust partnership partner registrant issuer
    borrower lender guarantor agent trustee parent purchaser buyer seller vendor acquiror acquirer sub
    subsidiary affiliate adviser advisor subadviser manager administrator custodian
    distributor underwriter sponsor depositor servicer originator obligor grantor beneficiary holder
    stockholder shareholder member investor owner employer employee executive officer director
    consultant contractor landlord tenant lessor lessee licensor licensee supplier customer client
    counterparty party representative successor predecessor plan agreement act code rule regulation
    government state court agency commission board committee entity group business firm holdings
    administrative collateral general limited managing surviving acquiring acquisition merger operating
    master feeder new existing initial original senior junior lead co joint principal investment paying
    transfer escrow placement selling holding credit loan purchase stock asset underwriting registration
    rights indenture pooling servicing management advisory custody distribution employment license lease
    guaranty guarantee note pledge separation consulting service supply offering transaction
    closing effective date time period amendment amended restated and of the our this
""".split())


class ShortForm(NamedTuple):
    """A short form defined for an entity, and where the definition writes it."""

    key: Tuple[str, ...]  # its token texts
    start: int  # its tokens in the definition
    end: int
    label: str
    kb_id: str
    confidence: Optional[float]
    kind: str  # "name", "generic" or "ticker"
    spread: bool  # False: only the mention in the definition is labelled


def _word_of(word: str) -> str:
    word = word.strip(".,;:'’\"").lower()
    for plural, singular in (("ies", "y"), ("s", "")):
        if word.endswith(plural) and word[:-len(plural)] + singular in GENERIC_WORDS:
            return word[:-len(plural)] + singular
    return word


def is_generic(term: str) -> bool:
    """Whether a defined term is made only of role words ("the Company", "Credit Agreement").

    term (str): The defined term, without quotes.
    RETURNS (bool): True when every word is one of `GENERIC_WORDS` (plurals as their singular).
    """
    words = [w for w in re.split(r"[\s\-/]+", term) if w]
    return bool(words) and all(_word_of(w) in GENERIC_WORDS for w in words)


def is_name_like(term: str) -> bool:
    """Whether a defined term is written like a name: "SVB", "Acme", "3M", not "we" or "the fund".

    term (str): The defined term, without quotes.
    RETURNS (bool): True for a capital first letter (or a digit with a capital later), at most eight
        words, not a pronoun.
    """
    if not term or term.lower() in PRONOUNS or len(term.split()) > 8:
        return False
    return term[0].isupper() or (term[0].isdigit() and any(c.isupper() for c in term))


_FILLER = frozenset("the a an and & of for".split())


def _name_words(text: str) -> List[str]:
    return [w for w in (w.strip(".,;:'’\"()").lower() for w in re.split(r"[\s\-/]+", text)) if w and w not in _FILLER]


def is_abbreviation(short: str, long: str) -> bool:
    """Whether `short` abbreviates `long` (Schwartz & Hearst, 2003): its letters and digits occur in
    `long` in order, the first of them at the start of one of `long`'s words ("SVB" of "Silicon Valley
    Bank", "JPMCB" of "JPMorgan Chase Bank").

    short (str): The short form.
    long (str): The long form.
    RETURNS (bool): Whether it abbreviates it.
    """
    s, pos = len(short) - 1, len(long) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while pos >= 0 and (long[pos].lower() != char or (s == 0 and pos > 0 and long[pos - 1].isalnum())):
            pos -= 1
        if pos < 0:
            return False
        pos -= 1
        s -= 1
    return any(c.isalnum() for c in short)


def derives_from(term: str, name: str) -> bool:
    """Whether a defined term is drawn from the entity it follows: its first word is a word of the
    name ("Acme Group" of "Acme Holdings, Inc.", "Fidelity NY Fund"), begins with the name's first
    word ("AcmeCo"), or is written in capitals and abbreviates the name ("SVB" of "Silicon Valley
    Bank"). A term that is none of these names something else the sentence speaks of: `a
    certificate signed by Borrower (the "Perfection Certificate")`.

    term (str): The defined term, without quotes.
    name (str): The entity's text.
    RETURNS (bool): Whether the term derives from the name.
    """
    words, name_words = _name_words(term), _name_words(name)
    if not words or not name_words:
        return False
    first = words[0]
    if first in name_words or first.startswith(name_words[0]):
        return True
    raw = term.split()[0] if term.split()[0].lower() not in _FILLER else term.split()[1]
    return raw.isupper() and is_abbreviation(raw, name)


def short_forms_after(doc: Doc, ent: Span, confidence: Optional[float], *, min_chars: int = 2, generic: bool = False,
                      names: bool = True, tickers: bool = True, text: Optional[str] = None,
                      lower_words: Optional[Set[str]] = None) -> List[ShortForm]:
    """The short forms defined in the parentheses that follow an entity.

    doc (Doc): The Doc.
    ent (Span): One of its entities.
    confidence (Optional[float]): The entity's confidence, which its short forms take.
    min_chars (int): Shortest short form.
    generic (bool): Also role words ("the Company").
    names (bool): Read quoted defined terms.
    tickers (bool): Read tickers.
    text (Optional[str]): `doc.text`, which spaCy joins anew at each read: pass it for many entities.
    lower_words (Optional[Set[str]]): The Doc's lower-case token texts (a ticker among them is a
        word); default: read from the Doc.
    RETURNS (List[ShortForm]): In text order.
    """
    text = doc.text if text is None else text
    found = []
    lead = _LEAD.match(text, ent.end_char)
    pos = lead.end() if lead else None
    while pos is not None:
        parens = _PARENS.match(text, pos)
        if parens is None:
            break
        inside, offset = parens.group(1), parens.start(1)
        definition, listing = _DEFINITION.fullmatch(inside), _TICKERS.fullmatch(inside)
        if not (definition or listing):
            break
        if names and definition:
            group = bool(_GROUP.search(inside))
            kb_id = "" if group else ent.kb_id_
            for quoted in _QUOTED.finditer(inside):
                term = quoted.group(1).strip().rstrip(",;:")
                if len(term) < min_chars or not is_name_like(term):
                    continue
                # a term for several entities ("collectively, the Founders") names them by a role
                kind = "generic" if group or is_generic(term) else "name"
                if kind == "name" and not derives_from(term, ent.text):
                    continue
                start = offset + quoted.start(1) + quoted.group(1).index(term)
                span = doc.char_span(start, start + len(term))  # None off token boundaries
                if span is not None and (generic or kind == "name"):
                    found.append(ShortForm(tuple(t.text for t in span), span.start, span.end, ent.label_, kb_id,
                                           confidence, kind, True))
        elif tickers and listing:
            if lower_words is None:
                lower_words = {t.text for t in doc if t.text.islower()}
            for ticker in _TICKER.finditer(inside):
                span = doc.char_span(offset + ticker.start(1), offset + ticker.end(1))
                if span is not None and len(ticker.group(1)) >= min_chars:
                    found.append(ShortForm((ticker.group(1),), span.start, span.end, ent.label_, ent.kb_id_, confidence,
                                           "ticker", ticker.group(1).lower() not in lower_words))
        following = _NEXT.match(text, parens.end())
        pos = following.end() if following else None
    return found


def find_short_forms(doc: Doc, entities: Sequence[Tuple[Span, Optional[float]]], *, min_chars: int = 2,
                     generic: bool = False, names: bool = True, tickers: bool = True) -> Dict[Tuple[str, ...], List[ShortForm]]:
    """The short forms the Doc defines for its entities, by token texts.

    doc (Doc): The Doc.
    entities (Sequence[Tuple[Span, Optional[float]]]): Its entities with their confidences.
    min_chars (int): Shortest short form.
    generic (bool): Also role words ("the Company").
    names (bool): Read quoted defined terms.
    tickers (bool): Read tickers.
    RETURNS (Dict[Tuple[str, ...], List[ShortForm]]): Each short form's definitions in text order.
    """
    if not (names or tickers):
        return {}
    text, lower_words = doc.text, {t.text for t in doc if t.text.islower()}
    forms: Dict[Tuple[str, ...], List[ShortForm]] = {}
    for ent, confidence in sorted(entities, key=lambda pair: pair[0].start):
        for form in short_forms_after(doc, ent, confidence, min_chars=min_chars, generic=generic, names=names,
                                      tickers=tickers, text=text, lower_words=lower_words):
            forms.setdefault(form.key, []).append(form)
    return forms
