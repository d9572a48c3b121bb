// matmul_coop.wgsl — matrix multiply on cooperative matrices (tensor cores / simdgroup matrices).
//
//   C[z] = A[z] · B[z]; row-major A: M×K, B: K×N, C: M×N, f32 in and out.
//
// Tiling: one workgroup = one subgroup (SG invocations, the adapter's fixed subgroup size)
// computes a 16×16 block of C as 2×2 cooperative 8×8 f32 accumulators. K advances by 8: the
// 16×8 A tile and the 8×16 B tile are staged in workgroup memory (zero-padded past M, N, K, so
// any size works) and loaded with coopLoadT (row-major); the result goes through workgroup
// memory so that only elements inside C are written. wgpu 30 implements 8×8 f32 cooperative
// matrices only, so this is the variant; f16 inputs would need 16×16 shapes.
//
// Features: EXPERIMENTAL_COOPERATIVE_MATRIX with an 8×8×8 f32→f32 property, and a fixed
// subgroup size (subgroup_min_size == subgroup_max_size). Chosen at run time; never on lavapipe.
// Per call: FLOPs = 2·M·N·K·batch; bytes = (M·K + K·N + M·N)·batch·4.
enable wgpu_cooperative_matrix;

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
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const SG: u32 = {{SG}}u;

var<workgroup> sa: array<f32, 128>;
var<workgroup> sb: array<f32, 128>;
var<workgroup> sc: array<f32, 256>;

@compute @workgroup_size(SG, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let row0 = wg.y * 16u;
    let col0 = wg.x * 16u;
    let za = wg.z * p.stride_a;
    let zb = wg.z * p.stride_b;
    let zc = wg.z * p.stride_c;
    var c00 = coop_mat8x8<f32, C>();
    var c01 = coop_mat8x8<f32, C>();
    var c10 = coop_mat8x8<f32, C>();
    var c11 = coop_mat8x8<f32, C>();
    let s8 = 8u;
    let s16 = 16u;
    for (var k0 = 0u; k0 < p.k; k0 += 8u) {
        for (var e = lid; e < 128u; e += SG) {
            let r = e / 8u;
            let kk = e % 8u;
            var va = 0.0;
            if (row0 + r < p.m && k0 + kk < p.k) {
                va = a[za + (row0 + r) * p.k + k0 + kk];
            }
            sa[e] = va;
            let kr = e / 16u;
            let cc = e % 16u;
            var vb = 0.0;
            if (k0 + kr < p.k && col0 + cc < p.n) {
                vb = b[zb + (k0 + kr) * p.n + col0 + cc];
            }
            sb[e] = vb;
        }
        workgroupBarrier();
        let a0 = coopLoadT<coop_mat8x8<f32, A>>(&sa[0], s8);
        let a1 = coopLoadT<coop_mat8x8<f32, A>>(&sa[64], s8);
        let b0 = coopLoadT<coop_mat8x8<f32, B>>(&sb[0], s16);
        let b1 = coopLoadT<coop_mat8x8<f32, B>>(&sb[8], s16);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        workgroupBarrier();
    }
    coopStoreT(c00, &sc[0], s16);
    coopStoreT(c01, &sc[8], s16);
    coopStoreT(c10, &sc[128], s16);
    coopStoreT(c11, &sc[136], s16);
    workgroupBarrier();
    for (var e = lid; e < 256u; e += SG) {
        let r = e / 16u;
        let cc = e % 16u;
        if (row0 + r < p.m && col0 + cc < p.n) {
            c[zc + (row0 + r) * p.n + col0 + cc] = sc[e];
        }
    }
}
