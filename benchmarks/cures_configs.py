"""Mixed-domain and multi-task variants of the hybrid recipe, for comparing the cures at one budget.

configs/ner_mixed.cfg and configs/ner_multitask.cfg are built on the plain transformer recipe
(ner_trf.cfg). This writes the same two variants of configs/ner_hybrid.cfg, so that a cure is the
only difference from the recipe: the case-aware NER, legal tokenizer, discriminative learning rates
and re-cased copies stay; the train corpus becomes spacy_domain_ner.MixedCorpus.v2 (v1 plus the
hybrid's augmenter, applied to both domains); the multi-task variant adds the `general_ner` head and
its dev corpus. Writes OUT_DIR/ner_hybrid_mixed.cfg and OUT_DIR/ner_hybrid_multitask.cfg.

usage: python benchmarks/cures_configs.py OUT_DIR [--configs configs]
"""
import argparse
import copy
from pathlib import Path

from confection import Config

READER = "spacy_domain_ner.MixedCorpus.v2"
# max_epochs = 0, not ner_mixed.cfg's -1: with a streamed corpus (-1) spaCy initializes from the
# first 100 examples only, and E-NER's rarest class (COURT, 13 training entities) is then not a
# label of the head. With 0 the one mixed sample is read whole, like the recipe's corpus (whose
# re-cased copies are also drawn once), and reshuffled each epoch.


def _load(path: Path) -> Config:
    return Config().from_disk(path, interpolate=False)


def mixed_variant(hybrid: Config, mixed: Config) -> Config:
    """The hybrid config trained on the mixed legal + news corpus, one head (ner_mixed.cfg's data)."""
    out = copy.deepcopy(hybrid)
    out["paths"]["general_train"] = mixed["paths"]["general_train"]
    out["paths"]["general_label_map"] = mixed["paths"]["general_label_map"]
    train = copy.deepcopy(mixed["corpora"]["train"])
    train["@readers"] = READER
    train["augmenter"] = copy.deepcopy(hybrid["corpora"]["train"]["augmenter"])
    out["corpora"]["train"] = train
    out["training"]["max_epochs"] = 0  # see the note under READER
    return out


def multitask_variant(hybrid: Config, multitask: Config) -> Config:
    """The hybrid config with ner_multitask.cfg's second head (general_ner) and its data."""
    out = copy.deepcopy(hybrid)
    for key in ("general_train", "general_dev"):
        out["paths"][key] = multitask["paths"][key]
    out["nlp"]["pipeline"] = list(multitask["nlp"]["pipeline"])
    out["components"]["general_ner"] = copy.deepcopy(multitask["components"]["general_ner"])
    # general_ner is the last listener; the legal head's cased listener must tolerate not being it.
    out["components"]["ner"]["model"]["tok2vec"]["@architectures"] = "spacy_domain_ner.CaseAwareListener.v2"
    for split in ("train", "dev"):
        corpus = copy.deepcopy(multitask["corpora"][split])
        corpus["@readers"] = READER
        corpus["augmenter"] = copy.deepcopy(hybrid["corpora"]["train"]["augmenter"]) if split == "train" else None
        out["corpora"][split] = corpus
    out["training"]["max_epochs"] = 0  # see the note under READER
    out["training"]["before_to_disk"] = copy.deepcopy(multitask["training"]["before_to_disk"])
    out["training"]["score_weights"] = copy.deepcopy(multitask["training"]["score_weights"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--configs", type=Path, default=Path(__file__).parent.parent / "configs")
    args = parser.parse_args()
    hybrid = _load(args.configs / "ner_hybrid.cfg")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mixed_variant(hybrid, _load(args.configs / "ner_mixed.cfg")).to_disk(args.out_dir / "ner_hybrid_mixed.cfg")
    multitask_variant(hybrid, _load(args.configs / "ner_multitask.cfg")).to_disk(args.out_dir / "ner_hybrid_multitask.cfg")
    print(f"wrote {args.out_dir}/ner_hybrid_mixed.cfg and ner_hybrid_multitask.cfg")


if __name__ == "__main__":
    main()
