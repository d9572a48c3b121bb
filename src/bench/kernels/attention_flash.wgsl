// attention_flash.wgsl — fused attention forward with online softmax ("flash" style).
//
//   O[b,i,h,:] = softmax_j(scale · Q[b,i,h,:] · K[b,j,g,:]) · V[b,j,g,:],  g = h / (heads / kv_heads)
//   LSE[b,h,i] = log Σ_j exp(scale · q·k_j)   (f32, kept for the backward pass as FlashAttention does)
//
// Tiling: a workgroup of BQ invocations owns BQ consecutive query rows of one (batch, head);
// each invocation keeps its scaled query row and its output accumulator (as ⌈HD/4⌉ vec4 each),
// the running max and running sum in registers. Keys and values stream through workgroup
// memory in tiles of BKV rows (2·BKV·⌈HD/4⌉·16 bytes, rows zero-padded to a multiple of 4); per tile an invocation computes BKV scores, rescales
// its accumulator once by exp(m_old − m_new) and adds the tile's weighted values. With a causal
// mask the key loop stops after the block's last query. No s×s buffer exists: memory is O(s).
// HD (head_dim), BQ and BKV are filled in by the host (BKV sized to the workgroup-memory limit).
//
// Features: none (f32) or SHADER_F16 (T = f16 for Q, K, V, O; arithmetic and LSE in f32).
// Per call: FLOPs = 4·b·h·s²·d (QKᵀ and PV; halved when causal); bytes = (Q + K + V + O)·sizeof(T)
// + LSE (b·h·s·4) — K and V counted once, although each workgroup re-reads them.

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
@group(0) @binding(3) var<storage, read> v: array<T>;
@group(0) @binding(4) var<storage, read_write> o: array<T>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

const HD: u32 = {{HD}}u;
const HD4: u32 = (HD + 3u) / 4u;
const BQ: u32 = {{BQ}}u;
const BKV: u32 = {{BKV}}u;
const NEG: f32 = -1.0e30;

// K and V tiles, rows padded to HD4 vec4s with zeros.
var<workgroup> ks: array<vec4<f32>, BKV * HD4>;
var<workgroup> vs: array<vec4<f32>, BKV * HD4>;

@compute @workgroup_size(BQ, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let bh = wg.y;
    let b = bh / p.heads;
    let h = bh % p.heads;
    let g = h / (p.heads / p.kv_heads);
    let q0 = wg.x * BQ;
    let i = q0 + lid;
    let valid = i < p.seq;

    var qr: array<vec4<f32>, HD4>;
    var acc: array<vec4<f32>, HD4>;
    if (valid) {
        let qi = ((b * p.seq + i) * p.heads + h) * HD;
        for (var c = 0u; c < HD4; c++) {
            var v = vec4<f32>(0.0);
            for (var e = 0u; e < 4u; e++) {
                let d = 4u * c + e;
                if (d < HD) {
                    v[e] = f32(q[qi + d]) * p.scale;
                }
            }
            qr[c] = v;
            acc[c] = vec4<f32>(0.0);
        }
    }
    var m = NEG;
    var l = 0.0;
    var kv_end = p.seq;
    if (p.causal != 0u) {
        kv_end = min(q0 + BQ, p.seq);
    }
    for (var j0 = 0u; j0 < kv_end; j0 += BKV) {
        for (var e = lid; e < BKV * HD4; e += BQ) {
            let r = e / HD4;
            let c = e % HD4;
            let j = j0 + r;
            var kv = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            if (j < p.seq) {
                let base = ((b * p.seq + j) * p.kv_heads + g) * HD;
                for (var x = 0u; x < 4u; x++) {
                    let d = 4u * c + x;
                    if (d < HD) {
                        kv[x] = f32(k[base + d]);
                        vv[x] = f32(v[base + d]);
                    }
                }
            }
            ks[e] = kv;
            vs[e] = vv;
        }
        workgroupBarrier();
        if (valid) {
            // Scores of this tile, then one rescale of the accumulator, then the weighted values.
            var sc: array<f32, BKV>;
            var mt = m;
            for (var r = 0u; r < BKV; r++) {
                let j = j0 + r;
                var s = NEG;
                if (j < p.seq && (p.causal == 0u || j <= i)) {
                    var acc4 = vec4<f32>(0.0);
                    for (var c = 0u; c < HD4; c++) {
                        acc4 = fma(qr[c], ks[r * HD4 + c], acc4);
                    }
                    s = acc4.x + acc4.y + acc4.z + acc4.w;
                }
                sc[r] = s;
                mt = max(mt, s);
            }
            let corr = exp(m - mt);
            l = l * corr;
            for (var c = 0u; c < HD4; c++) {
                acc[c] = acc[c] * corr;
            }
            for (var r = 0u; r < BKV; r++) {
                let j = j0 + r;
                if (j < p.seq && (p.causal == 0u || j <= i)) {
                    let pr = exp(sc[r] - mt);
                    l += pr;
                    for (var c = 0u; c < HD4; c++) {
                        acc[c] = fma(vec4<f32>(pr), vs[r * HD4 + c], acc[c]);
                    }
                }
            }
            m = mt;
        }
        workgroupBarrier();
    }
    if (valid) {
        let inv = 1.0 / l;
        let oi = ((b * p.seq + i) * p.heads + h) * HD;
        for (var c = 0u; c < HD4; c++) {
            let w = acc[c] * inv;
            for (var e = 0u; e < 4u; e++) {
                let d = 4u * c + e;
                if (d < HD) {
                    o[oi + d] = T(w[e]);
                }
            }
        }
        lse[bh * p.seq + i] = m + log(l);
    }
}
