"""Small checks behind the case, corpus, knowledge and error entries of docs/lab/.

usage:
  python benchmarks/lab_checks.py alignment DEV.spacy              # gold entities no token span of the tokenizer matches
  python benchmarks/lab_checks.py consistency MODEL DEV.spacy      # F1 before/after the entity_consistency component
  python benchmarks/lab_checks.py errors MODEL DEV.spacy LABEL     # most frequent missed and spurious entities of a label
  python benchmarks/lab_checks.py nocase-config OUT.cfg            # configs/ner_hybrid.cfg without the case features
  python benchmarks/lab_checks.py truecasing TRAIN.spacy DEV.spacy [RAW.jsonl N]  # truecasing accuracy on re-cased dev
  python benchmarks/lab_checks.py passages DEV.spacy [TRAIN.spacy ...]  # runs of words in capitals and the entities in them
  python benchmarks/lab_checks.py uncased-head-config MODEL OUT.cfg  # a NER head on MODEL's frozen encoder alone
  python benchmarks/lab_checks.py truecaser-data TRAIN.spacy DEV.spacy MODEL OUTDIR  # trained truecasers: data + configs
  python benchmarks/lab_checks.py truecaser-score TAGGER TRAIN.spacy DEV.spacy  # their accuracy against the case forms
"""
import collections
import sys
from pathlib import Path
from typing import List

import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_domain_ner.casing.forms import _capitalize, case_free_kind, case_shares, mine_case_forms, truecase, upper_passages
from spacy_domain_ner.evaluation.robustness import perturb_docs
from spacy_domain_ner.models.tokenizer import add_legal_suffixes


def gold_docs(path: str, nlp) -> List[Doc]:
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


def alignment(dev: str) -> None:
    for name, nlp in (("spaCy English", spacy.blank("en")), ("+ legal rule", add_legal_suffixes(spacy.blank("en")))):
        docs = gold_docs(dev, nlp)
        bad = sum(nlp.make_doc(d.text).char_span(e.start_char, e.end_char) is None for d in docs for e in d.ents)
        print(f"{name}: {bad} of {sum(len(d.ents) for d in docs)} gold entities match no token span")


def consistency(model: str, dev: str) -> None:
    """Dev F1 (and per label) of the pipeline as it is and with the entity_consistency component last."""
    nlp = spacy.load(model)
    gold = gold_docs(dev, nlp)
    preds = list(nlp.pipe([g.text for g in gold], batch_size=32))
    consistency = nlp.add_pipe("entity_consistency", last=True) if "entity_consistency" not in nlp.pipe_names else nlp.get_pipe("entity_consistency")
    propagated = [consistency(Doc(nlp.vocab).from_bytes(p.to_bytes())) for p in preds]
    for name, docs in (("as predicted", preds), ("+ entity_consistency", propagated)):
        scores = Scorer.score_spans([Example(p, g) for p, g in zip(docs, gold)], "ents")
        per_label = " ".join(f"{k} {v['f']:.3f}" for k, v in sorted(scores["ents_per_type"].items()))
        print(f"{name}: P {scores['ents_p']:.4f} R {scores['ents_r']:.4f} F {scores['ents_f']:.4f} | {per_label}")


def errors(model: str, dev: str, label: str) -> None:
    nlp = spacy.load(model)
    gold = gold_docs(dev, nlp)
    missed, spurious = collections.Counter(), collections.Counter()
    for pred, ref in zip(nlp.pipe([g.text for g in gold], batch_size=32), gold):
        predicted = {(e.start_char, e.end_char): e.label_ for e in pred.ents}
        truth = {(e.start_char, e.end_char): e.label_ for e in ref.ents}
        missed.update(ref.text[s:e] for (s, e), lab in truth.items() if lab == label and predicted.get((s, e)) != lab)
        spurious.update(pred.text[s:e] for (s, e), lab in predicted.items() if lab == label and truth.get((s, e)) != lab)
    for name, counter in (("missed", missed), ("spurious", spurious)):
        print(f"{name}: {sum(counter.values())}")
        for text, count in counter.most_common(20):
            print(f"  {count} {text!r}")


def nocase_config(output: str) -> None:
    config = Path("configs/ner_hybrid.cfg").read_text(encoding="utf8")
    start, end = config.index("[components.ner.model.tok2vec]"), config.index("[corpora]")
    listener = ('[components.ner.model.tok2vec]\n@architectures = "spacy-transformers.TransformerListener.v1"\n'
                'grad_factor = 1.0\npooling = {"@layers":"reduce_mean.v1"}\nupstream = "*"\n\n')
    Path(output).write_text(config[:start] + listener + config[end:], encoding="utf8")


def truecasing(train: str, dev: str, raw: str = "", n: str = "0") -> None:
    """Share of cased tokens that truecasing writes as the original does, inside and outside gold
    entities, for dev re-cased by the robustness suite; case forms from TRAIN (+ the first N texts of
    a JSONL with "text", e.g. CUAD)."""
    import srsly

    nlp = spacy.blank("en")
    docs = gold_docs(train, nlp)
    if raw:
        docs += list(nlp.tokenizer.pipe(r["text"] for _, r in zip(range(int(n)), srsly.read_jsonl(raw))))
    forms = mine_case_forms(docs)
    gold = gold_docs(dev, nlp)
    print(f"{len(forms['words'])} words, {len(forms['after']) + len(forms['before'])} contexts from {len(docs)} docs")
    shares = [max(case_shares([t.text for t in doc]).values()) for doc in gold]
    print(f"dev docs without case signal: {sum(case_free_kind([t.text for t in d]) is not None for d in gold)} of "
          f"{len(gold)}; highest share of one pattern in a dev doc: {max(shares):.3f}")
    errors = collections.Counter()
    for kind in ("upper", "lower", "title"):
        recased_docs = perturb_docs(gold, kind=kind)
        for unknown in ("auto", "title", "lower", "keep"):
            right = collections.Counter()
            total = collections.Counter()
            for ref, recased in zip(gold, recased_docs):
                inside = [False] * len(ref)
                for ent in ref.ents:
                    inside[ent.start:ent.end] = [True] * len(ent)
                for token, word, where in zip(ref, truecase(recased, forms, unknown=unknown), inside):
                    if token.text.lower() != token.text.upper():
                        total[where] += 1
                        right[where] += token.text == word
                        if where and token.text != word and (kind, unknown) == ("lower", "auto"):
                            errors[(token.text, word)] += 1
            print(f"{kind:<6} unknown={unknown:<6} entity tokens {right[True] / total[True]:.3f}  "
                  f"other tokens {right[False] / total[False]:.3f}")
    print("most frequent entity-token errors (lower, auto):", errors.most_common(8))


def passages(*paths: str) -> None:
    """Runs of words in capitals inside each DocBin's documents (`forms.upper_passages`): documents with
    a run of 2+ words, runs, their tokens, and the gold entities that lie inside a run of 3+ words."""
    nlp = spacy.blank("en")
    for path in paths:
        docs = gold_docs(path, nlp)
        runs = [upper_passages([t.text for t in d], min_words=2) for d in docs]
        long = [upper_passages([t.text for t in d], min_words=3) for d in docs]
        inside = sum(any(s <= e.start and e.end <= t for s, t in r) for d, r in zip(docs, long) for e in d.ents)
        print(f"{path}: {sum(map(bool, runs))} of {len(docs)} docs with a run of 2+ words in capitals, "
              f"{sum(map(len, runs))} runs, {sum(e - s for r in runs for s, e in r)} tokens; "
              f"{inside} of {sum(len(d.ents) for d in docs)} entities inside a run of 3+")


def uncased_head_config(model: str, output: str) -> None:
    """A config that trains a new NER head with the plain transformer listener (no cased features)
    on the frozen transformer of a trained pipeline, without re-cased copies."""
    from thinc.api import Config

    config = Config().from_disk(Path(model) / "config.cfg", interpolate=False)
    config["nlp"]["pipeline"] = ["transformer", "ner"]
    config["components"]["transformer"] = {"source": model}
    config["components"]["ner"]["model"]["tok2vec"] = {
        "@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"}
    config["training"]["frozen_components"] = ["transformer"]
    config["training"]["annotating_components"] = ["transformer"]
    config["corpora"]["train"]["augmenter"] = None
    config.to_disk(output)


def _case_class(text: str) -> str:
    """The tag a trained truecaser predicts: O (no cased letter), L, T (capitalized), U, M (mixed)."""
    if text.lower() == text.upper():
        return "O"
    if text == text.lower():
        return "L"
    return "T" if text == _capitalize(text.lower()) else "U" if text == text.upper() else "M"


def truecaser_data(train: str, dev: str, model: str, outdir: str) -> None:
    """Lower-cased TRAIN/DEV whose tags are the original words' case classes, and two tagger
    configs: `cnn.cfg` (spaCy's CPU tagger over NORM/PREFIX/SUFFIX/SHAPE) and `trf.cfg` (a softmax
    on the frozen encoder of MODEL, which reads lower-cased text as the original: it is uncased)."""
    from spacy.cli.init_config import init_config
    from thinc.api import Config

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank("en")
    for src, name in ((train, "train"), (dev, "dev")):
        docs = gold_docs(src, nlp)
        db = DocBin()
        for doc, lowered in zip(docs, perturb_docs(docs, kind="lower")):
            for token, low in zip(doc, lowered):
                low.tag_ = _case_class(token.text)
            db.add(lowered)
        db.to_disk(out / f"{name}.spacy")
    cnn = init_config(lang="en", pipeline=["tagger"], optimize="efficiency")
    cnn["components"]["tok2vec"]["model"]["embed"]["rows"] = [20000, 2000, 5000, 1000]
    cnn["training"].update({"max_steps": 3000, "patience": 1000})
    cnn.to_disk(out / "cnn.cfg")
    trf = Config().from_disk(Path(model) / "config.cfg", interpolate=False)
    trf["nlp"]["pipeline"] = ["transformer", "tagger"]
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "*"}
    trf["components"] = {"transformer": {"source": model}, "tagger": {
        "factory": "tagger", "model": {"@architectures": "spacy.Tagger.v2", "nO": None, "tok2vec": listener}}}
    trf["training"].update({"frozen_components": ["transformer"], "annotating_components": ["transformer"],
                            "score_weights": {"tag_acc": 1.0}, "max_steps": 1200, "eval_frequency": 200,
                            "before_to_disk": None, "logger": {"@loggers": "spacy.ConsoleLogger.v1"}})
    trf["training"]["optimizer"]["learn_rate"] = {"@schedules": "warmup_linear.v1", "warmup_steps": 50,
                                                  "total_steps": 1200, "initial_rate": 1e-3}
    trf["corpora"]["train"]["augmenter"] = None
    trf["initialize"]["components"] = {}
    trf.to_disk(out / "trf.cfg")


def truecaser_score(tagger: str, train: str, dev: str) -> None:
    """Share of the cased tokens of lower-cased DEV written as the original, inside and outside gold
    entities: the case forms of TRAIN (`truecase`, the restorer's default) against a trained tagger
    of `truecaser-data` (M: the word's mixed form in the case forms, else capitalized)."""
    nlp = spacy.blank("en")
    forms = mine_case_forms(gold_docs(train, nlp))
    model = spacy.load(tagger)
    gold = gold_docs(dev, model)
    lowered = perturb_docs(gold, kind="lower")
    writers = {"O": str, "L": str, "T": _capitalize, "U": str.upper}
    right, total = collections.Counter(), collections.Counter()
    for ref, low, pred in zip(gold, lowered, model.pipe(lowered)):
        inside = [False] * len(ref)
        for ent in ref.ents:
            inside[ent.start:ent.end] = [True] * len(ent)
        for token, by_forms, tagged, where in zip(ref, truecase(low, forms), pred, inside):
            if token.text.lower() != token.text.upper():
                mixed = forms["words"].get(tagged.text, "")
                by_tagger = writers[tagged.tag_](tagged.text) if tagged.tag_ in writers else (
                    mixed if len(mixed) == len(tagged.text) and _case_class(mixed) == "M" else _capitalize(tagged.text))
                total[where] += 1
                right["forms", where] += token.text == by_forms
                right["tagger", where] += token.text == by_tagger
    for source in ("forms", "tagger"):
        print(f"{source:<7} entity tokens {right[source, True] / total[True]:.3f}  "
              f"other tokens {right[source, False] / total[False]:.3f}")


if __name__ == "__main__":
    commands = {"alignment": alignment, "consistency": consistency, "errors": errors, "nocase-config": nocase_config, "passages": passages,
                "truecasing": truecasing, "uncased-head-config": uncased_head_config,
                "truecaser-data": truecaser_data, "truecaser-score": truecaser_score}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
