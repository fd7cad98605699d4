"""One training run, two readouts: dev F1 of the last weights and of the optimizer's averages.

usage:
  python benchmarks/averaged_pairs.py CONFIG OUTPUT CURVE.tsv [--section.key value ...]

`spacy train CONFIG --output OUTPUT` with the same overrides (set
`--training.optimizer.use_averages true`; spacy_domain_ner.TransformerModel.v1 averages the encoder too),
except that every evaluation scores the pipeline twice: with the weights as they are, then inside
`nlp.use_params(optimizer.averages)` as spaCy does. Both land in CURVE.tsv (step, F/P/R of each);
spaCy picks and saves model-best by the averaged score as usual. A paired comparison: the same
trajectory, so no seed noise between the two columns.
"""
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import spacy.training.loop as loop
from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train
from spacy.util import load_config

# captured once, so that a second main() in one process does not wrap the wrapper
TRAIN_WHILE_IMPROVING = loop.train_while_improving


class HiddenAverages:
    """The optimizer, except that the training loop sees no averages (it evaluates the last weights)."""

    averages = None

    def __init__(self, optimizer: Any) -> None:
        self._optimizer = optimizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimizer, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._optimizer(*args, **kwargs)


def paired_loop(curve: Path, frequency: int) -> Callable[..., Iterator]:
    def train_while_improving(nlp: Any, optimizer: Any, train_data: Any, evaluate: Callable, **kwargs: Any) -> Iterator:
        rows: List[Tuple[float, ...]] = []

        def both() -> Tuple[float, dict]:
            _, last = evaluate()
            with nlp.use_params(optimizer.averages):
                score, averaged = evaluate()
            rows.append(tuple(scores.get(key) or 0.0 for scores in (last, averaged)
                              for key in ("ents_f", "ents_p", "ents_r")))
            with curve.open("w", encoding="utf8") as file:
                file.write("step\tlast_f\tlast_p\tlast_r\taveraged_f\taveraged_p\taveraged_r\n")
                for i, row in enumerate(rows):
                    file.write("\t".join([str(i * frequency)] + [f"{100 * value:.2f}" for value in row]) + "\n")
            return score, averaged

        if optimizer.averages is None:
            raise SystemExit("set --training.optimizer.use_averages true")
        yield from TRAIN_WHILE_IMPROVING(nlp, HiddenAverages(optimizer), train_data, both, **kwargs)

    return train_while_improving


def main(config: str, output: str, curve: str, *args: str) -> None:
    overrides = parse_config_overrides(list(args))
    frequency = load_config(Path(config), overrides=overrides)["training"]["eval_frequency"]
    loop.train_while_improving = paired_loop(Path(curve), frequency)
    train(Path(config), Path(output), overrides=overrides)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
