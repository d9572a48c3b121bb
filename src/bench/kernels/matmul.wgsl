// matmul.wgsl — tiled matrix multiply with register blocking and vectorised loads.
//
//   C[z] = A[z] · B[z]   for z in 0..batch; row-major A: M×K, B: K×N, C: M×N.
//
// Tiling: a workgroup computes a BM×BN block of C with (BN/TN)×(BM/TM) invocations; each
// invocation accumulates a TM×TN register block (as vec4 along n). K advances in steps of BK:
// the A tile (BM×BK, stored k-major so an invocation reads its TM rows as vec4) and the
// B tile (BK×BN) are staged in workgroup memory. Global loads and stores go through
// load_a4/load_b4/store_c4 (the IO slot, filled from matmul_io_*.wgsl): whole vec4<T> elements when K and N are
// multiples of 4 (`vec4` variant), else scalars with per-element bounds checks (`scalar`
// variant). Rows and columns beyond M, N, K read as zero and are not written, so any size works.
// Tile sizes are filled in by the host: 128×128×8 with 8×8 per invocation on GPUs, smaller on
// CPU adapters; workgroup memory is 2·BK·(BM+BN)·4 bytes.
//
// Features: none for T = f32; SHADER_F16 for T = f16 (storage in f16, accumulation in f32).
// Per call: FLOPs = 2·M·N·K·batch; bytes (each matrix once) = (M·K + K·N + M·N)·batch·sizeof(T).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<{{ELEM}}>;
@group(0) @binding(2) var<storage, read> b: array<{{ELEM}}>;
@group(0) @binding(3) var<storage, read_write> c: array<{{ELEM}}>;

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const TX: u32 = BN / TN;
const TY: u32 = BM / TM;
const NT: u32 = TX * TY;
const BM4: u32 = BM / 4u;
const BN4: u32 = BN / 4u;
const BK4: u32 = BK / 4u;
const TM4: u32 = TM / 4u;
const TN4: u32 = TN / 4u;

// sa[k * BM4 + m / 4][m % 4] = A[row0 + m, k0 + k]; sb[k * BN4 + n / 4][n % 4] = B[k0 + k, col0 + n].
var<workgroup> sa: array<vec4<f32>, BK * BM4>;
var<workgroup> sb: array<vec4<f32>, BK * BN4>;

{{IO}}

@compute @workgroup_size(TX, TY, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let tx = lid % TX;
    let ty = lid / TX;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let za = wg.z * p.stride_a;
    let zb = wg.z * p.stride_b;
    let zc = wg.z * p.stride_c;

    var acc: array<vec4<f32>, TM * TN4>;
    for (var i = 0u; i < TM * TN4; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    var ra: array<f32, TM>;
    var rb: array<vec4<f32>, TN4>;

    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var e = lid; e < BM * BK4; e += NT) {
            let r = e / BK4;
            let kq = (e % BK4) * 4u;
            let v = load_a4(za, row0 + r, k0 + kq);
            let q = r / 4u;
            let s = r % 4u;
            sa[(kq + 0u) * BM4 + q][s] = v.x;
            sa[(kq + 1u) * BM4 + q][s] = v.y;
            sa[(kq + 2u) * BM4 + q][s] = v.z;
            sa[(kq + 3u) * BM4 + q][s] = v.w;
        }
        for (var e = lid; e < BK * BN4; e += NT) {
            let kr = e / BN4;
            let cq = e % BN4;
            sb[e] = load_b4(zb, k0 + kr, col0 + cq * 4u);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var i = 0u; i < TM4; i++) {
                let v = sa[kk * BM4 + ty * TM4 + i];
                ra[4u * i + 0u] = v.x;
                ra[4u * i + 1u] = v.y;
                ra[4u * i + 2u] = v.z;
                ra[4u * i + 3u] = v.w;
            }
            for (var j = 0u; j < TN4; j++) {
                rb[j] = sb[kk * BN4 + tx * TN4 + j];
            }
            for (var i = 0u; i < TM; i++) {
                let ai = vec4<f32>(ra[i]);
                for (var j = 0u; j < TN4; j++) {
                    acc[i * TN4 + j] = fma(ai, rb[j], acc[i * TN4 + j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN4; j++) {
            store_c4(zc, row0 + ty * TM + i, col0 + tx * TN + j * 4u, acc[i * TN4 + j]);
        }
    }
}
