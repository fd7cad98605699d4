"""Masked-LM pretraining: data reading and errors, head initialisation, training,
export (transformers + spaCy), checkpoints and exact resume (also after a real kill)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from spacy_domain_ner.pretraining import mlm_data
from spacy_domain_ner.pretraining import checkpoints as checkpoints_module
from spacy_domain_ner.pretraining import config as config_module
from spacy_domain_ner.pretraining import mlm as mlm_module
from spacy_domain_ner.pretraining import pretrain as pt
from spacy_domain_ner.cli import app
from spacy_domain_ner.cli import pretrain as _pretrain_command  # noqa: F401  (registers the command)
from spacy_domain_ner.corpus.formats.base import ConversionError

WORDS = ("the company shall pay lender borrower within thirty days of notice agreement court state delaware "
         "section act securities exchange commission party parties term terminate license fee").split()
SUBWORDS = ("##s", "##ed", "##ing")
SUBJECTS = ["the company", "the lender", "the borrower", "the party", "the court"]
VERBS = ["shall pay", "shall terminate", "shall license"]
OBJECTS = ["the fee within thirty days", "the agreement of the state of delaware", "the securities of the parties"]


def corpus(n_docs: int = 14) -> list:
    """Templated legal-ish documents of ~20-40 tokens, some words split into pieces (pays -> pay ##s)."""
    docs = []
    for d in range(n_docs):
        sents = []
        for s in range(2 + d % 3):
            k = d * 7 + s
            sents.append(f"{SUBJECTS[k % 5]} {VERBS[k % 3]} {OBJECTS[k % 3]} under section {['act', 'terms', 'notices'][k % 3]} .")
        docs.append(" ".join(sents))
    return docs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer BERT (hidden 32) saved WITHOUT an MLM head, like the offline MiniLM."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS, *SUBWORDS]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(root, safe_serialization=True)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("texts") / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in corpus()), encoding="utf8")
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model, texts):
    """The reference run (small_config, 12 steps) that interrupted runs must end up equal to."""
    out = tmp_path_factory.mktemp("uninterrupted") / "full"
    result = pt.pretrain([texts], out, config=small_config(tiny_model))
    assert result.finished and result.step == 12
    return out, result


def small_config(model: Path, **overrides) -> config_module.PretrainConfig:
    settings = dict(model=str(model), max_length=24, batch_size=4, max_steps=12, learning_rate=5e-3, warmup_steps=2,
                    heldout=0.25, eval_blocks=0, checkpoint_every=4, log_every=2, num_workers=0, device="cpu")
    settings.update(overrides)
    return config_module.PretrainConfig(**settings)


def final_state(run_dir: Path) -> dict:
    """Weights of the exported encoder and of the newest checkpoint (model + optimizer)."""
    ckpt = checkpoints_module.list_checkpoints(run_dir.with_name(run_dir.name + ".checkpoints"))[-1]
    state = {f"out.{k}": v for k, v in load_file(str(run_dir / "model.safetensors")).items()}
    state.update({f"ckpt.{k}": v for k, v in load_file(str(ckpt / "model.safetensors")).items()})
    state.update({f"opt.{k}": v for k, v in load_file(str(ckpt / "optimizer.safetensors")).items()})
    return state


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


# -- data --------------------------------------------------------------------

def test_read_jsonl_txt_and_folders(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one doc", "id": 7}\n\n{"text": "  "}\n{"text": "two"}\n', encoding="utf8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.txt").write_text("a plain text document\nwith two lines", encoding="utf8")
    (sub / "ignored.csv").write_text("x,y", encoding="utf8")
    docs = mlm_data.read_raw_docs([tmp_path])
    assert [d.text for d in docs] == ["one doc", "two", "a plain text document\nwith two lines"]
    assert docs[0].doc_id == "7" and docs[1].doc_id == "a.jsonl:4" and docs[1].location.endswith("a.jsonl:4")
    assert [d.text for d in mlm_data.read_raw_docs([sub / "b.txt"])] == ["a plain text document\nwith two lines"]
    # Raw line/paragraph separators inside JSON strings are text, not line breaks (CUAD has them).
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "page\u2028break\x85next-line\u2029para"}\r\n{"text": "next"}\r\n', encoding="utf8")
    assert [(d.text, d.doc_id) for d in mlm_data.read_raw_docs([odd])] == [("page\u2028break\x85next-line\u2029para", "odd.jsonl:1"), ("next", "odd.jsonl:2")]


@pytest.mark.parametrize("name,content,expected", [
    ("empty.jsonl", b"", "empty.jsonl: the file is empty"),
    ("blank.txt", b"  \n\n", "blank.txt: the file is empty"),
    ("notjson.jsonl", b'{"text": "ok"}\n{"text": oops}\n', "notjson.jsonl:2: not valid JSON"),
    ("notext.jsonl", b'{"text": "ok"}\n{"body": "x"}\n', "notext.jsonl:2: the record has no 'text' string (no such key)"),
    ("number.jsonl", b'{"text": 3}\n', "number.jsonl:1: the record has no 'text' string (a int)"),
    ("list.jsonl", b'["text"]\n', "list.jsonl:1: expected a JSON object"),
    ("allempty.jsonl", b'{"text": ""}\n{"text": " "}\n', "allempty.jsonl: no texts"),
    ("latin1.txt", "line one\ncaf\u00e9\n".encode("latin-1"), "latin1.txt:2: not valid UTF-8"),
    ("binary.txt", b"text\n\x00\x01\x02", "binary.txt:2: binary data"),
])
def test_bad_input_names_file_and_line(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConversionError) as err:
        mlm_data.read_raw_docs([path])
    assert str(err.value).startswith(str(tmp_path / expected.split(":")[0])) and expected in str(err.value)


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(ConversionError, match="no such file"):
        mlm_data.read_raw_docs([tmp_path / "nope.jsonl"])
    with pytest.raises(ConversionError, match="no .txt or .jsonl files"):
        mlm_data.read_raw_docs([tmp_path])


def test_cli_bad_input_exits_with_clear_error(tmp_path, tiny_model):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n', encoding="utf8")
    result = CliRunner().invoke(app, ["pretrain", str(bad), "-o", str(tmp_path / "out"), "--model", str(tiny_model)])
    assert result.exit_code == 1
    assert f"{bad}:2: not valid JSON" in result.output
    assert not (tmp_path / "out").exists()
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "fine"}\n{"text": "also fine"}\n', encoding="utf8")
    missing = CliRunner().invoke(app, ["pretrain", str(good), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "no-model")])
    assert missing.exit_code == 1 and "no-model does not exist or has no config.json" in missing.output


def test_heldout_split_is_deterministic_by_doc_id():
    docs = [mlm_data.RawDoc(doc_id=str(i), location=f"f:{i}", text=f"doc {i}") for i in range(200)]
    train, held = mlm_data.split_heldout(docs, fraction=0.1, seed=3)
    again_train, again_held = mlm_data.split_heldout(list(reversed(docs)), fraction=0.1, seed=3)
    assert {d.doc_id for d in held} == {d.doc_id for d in again_held}
    assert 5 <= len(held) <= 40 and len(train) + len(held) == 200
    assert {d.doc_id for d in mlm_data.split_heldout(docs, fraction=0.1, seed=4)[1]} != {d.doc_id for d in held}
    assert mlm_data.split_heldout(docs, fraction=0.0, seed=3) == (docs, [])
    tiny_train, tiny_held = mlm_data.split_heldout(docs[:2], fraction=0.001, seed=0)
    assert len(tiny_train) == 1 and len(tiny_held) == 1
    with pytest.raises(ValueError, match="at least 2 documents"):
        mlm_data.split_heldout(docs[:1], fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="held-out fraction"):
        mlm_data.split_heldout(docs, fraction=1.0, seed=0)


def test_pack_blocks_packs_short_docs_and_splits_long_ones(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = ["the company", "the lender shall pay the fee within thirty days of notice", "court"]
    blocks = mlm_data.pack_blocks(texts, tokenizer=tok, max_length=8)
    stream = [i for t in texts for i in tok(t, add_special_tokens=False)["input_ids"] + [tok.sep_token_id]][:-1]
    assert len(stream) == 16 and len(blocks) == 3  # 6 tokens of text per block
    assert blocks.lengths.tolist() == [8, 8, 6]
    assert blocks.ids[:, 0].tolist() == [tok.cls_token_id] * 3
    assert [int(blocks.ids[i, n - 1]) for i, n in enumerate(blocks.lengths)] == [tok.sep_token_id] * 3
    assert np.concatenate([blocks.ids[i, 1 : n - 1] for i, n in enumerate(blocks.lengths)]).tolist() == stream
    assert blocks.ids[2, 6:].tolist() == [tok.pad_token_id] * 2
    assert blocks.fingerprint() == mlm_data.pack_blocks(texts, tokenizer=tok, max_length=8).fingerprint()
    with pytest.raises(ValueError, match="at least 8"):
        mlm_data.pack_blocks(texts, tokenizer=tok, max_length=4)


def test_block_order_is_a_function_of_seed_and_position():
    order = mlm_data.BlockOrder(10, seed=1)
    first_epoch = order.blocks(0, 10)
    assert sorted(first_epoch) == list(range(10))
    assert order.blocks(13, 4) == mlm_data.BlockOrder(10, seed=1).blocks(13, 4)
    assert order.blocks(10, 10) != first_epoch  # a new permutation each epoch
    assert mlm_data.BlockOrder(10, seed=2).blocks(0, 10) != first_epoch


def test_whole_word_masking_masks_every_piece_and_is_seeded(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert mlm_data.is_wordpiece(tok)
    text = " ".join(["pays terminated licensing fees"] * 6)
    blocks = mlm_data.pack_blocks([text], tokenizer=tok, max_length=40)
    kwargs = dict(tokenizer=tok, whole_word=True, mlm_probability=0.3)
    batch = mlm_data.collate(blocks, [0], seed=5, **kwargs)
    again = mlm_data.collate(blocks, [0], seed=5, **kwargs)
    assert torch.equal(batch["input_ids"], again["input_ids"]) and torch.equal(batch["labels"], again["labels"])
    assert not torch.equal(mlm_data.collate(blocks, [0], seed=6, **kwargs)["labels"], batch["labels"])
    masked = (batch["labels"][0] != -100).tolist()
    pieces = tok.convert_ids_to_tokens(blocks.ids[0, : blocks.lengths[0]].tolist())
    assert any(masked)
    for i, piece in enumerate(pieces):
        if piece.startswith("##"):
            assert masked[i] == masked[i - 1], "a word was masked only in part"
    assert not masked[0] and not masked[len(pieces) - 1]  # never [CLS]/[SEP]
    assert batch["attention_mask"].tolist() == [[1] * len(pieces)]
    tokens = mlm_data.collate(blocks, [0], seed=5, tokenizer=tok, whole_word=False, mlm_probability=0.3)
    assert tokens["labels"].shape == batch["labels"].shape and not torch.equal(tokens["labels"], batch["labels"])


def test_is_wordpiece_is_false_without_word_pieces(tmp_path):
    from transformers import BertTokenizerFast

    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncourt\n", encoding="utf8")
    assert not mlm_data.is_wordpiece(BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")))


# -- model -------------------------------------------------------------------

def test_missing_mlm_head_is_initialised_and_tied(tiny_model):
    from transformers import AutoModel

    model, tokenizer, report = mlm_module.load_mlm_model(str(tiny_model))
    assert report["newly_initialised"] == sorted([
        "cls.predictions.bias", "cls.predictions.decoder.bias", "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.dense.weight"])
    assert report["decoder_tied"] and report["unused"] == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]
    head = model.cls.predictions
    assert head.decoder.weight is model.get_input_embeddings().weight
    assert torch.all(head.bias == 0) and torch.all(head.transform.LayerNorm.weight == 1)
    assert torch.all(head.transform.LayerNorm.bias == 0) and torch.all(head.transform.dense.bias == 0)
    assert 0.005 < float(head.transform.dense.weight.detach().std()) < 0.05  # initializer_range 0.02
    source = AutoModel.from_pretrained(tiny_model)
    assert torch.equal(model.get_input_embeddings().weight, source.get_input_embeddings().weight)


@pytest.mark.parametrize("tie", [True, False])
def test_untied_config_gets_its_missing_decoder_tied(tmp_path, tiny_model, tie):
    from transformers import AutoConfig, AutoModel, BertModel

    config = AutoConfig.from_pretrained(tiny_model, tie_word_embeddings=tie)
    BertModel(config).save_pretrained(tmp_path, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / name).write_bytes((tiny_model / name).read_bytes())
    model, _, report = mlm_module.load_mlm_model(str(tmp_path))
    assert report["decoder_tied"] and "cls.predictions.decoder.weight" not in report["newly_initialised"]
    assert model.cls.predictions.decoder.weight is model.get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight, AutoModel.from_pretrained(tmp_path).get_input_embeddings().weight)


def test_a_shipped_mlm_head_is_kept(tmp_path, tiny_model):
    from transformers import AutoConfig, BertForMaskedLM

    torch.manual_seed(1)
    source = BertForMaskedLM(AutoConfig.from_pretrained(tiny_model))
    with torch.no_grad():
        source.cls.predictions.bias.fill_(0.5)
    source.save_pretrained(tmp_path, safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tmp_path / name).write_bytes((tiny_model / name).read_bytes())
    model, _, report = mlm_module.load_mlm_model(str(tmp_path))
    assert report["newly_initialised"] == [] and report["decoder_tied"]
    assert torch.all(model.cls.predictions.bias == 0.5)
    assert torch.equal(model.cls.predictions.transform.dense.weight, source.cls.predictions.transform.dense.weight)


def test_sparse_head_loss_equals_the_full_forward(tiny_model):
    model, tokenizer, _ = mlm_module.load_mlm_model(str(tiny_model))
    model.eval()
    blocks = mlm_data.pack_blocks(corpus(4), tokenizer=tokenizer, max_length=24)
    batch = mlm_data.collate(blocks, [0, 1, 2], tokenizer=tokenizer, whole_word=False, mlm_probability=0.3, seed=2)
    sparse = mlm_module.MaskedLMLoss(model)
    full = mlm_module.MaskedLMLoss(model)
    full.head = None  # the fallback for heads it does not know: HF's own forward and loss
    with torch.no_grad():
        (a, n), (b, m) = sparse(**batch), full(**batch)
    assert int(n) == int(m) == int((batch["labels"] != -100).sum()) > 0
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_optimizer_state_round_trips_through_safetensors():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    tensors, meta = checkpoints_module.optimizer_to_safetensors(opt.state_dict())
    json.dumps(meta)  # JSON, no pickle
    restored = checkpoints_module.optimizer_from_safetensors(tensors, json.loads(json.dumps(meta)))
    fresh = torch.optim.AdamW(model.parameters(), lr=0.1)
    fresh.load_state_dict(restored)
    for a, b in zip(opt.state_dict()["state"].values(), fresh.state_dict()["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert fresh.state_dict()["param_groups"][0]["betas"] == opt.state_dict()["param_groups"][0]["betas"]


def test_precision_and_config_checks():
    assert mlm_module.resolve_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="needs a GPU"):
        mlm_module.resolve_precision("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision must be"):
        config_module.PretrainConfig(precision="int8").check()
    with pytest.raises(ValueError, match="batch_size"):
        config_module.PretrainConfig(batch_size=0).check()
    with pytest.raises(ValueError, match="masking rate"):
        config_module.PretrainConfig(mlm_probability=1.5).check()


# -- training -----------------------------------------------------------------

def test_pretrain_lowers_loss_and_exports_a_loadable_encoder(tmp_path, tiny_model, texts):
    import spacy
    from spacy.tokens import DocBin
    from transformers import AutoModel

    nlp_blank = spacy.blank("en")
    dev = tmp_path / "dev.spacy"
    DocBin(docs=[nlp_blank(t) for t in corpus(4)]).to_disk(dev)
    out = tmp_path / "adapted"
    metrics_file = tmp_path / "metrics" / "pretrain.json"
    result = CliRunner().invoke(app, [
        "pretrain", str(texts), "-o", str(out), "--model", str(tiny_model), "--ner-dev", str(dev), "--metrics", str(metrics_file),
        "--max-length", "24", "-b", "4", "--max-steps", "30", "--lr", "5e-3", "--warmup-steps", "3", "--heldout", "0.25",
        "--eval-blocks", "0", "--checkpoint-every", "10", "--log-every", "5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "heldout: perplexity" in result.output
    metrics = json.loads(metrics_file.read_text())
    assert metrics == json.loads((out / checkpoints_module.METRICS_NAME).read_text())
    for name in ("heldout", "ner_dev"):
        before, after = metrics[name]["before"], metrics[name]["after"]
        assert after["loss"] < before["loss"] - 0.5, (name, before, after)
        assert after["masked_tokens"] == before["masked_tokens"] > 0  # same fixed masks
        assert after["perplexity"] == pytest.approx(np.exp(after["loss"]))
    curve = [loss for _, loss in metrics["train_loss"]]
    assert len(curve) == 6 and curve[-1] < curve[0]
    assert metrics["head"]["decoder_tied"] and metrics["steps"] == 30 and metrics["tokens_seen"] > 0
    assert metrics["last_run"]["tokens_per_second"] > 0

    # A bare encoder: no MLM head, all weights (pooler included) present for AutoModel.
    weights = load_file(str(out / "model.safetensors"))
    assert not any(k.startswith("cls.") for k in weights) and "pooler.dense.weight" in weights
    encoder, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    source = AutoModel.from_pretrained(tiny_model)
    assert not torch.equal(encoder.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    assert torch.equal(encoder.pooler.dense.weight, source.pooler.dense.weight)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert not list(tmp_path.glob(".adapted*"))

    # And inside a spaCy pipeline through [paths.transformer] = that directory.
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {
        "@architectures": "spacy_domain_ner.TransformerModel.v1", "name": str(out),
        "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12}}})
    nlp.initialize()
    doc = nlp("The company shall pay the lender within thirty days.")
    assert doc._.trf_data.width == 32 and doc._.trf_data.tensors[0].shape[-1] == 32

    # The output exists now: a second run refuses to overwrite it unless asked.
    again = CliRunner().invoke(app, ["pretrain", str(texts), "-o", str(out), "--model", str(tiny_model)])
    assert again.exit_code == 1 and "pass --overwrite" in again.output


def test_resume_after_stop_ends_in_the_same_state(tmp_path, tiny_model, texts, uninterrupted):
    full_dir, full = uninterrupted
    stopped = pt.pretrain([texts], tmp_path / "split", config=small_config(tiny_model, max_steps_this_run=5))
    assert not stopped.finished and stopped.step == 5 and stopped.checkpoint.name == "step-000000005"
    assert not (tmp_path / "split").exists()
    with pytest.raises(ValueError, match="pass --resume"):
        pt.pretrain([texts], tmp_path / "split", config=small_config(tiny_model))
    with pytest.raises(ValueError, match=r"settings differ.*learning_rate"):
        pt.pretrain([texts], tmp_path / "split", config=small_config(tiny_model, learning_rate=1e-3), resume=True)
    resumed = pt.pretrain([texts], tmp_path / "split", config=small_config(tiny_model), resume=True)
    assert resumed.finished and resumed.step == 12
    assert_same_state(final_state(full_dir), final_state(tmp_path / "split"))
    assert resumed.metrics["heldout"] == full.metrics["heldout"]
    assert [n.name for n in checkpoints_module.list_checkpoints(tmp_path / "split.checkpoints")] == ["step-000000008", "step-000000012"]


def test_changed_settings_start_over_with_restart_on_change(tmp_path, tiny_model, texts, uninterrupted, caplog):
    # The project's pretrain command always resumes: a finished (or stopped) run with other settings
    # must not block it, and must not leak into the new run.
    full_dir, full = uninterrupted
    old = pt.pretrain([texts], tmp_path / "run", config=small_config(tiny_model, learning_rate=1e-3, max_steps_this_run=5))
    assert not old.finished and old.step == 5
    with caplog.at_level("WARNING", logger=pt.logger.name):
        result = pt.pretrain([texts], tmp_path / "run", config=small_config(tiny_model), resume=True, restart_on_change=True)
    assert "Starting over" in caplog.text and "learning_rate 0.001 -> 0.005" in caplog.text
    assert result.finished and result.step == 12 and result.metrics["heldout"] == full.metrics["heldout"]
    assert_same_state(final_state(full_dir), final_state(tmp_path / "run"))
    assert [n.name for n in checkpoints_module.list_checkpoints(tmp_path / "run.checkpoints")] == ["step-000000008", "step-000000012"]
    caplog.clear()
    with caplog.at_level("INFO", logger=pt.logger.name):  # same settings: the finished run is resumed, not redone
        again = pt.pretrain([texts], tmp_path / "run", config=small_config(tiny_model), resume=True, restart_on_change=True, overwrite=True)
    assert again.finished and "Starting over" not in caplog.text and "Resuming from" in caplog.text


def test_head_only_steps_leave_the_encoder_untouched(tmp_path, tiny_model, texts):
    result = pt.pretrain([texts], tmp_path / "head", config=small_config(tiny_model, max_steps=4, head_only_steps=4))
    source = load_file(str(tiny_model / "model.safetensors"))
    trained = load_file(str(tmp_path / "head" / "model.safetensors"))
    assert trained.keys() == source.keys()
    assert all(torch.equal(trained[k], source[k]) for k in source)  # encoder, embeddings (= tied decoder), pooler
    head = load_file(str(checkpoints_module.list_checkpoints(tmp_path / "head.checkpoints")[-1] / "model.safetensors"))
    assert float(head["cls.predictions.bias"].abs().sum()) > 0  # the head did learn (it started at zero)
    assert result.metrics["heldout"]["after"]["loss"] < result.metrics["heldout"]["before"]["loss"]
    pt.pretrain([texts], tmp_path / "mixed", config=small_config(tiny_model, max_steps=4, head_only_steps=2))
    mixed = load_file(str(tmp_path / "mixed" / "model.safetensors"))
    assert not torch.equal(mixed["embeddings.word_embeddings.weight"], source["embeddings.word_embeddings.weight"])


def test_sigterm_checkpoints_and_stops(tmp_path, tiny_model, texts, monkeypatch):
    forward = mlm_module.MaskedLMLoss.forward
    calls = {"n": 0}

    def forward_then_term(self, **batch):
        calls["n"] += 1
        if self.training and calls["n"] == 8:
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(self, **batch)

    monkeypatch.setattr(mlm_module.MaskedLMLoss, "forward", forward_then_term)
    handler = signal.getsignal(signal.SIGTERM)
    result = pt.pretrain([texts], tmp_path / "out", config=small_config(tiny_model, checkpoint_every=100))
    assert not result.finished and 0 < result.step < 12
    assert result.checkpoint == checkpoints_module.list_checkpoints(tmp_path / "out.checkpoints")[-1]
    assert signal.getsignal(signal.SIGTERM) is handler  # the run's handler is removed again
    resumed = pt.pretrain([texts], tmp_path / "out", config=small_config(tiny_model, checkpoint_every=100), resume=True)
    assert resumed.finished and resumed.step == 12


KILLER = textwrap.dedent("""
    import os, signal, sys
    import spacy_domain_ner.pretraining.checkpoints as pt
    import spacy_domain_ner.cli.pretrain
    from spacy_domain_ner.cli import app

    save_model = pt.save_model

    def save_then_die(model, filename, **kwargs):
        # Power cut while the step-8 checkpoint is half written.
        if "step-000000008" in str(filename):
            os.kill(os.getpid(), signal.SIGKILL)
        return save_model(model, filename, **kwargs)

    pt.save_model = save_then_die
    app(sys.argv[1:])
""")


def test_resume_after_a_real_kill_ends_in_the_same_state(tmp_path, tiny_model, texts, uninterrupted):
    args = [str(texts), "--model", str(tiny_model), "--max-length", "24", "-b", "4", "--max-steps", "12",
            "--lr", "5e-3", "--warmup-steps", "2", "--heldout", "0.25", "--eval-blocks", "0",
            "--checkpoint-every", "4", "--log-every", "2", "--device", "cpu"]
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER, encoding="utf8")
    killed = subprocess.run([sys.executable, str(killer), "pretrain", *args, "-o", str(tmp_path / "killed")],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ckpts = tmp_path / "killed.checkpoints"
    assert [p.name for p in checkpoints_module.list_checkpoints(ckpts)] == ["step-000000004"]
    assert list(ckpts.glob(".tmp-step-000000008-*")), "the half-written checkpoint should be left behind"
    assert not (tmp_path / "killed").exists()

    result = CliRunner().invoke(app, ["pretrain", *args, "-o", str(tmp_path / "killed"), "--resume"])
    assert result.exit_code == 0, result.output
    assert not list(ckpts.glob(".tmp-*")), "the resumed run removes the killed run's partial checkpoint"
    assert_same_state(final_state(uninterrupted[0]), final_state(tmp_path / "killed"))


@pytest.mark.slow
def test_torchrun_two_processes_match_gradient_accumulation(tmp_path, tiny_model, texts):
    """DDP (2 CPU processes, gloo) sees the same global batches, masks and dropout as 1 process x 2 accumulation."""
    args = [str(texts), "--model", str(tiny_model), "--max-length", "24", "-b", "2", "--max-steps", "6", "--lr", "5e-3",
            "--warmup-steps", "1", "--heldout", "0.25", "--eval-blocks", "0", "--checkpoint-every", "3", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = tmp_path / "launch.py"
    launcher.write_text("import sys\nimport spacy_domain_ner.cli.pretrain\nfrom spacy_domain_ner.cli import app\napp(sys.argv[1:])\n")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          str(launcher), "pretrain", *args, "-o", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = CliRunner().invoke(app, ["pretrain", *args, "--grad-accum", "2", "-o", str(tmp_path / "single")])
    assert single.exit_code == 0, single.output
    ddp_metrics = json.loads((tmp_path / "ddp" / checkpoints_module.METRICS_NAME).read_text())
    assert ddp_metrics["settings"]["world_size"] == 2
    a = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    b = load_file(str(tmp_path / "single" / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
