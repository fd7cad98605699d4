"""Package a trained pipeline so that what is handed over installs alone.

`spacy package` makes the model wheel require every package whose registered functions the
config uses, here `spacy-domain-ner>=0.1.0,<0.2.0`: a name on no package index, so the wheel
alone cannot be installed, and should somebody register that name, pip would install their
code instead of ours. `package_pipeline` therefore builds this plugin's own wheel into the same
`dist/` folder as the model wheel and pins the model's requirement to exactly that wheel's
version, so that

    pip install packages/en_legal_ner-0.1.0/dist/*.whl

installs the two files together and takes everything else (spaCy, spacy-transformers, torch,
...) from the package index. The pipeline is staged in a temporary copy whose meta.json
carries the pin and, with `quantize`, whose config quantizes the transformer at load time
(`spacy_domain_ner.quantize.load_time_overrides`); the trained pipeline is left untouched.
"""
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import srsly

PLUGIN = "spacy-domain-ner"
# What a wheel of the plugin needs from its source tree (setup.cfg reads README.md).
PLUGIN_SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "spacy_domain_ner")


def package_pipeline(model: Path, output_dir: Path, *, name: str, version: str, source: Path,
                     quantize: Optional[str] = None) -> Dict[str, Path]:
    """Build the model wheel and the plugin wheel it requires into one dist/ folder.

    model (Path): The trained pipeline directory (not modified).
    output_dir (Path): Parent folder of the package (`spacy package`'s output directory).
    name (str): Package name without the language prefix, e.g. "legal_ner".
    version (str): Package version.
    source (Path): Source tree of spacy-domain-ner (the project root: setup.cfg, spacy_domain_ner/).
    quantize (Optional[str]): None for float weights at load, or "qint8": the packaged pipeline
        quantizes its transformer when loaded (TransformerModel.v1 `quantize`); its saved weights stay float.
    RETURNS (Dict[str, Path]): The wheels, keys "model" and "plugin".
    """
    from spacy.cli.package import package
    from spacy.util import load_config

    from .models.quantize import load_time_overrides

    model, output_dir, source = Path(model), Path(output_dir), Path(source)
    if not (model / "config.cfg").is_file() or not (model / "meta.json").is_file():
        raise ValueError(f"{model}: not a pipeline directory (config.cfg and meta.json expected)")
    if not output_dir.is_dir():
        raise ValueError(f"{output_dir}: no such directory")
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        meta = srsly.read_json(model / "meta.json")
        lang = meta.get("lang", "en")
        dist = output_dir / f"{name if name.startswith(lang + '_') else f'{lang}_{name}'}-{version}" / "dist"
        dist.mkdir(parents=True, exist_ok=True)
        for stale in dist.glob("spacy_domain_ner-*.whl"):  # one plugin wheel next to the model, or pip sees two versions
            stale.unlink()
        plugin = build_plugin_wheel(source=source, output_dir=dist)
        staged = Path(tmp) / "pipeline"
        shutil.copytree(model, staged)
        meta["requirements"] = pin_requirement(meta.get("requirements", []), version=wheel_version(plugin))
        srsly.write_json(staged / "meta.json", meta)
        if quantize is not None:
            config = staged / "config.cfg"
            load_config(config, overrides=load_time_overrides(load_config(config), dtype=quantize)).to_disk(config)
        package(staged, output_dir, name=name, version=version, create_sdist=False, create_wheel=True,
                require_parent=True, force=True, silent=True)
    wheels = list(dist.glob(f"{re.sub('_+', '_', dist.parent.name)}-py3-none-any.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"{dist}: spacy package wrote no model wheel")
    return {"model": wheels[0], "plugin": plugin}


def build_plugin_wheel(*, source: Path, output_dir: Path) -> Path:
    """Build the wheel of spacy-domain-ner from its source tree, without dependencies.

    The sources are copied first, so that the build writes nothing (build/, egg-info) into
    the tree others work in, and only the package's files end up in the wheel.

    source (Path): The source tree: setup.cfg, pyproject.toml, README.md and spacy_domain_ner/.
    output_dir (Path): Where the wheel is written.
    RETURNS (Path): The wheel.
    """
    source = Path(source)
    missing = [p for p in PLUGIN_SOURCES if not (source / p).exists()]
    if missing:
        raise ValueError(f"{source}: not the spacy-domain-ner source tree (missing {', '.join(missing)})")
    with tempfile.TemporaryDirectory(prefix="plugin-") as tmp:
        tree, out = Path(tmp) / "src", Path(tmp) / "dist"
        tree.mkdir()
        for part in PLUGIN_SOURCES:
            copy = shutil.copytree if (source / part).is_dir() else shutil.copy
            kwargs = {"ignore": shutil.ignore_patterns("__pycache__", "*.pyc")} if copy is shutil.copytree else {}
            copy(source / part, tree / part, **kwargs)
        result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(tree)],
                                capture_output=True, text=True)
        wheels = list(out.glob("spacy_domain_ner-*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"building the spacy-domain-ner wheel failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(wheels[0], Path(output_dir) / wheels[0].name))


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name.

    wheel (Path): A wheel, e.g. spacy_domain_ner-0.1.0-py3-none-any.whl.
    RETURNS (str): Its version, e.g. "0.1.0".
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        return str(parse_wheel_filename(Path(wheel).name)[1])
    except InvalidWheelFilename as err:
        raise ValueError(f"{wheel}: not a wheel file name ({err})") from None


def pin_requirement(requirements: List[str], *, version: str) -> List[str]:
    """Requirements with spacy-domain-ner pinned to exactly `version` (the wheel shipped alongside).

    requirements (List[str]): The pipeline meta's requirements.
    version (str): The plugin wheel's version.
    RETURNS (List[str]): The others unchanged, then `spacy-domain-ner==version`.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    kept = []
    for requirement in requirements:
        try:
            if canonicalize_name(Requirement(requirement).name) == PLUGIN:
                continue
        except InvalidRequirement as err:
            raise ValueError(f"meta.json requirement {requirement!r}: {err}") from None
        kept.append(requirement)
    return kept + [f"{PLUGIN}=={version}"]
