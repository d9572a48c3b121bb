#!/usr/bin/env python
"""Measure, on CPU, the tensors that framework mechanisms keep, for tests/frameworks.rs.

Writes tests/data/frameworks/measured.json. Every record is bytes of live tensor storage seen
by a TorchDispatchMode (each storage counted once, freed through a weakref finalizer), as
/work/shared/validation/measure.py measures, for a tiny Llama decoder layer stack built in
code (nothing downloaded):

  * `sac_*`: activations kept after the forward of one transformer block (torchtitan's
    Llama block: wq/wk/wv/wo, SDPA, w1/w3/w2, RMSNorm) under no checkpointing, full
    checkpointing and torchtitan's per-op selective policy (every second mm recomputed),
    through torch.utils.checkpoint exactly as torchtitan wraps blocks. On CPU SDPA is the
    `_scaled_dot_product_flash_attention_for_cpu` op, put in the save list in place of
    the CUDA flash op.
  * `hf_eager_softmax`: a transformers LlamaForCausalLM in bf16 with eager attention: the
    tensors autograd saves per decoder layer (saved-tensor hooks), which include the fp32
    softmax and its bf16 copy.
  * `fsdp2_nosync`: FSDP2 (fully_shard, gloo, 2 ranks on CPU) with MixedPrecisionPolicy
    (bf16 params, fp32 reduce) and gradient sync off: bytes of the unsharded accumulated
    gradients after one backward.

Usage: python scripts/measure_frameworks.py --out tests/data/frameworks/measured.json
(needs `pip install torch transformers`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """Bytes of storages created by ops inside the mode that are still alive (each storage
    once, keyed by the storage object itself, freed through a weakref callback)."""

    def __init__(self, existing=()):
        super().__init__()
        self.live = {}
        self.total = 0
        # storages that exist before (parameters, inputs): views of them are not new memory
        self.existing = {t.untyped_storage().data_ptr() for t in existing}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.layout == torch.strided and not t.is_meta:
                st = t.untyped_storage()
                key = id(st)
                if key not in self.live and st.data_ptr() not in self.existing:
                    n = st.nbytes()
                    self.live[key] = (n, weakref.ref(st, lambda _, key=key: self._free(key)))
                    self.total += n
        return out

    def _free(self, key):
        n, _ = self.live.pop(key, (0, None))
        self.total -= n


# --- a torchtitan Llama block (torchtitan/models/llama/model.py, 2024) ---------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class Block(nn.Module):
    def __init__(self, dim, heads, kv_heads, ffn):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, dim // heads
        self.wq = nn.Linear(dim, heads * self.hd, bias=False)
        self.wk = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.wv = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.wo = nn.Linear(heads * self.hd, dim, bias=False)
        self.w1 = nn.Linear(dim, ffn, bias=False)
        self.w2 = nn.Linear(ffn, dim, bias=False)
        self.w3 = nn.Linear(dim, ffn, bias=False)
        self.attention_norm = RMSNorm(dim)
        self.ffn_norm = RMSNorm(dim)

    def attention(self, x):
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.heads, self.hd).transpose(1, 2)
        k = self.wk(x).view(b, s, self.kv_heads, self.hd).transpose(1, 2)
        v = self.wv(x).view(b, s, self.kv_heads, self.hd).transpose(1, 2)
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(o.transpose(1, 2).reshape(b, s, -1))

    def forward(self, x):
        h = x + self.attention(self.attention_norm(x))
        y = self.ffn_norm(h)
        return h + self.w2(F.silu(self.w1(y)) * self.w3(y))


def sac_policy():
    """torchtitan's `_apply_ac_to_transformer_block` op policy with the CPU flash op."""
    from torch.utils.checkpoint import CheckpointPolicy

    save = {
        torch.ops.aten.mm.default,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
        torch.ops.aten._scaled_dot_product_efficient_attention.default,
        torch.ops.aten._scaled_dot_product_flash_attention.default,
    }
    meta = {"forward": 0, "recompute": 0}

    def policy(ctx, func, *args, **kwargs):
        mode = "recompute" if ctx.is_recompute else "forward"
        if func == torch.ops.aten.mm.default:
            meta[mode] += 1
        keep = func in save and not (func == torch.ops.aten.mm.default and meta[mode] % 2 == 0)
        return CheckpointPolicy.MUST_SAVE if keep else CheckpointPolicy.PREFER_RECOMPUTE

    return policy


def measure_block(mode, dim, heads, kv_heads, ffn, batch, seq, dtype):
    from torch.utils.checkpoint import checkpoint, create_selective_checkpoint_contexts

    torch.manual_seed(0)
    block = Block(dim, heads, kv_heads, ffn).to(dtype)
    x = torch.randn(batch, seq, dim, dtype=dtype, requires_grad=True)
    tracker = LiveBytes(existing=[*block.parameters(), x])
    with tracker:
        if mode == "none":
            out = block(x)
        elif mode == "full":
            out = checkpoint(block, x, use_reentrant=False, preserve_rng_state=False)
        else:
            out = checkpoint(
                block,
                x,
                use_reentrant=False,
                preserve_rng_state=False,
                context_fn=lambda: create_selective_checkpoint_contexts(sac_policy()),
            )
    kept = tracker.total - out.untyped_storage().nbytes()
    out.sum().backward()  # the recompute must work
    return {
        "id": f"sac_{mode}",
        "what": "bytes kept after one block's forward (its output excluded; the input is the caller's)",
        "shape": {"dim": dim, "heads": heads, "kv_heads": kv_heads, "ffn": ffn, "batch": batch, "seq": seq,
                  "dtype": str(dtype).replace("torch.", "")},
        "kept_bytes": kept,
    }


def measure_hf_eager(dtype=torch.bfloat16):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, max_position_embeddings=128)
    torch.manual_seed(0)
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="eager", torch_dtype=dtype).train()
    batch, seq = 2, 32
    ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    layer_saved = {}
    current = {"layer": None}

    def pack(t):
        if current["layer"] is not None:
            st = t.untyped_storage()
            layer_saved.setdefault(current["layer"], {})[st.data_ptr()] = (st.nbytes(), str(t.dtype))
        return t

    hooks = []
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_pre_hook(lambda m, a, i=i: current.__setitem__("layer", i)))
        hooks.append(layer.register_forward_hook(lambda m, a, o: current.__setitem__("layer", None)))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    fp32_scores = batch * cfg.num_attention_heads * seq * seq * 4
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    # storages saved by both layers (the rotary cos/sin computed once per forward) are shared
    shared = set(layer_saved[0]) & set(layer_saved[1])
    own = {k: v for k, v in layer_saved[1].items() if k not in params and k not in shared}
    fp32_score_tensors = sum(1 for n, dt in own.values() if dt == "torch.float32" and n == fp32_scores)
    import transformers

    return {
        "id": "hf_eager_softmax_bf16",
        "what": "distinct storages autograd saves inside decoder layer 1 (saved-tensor hooks), not parameters and not those layer 0 saves too, LlamaForCausalLM bf16 eager",
        "transformers": transformers.__version__,
        "config": {"hidden": 64, "ffn": 160, "heads": 4, "kv_heads": 2, "vocab": 256, "batch": batch, "seq": seq},
        "layer_saved_bytes": sum(n for n, _ in own.values()),
        "shared_between_layers_bytes": sum(layer_saved[1][k][0] for k in shared if k not in params),
        "fp32_score_sized_tensors": fp32_score_tensors,
    }


def _fsdp_worker(rank, world, port, out_path):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    import torch.distributed as dist
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256, bias=False), nn.Linear(256, 64, bias=False))
    params = sum(p.numel() for p in model.parameters())
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for m in model:
        fully_shard(m, mp_policy=mp)
    fully_shard(model, mp_policy=mp)
    model.set_requires_gradient_sync(False)
    x = torch.randn(4, 64)
    model(x).float().sum().backward()
    acc = 0
    for m in model.modules():
        state = getattr(m, "_get_fsdp_state", None)
        if state is None:
            continue
        group = state()._fsdp_param_group
        if group is None:
            continue
        for fp in group.fsdp_params:
            g = fp.unsharded_accumulated_grad
            if g is None and fp._unsharded_param is not None and fp._unsharded_param.grad is not None:
                g = fp._unsharded_param.grad
            if g is not None:
                acc += g.numel() * g.element_size()
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"params": params, "unsharded_grad_bytes": acc}, f)
    dist.destroy_process_group()


def measure_fsdp2_nosync():
    import tempfile

    import torch.multiprocessing as mp

    path = tempfile.mktemp(suffix=".json")
    mp.spawn(_fsdp_worker, args=(2, 29517, path), nprocs=2, join=True)
    with open(path) as f:
        r = json.load(f)
    os.unlink(path)
    return {
        "id": "fsdp2_nosync_bf16_param_fp32_reduce",
        "what": "bytes of unsharded accumulated gradients on rank 0 after one backward with gradient sync off (2 ranks, gloo)",
        "torch": torch.__version__,
        "params": r["params"],
        "unsharded_grad_bytes": r["unsharded_grad_bytes"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    shape = dict(dim=256, heads=8, kv_heads=4, ffn=704, batch=2, seq=64, dtype=torch.bfloat16)
    records = [measure_block(m, **shape) for m in ("none", "full", "op")]
    records.append(measure_hf_eager())
    try:
        records.append(measure_fsdp2_nosync())
    except Exception as e:  # noqa: BLE001 - record why it could not run
        print(f"fsdp2 measurement skipped: {e}", file=sys.stderr)
    meta = {"torch": torch.__version__, "python": sys.version.split()[0], "device": "cpu",
            "command": "python scripts/measure_frameworks.py --out tests/data/frameworks/measured.json"}
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "records": records}, f, indent=1)
    for r in records:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
