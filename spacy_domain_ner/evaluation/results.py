"""Reading the results the report is built from: metrics JSONs by (model, test set), training times and
training meta, and the cross-domain matrix computed from them.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import srsly

# The workflow's variants, in ablation order, with the step each one adds.
VARIANT_TITLES = {
    "news": "baseline: general model (news)",
    "baseline": "baseline",
    "legal": "+ domain data (legal)",
    "domain": "+ domain data",
    "dapt": "+ domain-adaptive pretraining",
    "adversarial": "+ adversarial training",
    "multitask": "+ multi-task (shared transformer, news head)",
    "mixed": "+ mixed-domain data (news mapped to legal labels)",
    "fusion": "+ knowledge fusion",
}


Key = Tuple[str, str]  # (model, test set)


def load_metrics(path: Path) -> Dict[str, Any]:
    """Read and check one metrics JSON.

    path (Path): The file.
    RETURNS (Dict[str, Any]): The metrics, with `ents_f` a fraction or None.
    """
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or "ents_f" not in data:
        raise ValueError(f"{path}: not a metrics file (no 'ents_f' key)")
    f = data["ents_f"]
    if f is not None and (isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1):
        raise ValueError(f"{path}: ents_f must be a fraction in [0, 1] or null, not {f!r}")
    for key, kind in (("ents_per_type", dict), ("robustness", dict), ("training_performance", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise ValueError(f"{path}: '{key}' must be a JSON object")
    return data


def parse_name(stem: str, *, default_test: str = "dev") -> Key:
    """(model, test set) of a metrics file stem: `<model>_on_<testset>` or `<model>`.

    stem (str): The file name without `.json`.
    default_test (str): The test set of a plain `<model>`.
    RETURNS (Key): (model, test set).
    """
    parts = stem.split("_on_")
    if len(parts) == 1 and stem:
        return stem, default_test
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f"{stem}: expected <model>_on_<testset> or <model>")


def collect_metrics(
    *, dirs: Sequence[Path] = (), specs: Sequence[str] = (), default_test: str = "dev"
) -> Tuple[Dict[Key, Dict[str, Any]], Dict[Key, Path], Dict[str, float]]:
    """Load the metrics of directories (see the module docstring) and of explicit specs.

    dirs (Sequence[Path]): Metrics directories.
    specs (Sequence[str]): `MODEL=PATH` or `MODEL:TESTSET=PATH`; they override the directories.
    default_test (str): The test set of `<model>.json` and of `MODEL=PATH`.
    RETURNS (Tuple): metrics and source file per (model, test set); training seconds per model.
    """
    found: Dict[Key, Path] = {}
    times: Dict[str, float] = {}
    for directory in dirs:
        if not Path(directory).is_dir():
            raise ValueError(f"{directory}: no such metrics directory")
        for path in sorted(Path(directory).glob("*.json")):
            if path.name.endswith(".time.json"):
                times.update(load_times(path, model=path.name[: -len(".time.json")]))
                continue
            try:
                key = parse_name(path.stem, default_test=default_test)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
            if key in found:
                raise ValueError(f"{path}: {key[0]} on {key[1]} is also in {found[key]}")
            found[key] = path
    for spec in specs:
        name, sep, path = spec.partition("=")
        model, _, test = name.partition(":")
        if not sep or not model or not path or "_on_" in model:
            raise ValueError(f"--metrics {spec!r}: expected MODEL=PATH or MODEL:TESTSET=PATH")
        found[(model, test or default_test)] = Path(path)
    metrics = {}
    for key, path in found.items():
        if not path.is_file():
            raise ValueError(f"{path}: no such metrics file")
        metrics[key] = load_metrics(path)
    return metrics, found, times


def load_times(path: Path, *, model: Optional[str] = None) -> Dict[str, float]:
    """Training seconds: `{"seconds": N}` (or a bare number) for one model, else `{model: N, ...}`.

    path (Path): The JSON file.
    model (Optional[str]): The model of a one-model file (`<model>.time.json`).
    RETURNS (Dict[str, float]): model -> seconds.
    """
    try:
        data = srsly.read_json(path)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if model is not None:
        data = {model: data.get("seconds") if isinstance(data, dict) else data}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of model -> seconds")
    for name, seconds in data.items():
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{path}: the training time of {name!r} must be a number of seconds, not {seconds!r}")
    return {name: float(seconds) for name, seconds in data.items()}


def load_training_meta(training_dir: Path, models: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The `performance` of `training_dir/<model>/model-best/meta.json`, for the models that have one.

    training_dir (Path): spaCy's training output root.
    models (Sequence[str]): The models.
    RETURNS (Dict[str, Dict[str, Any]]): model -> performance (ents_f etc. as fractions).
    """
    result = {}
    for model in models:
        path = Path(training_dir) / model / "model-best" / "meta.json"
        if path.is_file():
            try:
                meta = srsly.read_json(path)
            except ValueError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
            if not isinstance(meta, dict) or not isinstance(meta.get("performance") or {}, dict):
                raise ValueError(f"{path}: expected a spaCy meta.json with a 'performance' object")
            result[model] = meta.get("performance") or {}
    return result


def training_meta_from_metrics(metrics: Mapping[Key, Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The dev scores at training per model, from the `training_performance` of its metrics files.

    metrics (Mapping[Key, Mapping[str, Any]]): Metrics per (model, test set).
    RETURNS (Dict[str, Dict[str, Any]]): model -> performance, for the models that have one.
    """
    result: Dict[str, Dict[str, Any]] = {}
    for (model, _), data in sorted(metrics.items()):
        if data.get("training_performance"):
            result.setdefault(model, dict(data["training_performance"]))
    return result


def cross_domain_matrix(
    metrics: Mapping[Key, Mapping[str, Any]], *, in_domain: Optional[Mapping[str, str]] = None,
    general: str = "news", legal_test: str = "legal",
) -> Optional[Dict[str, Any]]:
    """Entity F1 of each model on each in-domain test set, the gaps and the capability misalignment.

    metrics (Mapping[Key, Mapping[str, Any]]): Metrics per (model, test set).
    in_domain (Optional[Mapping[str, str]]): model -> its own test set, for models whose test set
        is named otherwise; every other model's own test set is the one of its name.
    general (str): The general (news) model.
    legal_test (str): The legal test set.
    RETURNS (Optional[Dict[str, Any]]): None without two models on their in-domain test sets; else
        models, test_sets, matrix {model: {test: F1 or None}}, per_model {model: in_domain_test,
        in_domain_f, cross_domain_f, gap} and misalignment (None when its cells are missing).
    """
    f1 = {key: m.get("ents_f") for key, m in metrics.items()}
    in_domain = {**{model: model for model, test in f1 if model == test}, **(in_domain or {})}
    homes = {m: t for m, t in in_domain.items() if f1.get((m, t)) is not None}
    if len(homes) < 2:
        return None
    models = sorted(homes)
    tests = sorted(set(homes.values()))
    matrix = {m: {t: f1.get((m, t)) for t in tests} for m in models}
    per_model = {}
    for m in models:
        others = [matrix[m][t] for t in tests if t != homes[m] and matrix[m][t] is not None]
        cross = sum(others) / len(others) if others else None
        per_model[m] = {
            "in_domain_test": homes[m], "in_domain_f": matrix[m][homes[m]], "cross_domain_f": cross,
            "gap": None if cross is None else matrix[m][homes[m]] - cross,
        }
    misalignment = None
    own = homes.get(general)
    if own is not None and own != legal_test and f1.get((general, legal_test)) is not None:
        own_f, legal_f = f1[(general, own)], f1[(general, legal_test)]
        misalignment = {"model": general, "own_test": own, "legal_test": legal_test,
                        "own_f": own_f, "legal_f": legal_f, "value": own_f - legal_f}
    return {"models": models, "test_sets": tests, "matrix": matrix, "per_model": per_model,
            "misalignment": misalignment}


def order_variants(models: Sequence[str]) -> List[str]:
    """The workflow's variants in ablation order (VARIANT_TITLES), then the others alphabetically."""
    known = list(VARIANT_TITLES)
    return sorted(set(models), key=lambda m: (known.index(m) if m in known else len(known), m))
