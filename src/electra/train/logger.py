"""Metrics output: one fixed-format console line, a JSONL file and TensorBoard events."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# The order and format of the console line; keys missing from a record are left out.
_LINE = [("loss", "loss {:.4f}"), ("gen_loss", "gen {:.3f}"), ("gen_acc", "gen_acc {:.3f}"),
         ("sampled_acc", "samp_acc {:.3f}"), ("disc_loss", "disc {:.4f}"), ("disc_acc", "disc_acc {:.3f}"),
         ("disc_precision", "P {:.3f}"), ("disc_recall", "R {:.3f}"), ("disc_auc", "AUC {:.3f}"), ("replaced_frac", "repl {:.3f}"),
         ("lr", "lr {:.2e}"), ("grad_norm", "gnorm {:.2f}"), ("tokens_per_s", "tok/s {:,.0f}"),
         ("mfu", "mfu {:.1%}"), ("flops", "flops {:.3g}")]


def format_line(record: dict[str, Any]) -> str:
    parts = [f"step {record['step']}"] + [fmt.format(record[k]) for k, fmt in _LINE
                                         if k in record and record[k] is not None]
    return " | ".join(parts)


class MetricsLogger:
    """Appends records to ``metrics.jsonl`` and TensorBoard. On resume, drops records past ``resume_step``
    (a killed run may have logged steps its last checkpoint does not contain)."""

    def __init__(self, run_dir: Path, resume_step: int = 0, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= resume_step]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.file = open(self.path, "a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step + 1 if resume_step else None)
            except ImportError:  # tensorboard is a dependency, but never let logging stop a run
                self.writer = None

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self.file.write(json.dumps(clean) + "\n")
        self.file.flush()
        if self.writer is not None:
            prefix = record.get("split", "train")
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "split"):
                    self.writer.add_scalar(f"{prefix}/{k}", v, record["step"])

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


def _step_of(line: str) -> float:
    """The step of one metrics.jsonl line; a blank or torn line (a killed run's last write) is dropped."""
    try:
        record = json.loads(line)
        return record.get("step", 0) if isinstance(record, dict) else math.inf
    except ValueError:
        return math.inf


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl; a torn last line (a killed run's last write) is left out,
    a line that does not parse anywhere else is an error."""
    path = Path(run_dir) / "metrics.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            if i < len(lines) - 1:
                raise
    return records
