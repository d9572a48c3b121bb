#!/usr/bin/env python
"""Peak live tensor bytes of Hugging Face `generate` (prefill and the whole call), by version.

Tiny LLaMA / Qwen2 models are built from configs written here (nothing is downloaded), with
random weights, in bf16 on the CPU. A `TorchDispatchMode` keeps the set of live tensor storages
(every op's outputs, freed when their storage dies), as scripts/measure.py does;
parameters, buffers and the prompt are registered first. Recorded per run: the peak of the
prefill forward (the first call of the model's forward), the peak of the whole `generate`, and
the parameter bytes.

Run it once per transformers version, e.g.

    python -m venv /tmp/base && /tmp/base/bin/pip install torch
    /tmp/base/bin/pip install --target /tmp/tf444 transformers==4.44.2
    /tmp/base/bin/pip install --target /tmp/tf5 transformers
    PYTHONPATH=/tmp/tf444 /tmp/base/bin/python scripts/measure_serving_generate.py --out a.json
    PYTHONPATH=/tmp/tf5   /tmp/base/bin/python scripts/measure_serving_generate.py --out b.json

Records: tests/data/serving/generate_measured.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import weakref

import torch
import transformers
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class Live(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.live = {}
        self.total = 0
        self.peak = 0

    def _track(self, t):
        if not isinstance(t, torch.Tensor):
            return
        st = t.untyped_storage()
        key = st.data_ptr(), st.nbytes()
        if st.nbytes() == 0 or key in self.live:
            return
        n = st.nbytes()
        self.total += n

        def gone(_w, key=key, n=n):
            if self.live.pop(key, None) is not None:
                self.total -= n

        self.live[key] = weakref.ref(st, gone)
        self.peak = max(self.peak, self.total)

    def register(self, tensors):
        for t in tree_leaves(tensors):
            self._track(t)

    def reset_peak(self):
        self.peak = self.total

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            self._track(t)
        return out


def build(family: str):
    common = dict(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=2,
                  num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096,
                  tie_word_embeddings=False)
    if family == "llama":
        cfg = transformers.LlamaConfig(**common)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.Qwen2Config(**common)
        model = transformers.Qwen2ForCausalLM(cfg)
    return cfg, model.to(torch.bfloat16).eval()


def run(family: str, batch: int, prompt: int, new_tokens: int) -> dict:
    torch.manual_seed(0)
    cfg, model = build(family)
    ids = torch.randint(0, cfg.vocab_size, (batch, prompt))
    mask = torch.ones_like(ids)
    tracker = Live()
    calls = {"n": 0, "prefill_peak": None}

    def pre(_m, _a):
        calls["n"] += 1
        if calls["n"] == 2:  # the prefill forward has returned
            calls["prefill_peak"] = tracker.peak

    handle = model.register_forward_pre_hook(pre)
    with torch.no_grad(), tracker:
        tracker.register(list(model.parameters()) + list(model.buffers()) + [ids, mask])
        params = sum(p.numel() * p.element_size() for p in model.parameters())
        baseline = tracker.total
        tracker.reset_peak()
        model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                       do_sample=False, pad_token_id=0)
    handle.remove()
    return {
        "id": f"{family}/b{batch}/s{prompt}/new{new_tokens}/bf16",
        "family": family,
        "config": {k: getattr(cfg, k) for k in ("vocab_size", "hidden_size", "intermediate_size",
                                                "num_hidden_layers", "num_attention_heads",
                                                "num_key_value_heads", "tie_word_embeddings")},
        "batch": batch,
        "prompt": prompt,
        "new_tokens": new_tokens,
        "dtype": "bf16",
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "parameter_bytes": params,
        "baseline_bytes": baseline,
        "prefill_peak_bytes": calls["prefill_peak"],
        "generate_peak_bytes": tracker.peak,
        "command": "scripts/measure_serving_generate.py",
        "python": platform.python_version(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    records = [run(f, b, s, 4) for f in ("llama", "qwen2") for (b, s) in ((1, 256), (4, 512))]
    with open(a.out, "w") as f:
        json.dump(records, f, indent=1)
    for r in records:
        print(r["id"], r["transformers"], r["prefill_peak_bytes"], r["generate_peak_bytes"], r["parameter_bytes"])


if __name__ == "__main__":
    main()
