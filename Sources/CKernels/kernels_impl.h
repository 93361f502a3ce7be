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

HELPER V FN(v_erf)(V x) {
    V a = __builtin_elementwise_abs(x);
    V t = 1.0f / (1.0f + 0.3275911f * a);
    V y = FN(splat)(1.061405429f);
    y = y * t - 1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t - 0.284496736f;
    y = y * t + 0.254829592f;
    V e = 1.0f - y * t * FN(v_exp)(-a * a);
    VI negative = x < 0.0f;
    return (V)(((VI)(-e) & negative) | ((VI)e & ~negative));
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

TARGET static float FN(sb_expf)(float x) { return FN(v_exp)(FN(splat)(x))[0]; }
TARGET static float FN(sb_erff)(float x) { return FN(v_erf)(FN(splat)(x))[0]; }

#undef ELEMENTWISE
#undef HELPER
#undef FN
#undef NAME
#undef NAME2
