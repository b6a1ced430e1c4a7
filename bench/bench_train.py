"""One epoch of LoRA SFT: storetune vs TRL's SFTTrainer, same model, data and LoRA config.

Run with `python -m bench train` (JSON to reports/bench/train.json). In one run:

1. Data: the sample store (seed 0) is generated, ingested and built; a seeded sample of
   STORETUNE_BENCH_TRAIN_EXAMPLES (default 48) train rows and
   STORETUNE_BENCH_VAL_EXAMPLES (default 24) val rows of the support tasks is taken,
   and tokenized once with storetune's chat masking (loss on assistant tokens and
   their end-of-turn token). Every trainer gets these same token ids and labels:
   SmolLM2's chat template has no {% generation %} markers, which TRL's own
   assistant_only_loss needs, so TRL receives a pre-tokenized input_ids/labels set.
2. Trainers, each in its own child process (so peak RSS is its own):
   - storetune: `train_lora` with its defaults (bf16 autocast where the CPU has it,
     length-grouped batches of <= 4096 tokens, shared-prefix reuse, lm_head only at
     assistant positions);
   - trl_fp32: SFTTrainer with its defaults, bf16=False (fp32);
   - trl_bf16: SFTTrainer with its defaults and bf16=True (autocast).
   Common to all: the default base model, LoRA r=16 / alpha=32 / all-linear /
   dropout 0.05, max length 2048, 1 epoch, lr 2e-4 cosine with 5% warm-up (TRL's
   default 2e-5 linear would make the loss comparison meaningless). Everything else
   is TRL's default: per-device batch 8, gradient checkpointing on, padding to the
   longest in the batch, padding_free off, fused AdamW.
3. Reported per trainer: non-padding tokens/s (tokens of the train set / seconds of
   the training loop, model loading and data preparation excluded), peak RSS of the
   child, and the final validation loss, computed identically for all three after
   training: base model in fp32 + the trained adapter, plain forward, mean
   cross-entropy over the val rows' assistant tokens.
4. storetune's achieved GFLOP/s: FLOPs of one epoch of its forward+backward passes
   counted by torch.utils.flop_counter.FlopCounterMode (matmuls and attention as they
   actually run, i.e. after its shared-prefix and lm_head savings) divided by its
   training seconds; against the machine's bf16 matmul peak measured in the same run
   (a torch.matmul loop on 2048x2048 bf16 matrices, all threads).
5. On a CUDA machine, also a GPU section: a randomly initialised ~1B-parameter Llama
   (hidden 2048, 16 layers, 32 heads / 8 KV heads, MLP 8192, SmolLM2's vocabulary)
   built from its config, storetune vs SFTTrainer bf16: tokens/s, peak GPU memory and
   MFU (counted FLOPs / seconds / measured bf16 matmul peak).
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LENGTH = 2048
LR = 2e-4
MAIN_TRAINERS = ("storetune", "trl_fp32", "trl_bf16")
GPU_TRAINERS = ("storetune", "trl_bf16")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# -- data ---------------------------------------------------------------------------------


def build_rows(work: Path, n_train: int, n_val: int) -> tuple[list[dict], list[dict]]:
    """A seeded sample of support-task train/val rows from the sample store's dataset."""
    from storetune.config.train import SUPPORT_TASKS
    from storetune.dataset.build import build_dataset
    from storetune.demo.store_gen import generate_demo_store
    from storetune.ingest import ingest_workspace
    from storetune.io import select_rows
    from storetune.workspace import Workspace

    store = work / "store"
    generate_demo_store(store, seed=0, n_products=80, n_tickets=600)
    ws = Workspace(store)
    ingest_workspace(ws, progress=False)
    report = build_dataset(ws, progress=False)
    data_dir = ws.datasets_dir / report.dataset_id
    train, _ = select_rows(data_dir, "train", list(SUPPORT_TASKS))
    val, _ = select_rows(data_dir, "val", list(SUPPORT_TASKS))
    rng = random.Random(0)
    return rng.sample(train, min(n_train, len(train))), rng.sample(val, min(n_val, len(val)))


def tokenize_rows(tokenizer, rows: list[dict]) -> list[dict]:
    from storetune.chat.tokenize import tokenize_chat

    items = [tokenize_chat(tokenizer, r["messages"], MAX_LENGTH) for r in rows]
    return [{"input_ids": t.input_ids, "labels": t.labels} for t in items if t.trainable]


# -- peaks ----------------------------------------------------------------------------------


def matmul_peak_gflops(device: str, dtype_name: str = "bfloat16", n: int = 2048) -> float:
    """Measured dense matmul throughput (GFLOP/s) with all threads, ~3 s."""
    import torch

    dtype = getattr(torch, dtype_name)
    if device.startswith("cuda"):
        n = 8192
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        torch.matmul(a, b)
    _sync(device)
    iters, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3.0:
        torch.matmul(a, b)
        iters += 1
    _sync(device)
    return round(2 * n**3 * iters / (time.perf_counter() - start) / 1e9, 1)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# -- workers (each runs in its own process) ---------------------------------------------------


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _peak_gpu_mb() -> float | None:
    import torch

    return (
        round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
    )


def validation_loss(base_path: str, adapter_dir: Path, val: list[dict], device: str) -> float:
    """The same measurement for every trainer: fp32 base + adapter, plain forward."""
    import torch
    import torch.nn.functional as F
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).to(device)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for item in val:
            ids = torch.tensor([item["input_ids"]], device=device)
            labels = torch.tensor(item["labels"][1:], device=device)
            # Logits only where a label is predicted: the same numbers, without the
            # 49k-wide projection of every prompt token.
            where = (labels != -100).nonzero().flatten()
            logits = model(ids, logits_to_keep=where).logits[0].float()
            total += F.cross_entropy(logits, labels[where], reduction="sum").item()
            count += len(where)
    return total / count


def _storetune_cfg():
    from storetune.config import TrainConfig

    return TrainConfig(epochs=1, lr=LR, max_length=MAX_LENGTH, early_stop_patience=0)


def worker_storetune(data: dict, out: Path) -> dict:
    from storetune.runtime import ResolvedModel
    from storetune.train.loop import pick_device, train_lora

    cfg = _storetune_cfg()
    base = ResolvedModel(name="bench", path=Path(data["base_path"]), fingerprint="bench")
    # train_lora takes chat rows; with 1 epoch and no intermediate evaluation its
    # `seconds` is the training loop alone (the final validation is not included).
    result = train_lora(
        base, data["train_rows"], [], cfg, out / "run", out / "adapter", progress=False, log=_quiet
    )
    peak_rss, peak_gpu = _peak_rss_mb(), _peak_gpu_mb()
    device = pick_device(cfg)
    return {
        "train_seconds": result.seconds,
        "steps": result.steps,
        "tokens": result.trained_tokens,
        "peak_rss_mb": peak_rss,
        "peak_gpu_mb": peak_gpu,
        "flops": count_storetune_flops(base, data["train_rows"], cfg),
        "val_loss": validation_loss(data["base_path"], out / "adapter", data["val"], device),
        "settings": {
            "batch": f"length-grouped, <= {cfg.batch_tokens} tokens per micro-batch",
            "precision": "bf16 base + autocast" if _bf16(device) else "fp32",
        },
    }


def _bf16(device: str) -> bool:
    from storetune.runtime import bf16_supported

    return bf16_supported(device)


def count_storetune_flops(base, rows: list[dict], cfg) -> int:
    """FLOPs of one epoch of storetune's forward+backward passes, as they run."""
    from torch.utils.flop_counter import FlopCounterMode

    from storetune.train.data import collate, length_batches
    from storetune.train.loop import (
        _tokenize_all,
        assistant_loss,
        load_model_for_training,
        setup_runtime,
        shared_prefix_len,
    )

    rt = setup_runtime(cfg)
    model, tok = load_model_for_training(base, cfg, rt.use_bf16, rt.device)
    items = _tokenize_all(tok, rows, cfg.max_length)
    shared = shared_prefix_len(items)
    counter = FlopCounterMode(display=False)
    with counter:
        for batch in length_batches(items, cfg.batch_tokens, cfg.seed, shared):
            chosen = [items[i] for i in batch]
            ids, mask, labels = (t.to(rt.device) for t in collate(chosen, tok.pad_token_id))
            with rt.autocast():
                loss, n = assistant_loss(model, ids, mask, labels, shared_prefix_len(chosen))
            (loss / n).backward()
    return int(counter.get_total_flops())


def worker_trl(data: dict, out: Path, bf16: bool) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    train = Dataset.from_list(data["train"])
    batch = 8  # SFTConfig's default per_device_train_batch_size
    steps = math.ceil(len(train) / batch)
    args = SFTConfig(
        output_dir=str(out / "trl"),
        num_train_epochs=1,
        learning_rate=LR,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(0.05 * steps),
        max_length=MAX_LENGTH,
        bf16=bf16,
        use_cpu=not cuda,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        seed=0,
    )
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    tokenizer = AutoTokenizer.from_pretrained(data["base_path"])
    timer = _train_timer()
    trainer = SFTTrainer(
        model=data["base_path"],
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[timer],
    )
    trainer.train()
    peak_rss, peak_gpu = _peak_rss_mb(), _peak_gpu_mb()
    trainer.model.save_pretrained(out / "adapter")
    device = "cuda:0" if cuda else "cpu"
    return {
        "train_seconds": round(timer.seconds, 1),
        "steps": trainer.state.global_step,
        "tokens": sum(len(x["input_ids"]) for x in data["train"]),
        "peak_rss_mb": peak_rss,
        "peak_gpu_mb": peak_gpu,
        "val_loss": validation_loss(data["base_path"], out / "adapter", data["val"], device),
        "settings": {
            "batch": f"per_device_train_batch_size={args.per_device_train_batch_size}",
            "precision": "bf16 autocast" if bf16 else "fp32",
            "gradient_checkpointing": args.gradient_checkpointing,
            "padding_free": args.padding_free,
            "optim": str(args.optim),
        },
    }


def _train_timer():
    """A callback timing the training loop alone (from train begin to train end)."""
    from transformers import TrainerCallback

    class TrainTimer(TrainerCallback):
        def __init__(self) -> None:
            self.start = 0.0
            self.seconds = 0.0

        def on_train_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kw):
            self.seconds = time.perf_counter() - self.start

    return TrainTimer()


def _quiet(_msg: str) -> None:
    pass


def _worker_main(kind: str, data_file: str, out: str) -> None:
    from storetune.quiet import quiet_libraries

    quiet_libraries()
    data = json.loads(Path(data_file).read_text())
    out_dir = Path(out)
    if kind == "storetune":
        result = worker_storetune(data, out_dir)
    else:
        result = worker_trl(data, out_dir, bf16=kind == "trl_bf16")
    (out_dir / "result.json").write_text(json.dumps(result))


# -- orchestration ----------------------------------------------------------------------------


def _run_worker(kind: str, data_file: Path, work: Path) -> dict:
    out = work / kind
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_train", "--worker", kind, str(data_file), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:], "returncode": proc.returncode}
    result = json.loads((out / "result.json").read_text())
    result["child_wall_s"] = round(time.time() - started, 1)
    result["tokens_per_s"] = round(result["tokens"] / result["train_seconds"], 1)
    print(
        f"  {kind}: {result['tokens_per_s']} tok/s, val loss {result['val_loss']:.4f}", flush=True
    )
    return result


def _section(
    trainers, base_path: str, train_rows, val_rows, work: Path, device: str, peak: float
) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_path)
    data = {
        "base_path": base_path,
        "train_rows": train_rows,
        "train": tokenize_rows(tok, train_rows),
        "val": tokenize_rows(tok, val_rows),
    }
    work.mkdir(parents=True, exist_ok=True)
    data_file = work / "data.json"
    data_file.write_text(json.dumps(data))
    results = {kind: _run_worker(kind, data_file, work) for kind in trainers}
    st = results.get("storetune", {})
    if "flops" in st:
        st["achieved_gflops"] = round(st["flops"] / st["train_seconds"] / 1e9, 1)
        st["utilization_of_bf16_peak"] = round(st["achieved_gflops"] / peak, 4)
    return {
        "device": device,
        "bf16_matmul_peak_gflops": peak,
        "train_examples": len(data["train"]),
        "val_examples": len(data["val"]),
        "train_tokens": sum(len(x["input_ids"]) for x in data["train"]),
        "trainers": results,
        "ratios": _ratios(results),
    }


def _ratios(results: dict) -> dict:
    st = results.get("storetune", {})
    out = {}
    for kind, r in results.items():
        if kind == "storetune" or "tokens_per_s" not in r or "tokens_per_s" not in st:
            continue
        out[f"tokens_per_s_vs_{kind}"] = round(st["tokens_per_s"] / r["tokens_per_s"], 2)
        out[f"val_loss_rel_diff_vs_{kind}"] = round(st["val_loss"] / r["val_loss"] - 1, 4)
    return out


def build_random_llama(out: Path, vocab_source: str) -> str:
    """A ~1B-parameter Llama with random weights, built from its config (no download)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(vocab_source)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=4096,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def run() -> dict:
    import torch

    from storetune.quiet import quiet_libraries
    from storetune.runtime import resolve_base_model

    quiet_libraries()
    n_train = _env_int("STORETUNE_BENCH_TRAIN_EXAMPLES", 48)
    n_val = _env_int("STORETUNE_BENCH_VAL_EXAMPLES", 24)
    trainers = [t for t in os.environ.get("STORETUNE_BENCH_TRAINERS", "").split(",") if t]
    base = resolve_base_model()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        print("building the sample-store dataset…", flush=True)
        train_rows, val_rows = build_rows(work, n_train, n_val)
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
        peak = matmul_peak_gflops(device)
        print(f"{device} bf16 matmul peak: {peak} GFLOP/s; training…", flush=True)
        main = _section(
            trainers or MAIN_TRAINERS,
            str(base.path),
            train_rows,
            val_rows,
            work / "main",
            device,
            peak,
        )
        gpu = {"skipped": "no CUDA device"}
        if torch.cuda.is_available():
            big = build_random_llama(work / "llama-1b", str(base.path))
            gpu = _section(
                trainers or GPU_TRAINERS, big, train_rows, val_rows, work / "gpu", device, peak
            )
            gpu["model"] = "random Llama ~1B (hidden 2048, 16 layers, 32/8 heads, MLP 8192)"
    summary = {"default_model": _summary(main), "gpu_1b": _summary(gpu)}
    return {
        "benchmark": "train",
        "summary": summary,
        "default_model": main,
        "gpu_1b": gpu,
        "settings": {
            "model": base.name,
            "lora": "r=16 alpha=32 all-linear dropout=0.05",
            "max_length": MAX_LENGTH,
            "epochs": 1,
            "lr": f"{LR} cosine, 5% warm-up",
            "threads": torch.get_num_threads(),
        },
    }


def _summary(section: dict | None) -> dict | None:
    if not section or "trainers" not in section:
        return section
    t = section["trainers"]
    return {
        "tokens_per_s": {k: r.get("tokens_per_s") for k, r in t.items()},
        "val_loss": {k: round(r["val_loss"], 4) for k, r in t.items() if "val_loss" in r},
        "peak_rss_mb": {k: r.get("peak_rss_mb") for k, r in t.items()},
        "peak_gpu_mb": {k: r.get("peak_gpu_mb") for k, r in t.items() if r.get("peak_gpu_mb")},
        **section["ratios"],
        "storetune_gflops": t.get("storetune", {}).get("achieved_gflops"),
        "bf16_matmul_peak_gflops": section["bf16_matmul_peak_gflops"],
        # On a GPU this is the MFU: counted FLOPs / seconds / measured bf16 peak.
        "storetune_utilization": t.get("storetune", {}).get("utilization_of_bf16_peak"),
        "errors": {k: r["error"][-300:] for k, r in t.items() if "error" in r} or None,
    }


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker_main(*sys.argv[2:5])
    else:
        print(json.dumps(run(), indent=2))
