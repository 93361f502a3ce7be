// The kernel bodies, written once for a vector type V of LANES floats and compiled per
// x86 feature level: kernels.c includes this file three times with TARGET, SUFFIX, V,
// VI (the matching int vector) and LANES defined. A tail shorter than LANES is copied
// into a padded vector so that it takes exactly the same arithmetic.

#define NAME2(a, b) a##b
#define NAME(a, b) NAME2(a, b)
#define FN(name) NAME(name, SUFFIX)
#define HELPER static inline __attribute__((always_inline)) TARGET

HELPER V FN(splat)(float x) { V v = {0}; return v + x; }
HELPER V FN(load)(const float *p) { V v; memcpy(&v, p, sizeof v); return v; }
HELPER void FN(store)(float *p, V v) { memcpy(p, &v, sizeof v); }
HELPER V FN(load_tail)(const float *p, long n, float fill) {
    V v = FN(splat)(fill);
    for (long i = 0; i < n; i++) v[i] = p[i];
    return v;
}
HELPER void FN(store_tail)(float *p, V v, long n) { for (long i = 0; i < n; i++) p[i] = v[i]; }
HELPER float FN(hsum)(V v) {
    float s[LANES];
    memcpy(s, &v, sizeof s);
    for (int w = LANES / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++) s[i] += s[i + w];
    return s[0];
}
HELPER float FN(hmax)(V v) {
    float m = v[0];
    for (int i = 1; i < LANES; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// exp: n = round(x / ln 2) by the magic-number trick, r = x − n·ln 2 in two parts
// (Cody–Waite), a degree-6 polynomial for exp(r) (Cephes expf), then 2^n through the
// exponent bits. Relative error about 2e-7; 0 below −87.3; inputs above 88 give exp(88).
HELPER V FN(v_exp)(V x) {
    V xc = __builtin_elementwise_min(__builtin_elementwise_max(x, FN(splat)(-87.33654f)), FN(splat)(88.0f));
    const V magic = FN(splat)(12582912.0f);  // 1.5 · 2^23
    V shifted = xc * 1.44269504f + magic;
    V n = shifted - magic;
    V r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    V p = FN(splat)(1.9875691e-4f);
    p = p * r + 1.3981999e-3f;
    p = p * r + 8.3334519e-3f;
    p = p * r + 4.1665796e-2f;
    p = p * r + 1.6666665e-1f;
    p = p * r + 5.0000001e-1f;
    p = p * r * r + r + 1.0f;
    VI bits = (VI)shifted - (VI)magic;  // the integer n, from the low mantissa bits
    V scale = (V)((bits + 127) << 23);
    VI keep = x >= -87.33654f;          // all ones where x is in range
    return (V)((VI)(p * scale) & keep);
}

// erf: |x| < 1.05 by the Maclaurin series 2/√π · Σ (−1)ⁿ x²ⁿ⁺¹ / (n! (2n+1)) to n = 12 (Horner
// in x²), else Abramowitz & Stegun 7.1.26. 7.1.26 alone is within 1.5e-7 in exact arithmetic
// but loses up to 6.5e-7 to cancellation near 0 in float; together |error| ≤ 2e-7.
HELPER V FN(v_erf)(V x) {
    V x2 = x * x;
    V s = FN(splat)(9.422759064650411e-11f);
    s = s * x2 - 1.2290555301717926e-09f;
    s = s * x2 + 1.4807192815879218e-08f;
    s = s * x2 - 1.6365844691234924e-07f;
    s = s * x2 + 1.6462114365889246e-06f;
    s = s * x2 - 1.492565035840625e-05f;
    s = s * x2 + 1.2055332981789664e-04f;
    s = s * x2 - 8.548327023450852e-04f;
    s = s * x2 + 5.223977625442188e-03f;
    s = s * x2 - 2.6866170645131252e-02f;
    s = s * x2 + 1.1283791670955126e-01f;
    s = s * x2 - 3.7612638903183754e-01f;
    s = s * x2 + 1.1283791670955126f;
    V series = x * s;
    V a = __builtin_elementwise_abs(x);
    V t = 1.0f / (1.0f + 0.3275911f * a);
    V y = FN(splat)(1.061405429f);
    y = y * t - 1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t - 0.284496736f;
    y = y * t + 0.254829592f;
    V e = 1.0f - y * t * FN(v_exp)(-a * a);
    VI negative = x < 0.0f;
    VI tail = ((VI)(-e) & negative) | ((VI)e & ~negative);
    VI small = a < 1.05f;
    return (V)(((VI)series & small) | (tail & ~small));
}

HELPER V FN(v_tanh)(V x) {
    V xc = __builtin_elementwise_min(__builtin_elementwise_max(x, FN(splat)(-15.0f)), FN(splat)(15.0f));
    return 1.0f - 2.0f / (FN(v_exp)(2.0f * xc) + 1.0f);
}

HELPER V FN(v_gelu_erf)(V x) { return 0.5f * x * (1.0f + FN(v_erf)(x * 0.70710677f)); }
HELPER V FN(v_gelu_tanh)(V x) { return 0.5f * x * (1.0f + FN(v_tanh)(0.7978846f * (x + 0.044715f * x * x * x))); }

TARGET static float FN(sb_max)(const float *p, long n) {
    V acc = FN(splat)(-INFINITY);
    long i = 0;
    for (; i + LANES <= n; i += LANES) acc = __builtin_elementwise_max(acc, FN(load)(p + i));
    if (i < n) acc = __builtin_elementwise_max(acc, FN(load_tail)(p + i, n - i, -INFINITY));
    return FN(hmax)(acc);
}

TARGET static float FN(sb_sum)(const float *p, long n) {
    V acc = FN(splat)(0);
    long i = 0;
    for (; i + LANES <= n; i += LANES) acc += FN(load)(p + i);
    if (i < n) acc += FN(load_tail)(p + i, n - i, 0);
    return FN(hsum)(acc);
}

TARGET static float FN(sb_sum_squares)(const float *p, long n, float centre) {
    V acc = FN(splat)(0);
    long i = 0;
    for (; i + LANES <= n; i += LANES) { V d = FN(load)(p + i) - centre; acc += d * d; }
    if (i < n) { V d = FN(load_tail)(p + i, n - i, centre) - centre; acc += d * d; }
    return FN(hsum)(acc);
}

TARGET static float FN(sb_exp_shifted_sum)(float *p, long n, float shift) {
    V acc = FN(splat)(0);
    long i = 0;
    for (; i + LANES <= n; i += LANES) { V e = FN(v_exp)(FN(load)(p + i) - shift); FN(store)(p + i, e); acc += e; }
    if (i < n) {
        V e = FN(v_exp)(FN(load_tail)(p + i, n - i, -INFINITY) - shift);  // padding gives exp(−∞) = 0
        FN(store_tail)(p + i, e, n - i);
        acc += e;
    }
    return FN(hsum)(acc);
}

TARGET static void FN(sb_scale)(float *p, long n, float s) {
    long i = 0;
    for (; i + LANES <= n; i += LANES) FN(store)(p + i, FN(load)(p + i) * s);
    for (; i < n; i++) p[i] *= s;
}

#define ELEMENTWISE(name, op)                                                                 \
    TARGET static void FN(name)(float *p, long n) {                                           \
        long i = 0;                                                                           \
        for (; i + LANES <= n; i += LANES) FN(store)(p + i, FN(op)(FN(load)(p + i)));         \
        if (i < n) FN(store_tail)(p + i, FN(op)(FN(load_tail)(p + i, n - i, 0)), n - i);      \
    }

ELEMENTWISE(sb_exp, v_exp)
ELEMENTWISE(sb_erf, v_erf)
ELEMENTWISE(sb_gelu_erf, v_gelu_erf)
ELEMENTWISE(sb_gelu_tanh, v_gelu_tanh)

// Softmax backward on one row: with ρ = Σ p·dp, dp ← p · (dp − ρ); returns ρ.
TARGET static float FN(sb_softmax_backward)(const float *p, float *dp, long n) {
    V acc = FN(splat)(0);
    long i = 0;
    for (; i + LANES <= n; i += LANES) acc += FN(load)(p + i) * FN(load)(dp + i);
    if (i < n) acc += FN(load_tail)(p + i, n - i, 0) * FN(load_tail)(dp + i, n - i, 0);
    float rho = FN(hsum)(acc);
    for (i = 0; i + LANES <= n; i += LANES) FN(store)(dp + i, FN(load)(p + i) * (FN(load)(dp + i) - rho));
    for (; i < n; i++) dp[i] = p[i] * (dp[i] - rho);
    return rho;
}

// GELU derivatives, applied to an incoming gradient: g ← g · gelu'(x).
HELPER V FN(v_gelu_erf_grad)(V x) {
    V cdf = 0.5f * (1.0f + FN(v_erf)(x * 0.70710677f));
    V pdf = 0.3989422804f * FN(v_exp)(-0.5f * x * x);
    return cdf + x * pdf;
}
HELPER V FN(v_gelu_tanh_grad)(V x) {
    V u = 0.7978846f * (x + 0.044715f * x * x * x);
    V t = FN(v_tanh)(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * 0.7978846f * (1.0f + 3.0f * 0.044715f * x * x);
}

#define GRADIENT(name, op)                                                                        \
    TARGET static void FN(name)(const float *x, float *g, long n) {                              \
        long i = 0;                                                                               \
        for (; i + LANES <= n; i += LANES) FN(store)(g + i, FN(load)(g + i) * FN(op)(FN(load)(x + i)));   \
        if (i < n) FN(store_tail)(g + i, FN(load_tail)(g + i, n - i, 0) * FN(op)(FN(load_tail)(x + i, n - i, 0)), n - i); \
    }

GRADIENT(sb_gelu_erf_backward, v_gelu_erf_grad)
GRADIENT(sb_gelu_tanh_backward, v_gelu_tanh_grad)
#undef GRADIENT

// Norm backward on one row. x̂ = (x − mean)·rstd, y = x̂ ⊙ g (+ b). With ĝ = dy ⊙ g:
//   LayerNorm: dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))
//   RMSNorm:   dx = rstd · (ĝ − x̂ · mean(ĝ ⊙ x̂))            (mean = 0)
// dx is added into `dx`; dy ⊙ x̂ into `dgain` and dy into `dbias` (when given).
TARGET static void FN(sb_norm_backward)(const float *x, const float *dy, const float *gain, float mean, float rstd,
                                        long n, int layer, float *dx, float *dgain, float *dbias) {
    V sg = FN(splat)(0), sgx = FN(splat)(0);
    long i = 0;
    for (; i + LANES <= n; i += LANES) {
        V xh = (FN(load)(x + i) - mean) * rstd, gh = FN(load)(dy + i) * FN(load)(gain + i);
        sg += gh; sgx += gh * xh;
    }
    if (i < n) {
        V xh = (FN(load_tail)(x + i, n - i, mean) - mean) * rstd;
        V gh = FN(load_tail)(dy + i, n - i, 0) * FN(load_tail)(gain + i, n - i, 0);
        sg += gh; sgx += gh * xh;
    }
    float mg = layer ? FN(hsum)(sg) / (float)n : 0.0f, mgx = FN(hsum)(sgx) / (float)n;
    for (i = 0; i < n; i++) {
        float xh = (x[i] - mean) * rstd, gh = dy[i] * gain[i];
        dx[i] += rstd * (gh - mg - xh * mgx);
        dgain[i] += dy[i] * xh;
        if (dbias) dbias[i] += dy[i];
    }
}

TARGET static float FN(sb_expf)(float x) { return FN(v_exp)(FN(splat)(x))[0]; }
TARGET static float FN(sb_erff)(float x) { return FN(v_erf)(FN(splat)(x))[0]; }

#undef ELEMENTWISE
#undef HELPER
#undef FN
#undef NAME
#undef NAME2
