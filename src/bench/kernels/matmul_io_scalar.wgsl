// matmul IO, `scalar` variant: any M, N, K; every element is bounds-checked.
fn ld_a(z: u32, row: u32, k: u32) -> f32 {
    if (row < p.m && k < p.k) {
        return f32(a[z + row * p.k + k]);
    }
    return 0.0;
}

fn ld_b(z: u32, k: u32, col: u32) -> f32 {
    if (k < p.k && col < p.n) {
        return f32(b[z + k * p.n + col]);
    }
    return 0.0;
}

fn load_a4(z: u32, row: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(ld_a(z, row, k), ld_a(z, row, k + 1u), ld_a(z, row, k + 2u), ld_a(z, row, k + 3u));
}

fn load_b4(z: u32, k: u32, col: u32) -> vec4<f32> {
    return vec4<f32>(ld_b(z, k, col), ld_b(z, k, col + 1u), ld_b(z, k, col + 2u), ld_b(z, k, col + 3u));
}

fn store_c4(z: u32, row: u32, col: u32, v: vec4<f32>) {
    if (row < p.m) {
        for (var j = 0u; j < 4u; j++) {
            if (col + j < p.n) {
                c[z + row * p.n + col + j] = T(v[j]);
            }
        }
    }
}
