"""Reading GLUE files: the real ones in ../shared/data/glue (official row counts and label sets),
fixtures in the exact layouts of the files we do not have (MNLI, QQP, QNLI train), and bad input."""

from pathlib import Path

import numpy as np
import pytest

from electra.errors import UserError
from electra.finetuning.batching import Features, cached_features, collate, tokenize_split, train_batches
from electra.finetuning.glue import resolve_tasks
from electra.finetuning.glue_tasks import TASKS, get_task, load_dev, load_tests, load_train, read_split
from electra.paths import data_dir

GLUE = data_dir() / "glue"

#: (task, file) -> official number of data rows.
OFFICIAL_ROWS = {
    ("CoLA", "train.tsv"): 8551, ("CoLA", "dev.tsv"): 1043, ("CoLA", "test.tsv"): 1063,
    ("SST-2", "train.tsv"): 67349, ("SST-2", "dev.tsv"): 872, ("SST-2", "test.tsv"): 1821,
    ("MRPC", "train.tsv"): 3668, ("MRPC", "dev.tsv"): 408, ("MRPC", "test.tsv"): 1725,
    ("STS-B", "train.tsv"): 5749, ("STS-B", "dev.tsv"): 1500, ("STS-B", "test.tsv"): 1379,
    ("QQP", "train.tsv"): 363846, ("QQP", "dev.tsv"): 40430, ("QQP", "test.tsv"): 390965,
    ("MNLI", "train.tsv"): 392702, ("MNLI", "dev_matched.tsv"): 9815, ("MNLI", "dev_mismatched.tsv"): 9832,
    ("MNLI", "test_matched.tsv"): 9796, ("MNLI", "test_mismatched.tsv"): 9847,
    ("MNLI", "../diagnostic/diagnostic.tsv"): 1104,
    ("QNLI", "train.tsv"): 104743, ("QNLI", "dev.tsv"): 5463, ("QNLI", "test.tsv"): 5463,
    ("RTE", "train.tsv"): 2490, ("RTE", "dev.tsv"): 277, ("RTE", "test.tsv"): 3000,
    ("WNLI", "train.tsv"): 635, ("WNLI", "dev.tsv"): 71, ("WNLI", "test.tsv"): 146,
}


def _real_files():
    for (task, name), rows in OFFICIAL_ROWS.items():
        yield pytest.param(task, name, rows, id=f"{task}/{name}")


@pytest.mark.parametrize("task_name,file_name,rows", list(_real_files()))
def test_real_glue_file_loads_with_official_rows_and_labels(task_name, file_name, rows):
    path = GLUE / task_name / file_name
    if not path.is_file():
        pytest.skip(f"{path} is not in the shared data (see shared/data/SOURCES.md: MNLI, QQP and QNLI train are missing)")
    task = TASKS[task_name]
    labeled = not (file_name.startswith("test") or "diagnostic" in file_name)
    split = read_split(task, path, labeled=labeled)
    assert len(split) == rows
    assert split.skipped == {}
    assert all(isinstance(t, str) for t in split.text_a[:100])
    assert (split.text_b is None) == (task.text_b is None)
    if not labeled:
        assert split.labels is None
        assert split.ids[:3] == ["0", "1", "2"]  # the leaderboard's index column
    elif task.is_regression:
        assert split.labels.dtype == np.float32 and 0 <= split.labels.min() and split.labels.max() <= 5
    else:
        assert set(np.unique(split.labels)) == set(range(len(task.labels)))  # every class occurs


def test_real_text_columns_are_the_sentences():
    if not (GLUE / "MRPC" / "dev.tsv").is_file():
        pytest.skip("shared GLUE data not present")
    mrpc = load_dev(TASKS["MRPC"], GLUE)["dev"]
    assert mrpc.text_a[0].startswith("He said the foodservice pie business")
    assert mrpc.labels[0] == 1
    cola = load_train(TASKS["CoLA"], GLUE)  # headerless: label is column 2, sentence column 4
    assert cola.text_a[0].startswith("Our friends won't buy this analysis") and cola.labels[0] == 1
    stsb = load_dev(TASKS["STS-B"], GLUE)["dev"]
    assert stsb.labels[:2].tolist() == [5.0, 4.75]


# --- fixtures in the exact GLUE layouts ------------------------------------------------------

MNLI_TRAIN_HEADER = ("index promptID pairID genre sentence1_binary_parse sentence2_binary_parse sentence1_parse "
                     "sentence2_parse sentence1 sentence2 label1 gold_label").split()
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + "label2 label3 label4 label5 gold_label".split()
MNLI_TEST_HEADER = MNLI_TRAIN_HEADER[:10]
PAIRS = [("A man is playing a guitar.", "A person plays music.", "entailment"),
         ("The cat sleeps on the sofa.", "The cat is running outside.", "contradiction"),
         ("Two kids walk to school.", "The kids are late.", "neutral")]


def _write(path: Path, header, rows, bom=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mnli_row(i, s1, s2, labels, n_cols):
    parse = lambda s: "( " + " ".join(s.rstrip(".").split()) + " )"  # noqa: E731 - stand-in parses
    row = [i, 1000 + i, f"{1000 + i}e", "fiction", parse(s1), parse(s2), f"(ROOT {parse(s1)})", f"(ROOT {parse(s2)})", s1, s2]
    return row + list(labels)[: n_cols - 10]


def write_mnli(glue: Path, n: int = 30, dash_rows: int = 0) -> None:
    d = glue / "MNLI"
    train = [_mnli_row(i, *PAIRS[i % 3][:2], [PAIRS[i % 3][2]] * 2, 12) for i in range(n)]
    _write(d / "train.tsv", MNLI_TRAIN_HEADER, train)
    for name in ("dev_matched", "dev_mismatched"):
        dev = [_mnli_row(i, *PAIRS[i % 3][:2], [PAIRS[i % 3][2]] * 6, 16) for i in range(n // 3)]
        dev += [_mnli_row(100 + i, "A dog barks.", "A cat meows.", ["neutral", "contradiction", "entailment",
                                                                     "neutral", "contradiction", "-"], 16)
                for i in range(dash_rows)]
        _write(d / f"{name}.tsv", MNLI_DEV_HEADER, dev)
    for name in ("test_matched", "test_mismatched"):
        _write(d / f"{name}.tsv", MNLI_TEST_HEADER, [_mnli_row(i, *PAIRS[i % 3][:2], [], 10) for i in range(7)])
    _write(glue / "diagnostic" / "diagnostic.tsv", ["index", "sentence1", "sentence2"],
           [(i, *PAIRS[i % 3][:2]) for i in range(5)])


def write_qqp(glue: Path, n: int = 20, broken_rows: int = 0) -> None:
    d = glue / "QQP"
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    rows = [(i, 2 * i, 2 * i + 1, f"How do I learn {w}?", f"What is the best way to learn {w}?", i % 2)
            for i, w in enumerate(["python", "chess", "piano", "french", "math"] * (n // 5))]
    lines = rows + [(900 + i, 1, 2, "What is a question with a broken")[:4] for i in range(broken_rows)]
    _write(d / "train.tsv", header, lines)
    _write(d / "dev.tsv", header, rows[: n // 2])
    _write(d / "test.tsv", ["id", "question1", "question2"], [(i, r[3], r[4]) for i, r in enumerate(rows[:6])])


def write_qnli_train(glue: Path, n: int = 12) -> None:
    rows = [(i, "Where is the Eiffel Tower?", "The Eiffel Tower is in Paris." if i % 2 else "Paris has many cafes.",
             "entailment" if i % 2 else "not_entailment") for i in range(n)]
    _write(glue / "QNLI" / "train.tsv", ["index", "question", "sentence", "label"], rows)
    _write(glue / "QNLI" / "dev.tsv", ["index", "question", "sentence", "label"], rows[:4])


def test_mnli_layout(tmp_path):
    write_mnli(tmp_path, n=30, dash_rows=2)
    task = get_task("mnli")
    train = load_train(task, tmp_path)
    assert len(train) == 30 and train.text_a[0] == "A man is playing a guitar." and train.text_b[0] == "A person plays music."
    assert [task.labels[i] for i in train.labels[:3]] == ["entailment", "contradiction", "neutral"]
    dev = load_dev(task, tmp_path)
    assert list(dev) == ["MNLI-m", "MNLI-mm"]
    # gold label "-" (no annotator consensus) is known noise: skipped and counted, not an error
    assert len(dev["MNLI-m"]) == 10 and dev["MNLI-m"].skipped == {"label '-'": 2}
    tests = load_tests(task, tmp_path)
    assert list(tests) == ["MNLI-m", "MNLI-mm", "AX"]
    assert tests["MNLI-mm"].ids == [str(i) for i in range(7)] and tests["AX"].text_b[1] == PAIRS[1][1]


def test_qqp_layout_and_counted_skips(tmp_path):
    write_qqp(tmp_path, n=20, broken_rows=3)
    task = get_task("QQP")
    train = load_train(task, tmp_path)
    assert len(train) == 20 and train.skipped == {"malformed row": 3}
    assert train.text_a[1] == "How do I learn chess?" and train.labels[:4].tolist() == [0, 1, 0, 1]
    tests = load_tests(task, tmp_path)
    assert tests["QQP"].text_b[0] == "What is the best way to learn python?" and tests["QQP"].ids[0] == "0"


def test_qnli_train_layout(tmp_path):
    write_qnli_train(tmp_path)
    train = load_train(get_task("qnli"), tmp_path)
    assert len(train) == 12 and train.labels[:2].tolist() == [1, 0]  # not_entailment is class 1
    assert train.text_a[0] == "Where is the Eiffel Tower?"


def test_all_means_every_task_present(tmp_path):
    write_qqp(tmp_path)
    write_qnli_train(tmp_path)
    assert [t.name for t in resolve_tasks("all", tmp_path)] == ["QQP", "QNLI"]
    with pytest.raises(UserError, match="MNLI.*missing"):
        resolve_tasks(["mnli"], tmp_path)
    with pytest.raises(UserError, match="unknown GLUE task"):
        get_task("glue-tastic")


# --- bad input -------------------------------------------------------------------------------

def test_missing_column_names_file_and_column(tmp_path):
    _write(tmp_path / "RTE" / "train.tsv", ["index", "sentence1", "label"], [(0, "a", "entailment")])
    with pytest.raises(UserError, match=r"RTE/train.tsv: missing column\(s\) 'sentence2'"):
        load_train(TASKS["RTE"], tmp_path)


def test_malformed_row_names_line(tmp_path):
    rows = [(0, "a b", "c d", "entailment"), (1, "only two fields")]
    _write(tmp_path / "RTE" / "train.tsv", ["index", "sentence1", "sentence2", "label"], rows)
    with pytest.raises(UserError, match=r"train.tsv, line 3: malformed row \(2 tab-separated fields, the header has 4\)"):
        load_train(TASKS["RTE"], tmp_path)


def test_label_outside_set_names_line(tmp_path):
    _write(tmp_path / "SST-2" / "train.tsv", ["sentence", "label"], [("good", 1), ("bad", 0), ("meh", 2)])
    with pytest.raises(UserError, match=r"line 4: label '2' is not one of SST-2's labels 0, 1"):
        load_train(TASKS["SST-2"], tmp_path)
    header = "index genre filename year old_index source1 source2 sentence1 sentence2 score".split()
    _write(tmp_path / "STS-B" / "train.tsv", header, [(0, "g", "f", "y", "0", "n", "n", "a", "b", "7.5")])
    with pytest.raises(UserError, match=r"line 2: STS-B score '7.5' is not a number in \[0, 5\]"):
        load_train(TASKS["STS-B"], tmp_path)


def test_missing_file_and_bom(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_train(TASKS["CoLA"], tmp_path)
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    _write(tmp_path / "MRPC" / "train.tsv", header, [(1, 1, 2, "x y", "y x")], bom=True)
    assert load_train(TASKS["MRPC"], tmp_path).labels.tolist() == [1]  # BOM does not hide "Quality"


# --- features ---------------------------------------------------------------------------------

def _word_tokenizer(words):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def test_pair_features_truncate_longest_first_and_collate(tmp_path):
    tok = _word_tokenizer(list("abcdefgh"))
    rows = [(0, "a b c d e f", "g h", "entailment"), (1, "a", "b", "not_entailment")]
    _write(tmp_path / "RTE" / "train.tsv", ["index", "sentence1", "sentence2", "label"], rows)
    split = load_train(TASKS["RTE"], tmp_path)
    feats = tokenize_split(split, tok, max_length=8)  # 5 text tokens fit: A keeps 3, B keeps 2
    first = feats.ids[feats.starts[0]: feats.starts[1]].tolist()
    assert first == [2, 5, 6, 7, 3, 11, 12, 3] and feats.len_a.tolist() == [5, 3]
    batch = collate(feats, np.array([1, 0]), pad_id=0)
    assert batch["input_ids"].tolist()[0] == [2, 5, 3, 6, 3, 0, 0, 0]  # padded to the longest in the batch
    assert batch["segment_ids"].tolist() == [[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]]
    assert batch["attention_mask"].sum(1).tolist() == [5, 8]
    assert batch["labels"].tolist() == [1, 0]


def test_feature_cache_is_reused_not_retokenized(tmp_path, monkeypatch):
    tok = _word_tokenizer(list("abcdefgh"))
    _write(tmp_path / "SST-2" / "dev.tsv", ["sentence", "label"], [("a b c", 1), ("d e", 0)])
    split = load_dev(TASKS["SST-2"], tmp_path)["dev"]
    first = cached_features(split, tok, 128, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("re-tokenized a cached split")

    monkeypatch.setattr("electra.finetuning.batching.tokenize_split", no_tokenizing)
    again = cached_features(split, tok, 128, tmp_path / "cache")
    assert again.ids.tolist() == first.ids.tolist() and again.labels.tolist() == [1, 0]
    with pytest.raises(AssertionError):  # another max length is another key
        cached_features(split, tok, 64, tmp_path / "cache")


def test_length_grouped_batches_cover_the_epoch_once_with_less_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    feats = Features(np.ones(starts[-1], dtype=np.int32), starts, np.full(1000, 3, dtype=np.int32),
                     np.arange(1000, dtype=np.int64))

    def epoch(group, seed):
        batches = list(train_batches(feats, 32, 0, np.random.default_rng(seed), group))
        return [b["labels"].numpy() for b in batches], sum(b["input_ids"].numel() for b in batches)

    plain, plain_cells = epoch(0, 1)
    grouped, grouped_cells = epoch(10, 1)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))  # every example once
    assert len(grouped) == len(plain) == 32
    assert grouped_cells < 0.7 * plain_cells  # padded (B, T) cells: far fewer when grouped
    assert plain_cells == sum(32 * lengths[b].max() for b in plain[:-1]) + len(plain[-1]) * lengths[plain[-1]].max()
    spread = [lengths[b].max() - lengths[b].min() for b in grouped]
    assert np.median(spread) < 20  # similar lengths within a batch (lengths span 5-119)
    assert [b.tolist() for b in epoch(10, 2)[0]] != [b.tolist() for b in grouped]  # the order is random
