"""Raw text for masked-LM pretraining: reading, held-out split, packing and masking.

Everything random here is a pure function of the seed and a position (doc id,
step, micro-batch), never of a generator's history: the held-out split, the
order of the blocks and every mask can be recomputed after a restart, which is
what makes a resumed run end where an uninterrupted one does.
"""
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm
from transformers import DataCollatorForLanguageModeling, DataCollatorForWholeWordMask

from ..corpus.formats.base import ConversionError, read_text
from ..io.jsonl import parse_jsonl
from .raw_text import find_files, record_text

TEXT_SUFFIXES = (".txt", ".jsonl")


@dataclass(frozen=True)
class RawDoc:
    """One document of raw text: a JSONL record or a whole .txt file."""

    doc_id: str
    location: str
    text: str


@dataclass
class PackedBlocks:
    """Token blocks `[CLS] tokens [SEP]`, right-padded: ids (n, max_length), lengths (n,)."""

    ids: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())

    def fingerprint(self) -> str:
        """A hash of the blocks, so a resume can check that it reads the same data."""
        digest = hashlib.sha256(np.ascontiguousarray(self.ids).tobytes())
        digest.update(np.ascontiguousarray(self.lengths).tobytes())
        return digest.hexdigest()[:16]


def find_text_files(paths: Sequence[Path]) -> List[Path]:
    """Expand inputs: files stay, folders give their .txt and .jsonl files (recursively, sorted).

    paths (Sequence[Path]): Files or folders.
    RETURNS (List[Path]): The files to read.
    """
    return find_files(paths, TEXT_SUFFIXES)


def _check_not_binary(location: str, text: str) -> None:
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ConversionError(f"{location}:{line}", "binary data (NUL byte); expected UTF-8 text")


def read_jsonl_docs(path: Path, *, text_key: str = "text") -> List[RawDoc]:
    """Read `{"text": ...}` records, one a line. Blank lines and empty texts are skipped.

    path (Path): The JSONL file.
    text_key (str): The key holding the text.
    RETURNS (List[RawDoc]): The documents; ids are the record's "id" if it has one, else file:line.
    """
    text = read_text(path)
    _check_not_binary(str(path), text)
    docs = []
    for number, location, record in parse_jsonl(text, source=path, error=ConversionError):
        value = record_text(record, location=location, text_key=text_key)
        if value.strip():
            doc_id = record.get("id")
            doc_id = str(doc_id) if isinstance(doc_id, (str, int)) else f"{path.name}:{number}"
            docs.append(RawDoc(doc_id=doc_id, location=location, text=value))
    return docs


def read_raw_docs(paths: Sequence[Path], *, text_key: str = "text") -> List[RawDoc]:
    """Read raw text: .jsonl files give one document a record, other files one document each.

    paths (Sequence[Path]): Files or folders (.txt and .jsonl files in them).
    text_key (str): The text key of JSONL records.
    RETURNS (List[RawDoc]): The non-empty documents, in file order.
    """
    docs: List[RawDoc] = []
    for path in find_text_files(paths):
        if path.suffix.lower() == ".jsonl":
            found = read_jsonl_docs(path, text_key=text_key)
            if not found:
                raise ConversionError(str(path), f"no texts: every record's '{text_key}' is empty")
            docs.extend(found)
        else:
            text = read_text(path)
            _check_not_binary(str(path), text)
            docs.append(RawDoc(doc_id=str(path), location=str(path), text=text))
    if not docs:
        raise ConversionError(", ".join(str(p) for p in paths), "no texts found")
    return docs


def read_docbin_texts(path: Path) -> List[str]:
    """The texts of the Docs of a .spacy DocBin (e.g. the NER dev set).

    path (Path): The DocBin file.
    RETURNS (List[str]): The non-empty doc texts.
    """
    import spacy
    from spacy.tokens import DocBin

    try:
        doc_bin = DocBin().from_disk(path)
        texts = [doc.text for doc in doc_bin.get_docs(spacy.blank("xx").vocab)]
    except (OSError, ValueError) as err:
        raise ConversionError(str(path), f"not a readable .spacy DocBin ({err})") from None
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ConversionError(str(path), "the DocBin has no texts")
    return texts


def _unit_hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(str(p) for p in parts).encode("utf8")).digest()[:8], "big")


def step_seed(seed: int, *parts: object) -> int:
    """A positive 62-bit seed derived from the run seed and a position (step, micro-batch...)."""
    return 1 + _unit_hash("seed", seed, *parts) % (2**62)


def split_heldout(docs: Sequence[RawDoc], *, fraction: float, seed: int) -> Tuple[List[RawDoc], List[RawDoc]]:
    """Split documents by a hash of (seed, doc id): the same docs are held out on every run.

    docs (Sequence[RawDoc]): All documents.
    fraction (float): Share of documents held out (0 for none).
    seed (int): The run seed.
    RETURNS (Tuple[List[RawDoc], List[RawDoc]]): (train, held-out). With a fraction > 0 and
        at least two documents, both are non-empty.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(docs), []
    if len(docs) < 2:
        raise ValueError("a held-out slice needs at least 2 documents; pass a held-out fraction of 0 to train on one")
    scores = [_unit_hash("heldout", seed, doc.doc_id) / 2**64 for doc in docs]
    held = [score < fraction for score in scores]
    if not any(held):
        held[int(np.argmin(scores))] = True
    if all(held):
        held[int(np.argmax(scores))] = False
    train = [doc for doc, h in zip(docs, held) if not h]
    heldout = [doc for doc, h in zip(docs, held) if h]
    return train, heldout


def pack_blocks(texts: Iterable[str], *, tokenizer, max_length: int, desc: str = "tokenizing") -> PackedBlocks:
    """Tokenize texts and pack them into blocks of `max_length` tokens.

    Documents are concatenated with [SEP] between them and cut into blocks, so
    short documents share a block and long ones span several; only the last
    block is padded.

    texts (Iterable[str]): The documents.
    tokenizer (PreTrainedTokenizerBase): The model's tokenizer.
    max_length (int): Tokens per block, [CLS] and [SEP] included.
    desc (str): Label of the progress bar.
    RETURNS (PackedBlocks): The blocks.
    """
    if max_length < 8:
        raise ValueError(f"the maximum sequence length must be at least 8, got {max_length}")
    special = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id, "pad": tokenizer.pad_token_id}
    if None in special.values() or tokenizer.mask_token_id is None:
        raise ValueError("the tokenizer needs cls, sep, pad and mask tokens for masked-LM training")
    texts = list(texts)
    pieces: List[np.ndarray] = []
    sep = np.array([special["sep"]], dtype=np.int32)
    chunk = 64
    with tqdm(total=len(texts), desc=desc, unit="doc", leave=False) as bar:
        for first in range(0, len(texts), chunk):
            batch = texts[first : first + chunk]
            # verbose=False: long documents are cut into blocks below, so the
            # "longer than the model maximum" warning does not apply.
            encoded = tokenizer(batch, add_special_tokens=False, return_attention_mask=False,
                                return_token_type_ids=False, verbose=False)["input_ids"]
            for ids in encoded:
                if ids:
                    pieces.append(np.asarray(ids, dtype=np.int32))
                    pieces.append(sep)
            bar.update(len(batch))
    if not pieces:
        raise ValueError("the texts give no tokens")
    stream = np.concatenate(pieces[:-1])  # no separator after the last document
    width = max_length - 2
    n_blocks = -(-len(stream) // width)
    body = np.full(n_blocks * width, special["pad"], dtype=np.int32)
    body[: len(stream)] = stream
    lengths = np.full(n_blocks, max_length, dtype=np.int32)
    lengths[-1] = len(stream) - (n_blocks - 1) * width + 2
    ids = np.full((n_blocks, max_length), special["pad"], dtype=np.int32)
    ids[:, 0] = special["cls"]
    ids[:, 1 : 1 + width] = body.reshape(n_blocks, width)
    ids[np.arange(n_blocks), lengths - 1] = special["sep"]
    return PackedBlocks(ids=ids, lengths=lengths)


class BlockOrder:
    """The training order: epoch e is a permutation of the blocks seeded by (seed, e).

    Position p of the endless stream is block perm(p // n)[p % n], so the data of
    any step is known without replaying the ones before it.
    """

    def __init__(self, n_blocks: int, *, seed: int) -> None:
        if n_blocks < 1:
            raise ValueError("no training blocks")
        self.n_blocks = n_blocks
        self.seed = seed
        self._perms: Dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n_blocks)
        return self._perms[epoch]

    def blocks(self, start: int, count: int) -> List[int]:
        """Block indices of stream positions start .. start + count - 1."""
        return [int(self.permutation(p // self.n_blocks)[p % self.n_blocks]) for p in range(start, start + count)]


def make_collator(tokenizer, *, whole_word: bool, mlm_probability: float, seed: int) -> DataCollatorForLanguageModeling:
    """Hugging Face's masking collator with its own generator seeded by `seed`.

    tokenizer (PreTrainedTokenizerBase): The tokenizer (whole-word masking needs WordPiece "##" pieces).
    whole_word (bool): Mask all pieces of a word together.
    mlm_probability (float): Share of tokens masked.
    seed (int): Seed of the masks (positive).
    RETURNS (DataCollatorForLanguageModeling): The collator.
    """
    cls = DataCollatorForWholeWordMask if whole_word else DataCollatorForLanguageModeling
    return cls(tokenizer=tokenizer, mlm=True, mlm_probability=mlm_probability, seed=seed)


def collate(
    blocks: PackedBlocks, indices: Sequence[int], *, tokenizer, whole_word: bool, mlm_probability: float, seed: int
) -> Dict[str, torch.Tensor]:
    """Mask a micro-batch of blocks; the masks depend only on the blocks and `seed`.

    blocks (PackedBlocks): All blocks.
    indices (Sequence[int]): The blocks of this batch.
    tokenizer (PreTrainedTokenizerBase): The tokenizer.
    whole_word (bool): Whole-word masking.
    mlm_probability (float): Masking rate.
    seed (int): Seed of this batch's masks.
    RETURNS (Dict[str, torch.Tensor]): input_ids, attention_mask and labels (-100 where not masked).
    """
    collator = make_collator(tokenizer, whole_word=whole_word, mlm_probability=mlm_probability, seed=seed)
    lengths = [int(blocks.lengths[i]) for i in indices]
    batch = collator([blocks.ids[i, :n].tolist() for i, n in zip(indices, lengths)])
    # The mask comes from the lengths: a random replacement may draw the pad id.
    width = batch["input_ids"].shape[1]
    batch["attention_mask"] = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return {key: batch[key] for key in ("input_ids", "attention_mask", "labels")}


class MicroBatches(torch.utils.data.Dataset):
    """The masked micro-batches of one rank from step `start_step` on, for a DataLoader.

    Item k is micro-batch k % accum of step start_step + k // accum; each item is
    a pure function of its position, so loader workers can build them in any order.
    """

    def __init__(
        self, blocks: PackedBlocks, *, order: BlockOrder, tokenizer, whole_word: bool, mlm_probability: float,
        seed: int, start_step: int, total_steps: int, batch_size: int, accum: int, rank: int, world_size: int,
    ) -> None:
        self.blocks, self.order, self.tokenizer = blocks, order, tokenizer
        self.whole_word, self.mlm_probability, self.seed = whole_word, mlm_probability, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.batch_size, self.accum, self.rank, self.world_size = batch_size, accum, rank, world_size

    def __len__(self) -> int:
        return max(self.total_steps - self.start_step, 0) * self.accum

    def slot(self, k: int) -> Tuple[int, int]:
        """(step, global micro-batch index) of item k; the index counts over ranks and accumulation."""
        return self.start_step + k // self.accum, (k % self.accum) * self.world_size + self.rank

    def __getitem__(self, k: int) -> Dict[str, torch.Tensor]:
        step, micro = self.slot(k)
        per_step = self.batch_size * self.accum * self.world_size
        indices = self.order.blocks(step * per_step + micro * self.batch_size, self.batch_size)
        return collate(self.blocks, indices, tokenizer=self.tokenizer, whole_word=self.whole_word,
                       mlm_probability=self.mlm_probability, seed=step_seed(self.seed, "mask", step, micro))


def is_wordpiece(tokenizer) -> bool:
    """Whether the tokenizer marks word continuations with "##" (what whole-word masking relies on)."""
    vocab = tokenizer.get_vocab()
    return any(token.startswith("##") for token in vocab)


def eval_batches(
    blocks: PackedBlocks, *, tokenizer, whole_word: bool, mlm_probability: float, seed: int, batch_size: int,
    max_blocks: Optional[int] = None,
) -> Iterable[Dict[str, torch.Tensor]]:
    """Evaluation batches in block order with fixed masks, identical before and after training.

    max_blocks (Optional[int]): Use only the first blocks (None or 0: all).
    """
    n = len(blocks) if not max_blocks else min(max_blocks, len(blocks))
    for number, first in enumerate(range(0, n, batch_size)):
        indices = list(range(first, min(first + batch_size, n)))
        yield collate(blocks, indices, tokenizer=tokenizer, whole_word=whole_word,
                      mlm_probability=mlm_probability, seed=step_seed(seed, "eval", number))
