//! Model parts that are not stacks of identical transformer layers: convolutional image
//! classifiers (torchvision ResNet), diffusion UNets with resolution levels (diffusers
//! `UNet2DConditionModel`), VAEs (`AutoencoderKL`), text encoders with their own token table
//! (Stable Diffusion's CLIP encoders) and LSTMs (sequence-to-sequence translation, captioning).
//!
//! A module is data: its configuration expands into a list of [`Block`]s (`blocks`), each a
//! kind of block with its own parameter rule (here) and its own saved-tensor ledger
//! (`memory::blocks`). Adding a model of a known family is a preset; only a new kind of block
//! needs code. A model may mix stacks and modules; a CNN has modules only.
//!
//! Spatial sizes: images are square; a block runs at `resolution / at` where `resolution` is
//! the module's input size (the image, or the latent for a UNet) and `at` its downsampling so far.

use super::params::{self, Count};
use super::spec::*;
use crate::error::{Error, Result};

pub use super::spec::{AddEmbedding, BlockSparse, Lstm, Module, ResBlockKind, ResNet, TextEncoder, UNet, Vae};

/// One block of a module, with the sizes its parameters and saved tensors follow.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A convolution (`k`×`k`, stride `stride`, padding keeping the size) from `cin` to `cout`
    /// channels at `res / at`, after a GroupNorm and SiLU when `norm_groups` is given
    /// (diffusers' `conv_norm_out` → `conv_act` → `conv_out`).
    Conv { cin: u64, cout: u64, k: u64, stride: u64, bias: bool, at: u64, norm_groups: Option<u64> },
    /// torchvision's stem: 7×7/2 convolution without bias, BatchNorm, ReLU, 3×3/2 max-pool.
    Stem { cin: u64, cout: u64 },
    /// torchvision `Bottleneck` (expansion 4) or `BasicBlock` (`width == cout`), with a
    /// downsample branch (1×1 convolution + BatchNorm) when the shape changes.
    Residual { kind: ResBlockKind, cin: u64, width: u64, cout: u64, stride: u64, at: u64 },
    /// Adaptive average pooling to 1×1, then a linear classifier with the cross-entropy loss
    /// (`classes`), or the pooled features alone.
    Pool { features: u64, at: u64, classes: Option<u64> },
    /// diffusers `ResnetBlock2D`: GroupNorm, SiLU, 3×3 conv, + projected time embedding,
    /// GroupNorm, SiLU, 3×3 conv, 1×1 shortcut when `cin != cout`. `strided_input`: the input has
    /// channels-last strides (everything after a VAE attention, whose output is a reshaped
    /// transpose), so training's `input_tensor.contiguous()` before the shortcut copies it.
    ResnetBlock { cin: u64, cout: u64, temb: Option<u64>, groups: u64, at: u64, strided_input: bool },
    /// diffusers `Transformer2DModel`: GroupNorm, proj_in, `depth` BasicTransformerBlocks
    /// (self-attention, cross-attention over `context` states of width `cross`, GEGLU), proj_out.
    SpatialTransformer { c: u64, heads: u64, depth: u64, cross: u64, context: u64, groups: u64, at: u64 },
    /// The VAE's single-head attention (GroupNorm, q/k/v/out linear layers with bias, residual).
    VaeAttention { c: u64, groups: u64, at: u64 },
    /// diffusers `Downsample2D`: 3×3 convolution with stride 2; `padded`: the VAE's variant pads
    /// one row and column first (a new tensor) and convolves without padding.
    Downsample { c: u64, at: u64, padded: bool },
    /// diffusers `Upsample2D`: nearest 2× interpolation, then a 3×3 convolution.
    Upsample { c: u64, at: u64 },
    /// Sinusoid of width `input` → linear → SiLU → linear (diffusers `TimestepEmbedding`);
    /// `input` includes SDXL's concatenated time ids and pooled text embedding.
    TimeEmbedding { input: u64, dim: u64 },
    /// A token embedding table read by `len` tokens.
    Embedding { vocab: u64, dim: u64 },
    /// Linear + BatchNorm1d of pooled image features (Show and Tell), one step per sequence.
    FeatureProjection { features: u64, dim: u64 },
    /// `layers` LSTM layers over `steps` extra steps plus the module's sequence.
    Lstm { input: u64, hidden: u64, layers: u64, directions: u64, prefix_steps: u64 },
    /// Linear projection to a vocabulary (with bias) and the cross-entropy loss, per token.
    Logits { hidden: u64, vocab: u64 },
    /// A transformer stack with its own token table (the text encoder).
    Transformer { vocab: u64, projection: Option<u64> },
}

/// A block in execution order, and how it uses the skip connections of a UNet: `push` keeps its
/// output for the up path, `pop` consumes (concatenates) the last one kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub label: String,
    pub block: Block,
    pub push: bool,
    pub pop: bool,
    /// Reads the module's own input (a data-loader or scheduler tensor counted with the inputs,
    /// not as a saved activation).
    pub reads_input: bool,
}

fn step(label: impl Into<String>, block: Block) -> Step {
    Step { label: label.into(), block, push: false, pop: false, reads_input: false }
}

impl Module {
    pub fn name(&self) -> &str {
        match self {
            Module::Resnet(m) => &m.name,
            Module::Unet(m) => &m.name,
            Module::Vae(m) => &m.name,
            Module::TextEncoder(m) => &m.name,
            Module::Lstm(m) => &m.name,
        }
    }

    pub fn trainable(&self) -> bool {
        match self {
            Module::Resnet(m) => m.trainable,
            Module::Unet(m) => m.trainable,
            Module::Vae(m) => m.trainable,
            Module::TextEncoder(m) => m.trainable,
            Module::Lstm(m) => m.trainable,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Module::Resnet(_) => "resnet",
            Module::Unet(_) => "unet",
            Module::Vae(_) => "vae",
            Module::TextEncoder(_) => "text-encoder",
            Module::Lstm(_) => "lstm",
        }
    }

    /// The image resolution this module's input follows, if it reads images.
    pub fn image(&self) -> Option<u64> {
        match self {
            Module::Resnet(m) => Some(m.image),
            Module::Unet(m) => Some(m.image),
            Module::Vae(m) => Some(m.image),
            _ => None,
        }
    }

    /// The resolution the first block runs at for an image of `image` pixels.
    pub fn resolution(&self, image: u64) -> u64 {
        match self {
            Module::Unet(u) => image / u.latent_scale.max(1),
            _ => image,
        }
    }

    /// The blocks in execution order. A VAE lists its encoder (`part` 0) and decoder (`part` 1)
    /// separately: see [`Module::parts`].
    pub fn steps(&self) -> Vec<Step> {
        self.parts().into_iter().flatten().collect()
    }

    /// The module's parts, each a sequence of steps that runs as one forward pass (a VAE's
    /// encoder and decoder; one part for every other module).
    pub fn parts(&self) -> Vec<Vec<Step>> {
        match self {
            Module::Resnet(r) => vec![resnet_steps(r)],
            Module::Unet(u) => vec![unet_steps(u)],
            Module::Vae(v) => vae_steps(v),
            Module::TextEncoder(t) => {
                vec![vec![step("transformer", Block::Transformer { vocab: t.vocab, projection: t.projection })]]
            }
            Module::Lstm(l) => vec![lstm_steps(l)],
        }
    }
}

fn resnet_steps(r: &ResNet) -> Vec<Step> {
    let mut out = vec![step("stem", Block::Stem { cin: r.in_channels, cout: r.stem })];
    let mut cin = r.stem;
    let mut at = 4; // the stem's stride-2 convolution and stride-2 max-pool
    let expansion = match r.block {
        ResBlockKind::Basic => 1,
        ResBlockKind::Bottleneck => 4,
    };
    for (i, (&n, &width)) in r.layers.iter().zip(&r.widths).enumerate() {
        for j in 0..n {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            let cout = width * expansion;
            out.push(step(
                format!("layer{} block {j}", i + 1),
                Block::Residual { kind: r.block, cin, width, cout, stride, at },
            ));
            cin = cout;
            at *= stride;
        }
    }
    out.push(step("pool and fc", Block::Pool { features: cin, at, classes: r.classes }));
    out
}

fn unet_steps(u: &UNet) -> Vec<Step> {
    let c0 = u.channels.first().copied().unwrap_or(0);
    let temb = 4 * c0;
    let levels = u.channels.len();
    let mut out = vec![step("time embedding", Block::TimeEmbedding { input: c0, dim: temb })];
    if let Some(a) = &u.add_embedding {
        out.push(step(
            "added time/text embedding",
            Block::TimeEmbedding { input: a.text_dim + a.time_ids * a.time_dim, dim: temb },
        ));
    }
    let conv = |cin, cout, at, norm_groups| Block::Conv { cin, cout, k: 3, stride: 1, bias: true, at, norm_groups };
    out.push(Step { push: true, reads_input: true, ..step("conv_in", conv(u.in_channels, c0, 1, None)) });
    let transformer = |c: u64, level: usize, depth: u64, at: u64| Block::SpatialTransformer {
        c,
        heads: u.heads[level],
        depth,
        cross: u.cross_attention_dim,
        context: u.context_len,
        groups: u.groups,
        at,
    };
    let mut cin = c0;
    let mut at = 1;
    for (i, &c) in u.channels.iter().enumerate() {
        let depth = u.transformer_depth[i];
        for j in 0..u.layers_per_block {
            out.push(step(
                format!("down {i} resnet {j}"),
                Block::ResnetBlock { cin, cout: c, temb: Some(temb), groups: u.groups, at, strided_input: false },
            ));
            if depth > 0 {
                out.push(step(format!("down {i} attention {j}"), transformer(c, i, depth, at)));
            }
            out.last_mut().expect("a block").push = true;
            cin = c;
        }
        if i + 1 < levels {
            out.push(Step {
                push: true,
                ..step(format!("down {i} downsample"), Block::Downsample { c, at, padded: false })
            });
            at *= 2;
        }
    }
    let last = levels - 1;
    let cl = u.channels[last];
    let res = |cin| Block::ResnetBlock { cin, cout: cl, temb: Some(temb), groups: u.groups, at, strided_input: false };
    out.push(step("mid resnet 0", res(cl)));
    if u.mid_depth > 0 {
        out.push(step("mid attention", transformer(cl, last, u.mid_depth, at)));
    }
    out.push(step("mid resnet 1", res(cl)));
    let mut prev = cl;
    for i in (0..levels).rev() {
        let c = u.channels[i];
        let skip_last = u.channels[i.saturating_sub(1)];
        let n = u.layers_per_block + 1;
        for j in 0..n {
            let skip = if j + 1 == n { skip_last } else { c };
            let input = if j == 0 { prev } else { c };
            out.push(Step {
                pop: true,
                ..step(
                    format!("up {i} resnet {j}"),
                    Block::ResnetBlock {
                        cin: input + skip,
                        cout: c,
                        temb: Some(temb),
                        groups: u.groups,
                        at,
                        strided_input: false,
                    },
                )
            });
            if u.transformer_depth[i] > 0 {
                out.push(step(format!("up {i} attention {j}"), transformer(c, i, u.transformer_depth[i], at)));
            }
        }
        prev = c;
        if i > 0 {
            out.push(step(format!("up {i} upsample"), Block::Upsample { c, at }));
            at /= 2;
        }
    }
    out.push(step("conv_out", conv(c0, u.out_channels, 1, Some(u.groups))));
    out
}

fn vae_steps(v: &Vae) -> Vec<Vec<Step>> {
    let levels = v.channels.len();
    let c0 = v.channels.first().copied().unwrap_or(0);
    let cl = v.channels.last().copied().unwrap_or(0);
    let g = v.groups;
    let z = v.latent_channels;
    let conv = |cin, cout, k, at, norm_groups| Block::Conv { cin, cout, k, stride: 1, bias: true, at, norm_groups };
    let res = |cin, cout, at| Block::ResnetBlock { cin, cout, temb: None, groups: g, at, strided_input: false };
    let mid = |out: &mut Vec<Step>, part: &str, at: u64| {
        out.push(step(format!("{part} mid resnet 0"), res(cl, cl, at)));
        out.push(step(format!("{part} mid attention"), Block::VaeAttention { c: cl, groups: g, at }));
        out.push(step(format!("{part} mid resnet 1"), res(cl, cl, at)));
    };
    let mut enc = vec![Step { reads_input: true, ..step("encoder conv_in", conv(v.in_channels, c0, 3, 1, None)) }];
    let mut cin = c0;
    let mut at = 1;
    for (i, &c) in v.channels.iter().enumerate() {
        for j in 0..v.layers_per_block {
            enc.push(step(format!("encoder down {i} resnet {j}"), res(cin, c, at)));
            cin = c;
        }
        if i + 1 < levels {
            enc.push(step(format!("encoder down {i} downsample"), Block::Downsample { c, at, padded: true }));
            at *= 2;
        }
    }
    mid(&mut enc, "encoder", at);
    enc.push(step("encoder conv_out", conv(cl, 2 * z, 3, at, Some(g))));
    enc.push(step("quant_conv", conv(2 * z, 2 * z, 1, at, None)));
    let mut dec = vec![
        Step { reads_input: true, ..step("post_quant_conv", conv(z, z, 1, at, None)) },
        step("decoder conv_in", conv(z, cl, 3, at, None)),
    ];
    mid(&mut dec, "decoder", at);
    let mut prev = cl;
    for i in (0..levels).rev() {
        let c = v.channels[i];
        for j in 0..=v.layers_per_block {
            let block = match res(if j == 0 { prev } else { c }, c, at) {
                Block::ResnetBlock { cin, cout, temb, groups, at, .. } => {
                    Block::ResnetBlock { cin, cout, temb, groups, at, strided_input: true }
                }
                other => other,
            };
            dec.push(step(format!("decoder up {i} resnet {j}"), block));
        }
        prev = c;
        if i > 0 {
            dec.push(step(format!("decoder up {i} upsample"), Block::Upsample { c, at }));
            at /= 2;
        }
    }
    dec.push(step("decoder conv_out", conv(c0, v.in_channels, 3, 1, Some(g))));
    vec![enc, dec]
}

fn lstm_steps(l: &Lstm) -> Vec<Step> {
    let mut out = Vec::new();
    if let Some(features) = l.image_features {
        out.push(step("image feature projection", Block::FeatureProjection { features, dim: l.input }));
    }
    if let Some(vocab) = l.vocab {
        out.push(step("embedding", Block::Embedding { vocab, dim: l.input }));
    }
    let directions = if l.bidirectional { 2 } else { 1 };
    out.push(step(
        "lstm",
        Block::Lstm {
            input: l.input,
            hidden: l.hidden,
            layers: l.layers,
            directions,
            prefix_steps: u64::from(l.image_features.is_some()),
        },
    ));
    if let Some(vocab) = l.output_vocab {
        out.push(step("output projection and loss", Block::Logits { hidden: l.hidden * directions, vocab }));
    }
    out
}

// Counts saturate at u64::MAX and never wrap (see `model::params`); within the bounds of
// `model::validate::module_bounds` they are exact.

fn linear(d_in: u64, d_out: u64, bias: bool) -> Count {
    Count::linear(d_in, d_out, bias)
}

fn conv(cin: u64, cout: u64, k: u64, bias: bool) -> Count {
    linear(cin.saturating_mul(k.saturating_mul(k)), cout, bias)
}

/// BatchNorm or GroupNorm with affine weight and bias.
fn affine_norm(c: u64) -> Count {
    Count { params: c.saturating_mul(2), tensors: 2 }
}

/// Parameters of one block. `module` gives the transformer stack of a text encoder.
pub fn block_params(block: &Block, module: &Module) -> Count {
    match *block {
        Block::Conv { cin, cout, k, bias, norm_groups, .. } => {
            conv(cin, cout, k, bias) + if norm_groups.is_some() { affine_norm(cin) } else { Count::ZERO }
        }
        Block::Stem { cin, cout } => conv(cin, cout, 7, false) + affine_norm(cout),
        Block::Residual { kind, cin, width, cout, stride, .. } => {
            let main = match kind {
                ResBlockKind::Bottleneck => {
                    conv(cin, width, 1, false)
                        + conv(width, width, 3, false)
                        + conv(width, cout, 1, false)
                        + affine_norm(width)
                        + affine_norm(width)
                        + affine_norm(cout)
                }
                ResBlockKind::Basic => {
                    conv(cin, cout, 3, false) + conv(cout, cout, 3, false) + affine_norm(cout) + affine_norm(cout)
                }
            };
            let downsample =
                if stride != 1 || cin != cout { conv(cin, cout, 1, false) + affine_norm(cout) } else { Count::ZERO };
            main + downsample
        }
        Block::Pool { features, classes, .. } => classes.map_or(Count::ZERO, |n| linear(features, n, true)),
        Block::ResnetBlock { cin, cout, temb, .. } => {
            let shortcut = if cin != cout { conv(cin, cout, 1, true) } else { Count::ZERO };
            affine_norm(cin)
                + conv(cin, cout, 3, true)
                + temb.map_or(Count::ZERO, |t| linear(t, cout, true))
                + affine_norm(cout)
                + conv(cout, cout, 3, true)
                + shortcut
        }
        Block::SpatialTransformer { c, depth, cross, .. } => {
            // proj_in/out: 1×1 convolutions or linear layers, c·c + c either way.
            let block = affine_norm(c).times3()
                + linear(c, c, false).times3()
                + linear(c, c, true)
                + linear(c, c, false)
                + linear(cross, c, false)
                + linear(cross, c, false)
                + linear(c, c, true)
                + linear(c, c.saturating_mul(8), true)
                + linear(c.saturating_mul(4), c, true);
            affine_norm(c) + linear(c, c, true) + linear(c, c, true) + sum_n(block, depth)
        }
        Block::VaeAttention { c, .. } => affine_norm(c) + sum_n(linear(c, c, true), 4),
        Block::Downsample { c, .. } | Block::Upsample { c, .. } => conv(c, c, 3, true),
        Block::TimeEmbedding { input, dim } => linear(input, dim, true) + linear(dim, dim, true),
        Block::Embedding { vocab, dim } => Count { params: vocab.saturating_mul(dim), tensors: 1 },
        Block::FeatureProjection { features, dim } => linear(features, dim, true) + affine_norm(dim),
        Block::Lstm { input, hidden, layers, directions, .. } => {
            // PyTorch: weight_ih (4H × in), weight_hh (4H × H), bias_ih and bias_hh (4H) per layer
            // and direction; layers after the first read all directions' outputs.
            (0..layers)
                .map(|i| {
                    let d_in = if i == 0 { input } else { hidden.saturating_mul(directions) };
                    let per_direction = hidden
                        .saturating_mul(4)
                        .saturating_mul(d_in.saturating_add(hidden))
                        .saturating_add(hidden.saturating_mul(8));
                    Count { params: per_direction.saturating_mul(directions), tensors: 4 * directions }
                })
                .sum()
        }
        Block::Logits { hidden, vocab } => linear(hidden, vocab, true),
        Block::Transformer { vocab, projection } => {
            let Module::TextEncoder(t) = module else { return Count::ZERO };
            let s = &t.stack;
            let h = s.layer.hidden;
            let positions = match s.positions {
                Positions::Learned { max, offset } => max.saturating_add(offset).saturating_mul(h),
                _ => 0,
            };
            let mut c = Count { params: vocab.saturating_mul(h), tensors: 1 };
            if positions > 0 {
                c += Count { params: positions, tensors: 1 };
            }
            let layer = params::layer(&s.layer);
            c += layer.times(if s.shared_layers { 1 } else { s.layers });
            for n in s.embedding_norm.iter().chain(&s.final_norm) {
                c += Count { params: n.params(h), tensors: n.tensors() };
            }
            if let Some(p) = projection {
                c += linear(h, p, false);
            }
            c
        }
    }
}

trait Times3 {
    fn times3(self) -> Self;
}
impl Times3 for Count {
    fn times3(self) -> Count {
        self + self + self
    }
}

fn sum_n(c: Count, n: u64) -> Count {
    c.times(n)
}

/// Parameters of a module.
pub fn module_params(m: &Module) -> Count {
    m.steps().iter().map(|s| block_params(&s.block, m)).sum()
}

/// Parameters of all modules: (trainable, frozen).
pub fn split_params(model: &ModelSpec) -> (Count, Count) {
    let mut trainable = Count::ZERO;
    let mut frozen = Count::ZERO;
    for m in &model.modules {
        let c = module_params(m);
        if m.trainable() {
            trainable += c;
        } else {
            frozen += c;
        }
    }
    (trainable, frozen)
}

/// Parameters of the largest trainable block (what ZeRO-3/FSDP gathers at once).
pub fn largest_block(model: &ModelSpec) -> u64 {
    model
        .modules
        .iter()
        .filter(|m| m.trainable())
        .flat_map(|m| m.steps().into_iter().map(move |s| block_params(&s.block, m).params))
        .max()
        .unwrap_or(0)
}

/// All module parameters.
pub fn total_params(model: &ModelSpec) -> Count {
    let (t, f) = split_params(model);
    t + f
}

/// Device buffers of the modules, bytes: BatchNorm running mean and variance (fp32) and its
/// int64 `num_batches_tracked`; a text encoder's int64 position ids.
pub fn buffer_bytes(model: &ModelSpec) -> u64 {
    let mut total: u64 = 0;
    for m in &model.modules {
        for s in m.steps() {
            let bn = |c: u64| c.saturating_mul(8).saturating_add(8);
            total = total.saturating_add(match s.block {
                Block::Stem { cout, .. } => bn(cout),
                Block::Residual { kind, width, cout, stride, cin, .. } => {
                    let main = match kind {
                        ResBlockKind::Bottleneck => bn(width).saturating_mul(2).saturating_add(bn(cout)),
                        ResBlockKind::Basic => bn(cout).saturating_mul(2),
                    };
                    main.saturating_add(if stride != 1 || cin != cout { bn(cout) } else { 0 })
                }
                Block::FeatureProjection { dim, .. } => bn(dim),
                Block::Transformer { .. } => match m {
                    Module::TextEncoder(t) => match t.stack.positions {
                        Positions::Learned { max, offset } => max.saturating_add(offset).saturating_mul(8),
                        _ => 0,
                    },
                    _ => 0,
                },
                _ => 0,
            });
        }
    }
    total
}

/// Levels a module's input is halved through; its image must be a multiple of `2^levels`
/// (times the latent scale for a UNet).
fn required_multiple(m: &Module) -> u64 {
    match m {
        Module::Resnet(r) => 4 * 2u64.pow(r.layers.len().saturating_sub(1) as u32),
        Module::Unet(u) => u.latent_scale.max(1) * 2u64.pow(u.channels.len().saturating_sub(1) as u32),
        Module::Vae(v) => 2u64.pow(v.channels.len().saturating_sub(1) as u32),
        _ => 1,
    }
}

/// Set the image resolution of every module that reads images (`--image-size`).
pub fn set_image_size(model: &mut ModelSpec, image: u64) -> Result<()> {
    if model.stacks.iter().any(|s| matches!(s.input, StackInput::Patches { .. })) {
        return Err(Error::conflict(
            format!("--image-size {image}: model `{}` sizes its position table for its image", model.name),
            "a ViT/CLIP image size is part of the model: use --model-file with another `image`",
        ));
    }
    let mut any = false;
    for m in &mut model.modules {
        let slot = match m {
            Module::Resnet(r) => &mut r.image,
            Module::Unet(u) => &mut u.image,
            Module::Vae(v) => &mut v.image,
            _ => continue,
        };
        *slot = image;
        any = true;
    }
    if !any {
        return Err(Error::conflict(
            format!("--image-size {image}: model `{}` reads no images", model.name),
            "drop --image-size (sequence models take --seq)",
        ));
    }
    validate(model)
}

/// The default `--seq` of a model whose token input is an LSTM.
pub fn default_seq(model: &ModelSpec) -> Option<u64> {
    model.modules.iter().find_map(|m| match m {
        Module::Lstm(l) => l.default_len,
        _ => None,
    })
}

/// Checks the modules of a model (sizes positive, lists of matching lengths, images divisible by
/// the downsampling).
pub fn validate(model: &ModelSpec) -> Result<()> {
    for m in &model.modules {
        super::validate::module_bounds(m)?;
        let ctx = |what: String| format!("module `{}`: {what}", m.name());
        let positive = |what: &str, v: u64| -> Result<()> {
            if v == 0 {
                Err(Error::shape(ctx(format!("{what} is 0")), format!("give a positive {what}")))
            } else {
                Ok(())
            }
        };
        match m {
            Module::Resnet(r) => {
                positive("image", r.image)?;
                positive("stem", r.stem)?;
                positive("in_channels", r.in_channels)?;
                if r.layers.is_empty() || r.layers.len() != r.widths.len() {
                    return Err(Error::shape(
                        ctx(format!("{} stages of layers but {} widths", r.layers.len(), r.widths.len())),
                        "give one width per stage (ResNet-50: layers = [3, 4, 6, 3], widths = [64, 128, 256, 512])",
                    ));
                }
                if r.layers.contains(&0) || r.widths.contains(&0) {
                    return Err(Error::shape(ctx("a stage with 0 blocks or width 0".into()), "use positive values"));
                }
            }
            Module::Unet(u) => {
                positive("image", u.image)?;
                positive("layers_per_block", u.layers_per_block)?;
                positive("latent_scale", u.latent_scale)?;
                positive("cross_attention_dim", u.cross_attention_dim)?;
                let n = u.channels.len();
                if n == 0 || u.transformer_depth.len() != n || u.heads.len() != n {
                    return Err(Error::shape(
                        ctx(format!(
                            "{n} levels of channels, {} transformer depths, {} head counts",
                            u.transformer_depth.len(),
                            u.heads.len()
                        )),
                        "give channels, transformer_depth and heads one value per level",
                    ));
                }
                for (&c, &h) in u.channels.iter().zip(&u.heads) {
                    if c == 0 || h == 0 || c % h != 0 || c % u.groups.max(1) != 0 {
                        return Err(Error::shape(
                            ctx(format!("{c} channels with {h} heads and {} groups", u.groups)),
                            "channels must be positive multiples of the heads and of the groups",
                        ));
                    }
                }
            }
            Module::Vae(v) => {
                positive("image", v.image)?;
                positive("layers_per_block", v.layers_per_block)?;
                if v.channels.is_empty() || v.channels.iter().any(|c| *c == 0 || c % v.groups.max(1) != 0) {
                    return Err(Error::shape(
                        ctx(format!("channels {:?} with {} groups", v.channels, v.groups)),
                        "give positive channels, multiples of the groups",
                    ));
                }
            }
            Module::TextEncoder(t) => {
                positive("vocab", t.vocab)?;
                let s = &t.stack;
                if !matches!(s.positions, Positions::Learned { .. }) {
                    return Err(Error::shape(
                        ctx("a text encoder needs learned positions (its fixed prompt length)".into()),
                        "set stack.positions = { kind = \"learned\", max = 77 }",
                    ));
                }
                let mut probe = ModelSpec {
                    name: t.name.clone(),
                    family: String::new(),
                    architecture: Architecture::Encoder,
                    tokens: Some(TokenEmbedding { vocab: t.vocab, dim: s.layer.hidden }),
                    stacks: vec![s.clone()],
                    head: Head::default(),
                    buffer_bytes: 0,
                    modules: Vec::new(),
                };
                probe.stacks[0].name = format!("{}.stack", t.name);
                super::validate::validate(&probe)?;
            }
            Module::Lstm(l) => {
                positive("input", l.input)?;
                positive("hidden", l.hidden)?;
                positive("layers", l.layers)?;
                if l.vocab == Some(0) || l.output_vocab == Some(0) || l.image_features == Some(0) {
                    return Err(Error::shape(ctx("a vocabulary or feature width of 0".into()), "use positive sizes"));
                }
                if !(0.0..1.0).contains(&l.dropout) {
                    return Err(Error::shape(
                        ctx(format!("dropout probability {}", l.dropout)),
                        "dropout must be in [0, 1)",
                    ));
                }
            }
        }
        if let Some(image) = m.image() {
            let multiple = required_multiple(m);
            if image % multiple != 0 {
                let below = image / multiple * multiple;
                return Err(Error::shape(
                    ctx(format!("image size {image} is not a multiple of {multiple} (its total downsampling)")),
                    format!(
                        "use an image size divisible by {multiple}, e.g. {} or {}",
                        below.max(multiple),
                        below + multiple
                    ),
                ));
            }
        }
    }
    Ok(())
}
