"""Precision of a pipeline's entities above confidence thresholds on a gold DocBin (issue 16, item 2).
usage: python benchmarks/confidence_precision.py MODEL [DEV.spacy]"""
import sys, spacy, json
from spacy.tokens import DocBin
nlp = spacy.load(sys.argv[1])
print(nlp.pipe_names)
gold = list(DocBin().from_disk(sys.argv[2] if len(sys.argv) > 2 else "corpus/ener/dev.spacy").get_docs(nlp.vocab))
preds = list(nlp.pipe([g.text for g in gold], batch_size=32))
rows = []
for p, g in zip(preds, gold):
    G = {(e.start_char, e.end_char, e.label_) for e in g.ents}
    for e in p.ents:
        rows.append((e._.confidence, (e.start_char, e.end_char, e.label_) in G))
scored = [r for r in rows if r[0] is not None]
print("entities", len(rows), "scored", len(scored))
for t in (0.0, 0.5, 0.6, 0.7, 0.8, 0.9):
    kept = [ok for c, ok in scored if c >= t]
    print(t, "kept", len(kept), "precision", round(sum(kept) / max(len(kept), 1), 3))
