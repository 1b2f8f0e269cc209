"""Held-out replaced-token-detection metrics over the first steps of pretraining, for our networks
and for the same networks built from `transformers` classes (the witness), on the same batches,
masks, samples schedule and optimizer:

    python benchmarks/rtd_probe.py DATA OUT.jsonl --preset mini --steps 1500 --eval-every 100
    python benchmarks/rtd_probe.py DATA OUT.jsonl --networks transformers --steps 1500
    python benchmarks/rtd_probe.py DATA OUT.jsonl --init bert --set train.temperature=1.5

DATA is a prepared dataset with a held-out split (`electra prepare`). Everything but the two
networks is the project's: masking and sampling (`objectives/rtd.py`), the optimizer and schedule
(`train/optim.py`), the data order (`data/loader.py`), the held-out evaluation (`train/metrics.py`,
fixed masks, no dropout). Writes one JSON record per evaluation (step, held-out precision, recall,
AUC, losses, generator accuracy) and prints it. Used for docs/small-budget-rtd.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from electra.config import ModelConfig, load_config, parse_overrides
from electra.data.loader import BatchIterator
from electra.data.shards import PretrainingData
from electra.data.tokenizer import load_tokenizer, special_tokens
from electra.model.dropout import native_masks
from electra.model.electra import ElectraPair
from electra.model.encoder import init_weights
from electra.objectives.task import PretrainingStep
from electra.train.device import autocast, use_bf16
from electra.train.metrics import evaluate, mask_seed
from electra.train.optim import AdamNoBiasCorrection, clip_grad_norm, lr_at, param_groups


class _Bias(nn.Module):
    """Exposes ``head.bias`` (the vocabulary size is read from it) on the transformers generator."""

    def __init__(self, bias: nn.Parameter):
        super().__init__()
        self.bias = bias


class _HFGenerator(nn.Module):
    def __init__(self, mlm):
        super().__init__()
        self.mlm = mlm
        self.head = _Bias(mlm.generator_lm_head.bias)

    def forward(self, input_ids, segment_ids, attention_mask, positions=None):
        h = self.mlm.electra(input_ids=input_ids, token_type_ids=segment_ids,
                             attention_mask=attention_mask.long()).last_hidden_state  # (B, T, H_g)
        if positions is not None:
            h = torch.gather(h, 1, positions[..., None].expand(-1, -1, h.shape[-1]))  # (B, P, H_g)
        return self.mlm.generator_lm_head(self.mlm.generator_predictions(h))  # (B, P, V)


class _HFDiscriminator(nn.Module):
    def __init__(self, disc):
        super().__init__()
        self.disc = disc

    def forward(self, input_ids, segment_ids, attention_mask):
        return self.disc(input_ids=input_ids, token_type_ids=segment_ids, attention_mask=attention_mask.long()).logits


class TransformersPair(nn.Module):
    """ElectraForMaskedLM + ElectraForPreTraining sharing the whole embedding block, output layer tied
    to the shared token embeddings; transformers' own initialisation."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

        def hf_config(e):
            return ElectraConfig(vocab_size=e.vocab_size, embedding_size=e.embedding_size, hidden_size=e.hidden_size,
                                 num_hidden_layers=e.num_layers, num_attention_heads=e.num_heads,
                                 intermediate_size=e.ffn_size, max_position_embeddings=e.max_position,
                                 hidden_dropout_prob=e.dropout, attention_probs_dropout_prob=e.dropout,
                                 layer_norm_eps=e.layer_norm_eps)

        disc = ElectraForPreTraining._from_config(hf_config(cfg.discriminator()), attn_implementation="sdpa")
        genr = ElectraForMaskedLM._from_config(hf_config(cfg.generator()), attn_implementation="sdpa")
        genr.electra.embeddings = disc.electra.embeddings
        genr.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
        self.discriminator = _HFDiscriminator(disc)
        self.generator = _HFGenerator(genr)


def bert_init(model: nn.Module) -> None:
    """The project's initialisation before issue 17 (and transformers'): normal(0, 0.02) for every
    dense layer and embedding, zero biases, unit LayerNorm."""
    init_weights(model)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)


@torch.no_grad()
def token_cosine(model: ElectraPair, data: PretrainingData) -> float:
    """Mean cosine similarity between the discriminator's final hidden states of two real tokens of
    the same held-out sequence: near 1 means every token looks alike (representation collapse)."""
    was_training = model.training
    model.eval()
    b = {k: torch.from_numpy(v) for k, v in data.get_batch(np.arange(8)).items()}
    am = b["attention_mask"]
    h = torch.nn.functional.normalize(model.discriminator.encoder(b["input_ids"], b["segment_ids"], am), dim=-1)
    sims = h @ h.transpose(1, 2)  # (B, T, T)
    pair = am[:, :, None] & am[:, None, :]
    model.train(was_training)
    return float(sims[pair].mean())


def copy_into_transformers(ours: ElectraPair, peer: TransformersPair) -> None:
    """Give the transformers pair exactly our weights (through the export key map)."""
    from electra.interop.hf_keys import TIED_LM_HEAD, to_hf

    peer.discriminator.disc.load_state_dict(to_hf(ours.discriminator.state_dict(), "discriminator"))
    missing, unexpected = peer.generator.mlm.load_state_dict(to_hf(ours.generator.state_dict(), "generator"),
                                                             strict=False)
    assert not unexpected and set(missing) <= {TIED_LM_HEAD[0]}, (missing, unexpected)


class Arm:
    """One network pair with its own optimizer and mask generator, fed the shared batches."""

    def __init__(self, name: str, model: nn.Module, cfg, special, T: int):
        tc = cfg.train
        self.name, self.model, self.tc = name, model, tc
        self.optimizer = AdamNoBiasCorrection(param_groups(model, tc.weight_decay), lr=tc.learning_rate,
                                              betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps)
        self.step_module = PretrainingStep(model, tc, special, tc.max_predictions(T))
        self.mask_gen = torch.Generator()

    def train_step(self, step: int, batch: dict, lr: float, bf16: bool) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.mask_gen.manual_seed(mask_seed(self.tc.seed, step, 0))
        torch.manual_seed(mask_seed(self.tc.seed, step, 1))  # dropout draws: the same for every arm
        with native_masks(), autocast(torch.device("cpu"), bf16):  # PyTorch's own masks, as the transformers arm's
            out = self.step_module(batch["input_ids"], batch["segment_ids"], batch["attention_mask"], self.mask_gen)
        out.loss.backward()
        clip_grad_norm(self.model.parameters(), self.tc.clip_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return out.loss.item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--set", action="append", default=[], metavar="section.key=value")
    ap.add_argument("--networks", choices=["ours", "transformers", "both"], default="ours",
                    help="both: ours and the transformers pair started from the same weights, in lockstep")
    ap.add_argument("--init", choices=["default", "bert"], default="default",
                    help="default: the model's own init; bert: normal(0.02) for every dense layer (ours only)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    cfg = load_config(a.preset, overrides=parse_overrides(a.set))
    tc = cfg.train
    train, heldout = PretrainingData(a.data, "train"), PretrainingData(a.data, "heldout")
    tok = load_tokenizer(train.tokenizer_dir)
    special = special_tokens(tok)
    cfg.model.vocab_size = tok.get_vocab_size()
    T = train.max_length
    torch.manual_seed(tc.seed)
    models: dict[str, nn.Module] = {}
    if a.networks in ("ours", "both"):
        models["ours"] = ElectraPair(cfg.model)
        if a.init == "bert":
            bert_init(models["ours"])
    if a.networks in ("transformers", "both"):
        models["transformers"] = TransformersPair(cfg.model)
        if a.networks == "both":
            copy_into_transformers(models["ours"], models["transformers"])
    arms = [Arm(name, m, cfg, special, T) for name, m in models.items()]
    loader = BatchIterator(train, tc.batch_size, seed=tc.seed)
    bf16 = use_bf16(torch.device("cpu"), tc.precision, cfg.model.hidden_size)  # as the training loop decides
    a.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with a.out.open("w") as f:
        f.write(json.dumps({"config": cfg.to_dict(), "networks": a.networks, "init": a.init}) + "\n")
        for step in range(a.steps):
            lr = lr_at(step, tc.learning_rate, tc.warmup_steps, tc.max_steps)
            batch = next(loader)
            losses = {arm.name: arm.train_step(step, batch, lr, bf16) for arm in arms}
            if len(arms) > 1:
                f.write(json.dumps({"step": step + 1, "train_loss": losses}) + "\n")
            if (step + 1) % a.eval_every == 0:
                for arm in arms:
                    write_eval(f, arm, heldout, step + 1, lr, time.time() - t0, bf16, a.eval_batches)


def write_eval(f, arm: Arm, heldout: PretrainingData, step: int, lr: float, seconds: float, bf16: bool,
               eval_batches: int) -> None:
    tc = arm.tc
    rec = evaluate(arm.step_module, heldout, tc.seed, torch.device("cpu"), bf16, eval_batches, tc.batch_size)
    rec = {"step": step, "networks": arm.name, "lr": lr, "seconds": round(seconds, 1),
           **{k: round(v, 4) for k, v in rec.items() if isinstance(v, float)}}
    if isinstance(arm.model, ElectraPair):
        rec["disc_token_cosine"] = round(token_cosine(arm.model, heldout), 4)
    f.write(json.dumps(rec) + "\n")
    f.flush()
    print(f"{arm.name:>12} step {rec['step']:5d}  P {rec['disc_precision']:.3f}  R {rec['disc_recall']:.3f}  "
          f"AUC {rec['disc_auc']:.3f}  disc {rec['disc_loss']:.3f}  gen {rec['gen_loss']:.2f} "
          f"acc {rec['gen_acc']:.3f}  repl {rec['replaced_frac']:.3f}  cos {rec.get('disc_token_cosine', float('nan')):.3f}  "
          f"{rec['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
