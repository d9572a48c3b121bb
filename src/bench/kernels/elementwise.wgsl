// elementwise.wgsl — the layer's element-wise steps, one element per invocation.
//
//   add:        out = x + y                    (residual connections)
//   act:        out = act(x)                   (GELU, GELU-tanh, quick-GELU, ReLU, SiLU)
//   act_gated:  out = act(x) · y               (SwiGLU / GeGLU: x = gate, y = up)
//
// The OP slot is the body; the ACT slot is the activation. Elements are spread over a 2-D grid
// of groups_x × rows workgroups of 256 invocations so that large tensors stay within the
// per-dimension dispatch limit.
// Features: none (f32) or SHADER_F16 (T = f16, arithmetic in f32).
// Per call: FLOPs ≈ n (add), ≈ 8·n (activations); bytes = (inputs + 1)·n·sizeof(T).

struct Params {
    n: u32,
    groups_x: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

fn act(v: f32) -> f32 {
{{ACT}}
}

@compute @workgroup_size(256, 1, 1)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let i = (wg.y * p.groups_x + wg.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
{{OP}}
}
