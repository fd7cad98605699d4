"""Natural spacing for token-per-line corpora.

E-NER CSV and CoNLL files give tokens, not text. Built with a space after every token,
a Doc reads `Acme Inc. , filed ( the " Company " )`, which no application ever feeds a
pipeline. `natural_spaces` decides, token by token, whether a space follows, so that the
Doc's text reads as written: `Acme Inc., filed (the "Company")`.

The rules, applied to the boundary between a token and the next one in a sentence:
1. no space before closing punctuation `, . ; : ! ? % ) ] } …` (tokens made only of these
   characters and quotes, so "." and ")." and FIN5's `"),` but not ".com");
2. no space before an English clitic (`'s`, `n't`, `'re`, `'ve`, `'ll`, `'d`, `'m`, with
   straight or curly apostrophes) or a closing curly quote;
3. no space after opening brackets, currency signs and opening curly quotes (`( [ { $ € £ ¥`,
   `“`, `‘`, a PTB `` `` ``, and runs of brackets and quotes such as FIN5's `("`);
4. straight double quotes alternate within a sentence: an odd one opens (no space after it),
   an even one closes (no space before it). An unmatched last quote is left spaced;
5. hyphens and slashes keep their spaces (E-NER and CoNLL keep hyphenated words whole, so a
   lone "-" or "/" token stood between spaced words in the source);
6. a "." after a token that already ends with one keeps its space (`Inc. .`): written text
   would drop the second period, which would lose a token of the gold annotation, and a glued
   `Inc..` is tokenized differently from both;
7. a lone apostrophe token glues to the clitic that follows it (`registrant ’ s` ->
   `registrant’s`);
8. the last token of a sentence is followed by a space (sentences are joined by one space).

A rule never removes the space between two word tokens, so tokenization of the natural
text by spaCy splits it back into (mostly) the same tokens; where it does not, spaCy's
Corpus aligns the gold tokens with the pipeline's, as at inference time.
"""
import re
from typing import List, Sequence

_CLITIC = re.compile(r"^(?:['’](?:s|S|re|RE|ve|VE|ll|LL|d|D|m|M)|n['’]t|N['’]T)$")
_STRAIGHT_QUOTE = '"'
_APOSTROPHES = {"'", "’"}
_CLITIC_TAILS = {"s", "S", "t", "T", "re", "ve", "ll", "d", "m"}
# Closing tokens are made of these characters and hold at least one of _CLOSERS: ",", ")."
# and the composite `"),` of some corpora (FIN5), but not a lone quote or apostrophe.
_CLOSERS = set(",.;:!?%)]}”’…")
_CLOSING_CHARS = _CLOSERS | {'"', "'"}
# Opening tokens: a bracket, currency sign or opening quote, or a run of them such as `("`.
_OPENING = {"(", "[", "{", "$", "€", "£", "¥", "“", "‘", "``"}
_OPENING_CHARS = set("([{“‘\"")


def _is_closing(word: str) -> bool:
    return all(c in _CLOSING_CHARS for c in word) and any(c in _CLOSERS for c in word)


def _is_opening(word: str) -> bool:
    return word in _OPENING or (len(word) > 1 and all(c in _OPENING_CHARS for c in word))


def natural_spaces(words: Sequence[str]) -> List[bool]:
    """Whether each token of one sentence is followed by a space in natural text.

    words (Sequence[str]): The tokens of one sentence, in order.
    RETURNS (List[bool]): One flag per token; the last one is always True.
    """
    n = len(words)
    spaces = [True] * n
    quote_open = False
    for i, word in enumerate(words):
        if word == _STRAIGHT_QUOTE:
            if not quote_open and i + 1 < n:
                spaces[i] = False  # opening quote: glued to what follows
                quote_open = True
            elif quote_open and i > 0:
                spaces[i - 1] = False  # closing quote: glued to what precedes
                quote_open = False
            continue
        if i > 0 and (_is_closing(word) or _CLITIC.match(word)):
            if not (word == "." and words[i - 1].endswith(".")):
                spaces[i - 1] = False
            if _STRAIGHT_QUOTE in word:  # a composite closing token such as `"),`
                quote_open = False
        if _is_opening(word) and i + 1 < n:
            spaces[i] = False
            if _STRAIGHT_QUOTE in word:  # `("`
                quote_open = True
        if word in _APOSTROPHES and i + 1 < n and words[i + 1] in _CLITIC_TAILS:
            spaces[i] = False
    if n:
        spaces[-1] = True
    return spaces


def count_changed(spaces: Sequence[bool]) -> int:
    """How many tokens lost the space that a token-per-space text would give them.

    spaces (Sequence[bool]): The natural spacing flags.
    RETURNS (int): The number of False flags.
    """
    return sum(1 for flag in spaces if not flag)
