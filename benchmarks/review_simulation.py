"""Is a reviewer's hour better spent on the documents the model is least sure of than on random ones?

A simulation on a labelled corpus, its gold annotation standing in for the reviewer (the review
loop of `docs/annotation.md`):

1. the training documents (Docs grouped by `doc_id`) are split, seeded, into a start set
   (`--start-share`) and a pool;
2. the recipe is trained on the start set (`python -m spacy_domain_ner train CONFIG`, with the
   training overrides given after `--`);
3. the start model, with an `entity_confidence` component (uncalibrated: only the order counts),
   annotates the pool; each strategy orders the pool's documents (`annotation.review.order_records`:
   `lowest-mean` and the others, or `random`) and takes documents until their gold entities reach
   each budget (`--budgets`, cumulative) — those documents are "corrected": their gold Docs join
   the training set;
4. for each strategy and budget, training continues from the start model on the start set plus the
   corrected documents (`configs/ner_update.cfg`, `--update-steps`), as the `update` workflow does,
   and is scored on dev (`evaluate`, whole documents);
5. `compare` gives every row's paired interval against random at the same budget; OUTPUT.json,
   OUTPUT.md and OUTPUT.png (dev F1 against corrected entities) are written, with each training's
   CPU time.

    python benchmarks/review_simulation.py corpus/legal/train.spacy corpus/legal/dev.spacy -o OUT \\
        --budgets 250,500 -- --training.batcher.size 2000 --training.max_steps 1000 --training.eval_frequency 200
"""
import argparse
import json
import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spacy_domain_ner.annotation.review import STRATEGIES, order_records  # noqa: E402
from spacy_domain_ner.evaluation.charts import new_figure, to_png  # noqa: E402


def group_docs(docs: Sequence[Any]) -> Dict[str, List[Any]]:
    """Docs by document id (`user_data["doc_id"]`; a Doc without one is a document of its own), in corpus order."""
    groups: Dict[str, List[Any]] = {}
    for index, doc in enumerate(docs):
        key = doc.user_data.get("doc_id")
        groups.setdefault(f"#{index}" if key is None else str(key), []).append(doc)
    return groups


def split_groups(ids: Sequence[str], *, share: float, seed: int) -> Tuple[List[str], List[str]]:
    """A seeded split of document ids into the start set (`share` of them, at least one) and the pool (at least one)."""
    if not 0 < share < 1 or len(ids) < 2:
        raise ValueError(f"need a share in (0, 1) and two documents or more, not {share} and {len(ids)}")
    shuffled = list(ids)
    random.Random(seed).shuffle(shuffled)
    n_start = min(max(1, round(share * len(ids))), len(ids) - 1)
    return shuffled[:n_start], shuffled[n_start:]


def select(records: List[Dict[str, Any]], *, strategy: str, budget: int, seed: int) -> List[str]:
    """The pool documents a strategy sends to review, in order, until their gold entities reach `budget`.

    records (List[Dict[str, Any]]): Per pool document: "id", "entities" (the model's, with
        "confidence") and "gold" (its number of gold entities).
    RETURNS (List[str]): The selected ids.
    """
    chosen, total = [], 0
    for record in order_records(records, strategy=strategy, seed=seed):
        if total >= budget:
            break
        chosen.append(record["id"])
        total += record["gold"]
    return chosen


def pool_records(nlp: Any, groups: Dict[str, List[Any]], pool: Sequence[str]) -> List[Dict[str, Any]]:
    """The pool documents annotated by the start model: its entities with their confidence, and the gold count."""
    records = []
    for doc_id in pool:
        docs = groups[doc_id]
        predicted = nlp.pipe([doc.text for doc in docs])
        entities = [{"confidence": ent._.confidence} for doc in predicted for ent in doc.ents]
        records.append({"id": doc_id, "entities": entities, "gold": sum(len(doc.ents) for doc in docs)})
    return records


def run(command: List[str], log: Path) -> float:
    """Run a command with its output in `log`; RETURNS the CPU seconds its process tree used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w", encoding="utf8") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({status}); see {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def write_docbin(docs: Sequence[Any], path: Path) -> Path:
    from spacy.tokens import DocBin

    path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=list(docs), store_user_data=True).to_disk(path)
    return path


def plot(rows: List[Dict[str, Any]], start_f: float) -> bytes:
    fig = new_figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    for strategy in sorted({row["strategy"] for row in rows}):
        points = sorted((row["entities"], row["f"]) for row in rows if row["strategy"] == strategy)
        ax.plot([0] + [p[0] for p in points], [start_f] + [p[1] for p in points], marker="o", label=strategy)
    ax.set_xlabel("corrected gold entities")
    ax.set_ylabel("dev entity F1")
    ax.legend()
    return to_png(fig)


def markdown(result: Dict[str, Any]) -> str:
    lines = ["| strategy | budget | documents | corrected entities | dev F1 | against random | CPU s |",
             "|---|---:|---:|---:|---:|---|---:|",
             f"| start model | 0 | {result['start']['documents']} (start set) | 0 | {100 * result['start']['f']:.2f} | | {result['start']['cpu_seconds']:.0f} |"]
    for row in result["rows"]:
        against = row.get("against_random")
        interval = "" if not against else (f"{100 * against['difference']:+.2f}" + (
            "" if against["low"] is None else f" ({100 * against['low']:+.2f} to {100 * against['high']:+.2f})"))
        lines.append(f"| {row['strategy']} | {row['budget']} | {len(row['documents'])} | {row['entities']} | "
                     f"{100 * row['f']:.2f} | {interval} | {row['cpu_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def simulate(train: Path, dev: Path, output: Path, *, config: Path, budgets: Sequence[int], strategies: Sequence[str],
             start_share: float, seed: int, update_steps: int, overrides: Sequence[str]) -> Dict[str, Any]:
    """Run the simulation (module docstring) and write OUTPUT.json, .md and .png. RETURNS the result."""
    import spacy

    from spacy_domain_ner.cli.compare import compare_files
    from spacy_domain_ner.evaluation.evaluate import load_gold

    if "random" not in strategies:
        raise ValueError("the strategies must include random, the baseline every row is compared with")
    work = output.parent / f"{output.name}_work"
    groups = group_docs(load_gold(train))
    start_ids, pool = split_groups(list(groups), share=start_share, seed=seed)
    start_path = write_docbin([doc for i in start_ids for doc in groups[i]], work / "start.spacy")
    python = [sys.executable, "-m", "spacy_domain_ner"]
    start_model = work / "start"
    cpu = run(python + ["train", str(config), "--output", str(start_model), "--paths.train", str(start_path),
                        "--paths.dev", str(dev), *overrides], work / "start.log")

    def score(model: Path, name: str) -> Path:
        metrics = work / f"{name}.json"
        run(python + ["evaluate", str(model), str(dev), "--output", str(metrics)], work / f"{name}.eval.log")
        return metrics

    start_metrics = score(start_model / "model-best", "start")
    nlp = spacy.load(start_model / "model-best")
    nlp.add_pipe("entity_confidence", before="ner")
    records = pool_records(nlp, groups, pool)
    gold = {record["id"]: record["gold"] for record in records}
    rows: List[Dict[str, Any]] = []
    for budget in budgets:
        metrics_by_strategy: Dict[str, Path] = {}
        for strategy in strategies:
            chosen = select(records, strategy=strategy, budget=budget, seed=seed)
            name = f"{strategy}_{budget}"
            merged = write_docbin([doc for i in start_ids + chosen for doc in groups[i]], work / f"{name}.spacy")
            model = work / name
            seconds = run(python + ["train", str(ROOT / "configs" / "ner_update.cfg"), "--output", str(model),
                                    "--paths.source", str(start_model / "model-best"), "--paths.train", str(merged),
                                    "--paths.dev", str(dev), *overrides, "--training.max_steps", str(update_steps)],
                          work / f"{name}.log")
            metrics_by_strategy[strategy] = score(model / "model-best", name)
            f = json.loads(metrics_by_strategy[strategy].read_text(encoding="utf8"))["ents_f"] or 0.0
            rows.append({"strategy": strategy, "budget": budget, "documents": chosen,
                         "entities": sum(gold[i] for i in chosen), "f": f, "cpu_seconds": seconds})
        compared = compare_files([metrics_by_strategy["random"]] + [metrics_by_strategy[s] for s in strategies if s != "random"])
        for strategy, against in zip([s for s in strategies if s != "random"], compared["rows"]):
            next(r for r in rows if r["strategy"] == strategy and r["budget"] == budget)["against_random"] = against
    start_f = json.loads(start_metrics.read_text(encoding="utf8"))["ents_f"] or 0.0
    result = {"train": str(train), "dev": str(dev), "config": str(config), "seed": seed, "start_share": start_share,
              "update_steps": update_steps, "overrides": list(overrides),
              "start": {"documents": len(start_ids), "pool": len(pool), "f": start_f, "cpu_seconds": cpu}, "rows": rows}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf8")
    output.with_suffix(".md").write_text(markdown(result), encoding="utf8")
    output.with_suffix(".png").write_bytes(plot(rows, start_f))
    return result


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    overrides: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, overrides = argv[:at], argv[at + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("train", type=Path, help="Training corpus (.spacy, Docs with doc_id)")
    parser.add_argument("dev", type=Path, help="Dev corpus (.spacy)")
    parser.add_argument("--output", "-o", type=Path, default=Path("benchmarks/out/review_simulation"), help="Writes OUTPUT.json, .md and .png")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ner_hybrid.cfg", help="Config of the start model")
    parser.add_argument("--budgets", default="250,500", help="Gold entities corrected, comma-separated (each a row per strategy)")
    parser.add_argument("--strategies", default="lowest-mean,random", help=f"Of {', '.join(STRATEGIES)}; random is required")
    parser.add_argument("--start-share", type=float, default=0.5, help="Share of the training documents in the start set")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and of the random order")
    parser.add_argument("--update-steps", type=int, default=400, help="Steps of continued training per row")
    args = parser.parse_args(argv)
    result = simulate(args.train, args.dev, args.output, config=args.config,
                      budgets=[int(b) for b in args.budgets.split(",")], strategies=args.strategies.split(","),
                      start_share=args.start_share, seed=args.seed, update_steps=args.update_steps, overrides=overrides)
    print(markdown(result))


if __name__ == "__main__":
    main()
