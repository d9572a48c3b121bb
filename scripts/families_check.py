#!/usr/bin/env python
"""Reference numbers for memplan's model families beyond transformer stacks.

A tool for checking, not part of the project (like scripts/measure.py, whose
dispatch-level live-storage tracker it reuses). It needs torch, transformers, torchvision and
diffusers (CPU builds are enough); nothing is downloaded: every model is built from its config.

  python scripts/families_check.py --counts        # parameter counts of the presets' models
  python scripts/families_check.py --out tests/data/families_saved.json

The output holds, for small configurations of each kind of block, the bytes autograd saves for
backward (distinct storages reached by `torch.autograd.graph.saved_tensors_hooks`; parameters,
buffers and the inputs excluded), and, for full-size models, the peak of live tensor storage of a
no-grad forward and of a training step (fp32, CPU). `tests/families.rs` reads it: the saved bytes
must equal memplan's ledgers exactly, the peaks within the tolerance written there. Each record
carries the memplan model file (TOML) that describes the same configuration.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def n_params(*ms):
    return sum(p.numel() for m in ms for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# parameter counts
# ---------------------------------------------------------------------------------------------

SD15_UNET = dict(act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
                 cross_attention_dim=768, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                 in_channels=4, layers_per_block=2, norm_num_groups=32, out_channels=4, sample_size=64,
                 up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)
SDXL_UNET = dict(act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64,
                 addition_time_embed_dim=256, attention_head_dim=[5, 10, 20], block_out_channels=[320, 640, 1280],
                 cross_attention_dim=2048, down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                 in_channels=4, layers_per_block=2, norm_num_groups=32, out_channels=4,
                 projection_class_embeddings_input_dim=2816, sample_size=128, transformer_layers_per_block=[1, 2, 10],
                 up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], use_linear_projection=True)
SD_VAE = dict(act_fn="silu", block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
              in_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32, out_channels=3,
              sample_size=512, up_block_types=["UpDecoderBlock2D"] * 4)


def counts():
    import torchvision
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import BigBirdConfig, BigBirdForPreTraining, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.set_default_device("meta")
    out = {}
    for name in ["resnet18", "resnet50", "resnet152"]:
        out[name] = n_params(getattr(torchvision.models, name)())
    out["sd15-unet"] = n_params(UNet2DConditionModel(**SD15_UNET))
    out["sdxl-unet"] = n_params(UNet2DConditionModel(**SDXL_UNET))
    out["sd-vae"] = n_params(AutoencoderKL(**SD_VAE))
    clip_l = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")
    out["clip-l-text"] = n_params(CLIPTextModel(clip_l))
    big_g = CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                           num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
    out["openclip-bigg-text-projection"] = n_params(CLIPTextModelWithProjection(big_g))
    out["bigbird-roberta-base-pretraining"] = n_params(BigBirdForPreTraining(BigBirdConfig()))
    out["lstm-seq2seq"] = n_params(nn.Embedding(160000, 1000), nn.LSTM(1000, 1000, 4), nn.Embedding(80000, 1000),
                                   nn.LSTM(1000, 1000, 4), nn.Linear(1000, 80000))
    r = torchvision.models.resnet152()
    out["show-and-tell"] = n_params(nn.Sequential(*list(r.children())[:-1]), nn.Linear(2048, 256), nn.BatchNorm1d(256),
                                    nn.Embedding(10000, 256), nn.LSTM(256, 512, 1), nn.Linear(512, 10000))
    torch.set_default_device("cpu")
    return out


# ---------------------------------------------------------------------------------------------
# saved tensors
# ---------------------------------------------------------------------------------------------

class Saved:
    """Distinct storages autograd saves while the context is active."""

    def __init__(self, exclude):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.store = {}

    def pack(self, t):
        st = t.untyped_storage()
        if st.data_ptr() not in self.exclude and st.nbytes() > 0:
            self.store[st.data_ptr()] = st.nbytes()
        return t

    def __enter__(self):
        self.ctx = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.ctx.__enter__()
        return self

    def __exit__(self, *a):
        self.ctx.__exit__(*a)

    def total(self):
        return sum(self.store.values())


def saved_bytes(model, inputs, fn):
    exclude = list(model.parameters()) + list(model.buffers()) + [t for t in inputs if isinstance(t, torch.Tensor)]
    with Saved(exclude) as s:
        out = fn()
    del out
    return s.total()


RESNET_TOML = """name = "{name}"
architecture = "encoder"
[[modules]]
kind = "resnet"
name = "resnet"
image = {image}
stem = 64
block = "{block}"
layers = {layers}
widths = [64, 128, 256, 512]
classes = 1000
"""


def unet_toml(name, c, image, depth, heads, mid, cross, context, linear=False, add=None, trainable=True):
    extra = "linear_projection = true\n" if linear else ""
    if add:
        extra += "add_embedding = {{ text_dim = {}, time_ids = {}, time_dim = {} }}\n".format(*add)
    return f"""name = "{name}"
architecture = "encoder"
[[modules]]
kind = "unet"
name = "unet"
trainable = {str(trainable).lower()}
image = {image}
channels = {c}
layers_per_block = 2
transformer_depth = {depth}
heads = {heads}
mid_depth = {mid}
cross_attention_dim = {cross}
context_len = {context}
{extra}"""


def saved_cases():
    import torchvision
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import BigBirdConfig
    from transformers.models.big_bird.modeling_big_bird import BigBirdLayer, BigBirdModel

    torch.manual_seed(0)
    out = []
    # ResNets: the whole model and its cross-entropy loss.
    for name, ctor, block, layers in [("resnet-50", torchvision.models.resnet50, "bottleneck", [3, 4, 6, 3]),
                                      ("resnet-18", torchvision.models.resnet18, "basic", [2, 2, 2, 2])]:
        m = ctor().train()
        b, image = 2, 64
        x = torch.randn(b, 3, image, image)
        y = torch.randint(0, 1000, (b,))
        n = saved_bytes(m, [x, y], lambda: F.cross_entropy(m(x), y))
        out.append(dict(id=f"{name}/train/b{b}/{image}px/fp32", kind="modules", batch=b, seq=0,
                        toml=RESNET_TOML.format(name=name, image=image, block=block, layers=layers), saved_bytes=n,
                        source=f"torchvision {torchvision.__version__} models.{ctor.__name__}()"))
    # UNets: SD v1.5's layout and SDXL's (linear projections, deeper transformers, added embedding),
    # small widths; the MSE loss in fp32 as diffusers' training script computes it.
    b, latent, context = 2, 16, 8
    sd = dict(SD15_UNET, block_out_channels=[32, 64, 64, 64], attention_head_dim=4, cross_attention_dim=32,
              sample_size=latent)
    xl = dict(SDXL_UNET, block_out_channels=[32, 64, 64], attention_head_dim=[2, 4, 4], cross_attention_dim=48,
              transformer_layers_per_block=[1, 2, 3], addition_time_embed_dim=8,
              projection_class_embeddings_input_dim=6 * 8 + 16, sample_size=latent)
    for name, cfg, toml in [
        ("unet-sd15-small", sd, unet_toml("unet-sd15-small", [32, 64, 64, 64], 8 * latent, [1, 1, 1, 0], [4, 4, 4, 4], 1, 32, context)),
        ("unet-sdxl-small", xl, unet_toml("unet-sdxl-small", [32, 64, 64], 8 * latent, [0, 2, 3], [2, 4, 4], 3, 48, context,
                                           linear=True, add=(16, 6, 8))),
    ]:
        m = UNet2DConditionModel(**cfg).train()
        x = torch.randn(b, 4, latent, latent)
        t = torch.randint(0, 1000, (b,))
        ctx = torch.randn(b, context, cfg["cross_attention_dim"])
        noise = torch.randn(b, 4, latent, latent)
        kw = {}
        if cfg.get("addition_embed_type"):
            kw["added_cond_kwargs"] = {"text_embeds": torch.randn(b, 16), "time_ids": torch.randn(b, 6)}
        extra = [v for d in kw.values() for v in d.values()]

        def step():
            pred = m(x, t, ctx, **kw).sample
            return F.mse_loss(pred.float(), noise.float())

        n = saved_bytes(m, [x, t, ctx, noise] + extra, step)
        out.append(dict(id=f"{name}/train/b{b}/latent{latent}/fp32", kind="modules", batch=b, seq=0, toml=toml,
                        saved_bytes=n, source="diffusers UNet2DConditionModel, small widths"))
    # A trainable VAE: encode to the posterior (its mode), and decode a latent of that shape.
    b, image = 2, 32
    cfg = dict(SD_VAE, block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D"] * 2,
               up_block_types=["UpDecoderBlock2D"] * 2, layers_per_block=1, sample_size=image)
    m = AutoencoderKL(**cfg).train()
    x = torch.randn(b, 3, image, image)
    z = torch.randn(b, 4, image // 2, image // 2)
    n = saved_bytes(m, [x], lambda: m.encode(x).latent_dist.mode()) + saved_bytes(m, [z], lambda: m.decode(z).sample)
    toml = f"""name = "vae-small"
architecture = "encoder"
[[modules]]
kind = "vae"
name = "vae"
image = {image}
channels = [32, 64]
layers_per_block = 1
"""
    out.append(dict(id=f"vae-small/train/b{b}/{image}px/fp32", kind="modules", batch=b, seq=0, toml=toml,
                    saved_bytes=n, source="diffusers AutoencoderKL, small widths"))
    # CLIP ViT-B/32 (the preset): both towers and the contrastive loss over b × b logits.
    from transformers import CLIPConfig, CLIPModel
    b = 32
    cfg = CLIPConfig(text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                                      num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu"),
                     vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, image_size=224, patch_size=32, hidden_act="quick_gelu"),
                     projection_dim=512)
    cfg._attn_implementation = "sdpa"
    m = CLIPModel(cfg).train()
    ids = torch.randint(0, 49408, (b, 77))
    px = torch.randn(b, 3, 224, 224)
    n = saved_bytes(m, [ids, px], lambda: m(input_ids=ids, pixel_values=px, return_loss=True).loss)
    out.append(dict(id=f"clip-vit-base-patch32/train/b{b}/s77/fp32", kind="preset", preset="clip-vit-base-patch32",
                    batch=b, seq=77, toml="", saved_bytes=n, source="transformers CLIPModel (sdpa), return_loss=True"))
    del m
    # BigBird: one layer with block-sparse attention.
    for s in [1024, 2048]:
        cfg = BigBirdConfig(hidden_size=64, num_attention_heads=4, intermediate_size=256, block_size=16,
                            num_random_blocks=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                            attention_type="block_sparse", max_position_embeddings=4096)
        layer = BigBirdLayer(cfg, seed=0).train()
        b = 2
        x = torch.randn(b, s, 64, requires_grad=True)
        masks = BigBirdModel.create_masks_for_block_sparse_attn(torch.ones(b, s), 16)
        n = saved_bytes(layer, [], lambda: layer(x, blocked_encoder_mask=masks[0], band_mask=masks[1],
                                                   from_mask=masks[2], to_mask=masks[3]))
        toml = """name = "bigbird-layer"
architecture = "encoder"
[tokens]
vocab = 100
dim = 64
[[stacks]]
name = "encoder"
causal = false
input = { kind = "tokens" }
positions = { kind = "learned", max = 4096 }
layers = 1
[stacks.layer]
hidden = 64
norm = { kind = "layer-norm" }
norm_placement = "post"
[stacks.layer.attention]
heads = 4
q_bias = true
k_bias = true
v_bias = true
o_bias = true
sparse = { block = 16, random = 3 }
[stacks.layer.mlp]
ffn = 256
bias = true
activation = "gelu_new"
"""
        out.append(dict(id=f"bigbird-layer/train/b{b}/s{s}/fp32", kind="layer", batch=b, seq=s, toml=toml,
                        saved_bytes=n, source="transformers BigBirdLayer (block_sparse), small widths"))
    return out


# ---------------------------------------------------------------------------------------------
# peaks of live tensor storage
# ---------------------------------------------------------------------------------------------

def tracker_class(validation_dir):
    sys.path.insert(0, validation_dir)
    from measure import LiveStorageTracker  # noqa: E402
    return LiveStorageTracker


def forward_peak(Tracker, model, inputs, fn):
    model.eval()
    tr = Tracker()
    tr.watch_model(model)
    tr.register(inputs, "input")
    tr.reset_peak()
    tr.set_phase("forward")
    with tr, torch.no_grad():
        out = fn()
    del out
    return tr.peak_total


def train_peak(Tracker, model, inputs, loss_fn):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, foreach=True)
    loss_fn().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    gc.collect()
    tr = Tracker()
    tr.watch_model(model)
    tr.watch_optimizer(opt)
    tr.register(inputs, "input")
    tr.reset_peak()
    with tr:
        tr.set_phase("forward")
        loss = loss_fn()
        tr.set_phase("backward")
        loss.backward()
        del loss
        tr.set_phase("optimizer")
        opt.step()
        tr.set_phase("end")
    return tr.peak_total, tr.peak_phase


def peak_cases(validation_dir):
    import torchvision
    from diffusers import AutoencoderKL, UNet2DConditionModel

    Tracker = tracker_class(validation_dir)
    torch.manual_seed(0)
    out = []
    m = torchvision.models.resnet50()
    b = 8
    x = torch.randn(b, 3, 224, 224)
    y = torch.randint(0, 1000, (b,))
    peak, phase = train_peak(Tracker, m, [x, y], lambda: F.cross_entropy(m(x), y))
    out.append(dict(id=f"resnet-50/train/b{b}/224px/fp32", model="resnet-50", phase="train", batch=b, image=224,
                    peak_bytes=peak, peak_phase=phase, source="torchvision resnet50, AdamW foreach, second step"))
    del m
    gc.collect()
    m = torchvision.models.resnet50()
    peak = forward_peak(Tracker, m, [x], lambda: m(x))
    out.append(dict(id=f"resnet-50/inference/b{b}/224px/fp32", model="resnet-50", phase="inference", batch=b,
                    image=224, peak_bytes=peak, source="torchvision resnet50, no_grad forward"))
    del m
    # Stable Diffusion v1.5 at 256 px, batch 1: the UNet with classifier-free guidance (batch 2)
    # and the VAE decoder, each a no-grad forward with the model's weights alive.
    image = 256
    latent = image // 8
    unet = UNet2DConditionModel(**SD15_UNET)
    x = torch.randn(2, 4, latent, latent)
    ctx = torch.randn(2, 77, 768)
    t = torch.tensor([500, 500])
    peak_unet = forward_peak(Tracker, unet, [x, ctx, t], lambda: unet(x, t, ctx).sample)
    unet_weights = sum(p.numel() * 4 for p in unet.parameters())
    del unet
    vae = AutoencoderKL(**SD_VAE)
    z = torch.randn(1, 4, latent, latent)
    peak_vae = forward_peak(Tracker, vae, [z], lambda: vae.decode(z).sample)
    vae_weights = sum(p.numel() * 4 for p in vae.parameters())
    out.append(dict(id=f"sd15-unet/inference/b1-cfg/{image}px/fp32", model="stable-diffusion-v1-5", part="unet",
                    phase="inference", batch=1, image=image, peak_bytes=peak_unet, weight_bytes=unet_weights,
                    source="diffusers UNet2DConditionModel (SD v1.5 config), no_grad forward on batch 2"))
    out.append(dict(id=f"sd15-vae-decoder/inference/b1/{image}px/fp32", model="stable-diffusion-v1-5", part="vae",
                    phase="inference", batch=1, image=image, peak_bytes=peak_vae, weight_bytes=vae_weights,
                    source="diffusers AutoencoderKL (SD v1.5 config), no_grad decode"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", action="store_true", help="print the parameter counts and exit")
    ap.add_argument("--out", help="write the saved-bytes and peak records here (JSON)")
    ap.add_argument("--validation", default=os.path.dirname(os.path.abspath(__file__)),
                    help="folder of measure.py (its live-storage tracker)")
    ap.add_argument("--no-peaks", action="store_true", help="skip the full-size peak measurements")
    args = ap.parse_args()
    if args.counts:
        print(json.dumps(counts(), indent=1))
        return
    import diffusers
    import torchvision
    import transformers
    doc = dict(
        versions=dict(torch=torch.__version__, torchvision=torchvision.__version__, diffusers=diffusers.__version__,
                      transformers=transformers.__version__),
        counts=counts(),
        saved=saved_cases(),
        peaks=[] if args.no_peaks else peak_cases(args.validation),
    )
    text = json.dumps(doc, indent=1) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
