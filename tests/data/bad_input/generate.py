#!/usr/bin/env python3
"""Writes the bad-input corpus files read by tests/bad_input.rs (run from anywhere; idempotent).

Each file is one deliberate mistake in an otherwise valid input: a model TOML (from the gpt2 and
llama-3-8b presets), a Hugging Face config (GPT-2 small's validation config and a LLaMA config), a
DeepSpeed config (as `memplan plan --emit deepspeed` writes), a budget, a compare baseline and
bench/validate JSON. The case table (cases.txt) names the file, the exit code and the text the
error must contain. Special files (FIFOs, directories, devices, huge and non-UTF-8 files) are made
by the test itself.
"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))


def write(rel, text):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


GPT2_TOML = open(os.path.join(HERE, "base", "gpt2.toml")).read()
LLAMA_TOML = open(os.path.join(HERE, "base", "llama-3-8b.toml")).read()


def toml_set(text, key, value, nth=1):
    """Replace the nth `key = ...` line."""
    count = 0

    def sub(m):
        nonlocal count
        count += 1
        return f"{key} = {value}" if count == nth else m.group(0)

    out = re.sub(rf"^{re.escape(key)} = .*$", sub, text, flags=re.M)
    assert count >= nth, (key, nth)
    return out


# ---- model TOML files: (file, base, key, value) -----------------------------------------------
MODELS = [
    ("hidden-2p53", GPT2_TOML, "hidden", "9007199254740992"),
    ("hidden-i64max", GPT2_TOML, "hidden", "9223372036854775807"),
    ("hidden-2p64", GPT2_TOML, "hidden", "18446744073709551616"),
    ("hidden-float", GPT2_TOML, "hidden", "768.5"),
    ("hidden-1e30", GPT2_TOML, "hidden", "1e30"),
    ("hidden-negative", GPT2_TOML, "hidden", "-768"),
    ("hidden-zero", GPT2_TOML, "hidden", "0"),
    ("hidden-string", GPT2_TOML, "hidden", '"768"'),
    ("hidden-nan", GPT2_TOML, "hidden", "nan"),
    ("hidden-2p21", GPT2_TOML, "hidden", "2097152"),
    ("layers-1e15", GPT2_TOML, "layers", "1000000000000000"),
    ("layers-zero", GPT2_TOML, "layers", "0"),
    ("layers-negative", GPT2_TOML, "layers", "-12"),
    ("layers-float", GPT2_TOML, "layers", "12.0"),
    ("layers-65536", GPT2_TOML, "layers", "65536"),
    ("vocab-2p63", GPT2_TOML, "vocab", "9223372036854775807"),
    ("vocab-zero", GPT2_TOML, "vocab", "0"),
    ("vocab-2p30", GPT2_TOML, "vocab", "1073741824"),
    ("heads-7", GPT2_TOML, "heads", "7"),
    ("heads-zero", GPT2_TOML, "heads", "0"),
    ("heads-huge", GPT2_TOML, "heads", "9007199254740992"),
    ("ffn-zero", GPT2_TOML, "ffn", "0"),
    ("ffn-huge", GPT2_TOML, "ffn", "4503599627370496"),
    ("positions-huge", GPT2_TOML, "max", "9007199254740992"),
    ("dim-mismatch", GPT2_TOML, "dim", "512"),
    ("dropout-1", GPT2_TOML, "dropout", "1.0"),
    ("dropout-negative", GPT2_TOML, "dropout", "-0.1"),
    ("dropout-nan", GPT2_TOML, "dropout", "nan"),
    ("dropout-inf", GPT2_TOML, "dropout", "inf"),
    ("experts-zero", GPT2_TOML, "experts", "0"),
    ("topk-over-experts", GPT2_TOML, "top_k", "2"),
    ("experts-huge", GPT2_TOML, "experts", "4294967296"),
    ("buffer-bytes-huge", GPT2_TOML, "buffer_bytes", "9007199254740992"),
    ("activation-unknown", GPT2_TOML, "activation", '"mish"'),
    ("architecture-unknown", GPT2_TOML, "architecture", '"transformer"'),
    ("norm-unknown", GPT2_TOML, "kind", '"batch-norm"'),
    ("kv-heads-5", LLAMA_TOML, "kv_heads", "5"),
    ("kv-heads-zero", LLAMA_TOML, "kv_heads", "0"),
    ("kv-heads-over", LLAMA_TOML, "kv_heads", "64"),
    ("llama-layers-huge", LLAMA_TOML, "layers", "9007199254740992"),
    ("llama-params-over-limit", toml_set(LLAMA_TOML, "ffn", "16777216"), "layers", "16384"),
]
for name, base, key, value in MODELS:
    write(f"models/{name}.toml", toml_set(base, key, value))
write("models/unknown-field.toml", GPT2_TOML.replace("hidden = 768", "hidden = 768\nhiden = 768"))
write("models/not-toml.toml", "name = \"x\"\n[[stacks\nlayers = 3\n")
write("models/no-stacks.toml", 'name = "x"\narchitecture = "decoder"\n')
write("models/only-name.toml", 'name = "x"\n')
write("models/binary-ish.toml", "name = \"\u0000\u0001\"\narchitecture = \"decoder\"\n")

# Huge but legal: the largest sizes memplan accepts still give finite, unwrapped estimates.
write("good/wide.toml", toml_set(toml_set(toml_set(toml_set(GPT2_TOML, "hidden", "65536"), "dim", "65536"), "ffn", "262144"), "heads", "64"))
write("good/deep.toml", toml_set(GPT2_TOML, "layers", "16384"))
write("good/vocab.toml", toml_set(GPT2_TOML, "vocab", "16777216"))

# ---- Hugging Face configs ----------------------------------------------------------------------
GPT2_JSON = json.load(open(os.path.join(HERE, "base", "gpt2-config.json")))
LLAMA_JSON = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
    "num_hidden_layers": 32, "vocab_size": 128256, "max_position_embeddings": 8192,
    "tie_word_embeddings": False,
}
HF = [
    ("n-embd-2p53", GPT2_JSON, "n_embd", 9007199254740992),
    ("n-embd-2p64", GPT2_JSON, "n_embd", "RAW:18446744073709551616"),
    ("n-embd-1e30", GPT2_JSON, "n_embd", "RAW:1e30"),
    ("n-embd-float", GPT2_JSON, "n_embd", 768.5),
    ("n-embd-negative", GPT2_JSON, "n_embd", -768),
    ("n-embd-zero", GPT2_JSON, "n_embd", 0),
    ("n-embd-string", GPT2_JSON, "n_embd", "768"),
    ("n-layer-1e15", GPT2_JSON, "n_layer", 1000000000000000),
    ("n-layer-zero", GPT2_JSON, "n_layer", 0),
    ("n-layer-true", GPT2_JSON, "n_layer", True),
    ("n-head-7", GPT2_JSON, "n_head", 7),
    ("n-head-zero", GPT2_JSON, "n_head", 0),
    ("vocab-2p63", GPT2_JSON, "vocab_size", 9223372036854775808),
    ("vocab-zero", GPT2_JSON, "vocab_size", 0),
    ("n-positions-huge", GPT2_JSON, "n_positions", 9007199254740992),
    ("n-inner-huge", GPT2_JSON, "n_inner", 9007199254740992),
    ("attn-pdrop-1.5", GPT2_JSON, "attn_pdrop", 1.5),
    ("attn-pdrop-negative", GPT2_JSON, "attn_pdrop", -0.5),
    ("resid-pdrop-1e308", GPT2_JSON, "resid_pdrop", 1e308),
    ("model-type-unknown", GPT2_JSON, "model_type", "mamba"),
    ("model-type-number", GPT2_JSON, "model_type", 7),
    ("architectures-unknown", GPT2_JSON, "architectures", ["GPT2DoubleHeadsModel"]),
    ("architectures-string", GPT2_JSON, "architectures", "GPT2LMHeadModel"),
    ("activation-unknown", GPT2_JSON, "activation_function", "mish"),
    ("llama-kv-heads-5", LLAMA_JSON, "num_key_value_heads", 5),
    ("llama-kv-heads-zero", LLAMA_JSON, "num_key_value_heads", 0),
    ("llama-head-dim-huge", LLAMA_JSON, "head_dim", 9007199254740992),
    ("llama-layers-huge", LLAMA_JSON, "num_hidden_layers", 9007199254740992),
    ("llama-hidden-2p63", LLAMA_JSON, "hidden_size", 9223372036854775807),
    ("llama-rotary-factor-nan", LLAMA_JSON, "partial_rotary_factor", "RAW:1e999"),
    ("llama-rotary-factor-big", LLAMA_JSON, "partial_rotary_factor", 1e30),
    ("llama-pad-huge", LLAMA_JSON, "pad_token_id", 18446744073709551615),
    ("llama-experts-huge", dict(LLAMA_JSON, model_type="mixtral", num_experts_per_tok=2), "num_local_experts", 1 << 40),
    ("llama-params-over-limit", dict(LLAMA_JSON, intermediate_size=1 << 24), "num_hidden_layers", 16384),
]
for name, base, key, value in HF:
    d = dict(base)
    raw = None
    if isinstance(value, str) and value.startswith("RAW:"):
        raw = value[4:]
        d[key] = "__RAW__"
    else:
        d[key] = value
    text = json.dumps(d, indent=1)
    if raw is not None:
        text = text.replace('"__RAW__"', raw)
    write(f"hf/{name}.json", text + "\n")
d = dict(GPT2_JSON)
del d["n_embd"]
write("hf/missing-n-embd.json", json.dumps(d, indent=1))
write("hf/not-json.json", "{ model_type: gpt2 ")
write("hf/array.json", "[1, 2, 3]\n")
write("hf/null.json", "null\n")
write("hf/deep-nesting.json", "[" * 100000 + "]" * 100000)

# ---- DeepSpeed configs ---------------------------------------------------------------------------
DS = {
    "bf16": {"enabled": True}, "gradient_accumulation_steps": 8, "train_batch_size": 64,
    "train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 2},
}
DSCASES = [
    ("micro-batch-zero", "train_micro_batch_size_per_gpu", 0),
    ("micro-batch-2p53", "train_micro_batch_size_per_gpu", 9007199254740992),
    ("micro-batch-negative", "train_micro_batch_size_per_gpu", -1),
    ("micro-batch-float", "train_micro_batch_size_per_gpu", 1.5),
    ("micro-batch-auto", "train_micro_batch_size_per_gpu", "auto"),
    ("accumulation-overflow", "gradient_accumulation_steps", 18446744073709551615),
    ("accumulation-zero", "gradient_accumulation_steps", 0),
    ("train-batch-not-multiple", "train_batch_size", 63),
    ("train-batch-2p64", "train_batch_size", "RAW:18446744073709551616"),
]
write("deepspeed/good.json", json.dumps(DS, indent=1) + "\n")
for name, key, value in DSCASES:
    d = json.loads(json.dumps(DS))
    raw = None
    if isinstance(value, str) and value.startswith("RAW:"):
        raw, value = value[4:], "__RAW__"
    d[key] = value
    text = json.dumps(d, indent=1)
    if raw:
        text = text.replace('"__RAW__"', raw)
    write(f"deepspeed/{name}.json", text + "\n")
for name, stage in [("zero-stage-4", 4), ("zero-stage-huge", 9007199254740992), ("zero-stage-string", "three")]:
    d = json.loads(json.dumps(DS))
    d["zero_optimization"]["stage"] = stage
    write(f"deepspeed/{name}.json", json.dumps(d, indent=1) + "\n")
d = json.loads(json.dumps(DS))
d["train_micro_batch_size_per_gpu"] = 4294967296
d["gradient_accumulation_steps"] = 4294967296
d["train_batch_size"] = 4294967296
write("deepspeed/product-overflow.json", json.dumps(d, indent=1) + "\n")
write("deepspeed/not-json.json", "{ stage: 3")

# ---- budgets --------------------------------------------------------------------------------------
BUDGET = '''gpus = ["rtx-4090"]
[[scenario]]
name = "gpt2"
model = "gpt2"
set = { batch = 8 }
max_total = "14GiB"
'''
write("budgets/good.toml", BUDGET)
BUDGETS = [
    ("max-total-unitless", 'max_total = "14GiB"', 'max_total = "1e30"'),
    ("max-total-negative", 'max_total = "14GiB"', 'max_total = "-14GiB"'),
    ("max-total-huge", 'max_total = "14GiB"', 'max_total = "9007199254740992GiB"'),
    ("max-total-nan", 'max_total = "14GiB"', 'max_total = "NaNGiB"'),
    ("max-total-number", 'max_total = "14GiB"', "max_total = 14"),
    ("batch-huge", "batch = 8", "batch = 9007199254740992"),
    ("batch-zero", "batch = 8", "batch = 0"),
    ("batch-negative", "batch = 8", "batch = -8"),
    ("batch-float", "batch = 8", "batch = 8.5"),
    ("unknown-setting", "batch = 8", "batchsize = 8"),
    ("unknown-gpu", '["rtx-4090"]', '["rtx-9090"]'),
    ("unknown-model", 'model = "gpt2"', 'model = "gpt-7"'),
    ("no-limit", 'max_total = "14GiB"', ""),
    ("no-model", 'model = "gpt2"', ""),
    ("empty-name", 'name = "gpt2"', 'name = ""'),
    ("unknown-field", 'max_total = "14GiB"', 'max_total = "14GiB"\nmax_totl = "1GiB"'),
    ("precision-unknown", "batch = 8", 'precision = "fp4"'),
    ("tp-zero", "batch = 8", "tp = 0"),
]
for name, old, new in BUDGETS:
    assert old in BUDGET, old
    write(f"budgets/{name}.toml", BUDGET.replace(old, new))
write("budgets/no-scenarios.toml", 'gpus = ["rtx-4090"]\n')
write("budgets/duplicate-names.toml", BUDGET + BUDGET.split("\n", 1)[1])
write("budgets/not-toml.toml", "[[scenario]\nname = 1\n")

# ---- compare baselines ----------------------------------------------------------------------------
BASE = json.load(open(os.path.join(HERE, "base", "baseline.json")))
write("baselines/good.json", json.dumps(BASE, indent=1))
def baseline(name, mutate):
    d = json.loads(json.dumps(BASE))
    mutate(d)
    write(f"baselines/{name}.json", json.dumps(d, indent=1))
baseline("schema-99", lambda d: d.update(schema_version=99))
baseline("total-negative", lambda d: d["rows"][0].update(total_bytes=-1))
baseline("total-float", lambda d: d["rows"][0].update(total_bytes=1.5))
baseline("total-string", lambda d: d["rows"][0].update(total_bytes="big"))
baseline("rows-missing", lambda d: d.pop("rows"))
baseline("rows-object", lambda d: d.update(rows={}))
write("baselines/total-2p64.json", json.dumps(BASE, indent=1).replace(
    f'"total_bytes": {BASE["rows"][0]["total_bytes"]}', '"total_bytes": 18446744073709551616'))
write("baselines/total-max.json", json.dumps(BASE, indent=1).replace(
    f'"total_bytes": {BASE["rows"][0]["total_bytes"]}', '"total_bytes": 18446744073709551615'))
write("baselines/not-json.json", '{"schema_version": 1, "rows": [')

# ---- bench and validate JSON ---------------------------------------------------------------------
BENCH = json.load(open(os.path.join(HERE, "base", "bench.json")))
VALIDATE = json.load(open(os.path.join(HERE, "base", "validate.json")))
write("bench/good.json", json.dumps(BENCH, indent=1))
def bench(name, doc, mutate):
    d = json.loads(json.dumps(doc))
    mutate(d)
    write(f"bench/{name}.json", json.dumps(d, indent=1))
bench("schema-99", BENCH, lambda d: d.update(schema_version=99))
bench("results-missing", BENCH, lambda d: d.pop("results"))
bench("tflops-negative", BENCH, lambda d: d["results"][0].update(tflops=-5.0))
bench("tflops-string", BENCH, lambda d: d["results"][0].update(tflops="fast"))
bench("median-zero", BENCH, lambda d: d["results"][0]["stats"].update(median=0.0))
bench("validate-rows-object", VALIDATE, lambda d: d.update(rows={}))
bench("validate-estimate-string", VALIDATE, lambda d: d["rows"][0].update(estimate="big"))
bench("neither", BENCH, lambda d: (d.pop("results"), d.pop("schema_version")))
write("bench/tflops-1e999.json", json.dumps(BENCH, indent=1).replace(
    f'"tflops": {BENCH["results"][0]["tflops"]}', '"tflops": 1e999', 1))
write("bench/not-json.json", '{"results": [')

# ---- preset directories ----------------------------------------------------------------------------
write("presets/bad-model/models/broken.toml", toml_set(GPT2_TOML, "hidden", "9007199254740992"))
GPU_TOML = open(os.path.join(HERE, "base", "rtx-4090.toml")).read()
for name, key, value in [
    ("memory-zero", "memory_bytes", "0"),
    ("memory-negative", "memory_bytes", "-1"),
    ("memory-huge", "memory_bytes", "18446744073709551616"),
    ("memory-2p63", "memory_bytes", "9223372036854775807"),
    ("bandwidth-nan", "memory_bandwidth", "nan"),
    ("efficiency-2", "default_efficiency", "2.0"),
    ("fp32-inf", "fp32", "inf"),
    ("fp16-negative", "fp16", "-1e12"),
]:
    write(f"presets/gpu-{name}/gpus/broken.toml", re.sub(rf"^{key} = [^#\n]*", f"{key} = {value} ", GPU_TOML, count=1, flags=re.M))
write("presets/not-toml/models/x.toml", "[[[")
os.makedirs(os.path.join(HERE, "presets", "empty"), exist_ok=True)
write("presets/empty/README", "neither models/ nor gpus/ here\n")
