import pytest

# Original legal sentences with their entities (character offsets), shared by the tests of the heads
# and of adversarial training.
LEGAL_TEXTS = [
    ("The Securities and Exchange Commission sued Acme Holdings, Inc. in New York.",
     [(4, 38, "GOVERNMENT"), (44, 63, "BUSINESS"), (67, 75, "LOCATION")]),
    ("John Smith appealed to the Supreme Court under the Clean Air Act.",
     [(0, 10, "PERSON"), (27, 40, "COURT"), (51, 64, "LEGISLATION/ACT")]),
]


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
