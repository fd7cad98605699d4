import importlib.util
from pathlib import Path

import pytest

# Original legal sentences with their entities (character offsets), shared by the tests of the heads
# and of adversarial training.
LEGAL_TEXTS = [
    ("The Securities and Exchange Commission sued Acme Holdings, Inc. in New York.",
     [(4, 38, "GOVERNMENT"), (44, 63, "BUSINESS"), (67, 75, "LOCATION")]),
    ("John Smith appealed to the Supreme Court under the Clean Air Act.",
     [(0, 10, "PERSON"), (27, 40, "COURT"), (51, 64, "LEGISLATION/ACT")]),
]


def load_benchmark(name):
    """Import the script benchmarks/NAME.py (benchmarks/ is not a package) as a module.

    name (str): The script's file name without .py, e.g. "speed".
    RETURNS (module): A fresh module object (not entered in sys.modules).
    """
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny test models gain nothing from threads, which only contend on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_tiny_bert(path, texts, *, max_positions=128):
    """Save a 2-layer, 32-wide BERT without dropout (passes are deterministic) and a tokenizer
    whose vocabulary covers `texts` (lower-cased characters, their ## forms and the words).

    path (Path): An existing, empty directory.
    texts (Iterable[str]): The texts the tokenizer must cover.
    max_positions (int): Position embeddings, i.e. the longest input in word pieces.
    RETURNS (Path): `path`, usable as a transformer name.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    texts = list(texts)
    chars = sorted(set("".join(texts).lower()) - {" "})
    words = sorted({w.lower().strip(".,") for text in texts for w in text.split()} - set(chars))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars] + words
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        max_position_embeddings=max_positions,
    )
    BertModel(config).save_pretrained(path)
    return path


# One annotated sentence, with the tiny BERT that covers it and `configs/ner_trf.cfg` built on that
# BERT: shared by the tests of the transformer architectures and of the optimizer.
TRF_TEXT = "The Securities and Exchange Commission sued Acme Holdings in New York ."
TRF_ENTS = [(4, 38, "GOVERNMENT"), (44, 57, "BUSINESS"), (61, 69, "LOCATION")]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), [TRF_TEXT])


def trf_pipeline(model_dir, *, overrides=None):
    """`configs/ner_trf.cfg` on a local transformer, initialized and updated once on TRF_TEXT.

    model_dir (Path): The transformer, e.g. the `tiny_bert` fixture.
    overrides (Optional[Dict[str, Any]]): More config overrides.
    RETURNS (Language): The pipeline.
    """
    from pathlib import Path

    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    configs = Path(__file__).parent.parent / "configs"
    config = load_config(configs / "ner_trf.cfg", overrides={"paths.transformer": str(model_dir), **(overrides or {})},
                         interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(TRF_TEXT), {"entities": TRF_ENTS})]
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer, losses={})
    return nlp


def imported_names(name, path):
    """Every dotted module name a module's file imports, at the top or inside functions (ast), with
    `from x import y` also counted as the possible submodule `x.y`; relative imports resolved.

    name (str): The module's dotted name.
    path (Path): Its file (a package's __init__.py for a package).
    RETURNS (Set[str]): The names, to be filtered by the caller (package modules only, etc.).
    """
    import ast

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def jsonl_lines(path):
    """The records of a JSONL file the tests wrote or read back (a plain reader, not the package's)."""
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def save_ruler_pipeline(path, patterns, *extra):
    """Save a blank English pipeline with an entity ruler over `patterns`, then the components `extra`."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(patterns)
    for name in extra:
        nlp.add_pipe(name)
    nlp.to_disk(path)
    return str(path)
