    // RMSNorm statistics and output (spliced into norm.wgsl), as Hugging Face's RMSNorm runs it:
    // the normalised tensor x·rstd is kept (the γ multiply saves it), and with f16 storage the
    // f32 copy of the input too (the X32 slot).
    var s2 = 0.0;
    for (var j = lid; j < p.cols; j += WG) {
        let v = f32(x[base + j]);
        s2 += v * v;
{{X32}}
    }
    let rstd = inverseSqrt(reduce_sum(lid, s2) / n + p.eps);
    for (var j = lid; j < p.cols; j += WG) {
        let nv = T(f32(x[base + j]) * rstd);
        normed[base + j] = nv;
        y[base + j] = T(f32(nv) * f32(gamma[j]));
    }
    if (lid == 0u) {
        stats[r] = rstd;
    }
