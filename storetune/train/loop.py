"""LoRA supervised fine-tuning, written for speed on a CPU.

Why a loop of our own rather than transformers.Trainer: on 2 CPU cores the wins
that matter are (1) bf16 autocast on CPUs with AVX-512 BF16, (2) length-grouped
batches with little padding, and (3) computing the vocabulary projection only at
the positions that carry loss (assistant tokens), which skips most of the
49k-wide lm_head work. Checkpoints are small (LoRA + optimizer state) and carry the
RNG state so a resumed run follows the uninterrupted one.

The same loop runs on a GPU (device auto) and under `accelerate launch` / torchrun
with several processes: each rank takes its share of every optimizer step's
micro-batches and the (small) LoRA gradients are summed with one all-reduce. The
model is not wrapped in DistributedDataParallel because the loss above calls the
decoder directly, which would bypass DDP's forward hooks; on one CPU process no
distributed code runs at all.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from storetune import runtime
from storetune.chat.tokenize import IGNORE, Tokenized, tokenize_chat
from storetune.config import TrainConfig
from storetune.errors import StoretuneError
from storetune.progress import progress as progress_bar
from storetune.runtime import ResolvedModel
from storetune.train.data import collate, length_batches

SMALL_SET_WARNING = 500


@dataclass
class TrainResult:
    steps: int
    epochs_run: float
    best_val_loss: float | None
    final_train_loss: float | None
    seconds: float
    tokens_per_second: float
    trained_tokens: int
    stopped_early: bool
    metrics: list[dict] = field(default_factory=list)


@dataclass
class Runtime:
    """Where this process trains: device, bf16, and its place among DDP ranks."""

    device: str
    use_bf16: bool
    rank: int = 0
    world: int = 1
    owns_group: bool = False  # setup_runtime started the process group, so it ends it

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> AbstractContextManager:
        import torch

        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.use_bf16)


def pick_device(cfg: TrainConfig) -> str:
    """cfg.device, with auto = this rank's GPU when torch sees one, else the CPU."""
    return runtime.pick_device(cfg.device, "train.device")


def setup_runtime(cfg: TrainConfig) -> Runtime:
    """Device, bf16 and (under accelerate launch / torchrun) the process group."""
    device = pick_device(cfg)
    check_qlora(cfg, device)
    use_bf16 = runtime.bf16_enabled(cfg.bf16, device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Runtime(device, use_bf16)
    import torch
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    return Runtime(device, use_bf16, dist.get_rank(), dist.get_world_size(), owns)


def leave_process_group(rt: Runtime) -> None:
    """Wait for every rank, then close the group this run started. Left to interpreter
    exit, gloo's threads are torn down by static destructors, which now and then aborts
    a rank ("terminate called without an active exception") after training succeeded."""
    if not rt.owns_group:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_qlora(cfg: TrainConfig, device: str) -> None:
    if not cfg.qlora:
        return
    if not device.startswith("cuda"):
        raise StoretuneError(
            f"train.qlora needs a CUDA GPU (bitsandbytes 4-bit); this run is on '{device}'",
            hint="set train.qlora to false: on a CPU the base model trains in bf16 or fp32",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise StoretuneError(
            "train.qlora needs the bitsandbytes package, which is not installed",
            hint="pip install bitsandbytes (CUDA machines only), or set train.qlora to false",
        )


def file_fingerprint(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load_model_for_training(
    base: ResolvedModel, cfg: TrainConfig, use_bf16: bool, device: str = "cpu"
):
    import torch
    from peft import LoraConfig, get_peft_model

    tokenizer = runtime.load_tokenizer(base.path)
    # Frozen base weights stored in bf16 halve memory traffic; LoRA weights stay
    # fp32 so small updates are not rounded away.
    if cfg.qlora:
        model = _load_4bit(base, runtime.model_dtype(use_bf16), device)
    else:
        model = runtime.load_base(base.path, bf16=use_bf16, device=device)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_targets(model, cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    if use_bf16:
        # peft copies each LoRA input to the LoRA weights' dtype (fp32), and autocast
        # then casts it back to bf16 for the matmul: the same numbers after a full
        # copy of the activations per adapted layer. Skip the round trip.
        for module in model.modules():
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False
    return model, tokenizer


def lora_targets(model, target_modules: str | list[str]) -> list[str]:
    """'all-linear' resolved to short module names (q_proj, …, down_proj).

    peft would store every layer's full path in adapter_config.json; short names
    select the same layers and are what vLLM and older peft versions expect.
    """
    import torch

    if target_modules != "all-linear":
        return [target_modules] if isinstance(target_modules, str) else list(target_modules)
    output = model.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not output
        }
    )


def _load_4bit(base: ResolvedModel, dtype, device: str):
    """QLoRA: the frozen base in NF4 with double quantisation (CUDA only; untested here)."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base.path, quantization_config=quant, dtype=dtype, device_map={"": device}
    )
    # Casts norms to fp32 for stable training; checkpointing stays off (small models).
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def shared_prefix_len(items: list[Tokenized]) -> int:
    """Tokens every item starts with that can run once per batch (runtime's rule).

    In a store dataset this is the policy part of the system prompt, identical in
    every example and usually ~80% of its tokens. The hidden state before the first
    trained token predicts it, so the prefix stops before that position.
    """
    if len(items) < 2:
        return 0
    first_trained = min(next(i for i, lab in enumerate(t.labels) if lab != IGNORE) for t in items)
    return runtime.cacheable_prefix_len([t.input_ids for t in items], first_trained - 1)


def assistant_loss(model, ids, mask, labels, prefix_len: int = 0):
    """Summed cross-entropy over assistant tokens, and how many there were.

    With prefix_len > 0 the first prefix_len tokens (identical across the batch) run
    once with batch size 1 and their key/value cache is repeated for every row;
    gradients flow back through the repeat, so the result equals the plain forward.
    Logits are computed only where there is loss: most of a 49k-wide lm_head skipped.
    """
    import torch
    import torch.nn.functional as F

    inner = model.get_base_model()
    decoder = inner.get_decoder()
    if prefix_len > 0:
        cache = runtime.prefill(decoder, ids[:1, :prefix_len])
        cache = runtime.cache_for_rows(cache, ids.shape[0], copy_first=False)
        positions = torch.arange(prefix_len, ids.shape[1], device=ids.device)
        positions = positions.unsqueeze(0).expand(ids.shape[0], -1)
        hidden = decoder(
            input_ids=ids[:, prefix_len:],
            attention_mask=mask,
            past_key_values=cache,
            position_ids=positions,
            cache_position=positions[0],
            use_cache=True,
        )
    else:
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False)
    h = hidden.last_hidden_state[:, :-1]
    target = labels[:, prefix_len + 1 :]
    keep = target != IGNORE
    logits = inner.get_output_embeddings()(h[keep])
    loss = F.cross_entropy(logits.float(), target[keep], reduction="sum")
    return loss, int(keep.sum())


class _Checkpoints:
    """Resumable state in <run_dir>/checkpoint, replaced atomically."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "checkpoint"

    def save(self, model, optimizer, scheduler, state: dict) -> None:
        import torch

        tmp = self.dir.with_name("checkpoint.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        trainable = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(
            {
                "trainable": trainable,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng,
                "state": state,
            },
            tmp / "state.pt",
        )
        old = self.dir.with_name("checkpoint.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            os.replace(self.dir, old)
        os.replace(tmp, self.dir)
        shutil.rmtree(old, ignore_errors=True)

    def load(self) -> dict | None:
        import torch

        path = self.dir / "state.pt"
        if not path.exists():
            return None
        return torch.load(path, weights_only=False, map_location="cpu")


def _restore_rng(rng) -> None:
    import torch

    if not isinstance(rng, dict):  # checkpoints written before GPU support
        rng = {"cpu": rng}
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _to(rt: Runtime, *tensors):
    return tensors if rt.device == "cpu" else tuple(t.to(rt.device) for t in tensors)


def _all_reduce_sum(rt: Runtime, values: list[float]) -> list[float]:
    if rt.world == 1:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=rt.device)
    dist.all_reduce(t)
    return t.tolist()


def _evaluate(model, items: list[Tokenized], batch_tokens: int, pad_id: int, rt: Runtime) -> float:
    """Mean loss per assistant token over `items` (each rank takes its share of batches)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    shared = shared_prefix_len(items)
    batches = length_batches(items, batch_tokens, seed=None, shared=shared)
    with torch.no_grad(), rt.autocast():
        for batch in batches[rt.rank :: rt.world]:
            chosen = [items[i] for i in batch]
            ids, mask, labels = _to(rt, *collate(chosen, pad_id))
            loss, n = assistant_loss(model, ids, mask, labels, shared_prefix_len(chosen))
            total += float(loss)
            count += n
    model.train()
    total, count = _all_reduce_sum(rt, [total, float(count)])
    return total / max(count, 1)


def _lr_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
    return get_scheduler(
        name[cfg.scheduler],
        optimizer,
        num_warmup_steps=math.ceil(cfg.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )


def small_set_warning(n: int) -> str | None:
    if n >= SMALL_SET_WARNING:
        return None
    return (
        f"only {n} training examples; {SMALL_SET_WARNING}+ is advised "
        "(a small set overfits quickly: watch the validation loss)"
    )


def train_lora(
    base: ResolvedModel,
    train_rows: list[dict],
    val_rows: list[dict],
    cfg: TrainConfig,
    run_dir: Path,
    out_dir: Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_step: Callable[[int], None] | None = None,
    on_metric: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter; the best adapter (by validation loss) goes to out_dir.

    `on_step(step)` runs after each optimizer step and its checkpoint; `on_metric`
    receives every record that goes to metrics.jsonl, as it happens (trackers).
    Under several processes only rank 0 logs, checkpoints and writes out_dir.
    """
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rt = setup_runtime(cfg)
    log = log if rt.main else _silent
    model, tokenizer = load_model_for_training(base, cfg, rt.use_bf16, rt.device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_items = _tokenize_all(tokenizer, train_rows, cfg.max_length)
    val_items = _tokenize_all(tokenizer, val_rows, cfg.max_length)
    if not train_items:
        raise StoretuneError("the training split has no example with an assistant reply to learn")

    shared = shared_prefix_len(train_items)
    per_step = cfg.grad_accum * rt.world  # micro-batches in one optimizer step, all ranks
    batches_per_epoch = len(length_batches(train_items, cfg.batch_tokens, seed=0, shared=shared))
    steps_per_epoch = max(1, batches_per_epoch // per_step)
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.epochs))
    eval_every = cfg.eval_every or steps_per_epoch
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _lr_scheduler(optimizer, cfg, total_steps)
    ckpt = _Checkpoints(run_dir)

    state = {"step": 0, "metrics": [], "best": None, "bad_evals": 0, "tokens": 0, "seconds": 0.0}

    def record(m: dict) -> None:
        state["metrics"].append(m)
        if on_metric and rt.main:
            on_metric(m)

    best_weights: dict | None = None
    if resume:
        state, best_weights = _resume(ckpt, run_dir, model, optimizer, scheduler)
        log(f"resuming at step {state['step']} of {total_steps}")
    elif warning := small_set_warning(len(train_items)):
        log(f"warning: {warning}")
        record({"kind": "warning", "step": 0, "message": warning})

    model.train()
    started = time.time() - state["seconds"]
    stopped_early = False
    show = progress and rt.main
    with progress_bar("train", total_steps, show, done=state["step"], rate=False) as bar:
        while state["step"] < total_steps and not stopped_early:
            epoch = state["step"] // steps_per_epoch
            batches = length_batches(train_items, cfg.batch_tokens, cfg.seed + epoch, shared)
            first = (state["step"] % steps_per_epoch) * per_step
            for b0 in range(first, steps_per_epoch * per_step, per_step):
                group = batches[b0 : b0 + per_step]
                loss_value, ntok = _step(model, group, train_items, pad_id, rt, params)
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                state["tokens"] += ntok
                state["seconds"] = time.time() - started
                tps = state["tokens"] / max(state["seconds"], 1e-9)
                record(
                    {
                        "kind": "train",
                        "step": state["step"],
                        "epoch": round(state["step"] / steps_per_epoch, 3),
                        "loss": round(loss_value, 5),
                        "lr": scheduler.get_last_lr()[0],
                        "tokens_per_s": round(tps, 1),
                    }
                )
                bar.advance(1, loss=f"{loss_value:.3f}", speed=f"{tps:,.0f} tok/s")
                if state["step"] % eval_every == 0 or state["step"] == total_steps:
                    best_weights, stopped_early = _validate(
                        model, val_items, cfg, pad_id, rt, state, best_weights, log, record
                    )
                if state["step"] % cfg.checkpoint_every == 0 and rt.main:
                    ckpt.save(model, optimizer, scheduler, {**state, "best_weights": best_weights})
                if on_step:
                    on_step(state["step"])
                if state["step"] >= total_steps or stopped_early:
                    break

    if best_weights is not None:
        model.load_state_dict(best_weights, strict=False)
    if rt.main:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    leave_process_group(rt)
    return _result(state, steps_per_epoch, stopped_early)


def _silent(_msg: str) -> None:
    pass


def _resume(ckpt: _Checkpoints, run_dir: Path, model, optimizer, scheduler):
    saved = ckpt.load()
    if saved is None:
        raise StoretuneError(
            f"{run_dir}: no checkpoint to resume from",
            hint="the run stopped before its first checkpoint; start it again without --resume",
        )
    model.load_state_dict(saved["trainable"], strict=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _restore_rng(saved["rng"])
    state = saved["state"]
    return state, state.pop("best_weights", None)


def _result(state: dict, steps_per_epoch: int, stopped_early: bool) -> TrainResult:
    train_losses = [m["loss"] for m in state["metrics"] if m["kind"] == "train"]
    return TrainResult(
        steps=state["step"],
        epochs_run=round(state["step"] / steps_per_epoch, 3),
        best_val_loss=state["best"],
        final_train_loss=sum(train_losses[-10:]) / len(train_losses[-10:])
        if train_losses
        else None,
        seconds=round(state["seconds"], 1),
        tokens_per_second=round(state["tokens"] / max(state["seconds"], 1e-9), 1),
        trained_tokens=state["tokens"],
        stopped_early=stopped_early,
        metrics=state["metrics"],
    )


def _tokenize_all(tokenizer, rows: list[dict], max_length: int) -> list[Tokenized]:
    items = [tokenize_chat(tokenizer, r["messages"], max_length) for r in rows]
    return [t for t in items if t.trainable > 0]


def _step(model, group, items, pad_id, rt: Runtime, params) -> tuple[float, int]:
    """Forward/backward over one optimizer step's micro-batches; mean loss per token.

    Every rank knows the whole group (same seed), so each divides by the group's
    total token count and the summed gradients equal one process doing it all.
    """
    total_tokens = sum(items[i].trainable for b in group for i in b)
    loss_sum, ntok_all = 0.0, 0
    for batch in group[rt.rank :: rt.world]:
        chosen = [items[i] for i in batch]
        ids, mask, labels = _to(rt, *collate(chosen, pad_id))
        with rt.autocast():
            loss, _ = assistant_loss(model, ids, mask, labels, shared_prefix_len(chosen))
        (loss / max(total_tokens, 1)).backward()
        loss_sum += float(loss.detach())
        ntok_all += int(mask.sum())
    if rt.world > 1:
        _all_reduce_grads(params)
        loss_sum, ntok = _all_reduce_sum(rt, [loss_sum, float(ntok_all)])
        ntok_all = int(ntok)
    return loss_sum / max(total_tokens, 1), ntok_all


def _all_reduce_grads(params) -> None:
    """Sum LoRA gradients over ranks in one flat buffer (a few MB)."""
    import torch
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _validate(model, val_items, cfg, pad_id, rt, state, best_weights, log, record):
    if not val_items:
        return best_weights, False
    val = _evaluate(model, val_items, cfg.batch_tokens, pad_id, rt)
    record({"kind": "val", "step": state["step"], "val_loss": round(val, 5)})
    if state["best"] is None or val < state["best"]:
        state["best"], state["bad_evals"] = val, 0
        best = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
        return best, False
    state["bad_evals"] += 1
    if cfg.early_stop_patience and state["bad_evals"] >= cfg.early_stop_patience:
        log(
            f"early stop at step {state['step']}: validation loss did not improve "
            f"{state['bad_evals']} times; keeping the best adapter (val {state['best']:.4f})"
        )
        return best_weights, True
    return best_weights, False


def write_metrics(metrics: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for m in metrics:
            f.write(json.dumps(m) + "\n")
