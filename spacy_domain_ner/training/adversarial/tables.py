"""The embedding tables adversarial training perturbs: thinc HashEmbed/Embed tables and torch
nn.Embedding weights inside a transformer, found and named per component.
"""
from typing import Any, Dict, List, Optional, Sequence

import spacy.attrs
from spacy.language import Language
from thinc.api import Model
from thinc.compat import torch

from .settings import SECTION


class EmbeddingTable:
    """An embedding matrix that can be read, swapped and restored."""

    name: str

    def get_weights(self) -> Any:
        raise NotImplementedError

    def set_weights(self, value: Any) -> None:
        raise NotImplementedError

    def get_grad(self) -> Optional[Any]:
        raise NotImplementedError


class ThincTable(EmbeddingTable):
    """A thinc parameter "E" (HashEmbed, Embed)."""

    def __init__(self, name: str, node: Model) -> None:
        self.name = name
        self.node = node

    def get_weights(self) -> Any:
        return self.node.get_param("E")

    def set_weights(self, value: Any) -> None:
        self.node.set_param("E", value)

    def get_grad(self) -> Optional[Any]:
        return self.node.get_grad("E") if self.node.has_grad("E") else None


class TorchTable(EmbeddingTable):
    """The input embedding weight of a PyTorch (Hugging Face) model."""

    def __init__(self, name: str, param: Any) -> None:
        self.name = name
        self.param = param

    def get_weights(self) -> Any:
        return self.param.data

    def set_weights(self, value: Any) -> None:
        # Swapping .data keeps the Parameter (and its .grad) while the forward
        # pass reads the new values.
        self.param.data = value

    def get_grad(self) -> Optional[Any]:
        return self.param.grad


def _torch_module(shim: Any) -> Optional[Any]:
    module = getattr(shim, "_model", None)
    return module if torch is not None and isinstance(module, torch.nn.Module) else None


def _attr_name(attr: Any) -> str:
    if isinstance(attr, int):
        return {v: k for k, v in spacy.attrs.IDS.items()}.get(attr, str(attr))
    return str(attr)


def _thinc_table_names(model: Model) -> Dict[int, str]:
    # MultiHashEmbed: chain(FeatureExtractor(attrs), ..., concatenate(HashEmbed(column=i)...)).
    names: Dict[int, str] = {}
    for node in model.walk():
        extractors = [layer for layer in node.layers if layer.name == "extract_features"]
        if len(extractors) != 1:
            continue
        columns = extractors[0].attrs.get("columns", [])
        for sub in node.walk():
            column = sub.attrs.get("column") if sub.name == "hashembed" else None
            if isinstance(column, int) and column < len(columns):
                names.setdefault(sub.id, _attr_name(columns[column]))
    return names


def _component_tables(pipe_name: str, model: Model, seen: set) -> List[EmbeddingTable]:
    tables: List[EmbeddingTable] = []
    attr_names = _thinc_table_names(model)
    for node in model.walk():
        if node.id in seen:
            continue
        seen.add(node.id)
        if "E" in node.param_names and node.has_param("E"):
            local = attr_names.get(node.id, f"{node.name}{len(tables)}")
            tables.append(ThincTable(f"{pipe_name}.{local}", node))
        for shim in node.shims:
            module = _torch_module(shim)
            if module is None:
                continue
            getter = getattr(module, "get_input_embeddings", None)
            embeddings = getter() if getter is not None else None
            weight = getattr(embeddings, "weight", None)
            if weight is None or id(weight) in seen:
                continue
            seen.add(id(weight))
            local = next(
                (qual for qual, sub in module.named_modules() if sub is embeddings),
                "input_embeddings",
            )
            tables.append(TorchTable(f"{pipe_name}.{local}", weight))
    return tables


def find_embedding_tables(nlp: Language) -> Dict[str, EmbeddingTable]:
    """Find the embedding tables of the components that are trained.

    Frozen components and components disabled in the config are skipped;
    components disabled only while `init_nlp` initializes (frozen, resumed)
    are seen through `nlp.components`.

    nlp (Language): An initialized pipeline.
    RETURNS (Dict[str, EmbeddingTable]): Tables by name, "<component>.<table>".
    """
    config = nlp.config.interpolate()
    skipped = set(config.get("training", {}).get("frozen_components", []) or [])
    skipped.update(config.get("nlp", {}).get("disabled", []) or [])
    tables: Dict[str, EmbeddingTable] = {}
    seen: set = set()
    for name, proc in nlp.components:
        model = getattr(proc, "model", None)
        if name in skipped or not isinstance(model, Model):
            continue
        for table in _component_tables(name, model, seen):
            key, n = table.name, 1
            while key in tables:
                n += 1
                key = f"{table.name}_{n}"
            table.name = key
            tables[key] = table
    return tables


def select_tables(
    available: Dict[str, EmbeddingTable], names: Optional[Sequence[str]]
) -> List[EmbeddingTable]:
    """Pick the tables named in the settings.

    available (Dict[str, EmbeddingTable]): Output of find_embedding_tables.
    names (Optional[Sequence[str]]): The names, or None for all tables.
    RETURNS (List[EmbeddingTable]): The tables to perturb.
    """
    if not available:
        raise ValueError(
            f"{SECTION} adversarial training found no embedding table in the trained "
            "components: it perturbs thinc 'E' tables (HashEmbed in MultiHashEmbed, Embed) "
            "and the input embeddings of Hugging Face transformers; frozen and disabled "
            "components are skipped"
        )
    if names is None:
        return list(available.values())
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(
            f"{SECTION} tables: unknown embedding table(s) {unknown}; this pipeline has "
            f"{list(available)} (frozen and disabled components are skipped)"
        )
    return [available[name] for name in names]
