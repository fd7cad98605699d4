"""Guards for the REGEX token patterns of a KB: validated when loaded (length, nesting of unbounded
quantifiers) and bounded at match time (`guard_regex`), so a KB cannot make matching backtrack for
long.
"""
import re
from typing import Any, Iterable, List, Optional, Tuple

try:  # Python >= 3.11
    from re import _constants as _sre_constants
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]


MAX_REGEX_LENGTH = 300


# Adjacent unbounded quantifiers backtrack polynomially (n ** k); with tokens capped at
# max_regex_chars, three keep the worst case to milliseconds.
MAX_UNBOUNDED = 3
_REPEATS = {
    getattr(_sre_constants, name) for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(_sre_constants, name)
}


_LEADING_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")


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
