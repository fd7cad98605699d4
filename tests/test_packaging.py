import zipfile
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_domain_ner.cli import app
from spacy_domain_ner.packaging import build_plugin_wheel, pin_requirement, wheel_version

ROOT = Path(__file__).parent.parent


def metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()


def test_pin_requirement_replaces_any_plugin_range():
    reqs = ["spacy-transformers>=1.4.0,<1.5.0", "spacy_domain_ner>=0.1.0,<0.2.0"]
    assert pin_requirement(reqs, version="0.1.0") == ["spacy-transformers>=1.4.0,<1.5.0", "spacy-domain-ner==0.1.0"]
    assert pin_requirement([], version="0.2.1") == ["spacy-domain-ner==0.2.1"]
    with pytest.raises(ValueError, match="requirement 'not a requirement!'"):
        pin_requirement(["not a requirement!"], version="0.1.0")


def test_wheel_version():
    assert wheel_version(Path("dist/spacy_domain_ner-0.1.0-py3-none-any.whl")) == "0.1.0"
    with pytest.raises(ValueError, match="not a wheel file name"):
        wheel_version(Path("spacy_domain_ner.tar.gz"))


def test_build_plugin_wheel_rejects_other_trees(tmp_path):
    with pytest.raises(ValueError, match="missing setup.cfg"):
        build_plugin_wheel(source=tmp_path, output_dir=tmp_path / "out")


def test_package_builds_model_and_pinned_plugin_wheel(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner").add_label("COURT")
    nlp.add_pipe("legal_knowledge")  # a factory of this plugin: spacy package makes the model require it
    nlp.initialize()
    nlp.meta["name"] = "pipeline"
    nlp.to_disk(tmp_path / "model")
    before = (tmp_path / "model" / "meta.json").read_text()
    (tmp_path / "packages").mkdir()
    result = CliRunner().invoke(app, ["package", str(tmp_path / "model"), str(tmp_path / "packages"),
                                      "--name", "legal_ner", "--version", "0.1.0", "--source", str(ROOT)])
    assert result.exit_code == 0, result.output
    dist = tmp_path / "packages" / "en_legal_ner-0.1.0" / "dist"
    assert sorted(p.name for p in dist.glob("*.whl")) == ["en_legal_ner-0.1.0-py3-none-any.whl",
                                                          "spacy_domain_ner-0.1.0-py3-none-any.whl"]
    requires = [line for line in metadata(dist / "en_legal_ner-0.1.0-py3-none-any.whl").splitlines()
                if line.startswith("Requires-Dist:")]
    # exactly the plugin wheel shipped next to it, never a range an index could satisfy with other code
    assert "Requires-Dist: spacy-domain-ner==0.1.0" in requires
    assert not any("spacy-domain-ner>" in r or "spacy_domain_ner" in r for r in requires), requires
    assert any(r.startswith("Requires-Dist: spacy<") or r.startswith("Requires-Dist: spacy>") for r in requires), requires
    with zipfile.ZipFile(dist / "spacy_domain_ner-0.1.0-py3-none-any.whl") as plugin:
        names = plugin.namelist()
        entry_points = plugin.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "spacy_domain_ner/models/architectures.py" in names and not any("__pycache__" in n or n.startswith("tests/") for n in names)
    assert "legal_knowledge = spacy_domain_ner.knowledge.component:make_legal_knowledge" in entry_points
    assert (tmp_path / "model" / "meta.json").read_text() == before  # the trained pipeline is not touched
    # a second run replaces the plugin wheel instead of adding another version next to it
    stale = dist / "spacy_domain_ner-0.0.9-py3-none-any.whl"
    stale.write_bytes(b"")
    result = CliRunner().invoke(app, ["package", str(tmp_path / "model"), str(tmp_path / "packages"),
                                      "--name", "legal_ner", "--version", "0.1.0", "--source", str(ROOT)])
    assert result.exit_code == 0 and not stale.exists(), result.output


def test_package_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["package", str(tmp_path), str(tmp_path), "--name", "x", "--version", "0.1.0"])
    assert result.exit_code == 1 and "not a pipeline directory" in result.output


def test_package_int8_quantizes_at_load_with_float_weights(tmp_path):
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    from conftest import save_tiny_bert

    text = "The Securities and Exchange Commission sued Acme Holdings in New York ."
    bert = tmp_path / "bert"
    bert.mkdir()
    save_tiny_bert(bert, [text])
    config = load_config(ROOT / "configs" / "ner_trf.cfg", overrides={"paths.transformer": str(bert)}, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True)
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc(text), {"entities": [(4, 38, "GOVERNMENT")]})])
    nlp.to_disk(tmp_path / "model")
    trained = (tmp_path / "model" / "config.cfg").read_text()
    (tmp_path / "packages").mkdir()
    args = ["package", str(tmp_path / "model"), str(tmp_path / "packages"), "--name", "legal_ner", "--version", "0.1.0",
            "--source", str(ROOT)]
    result = CliRunner().invoke(app, [*args, "--int8=nope"])
    assert result.exit_code == 2 and "--int8 takes true or false" in result.output
    result = CliRunner().invoke(app, [*args, "--int8=true"])  # as the project passes vars.package_int8
    assert result.exit_code == 0 and "(int8 at load)" in result.output, result.output
    with zipfile.ZipFile(tmp_path / "packages" / "en_legal_ner-0.1.0" / "dist" / "en_legal_ner-0.1.0-py3-none-any.whl") as wheel:
        packaged = wheel.read("en_legal_ner/en_legal_ner-0.1.0/config.cfg").decode()
    assert '@architectures = "spacy_domain_ner.TransformerModel.v1"' in packaged and 'quantize = "qint8"' in packaged
    assert (tmp_path / "model" / "config.cfg").read_text() == trained  # the trained pipeline stays float
