// attention_softmax.wgsl — naive attention, step 2 of 3: row softmax of S in place (S becomes P).
//
//   P[r, j] = exp(S[r, j] − max_j S[r, ·]) / Σ_j exp(…),  j < seq (j ≤ i when causal; masked
//   entries are written as 0 so step 3 may read the whole row).
//
// Tiling: one workgroup of WG invocations per row of S (rows = batch·heads·seq, laid out on a
// 2-D grid of groups_x columns), strided loops over the row and tree reductions (max, then sum)
// in workgroup memory (WG·4 bytes).
// Features: none (f32) or SHADER_F16 (T = f16, arithmetic in f32).
// Per call: FLOPs ≈ 5·rows·seq (max, subtract, exp, sum, divide; exp counted as one);
// bytes = 2·rows·seq·sizeof(T) (read and write).

struct Params {
    rows: u32,
    seq: u32,
    causal: u32,
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<T>;

const WG: u32 = {{WG}}u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let r = wg.y * p.groups_x + wg.x;
    if (r >= p.rows) {
        return;
    }
    let i = r % p.seq;
    let base = r * p.seq;
    var limit = p.seq;
    if (p.causal != 0u) {
        limit = i + 1u;
    }
    var m = -3.0e38;
    for (var j = lid; j < limit; j += WG) {
        m = max(m, f32(s[base + j]));
    }
    red[lid] = m;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            red[lid] = max(red[lid], red[lid + st]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = lid; j < limit; j += WG) {
        sum += exp(f32(s[base + j]) - m);
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var st = WG / 2u; st > 0u; st >>= 1u) {
        if (lid < st) {
            red[lid] = red[lid] + red[lid + st];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    for (var j = lid; j < p.seq; j += WG) {
        var v = 0.0;
        if (j < limit) {
            v = exp(f32(s[base + j]) - m) * inv;
        }
        s[base + j] = T(v);
    }
}
