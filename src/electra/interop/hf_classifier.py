"""Export a fine-tuned classifier (GLUE or ``--task custom``) as ``ElectraForSequenceClassification``.

The folder holds ``config.json`` (with ``id2label`` / ``label2id``, ``problem_type``),
``model.safetensors`` and the tokenizer files, so ``transformers.pipeline("text-classification",
model=OUT)`` loads it and returns our label strings.

The head. Ours is the official ELECTRA one: dropout, then one linear map of the [CLS] vector,
``logits = W h + b`` (C outputs). HF's ``ElectraClassificationHead`` is fixed to
``out_proj(gelu(dense(h)))`` (dropouts aside) with a ``hidden x hidden`` dense layer and the
exact (erf) GELU; no config option removes the dense layer or the GELU (the ``summary_*``
options belong to ``ElectraSequenceSummary``, used only for multiple choice). It still computes
our map exactly, because the exact GELU satisfies ``gelu(z) - gelu(-z) = z Phi(z) + z Phi(-z) = z``
for every z. So ``dense`` computes ``+z_k`` in row ``2k`` and ``-z_k`` in row ``2k + 1`` (the other
rows are zero), and ``out_proj`` subtracts the pair: ``logit_k = gelu(z_k) - gelu(-z_k) = z_k``.
This needs ``2 C <= hidden_size``; the logits then agree to float rounding (tested to 1e-5).
A regression head trained on scaled targets (STS-B: score / 5) is exported with the scale folded
into ``W`` and ``b``, so the HF model outputs scores on the labels' own scale, as ours predicts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..data.tokenizer import save_tokenizer, special_tokens
from ..errors import UserError
from ..outputs import MARKER, check_output, staged_output
from . import hf_keys
from .hf import SAFETENSORS

ARCHITECTURE = "ElectraForSequenceClassification"


def hf_head_weights(weight: torch.Tensor, bias: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our (C, H) linear head -> HF ``classifier.dense`` / ``classifier.out_proj`` computing the same logits."""
    C, H = weight.shape
    if 2 * C > H:
        raise UserError(f"cannot export a head with {C} outputs into HF's classification head of width {H} "
                        f"(it needs 2 x outputs <= hidden size)")
    dense_w, dense_b = torch.zeros(H, H), torch.zeros(H)
    dense_w[0: 2 * C: 2], dense_b[0: 2 * C: 2] = weight, bias  # row 2k: +z_k
    dense_w[1: 2 * C: 2], dense_b[1: 2 * C: 2] = -weight, -bias  # row 2k+1: -z_k
    out_w = torch.zeros(C, H)
    k = torch.arange(C)
    out_w[k, 2 * k], out_w[k, 2 * k + 1] = 1.0, -1.0  # gelu(z) - gelu(-z) = z
    return {"classifier.dense.weight": dense_w, "classifier.dense.bias": dense_b,
            "classifier.out_proj.weight": out_w, "classifier.out_proj.bias": torch.zeros(C)}


def classifier_config(model, task, tok, dropout: float) -> dict:
    """``config.json`` of the exported classifier: the encoder's shape plus the label names."""
    cfg = hf_keys.encoder_to_hf_config(model.encoder.config, ARCHITECTURE, special_tokens(tok).pad)
    names = list(task.labels) if task.labels else [task.label]
    cfg.update(id2label={str(i): n for i, n in enumerate(names)}, label2id={n: i for i, n in enumerate(names)},
               num_labels=len(names), classifier_dropout=dropout,
               problem_type="regression" if task.is_regression else "single_label_classification",
               finetuning_task=task.name)
    return cfg


def finetuned_length(model, hp) -> int:
    """The token length the classifier saw in fine-tuning (what ``electra predict`` truncates to)."""
    from ..finetuning.glue import DEFAULT_MAX_LENGTH

    return min(hp.max_length or DEFAULT_MAX_LENGTH, model.encoder.config.max_position)


def export_classifier(finetuned: Path, out_dir: Path, overwrite: bool = False) -> Path:
    """Write the fine-tuned model at ``finetuned`` (a seed folder or a single-task output) to ``out_dir``.

    ``out_dir`` follows ``electra.outputs``: built in a temporary sibling and swapped in; an earlier
    export is replaced only with ``overwrite``, a folder of the user's never.
    """
    from ..finetuning.glue import load_finetuned
    from ..finetuning.predict import find_model_dir

    out_dir = Path(out_dir)
    check_output(out_dir, [("fine-tuned model", Path(finetuned))], overwrite=overwrite)
    model_dir = find_model_dir(finetuned)
    model, tok, task, hp, _ = load_finetuned(model_dir)
    state = {"electra." + k: v for k, v in hf_keys.to_hf(model.encoder.state_dict(), "encoder").items()}
    scale = task.label_scale if task.is_regression else 1.0
    state.update(hf_head_weights(scale * model.classifier.weight.detach().float(),
                                 scale * model.classifier.bias.detach().float()))
    with staged_output(out_dir, "export") as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / SAFETENSORS),
                  metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(classifier_config(model, task, tok, hp.dropout), indent=2) + "\n")
        # transformers truncates to the tokenizer's model_max_length: the length the classifier was
        # fine-tuned with, which is also where `electra predict` cuts (never more than the positions).
        save_tokenizer(tok, tmp / "tokenizer", model_max_length=finetuned_length(model, hp))
        for f in (tmp / "tokenizer").iterdir():
            if f.name != MARKER:
                shutil.move(str(f), tmp / f.name)
        shutil.rmtree(tmp / "tokenizer")
    return out_dir
