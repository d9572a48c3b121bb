// norm.wgsl — LayerNorm or RMSNorm over the last dimension, one row per workgroup.
//
//   LayerNorm: y = (x − mean) · rstd · γ + β,  rstd = 1/sqrt(var + eps);  saves mean, rstd (f32)
//   RMSNorm:   y = x · rstd · γ,               rstd = 1/sqrt(mean(x²) + eps);  saves rstd (f32)
//
// Tiling: WG invocations per row (rows on a 2-D grid of groups_x columns), strided loops over
// the row and a tree reduction in workgroup memory (WG·4 bytes); two passes (statistics,
// then normalize). The NORM slot (norm_layer.wgsl or norm_rms.wgsl) holds the kind-specific statistics and output.
// Features: none (f32) or SHADER_F16 (T = f16; statistics in f32).
// Per call: FLOPs ≈ 7·rows·cols (LayerNorm) or 5·rows·cols (RMSNorm);
// bytes = (2·rows·cols + params)·sizeof(T) + stats·4.

struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> gamma: array<T>;
@group(0) @binding(3) var<storage, read_write> y: array<T>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
{{EXTRA_BINDINGS}}

const WG: u32 = {{WG}}u;
var<workgroup> red: array<f32, WG>;

fn reduce_sum(lid: u32, value: f32) -> f32 {
    red[lid] = value;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            red[lid] = red[lid] + red[lid + st];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let r = wg.y * p.groups_x + wg.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let n = f32(p.cols);
{{NORM}}
}
