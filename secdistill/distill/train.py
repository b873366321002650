"""Knowledge-distillation training loop: per-head KL to the teacher + CE to the hard label.

A plain loop rather than a ``transformers.Trainer`` subclass: the loss needs per-head masks and
slices, batching needs length buckets over two text variants (title dropout), and on 2 CPU cores
the Trainer's extra machinery (accelerate, eval loops, checkpoints) is cost without benefit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from secdistill.distill.config import TrainSettings
from secdistill.distill.dataset import Split
from secdistill.distill.errors import SettingsError
from secdistill.schemas.task import TaskSpec

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a training run did."""

    steps: int
    epochs: float
    seconds: float
    final_loss: float
    examples_per_s: float


def kd_loss(logits: Any, targets: Any, hard: Any, task: TaskSpec, alpha: float, temperature: float,
            prior_shift: Any | None = None) -> Any:
    """Sum over heads of weight * (alpha*T^2*KL(teacher_T || student_T) + (1-alpha)*CE), masked.

    ``targets`` holds each head's teacher distribution (smoothed one-hot where the teacher gave
    none); ``hard`` the class index or -1 when the head is unlabelled for that row.
    """
    import torch
    import torch.nn.functional as F

    total = logits.new_zeros(())
    weight_sum = 0.0
    for j, (head, (lo, hi)) in enumerate(zip(task.heads, task.slices().values())):
        mask = hard[:, j] >= 0
        if not bool(mask.any()):
            continue
        z = logits[mask, lo:hi]
        if prior_shift is not None:  # logit adjustment (Menon et al. 2021) for macro-F1
            z = z + prior_shift[lo:hi]
        p_t = targets[mask, lo:hi]
        # Sharpen/soften the teacher with the same T as the student (Hinton et al. 2015).
        p_t_T = torch.softmax(torch.log(p_t.clamp_min(1e-8)) / temperature, dim=-1)
        log_q_T = F.log_softmax(z / temperature, dim=-1)
        kl = (p_t_T * (torch.log(p_t_T.clamp_min(1e-8)) - log_q_T)).sum(-1).mean()
        ce = F.cross_entropy(z, hard[mask, j])
        total = total + head.weight * (alpha * temperature**2 * kl + (1 - alpha) * ce)
        weight_sum += head.weight
    return total / max(weight_sum, 1e-8)


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids without padding: batches pad to their own longest row."""
    return tokenizer(texts, truncation=True, max_length=max_length, padding=False)["input_ids"]


def calibration_ids(tokenizer: Any, texts: list[str], rows: int, max_length: int, seed: int
                    ) -> list[list[int]]:
    """A seeded sample of ``rows`` texts, tokenised, for int8 smoothing and precision search."""
    rows = min(rows, len(texts))
    idx = np.sort(np.random.default_rng(seed).choice(len(texts), rows, replace=False))
    return encode_texts(tokenizer, [texts[i] for i in idx], max_length) if rows else []


def length_batches(lengths: np.ndarray, batch_size: int, bucket: int, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    """Shuffled batches of similar lengths: sort within random windows, then shuffle batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * bucket
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(ids: list[list[int]], pad_id: int) -> dict[str, Any]:
    """Pad a batch to its longest row; attention mask and token types as BERT expects."""
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(mask)}


def train_student(model: Any, tokenizer: Any, split: Split, targets: np.ndarray, task: TaskSpec,
                  cfg: TrainSettings, max_length: int, title_dropout: float) -> TrainResult:
    """Train ``model`` in place on ``split`` towards ``targets``; seeded and reproducible."""
    import torch

    from secdistill.distill.progress import progress_bar

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(training_threads(cfg.threads, torch.get_num_threads()))
    rng = np.random.default_rng(cfg.seed)
    with_title = encode_texts(tokenizer, split.texts, max_length)
    without_title = encode_texts(tokenizer, split.texts_no_title, max_length)
    lengths = np.array([len(x) for x in with_title])
    steps_per_epoch = math.ceil(len(split) / cfg.batch_size)
    total = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))
    t_all = torch.from_numpy(targets.astype(np.float32))
    h_all = torch.from_numpy(split.hard)
    prior = _prior_shift(split, task, cfg.logit_adjust, cfg.logit_adjust_heads)
    bf16 = use_bf16(cfg.precision)
    log.info("training %d steps, batch %d, %s autocast", total, cfg.batch_size, "bf16" if bf16 else "no")

    head_prefixes = ("classifier", "bert.pooler") if cfg.pooler_at_head_lr else ("classifier",)
    head_params = [p for n, p in model.named_parameters() if n.startswith(head_prefixes)]
    body_params = [p for n, p in model.named_parameters() if not n.startswith(head_prefixes)]
    optim = torch.optim.AdamW([{"params": body_params, "lr": cfg.lr},
                               {"params": head_params, "lr": cfg.head_lr}],
                              weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    model.train()
    step, loss_ema, started = 0, float("nan"), time.perf_counter()
    with progress_bar(cfg.progress) as bar:
        job = bar.add_task("distilling", total=total)
        while step < total:
            for idx in length_batches(lengths, cfg.batch_size, cfg.bucket_size, rng):
                if step >= total:
                    break
                drop = rng.random(len(idx)) < title_dropout
                ids = [without_title[i] if d else with_title[i] for i, d in zip(idx, drop)]
                batch = collate(ids, tokenizer.pad_token_id)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = model(**batch).logits
                loss = kd_loss(logits.float(), t_all[idx], h_all[idx], task, cfg.alpha,
                               cfg.temperature, prior)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optim.step()
                sched.step()
                step += 1
                value = float(loss.detach())
                loss_ema = value if math.isnan(loss_ema) else 0.98 * loss_ema + 0.02 * value
                bar.update(job, advance=1, description=f"distilling loss={loss_ema:.3f}")
                if step % 100 == 0:
                    log.info("step %d/%d loss %.4f (%.1f ex/s)", step, total, loss_ema,
                             step * cfg.batch_size / (time.perf_counter() - started))
    model.eval()
    seconds = time.perf_counter() - started
    return TrainResult(step, step / steps_per_epoch, seconds, loss_ema,
                       step * cfg.batch_size / max(seconds, 1e-9))


def training_threads(requested: int | None, default: int) -> int:
    """Requested threads, else 1 on a busy machine: OpenMP barriers stall when a thread is
    descheduled, and on the shared 2-core box 2 threads ran the quick preset 4x slower than 1."""
    if requested:
        return requested
    import os

    busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    if busy:
        log.info("load average %.1f on %d cores: training with 1 thread", os.getloadavg()[0],
                 os.cpu_count() or 1)
    return 1 if busy else default


def use_bf16(precision: str) -> bool:
    """bf16 autocast when asked, or on ``auto`` when the CPU computes bf16 natively."""
    if precision != "auto":
        return precision == "bf16"
    from secdistill.distill.export import cpu_flags

    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def _prior_shift(split: Split, task: TaskSpec, tau: float, heads: list[str] | None = None
                 ) -> Any | None:
    """tau * log(class prior) per logit of ``heads`` (all when empty), from the training labels;
    None when tau is 0."""
    if tau <= 0:
        return None
    import torch

    slices = task.slices()
    unknown = sorted(set(heads or ()) - set(slices))
    if unknown:
        raise SettingsError(f"train.logit_adjust_heads names unknown heads {unknown}; the task has {list(slices)}")
    shift = np.zeros(task.num_logits, dtype=np.float32)
    for j, (name, (lo, hi)) in enumerate(slices.items()):
        if heads and name not in heads:
            continue
        col = split.hard[:, j]
        counts = np.bincount(col[col >= 0], minlength=hi - lo).astype(np.float64) + 1.0
        shift[lo:hi] = tau * np.log(counts / counts.sum())
    return torch.from_numpy(shift)
