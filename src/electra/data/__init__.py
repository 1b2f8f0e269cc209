"""Pretraining data: corpus -> WordPiece tokenizer -> packed, memory-mapped shards -> batches.

``corpus`` reads raw text, ``tokenizer`` trains/loads the vocabulary, ``packing`` builds
``[CLS] A [SEP] B [SEP]`` examples, ``shards`` stores them, ``prepare`` runs the whole stage,
``loader`` serves deterministic batches (import it from ``electra.data.loader``; it needs torch,
which this package import deliberately does not pull in).
"""

from electra.data.corpus import find_corpus_files, iter_documents
from electra.data.packing import PackedExample, pack_documents
from electra.data.prepare import PrepareSummary, prepare_corpus
from electra.data.shards import PretrainingData
from electra.data.tokenizer import (
    SpecialTokens,
    load_tokenizer,
    save_tokenizer,
    special_tokens,
    train_tokenizer,
    vocab_fingerprint,
)

__all__ = [
    "PackedExample",
    "PrepareSummary",
    "PretrainingData",
    "SpecialTokens",
    "find_corpus_files",
    "iter_documents",
    "load_tokenizer",
    "pack_documents",
    "prepare_corpus",
    "save_tokenizer",
    "special_tokens",
    "train_tokenizer",
    "vocab_fingerprint",
]
