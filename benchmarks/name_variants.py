"""Build the variants of a trained pipeline that measure the whole-name fixes one by one.

From one pipeline with `entity_consistency` (the workflow's `training/calibrated/model-best`),
writes four pipeline directories that differ only in the fixes, for `evaluate` and `compare`:

- `base`: `entity_consistency` with exact strings only (its short forms, tickers and case
  variants off) and no `name_spans`;
- `consistency`: `entity_consistency` with its defaults (short forms, tickers, case variants);
- `names`: `base` plus `name_spans` (designators from `--designators`, mined by
  `python -m spacy_domain_ner mine-name-designators`) after the KB component;
- `both`: `consistency` plus `name_spans` (what `add-knowledge --name-designators` builds).

`--min-share` sets `entity_consistency`'s `min_share` in every variant (default: as the pipeline says).

usage: python benchmarks/name_variants.py PIPELINE --designators DESIGNATORS.json -o OUT_DIR [--min-share 0.5]
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import srsly

from spacy_domain_ner.knowledge.name_spans import add_name_spans

EXACT_ONLY = {"case_insensitive_names": False, "label_short_forms": False, "label_tickers": False}
VARIANTS = ("base", "consistency", "names", "both")


def build_variant(pipeline: Path, *, variant: str, designators: Dict, min_share: Optional[float] = None) -> spacy.Language:
    """Load the pipeline as one variant.

    pipeline (Path): A pipeline directory with `entity_consistency`.
    variant (str): One of VARIANTS.
    designators (Dict): Designators for `name_spans` ({label: {word: share}}).
    min_share (Optional[float]): `entity_consistency`'s `min_share`; None: the pipeline's.
    RETURNS (Language): The pipeline of the variant.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    exact = variant in ("base", "names")
    settings = {**(EXACT_ONLY if exact else {}), **({} if min_share is None else {"min_share": min_share})}
    overrides = {"components": {"entity_consistency": settings}} if settings else {}
    nlp = spacy.load(pipeline, config=overrides)
    if "entity_consistency" not in nlp.pipe_names:
        raise ValueError(f"{pipeline}: no entity_consistency component")
    if variant in ("names", "both"):
        after = "legal_knowledge" if "legal_knowledge" in nlp.pipe_names else "ner"
        add_name_spans(nlp, designators=designators, after=after)
    return nlp


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipeline", type=Path)
    parser.add_argument("--designators", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--min-share", type=float, default=None)
    args = parser.parse_args(argv)
    designators = srsly.read_json(args.designators)
    args.output.mkdir(parents=True, exist_ok=True)
    for variant in args.variants.split(","):
        nlp = build_variant(args.pipeline, variant=variant, designators=designators, min_share=args.min_share)
        nlp.to_disk(args.output / variant)
        print(f"{args.output / variant}: {', '.join(nlp.pipe_names)}")


if __name__ == "__main__":
    main()
