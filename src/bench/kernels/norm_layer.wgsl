    // LayerNorm statistics and output (spliced into norm.wgsl).
    var s = 0.0;
    for (var j = lid; j < p.cols; j += WG) {
        s += f32(x[base + j]);
    }
    let mean = reduce_sum(lid, s) / n;
    var s2 = 0.0;
    for (var j = lid; j < p.cols; j += WG) {
        let d = f32(x[base + j]) - mean;
        s2 += d * d;
    }
    let rstd = inverseSqrt(reduce_sum(lid, s2) / n + p.eps);
    for (var j = lid; j < p.cols; j += WG) {
        y[base + j] = T((f32(x[base + j]) - mean) * rstd * f32(gamma[j]) + f32(beta[j]));
    }
    if (lid == 0u) {
        stats[2u * r] = mean;
        stats[2u * r + 1u] = rstd;
    }
