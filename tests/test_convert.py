from collections import Counter
import json

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_domain_ner.cli import app
from spacy_domain_ner.corpus.convert import convert, convert_corpus, convert_file, split_documents, stats_path_for
from spacy_domain_ner.corpus.formats.base import ConversionError
from spacy_domain_ner.corpus.labels import LabelMap

ENER = """-DOCSTART-,O
,O
The,O
Securities,I-LEGISLATION/ACT
Exchange,I-LEGISLATION/ACT
Act,I-LEGISLATION/ACT
binds,O
"Acme, Inc.",I-BUSINESS
.,O
,O
John,I-PERSON
Doe,I-PERSON
B,B-PERSON
signed,O
"10,000",O
shares,O
,O
-DOCSTART-,O
,O
Delaware,I-LOCATION
courts,O
odd,P
,O
"""

CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


def read_docs(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf8")
    return path


def test_ener_csv(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    out = tmp_path / "out.spacy"
    stats = convert([path], out, label_map=LabelMap(tags={"P": "I-MISCELLANEOUS"}), n_sents=0)[out]
    docs = read_docs(out)
    assert len(docs) == 2
    assert ents(docs[0]) == [
        ("Securities Exchange Act", "LEGISLATION/ACT"), ("Acme, Inc.", "BUSINESS"), ("John Doe", "PERSON"), ("B", "PERSON"),
    ]
    assert [s.text.split()[0] for s in docs[0].sents] == ["The", "John"]
    assert ents(docs[1]) == [("Delaware", "LOCATION"), ("odd", "MISCELLANEOUS")]
    assert stats["documents"] == 2 and stats["sentences"] == 3 and stats["tokens"] == 16
    assert stats["entities_read"] == stats["entities_written"] == 6 and stats["reconciled"]
    assert stats["repaired"] == [{"source": f"{path}:22", "reason": "tag 'P' read as 'I-MISCELLANEOUS'"}]
    assert srsly.read_json(stats_path_for(out)) == stats
    assert docs[0].user_data["doc_id"] == "x.csv#0"


def test_sentence_grouping(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    out = tmp_path / "out.spacy"
    stats = convert([path], out, label_map=LabelMap(tags={"P": "I-MISCELLANEOUS"}), n_sents=1)[out]
    assert [len(list(d.sents)) for d in read_docs(out)] == [1, 1, 1]
    assert stats["output_docs"] == 3 and stats["documents"] == 2


def test_label_map_drops_are_reported(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    out = tmp_path / "out.spacy"
    label_map = LabelMap(labels={"PERSON": None, "BUSINESS": "ORG"}, tags={"P": "I-MISCELLANEOUS"})
    stats = convert([path], out, label_map=label_map)[out]
    assert stats["entities_read"] == 6 and stats["entities_written"] == 4 and stats["entities_dropped"] == 2
    assert stats["reconciled"]
    assert [(d["source"], d["text"], d["label"]) for d in stats["dropped"]] == [
        (f"{path}:11", "John Doe", "PERSON"), (f"{path}:13", "B", "PERSON"),
    ]
    assert stats["entities_written_per_label"] == {"LEGISLATION/ACT": 1, "ORG": 1, "LOCATION": 1, "MISCELLANEOUS": 1}


def test_conll_two_and_four_columns(tmp_path):
    four = write(tmp_path, "a.conll", CONLL)
    two = write(tmp_path, "b.conll", "\n".join(" ".join(line.split()[::3]) if line.strip() else line for line in CONLL.splitlines()))
    for path in (four, two):
        out = tmp_path / f"{path.stem}.spacy"
        stats = convert([path], out)[out]
        assert ents(read_docs(out)[0]) == [("EU", "ORG"), ("German", "MISC"), ("Peter Blackburn", "PER")]
        assert stats["sentences"] == 2


@pytest.mark.parametrize(
    "tags,scheme,expected",
    [
        (["B-PER", "L-PER", "O", "U-LOC"], "auto", [("a b", "PER"), ("d", "LOC")]),
        (["B-PER", "E-PER", "O", "S-LOC"], "auto", [("a b", "PER"), ("d", "LOC")]),
        (["B-PER", "I-PER", "B-PER", "O"], "auto", [("a b", "PER"), ("c", "PER")]),
        (["I-PER", "I-PER", "I-PER", "O"], "io", [("a b c", "PER")]),
    ],
)
def test_conll_schemes(tmp_path, tags, scheme, expected):
    path = write(tmp_path, "s.conll", "".join(f"{w} {t}\n" for w, t in zip("abcd", tags)))
    out = tmp_path / "s.spacy"
    convert([path], out, scheme=scheme)
    assert ents(read_docs(out)[0]) == expected


def test_jsonl_doccano_and_prodigy(tmp_path):
    text = "Acme Corp. sued the SEC in New York."
    lines = [
        {"text": text, "label": [[0, 10, "BUSINESS"], [20, 23, "GOVERNMENT"]], "meta": {"id": "a"}},
        {"text": text, "spans": [{"start": 27, "end": 35, "label": "LOCATION"}], "id": "b"},
        {"text": "No entities here."},
    ]
    path = write(tmp_path, "x.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "x.spacy"
    stats = convert([path], out)[out]
    docs = read_docs(out)
    assert ents(docs[0]) == [("Acme Corp.", "BUSINESS"), ("SEC", "GOVERNMENT")]
    assert ents(docs[1]) == [("New York", "LOCATION")]
    assert [d.user_data["doc_id"] for d in docs] == ["a", "b", "x.jsonl:3"]
    assert stats["entities_written"] == 3 and stats["repaired"] == []


def test_jsonl_misaligned_span_is_repaired_and_reported(tmp_path):
    # "Acm" ends inside the token "Acme"; " SEC " has whitespace around it.
    line = {"text": "Acme sued the SEC today.", "label": [[0, 3, "BUSINESS"], [13, 18, "GOVERNMENT"]]}
    path = write(tmp_path, "x.jsonl", json.dumps(line))
    out = tmp_path / "x.spacy"
    stats = convert([path], out)[out]
    assert ents(read_docs(out)[0]) == [("Acme", "BUSINESS"), ("SEC", "GOVERNMENT")]
    assert len(stats["repaired"]) == 2 and all(r["source"] == f"{path}:1" for r in stats["repaired"])
    assert stats["reconciled"]


def test_label_studio(tmp_path):
    text = "😀 Acme Corp. v. SEC"
    tasks = [
        {
            "id": 7,
            "data": {"text": text},
            "annotations": [
                {"was_cancelled": True, "result": []},
                {
                    "result": [
                        # JavaScript offsets: the emoji counts two UTF-16 units.
                        {"type": "labels", "value": {"start": 3, "end": 13, "text": "Acme Corp.", "labels": ["BUSINESS"]}},
                        {"type": "labels", "value": {"start": 17, "end": 20, "text": "SEC", "labels": ["GOVERNMENT"]}},
                        {"type": "relation", "from_id": "a", "to_id": "b"},
                    ]
                },
            ],
        },
        {"data": {"text": "Nothing."}, "annotations": []},
    ]
    path = write(tmp_path, "ls.json", json.dumps(tasks))
    out = tmp_path / "ls.spacy"
    stats = convert([path], out)[out]
    docs = read_docs(out)
    assert ents(docs[0]) == [("Acme Corp.", "BUSINESS"), ("SEC", "GOVERNMENT")]
    assert len(docs) == 2 and docs[0].user_data["doc_id"] == "7"
    assert len(stats["repaired"]) == 2 and "UTF-16" in stats["repaired"][0]["reason"]


def test_label_studio_takes_the_latest_annotation_and_the_record_id(tmp_path):
    text = "Acme Corp. v. SEC"
    older = {"created_at": "2026-12-01T10:00:00", "result": [
        {"type": "labels", "value": {"start": 0, "end": 4, "text": "Acme", "labels": ["BUSINESS"]}}]}
    newer = {"created_at": "2026-12-01T09:00:00", "updated_at": "2026-12-02T08:00:00", "result": [
        {"type": "labels", "value": {"start": 0, "end": 10, "text": "Acme Corp.", "labels": ["BUSINESS"]}}]}
    tasks = [{"id": 3, "data": {"text": text, "id": "filing-17"}, "annotations": [newer, older]},
             {"id": 4, "data": {"text": text}, "annotations": [{"result": older["result"]}, {"result": []}]}]
    path = write(tmp_path, "ls.json", json.dumps(tasks))
    out = tmp_path / "ls.spacy"
    convert([path], out)
    first, second = read_docs(out)
    assert first.user_data["doc_id"] == "filing-17" and ents(first) == [("Acme Corp.", "BUSINESS")]
    # without dates the last annotation listed is the latest
    assert second.user_data["doc_id"] == "4" and ents(second) == []


def test_split_is_deterministic_and_document_level():
    ids = [f"doc{i}" for i in range(100)]
    a = split_documents(ids, fractions=[0.8, 0.1, 0.1], seed=1)
    b = split_documents(list(reversed(ids)), fractions=[0.8, 0.1, 0.1], seed=1)
    assert a == b
    assert sorted(list(a.values()).count(n) for n in ("train", "dev", "test")) == [10, 10, 80]
    assert split_documents(ids, fractions=[0.8, 0.1, 0.1], seed=2) != a
    with pytest.raises(ValueError, match="summing to 1"):
        split_documents(ids, fractions=[0.5, 0.1], seed=0)
    with pytest.raises(ValueError, match="unique"):
        split_documents(["a", "a"], fractions=[0.5, 0.5], seed=0)


def test_convert_corpus_split_and_given(tmp_path):
    lines = [{"text": f"Document {i} mentions Acme Corp.", "label": [[len(f"Document {i} mentions "), len(f"Document {i} mentions Acme Corp."), "BUSINESS"]]} for i in range(20)]
    path = write(tmp_path, "x.jsonl", "\n".join(json.dumps(x) for x in lines))
    results = convert_corpus(train=[path], output_dir=tmp_path / "split", split=[0.7, 0.15, 0.15])
    counts = {p.name: s["documents"] for p, s in results.items()}
    assert counts == {"train.spacy": 14, "dev.spacy": 3, "test.spacy": 3}
    given = convert_corpus(train=[path], dev=[path], output_dir=tmp_path / "given")
    assert sorted(p.name for p in given) == ["dev.spacy", "train.spacy"]
    with pytest.raises(ValueError, match="needs a dev corpus"):
        convert_corpus(train=[path], test=[path], output_dir=tmp_path / "bad")


@pytest.mark.parametrize(
    "name,content,message,line",
    [
        ("a.csv", "-DOCSTART-,O\nfoo,O,extra\n", "expected 2 CSV fields", 2),
        ("a.csv", "-DOCSTART-,O\nfoo,X-ORG\n", "unknown tag 'X-ORG'", 2),
        ("a.csv", "-DOCSTART-,O\nfoo,\n", "has no tag", 2),
        ("a.conll", "a NN O\nb NN I-PER\nc I-PER\n", "expected 3 columns", 3),
        ("a.conll", "a O\nlonely\n", "one column", 2),
        ("a.jsonl", '{"text": "abc", "label": [[0, 9, "X"]]}\n', "outside the text", 1),
        ("a.jsonl", '{"text": "abc"}\n{"text": "abc", "label": [[0, 2, "X"], [1, 3, "Y"]]}\n', "overlapping spans", 2),
        ("a.jsonl", '{"text": "abc"}\n\n{oops\n', "not valid JSON", 3),
        ("a.jsonl", '{"label": []}\n', 'no "text"', 1),
        ("a.jsonl", '{"text": "abc", "label": [[0, 1]]}\n', "triples", 1),
        ("a.jsonl", '{"text": "abc", "spans": [{"start": "0", "end": 1, "label": "X"}]}\n', "integers", 1),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, name, content, message, line):
    path = write(tmp_path, name, content)
    out = tmp_path / "out.spacy"
    with pytest.raises(ConversionError, match=message) as err:
        convert([path], out)
    assert str(err.value).startswith(f"{path}:{line}:")
    assert not out.exists() and not stats_path_for(out).exists()
    assert list(tmp_path.iterdir()) == [path]


def test_bad_label_studio_names_record(tmp_path):
    tasks = [{"data": {"text": "ok"}}, {"data": {"text": "Acme"}, "annotations": [{"result": [{"value": {"start": 0, "end": 4, "text": "Acme", "labels": ["A", "B"]}}]}]}]
    path = write(tmp_path, "ls.json", json.dumps(tasks))
    with pytest.raises(ConversionError, match=r"record 1: span 'Acme' has 2 labels"):
        convert([path], tmp_path / "out.spacy")
    path = write(tmp_path, "ls2.json", json.dumps([{"data": {"text": "Acme"}, "annotations": [{"result": [{"value": {"start": 0, "end": 4, "text": "Bcme", "labels": ["A"]}}]}]}]))
    with pytest.raises(ConversionError, match="record 0: span .* covers 'Acme' but its text is 'Bcme'"):
        convert([path], tmp_path / "out.spacy")


def test_empty_and_bad_encoding(tmp_path):
    empty = write(tmp_path, "e.csv", "\n \n")
    with pytest.raises(ConversionError, match="the file is empty") as err:
        convert([empty], tmp_path / "o.spacy")
    assert str(err.value).startswith(str(empty))
    latin = write(tmp_path, "l.conll", "a O\nb O\n\xe9t\xe9 O\n".encode("latin-1"), mode="wb")
    with pytest.raises(ConversionError, match="not valid UTF-8") as err:
        convert([latin], tmp_path / "o.spacy")
    assert str(err.value).startswith(f"{latin}:3:")
    with pytest.raises(ConversionError, match="no such file"):
        convert([tmp_path / "missing.csv"], tmp_path / "o.spacy")


def test_failure_in_second_output_leaves_nothing(tmp_path):
    good = write(tmp_path, "good.jsonl", '{"text": "abc"}\n')
    bad = write(tmp_path, "bad.jsonl", "{oops\n")
    out_dir = tmp_path / "corpus"
    with pytest.raises(ConversionError):
        convert_corpus(train=[good], dev=[bad], output_dir=out_dir)
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_unknown_settings(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    with pytest.raises(ValueError, match="unknown format"):
        convert_file(path, file_format="xml")
    with pytest.raises(ValueError, match="unknown tag scheme"):
        convert_file(path, scheme="bio9")
    with pytest.raises(ValueError, match="n_sents"):
        convert_file(path, n_sents=-1)


def test_cli(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(path), "-o", str(tmp_path / "o.spacy")])
    assert result.exit_code == 1 and "unknown tag 'P'" in result.output
    label_map = write(tmp_path, "map.json", '{"tags": {"P": "I-MISCELLANEOUS"}}')
    result = runner.invoke(app, ["convert", str(path), "-o", str(tmp_path / "o.spacy"), "-m", str(label_map)])
    assert result.exit_code == 0, result.output
    assert "2 documents, 3 sentences, 16 tokens, 6 entities written, 0 dropped, 1 repaired" in result.output
    result = runner.invoke(
        app, ["corpus", "--train", str(path), "--dev", "", "--split", "0.5,0.5", "-m", str(label_map), "-o", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["dev.spacy", "dev.stats.json", "train.spacy", "train.stats.json"]


def test_token_corpora_get_natural_spacing(tmp_path):
    path = write(tmp_path, "x.csv", ENER)
    out = tmp_path / "out.spacy"
    stats = convert([path], out, label_map=LabelMap(tags={"P": "I-MISCELLANEOUS"}), n_sents=0)[out]
    docs = read_docs(out)
    # "Inc." before "." keeps its space (spacing rule 6); sentences are joined by one space
    assert docs[0].text == "The Securities Exchange Act binds Acme, Inc. . John Doe B signed 10,000 shares "
    assert stats["tokens_unspaced"] == 0
    spaced = tmp_path / "spaced.spacy"
    assert convert([path], spaced, n_sents=0, natural_spacing=False,
                   label_map=LabelMap(tags={"P": "I-MISCELLANEOUS"}))[spaced]["tokens_unspaced"] == 0
    conll = write(tmp_path, "x.conll", "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\n( ( O O\nthe DT O O\nplan NN O O\n) ) O O\n. . O O\n\n")
    stats = convert([conll], tmp_path / "c.spacy", n_sents=0)[tmp_path / "c.spacy"]
    assert read_docs(tmp_path / "c.spacy")[0].text == "EU rejects (the plan). "
    assert stats["tokens_unspaced"] == 3  # "(", "plan", ")"
    stats = convert([conll], tmp_path / "s.spacy", n_sents=0, natural_spacing=False)[tmp_path / "s.spacy"]
    assert read_docs(tmp_path / "s.spacy")[0].text == "EU rejects ( the plan ) . "
    assert stats["tokens_unspaced"] == 0
