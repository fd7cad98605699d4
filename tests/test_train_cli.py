"""The `train` command: spaCy's train through the package's command line."""


def test_train_command_passes_config_overrides_to_spacy(tmp_path, monkeypatch):
    # `python -m spacy_domain_ner train` is spaCy's train: the config, the output, the GPU and the
    # `--section.key value` overrides reach spacy.cli.train.train unchanged.
    from typer.testing import CliRunner

    from spacy_domain_ner.cli import app

    calls = []
    monkeypatch.setattr("spacy.cli.train.train", lambda config, output, *, use_gpu, overrides: calls.append((config, output, use_gpu, overrides)))
    config = tmp_path / "x.cfg"
    config.write_text("[paths]\n", encoding="utf8")
    result = CliRunner().invoke(app, ["train", str(config), "--output", str(tmp_path / "out"), "--training.max_steps", "7",
                                      "--gpu-id", "-1", "--paths.train", "corpus/train.spacy"])
    assert result.exit_code == 0, result.output
    assert calls == [(config, tmp_path / "out", -1, {"training.max_steps": 7, "paths.train": "corpus/train.spacy"})]
    result = CliRunner().invoke(app, ["train", str(tmp_path / "none.cfg"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1 and "none.cfg: no such config file" in result.output
