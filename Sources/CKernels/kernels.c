// See include/sb_kernels.h. The bodies live in kernels_impl.h, compiled here once per x86
// feature level (AVX-512 with 16 lanes, AVX2 with 8, baseline SSE2 with 4); the first call
// picks the level this CPU supports. Other architectures get the 4-lane baseline.
#include "sb_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// A per-thread buffer that only grows: the sparse product's transposed token tile. Our
// worker threads live as long as the process, so the buffer is allocated once per thread
// rather than once per call.
static float *sb_thread_scratch(size_t floats) {
    static _Thread_local float *buffer = NULL;
    static _Thread_local size_t capacity = 0;
    if (floats > capacity) {
        free(buffer);
        buffer = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
        if (!buffer) abort();
        capacity = floats;
    }
    return buffer;
}

#define TARGET
#define SUFFIX _base
#define LANES 4
typedef float V4 __attribute__((vector_size(16)));
typedef int VI4 __attribute__((vector_size(16)));
#define V V4
#define VI VI4
#include "kernels_impl.h"
#include "sparse_matmul_impl.h"
#undef TARGET
#undef SUFFIX
#undef LANES
#undef V
#undef VI

#if defined(__x86_64__)
#define HAVE_WIDE 1
typedef float V8 __attribute__((vector_size(32)));
typedef int VI8 __attribute__((vector_size(32)));
#define TARGET __attribute__((target("avx2,fma")))
#define SUFFIX _avx2
#define LANES 8
#define V V8
#define VI VI8
#include "kernels_impl.h"
#include "sparse_matmul_impl.h"
#undef TARGET
#undef SUFFIX
#undef LANES
#undef V
#undef VI

typedef float V16 __attribute__((vector_size(64)));
typedef int VI16 __attribute__((vector_size(64)));
#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define SUFFIX _avx512
#define LANES 16
#define V V16
#define VI VI16
#include "kernels_impl.h"
#include "sparse_matmul_impl.h"
#undef TARGET
#undef SUFFIX
#undef LANES
#undef V
#undef VI
#endif

/// 0 = baseline, 1 = AVX2, 2 = AVX-512; decided on first use.
static int level = -1;
static int feature_level(void) {
    if (level < 0) {
#ifdef HAVE_WIDE
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            level = 2;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            level = 1;
        else
#endif
            level = 0;
    }
    return level;
}

#ifdef HAVE_WIDE
#define DISPATCH(name, ...)                                  \
    switch (feature_level()) {                               \
    case 2: return name##_avx512(__VA_ARGS__);               \
    case 1: return name##_avx2(__VA_ARGS__);                 \
    default: return name##_base(__VA_ARGS__);                \
    }
#else
#define DISPATCH(name, ...) return name##_base(__VA_ARGS__);
#endif

float sb_max(const float *p, long n) { DISPATCH(sb_max, p, n) }
float sb_sum(const float *p, long n) { DISPATCH(sb_sum, p, n) }
float sb_sum_squares(const float *p, long n, float centre) { DISPATCH(sb_sum_squares, p, n, centre) }
float sb_exp_shifted_sum(float *p, long n, float shift) { DISPATCH(sb_exp_shifted_sum, p, n, shift) }
void sb_scale(float *p, long n, float s) { DISPATCH(sb_scale, p, n, s) }
void sb_exp(float *p, long n) { DISPATCH(sb_exp, p, n) }
void sb_erf(float *p, long n) { DISPATCH(sb_erf, p, n) }
void sb_gelu_erf(float *p, long n) { DISPATCH(sb_gelu_erf, p, n) }
void sb_gelu_tanh(float *p, long n) { DISPATCH(sb_gelu_tanh, p, n) }
float sb_expf(float x) { DISPATCH(sb_expf, x) }
float sb_erff(float x) { DISPATCH(sb_erff, x) }
float sb_softmax_backward(const float *p, float *dp, long n) { DISPATCH(sb_softmax_backward, p, dp, n) }
void sb_gelu_erf_backward(const float *x, float *g, long n) { DISPATCH(sb_gelu_erf_backward, x, g, n) }
void sb_gelu_tanh_backward(const float *x, float *g, long n) { DISPATCH(sb_gelu_tanh_backward, x, g, n) }
long sb_csc_tile_rows(void) { DISPATCH(sb_csc_tile_rows) }
void sb_csc_matmul(const float *x, long ldx, long n, long in, const int *col_start, const int *row_index,
                   const float *values, long out, float alpha, float beta, const float *bias, float *y, long ldy) {
    DISPATCH(sb_csc_matmul, x, ldx, n, in, col_start, row_index, values, out, alpha, beta, bias, y, ldy)
}
void sb_csc_mlp(const float *x, long ldx, long n, long in, const int *in_start, const int *in_row,
                const float *in_values, const float *in_bias, long hidden, int activation, const int *out_start,
                const int *out_row, const float *out_values, const float *out_bias, long out, float *y, long ldy) {
    DISPATCH(sb_csc_mlp, x, ldx, n, in, in_start, in_row, in_values, in_bias, hidden, activation, out_start, out_row,
             out_values, out_bias, out, y, ldy)
}
void sb_norm_backward(const float *x, const float *dy, const float *gain, float mean, float rstd, long n, int layer,
                      float *dx, float *dgain, float *dbias) {
    DISPATCH(sb_norm_backward, x, dy, gain, mean, rstd, n, layer, dx, dgain, dbias)
}
