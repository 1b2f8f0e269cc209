"""WordPiece tokenizer: training, saving, loading (ours and BERT's vocab.txt), HF compatibility."""

import json
import os
import subprocess
import sys

import pytest
from conftest_data import train_tiny_tokenizer, write_corpus

from electra.data import tokenizer as tokenizer_module
from electra.data.tokenizer import (
    SpecialTokens,
    load_tokenizer,
    save_tokenizer,
    special_tokens,
    train_tokenizer,
    vocab_fingerprint,
    vocab_tokens,
)
from electra.errors import UserError

SAMPLES = [
    ("The CAPTAIN walked to the village.", None),
    ("Café naïve ÜBER unbelievable, wonderfully", "and she replied! 1887 zzqx"),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tok")
    return tmp / "tok", train_tiny_tokenizer(tmp)


def test_trained_layout_and_specials(trained):
    out, tok = trained
    assert sorted(p.name for p in out.iterdir()) == [
        ".electra-output", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"
    ]
    tokens = vocab_tokens(tok)
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert special_tokens(tok) == SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)
    assert (out / "vocab.txt").read_text(encoding="utf-8").splitlines() == tokens
    assert any(t.startswith("##") for t in tokens)
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True and config["strip_accents"] is True
    assert not list(out.parent.glob(".tok.tmp-*"))  # temp dir renamed away


def test_bert_pipeline(trained):
    _, tok = trained
    enc = tok.encode("Café über", "NAÏVE")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    sep = enc.tokens.index("[SEP]")
    assert enc.type_ids == [0] * (sep + 1) + [1] * (len(enc.tokens) - sep - 1)
    # lowercased and accents stripped: "Café" and "cafe" give the same ids
    assert tok.encode("Café NAÏVE").ids == tok.encode("cafe naive").ids
    assert tok.encode("the captain", add_special_tokens=False).tokens == ["the", "captain"]


def test_hf_bert_tokenizer_fast_gives_identical_ids(trained):
    transformers = pytest.importorskip("transformers")
    out, tok = trained
    hf = transformers.BertTokenizerFast.from_pretrained(str(out))
    for a, b in SAMPLES:
        ours = tok.encode(a, b) if b else tok.encode(a)
        theirs = hf(a, b) if b else hf(a)
        assert theirs["input_ids"] == ours.ids
        assert theirs["token_type_ids"] == ours.type_ids
    assert hf.pad_token_id == 0 and hf.mask_token_id == 4 and hf.cls_token_id == 2


def test_load_roundtrip_and_fingerprint(trained, tmp_path):
    out, tok = trained
    for path in (out, out / "vocab.txt"):
        loaded = load_tokenizer(path)
        assert vocab_fingerprint(loaded) == vocab_fingerprint(tok)
        for a, b in SAMPLES:
            assert loaded.encode(a, b).ids == tok.encode(a, b).ids
    save_tokenizer(tok, tmp_path / "copy")
    assert vocab_fingerprint(load_tokenizer(tmp_path / "copy")) == vocab_fingerprint(tok)
    other = train_tokenizer(
        [write_corpus(tmp_path / "c.txt", seed=9)], tmp_path / "other", vocab_size=120, min_frequency=1, show_progress=False
    )
    assert vocab_fingerprint(other) != vocab_fingerprint(tok)


def _bert_style_vocab(path):
    """Google BERT uncased layout: [PAD], [unused0..98], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += ["!", ",", ".", "a", "c", "e", "f", "the", "hello", "world", "cafe", "##s", "##ing", "walk"]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return tokens


def test_bert_vocab_txt(tmp_path):
    vocab = tmp_path / "bert" / "vocab.txt"
    vocab.parent.mkdir()
    tokens = _bert_style_vocab(vocab)
    tok = load_tokenizer(vocab)
    assert special_tokens(tok) == SpecialTokens(pad=0, unk=100, cls=101, sep=102, mask=103)
    enc = tok.encode("Hello, WORLDS! Café walking zebra")
    assert enc.tokens == ["[CLS]", "hello", ",", "world", "##s", "!", "cafe", "walk", "##ing", "[UNK]", "[SEP]"]
    assert enc.ids[1] == tokens.index("hello")
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertTokenizerFast.from_pretrained(str(vocab.parent))
    assert hf("Hello, WORLDS! Café walking zebra", "the cafe")["input_ids"] == tok.encode(
        "Hello, WORLDS! Café walking zebra", "the cafe"
    ).ids
    # cased on request: "Hello" is then unknown
    assert load_tokenizer(vocab, lowercase=False).encode("Hello", add_special_tokens=False).tokens == ["[UNK]"]


def test_load_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(UserError, match="no tokenizer.json or vocab.txt"):
        load_tokenizer(tmp_path / "emptydir")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="tokenizer.json: not a valid tokenizer"):
        load_tokenizer(tmp_path / "bad")
    no_mask = tmp_path / "nomask.txt"
    no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(UserError, match=r"nomask.txt: .*no \[MASK\] token"):
        load_tokenizer(no_mask)
    dup = tmp_path / "dup.txt"
    dup.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n")
    with pytest.raises(UserError, match=r"dup.txt:7: duplicate token 'hello'"):
        load_tokenizer(dup)


def test_training_reads_gzip_and_fails_cleanly_on_bad_input(tmp_path):
    import gzip

    good = write_corpus(tmp_path / "good.txt")
    gz = tmp_path / "good.txt.gz"
    gz.write_bytes(gzip.compress(good.read_bytes()))
    from_gz = train_tokenizer([gz], tmp_path / "from_gz", vocab_size=150, min_frequency=1, show_progress=False)
    train_tokenizer([good], tmp_path / "from_txt", vocab_size=150, min_frequency=1, show_progress=False)
    assert from_gz.get_vocab_size() == 150 and "c" in vocab_tokens(from_gz)
    same = [(tmp_path / d / "tokenizer.json").read_bytes() for d in ("from_gz", "from_txt")]
    assert same[0] == same[1]

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    with pytest.raises(UserError, match=f"{bad}:2"):
        train_tokenizer([good, bad], tmp_path / "never", vocab_size=150, show_progress=False)
    assert not (tmp_path / "never").exists()
    assert not list(tmp_path.glob(".never*"))


TRAIN_IN_SUBPROCESS = """
import sys
from pathlib import Path
from electra.data.tokenizer import train_tokenizer
train_tokenizer([Path(sys.argv[1])], Path(sys.argv[2]), vocab_size=150, min_frequency=1, show_progress=False)
"""


def test_training_is_bit_reproducible_across_processes(tmp_path):
    """Unpatched ``tokenizers`` gives a different vocab.txt in nearly every process on this corpus
    (the ``##c`` ids, hence the tie-breaks between equally frequent merges, follow hash order)."""
    corpus = write_corpus(tmp_path / "corpus.txt", num_docs=60, seed=123)
    files = {}
    for run, (hash_seed, threads) in enumerate([("1", "1"), ("2", "2"), ("3", "2")]):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "RAYON_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", TRAIN_IN_SUBPROCESS, str(corpus), str(tmp_path / f"tok{run}")],
                       env=env, check=True)
        files[run] = {name: (tmp_path / f"tok{run}" / name).read_bytes() for name in ("vocab.txt", "tokenizer.json")}
    assert files[0] == files[1] == files[2]
    tokens = files[0]["vocab.txt"].decode().splitlines()
    assert len(tokens) == 150 and tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Then the alphabet and the continuation characters, each in code point order, then merges.
    alphabet = [t for t in tokens[5:] if len(t) == 1]
    continuations = [t for t in tokens[5:] if len(t) == 3 and t.startswith("##")]
    assert tokens[5:5 + len(alphabet) + len(continuations)] == sorted(alphabet) + sorted(continuations)
    assert "##q" in continuations  # pinned although "q" only starts words here ("quickly")


def test_continuations_the_first_pass_missed_are_pinned_by_a_second_run(tmp_path, monkeypatch):
    """If the character pass misses a ``##c`` the trainer then creates, training runs again with
    the trainer's own ones pinned, so the result is still the same every time."""
    corpus = write_corpus(tmp_path / "corpus.txt", num_docs=60, seed=123)
    pinned = tokenizer_module._pinned_tokens
    monkeypatch.setattr(tokenizer_module, "_pinned_tokens",
                        lambda tok, chars: [t for t in pinned(tok, chars) if not t.startswith("##")])
    runs = [vocab_tokens(train_tokenizer([corpus], tmp_path / f"tok{i}", vocab_size=300, min_frequency=1,
                                         show_progress=False)) for i in range(3)]
    assert runs[0] == runs[1] == runs[2]
    continuations = [t for t in runs[0] if len(t) == 3 and t.startswith("##")]
    start = runs[0].index(continuations[0])
    assert runs[0][start:start + len(continuations)] == sorted(continuations)
    assert "##e" in continuations and "##q" not in continuations  # exactly the trainer's: "q" only starts words
