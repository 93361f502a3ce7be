// The sparse × dense product y = alpha · x · W + beta · y for a weight matrix W [in, out]
// stored by output column (CSC), written once for a vector type V of LANES floats and
// compiled per x86 feature level: kernels.c includes this file after kernels_impl.h (whose
// load/store/splat helpers it uses) with the same TARGET, SUFFIX, V and LANES.
//
// Tokens go in tiles of TILE = 2 · LANES rows. A tile of x is transposed once into
// xt[in][TILE] (in L2: 512 KiB for in = 4096 at 32 tokens), so that every nonzero w_ij of
// column j costs one broadcast and TILE_VECTORS vector FMAs, Σ_i w_ij · xt[i], no scatter:
// each output column's sum for the whole tile lives in registers. Columns are done LANES
// at a time into a small block that is transposed back into y's rows in registers.
// sb_csc_mlp chains two such products through the transposed layout (see there).

#define NAME2(a, b) a##b
#define NAME(a, b) NAME2(a, b)
#define FN(name) NAME(name, SUFFIX)
#define HELPER static inline __attribute__((always_inline)) TARGET
// Two vectors of tokens per tile measured faster than one or four (docs/sparse-kernels.md).
#define TILE_VECTORS 2
#define TILE (TILE_VECTORS * LANES)

// Shuffle index lists for an in-register LANES × LANES transpose: stage w swaps the
// off-diagonal w × w blocks of every 2w × 2w block (w = LANES/2, …, 1).
#if LANES == 4
#define TR_LO_2 0, 1, 4, 5
#define TR_HI_2 2, 3, 6, 7
#define TR_LO_1 0, 4, 2, 6
#define TR_HI_1 1, 5, 3, 7
#elif LANES == 8
#define TR_LO_4 0, 1, 2, 3, 8, 9, 10, 11
#define TR_HI_4 4, 5, 6, 7, 12, 13, 14, 15
#define TR_LO_2 0, 1, 8, 9, 4, 5, 12, 13
#define TR_HI_2 2, 3, 10, 11, 6, 7, 14, 15
#define TR_LO_1 0, 8, 2, 10, 4, 12, 6, 14
#define TR_HI_1 1, 9, 3, 11, 5, 13, 7, 15
#elif LANES == 16
#define TR_LO_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define TR_HI_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define TR_LO_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define TR_HI_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define TR_LO_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define TR_HI_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define TR_LO_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define TR_HI_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#endif

#define TR_STAGE(w)                                                              \
    for (int i = 0; i < LANES; i++) {                                            \
        if (i & (w)) continue;                                                   \
        V lo = __builtin_shufflevector(r[i], r[i + (w)], TR_LO_##w);             \
        V hi = __builtin_shufflevector(r[i], r[i + (w)], TR_HI_##w);             \
        r[i] = lo;                                                               \
        r[i + (w)] = hi;                                                         \
    }

/// r ← rᵀ for LANES rows of LANES floats.
HELPER void FN(transpose)(V r[LANES]) {
#if LANES == 16
    TR_STAGE(8)
#endif
#if LANES >= 8
    TR_STAGE(4)
#endif
    TR_STAGE(2)
    TR_STAGE(1)
}

/// xt[i][t] = x[t][i] for t < rows (rows ≤ TILE); zero for rows ≤ t < TILE.
HELPER void FN(transpose_in)(const float *x, long ldx, long rows, long in, float *xt) {
    for (long s = 0; s < TILE; s += LANES) {
        long i = 0;
        for (; i + LANES <= in; i += LANES) {
            V r[LANES];
            for (int t = 0; t < LANES; t++)
                r[t] = s + t < rows ? FN(load)(x + (s + t) * ldx + i) : FN(splat)(0);
            FN(transpose)(r);
            for (int c = 0; c < LANES; c++) FN(store)(xt + (i + c) * TILE + s, r[c]);
        }
        for (; i < in; i++)
            for (int t = 0; t < LANES; t++) xt[i * TILE + s + t] = s + t < rows ? x[(s + t) * ldx + i] : 0.0f;
    }
}

/// Writes block[c][t] (c < cols, t < rows) to y[t][j0 + c] as alpha · block + beta · y (+ bias[j0 + c]
/// when bias is not NULL, added last, as a separate bias pass after BLAS would).
/// beta = 0 never reads y (it may hold NaN, as BLAS allows).
HELPER void FN(transpose_out)(const float *block, long rows, long cols, float alpha, float beta,
                               const float *bias, float *y, long ldy, long j0) {
    for (long s = 0; s < rows; s += LANES) {
        if (cols == LANES) {
            V r[LANES];
            for (int c = 0; c < LANES; c++) r[c] = FN(load)(block + c * TILE + s);
            FN(transpose)(r);
            long n = rows - s < LANES ? rows - s : LANES;
            for (long t = 0; t < n; t++) {
                float *dst = y + (s + t) * ldy + j0;
                V v = alpha * r[t];
                if (beta != 0.0f) v = v + beta * FN(load)(dst);
                if (bias) v = v + FN(load)(bias + j0);
                FN(store)(dst, v);
            }
        } else {
            for (long t = s; t < rows && t < s + LANES; t++)
                for (long c = 0; c < cols; c++) {
                    float *dst = y + t * ldy + j0 + c;
                    float v = alpha * block[c * TILE + t];
                    if (beta != 0.0f) v = v + beta * *dst;
                    if (bias) v = v + bias[j0 + c];
                    *dst = v;
                }
        }
    }
}

/// *p in every lane, by one broadcast load (splat(*p) would first add it to 0.0).
HELPER V FN(broadcast)(const float *p) {
    V v;
    for (int i = 0; i < LANES; i++) v[i] = *p;
    return v;
}

/// Column j's sums for the whole tile: out[v] = Σ_{p ∈ column j} values[p] · xt[row_index[p]][v·LANES ..].
HELPER void FN(column_sums)(const float *xt, const int *col_start, const int *row_index, const float *values,
                             long j, V out[TILE_VECTORS]) {
    // Four partial sums per vector: FMA latency (4 cycles) over four chains lets two FMAs
    // issue every cycle. Columns come padded to a multiple of four.
    V acc[4][TILE_VECTORS];
    for (int u = 0; u < 4; u++)
        for (int v = 0; v < TILE_VECTORS; v++) acc[u][v] = FN(splat)(0);
    for (long p = col_start[j], end = col_start[j + 1]; p < end; p += 4) {
        for (int u = 0; u < 4; u++) {
            const float *r = xt + (long)row_index[p + u] * TILE;
            V w = FN(broadcast)(values + p + u);
            for (int v = 0; v < TILE_VECTORS; v++) acc[u][v] += w * FN(load)(r + v * LANES);
        }
    }
    for (int v = 0; v < TILE_VECTORS; v++) out[v] = (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]);
}

/// y[rows, out] = alpha · xtᵀ · W + beta · y (+ bias) for one tile already transposed into xt.
HELPER void FN(tile_product)(const float *xt, long rows, const int *col_start, const int *row_index,
                              const float *values, long out, float alpha, float beta, const float *bias,
                              float *block, float *y, long ldy) {
    for (long j0 = 0; j0 < out; j0 += LANES) {
        long cols = out - j0 < LANES ? out - j0 : LANES;
        for (long c = 0; c < cols; c++) {
            V sums[TILE_VECTORS];
            FN(column_sums)(xt, col_start, row_index, values, j0 + c, sums);
            for (int v = 0; v < TILE_VECTORS; v++) FN(store)(block + c * TILE + v * LANES, sums[v]);
        }
        FN(transpose_out)(block, rows, cols, alpha, beta, bias, y, ldy, j0);
    }
}

TARGET static void FN(sb_csc_matmul)(const float *x, long ldx, long n, long in, const int *col_start,
                                     const int *row_index, const float *values, long out, float alpha, float beta,
                                     const float *bias, float *y, long ldy) {
    float *xt = sb_thread_scratch((size_t)in * TILE + (size_t)LANES * TILE);
    float *block = xt + (size_t)in * TILE;  // [LANES columns][TILE tokens]
    for (long t0 = 0; t0 < n; t0 += TILE) {
        long rows = n - t0 < TILE ? n - t0 : TILE;
        FN(transpose_in)(x + t0 * ldx, ldx, rows, in, xt);
        FN(tile_product)(xt, rows, col_start, row_index, values, out, alpha, beta, bias, block, y + t0 * ldy, ldy);
    }
}

// The MLP of a block whose two matrices are both sparse, y = act(x · W_in + b_in) · W_out + b_out,
// one token tile at a time. The second product needs its input transposed, [hidden][TILE],
// which is exactly the layout in which the first one produces its sums; so the hidden
// activations go into a per-thread [hidden][TILE] buffer (512 KiB for 4096 neurons, in L2)
// and are read back from it, and the [n, hidden] activations are never written out nor
// transposed. Each hidden value is the same float as the unfused path's (same sums, then
// + b_in, then the same elementwise act).
TARGET static void FN(sb_csc_mlp)(const float *x, long ldx, long n, long in, const int *in_start,
                                  const int *in_row, const float *in_values, const float *in_bias, long hidden,
                                  int activation, const int *out_start, const int *out_row, const float *out_values,
                                  const float *out_bias, long out, float *y, long ldy) {
    float *xt = sb_thread_scratch(((size_t)in + (size_t)hidden + LANES) * TILE);
    float *ht = xt + (size_t)in * TILE;          // [hidden][TILE]
    float *block = ht + (size_t)hidden * TILE;   // [LANES columns][TILE tokens]
    for (long t0 = 0; t0 < n; t0 += TILE) {
        long rows = n - t0 < TILE ? n - t0 : TILE;
        FN(transpose_in)(x + t0 * ldx, ldx, rows, in, xt);
        for (long j0 = 0; j0 < hidden; j0 += LANES) {
            long cols = hidden - j0 < LANES ? hidden - j0 : LANES;
            for (long j = j0; j < j0 + cols; j++) {
                V h[TILE_VECTORS];
                FN(column_sums)(xt, in_start, in_row, in_values, j, h);
                for (int v = 0; v < TILE_VECTORS; v++) FN(store)(ht + j * TILE + v * LANES, h[v]);
            }
            // Bias and activation for LANES columns at once, not per column: erf's polynomial is
            // a long dependent chain, and a loop over independent vectors lets the CPU overlap
            // them, as the elementwise kernel does.
            for (long j = j0; j < j0 + cols; j++) {
                for (int v = 0; v < TILE_VECTORS; v++) {
                    float *p = ht + j * TILE + v * LANES;
                    V h = FN(load)(p);
                    if (in_bias) h = h + in_bias[j];
                    switch (activation) {
                    case SB_ACT_GELU_ERF: h = FN(v_gelu_erf)(h); break;
                    case SB_ACT_GELU_TANH: h = FN(v_gelu_tanh)(h); break;
                    case SB_ACT_RELU: h = __builtin_elementwise_max(h, FN(splat)(0)); break;
                    default: break;
                    }
                    FN(store)(p, h);
                }
            }
        }
        FN(tile_product)(ht, rows, out_start, out_row, out_values, out, 1.0f, 0.0f, out_bias, block, y + t0 * ldy,
                         ldy);
    }
}

TARGET static long FN(sb_csc_tile_rows)(void) { return TILE; }

#undef TR_STAGE
#if LANES == 16
#undef TR_LO_8
#undef TR_HI_8
#endif
#if LANES >= 8
#undef TR_LO_4
#undef TR_HI_4
#endif
#undef TR_LO_2
#undef TR_HI_2
#undef TR_LO_1
#undef TR_HI_1
#undef TILE
#undef TILE_VECTORS
#undef HELPER
#undef FN
#undef NAME
#undef NAME2
