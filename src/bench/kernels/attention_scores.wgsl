// attention_scores.wgsl — naive attention, step 1 of 3: materialized scores.
//
//   S[b,h,i,j] = scale · Σ_d Q[b,i,h,d] · K[b,j,g,d],  g = h / (heads / kv_heads)   (GQA/MQA)
//
// Layouts: Q and O are [batch, seq, heads, head_dim]; K and V are [batch, seq, kv_heads,
// head_dim] (the output of the QKV projections, no transposes); S is [batch, heads, seq, seq].
// Tiling: a 16×16 workgroup computes a 16×16 block of S, staging 16×16 tiles of Q and K in
// workgroup memory (2 KiB) per 16 columns of head_dim. With a causal mask, blocks wholly above
// the diagonal are skipped and entries j > i are not written (the softmax masks them).
//
// Features: none (f32) or SHADER_F16 (T = f16; S stored in f16, arithmetic in f32).
// Per call: FLOPs = 2·b·h·s²·d (halved when causal); bytes = (Q + K + S)·sizeof(T).
// Memory: the S buffer is b·h·s² elements — the O(s²) term the flash kernel avoids.

struct Params {
    batch: u32,
    heads: u32,
    kv_heads: u32,
    seq: u32,
    head_dim: u32,
    causal: u32,
    scale: f32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<T>;
@group(0) @binding(2) var<storage, read> k: array<T>;
@group(0) @binding(3) var<storage, read_write> s: array<T>;

var<workgroup> sq: array<f32, 256>;
var<workgroup> sk: array<f32, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let bh = wg.z;
    let b = bh / p.heads;
    let h = bh % p.heads;
    let g = h / (p.heads / p.kv_heads);
    let i0 = wg.y * 16u;
    let j0 = wg.x * 16u;
    if (p.causal != 0u && j0 > i0 + 15u) {
        return;
    }
    let i = i0 + l.y;
    let j = j0 + l.x;
    let kj = j0 + l.y;
    var acc = 0.0;
    for (var d0 = 0u; d0 < p.head_dim; d0 += 16u) {
        let d = d0 + l.x;
        var vq = 0.0;
        if (i < p.seq && d < p.head_dim) {
            vq = f32(q[((b * p.seq + i) * p.heads + h) * p.head_dim + d]);
        }
        sq[l.y * 16u + l.x] = vq;
        var vk = 0.0;
        if (kj < p.seq && d < p.head_dim) {
            vk = f32(k[((b * p.seq + kj) * p.kv_heads + g) * p.head_dim + d]);
        }
        sk[l.y * 16u + l.x] = vk;
        workgroupBarrier();
        for (var dd = 0u; dd < 16u; dd++) {
            acc = fma(sq[l.y * 16u + dd], sk[l.x * 16u + dd], acc);
        }
        workgroupBarrier();
    }
    if (i < p.seq && j < p.seq && (p.causal == 0u || j <= i)) {
        s[(bh * p.seq + i) * p.seq + j] = T(acc * p.scale);
    }
}
