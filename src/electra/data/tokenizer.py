"""The WordPiece tokenizer: train one BERT-uncased style, load one, save one, fingerprint it.

Every tokenizer this project uses has the same pipeline as BERT's: ``BertNormalizer`` (clean
text, split CJK characters, optional lowercase / accent stripping), ``BertPreTokenizer``
(whitespace and punctuation), a WordPiece model with ``##`` continuations, and a post-processor
that writes ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``. On disk a tokenizer is a directory with
``tokenizer.json`` (the whole pipeline), ``vocab.txt`` (one token per line in id order, the
format Google's BERT checkpoints ship) and ``tokenizer_config.json`` (what
``transformers.BertTokenizerFast.from_pretrained`` reads).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tqdm.auto import tqdm

from electra.data.corpus import DEFAULT_MAX_LINE_CHARS, iter_documents
from electra.data.records import DEFAULT_TEXT_FIELD
from electra.errors import UserError
from electra.outputs import check_output, staged_output

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
#: Trained vocabularies put these at ids 0..4, in this order.
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
#: Longest sequence a saved tokenizer advertises to transformers (BERT's position table).
MODEL_MAX_LENGTH = 512


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the special tokens in one vocabulary (BERT's vocab.txt: 0, 100, 101, 102, 103)."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int


def special_tokens(tok: Tokenizer) -> SpecialTokens:
    """Look the five special tokens up by their strings.

    Raises:
        UserError: one of them is not in the vocabulary.
    """
    ids = {}
    for name, token in zip(("pad", "unk", "cls", "sep", "mask"), SPECIAL_TOKENS):
        i = tok.token_to_id(token)
        if i is None:
            raise UserError(f"tokenizer vocabulary has no {token} token; ELECTRA needs all of {' '.join(SPECIAL_TOKENS)}")
        ids[name] = i
    return SpecialTokens(**ids)


def vocab_tokens(tok: Tokenizer) -> list[str]:
    """The vocabulary as a list indexed by id (added tokens included).

    Raises:
        UserError: the ids are not exactly 0..size-1 (a vocabulary with holes cannot be a
            vocab.txt, and an embedding table row would mean nothing).
    """
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for token, i in vocab.items():
        if not 0 <= i < len(tokens) or tokens[i]:
            raise UserError(f"tokenizer vocabulary ids are not contiguous 0..{len(vocab) - 1} (id {i} for {token!r})")
        tokens[i] = token
    return tokens


def vocab_fingerprint(tok: Tokenizer) -> str:
    """sha256 hex digest of the vocabulary in id order: equal digests mean equal id mappings."""
    h = hashlib.sha256()
    for token in vocab_tokens(tok):
        h.update(token.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def _assemble(model: models.Model, lowercase: bool, strip_accents: bool | None) -> Tokenizer:
    """Wrap a WordPiece model in BERT's normalizer, pre-tokenizer and decoder."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def _add_post_processor(tok: Tokenizer) -> None:
    """``[CLS] A [SEP]`` for one text, ``[CLS] A [SEP] B [SEP]`` (B with type id 1) for a pair."""
    specials = special_tokens(tok)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, specials.cls), (SEP, specials.sep)],
    )


def _normalizer_flags(tok: Tokenizer) -> tuple[bool, bool | None]:
    """(lowercase, strip_accents) of a BERT normalizer, read from the serialized pipeline."""
    norm = json.loads(tok.to_str()).get("normalizer") or {}
    if norm.get("type") != "BertNormalizer":
        return False, False
    return bool(norm.get("lowercase", True)), norm.get("strip_accents")


def _corpus_chars(files: Sequence[Path], max_line_chars: int, show_progress: bool, text_field: str) -> set[str]:
    """Every character on the lines the trainer will read (a fast first pass; bad input fails here)."""
    chars: set[str] = set()
    for path in tqdm(files, desc="tokenizer: alphabet", unit="file", disable=not show_progress):
        for doc in iter_documents([path], max_line_chars, text_field=text_field):
            for line in doc:
                chars.update(line)
    return chars


def _pinned_tokens(tok: Tokenizer, chars: set[str]) -> list[str]:
    """The single-character tokens the trainer can create from ``chars``, in code point order.

    Words are split into characters before any merge: the first character of a word is an
    alphabet token ``c``, the others continuation tokens ``##c``. Normalization and
    pre-tokenization are per character (BertNormalizer maps or removes each character on its own,
    BertPreTokenizer splits at whitespace and isolates punctuation), so running the real pipeline
    on ``c`` and on ``"a" + c`` tells which of the two forms ``c`` can take. This is a superset of
    what the trainer creates: a ``##c`` whose character never follows another one in this corpus
    costs one slot and is otherwise harmless.
    """
    alphabet: set[str] = set()
    continuations: set[str] = set()
    for c in chars:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(c)):
            alphabet.update(word)
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str("a" + c)):
            continuations.update(word[1:])
    return sorted(alphabet) + ["##" + c for c in sorted(continuations)]


def _unpinned_continuations(tok: Tokenizer, pinned: Sequence[str]) -> list[str]:
    """``##c`` tokens the trainer created although they were not pinned (none, unless
    :func:`_pinned_tokens` missed a character), in code point order."""
    known = set(pinned)
    return sorted(t for t in tok.get_vocab() if len(t) == 3 and t.startswith("##") and t not in known)


def train_tokenizer(
    files: Sequence[Path],
    out_dir: Path,
    vocab_size: int = 30522,
    lowercase: bool = True,
    strip_accents: bool = True,
    min_frequency: int = 2,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
    show_progress: bool = True,
    text_field: str = DEFAULT_TEXT_FIELD,
) -> Tokenizer:
    """Train a BERT-uncased style WordPiece vocabulary on raw text files and save it.

    Args:
        files: corpus files (see :func:`electra.data.corpus.find_corpus_files`).
        out_dir: directory to create; receives tokenizer.json, vocab.txt, tokenizer_config.json.
            Written to a temporary sibling first and renamed, so a crash leaves nothing that looks
            like a tokenizer.
        vocab_size: target vocabulary size including the five specials (BERT uses 30522).
        lowercase, strip_accents: BertNormalizer settings (uncased BERT: both True).
        min_frequency: a merge must be seen this often to enter the vocabulary.
        max_line_chars: longer lines are rejected as not-text (see corpus.iter_lines).
        show_progress: progress bars over the input files while reading.
        text_field: the text field/column of JSON Lines, Parquet and ``datasets`` sources.

    Returns:
        The trained tokenizer, specials ``[PAD] [UNK] [CLS] [SEP] [MASK]`` at ids 0..4, then the
        alphabet and the ``##`` continuation characters in code point order, then the merges.

    Note:
        Bit-reproducible: the same files and settings give byte-identical files in any process.
        ``tokenizers`` on its own is not (huggingface/tokenizers#1794): it numbers the ``##c``
        tokens in hash-map order, and equally frequent merges are taken in id order, so two runs
        can learn different tokens. We read the corpus's characters first and hand every
        single-character token to the trainer in sorted order (as extra "special" tokens, which
        take the first ids), so every id the tie-break compares is fixed; the finished
        vocabulary is then rebuilt with only the five real specials. One order dependence is
        left inside the trainer: two queue entries for the same pair with the same count (after
        a merge re-creates an existing token) pop in heap-layout order. It never showed in
        75 runs over six corpora (tests/test_tokenizer.py checks it across processes).

    Raises:
        UserError: bad input text (naming the file), or vocab_size too small.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocab_size must be larger than {len(SPECIAL_TOKENS)}, got {vocab_size}")
    files = [Path(f) for f in files]

    def pipeline() -> Tokenizer:
        return _assemble(models.WordPiece(unk_token=UNK, continuing_subword_prefix="##"), lowercase, strip_accents)

    pinned = _pinned_tokens(pipeline(), _corpus_chars(files, max_line_chars, show_progress, text_field))
    trained = _train_pinned(pipeline(), files, pinned, vocab_size, min_frequency, max_line_chars, show_progress, text_field)
    missed = _unpinned_continuations(trained, pinned)
    if missed:  # a normalizer that is not per character; the second run pins the trainer's own set
        pinned += missed
        trained = _train_pinned(pipeline(), files, pinned, vocab_size, min_frequency, max_line_chars, show_progress, text_field)
    tokens = vocab_tokens(trained)
    if tokens[: len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS):
        raise AssertionError("trainer did not put the special tokens at ids 0..4")
    tok = _assemble(
        models.WordPiece({t: i for i, t in enumerate(tokens)}, unk_token=UNK, continuing_subword_prefix="##"),
        lowercase,
        strip_accents,
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    _add_post_processor(tok)
    save_tokenizer(tok, out_dir)
    return tok


def _train_pinned(
    tok: Tokenizer,
    files: Sequence[Path],
    pinned: Sequence[str],
    vocab_size: int,
    min_frequency: int,
    max_line_chars: int,
    show_progress: bool,
    text_field: str,
) -> Tokenizer:
    """Run the WordPiece trainer on ``files`` with ``pinned`` at ids 5.. (after the specials)."""
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS) + list(pinned),
        continuing_subword_prefix="##",
        show_progress=False,  # our own bar below; the trainer's would interleave with it
    )

    def batches() -> Iterator[list[str]]:
        # Documents are handed over in batches of lines so the Rust side can count words on all
        # cores while Python reads the next files.
        bar = tqdm(files, desc="tokenizer: reading", unit="file", disable=not show_progress)
        batch: list[str] = []
        for path in bar:
            for doc in iter_documents([path], max_line_chars, text_field=text_field):
                batch.extend(doc)
                if len(batch) >= 10_000:
                    yield batch
                    batch = []
        if batch:
            yield batch

    try:
        tok.train_from_iterator(batches(), trainer=trainer)
    except Exception as e:
        # tokenizers re-raises Python errors from the iterator wrapped in its own exception
        # on some versions; surface the user's problem, not the wrapper.
        cause = e if isinstance(e, UserError) else e.__cause__ or e.__context__
        if isinstance(cause, UserError):
            raise cause from None
        raise
    return tok


def _config_json(tok: Tokenizer, model_max_length: int) -> dict:
    """tokenizer_config.json contents that make transformers rebuild exactly this pipeline."""
    lowercase, strip_accents = _normalizer_flags(tok)
    return {
        "tokenizer_class": "BertTokenizerFast",
        "do_lower_case": lowercase,
        "strip_accents": strip_accents,
        "tokenize_chinese_chars": True,
        "model_max_length": model_max_length,
        "pad_token": PAD,
        "unk_token": UNK,
        "cls_token": CLS,
        "sep_token": SEP,
        "mask_token": MASK,
    }


_OS_ERROR = re.compile(r"\(os error (\d+)\)$")


def _save_pipeline(tok: Tokenizer, path: Path, shown: Path | None = None) -> None:
    """``tok.save(path)`` (tokenizer.json), with a failed write raised as the OSError it is.

    ``tokenizers`` reports an I/O error as a bare ``Exception("No space left on device (os error 28)")``;
    that message becomes ``OSError(28, ..., shown or path)``, which the CLI prints as one line (``shown``:
    the name to report, e.g. the final file rather than its hidden temporary one). Any other
    exception is a bug and propagates unchanged.
    """
    try:
        tok.save(str(path))
    except Exception as e:
        m = _OS_ERROR.search(str(e).strip()) if type(e) is Exception else None
        if m is None:
            raise
        code = int(m.group(1))
        raise OSError(code, os.strerror(code), str(shown or path)) from None


def save_tokenizer(tok: Tokenizer, out_dir: Path, model_max_length: int = MODEL_MAX_LENGTH) -> None:
    """Write tokenizer.json, vocab.txt and tokenizer_config.json into ``out_dir``, atomically.

    ``model_max_length`` is what ``transformers`` truncates to: give the model's ``max_position``
    when the tokenizer goes with a model (a longer input would not fit its position table).

    The files go to a temporary sibling directory that is renamed onto ``out_dir`` at the end
    (replacing an existing tokenizer directory of ours, never a folder of the user's), so readers
    never see a half-written tokenizer.
    """
    out_dir = Path(out_dir)
    special_tokens(tok)  # refuse to save something ELECTRA cannot use
    tokens = vocab_tokens(tok)
    check_output(out_dir, overwrite=True)  # replaces only a tokenizer folder of ours, never the user's files
    with staged_output(out_dir, "tokenizer") as tmp:  # removed again if any write fails
        _save_pipeline(tok, tmp / "tokenizer.json", shown=out_dir / "tokenizer.json")
        (tmp / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        (tmp / "tokenizer_config.json").write_text(json.dumps(_config_json(tok, model_max_length), indent=2) + "\n")
        specials_map = {"pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK}
        (tmp / "special_tokens_map.json").write_text(json.dumps(specials_map, indent=2) + "\n")


def _read_vocab_txt(path: Path) -> dict[str, int]:
    """vocab.txt (one token per line, id = line index) as a token -> id map, checked."""
    vocab: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not valid UTF-8 ({e.reason})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read vocabulary ({e})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        token = line.rstrip("\r\n")
        if not token.strip():
            raise UserError(f"{path}:{lineno}: empty token in vocabulary")
        if token in vocab:
            raise UserError(f"{path}:{lineno}: duplicate token {token!r} (first on line {vocab[token] + 1})")
        vocab[token] = lineno - 1
    if not vocab:
        raise UserError(f"{path}: vocabulary file is empty")
    return vocab


def load_tokenizer(path: Path, lowercase: bool | None = None) -> Tokenizer:
    """Load a tokenizer from a directory (tokenizer.json preferred, else vocab.txt) or a vocab.txt.

    Args:
        path: a directory written by :func:`save_tokenizer` / :func:`train_tokenizer`, a directory
            holding only a BERT ``vocab.txt``, or the ``vocab.txt`` file itself (e.g. Google's
            uncased BERT vocabulary).
        lowercase: for a bare vocab.txt, whether to lowercase and strip accents. None means: use
            ``do_lower_case`` from a tokenizer_config.json beside it, else True (uncased BERT).

    Returns:
        A tokenizer with BERT's pipeline and a ``[CLS] A [SEP] B [SEP]`` post-processor.

    Raises:
        UserError: nothing loadable at ``path``, an invalid file, or a missing special token.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: tokenizer path does not exist")
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            try:
                tok = Tokenizer.from_file(str(path / "tokenizer.json"))
            except Exception as e:  # tokenizers raises a bare Exception on a malformed file
                raise UserError(f"{path / 'tokenizer.json'}: not a valid tokenizer file ({e})") from None
            _check_specials(tok, path / "tokenizer.json")
            return tok
        vocab_file = path / "vocab.txt"
        if not vocab_file.is_file():
            raise UserError(f"{path}: no tokenizer.json or vocab.txt in this directory")
    else:
        vocab_file = path
    if lowercase is None:
        lowercase = True
        config = vocab_file.parent / "tokenizer_config.json"
        if config.is_file():
            try:
                lowercase = bool(json.loads(config.read_text()).get("do_lower_case", True))
            except (ValueError, OSError) as e:
                raise UserError(f"{config}: not valid JSON ({e})") from None
    vocab = _read_vocab_txt(vocab_file)
    # strip_accents=None follows lowercase, which is what BERT's uncased/cased vocabularies expect.
    tok = _assemble(models.WordPiece(vocab, unk_token=UNK, continuing_subword_prefix="##"), lowercase, None)
    _check_specials(tok, vocab_file)
    _add_post_processor(tok)
    return tok


def _check_specials(tok: Tokenizer, where: Path) -> None:
    try:
        special_tokens(tok)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
