// Elementwise and reduction kernels for float arrays, written with clang vector
// extensions and compiled once per x86 feature level (AVX-512, AVX2, baseline); the
// loader picks the clone this CPU can run. Swift calls them through Tensors/VectorOps.
#ifndef SB_KERNELS_H
#define SB_KERNELS_H

/// Largest element (−∞ for n = 0).
float sb_max(const float *p, long n);
/// Σ p[i].
float sb_sum(const float *p, long n);
/// Σ (p[i] − centre)².
float sb_sum_squares(const float *p, long n, float centre);
/// p[i] ← exp(p[i] − shift); returns Σ of the new values.
float sb_exp_shifted_sum(float *p, long n, float shift);
/// p[i] ← p[i] · s.
void sb_scale(float *p, long n, float s);
/// p[i] ← exp(p[i]).
void sb_exp(float *p, long n);
/// p[i] ← erf(p[i]) (series below |x| = 1.05, else Abramowitz & Stegun 7.1.26; |error| ≤ 2e-7).
void sb_erf(float *p, long n);
/// p[i] ← p[i] · Φ(p[i]), the exact (erf) GELU.
void sb_gelu_erf(float *p, long n);
/// p[i] ← GPT-2's tanh-approximated GELU.
void sb_gelu_tanh(float *p, long n);

/// Softmax backward on one row: with ρ = Σ p·dp, dp ← p · (dp − ρ); returns ρ.
float sb_softmax_backward(const float *p, float *dp, long n);
/// g ← g · gelu'(x), exact (erf) form and tanh form.
void sb_gelu_erf_backward(const float *x, float *g, long n);
void sb_gelu_tanh_backward(const float *x, float *g, long n);
/// Norm backward on one row of width n (layer = 1: LayerNorm, 0: RMSNorm with mean 0):
/// adds d loss/dx into dx, dy ⊙ x̂ into dgain and dy into dbias (if not NULL).
void sb_norm_backward(const float *x, const float *dy, const float *gain, float mean, float rstd, long n, int layer,
                      float *dx, float *dgain, float *dbias);

/// Sparse × dense product y[n, out] = alpha · x[n, in] · W + beta · y (+ bias[out], added last,
/// when not NULL; beta = 0: y is only written), W [in, out] stored by columns (CSC): column j
/// holds values[col_start[j] ..< col_start[j + 1]] at rows row_index[…], a multiple of four
/// entries per column (pad with zero values). Row strides ldx, ldy. Runs on the calling thread.
void sb_csc_matmul(const float *x, long ldx, long n, long in, const int *col_start, const int *row_index,
                   const float *values, long out, float alpha, float beta, const float *bias, float *y, long ldy);
/// Activations for sb_csc_mlp (the values of Tensors' ActivationKind, in C).
enum { SB_ACT_NONE = 0, SB_ACT_GELU_ERF = 1, SB_ACT_GELU_TANH = 2, SB_ACT_RELU = 3 };
/// A block's MLP when both its matrices are sparse: y[n, out] = act(x[n, in] · W_in + b_in) · W_out
/// + b_out (y only written), W_in [in, hidden] and W_out [hidden, out] in the CSC form above,
/// b_in [hidden] and b_out [out] or NULL. The [n, hidden] activations are never stored. Runs
/// on the calling thread.
void sb_csc_mlp(const float *x, long ldx, long n, long in, const int *in_start, const int *in_row,
                const float *in_values, const float *in_bias, long hidden, int activation, const int *out_start,
                const int *out_row, const float *out_values, const float *out_bias, long out, float *y, long ldy);
/// Rows of x the sparse product takes per tile; split work across threads in multiples of it.
long sb_csc_tile_rows(void);

/// Scalar forms of the same functions.
float sb_expf(float x);
float sb_erff(float x);

#endif
