// attention_pv.wgsl — naive attention, step 3 of 3: O = P · V.
//
//   O[b,i,h,d] = Σ_j P[b,h,i,j] · V[b,j,g,d],  g = h / (heads / kv_heads)
//
// Tiling: a 16×16 workgroup computes 16 query rows × 16 columns of head_dim, staging 16×16
// tiles of P and V in workgroup memory (2 KiB) per 16 keys; with a causal mask the key loop
// stops after the block's last row.
// Features: none (f32) or SHADER_F16 (T = f16, arithmetic in f32).
// Per call: FLOPs = 2·b·h·s²·d (halved when causal); bytes = (P + V + O)·sizeof(T).

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
@group(0) @binding(1) var<storage, read> s: array<T>;
@group(0) @binding(2) var<storage, read> v: array<T>;
@group(0) @binding(3) var<storage, read_write> o: array<T>;

var<workgroup> sp: array<f32, 256>;
var<workgroup> sv: array<f32, 256>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    let bh = wg.z;
    let b = bh / p.heads;
    let h = bh % p.heads;
    let g = h / (p.heads / p.kv_heads);
    let i0 = wg.y * 16u;
    let i = i0 + l.y;
    let d = wg.x * 16u + l.x;
    var jend = p.seq;
    if (p.causal != 0u) {
        jend = min(i0 + 16u, p.seq);
    }
    var acc = 0.0;
    for (var j0 = 0u; j0 < jend; j0 += 16u) {
        var vp = 0.0;
        if (i < p.seq && j0 + l.x < p.seq) {
            vp = f32(s[(bh * p.seq + i) * p.seq + j0 + l.x]);
        }
        sp[l.y * 16u + l.x] = vp;
        var vv = 0.0;
        if (j0 + l.y < p.seq && d < p.head_dim) {
            vv = f32(v[((b * p.seq + j0 + l.y) * p.kv_heads + g) * p.head_dim + d]);
        }
        sv[l.y * 16u + l.x] = vv;
        workgroupBarrier();
        for (var jj = 0u; jj < 16u; jj++) {
            acc = fma(sp[l.y * 16u + jj], sv[jj * 16u + l.x], acc);
        }
        workgroupBarrier();
    }
    if (i < p.seq && d < p.head_dim) {
        o[((b * p.seq + i) * p.heads + h) * p.head_dim + d] = T(acc);
    }
}
