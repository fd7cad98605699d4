"""The shipped training configs, derived from the one hand-written config, the recipe.

configs/ner_hybrid.cfg is the recipe and the only config written by hand. Every other config in
configs/ is a variant of it, made by a plain function here from the recipe's Config (read without
interpolation, so its `${...}` variables stay) and written with a header saying so. A setting the
variants share (schedule, learning rate, logger, adversarial block, ...) is therefore changed once,
in the recipe, and the variants follow when regenerated:

    python -m spacy_domain_ner.training.variants configs          # rewrite the variants
    python -m spacy_domain_ner.training.variants configs --check  # exit 1 if one is stale

The variants keep the recipe's [paths] names (train, dev, vectors, init_tok2vec, transformer, and
general_train, general_dev, general_label_map where they apply), so the same command-line
overrides (`--paths.train ...`) work for each.
"""
import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from confection import Config

from ..io.generated import run_generator

BASE = "ner_hybrid.cfg"
MIXED_READER = "spacy_domain_ner.MixedCorpus.v1"
REGENERATE = "python -m spacy_domain_ner.training.variants configs"
SECTION = re.compile(r"^\[(.+)\]$")

# The pieces a variant adds to the recipe, as config text (variables stay variables).
GENERAL_NER = """
[general_ner]
factory = "general_ner"
spans_key = "general"
moves = null
scorer = {"@scorers":"spacy_domain_ner.general_ner_scorer.v1"}
update_with_oracle_cut_size = 100

[general_ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 64
maxout_pieces = 2
use_upper = false
nO = null

[general_ner.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
pooling = {"@layers":"reduce_mean.v1"}
upstream = "*"
"""

CNN_COMPONENTS = """
[tok2vec]
factory = "tok2vec"

[tok2vec.model]
@architectures = "spacy.Tok2Vec.v2"

[tok2vec.model.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = ${components.tok2vec.model.encode.width}
attrs = ["NORM","PREFIX","SUFFIX","SHAPE"]
rows = [5000,1000,2500,2500]
include_static_vectors = false

[tok2vec.model.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = 96
depth = 4
window_size = 1
maxout_pieces = 3

[ner_tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = ${components.tok2vec.model.encode.width}
upstream = "*"
"""

CNN_TRAINING = """
[optimizer]
@optimizers = "Adam.v1"
beta1 = 0.9
beta2 = 0.999
L2_is_weight_decay = true
L2 = 0.01
grad_clip = 1.0
use_averages = false
eps = 0.00000001
learn_rate = 0.001

[batcher]
@batchers = "spacy.batch_by_words.v1"
discard_oversize = false
tolerance = 0.2
get_length = null

[batcher.size]
@schedules = "compounding.v1"
start = 100
stop = 1000
compound = 1.001
t = 0.0
"""


def _pieces(text: str) -> Config:
    return Config().from_str(text, interpolate=False)


def _mixed_corpus(*, legal_path: str, general_path: str, ratio: Optional[float], general_target: str,
                  label_map: Optional[str], augmenter: Any) -> Dict[str, Any]:
    """A [corpora.*] block of spacy_domain_ner.MixedCorpus.v1 (paths as config variables)."""
    return {"@readers": MIXED_READER, "legal_path": legal_path, "general_path": general_path, "ratio": ratio,
            "size": 0, "seed": "${system.seed}", "general_target": general_target, "general_key": "general",
            "label_map": label_map, "limit": 0, "augmenter": copy.deepcopy(augmenter)}


def _without_augmenter(corpus: Dict[str, Any]) -> None:
    corpus.pop("augmenter", None)
    corpus["augmenter"] = None  # last, where a section's plain settings are written


def _paths(base: Config, **extra: Any) -> Dict[str, Any]:
    """The recipe's [paths] with entries added after train and dev (their place in the files before)."""
    paths = {key: base["paths"][key] for key in ("train", "dev")}
    paths.update(extra)
    paths.update({key: value for key, value in base["paths"].items() if key not in paths})
    return paths


def trf_variant(base: Config) -> Config:
    """configs/ner_trf.cfg: the transformer alone. The NER listens to the transformer without the
    cased features, spaCy's tokenizer has no legal rules, one learning rate for all (thinc's Adam),
    no re-cased copies; schedule, learning rate and everything else as the recipe.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["nlp"]["after_creation"] = None
    ner_model = out["components"]["ner"]["model"]
    ner_model["tok2vec"] = copy.deepcopy(base["components"]["ner"]["model"]["tok2vec"]["listener"])
    _without_augmenter(out["corpora"]["train"])
    optimizer = out["training"]["optimizer"]
    optimizer["@optimizers"] = "Adam.v1"
    for key in ("head_lr_scale", "encoder_delay", "encoder_warmup"):  # spacy_domain_ner.Adam.v1's own options
        optimizer.pop(key, None)
    return out


def update_variant(base: Config) -> Config:
    """configs/ner_update.cfg: the recipe continued from a trained pipeline. Its transformer and ner
    are sourced from [paths.source] (spaCy's sourced components: trained further, not initialized
    again) and trained on [paths.train]; schedule, optimizer, re-cased copies and the rest as the recipe.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["paths"] = _paths(base, source=None)
    for name in ("transformer", "ner"):
        out["components"][name] = {"source": "${paths.source}"}
    return out


def mixed_variant(base: Config) -> Config:
    """configs/ner_mixed.cfg: the recipe trained on legal and general (news) documents mixed, one head.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["paths"] = _paths(base, general_train=None, general_label_map="configs/labels/conll_to_legal.json")
    out["corpora"]["train"] = _mixed_corpus(
        legal_path="${paths.train}", general_path="${paths.general_train}", ratio=0.5, general_target="ents",
        label_map="${paths.general_label_map}", augmenter=base["corpora"]["train"].get("augmenter"),
    )
    # 0, not -1: with a streamed corpus (-1) spaCy initializes from the first 100 examples only, and
    # a rare class (E-NER's COURT) is then not a label of the head. With 0 the one mixed sample is
    # read whole, like the recipe's corpus (whose re-cased copies are also drawn once), and reshuffled each epoch.
    out["training"]["max_epochs"] = 0
    return out


def multitask_variant(base: Config) -> Config:
    """configs/ner_multitask.cfg: the recipe with a second head, `general_ner`, trained on general
    (news) documents mixed with the legal ones, both listening to the one transformer.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["paths"] = _paths(base, general_train=None, general_dev=None)
    out["nlp"]["pipeline"] = list(base["nlp"]["pipeline"]) + ["general_ner"]
    # general_ner is the transformer's last listener; CaseAwareListener.v1 serves the legal head anyway
    out["components"]["general_ner"] = _pieces(GENERAL_NER)["general_ner"]
    augmenter = base["corpora"]["train"].get("augmenter")
    out["corpora"]["train"] = _mixed_corpus(
        legal_path="${paths.train}", general_path="${paths.general_train}", ratio=0.5, general_target="spans",
        label_map=None, augmenter=augmenter,
    )
    # ratio null: every document once; the legal head is scored on the legal documents, the general one on general_dev
    out["corpora"]["dev"] = _mixed_corpus(
        legal_path="${paths.dev}", general_path="${paths.general_dev}", ratio=None, general_target="spans",
        label_map=None, augmenter=None,
    )
    out["training"]["max_epochs"] = 0  # as in mixed_variant
    out["training"]["before_to_disk"] = {"@callbacks": "spacy_domain_ner.without_components.v1", "names": []}
    weights = out["training"]["score_weights"]
    weights.update({"spans_general_f": 0.0, "spans_general_p": 0.0, "spans_general_r": 0.0,
                    "spans_general_per_type": None})
    return out


def adversarial_variant(base: Config) -> Config:
    """configs/ner_adversarial.cfg: the recipe with adversarial training (the recipe's
    [initialize.after_init] block, FGM by default) switched on.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["initialize"]["after_init"]["enabled"] = True
    return out


def cnn_variant(base: Config) -> Config:
    """configs/ner_cnn.cfg: the fast CPU baseline, spaCy's hash-embedding CNN tok2vec and NER (no
    transformer), with its own optimizer (constant rate) and batcher (compounding batch sizes by
    words). The recipe's tokenizer rules, corpora (without re-cased copies), scoring, logger and
    initialize blocks stay.

    base (Config): The recipe, not interpolated.
    RETURNS (Config): The variant.
    """
    out = copy.deepcopy(base)
    out["paths"] = {key: value for key, value in base["paths"].items() if key != "transformer"}
    out["system"]["gpu_allocator"] = None
    out["nlp"]["pipeline"] = ["tok2vec", "ner"]
    out["nlp"]["batch_size"] = 1000
    pieces = _pieces(CNN_COMPONENTS)
    ner = copy.deepcopy(base["components"]["ner"])
    ner["model"]["use_upper"] = True  # spaCy's CNN NER keeps its hidden layer
    ner["model"]["tok2vec"] = pieces["ner_tok2vec"]
    out["components"] = {"tok2vec": pieces["tok2vec"], "ner": ner}
    _without_augmenter(out["corpora"]["train"])
    training = _pieces(CNN_TRAINING)
    out["training"]["optimizer"] = training["optimizer"]
    out["training"]["batcher"] = training["batcher"]
    out["training"]["max_steps"] = 3000  # a CNN step is cheap
    return out


# file name -> the function that makes it from the recipe; DESCRIPTIONS: what its header says it is
VARIANTS: Dict[str, Callable[[Config], Config]] = {
    "ner_trf.cfg": trf_variant,
    "ner_mixed.cfg": mixed_variant,
    "ner_multitask.cfg": multitask_variant,
    "ner_adversarial.cfg": adversarial_variant,
    "ner_cnn.cfg": cnn_variant,
    "ner_update.cfg": update_variant,
}

DESCRIPTIONS = {
    "ner_trf.cfg": """Transformer NER: a Hugging Face encoder (spacy-transformers) + transition-based NER, without
the recipe's cased features, legal tokenizer rules, faster heads and re-cased copies.""",
    "ner_mixed.cfg": """Mixed-domain single-head NER, the comparison for ner_multitask.cfg: one `ner` trained on legal
data ([paths.train]) plus CoNLL-2003 ([paths.general_train]) mapped onto the legal scheme by
[paths.general_label_map] (configs/labels/conll_to_legal.json): PER -> PERSON, LOC -> LOCATION; ORG and
MISC are dropped AS MISSING annotation (neither an entity nor O: no one-to-one legal class exists, and
O would teach the head that company and agency names are not entities). The map is applied by
spacy_domain_ner.MixedCorpus.v1 (general_target = "ents"), which also gives both domains the recipe's
re-cased copies; scored on the legal dev set only.""",
    "ner_multitask.cfg": """Multi-task NER: one shared transformer, two heads listening to it:
  ner          the legal classes, trained on [paths.train]; writes doc.ents.
  general_ner  CoNLL-2003's PER/ORG/LOC/MISC, trained on [paths.general_train]; writes
               doc.spans["general"], never doc.ents (spacy_domain_ner.training.heads).
The train corpus is spacy_domain_ner.MixedCorpus.v1: `ratio` is the share of legal examples; news
references carry their entities in spans["general"] with ENT annotation missing, so each head learns
only from its own corpus. general_ner must stay the last head listening to the transformer (checked
at initialize). [paths.general_dev], optional, scores the general head too (spans_general_f).
Shipping: [training.before_to_disk] names = ["general_ner"] saves (and so packages) the legal
pipeline only; names = [] ships both heads.""",
    "ner_adversarial.cfg": """The recipe with adversarial training on the embedding tables switched on
([initialize.after_init], spacy_domain_ner.training.adversarial; method "fgm" or "pgd").""",
    "ner_cnn.cfg": """Fast CPU NER for iteration and as a baseline: hash-embedding CNN tok2vec + transition-based NER,
no transformer. Static vectors: --paths.vectors DIR --components.tok2vec.model.embed.include_static_vectors true.""",
    "ner_update.cfg": """Continued training: the transformer and ner of a trained pipeline ([paths.source], e.g. the
calibrated pipeline the package was built from) trained further on [paths.train], the training
corpus with the reviewers' corrections in it (import-corrections --merged). A label the source's
ner lacks is added when training first meets it (spaCy grows the output layer).""",
}


def variant_configs(base: Config) -> Dict[str, Config]:
    """Every variant of the recipe.

    base (Config): The recipe, not interpolated.
    RETURNS (Dict[str, Config]): The variants by file name.
    """
    return {name: make(base) for name, make in VARIANTS.items()}


def load_base(directory: Path) -> Config:
    """The recipe, not interpolated.

    directory (Path): The configs folder.
    RETURNS (Config): configs/ner_hybrid.cfg.
    """
    path = Path(directory) / BASE
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the configs folder holds {BASE}, the base of the variants)")
    return Config().from_disk(path, interpolate=False)


def render(name: str, config: Config) -> str:
    """A variant's file text: the header, then the config with its sections depth-first
    (each section next to its subsections, as in a hand-written config).

    name (str): The file name, a key of VARIANTS.
    config (Config): The variant.
    RETURNS (str): The text.
    """
    header = [f"Generated from configs/{BASE} by spacy_domain_ner.training.variants ({VARIANTS[name].__name__}):",
              f"do not edit; edit {BASE} or the variant function, then regenerate with", f"  {REGENERATE}", ""]
    header += DESCRIPTIONS[name].splitlines()
    lines = [f"# {line}".rstrip() for line in header]
    return "\n".join(lines) + "\n\n" + _depth_first(config.to_str(interpolate=False), config) + "\n"


def _depth_first(text: str, config: Config) -> str:
    # confection writes sections breadth-first; the sections are independent blocks, so reordering is safe
    blocks: Dict[str, List[str]] = {}
    current: Optional[str] = None
    for line in text.strip().splitlines():
        match = SECTION.match(line)
        if match:
            current = match.group(1)
            blocks[current] = [line]
        elif current is not None and line.strip():
            blocks[current].append(line)
    order: List[str] = []

    def walk(section: Dict[str, Any], prefix: str) -> None:
        for key, value in section.items():
            if isinstance(value, dict):
                name = f"{prefix}{key}"
                order.append(name)
                walk(value, name + ".")

    walk(config, "")
    order += [name for name in blocks if name not in order]
    return "\n\n".join("\n".join(blocks[name]) for name in order if name in blocks)


def write_variants(directory: Path, *, check: bool = False) -> List[Path]:
    """Write (or with check, compare) every variant file next to the recipe.

    directory (Path): The configs folder.
    check (bool): Write nothing; report the files that differ from what would be written.
    RETURNS (List[Path]): The files written, or with check the stale (or missing) ones.
    """
    directory = Path(directory)
    base = load_base(directory)
    done = []
    for name, config in variant_configs(base).items():
        path = directory / name
        text = render(name, config)
        if check:
            if not path.is_file() or path.read_text(encoding="utf8") != text:
                done.append(path)
        else:
            path.write_text(text, encoding="utf8")
            done.append(path)
    return done


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spacy_domain_ner.training.variants",
                                     description=f"Write the configs derived from {BASE} next to it.")
    parser.add_argument("directory", type=Path, help=f"the configs folder, holding {BASE}")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a variant file is stale")
    args = parser.parse_args(argv)
    return run_generator(lambda: write_variants(args.directory, check=args.check), check=args.check,
                         regenerate=REGENERATE, nothing="wrote ")


if __name__ == "__main__":
    sys.exit(main())
