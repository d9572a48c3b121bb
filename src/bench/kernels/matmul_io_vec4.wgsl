// matmul IO, `vec4` variant: requires K % 4 == 0, N % 4 == 0 and batch strides % 4 == 0, so a
// vec4 starting at a column that is a multiple of 4 is either wholly inside the matrix or wholly out.
fn load_a4(z: u32, row: u32, k: u32) -> vec4<f32> {
    if (row < p.m && k < p.k) {
        return vec4<f32>(a[(z + row * p.k + k) / 4u]);
    }
    return vec4<f32>(0.0);
}

fn load_b4(z: u32, k: u32, col: u32) -> vec4<f32> {
    if (k < p.k && col < p.n) {
        return vec4<f32>(b[(z + k * p.n + col) / 4u]);
    }
    return vec4<f32>(0.0);
}

fn store_c4(z: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row < p.m && col < p.n) {
        c[(z + row * p.n + col) / 4u] = T4(v);
    }
}
