import pytest

from spacy_domain_ner.corpus.formats.tags import TagError, detect_scheme, split_tag, tags_to_spans


def test_split_tag():
    assert split_tag("O") == ("O", "")
    assert split_tag("B-LEGISLATION/ACT") == ("B", "LEGISLATION/ACT")
    for bad in ("P", "X-ORG", "I-", "ORG"):
        with pytest.raises(TagError, match="unknown tag"):
            split_tag(bad, index=3)


@pytest.mark.parametrize(
    "tags,expected",
    [
        # IOB1: I- starts an entity, B- only separates two adjacent entities of one label.
        (["I-ORG", "I-ORG", "B-ORG", "O", "I-PER"], "iob1"),
        (["B-ORG", "I-ORG", "O", "B-PER"], "iob2"),
        (["I-ORG", "I-ORG", "O", "I-PER"], "io"),
        (["B-ORG", "L-ORG", "U-PER"], "biluo"),
        (["B-ORG", "E-ORG", "S-PER"], "iobes"),
    ],
)
def test_detect_scheme(tags, expected):
    assert detect_scheme(tags) == expected


def test_iob1_adjacent_entities():
    spans, repairs = tags_to_spans(["I-ORG", "I-ORG", "B-ORG", "O", "I-PER", "I-LOC"], scheme="iob1")
    assert spans == [(0, 2, "ORG"), (2, 3, "ORG"), (4, 5, "PER"), (5, 6, "LOC")]
    assert repairs == []


def test_iob2_repairs_i_without_b():
    spans, repairs = tags_to_spans(["O", "I-ORG", "I-ORG", "B-PER"], scheme="iob2")
    assert spans == [(1, 3, "ORG"), (3, 4, "PER")]
    assert [index for index, _ in repairs] == [1]


def test_io_merges_and_rejects_b():
    spans, _ = tags_to_spans(["I-PER", "I-PER", "O"], scheme="io")
    assert spans == [(0, 2, "PER")]
    with pytest.raises(TagError, match="does not use"):
        tags_to_spans(["B-PER"], scheme="io")


@pytest.mark.parametrize("scheme,tags", [("biluo", ["U-PER", "B-ORG", "I-ORG", "L-ORG"]), ("iobes", ["S-PER", "B-ORG", "I-ORG", "E-ORG"])])
def test_biluo_iobes(scheme, tags):
    spans, repairs = tags_to_spans(tags, scheme=scheme)
    assert spans == [(0, 1, "PER"), (1, 4, "ORG")]
    assert repairs == []


def test_biluo_repairs_unclosed_entities():
    spans, repairs = tags_to_spans(["B-ORG", "I-ORG", "O", "B-PER", "B-LOC", "I-LOC"], scheme="biluo")
    assert spans == [(0, 2, "ORG"), (3, 4, "PER"), (4, 6, "LOC")]
    assert [index for index, _ in repairs] == [2, 4, 6]


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        tags_to_spans(["O"], scheme="bio9")
