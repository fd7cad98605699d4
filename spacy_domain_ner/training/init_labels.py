"""Entity labels read from a corpus, for `[initialize.components.<ner>.labels]`.

With a streamed train corpus (`max_epochs = -1`, as configs/ner_mixed.cfg and
configs/ner_multitask.cfg use so that each epoch is a new sample), spaCy initializes the
components from the first 100 examples only: a rare class (E-NER's COURT, 13 training
entities) is then often not among them, does not become a label of the head, and is never
predicted. `spacy_domain_ner.entity_labels.v1` hands the NER every entity label of a corpus
instead, in the form its `initialize(labels=...)` takes (the transition system's actions):

    [initialize.components.ner.labels]
    @readers = "spacy_domain_ner.entity_labels.v1"
    path = ${paths.train}
"""
from pathlib import Path
from typing import Dict, List

from spacy.pipeline._parser_internals.ner import BiluoPushDown
from spacy.tokens import DocBin
from spacy.training.corpus import walk_corpus
from spacy.util import registry
from spacy.vocab import Vocab


def entity_labels(path: Path) -> List[str]:
    """The entity labels of a .spacy file or of every .spacy file under a directory.

    path (Path): The corpus.
    RETURNS (List[str]): The labels, sorted.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"entity_labels: {path} does not exist")
    vocab, labels = Vocab(), set()
    for file in walk_corpus(path, ".spacy"):
        for doc in DocBin().from_disk(file).get_docs(vocab):
            labels.update(ent.label_ for ent in doc.ents)
    if not labels:
        raise ValueError(f"entity_labels: {path} holds no entities")
    return sorted(labels)


@registry.readers("spacy_domain_ner.entity_labels.v1")
def entity_labels_v1(path: Path) -> Dict[int, Dict[str, int]]:
    """The NER's initial actions: one set of moves for every entity label of the corpus.

    path (Path): The corpus (.spacy file or directory), e.g. ${paths.train}.
    RETURNS (Dict[int, Dict[str, int]]): The actions, as the NER's `initialize` takes them.
    """
    if path is None:
        raise ValueError("entity_labels: path is not set")
    return BiluoPushDown.get_actions(entity_types=entity_labels(Path(path)))
