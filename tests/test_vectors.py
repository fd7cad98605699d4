"""Tests of spacy_domain_ner.pretraining.vectors and the `vectors` CLI: training text from every input kind, a tiny
floret training into a spaCy vectors directory, and a CNN NER that uses it."""
import io
import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.util import load_config
from typer.testing import CliRunner

from spacy_domain_ner.cli import app
from spacy_domain_ner.corpus.formats.base import ConversionError
from spacy_domain_ner.io.jsonl import iter_jsonl, read_jsonl
from spacy_domain_ner.pretraining.vectors import STATS_FILE, build_vectors, find_inputs, paragraphs, write_training_text

ROOT = Path(__file__).parent.parent
runner = CliRunner()
# Original sentences; SCBV (capitals) and scbv (lower case) must get different vectors.
SENTENCES = [
    "SCBV filed its Form 10-K. The Company and SCBV agreed to the merger.",
    "The scbv file was archived by the clerk of the Southern District.",
    "Harborview Logistics, Inc. paid the Lender under Section 4.2 of the Agreement.",
    "The Securities and Exchange Commission reviewed the registration statement of SCBV.",
]


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf8")
    return path


def write_docbin(path: Path, texts) -> Path:
    nlp = spacy.blank("en")
    db = DocBin()
    for text in texts:
        doc = nlp(text)
        doc.ents = [Span(doc, 0, 1, label="BUSINESS")]
        db.add(doc)
    db.to_disk(path)
    return path


def collect(inputs, **kwargs):
    out = io.StringIO()
    counts = write_training_text(inputs, out, **kwargs)
    return out.getvalue().splitlines(), counts


def test_jsonl_paragraphs_become_lines_cased_and_tokenized(tmp_path):
    path = write_jsonl(tmp_path / "raw.jsonl", [
        {"text": "SCBV filed its Form 10-K.\n\nThe (\"Company\") paid $5.00."},
        {"text": "  "},
        {"text": "Acme  Inc., filed\nlate."},
    ])
    lines, counts = collect([path])
    assert lines == ["SCBV filed its Form 10 - K .", 'The ( " Company " ) paid $ 5.00 .', "Acme Inc. , filed late ."]
    assert (counts.docs, counts.lines, counts.tokens) == (3, 3, 8 + 10 + 6)
    assert counts.inputs[0].kind == "jsonl" and counts.inputs[0].tokens == counts.tokens


def test_text_folders_and_docbins(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("\ufeffFirst paragraph\nwraps here.\n\n\nSecond one.\n", encoding="utf8")
    (folder / "sub" / "b.txt").write_text("JPMC and SunGard.", encoding="utf8")
    (folder / "notes.md").write_text("ignored", encoding="utf8")
    docbin = write_docbin(tmp_path / "train.spacy", ["SCBV sued scbv.", "Regulation S-X."])
    lines, counts = collect([folder, docbin])
    assert lines == ["First paragraph wraps here .", "Second one .", "JPMC and SunGard .", "SCBV sued scbv .",
                     "Regulation S - X ."]
    assert [(c.kind, c.docs, c.lines) for c in counts.inputs] == [("text", 1, 2), ("text", 1, 1), ("docbin", 2, 2)]
    assert counts.docs == 4 and counts.tokens == sum(len(line.split(" ")) for line in lines)


def test_paragraphs_split_on_blank_lines_and_bound_length():
    assert list(paragraphs("a\n \nb\n\n\n c \n")) == ["a", "b", "c"]
    from spacy_domain_ner.pretraining import vectors

    long = " ".join(["word"] * (vectors.MAX_PARAGRAPH_CHARS // 4))
    parts = list(paragraphs(long))
    assert len(parts) == 2 and all(len(p) <= vectors.MAX_PARAGRAPH_CHARS for p in parts)
    assert " ".join(parts).split() == long.split()


@pytest.mark.parametrize("content,where,reason", [
    (b'{"text": "ok"}\n{"text": \n', ":2", "not valid JSON"),
    (b'{"text": "ok"}\n\n{"body": "x"}\n', ":3", "no 'text' string"),
    (b'["text"]\n', ":1", "expected a JSON object"),
    (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', ":2", "not valid UTF-8"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, content, where, reason):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ConversionError) as err:
        collect([path])
    assert str(err.value).startswith(f"{path}{where}:") and reason in str(err.value)


def test_bad_text_and_missing_inputs(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\n\xff\xfe\n")
    with pytest.raises(ConversionError, match=rf"^{bad}:3: not valid UTF-8"):
        collect([bad])
    with pytest.raises(ConversionError, match="no such file or folder"):
        find_inputs([tmp_path / "missing.jsonl"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConversionError, match="no .txt, .jsonl or .spacy files"):
        find_inputs([empty])
    blank = write_jsonl(tmp_path / "blank.jsonl", [{"text": " "}])
    with pytest.raises(ConversionError, match="no text to train vectors on"):
        collect([blank])
    not_docbin = tmp_path / "x.spacy"
    not_docbin.write_bytes(b"not a docbin")
    with pytest.raises(ConversionError, match="not a readable .spacy DocBin"):
        collect([not_docbin])


def test_iter_jsonl_reads_like_read_jsonl(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes('\ufeff{"text": "a\u2028b"}\r\n\n  \n{"text": "c"}'.encode("utf8"))
    assert list(iter_jsonl(path)) == list(read_jsonl(path))
    assert [line.number for line in iter_jsonl(path)] == [1, 4]


@pytest.fixture(scope="module")
def vectors_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vectors")
    raw = write_jsonl(tmp / "raw.jsonl", [{"text": " ".join(SENTENCES)} for _ in range(12)])
    docbin = write_docbin(tmp / "train.spacy", SENTENCES)
    output = tmp / "vectors"
    stats = build_vectors([raw, docbin], output, dim=10, epochs=1, bucket=1000, min_count=1)
    return output, stats


def test_tiny_floret_training_gives_a_cased_spacy_vectors_dir(vectors_dir):
    output, stats = vectors_dir
    nlp = spacy.load(output)
    assert nlp.vocab.vectors.mode == "floret" and nlp.vocab.vectors.shape == (1000, 10)
    upper, lower = nlp.vocab["SCBV"].vector, nlp.vocab["scbv"].vector
    assert upper.shape == (10,) and numpy.abs(upper).sum() > 0 and not numpy.allclose(upper, lower)
    assert nlp.vocab["NeverSeenWord"].vector.any()  # floret: every string has subwords
    assert not (output / ".work").exists()
    saved = json.loads((output / STATS_FILE).read_text(encoding="utf8"))
    assert saved == json.loads(json.dumps(stats))
    assert saved["text"]["docs"] == 12 + len(SENTENCES) and saved["text"]["tokens"] > 300
    assert saved["settings"]["mode"] == "floret" and saved["settings"]["hash_count"] == 2
    assert (saved["settings"]["minn"], saved["settings"]["maxn"], saved["settings"]["threads"]) == (4, 5, 1)


def test_a_failed_run_leaves_the_output_as_it_was(vectors_dir, tmp_path):
    output, _ = vectors_dir
    before = sorted(p.relative_to(output) for p in output.rglob("*"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n', encoding="utf8")
    with pytest.raises(ConversionError, match=r"bad.jsonl:2"):
        build_vectors([bad], output, dim=10, epochs=1, bucket=1000, min_count=1)
    assert sorted(p.relative_to(output) for p in output.rglob("*")) == before
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]
    other = tmp_path / "not_vectors"
    other.mkdir()
    (other / "keep.txt").write_text("x", encoding="utf8")
    with pytest.raises(ValueError, match="no spaCy pipeline"):
        build_vectors([bad], other, dim=10)
    assert (other / "keep.txt").exists()


def test_cnn_config_with_static_vectors_initializes_and_trains(vectors_dir, tmp_path):
    output, _ = vectors_dir
    train = write_docbin(tmp_path / "train.spacy", SENTENCES)
    config = load_config(ROOT / "configs" / "ner_cnn.cfg", overrides={
        "paths.train": str(train), "paths.dev": str(train), "paths.vectors": str(output),
        "components.tok2vec.model.embed.include_static_vectors": True,
    }, interpolate=False)
    nlp = init_nlp(config)
    assert nlp.vocab.vectors.mode == "floret" and nlp.vocab.vectors.shape == (1000, 10)
    assert any(node.name == "static_vectors" for node in nlp.get_pipe("tok2vec").model.walk())
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in DocBin().from_disk(train).get_docs(nlp.vocab)]
    optimizer = nlp.resume_training()
    losses = nlp.update(examples, sgd=optimizer, losses={})
    assert numpy.isfinite(losses["ner"]) and losses["ner"] > 0
    assert nlp("SCBV filed.")[0].vector.shape == (10,)


def test_cli_writes_the_vectors_and_names_bad_lines(tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", [{"text": " ".join(SENTENCES)} for _ in range(6)])
    result = runner.invoke(app, ["vectors", str(raw), "-o", str(tmp_path / "vec"), "--dim", "8", "--epochs", "1",
                                 "--bucket", "500", "--min-count", "1", "--verbose", "0"])
    assert result.exit_code == 0, result.output
    assert "6 documents" in result.output and "(500, 8)" in result.output
    assert spacy.load(tmp_path / "vec").vocab.vectors.mode == "floret"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "x"}\n', encoding="utf8")
    result = runner.invoke(app, ["vectors", str(bad), "-o", str(tmp_path / "vec2"), "--dim", "8"])
    assert result.exit_code == 1 and f"{bad}:2" in result.output and not (tmp_path / "vec2").exists()
