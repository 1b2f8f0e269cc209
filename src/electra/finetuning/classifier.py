"""The GLUE classifier ([CLS] vector -> dropout -> linear) and a fine-tuned one saved and loaded.

A saved model is a folder: ``model.safetensors`` (the classifier's weights), ``finetune.json``
(task, seed, hyper-parameters, encoder shape, labels, vocabulary fingerprint, dev scores) and
``tokenizer/``; written atomically, loaded with every mismatch a ``UserError``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ..atomic import atomic_dir, commit_dir
from ..config import EncoderConfig
from ..data.tokenizer import load_tokenizer, save_tokenizer, vocab_fingerprint
from ..errors import UserError
from ..model.dropout import Dropout
from ..model.encoder import Encoder, glorot_init
from ..readers import read_json, read_safetensors, reading
from .glue_tasks import TASKS, GlueTask, get_task, task_from_spec, task_spec
from .optim import FinetuneHParams

FINETUNE_CONFIG = "finetune.json"
#: The share of a batch's positions that must be padding for the classifier to unpad it on a CPU:
#: below it the scatter and gather around attention cost about what the padding saves (Small, 2-core
#: Xeon, examples/s unpadded against padded: length-grouped SST-2 and RTE, 12% and 8% padding,
#: 0.94x; MRPC 32% 1.02-1.05x; RTE 51% 1.05-1.17x; SST-2 67% 1.15-1.29x; benchmarks/finetune_peer.py's
#: ``padded`` setting, docs/speed.md). Re-checked with the rounded row counts (Zen 5 EPYC, mid-run
#: epochs, 2026-12-08): length-grouped SST-2 and RTE unpadded ran 0.90-1.02x padded, so it stays.
MIN_PADDING = 0.25


class GlueClassifier(nn.Module):
    """Encoder -> [CLS] vector -> dropout -> linear: class logits, or one score for regression."""

    def __init__(self, encoder: Encoder, num_outputs: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_outputs)
        glorot_init(self.classifier)
        self.unpad = True
        """On a CPU, run the dense layers on the batch's real tokens alone (False: padded, for comparison)."""

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, segments, mask -> (B, num_outputs) logits."""
        # On a CPU the dense layers skip a batch's padding where it is worth it (model/unpadded.py); on
        # a GPU finding the real tokens would make the host wait for the device at every step.
        unpad = (self.unpad and input_ids.device.type == "cpu"
                 and 1 - attention_mask.sum().item() / attention_mask.numel() >= MIN_PADDING)
        h = self.encoder(input_ids, segment_ids, attention_mask, first_positions=1, unpad=unpad)  # (B, 1, H): [CLS] only
        return self.classifier(self.dropout(h[:, 0]))  # (B, C)


def save_finetuned(model: GlueClassifier, tok, task: GlueTask, hp: FinetuneHParams, seed: int,
                   dev: dict, out_dir: Path) -> None:
    tmp = atomic_dir(out_dir)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "electra-glue"})
    meta = {"task": task.name, "task_spec": None if task.name in TASKS else task_spec(task),
            "seed": seed, "hparams": dataclasses.asdict(hp),
            "encoder": dataclasses.asdict(model.encoder.config), "num_outputs": task.num_outputs,
            "labels": list(task.labels) if task.labels else None,
            "vocab_fingerprint": vocab_fingerprint(tok), "dev": dev}
    (tmp / FINETUNE_CONFIG).write_text(json.dumps(meta, indent=2))
    save_tokenizer(tok, tmp / "tokenizer")
    commit_dir(tmp, out_dir)


def load_finetuned(path: Path) -> tuple[GlueClassifier, object, GlueTask, FinetuneHParams, dict]:
    """A model saved by ``save_finetuned``: (classifier, tokenizer, task, hparams, metadata)."""
    path = Path(path)
    meta_path = path / FINETUNE_CONFIG
    if not meta_path.is_file():
        raise UserError(f"{path} is not a fine-tuned GLUE model (no {FINETUNE_CONFIG})")
    meta = read_json(meta_path)
    with reading(meta_path):
        task = task_from_spec(meta["task_spec"]) if meta.get("task_spec") else get_task(meta["task"])
        hp = FinetuneHParams(**meta["hparams"])
        model = GlueClassifier(Encoder(EncoderConfig(**meta["encoder"])), meta["num_outputs"], hp.dropout)
    state = read_safetensors(path / "model.safetensors")
    missing = set(model.state_dict()) - set(state)
    if missing:
        raise UserError(f"{path}/model.safetensors lacks {len(missing)} tensors of the classifier, e.g. {sorted(missing)[0]}")
    model.load_state_dict(state)
    tok = load_tokenizer(path / "tokenizer")
    if vocab_fingerprint(tok) != meta["vocab_fingerprint"]:
        raise UserError(f"{path}: the tokenizer files do not match the vocabulary the model was fine-tuned with")
    return model, tok, task, hp, meta
