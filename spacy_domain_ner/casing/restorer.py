"""The `case_restorer` component: text without case signal is annotated through its truecased copy.

Added last, it looks at each Doc: ordinary text passes untouched. A Doc written all upper, all
lower or all capitalized (`forms.case_free_kind` over its words, `forms.word_heads`, so that the
lower-case "end" the tokenizer splits off "Front-end" does not count) is copied with its words
truecased (`forms.truecase`: same tokens, same spacing, each word as the training corpus writes it); the
components before the restorer annotate the copy, and its entities (labels, kb ids), span
groups and entity confidences are copied back token for token. The Doc's text is never changed;
`doc._.case_free` says which kind was restored (None for ordinary text). `kinds` limits the
restored kinds (a model trained with upper-cased copies may read capitals better as they are).

With `passage_words` set, an ordinary Doc's passages written in capitals (`forms.upper_passages`:
a contract's headings and party blocks, a filing's signature block) are truecased in the copy and
the rest of the words kept; `doc._.case_free_passages` lists the restored token ranges.

With `entity_pass`, the entities found in a copy have their words rewritten as the corpus writes
its entities' words (`forms.recase_entities`: "fidelity advisor" becomes "Fidelity Advisor", which
truecasing wrote in lower case because the words are mostly common words), and the copy is
annotated once more: the entities of that second copy are the Doc's.

The copies need no second pass of a transformer whose tokenizer ignores case (the default MiniLM
is uncased): its output for the copy is the original's, which the copy takes (`ignores_case`), so
only the cased features, the NER and the components after it run again.

Why: the NER's cased features (`CaseAwareListener`) learn that `SCBV` is written in capitals;
in a contract's all-capitals heading every word is, and in lower-cased text none is. The case
forms are serialized with the pipeline, so a packaged model needs no file at load time.
"""
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import ensure_path, minibatch

from .forms import (CASE_KINDS, FORM_PARTS, CaseForms, case_free_kind, check_case_forms, check_min_share,
                    check_unknown, mine_case_forms, recase_entities, truecase, upper_passages, word_heads)

if not Doc.has_extension("case_free"):
    Doc.set_extension("case_free", default=None)  # "upper", "lower", "title" or None
if not Doc.has_extension("case_free_passages"):
    Doc.set_extension("case_free_passages", default=None)  # [(start, end), ...] truecased in an ordinary Doc


def transfer_annotations(source: Doc, target: Doc) -> None:
    """Replace the target's entities, span groups and entity confidences by the source's.

    source (Doc): The annotated Doc (same tokens as the target).
    target (Doc): The Doc to annotate.
    """
    if len(source) != len(target):
        raise ValueError(f"cannot transfer annotations between Docs of {len(source)} and {len(target)} tokens")

    def spans(group: Iterable[Span]) -> List[Span]:
        return [Span(target, s.start, s.end, label=s.label_, kb_id=s.kb_id_) for s in group]

    target.set_ents(spans(source.ents), default="outside")
    for key, group in source.spans.items():
        target.spans[key] = spans(group)
    if Doc.has_extension("ent_confidences"):
        target._.ent_confidences = source._.ent_confidences


def ignores_case(proc: Any) -> bool:
    """Whether a component is a spacy-transformers Transformer whose tokenizer gives the same word
    pieces whatever the case, so that its output for a re-cased copy of a Doc is the Doc's.

    proc (Any): A pipeline component.
    RETURNS (bool): True only when that is checked; False for any other component.
    """
    try:
        from spacy_transformers import Transformer
    except ImportError:  # pragma: no cover - a dependency of the package
        return False
    if not isinstance(proc, Transformer):
        return False
    tokenizer = getattr(proc.model, "tokenizer", None)
    if not hasattr(tokenizer, "tokenize"):
        return False
    probe = "SCBV Acme Holdings, Inc. filed"
    return tokenizer.tokenize(probe) == tokenizer.tokenize(probe.lower()) == tokenizer.tokenize(probe.upper())


class CaseRestorer:
    """Annotates Docs without case signal through truecased copies (see the module docstring)."""

    def __init__(self, nlp: Language, name: str, *, min_share: float, unknown: str,
                 kinds: Sequence[str] = CASE_KINDS, passage_words: int = 2, entity_pass: bool = False) -> None:
        check_min_share(min_share)
        check_unknown(unknown)
        if not kinds or set(kinds) - set(CASE_KINDS):
            raise ValueError(f"kinds must be some of {', '.join(CASE_KINDS)}, not {list(kinds)}")
        if passage_words == 1 or passage_words < 0:  # one capital word is mostly an acronym (SCBV)
            raise ValueError(f"passage_words must be 0 (off) or at least 2, not {passage_words}")
        self.nlp = nlp
        self.name = name
        self.min_share = min_share
        self.unknown = unknown
        self.kinds = [kind for kind in CASE_KINDS if kind in kinds]
        self.passage_words = passage_words
        self.entity_pass = bool(entity_pass)
        self.forms: CaseForms = {"words": {}, "after": {}, "before": {}}

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None, forms: Optional[Union[str, Path, CaseForms]] = None) -> None:
        """Set the case forms: from a JSON file or dict (`mine-case-forms`), else mined from the
        reference Docs of the training examples.

        get_examples (Optional[Callable[[], Iterable[Example]]]): The training examples.
        nlp (Optional[Language]): The pipeline.
        forms (Optional[Union[str, Path, CaseForms]]): See `forms.mine_case_forms`.
        """
        if isinstance(forms, (str, Path)):
            forms = srsly.read_json(forms)
        if forms is None:
            if get_examples is None:
                raise ValueError(f"{self.name}: initialize needs the case forms or the training examples")
            forms = mine_case_forms((eg.reference for eg in get_examples()), min_share=self.min_share)
        self.set_forms(forms)

    @property
    def settings(self) -> Dict[str, Any]:
        """The factory settings (min_share, unknown, kinds, passage_words, entity_pass), e.g. to re-add the component."""
        return {"min_share": self.min_share, "unknown": self.unknown, "kinds": list(self.kinds),
                "passage_words": self.passage_words, "entity_pass": self.entity_pass}

    def set_forms(self, forms: CaseForms) -> None:
        """Replace the case forms, after checking them.

        forms (CaseForms): The output of `forms.mine_case_forms`.
        """
        check_case_forms(forms)
        self.forms = {part: dict(forms[part]) for part in (*FORM_PARTS, "entities") if part in forms}

    def _upstream(self) -> List[Callable]:
        upstream = []
        for name, proc in self.nlp.pipeline:
            if name == self.name:
                return upstream
            upstream.append(proc)
        raise ValueError(f"{self.name} is not in the pipeline {self.nlp.pipe_names}")

    def _regions(self, doc: Doc) -> List[Tuple[int, int]]:
        """The token ranges that the copy of a marked Doc truecases."""
        return [(0, len(doc))] if doc._.case_free is not None else list(doc._.case_free_passages)

    def _copy(self, doc: Doc) -> Doc:
        words = truecase(doc, self.forms, unknown=self.unknown)
        if doc._.case_free is None:  # an ordinary Doc: only its passages in capitals change
            keep = [t.text for t in doc]
            for start, end in doc._.case_free_passages:
                keep[start:end] = words[start:end]
            words = keep
        return Doc(doc.vocab, words=words, spaces=[bool(t.whitespace_) for t in doc])

    def _recopy(self, doc: Doc, copy: Doc) -> Optional[Doc]:
        """A second copy whose words inside the first copy's entities (in the truecased regions)
        are written as entities; None when no word changes."""
        spans = [(max(e.start, start), min(e.end, end)) for e in copy.ents for start, end in self._regions(doc)
                 if e.start < end and start < e.end]
        words = recase_entities([t.text for t in copy], spans, self.forms)
        if words == [t.text for t in copy]:
            return None
        return Doc(doc.vocab, words=words, spaces=[bool(t.whitespace_) for t in doc])

    def _annotate(self, docs: List[Doc], copies: List[Doc]) -> List[Doc]:
        """Run the components before the restorer on the copies of the Docs."""
        for proc in self._upstream():
            if ignores_case(proc) and all(doc._.trf_data is not None for doc in docs):
                for doc, copy in zip(docs, copies):
                    copy._.trf_data = doc._.trf_data  # same tokens, same word pieces, same output
                continue
            copies = list(proc.pipe(copies)) if hasattr(proc, "pipe") else [proc(c) for c in copies]
        return copies

    def _mark(self, doc: Doc) -> bool:
        """Set `case_free` and `case_free_passages`; whether the Doc needs a truecased copy."""
        words = [t.text for t in doc]
        kind = case_free_kind(word_heads(doc), min_share=self.min_share)
        doc._.case_free = kind if kind in self.kinds else None
        doc._.case_free_passages = (upper_passages(words, min_words=self.passage_words)
                                    if kind is None and self.passage_words else [])
        return doc._.case_free is not None or bool(doc._.case_free_passages)

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size):
            restored = [doc for doc in batch if self._mark(doc)]
            if restored:
                copies = self._annotate(restored, [self._copy(doc) for doc in restored])
                if self.entity_pass:
                    again = [(i, second) for i, (doc, copy) in enumerate(zip(restored, copies))
                             if (second := self._recopy(doc, copy)) is not None]
                    if again:
                        seconds = self._annotate([restored[i] for i, _ in again], [second for _, second in again])
                        for (i, _), second in zip(again, seconds):
                            copies[i] = second
                for doc, copy in zip(restored, copies):
                    transfer_annotations(copy, doc)
            yield from batch

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"forms": self.forms})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "CaseRestorer":
        self.set_forms(srsly.msgpack_loads(bytes_data)["forms"])
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "forms.json", self.forms)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "CaseRestorer":
        self.set_forms(srsly.read_json(ensure_path(path) / "forms.json"))
        return self


@Language.factory("case_restorer", assigns=["doc.ents", "doc.spans"],
                  default_config={"min_share": 0.99, "unknown": "auto", "kinds": list(CASE_KINDS), "passage_words": 2,
                                  "entity_pass": False})
def make_case_restorer(nlp: Language, name: str, min_share: float, unknown: str, kinds: List[str],
                       passage_words: int, entity_pass: bool = False) -> CaseRestorer:
    """Create the `case_restorer` component (add it last; set its forms with `initialize` or
    `set_forms`).

    nlp (Language): The pipeline; the components before the restorer annotate the copies.
    name (str): The component name.
    min_share (float): See `forms.case_free_kind`.
    unknown (str): How a word the forms do not know is written: "auto", "title", "lower" or "keep"
        (`forms.truecase`).
    kinds (List[str]): Which kinds of text without case signal to restore ("upper", "lower",
        "title"); other Docs pass as they are.
    passage_words (int): 0: ordinary Docs pass as they are; N >= 2: their passages of at least N
        words in capitals are truecased too (`forms.upper_passages`).
    entity_pass (bool): Annotate each copy a second time, with the words of its entities written
        as the corpus writes entities (`forms.recase_entities`).
    RETURNS (CaseRestorer): The component.
    """
    return CaseRestorer(nlp, name, min_share=min_share, unknown=unknown, kinds=kinds, passage_words=passage_words,
                        entity_pass=entity_pass)


def add_case_restorer(nlp: Language, *, forms: CaseForms, name: str = "case_restorer", min_share: float = 0.99,
                      unknown: str = "auto", kinds: Sequence[str] = CASE_KINDS, passage_words: int = 2,
                      entity_pass: bool = False) -> CaseRestorer:
    """Add the restorer last to a trained pipeline (replacing one of the same name).

    nlp (Language): The pipeline; changed in place.
    forms (CaseForms): The case forms (`forms.mine_case_forms`).
    name, min_share, unknown, kinds, passage_words, entity_pass: See the factory.
    RETURNS (CaseRestorer): The added component.
    """
    if name in nlp.pipe_names:
        nlp.remove_pipe(name)
    config = {"min_share": min_share, "unknown": unknown, "kinds": list(kinds), "passage_words": passage_words,
              "entity_pass": entity_pass}
    restorer = nlp.add_pipe("case_restorer", name=name, last=True, config=config)
    restorer.set_forms(forms)
    return restorer
