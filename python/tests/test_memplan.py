"""The Python face: the same numbers as the CLI (its JSON byte for byte, its table line for
line), the CLI's errors as MemplanError, typed results, and a notebook-style session.

Expected numbers beyond the CLI's come from hand calculations written here (parameter counts,
bytes per parameter of the precision recipes), never from memplan's output.
"""

import ast
import copy
import doctest
import json
import pathlib
import pickle

import pytest

import memplan

GPT2 = 124_439_808  # GPT2LMHeadModel(GPT2Config()).num_parameters(), tied head
TINYLLAMA = 1_100_048_384  # 22·(2·2048² + 2·2048·256 + 3·2048·5632 + 2·2048) + 2·32000·2048 + 2048

# (keyword arguments, the same scenario as CLI flags)
SCENARIOS = [
    (
        dict(model="llama-2-7b", batch=4, seq=4096, precision="mixed-bf16", tp=2),
        ["--model", "llama-2-7b", "--batch", "4", "--seq", "4096", "--precision", "mixed-bf16", "--tp", "2"],
    ),
    (
        dict(model="gpt2", batch="8", seq="1k", recompute="full", attention="eager", dropout=False),
        ["--model", "gpt2", "--batch", "8", "--seq", "1k", "--recompute", "full", "--attention", "eager", "--no-dropout"],
    ),
    (
        dict(model="llama-2-7b", batch=2, tp=2, pp=2, dp=2, sp=True, zero=1, gpu=["h100-sxm", "a100-80gb"]),
        ["--model", "llama-2-7b", "--batch", "2", "--tp", "2", "--pp", "2", "--dp", "2", "--sp", "--zero", "1",
         "--gpu", "h100-sxm,a100-80gb"],
    ),
    (
        dict(model="llama-2-7b", phase="inference", weights="int4", kv_dtype="fp8", context=8192, max_batch=16,
             framework="vllm", block_size=16),
        ["--model", "llama-2-7b", "--phase", "inference", "--weights", "int4", "--kv-dtype", "fp8", "--context", "8192",
         "--max-batch", "16", "--framework", "vllm", "--block-size", "16"],
    ),
    (
        dict(params="1.3b", framework="deepspeed", zero=3, dp=8, offload="optimizer", cuda_context="1GiB",
             fragmentation=0.1),
        ["--params", "1.3b", "--framework", "deepspeed", "--zero", "3", "--dp", "8", "--offload", "optimizer",
         "--cuda-context", "1GiB", "--fragmentation", "0.1"],
    ),
    (
        dict(model="llama-2-7b", finetune="qlora", lora_rank=16, double_quant=True, batch=2, seq=1024),
        ["--model", "llama-2-7b", "--finetune", "qlora", "--lora-rank", "16", "--double-quant", "--batch", "2",
         "--seq", "1024"],
    ),
]


@pytest.mark.parametrize("kwargs,flags", SCENARIOS)
def test_estimate_is_the_clis_json_and_table(cli, kwargs, flags):
    est = memplan.estimate(**kwargs)
    out = cli.json("estimate", *flags)
    assert est.to_json() + "\n" == out  # byte for byte
    assert est.to_dict() == json.loads(out)
    code, table, err = cli.run("estimate", *flags)
    assert code in (0, 1), err
    assert str(est) == table


def test_results_are_typed_views_of_the_json():
    est = memplan.estimate(model="gpt2", batch=4, precision="mixed-bf16", gpu="h100-sxm")
    d = est.to_dict()
    assert est.model.parameters == GPT2 == d["model"]["parameters"]
    # ZeRO paper §3.1: mixed precision Adam, 2 + 2 + 12 bytes per parameter.
    assert est.per_gpu.weights_bytes == 2 * GPT2
    assert est.per_gpu.gradients_bytes == 2 * GPT2
    assert est.per_gpu.optimizer_states_bytes == 12 * GPT2
    assert isinstance(est.per_gpu, memplan.PerGpu) and isinstance(est.model, memplan.ModelInfo)
    assert [type(f) for f in est.fits] == [memplan.Fit]
    fit = est.fit("h100-sxm")
    assert fit.fits and fit.headroom_bytes == fit.usable_bytes - fit.total_bytes
    assert fit.usable_bytes <= fit.memory_bytes
    assert est.model.shape[0].layers == 12 and est.setup.micro_batch == 4
    # total = peak + CUDA context + workspace + fragmentation, each a named line.
    o = est.overheads
    assert est.per_gpu.total_bytes == est.per_gpu.peak_allocated_bytes + o.cuda_context_bytes + o.workspace_bytes + o.fragmentation_bytes
    # Fields the JSON leaves out when they do not apply read as None (or 0 NCCL bytes).
    assert est.serving is None and fit.max_concurrent_sequences is None and o.nccl_bytes == 0
    assert "serving" not in est.to_dict()
    # to_dict is a copy: changing it changes nothing.
    d["per_gpu"]["total_bytes"] = 0
    assert est.per_gpu.total_bytes != 0
    with pytest.raises(AttributeError, match="no field 'totl'"):
        est.per_gpu.totl
    with pytest.raises(KeyError):
        est.fit("t4")
    # The summary uses the CLI's GiB text.
    assert memplan.fmt_bytes(est.per_gpu.total_bytes) in repr(est)
    assert "fits h100-sxm" in repr(est)


def test_byte_text_is_the_clis_to_the_digit():
    # Ties round half to even like Rust's {:.2}: 1.125 GiB -> 1.12, 1.375 GiB -> 1.38.
    assert memplan.fmt_bytes(1_207_959_552) == "1.12 GiB"
    assert memplan.fmt_bytes(1_476_395_008) == "1.38 GiB"
    assert memplan.fmt_bytes(0) == "0 GiB"
    assert memplan.fmt_bytes(32 << 20) == "32.00 MiB"
    assert memplan.fmt_bytes(-(3 << 29)) == "-1.50 GiB"
    assert memplan.fmt_bytes(80_000_000_000, "gb") == "80.00 GB"
    assert memplan.fmt_count(GPT2) == "124.4M" and memplan.fmt_count(6_738_415_616) == "6.74B"


def test_hf_config_as_a_dict_a_path_or_text(cli, tinyllama, tinyllama_path):
    from_dict = memplan.estimate(hf_config=tinyllama, batch=2, seq=1024, gpu="a100-80gb")
    assert from_dict.model.parameters == TINYLLAMA
    flags = ["--batch", "2", "--seq", "1024", "--gpu", "a100-80gb"]
    cli_out = json.loads(cli.json("estimate", "--hf-config", str(tinyllama_path), *flags))
    # The same bytes; the model's name differs (the file's stem vs `config`).
    assert from_dict.to_dict()["per_gpu"] == cli_out["per_gpu"]
    assert from_dict.to_dict()["fits"] == cli_out["fits"]
    # A path (pathlib or str) is read as the CLI reads it: the whole JSON is the CLI's.
    for path in (tinyllama_path, str(tinyllama_path)):
        est = memplan.estimate(hf_config=path, batch=2, seq=1024, gpu="a100-80gb")
        assert est.to_dict() == cli_out
    # JSON text gives what the dict gives.
    text = memplan.estimate(hf_config=json.dumps(tinyllama), batch=2, seq=1024, gpu="a100-80gb")
    assert text.to_dict() == from_dict.to_dict()

    class PretrainedConfigLike:  # what transformers' AutoConfig returns
        def to_dict(self):
            return copy.deepcopy(tinyllama)

        def to_json_string(self):
            return json.dumps(tinyllama)

    obj = memplan.estimate(hf_config=PretrainedConfigLike(), batch=2, seq=1024, gpu="a100-80gb")
    assert obj.to_dict() == from_dict.to_dict()


def test_errors_are_the_clis(cli):
    cases = [
        (dict(model="gpt2", batch=0), ["estimate", "-m", "gpt2", "--batch", "0"]),
        (dict(model="gtp2"), ["estimate", "-m", "gtp2"]),
        (dict(model="gpt2", tp=5), ["estimate", "-m", "gpt2", "--tp", "5"]),
        (dict(model="gpt2", cuda_context="512"), ["estimate", "-m", "gpt2", "--cuda-context", "512"]),
        (dict(model="gpt2", seq=10**30), ["estimate", "-m", "gpt2", "--seq", str(10**30)]),
        (dict(model="gpt2", fragmentation=float("nan")), ["estimate", "-m", "gpt2", "--fragmentation", "nan"]),
        (dict(model="gpt2", params="1b"), ["estimate", "-m", "gpt2", "--params", "1b"]),
        (dict(model="gpt2", precision="bf32"), None),
    ]
    for kwargs, args in cases:
        with pytest.raises(memplan.MemplanError) as e:
            memplan.estimate(**kwargs)
        assert isinstance(e.value, ValueError)
        if args is None:
            # clap checks choices before the library; the library's own words name the value.
            assert str(e.value) == "invalid --precision: `bf32`"
            assert "mixed-bf16" in e.value.hint
            continue
        error, hint = cli.error(*args)
        assert (str(e.value), e.value.hint) == (error, hint), kwargs
    # An unknown keyword: the CLI's message for an unknown `--set` key, with the closest key.
    with pytest.raises(memplan.MemplanError) as e:
        memplan.estimate(model="gpt2", batchh=4)
    assert (str(e.value), e.value.hint) == cli.error("compare", "gpt2", "--set", "batchh=4")
    assert "`batch`?" in e.value.hint
    # A setting of the other entry point, a value of the wrong type.
    with pytest.raises(memplan.MemplanError) as e:
        memplan.estimate(model="gpt2", top=3)
    assert str(e.value) == "--top is a setting of `plan`, not of `estimate`"
    with pytest.raises(memplan.MemplanError, match=r"^invalid --model: `<object"):
        memplan.estimate(model=object())
    with pytest.raises(memplan.MemplanError) as e:
        memplan.estimate(hf_config={"model_type": "llama"})
    assert str(e.value).startswith("config.json")
    # The hint survives pickling (multiprocessing, notebooks' parallel runs).
    again = pickle.loads(pickle.dumps(e.value))
    assert (str(again), again.hint) == (str(e.value), e.value.hint)


def test_plan_is_the_clis(cli):
    kwargs = dict(model="llama-2-7b", gpus="16xh100-sxm", global_batch=256, seq=2048, top=5)
    p = memplan.plan(**kwargs)
    flags = ["plan", "--model", "llama-2-7b", "--gpus", "16xh100-sxm", "--global-batch", "256", "--seq", "2048", "--top", "5"]
    out = cli.json(*flags)
    assert p.to_json() + "\n" == out
    assert len(p.plans) == 5 and p.best.rank == 1
    assert p.best.description == json.loads(out)["plans"][0]["description"]
    assert p.best.time.total_s > 0 and isinstance(p.best.plan.dp, int)
    assert str(p) == cli.run(*flags)[1]
    # Errors: a cluster without its GPU; a setting that fixes a plan.
    with pytest.raises(memplan.MemplanError) as e:
        memplan.plan(model="gpt2", gpus=8)
    assert (str(e.value), e.value.hint) == cli.error("plan", "-m", "gpt2", "--gpus", "8")
    with pytest.raises(memplan.MemplanError, match="fixes part of a plan"):
        memplan.plan(model="gpt2", gpus="8xh100-sxm", tp=2)


def test_compare_is_the_clis(cli):
    c = memplan.compare(["gpt2", "gpt2-medium"], vary={"batch": [1, 8]}, gpu="a100-80gb")
    out = cli.json("compare", "gpt2", "gpt2-medium", "--vary", "batch=1,8", "--gpu", "a100-80gb")
    assert c.to_json() + "\n" == out
    assert [r.name for r in c.rows] == ["gpt2 batch=1", "gpt2 batch=8", "gpt2-medium batch=1", "gpt2-medium batch=8"]
    assert c.rows[0].parameters == GPT2
    # set / variant as dicts or strings, the same rows as the CLI's flags.
    c = memplan.compare("gpt2", set={"recompute": "full"}, variant=[{"tp": 2, "sp": True}, "zero=1,dp=2"], gpu=["h100-sxm"])
    out = cli.json("compare", "gpt2", "--set", "recompute=full", "--variant", "tp=2,sp=on", "--variant", "zero=1,dp=2",
                   "--gpu", "h100-sxm")
    assert c.to_dict() == json.loads(out)
    with pytest.raises(memplan.MemplanError):
        memplan.compare("gpt2", vary={"batch": [0]})


def test_presets_and_settings_are_the_tables(cli):
    p = memplan.presets()
    gpt2 = next(m for m in p.models if m.name == "gpt2")
    assert gpt2.parameters == GPT2 and gpt2.architecture == "decoder"
    code, listing, _ = cli.run("presets", "list", "gpus")
    assert code == 0
    for g in p.gpus:
        assert g.name in listing and memplan.fmt_bytes(g.memory_bytes) in listing
    table = memplan.settings()
    keys = [s.key for s in table]
    assert len(keys) == len(set(keys)) and "kv-heads" in keys
    kv = next(s for s in table if s.key == "kv-heads")
    assert kv.python_name == "kv_heads" and kv.estimate and kv.plan
    # Every setting of estimate is a flag of `memplan estimate` (and so of plan).
    _, estimate_help, _ = cli.run("estimate", "--help")
    _, plan_help, _ = cli.run("plan", "--help")
    for s in table:
        assert ("--" + s.key + " " in estimate_help or "--" + s.key + "\n" in estimate_help) == s.estimate, s.key
        assert ("--" + s.key + " " in plan_help or "--" + s.key + "\n" in plan_help) == s.plan, s.key


def test_docstrings_and_stubs_follow_the_settings_table():
    table = memplan.settings()
    for s in table:
        if s.estimate:
            assert "    {} (".format(s.python_name) in memplan.estimate.__doc__, s.key
        if s.plan and not s.plan_searches:
            assert "    {} (".format(s.python_name) in memplan.plan.__doc__, s.key
    stub = pathlib.Path(memplan.__file__).with_name("__init__.pyi")
    tree = ast.parse(stub.read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    for name, entry in (("estimate", "estimate"), ("plan", "plan")):
        kwargs = [a.arg for a in functions[name].args.kwonlyargs]
        assert kwargs == [s.python_name for s in table if s.to_dict()[entry]], "run python/gen_stub.py"
    compare_kwargs = [a.arg for a in functions["compare"].args.kwonlyargs]
    assert compare_kwargs == ["set", "vary", "variant"] + [s.python_name for s in table if s.estimate]
    # The stub's fields are the JSON's.
    est = memplan.estimate(model="gpt2")
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    for cls, obj in (("PerGpu", est.per_gpu), ("ModelInfo", est.model), ("Fit", est.fits[0]), ("EstimateReport", est),
                     ("Overheads", memplan.estimate(model="gpt2", dp=2, gpu="h100-sxm").overheads)):
        fields = [n.target.id for n in classes[cls].body if isinstance(n, ast.AnnAssign)]
        optional = ("serving", "serving_framework", "max_concurrent_sequences")
        missing = [f for f in fields if f not in obj and f not in optional]
        assert not missing, (cls, missing)
    assert (pathlib.Path(memplan.__file__).with_name("py.typed")).is_file()


def test_the_module_docstrings_run():
    for obj in (memplan, memplan.compare):
        finder = doctest.DocTestFinder(recurse=False)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for t in finder.find(obj, globs={"memplan": memplan}):
            runner.run(t)
        assert runner.failures == 0 and runner.tries > 0


def test_the_native_module_is_abi3():
    # One wheel for CPython 3.8 and later: the extension is built against the stable ABI.
    native = pathlib.Path(memplan._native.__file__).name
    assert ".abi3." in native or native.endswith(".pyd"), native


def test_a_notebook_session(cli, tinyllama):
    """What a user does in a notebook: paste a model's config, look at the estimate, sweep the
    micro-batch to find the largest that fits one GPU, check it, then ask for a plan."""
    est = memplan.estimate(hf_config=tinyllama, batch=4, seq=2048, gpu="rtx-4090")
    html = est._repr_html_()
    assert "<table" in html and memplan.fmt_bytes(est.per_gpu.total_bytes) in html
    rows = est.breakdown()
    assert rows[0][0] == "weights" and rows[-1] == ("total (reserved)", est.per_gpu.total_bytes, "peak + overheads")
    # Largest micro-batch that fits a 24 GiB card with full recomputation.
    fitting = [b for b in (1, 2, 4, 8, 16, 32) if memplan.estimate(hf_config=tinyllama, batch=b, seq=2048, recompute="full",
                                                                   precision="bf16", optimizer="adamw-8bit", gpu="rtx-4090").fits[0].fits]
    assert fitting, "some micro-batch fits"
    best = fitting[-1]
    # The CLI agrees on both sides of the boundary.
    flags = ["--seq", "2048", "--recompute", "full", "--precision", "bf16", "--optimizer", "adamw-8bit", "--gpu", "rtx-4090"]
    code, _, _ = cli.run("estimate", "--model", "llama-2-7b", "--batch", "1", "--gpu", "rtx-4090")
    assert code == 1  # LLaMA-2 7B training does not fit a 24 GiB card (16 B/param alone is 100 GiB)
    cfg = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "tinyllama-1.1b-config.json"
    assert cli.run("estimate", "--hf-config", str(cfg), "--batch", str(best), *flags)[0] == 0
    if best < 32:
        assert cli.run("estimate", "--hf-config", str(cfg), "--batch", str(best * 2), *flags)[0] == 1
    # Plans for a node of them, shown as a table.
    p = memplan.plan(hf_config=tinyllama, gpus="8xrtx-4090", seq=2048, global_batch=64)
    assert "<table" in p._repr_html_() and p.best is not None
    assert "PlanReport" in repr(p)
    c = memplan.compare(["gpt2", "gpt2-medium"], gpu="rtx-4090")
    assert "<table" in c._repr_html_()
