"""Annotating texts with a loaded pipeline: safe loading, and one result per text (entities as
character offsets with confidence and KB id, words, or an error) that every engine returns alike.
"""
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Span

DEFAULT_MAX_CHARS = 100_000
_TRUE = ("1", "y", "yes", "true", "on")


# (entities as (start, end, label, confidence or None, kb_id or ""), words, error); None entities with an error message.
ChunkResult = Tuple[Optional[List[Tuple[int, int, str, Optional[float], str]]], int, Optional[str]]
Job = Tuple[Any, List[str]]


def load_pipeline(model: str, *, gpu_id: int = -1, code_paths: Sequence[Path] = ()) -> Language:
    """Load a pipeline with `spacy.load` (a directory or an installed package name).

    model (str): The pipeline.
    gpu_id (int): The GPU to run on; -1 for CPU.
    code_paths (Sequence[Path]): Python files to import first (custom components), trusted like the pipeline.
    RETURNS (Language): The pipeline.
    """
    if os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "").lower() in _TRUE:
        raise ValueError("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set: refusing to load pipelines with unrestricted pickle")
    for number, code_path in enumerate(code_paths):
        if not Path(code_path).is_file():
            raise ValueError(f"{code_path}: no such code file")
        spacy.util.import_file(f"spacy_domain_ner_annotate_code_{number}", code_path)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def check_max_chars(nlp: Language, max_chars: int) -> None:
    if max_chars > nlp.max_length:
        raise ValueError(f"max_chars {max_chars} exceeds the pipeline's max_length {nlp.max_length}")


def _confidence(ent: Any) -> Optional[float]:
    # The extension exists only where a component that scores entities was imported.
    if not Span.has_extension("confidence"):
        return None
    value = ent._.confidence
    return None if value is None else float(value)


def _doc_result(doc: Any) -> ChunkResult:
    ents = [(ent.start_char, ent.end_char, ent.label_, _confidence(ent), ent.kb_id_) for ent in doc.ents]
    return ents, sum(1 for token in doc if not token.is_space), None


def annotate_texts(nlp: Language, texts: Sequence[str], *, batch_size: int) -> List[ChunkResult]:
    """Annotate texts; if the batch raises, retry one by one so that only failing texts get an error.

    nlp (Language): The pipeline.
    texts (Sequence[str]): The chunk texts.
    batch_size (int): The nlp.pipe batch size.
    RETURNS (List[ChunkResult]): One result per text, in order.
    """
    try:
        return [_doc_result(doc) for doc in nlp.pipe(texts, batch_size=batch_size)]
    except Exception:
        results: List[ChunkResult] = []
        for text in texts:
            try:
                results.append(_doc_result(nlp(text)))
            except Exception as err:
                results.append((None, 0, f"{type(err).__name__}: {err}"[:500]))
        return results
