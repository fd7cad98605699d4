"""Linking precision and recall of the `legal_knowledge` linker on a hand-checked sample of gold entities.

The sample (benchmarks/linking_sample.jsonl) has one gold entity mention a line: its document
(index in the converted DocBin), token span, label, text and the KB id judged correct ("none":
the referent is not in the KB). Every gold entity of each document (all labels) is set as
`doc.ents` and only the linking step runs (`LegalKnowledge.link`), so the result measures the
linker, not the NER or the KB's matching. Precision = correct ids / mentions given an id; recall =
correct ids / mentions whose judged id is not "none".

    python -m spacy_domain_ner convert ../shared/data/e-ner/dev.csv -o ../scratch/dev.spacy --label-map configs/labels/ener.json
    python benchmarks/linking_eval.py ../scratch/dev.spacy --sample benchmarks/linking_sample.jsonl --kb assets/knowledge/legal_kb.jsonl
"""
import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Sequence

import spacy
from spacy.tokens import DocBin

from spacy_domain_ner.io.jsonl import read_jsonl
from spacy_domain_ner.knowledge.kb import read_kb

ROOT = Path(__file__).resolve().parent.parent


def evaluate(docs_path: Path, sample_path: Path, kb_path: Path) -> Dict[str, Any]:
    """Link the gold entities of the sampled documents and score the sample's mentions.

    RETURNS (Dict[str, Any]): precision, recall, counts, per label, and every wrong or missed mention.
    """
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("legal_knowledge")
    linker.add_entries(read_kb(kb_path))
    docs = list(DocBin().from_disk(docs_path).get_docs(nlp.vocab))
    sample: List[Dict[str, Any]] = [data for _, _, data in read_jsonl(sample_path)]
    by_doc = defaultdict(list)
    for mention in sample:
        by_doc[mention["doc"]].append(mention)
    predicted: Dict[tuple, str] = {}
    for index, mentions in by_doc.items():
        doc = linker.link(docs[index])  # the gold entities are doc.ents
        ids = {(ent.start, ent.end): ent.kb_id_ for ent in doc.ents}
        for m in mentions:
            text = doc[m["start"] : m["end"]].text
            if text != m["text"] or (m["start"], m["end"]) not in ids:
                raise ValueError(f"sample mention {m} is not a gold entity of document {index} (found {text!r})")
            predicted[(index, m["start"], m["end"])] = ids[(m["start"], m["end"])]
    counts, per_label, errors = Counter(), defaultdict(Counter), []
    for m in sample:
        pred, gold = predicted[(m["doc"], m["start"], m["end"])] or "none", m["gold"]
        for key, hit in (("predicted", pred != "none"), ("gold", gold != "none"), ("correct", pred != "none" and pred == gold)):
            counts[key] += hit
            per_label[m["label"]][key] += hit
        if pred != gold:
            errors.append({"text": m["text"], "label": m["label"], "gold": gold, "predicted": pred})

    def prf(c: Counter) -> Dict[str, Any]:
        p = c["correct"] / c["predicted"] if c["predicted"] else None
        r = c["correct"] / c["gold"] if c["gold"] else None
        return {"precision": round(p, 4) if p is not None else None, "recall": round(r, 4) if r is not None else None, **c}

    return {
        "mentions": len(sample), "documents": len(by_doc), **prf(counts),
        "per_label": {label: prf(c) for label, c in sorted(per_label.items())},
        "errors": sorted(errors, key=lambda e: (e["gold"], e["text"])),
    }


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", type=Path, help="The converted E-NER dev DocBin")
    parser.add_argument("--sample", type=Path, default=ROOT / "benchmarks" / "linking_sample.jsonl")
    parser.add_argument("--kb", type=Path, default=ROOT / "assets" / "knowledge" / "legal_kb.jsonl")
    parser.add_argument("--output", type=Path, default=None, help="Write the result as JSON here")
    args = parser.parse_args(list(argv) or None)
    result = evaluate(args.docs, args.sample, args.kb)
    print(
        f"{result['mentions']} mentions in {result['documents']} documents: precision {result['precision']} "
        f"({result['correct']}/{result['predicted']}), recall {result['recall']} ({result['correct']}/{result['gold']})"
    )
    for label, row in result["per_label"].items():
        print(f"  {label}: precision {row['precision']}, recall {row['recall']} ({row['correct']}/{row['predicted']}/{row['gold']})")
    for error in result["errors"]:
        print(f"  {error['text']!r} ({error['label']}): gold {error['gold']}, linked {error['predicted']}")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf8")


if __name__ == "__main__":
    main(sys.argv[1:])
