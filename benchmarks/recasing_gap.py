"""What the re-casing gap of a packaged pipeline is made of (docs/lab/case.md).

A text written all upper or lower case is annotated through a truecased copy (`case_restorer`).
This script separates the causes of the F1 it loses, on the gold tokens (so that tokenization,
the other cause, drops out; the suite's score for the same kind minus the `truecase` row is it):

- `truecase`: the copy as the restorer writes it;
- `gold_entities`: the copy with the gold case on the tokens of gold entities (perfect truecasing of names);
- `gold_other`: the copy with the gold case on every other token;
- `union`: the copy's entities plus those found in the re-cased text itself where they overlap none;
- `clean`: the text as written.

It also counts the tokens the truecaser writes otherwise than the gold text, inside and outside
entities, for words the case forms know and words they do not.

    python benchmarks/recasing_gap.py PIPELINE CASE_FORMS.json DEV.spacy [--kind lower]
"""
import argparse
import collections
import json
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import spacy
import srsly
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from spacy_domain_ner.casing.forms import CASE_FUNCTIONS, CaseForms, truecase

MODES = ("truecase", "gold_entities", "gold_other", "union", "clean")


def _inside(doc: Doc) -> set:
    return {i for ent in doc.ents for i in range(ent.start, ent.end)}


def _respelled(doc: Doc, words: Sequence[str]) -> Doc:
    return Doc(doc.vocab, words=list(words), spaces=[bool(t.whitespace_) for t in doc])


def truecasing_errors(gold: Sequence[Doc], forms: CaseForms) -> Dict[str, List[int]]:
    """Tokens with a cased letter that `truecase` writes otherwise than the gold text.

    RETURNS (Dict[str, List[int]]): "entity/known", "entity/unknown", "other/known",
        "other/unknown" -> [errors, tokens].
    """
    counts: Dict[str, List[int]] = collections.defaultdict(lambda: [0, 0])
    for doc, copy in zip(gold, copies(gold, forms, kind="lower", mode="truecase")):
        inside = _inside(doc)
        for token, word in zip(doc, (t.text for t in copy)):
            if token.text.lower() == token.text.upper():
                continue
            key = f"{'entity' if token.i in inside else 'other'}/{'known' if token.lower_ in forms['words'] else 'unknown'}"
            counts[key][0] += word != token.text
            counts[key][1] += 1
    return dict(sorted(counts.items()))


def copies(gold: Sequence[Doc], forms: CaseForms, *, kind: str, mode: str) -> List[Doc]:
    """The texts the NER reads in one mode of `MODES` other than "union" (see the module docstring)."""
    case = CASE_FUNCTIONS[kind]
    out = []
    for doc in gold:
        inside = _inside(doc)
        words = truecase(_respelled(doc, [case(t.text) for t in doc]), forms)
        keep = {"truecase": set(), "gold_entities": inside, "clean": set(range(len(doc))),
                "gold_other": set(range(len(doc))) - inside}[mode]
        out.append(_respelled(doc, [t.text if t.i in keep else w for t, w in zip(doc, words)]))
    return out


def union(copied: Sequence[Doc], as_written: Iterable[Doc]) -> List[Doc]:
    """The copies' entities plus those of the re-cased text itself that overlap none (on new Docs)."""
    merged = []
    for doc, other in zip(copied, as_written):
        doc = doc.copy()
        taken = _inside(doc)
        extra = [Span(doc, e.start, e.end, e.label_) for e in other.ents if not taken.intersection(range(e.start, e.end))]
        doc.ents = sorted(list(doc.ents) + extra, key=lambda span: span.start)
        merged.append(doc)
    return merged


def score(nlp: Language, gold: Sequence[Doc], forms: CaseForms, *, kind: str = "lower") -> Dict[str, float]:
    """Entity F1 (in %) of each mode of `MODES` on the gold Docs."""
    predicted = {mode: list(nlp.pipe(copies(gold, forms, kind=kind, mode=mode))) for mode in MODES if mode != "union"}
    recased = [_respelled(d, [CASE_FUNCTIONS[kind](t.text) for t in d]) for d in gold]
    predicted["union"] = union(predicted["truecase"], nlp.pipe(recased))
    return {mode: round(100 * Scorer.score_spans([Example(p, g) for p, g in zip(predicted[mode], gold)], "ents")["ents_f"], 2)
            for mode in MODES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("forms", type=Path, help="case forms JSON (mine-case-forms)")
    parser.add_argument("dev", type=Path, help="gold DocBin")
    parser.add_argument("--kind", default="lower", choices=sorted(CASE_FUNCTIONS))
    args = parser.parse_args()
    nlp = spacy.load(args.pipeline, exclude=["case_restorer"])  # the copies are made here, not by the restorer
    forms = srsly.read_json(args.forms)
    gold = list(DocBin().from_disk(args.dev).get_docs(nlp.vocab))
    print(json.dumps({"truecasing_errors": truecasing_errors(gold, forms),
                      "f1": score(nlp, gold, forms, kind=args.kind)}, indent=1))


if __name__ == "__main__":
    main()
