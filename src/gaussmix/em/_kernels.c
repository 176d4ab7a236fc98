/* Loops of the EM kernel that numpy can only do in several passes.
 *
 * Built, when a C compiler is there, as an optional extension (setup.py) and called through
 * ctypes (gaussmix/em/compiled.py): plain C, no Python headers. Without it gaussmix runs the
 * numpy versions in stats.py, which are the reference the tests hold these to.
 *
 * softmax_*: responsibilities and log-densities of a (K, n) block of log-probabilities, in
 *   place, in one sweep per tile of columns: the column maximum, exp of the terms raised to a
 *   floor minus exp(floor) (so far terms are exactly 0, as in stats.softmax_in_place; the floor
 *   must be at least -700 in double, -87 in float), the sum, its log, the scaling, each in the
 *   array's own precision as numpy does. exp is a polynomial after Cody-Waite reduction: about
 *   2 ulp in double, a few in float, measured against numpy's exp by the tests.
 * features_*: the natural kernel's features T (nq + D + 1, n) of the rows X (n, D) about the
 *   centre c, in one sweep per tile of rows: the rows transposed and centred, their quadratic
 *   features (full: x_i x_j, i <= j; diag: x_d^2; spherical: |x|^2), and a row of ones.
 * feature_sums_full_*: the second product T q' for full covariances from the (row, component)
 *   pairs of non-negligible responsibility only, once a mixture has separated (its comment).
 * estep_rows: the lean pass (lean.py): the whole E-step of a small data set and its statistics
 *   about the means, componentwise, in one call (its own comment below).
 * precision_factors: the precisions' Cholesky factors of K small covariances (covariance.py's
 *   potrf + trtri per component, in one call).
 * univariate_em: a whole EM fit of the one-feature models E and V on a small data set
 *   (lean.py), estep_rows's E-step and mstep.py's M-step to the bit (its own comment below).
 * common_orientation, orientation_sweeps, vei_loop, symmetric_eigen: the inner loops of
 *   constrained.py's M-steps for small D (EVE/VVE whole, VEI/VEV's alternation, Jacobi
 *   eigenvectors for the free orientations), each the numpy loop's arithmetic in one call.
 * constrained_mstep: the whole M-step of VEI, VEE, EVE, VVE, EEV, VEV and EVV (the scatter,
 *   the loops above, the assembled covariances and their precision factors) in one call.
 * mstep_closed: the whole M-step of the closed-form models (VVV, EEE, VVI, VII, EII, EEI, EVI)
 *   with the precisions' Cholesky factors, in one call (mstep.estimate's arithmetic).
 * whole_em: a whole EM fit of a model whose M-step is one of the two above, estep_rows and
 *   that M-step called in turn with run_em's arithmetic around them (its own comment below).
 *
 * The numpy references: stats.py for the first two, stats.chunk_stats_componentwise for
 * estep_rows, LAPACK for precision_factors, constrained.py's loops (and numpy's eigh) for the
 * inner loops, Covariance.covariances and precisions_cholesky for constrained_mstep. The
 * features are computed in double (the *_f32
 * variants store float). Arrays are C-ordered.
 */

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
/* one build runs the widest vector unit of the machine it lands on */
#define VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTORISED
#endif

#define COLUMNS 512 /* softmax: columns per tile (their maxima, sums and scales stay in L1) */
#define ROWS 128    /* features: rows per tile (their centred values stay in L1) */
#define SUM_ROWS 256 /* feature_sums_full_*: a component's rows gathered at a time */

static const double LOG2E = 1.4426950408889634;
static const double LN2_HI = 6.93147180369123816490e-01;
static const double LN2_LO = 1.90821492927058770002e-10;
static const double SHIFTER = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */

/* exp(x) for floor <= x <= 0 (floor >= -700: 2^k stays normal): x = k ln 2 + r, |r| <= ln2/2,
 * exp(r) by its Taylor polynomial to r^12 (remainder below 2^-60), 2^k from k's bits */
static inline double exp_nonpositive(double x)
{
    double t = x * LOG2E + SHIFTER;
    double k = t - SHIFTER;
    double r = (x - k * LN2_HI) - k * LN2_LO;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* t's low mantissa bits hold k (two's complement, mod 2^12): shifted into the exponent
     * field and biased they make 2^k */
    int64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (int64_t)((uint64_t)bits << 52) + ((int64_t)1023 << 52);
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* exp(x) for floor <= x <= 0 in float (floor >= -87: 2^k stays normal): the same reduction,
 * Taylor to r^7 (remainder below 2^-27), 2^k from k's bits */
static inline float expf_nonpositive(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    float t = x * 1.44269504f + shifter;
    float k = t - shifter;
    float r = (x - k * 0.693145752f) - k * 1.42860677e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (int32_t)((uint32_t)bits << 23) + (127 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#define SOFTMAX(NAME, T, EXP)                                                                   \
    VECTORISED                                                                                  \
    void NAME(T *restrict L, long K, long n, T *restrict log_density, double floor_)          \
    {                                                                                           \
        /* the same function as every clamped term's, so those come out exactly 0 */            \
        const T floor_t = (T)floor_;                                                            \
        const T exp_floor = EXP(floor_t);                                                       \
        T top[COLUMNS], total[COLUMNS];                                                         \
        for (long j0 = 0; j0 < n; j0 += COLUMNS) {                                              \
            long m = n - j0 < COLUMNS ? n - j0 : COLUMNS;                                       \
            for (long j = 0; j < m; j++) {                                                      \
                top[j] = L[j0 + j];                                                             \
                total[j] = (T)0.0;                                                              \
            }                                                                                   \
            for (long k = 1; k < K; k++) {                                                      \
                const T *row = L + k * n + j0;                                                  \
                for (long j = 0; j < m; j++) top[j] = row[j] > top[j] ? row[j] : top[j];        \
            }                                                                                   \
            for (long k = 0; k < K; k++) {                                                      \
                T *row = L + k * n + j0;                                                        \
                for (long j = 0; j < m; j++) {                                                  \
                    T x = row[j] - top[j];                                                      \
                    x = x > floor_t ? x : floor_t;                                              \
                    T e = EXP(x) - exp_floor;                                                   \
                    row[j] = e;                                                                 \
                    total[j] += e;                                                              \
                }                                                                               \
            }                                                                                   \
            for (long j = 0; j < m; j++) {                                                      \
                log_density[j0 + j] = (T)((double)top[j] + log((double)total[j]));              \
                total[j] = (T)1.0 / total[j];                                                   \
            }                                                                                   \
            for (long k = 0; k < K; k++) {                                                      \
                T *row = L + k * n + j0;                                                        \
                for (long j = 0; j < m; j++) row[j] *= total[j];                                \
            }                                                                                   \
        }                                                                                       \
    }

SOFTMAX(softmax_f64, double, exp_nonpositive)
SOFTMAX(softmax_f32, float, expf_nonpositive)

/* z[d * ROWS + j] = X[i0 + j, d] - c[d] for the m rows of a tile */
static inline void centre_tile(const double *restrict X, long D, long i0, long m,
                               const double *restrict c, double *restrict z)
{
    for (long j = 0; j < m; j++) {
        const double *x = X + (i0 + j) * D;
        for (long d = 0; d < D; d++) z[d * ROWS + j] = x[d] - c[d];
    }
}

/* the rows z (D of them) and a row of ones, from row `first` of T on */
#define LINEAR_AND_ONES(T, first)                                                               \
    do {                                                                                        \
        for (long d = 0; d < D; d++) {                                                          \
            T *out = Tf + ((first) + d) * n + i0;                                               \
            const double *zd = z + d * ROWS;                                                    \
            for (long j = 0; j < m; j++) out[j] = (T)zd[j];                                     \
        }                                                                                       \
        T *ones = Tf + ((first) + D) * n + i0;                                                  \
        for (long j = 0; j < m; j++) ones[j] = (T)1.0;                                          \
    } while (0)

/* full: T = (z_a z_b for a <= b in row-major upper order, z, 1) */
#define FEATURES_FULL(NAME, T)                                                                  \
    VECTORISED                                                                                  \
    void NAME(const double *restrict X, long n, long D, const double *restrict c,              \
              T *restrict Tf, double *restrict z)                                               \
    {                                                                                           \
        long nq = D * (D + 1) / 2;                                                              \
        for (long i0 = 0; i0 < n; i0 += ROWS) {                                                 \
            long m = n - i0 < ROWS ? n - i0 : ROWS;                                             \
            centre_tile(X, D, i0, m, c, z);                                                     \
            long q = 0;                                                                         \
            for (long a = 0; a < D; a++) {                                                      \
                const double *za = z + a * ROWS;                                                \
                for (long b = a; b < D; b++, q++) {                                             \
                    const double *zb = z + b * ROWS;                                            \
                    T *out = Tf + q * n + i0;                                                   \
                    for (long j = 0; j < m; j++) out[j] = (T)(za[j] * zb[j]);                   \
                }                                                                               \
            }                                                                                   \
            LINEAR_AND_ONES(T, nq);                                                             \
        }                                                                                       \
    }

/* diag: T = (z_d^2, z, 1) */
#define FEATURES_DIAG(NAME, T)                                                                  \
    VECTORISED                                                                                  \
    void NAME(const double *restrict X, long n, long D, const double *restrict c,              \
              T *restrict Tf, double *restrict z)                                               \
    {                                                                                           \
        for (long i0 = 0; i0 < n; i0 += ROWS) {                                                 \
            long m = n - i0 < ROWS ? n - i0 : ROWS;                                             \
            centre_tile(X, D, i0, m, c, z);                                                     \
            for (long d = 0; d < D; d++) {                                                      \
                const double *zd = z + d * ROWS;                                                \
                T *out = Tf + d * n + i0;                                                       \
                for (long j = 0; j < m; j++) out[j] = (T)(zd[j] * zd[j]);                       \
            }                                                                                   \
            LINEAR_AND_ONES(T, D);                                                              \
        }                                                                                       \
    }

/* spherical: T = (|z|^2, z, 1) */
#define FEATURES_SPHERICAL(NAME, T)                                                             \
    VECTORISED                                                                                  \
    void NAME(const double *restrict X, long n, long D, const double *restrict c,              \
              T *restrict Tf, double *restrict z)                                               \
    {                                                                                           \
        double norm[ROWS];                                                                      \
        for (long i0 = 0; i0 < n; i0 += ROWS) {                                                 \
            long m = n - i0 < ROWS ? n - i0 : ROWS;                                             \
            centre_tile(X, D, i0, m, c, z);                                                     \
            for (long j = 0; j < m; j++) norm[j] = 0.0;                                         \
            for (long d = 0; d < D; d++) {                                                      \
                const double *zd = z + d * ROWS;                                                \
                for (long j = 0; j < m; j++) norm[j] += zd[j] * zd[j];                          \
            }                                                                                   \
            for (long j = 0; j < m; j++) Tf[i0 + j] = (T)norm[j];                               \
            LINEAR_AND_ONES(T, 1);                                                              \
        }                                                                                       \
    }

FEATURES_FULL(features_full_f64, double)
FEATURES_FULL(features_full_f32, float)
FEATURES_DIAG(features_diag_f64, double)
FEATURES_DIAG(features_diag_f32, float)
FEATURES_SPHERICAL(features_spherical_f64, double)
FEATURES_SPHERICAL(features_spherical_f32, float)

/* ---------------------------------------------------------------------------------------- */
/* estep_rows: the whole E-step of a small data set and its statistics, in one call.
 *
 * For rows that fit in cache many times over (hundreds to a few thousand), one sweep over the
 * rows does what the numpy kernels do in some twenty calls: per component the centred rows
 * z = x - mu_k, their squared Mahalanobis distances through the precision's Cholesky factor
 * P_k (Sigma_k^-1 = P_k P_k'), log pi_k + log N(x | mu_k, Sigma_k), the softmax over components
 * (floored as in softmax_*: far terms exactly 0; floor >= -700), and the statistics about the
 * means: N_k, sum q z and sum q z z' in the covariance layout. It is the componentwise kernel
 * of stats.py (stats.chunk_stats_componentwise), so it is exact however far apart the
 * components are. A tile of LEAN_ROWS rows is held transposed, so that every loop runs along
 * rows, in vector registers; sums over a tile's rows go into LANES partial sums. Called
 * through ctypes, it runs without the GIL.
 *
 * kind: 0 full (P: (K, D, D) upper triangular; sxx (K, D, D)), 1 tied (P, sxx: (D, D)),
 *       2 diag (P, sxx: (K, D)), 3 spherical (P, sxx: (K,)).
 * param: means (K, D), then weights pi (K), then P in the layout of kind.
 * w: sample weights (n,) or NULL for ones.
 * out: nk (K), sx (K, D), sxx (layout), then the log-likelihood, the total weight, the worst
 *      log-density among rows of positive weight (+inf for none) and its row, overwritten.
 * scratch: (2 D + K + 5) LEAN_ROWS + K doubles.
 */
#define KIND_FULL 0
#define KIND_TIED 1
#define KIND_DIAG 2
#define KIND_SPHERICAL 3
#define LEAN_ROWS 128
#define LANES 8

static long precision_size(long kind, long K, long D)
{
    switch (kind) {
    case KIND_FULL: return K * D * D;
    case KIND_TIED: return D * D;
    case KIND_DIAG: return K * D;
    default: return K;
    }
}

/* sum_j a_j b_j over m values, in LANES partial sums (each lane its own order: vectorisable
 * without reassociating anything) */
static inline double dot(const double *restrict a, const double *restrict b, long m)
{
    double lane[LANES] = {0.0};
    long j = 0;
    for (; j + LANES <= m; j += LANES)
        for (long l = 0; l < LANES; l++) lane[l] += a[j + l] * b[j + l];
    double total = 0.0;
    for (; j < m; j++) total += a[j] * b[j];
    for (long l = 0; l < LANES; l++) total += lane[l];
    return total;
}

static inline double sum(const double *restrict a, long m)
{
    double lane[LANES] = {0.0};
    long j = 0;
    for (; j + LANES <= m; j += LANES)
        for (long l = 0; l < LANES; l++) lane[l] += a[j + l];
    double total = 0.0;
    for (; j < m; j++) total += a[j];
    for (long l = 0; l < LANES; l++) total += lane[l];
    return total;
}

/* component k's centred rows z (D, m) of the transposed tile xt (D, LEAN_ROWS) */
static inline void centre(const double *restrict xt, const double *restrict mu, long D, long m,
                          double *restrict z)
{
    for (long d = 0; d < D; d++)
        for (long j = 0; j < m; j++) z[d * LEAN_ROWS + j] = xt[d * LEAN_ROWS + j] - mu[d];
}

/* the squared Mahalanobis distances (m,) of the centred rows z through P (kind's factor of
 * one component); y: m values of scratch */
static inline __attribute__((always_inline)) void mahalanobis(
    const long kind, const double *restrict z, const double *restrict P, long D, long m,
    double *restrict maha, double *restrict y)
{
    for (long j = 0; j < m; j++) maha[j] = 0.0;
    if (kind == KIND_FULL || kind == KIND_TIED) {
        /* ||z' P||^2 with P upper triangular: y_b = sum_{a <= b} z_a P_ab */
        for (long b = 0; b < D; b++) {
            for (long j = 0; j < m; j++) y[j] = 0.0;
            for (long a = 0; a <= b; a++) {
                const double p = P[a * D + b];
                const double *za = z + a * LEAN_ROWS;
                for (long j = 0; j < m; j++) y[j] += za[j] * p;
            }
            for (long j = 0; j < m; j++) maha[j] += y[j] * y[j];
        }
    } else if (kind == KIND_DIAG) {
        for (long d = 0; d < D; d++) {
            const double p = P[d];
            const double *zd = z + d * LEAN_ROWS;
            for (long j = 0; j < m; j++) {
                const double t = zd[j] * p;
                maha[j] += t * t;
            }
        }
    } else {
        for (long d = 0; d < D; d++) {
            const double *zd = z + d * LEAN_ROWS;
            for (long j = 0; j < m; j++) maha[j] += zd[j] * zd[j];
        }
        const double p2 = P[0] * P[0];
        for (long j = 0; j < m; j++) maha[j] *= p2;
    }
}

static inline __attribute__((always_inline)) void estep_tiles(
    const long kind, const double *restrict X, const double *restrict w, long n, long D, long K,
    const double *restrict param, double floor_, double *restrict out, double *restrict scratch,
    long with_entropy)
{
    const double *means = param, *pi = param + K * D, *P = param + K * D + K;
    const long sxx_size = precision_size(kind, K, D);
    const long p_step = kind == KIND_FULL ? D * D : kind == KIND_DIAG ? D : kind == KIND_TIED ? 0 : 1;
    double *nk = out, *sx = out + K, *sxx = out + K + K * D;
    double *result = sxx + sxx_size;
    double *xt = scratch, *z = xt + D * LEAN_ROWS, *lp = z + D * LEAN_ROWS;
    double *top = lp + K * LEAN_ROWS, *scale = top + LEAN_ROWS, *y = scale + LEAN_ROWS;
    double *maha = y + LEAN_ROWS, *qa = maha + LEAN_ROWS, *offset = qa + LEAN_ROWS;
    const double LOG_2PI = 1.8378770664093453;
    const double exp_floor = exp_nonpositive(floor_);

    /* log pi_k - D/2 log 2 pi + log det P_k (log 0 = -inf: an empty component) */
    for (long k = 0; k < K; k++) {
        const double *Pk = P + k * p_step;
        double log_det = 0.0;
        if (kind == KIND_FULL || kind == KIND_TIED) {
            for (long d = 0; d < D; d++) log_det += log(Pk[d * D + d]);
        } else if (kind == KIND_DIAG) {
            for (long d = 0; d < D; d++) log_det += log(Pk[d]);
        } else {
            log_det = (double)D * log(Pk[0]);
        }
        offset[k] = log(pi[k]) - 0.5 * (double)D * LOG_2PI + log_det;
    }
    memset(out, 0, (size_t)(K + K * D + sxx_size) * sizeof(double));
    double loglik = 0.0, count = 0.0, worst = INFINITY, entropy = 0.0;
    long worst_row = 0;

    for (long i0 = 0; i0 < n; i0 += LEAN_ROWS) {
        const long m = n - i0 < LEAN_ROWS ? n - i0 : LEAN_ROWS;
        for (long j = 0; j < m; j++)
            for (long d = 0; d < D; d++) xt[d * LEAN_ROWS + j] = X[(i0 + j) * D + d];
        /* log pi_k + log N(x_j | mu_k, Sigma_k) and the maximum over k */
        for (long k = 0; k < K; k++) {
            centre(xt, means + k * D, D, m, z);
            mahalanobis(kind, z, P + k * p_step, D, m, maha, y);
            double *row = lp + k * LEAN_ROWS;
            for (long j = 0; j < m; j++) row[j] = offset[k] - 0.5 * maha[j];
        }
        for (long j = 0; j < m; j++) top[j] = lp[j];
        for (long k = 1; k < K; k++) {
            const double *row = lp + k * LEAN_ROWS;
            for (long j = 0; j < m; j++) top[j] = row[j] > top[j] ? row[j] : top[j];
        }
        /* the floored softmax: responsibilities times the rows' weights */
        for (long j = 0; j < m; j++) scale[j] = 0.0;
        for (long k = 0; k < K; k++) {
            double *row = lp + k * LEAN_ROWS;
            for (long j = 0; j < m; j++) {
                double t = row[j] - top[j];
                t = t > floor_ ? t : floor_;
                row[j] = exp_nonpositive(t) - exp_floor;
                scale[j] += row[j];
            }
        }
        for (long j = 0; j < m; j++) {
            const double log_density = top[j] + log(scale[j]);
            const double wj = w ? w[i0 + j] : 1.0;
            loglik += wj * log_density;
            count += wj;
            if ((!w || wj > 0.0) && log_density < worst) {
                worst = log_density;
                worst_row = i0 + j;
            }
            scale[j] = 1.0 / scale[j];
        }
        for (long k = 0; k < K; k++) {
            double *q = lp + k * LEAN_ROWS;
            for (long j = 0; j < m; j++) q[j] *= scale[j];
            if (with_entropy) /* -sum t log t of the rows' responsibilities, 0 log 0 = 0 */
                for (long j = 0; j < m; j++)
                    if (q[j] > 0.0) entropy -= q[j] * log(q[j]);
            if (w)
                for (long j = 0; j < m; j++) q[j] *= w[i0 + j];
        }
        /* the statistics about the means */
        for (long k = 0; k < K; k++) {
            const double *q = lp + k * LEAN_ROWS;
            centre(xt, means + k * D, D, m, z);
            nk[k] += sum(q, m);
            double *norm = maha;
            if (kind == KIND_SPHERICAL)
                for (long j = 0; j < m; j++) norm[j] = 0.0;
            for (long a = 0; a < D; a++) {
                const double *za = z + a * LEAN_ROWS;
                for (long j = 0; j < m; j++) qa[j] = q[j] * za[j];
                sx[k * D + a] += sum(qa, m);
                if (kind == KIND_FULL || kind == KIND_TIED) {
                    double *S = sxx + (kind == KIND_FULL ? k * D * D : 0) + a * D;
                    for (long b = a; b < D; b++) S[b] += dot(qa, z + b * LEAN_ROWS, m);
                } else if (kind == KIND_DIAG) {
                    sxx[k * D + a] += dot(qa, za, m);
                } else {
                    for (long j = 0; j < m; j++) norm[j] += za[j] * za[j];
                }
            }
            if (kind == KIND_SPHERICAL) sxx[k] += dot(q, norm, m);
        }
    }
    /* the lower triangles from the upper ones */
    if (kind == KIND_FULL || kind == KIND_TIED) {
        for (long k = 0; k < (kind == KIND_FULL ? K : 1); k++) {
            double *S = sxx + k * D * D;
            for (long a = 0; a < D; a++)
                for (long b = 0; b < a; b++) S[a * D + b] = S[b * D + a];
        }
    }
    result[0] = loglik;
    result[1] = count;
    result[2] = worst;
    result[3] = (double)worst_row;
    if (with_entropy) result[4] = entropy;
}

#define ESTEP(NAME, KIND)                                                                       \
    VECTORISED static void NAME(const double *X, const double *w, long n, long D, long K,      \
                                const double *param, double floor_, double *out,               \
                                double *scratch, long with_entropy)                            \
    {                                                                                           \
        estep_tiles(KIND, X, w, n, D, K, param, floor_, out, scratch, with_entropy);            \
    }

ESTEP(estep_full, KIND_FULL)
ESTEP(estep_tied, KIND_TIED)
ESTEP(estep_diag, KIND_DIAG)
ESTEP(estep_spherical, KIND_SPHERICAL)

static void estep_kind(long kind, const double *X, const double *w, long n, long D, long K,
                       const double *param, double floor_, double *out, double *scratch,
                       long with_entropy)
{
    switch (kind) {
    case KIND_FULL: estep_full(X, w, n, D, K, param, floor_, out, scratch, with_entropy); break;
    case KIND_TIED: estep_tied(X, w, n, D, K, param, floor_, out, scratch, with_entropy); break;
    case KIND_DIAG: estep_diag(X, w, n, D, K, param, floor_, out, scratch, with_entropy); break;
    default: estep_spherical(X, w, n, D, K, param, floor_, out, scratch, with_entropy); break;
    }
}

void estep_rows(long kind, const double *X, const double *w, long n, long D, long K,
                const double *param, double floor_, double *out, double *scratch)
{
    estep_kind(kind, X, w, n, D, K, param, floor_, out, scratch, 0);
}

/* estep_rows with, in out's fifth value after the statistics, the classification entropy
 * -sum_n sum_k t_nk log t_nk of the responsibilities t (rows unweighted; a fit's final
 * E-step, mixture.py) */
void estep_rows_entropy(long kind, const double *X, const double *w, long n, long D, long K,
                        const double *param, double floor_, double *out, double *scratch)
{
    estep_kind(kind, X, w, n, D, K, param, floor_, out, scratch, 1);
}

/* ---------------------------------------------------------------------------------------- */
/* feature_sums_full_*: the natural kernel's second product G = q T' (K, F) for full covariances
 * without the GEMM, for blocks where most responsibilities are negligible (a separated mixture
 * has about one component per row). A row whose responsibility q_kn for component k is at most
 * `negligible` times the block's largest for k adds less to k's sums than rounding that
 * largest term does (covariance.NEGLIGIBLE; the componentwise kernel leaves such rows out
 * alike), so only the pairs above it count. Per component, its rows' centred values z = x - c
 * are gathered features-major (D, m), SUM_ROWS of them at a time, and each of features_full's
 * sums over them, sum_n q_n z_a z_b for a <= b, sum_n q_n z_a and sum_n q_n, is a dot product
 * along those rows in LANES partial sums (four at a time, which share the loads of q z_a and
 * keep four chains of additions in flight), added to G: F m multiply-adds for the component's
 * m rows where the GEMM spends F n.
 *
 * resp: (K, n) weighted responsibilities, double or float (summed in double either way); G:
 * (K, F) doubles, overwritten (F = D(D+1)/2 + D + 1); scratch: K + 2 SUM_ROWS + 2 D (SUM_ROWS +
 * 16) doubles. The reference is the GEMM (stats._times_transposed) over the same pairs. Returns
 * the number of (row, component) pairs summed; -1, writing nothing, when there are more than
 * max_pairs (the GEMM * is then faster).
 */
static inline __attribute__((always_inline)) double lanes_max(const double *restrict a,
                                                              long m)
{
    double lane[LANES] = {0.0};
    long j = 0;
    for (; j + LANES <= m; j += LANES)
        for (long l = 0; l < LANES; l++) lane[l] = a[j + l] > lane[l] ? a[j + l] : lane[l];
    double top = 0.0;
    for (; j < m; j++) top = a[j] > top ? a[j] : top;
    for (long l = 0; l < LANES; l++) top = lane[l] > top ? lane[l] : top;
    return top;
}

/* eight doubles as one value (GCC and clang lower it to the widest vector unit of the clone,
 * AVX-512, AVX2 or SSE2), loaded from any address */
typedef double lanes8 __attribute__((vector_size(8 * sizeof(double)), aligned(sizeof(double))));

/* out[i] = dot(a, b + i * stride, m) for i < 4, each summed in dot's order (LANES = 8) */
static inline __attribute__((always_inline)) void dot4(
    const double *restrict a, const double *restrict b, long stride, long m, double *restrict out)
{
    lanes8 s0 = {0.0}, s1 = {0.0}, s2 = {0.0}, s3 = {0.0};
    const double *b0 = b, *b1 = b + stride, *b2 = b + 2 * stride, *b3 = b + 3 * stride;
    long j = 0;
    for (; j + 8 <= m; j += 8) {
        const lanes8 x = *(const lanes8 *)(a + j);
        s0 += x * *(const lanes8 *)(b0 + j);
        s1 += x * *(const lanes8 *)(b1 + j);
        s2 += x * *(const lanes8 *)(b2 + j);
        s3 += x * *(const lanes8 *)(b3 + j);
    }
    double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
    for (; j < m; j++) {
        t0 += a[j] * b0[j];
        t1 += a[j] * b1[j];
        t2 += a[j] * b2[j];
        t3 += a[j] * b3[j];
    }
    for (long l = 0; l < 8; l++) {
        t0 += s0[l];
        t1 += s1[l];
        t2 += s2[l];
        t3 += s3[l];
    }
    out[0] = t0, out[1] = t1, out[2] = t2, out[3] = t3;
}

#define FEATURE_SUMS_FULL(NAME, T, TOP)                                                            \
    VECTORISED                                                                                     \
    long NAME(const double *restrict X, long n, long D, const double *restrict c,                  \
              const T *restrict resp, long K, double negligible, long max_pairs,                   \
              double *restrict G, double *restrict scratch)                                        \
    {                                                                                              \
        const long nq = D * (D + 1) / 2, F = nq + D + 1;                                           \
        double *restrict floor_k = scratch, *restrict q = scratch + K;                             \
        long *restrict index = (long *)(q + SUM_ROWS);                                             \
        double *restrict Z = (double *)(index + SUM_ROWS);                                        \
        double *restrict QZ = Z + D * (SUM_ROWS + 16);                                             \
        double part[4];                                                                            \
        long pairs = 0;                                                                            \
        for (long k = 0; k < K; k++) {                                                             \
            const T *row = resp + k * n;                                                           \
            const double floor = TOP(row, n) * negligible;                                         \
            long count = 0;                                                                        \
            for (long j = 0; j < n; j++) count += (double)row[j] > floor;                          \
            floor_k[k] = floor;                                                                    \
            pairs += count;                                                                        \
            if (pairs > max_pairs) return -1;                                                      \
        }                                                                                          \
        for (long i = 0; i < K * F; i++) G[i] = 0.0;                                               \
        for (long k = 0; k < K; k++) {                                                             \
            const T *row = resp + k * n;                                                           \
            const double floor = floor_k[k];                                                       \
            double *restrict g = G + k * F;                                                        \
            for (long j = 0; j < n;) {                                                             \
                /* the next (up to) SUM_ROWS rows of the component, gathered */                    \
                long m = 0;                                                                        \
                for (; j < n && m < SUM_ROWS; j++) {                                               \
                    index[m] = j;                                                                  \
                    q[m] = (double)row[j];                                                         \
                    m += (double)row[j] > floor;                                                   \
                }                                                                                  \
                if (m == 0) break;                                                                 \
                /* rows of Z and QZ `stride` apart: a multiple of 8 doubles but not of 256     \
                 * (columns written together 2 KB apart would share cache sets) */                 \
                long stride = (m + 7) / 8 * 8 + 8;                                                 \
                stride += stride % 256 == 0 ? 8 : 0;                                               \
                for (long i = 0; i < m; i++) {                                                     \
                    const double *x = X + index[i] * D;                                            \
                    for (long d = 0; d < D; d++) Z[d * stride + i] = x[d] - c[d];                  \
                }                                                                                  \
                for (long d = 0; d < D; d++)                                                       \
                    for (long i = 0; i < m; i++) QZ[d * stride + i] = q[i] * Z[d * stride + i];    \
                long f = 0;                                                                        \
                for (long a = 0; a < D; a++) {                                                     \
                    const double *qa = QZ + a * stride;                                            \
                    long b = a;                                                                    \
                    for (; b + 4 <= D; b += 4, f += 4) {                                           \
                        dot4(qa, Z + b * stride, stride, m, part);                                 \
                        for (long i = 0; i < 4; i++) g[f + i] += part[i];                          \
                    }                                                                              \
                    for (; b < D; b++) g[f++] += dot(qa, Z + b * stride, m);                       \
                }                                                                                  \
                for (long d = 0; d < D; d++) g[nq + d] += sum(QZ + d * stride, m);                 \
                g[F - 1] += sum(q, m);                                                             \
            }                                                                                      \
        }                                                                                          \
        return pairs;                                                                              \
    }

/* the largest of m floats (as double) */
static inline __attribute__((always_inline)) double top_f32(const float *restrict a, long m)
{
    float top = 0.0f;
    for (long j = 0; j < m; j++) top = a[j] > top ? a[j] : top;
    return (double)top;
}

FEATURE_SUMS_FULL(feature_sums_full_f64, double, lanes_max)
FEATURE_SUMS_FULL(feature_sums_full_f32, float, top_f32)

/* precision_factors: P_k = C_k^-T for the lower Cholesky factors C_k of K covariances
 * (K, D, D), the precisions' upper triangular Cholesky factors (Sigma^-1 = P P') that
 * covariance.py computes with LAPACK's potrf and trtri, for small D without a call per
 * component. Reads the lower triangles. Returns -1, or the first component whose matrix is not
 * finite, not positive definite, or whose factor is not finite (covariance.py then takes the
 * LAPACK path, which says which and why). */
long precision_factors(const double *restrict S, long K, long D, double *restrict P,
                       double *restrict L)
{
    for (long k = 0; k < K; k++) {
        const double *A = S + k * D * D;
        double *Pk = P + k * D * D;
        for (long i = 0; i < D; i++)
            for (long j = 0; j <= i; j++)
                if (!isfinite(A[i * D + j])) return k;
        /* A = L L' (L lower) */
        for (long j = 0; j < D; j++) {
            double s = A[j * D + j];
            for (long p = 0; p < j; p++) s -= L[j * D + p] * L[j * D + p];
            if (!(s > 0.0)) return k;
            const double diagonal = sqrt(s);
            L[j * D + j] = diagonal;
            for (long i = j + 1; i < D; i++) {
                double t = A[i * D + j];
                for (long p = 0; p < j; p++) t -= L[i * D + p] * L[j * D + p];
                L[i * D + j] = t / diagonal;
            }
        }
        /* M = L^-1 (lower), column by column, stored transposed: P = M' (upper) */
        memset(Pk, 0, (size_t)(D * D) * sizeof(double));
        for (long j = 0; j < D; j++) {
            Pk[j * D + j] = 1.0 / L[j * D + j];
            for (long i = j + 1; i < D; i++) {
                double t = 0.0;
                for (long p = j; p < i; p++) t += L[i * D + p] * Pk[j * D + p];
                Pk[j * D + i] = -t / L[i * D + i];
            }
        }
        for (long i = 0; i < D * D; i++)
            if (!isfinite(Pk[i])) return k;
    }
    return -1;
}

/* The inner iterations of constrained.py's M-steps for small D, one call per M-step instead
 * of a dozen numpy calls per inner step (constrained.py keeps the numpy loops: they are the
 * reference, and run where these decline). Each does exactly the numpy loop's arithmetic in
 * the same order of operations, so the two agree to rounding; each returns the number of
 * inner steps once the surrogate's relative change is at most tol (or it is not finite), 0
 * when max_iter steps did not get there, -1 when it declines (the numpy loop then runs from
 * the same start). result receives the last objective and the one before it. */

static double diag_objective_c(const double *S, const double *nk, const double *v, long K,
                               long D)
{
    double total = 0.0;
    for (long k = 0; k < K; k++)
        for (long j = 0; j < D; j++)
            total += nk[k] * log(v[k * D + j]) + S[k * D + j] / v[k * D + j];
    return total;
}

static int inner_converged(double previous, double current, double tol)
{
    if (!isfinite(current)) return 1;
    return fabs(previous - current) <= tol * (1.0 + fabs(current));
}

/* S_ki = (D' W_k D)_ii for the K matrices W (K, D, D): constrained._rotated_diagonals */
static void rotated_diagonals(const double *W, const double *Dm, long K, long D, double *S)
{
    for (long k = 0; k < K; k++) {
        const double *Wk = W + k * D * D;
        for (long i = 0; i < D; i++) {
            double s = 0.0;
            for (long j = 0; j < D; j++) {
                double wd = 0.0;
                for (long l = 0; l < D; l++) wd += Wk[j * D + l] * Dm[l * D + i];
                s += Dm[j * D + i] * wd;
            }
            S[k * D + i] = s;
        }
    }
}

/* WD_k = W_k Dm for the K matrices W (K, D, D), in rotated_diagonals's order of operations */
static void times_orientation(const double *W, const double *Dm, long K, long D, double *WD)
{
    for (long k = 0; k < K; k++) {
        const double *Wk = W + k * D * D;
        double *out = WD + k * D * D;
        for (long j = 0; j < D; j++)
            for (long i = 0; i < D; i++) {
                double wd = 0.0;
                for (long l = 0; l < D; l++) wd += Wk[j * D + l] * Dm[l * D + i];
                out[j * D + i] = wd;
            }
    }
}

/* the exact eigenvalue step of EVE (equal_volume: constrained.evi) or VVE (constrained.vvi) */
static void eigenvalue_step(const double *S, const double *nk, long K, long D, long equal_volume,
                            double total, double *g, double *v)
{
    if (equal_volume) {
        double gsum = 0.0;
        for (long k = 0; k < K; k++) {
            double logs = 0.0;
            for (long j = 0; j < D; j++) logs += log(S[k * D + j]);
            g[k] = exp(logs / (double)D);
            gsum += g[k];
        }
        const double lambda = gsum / total;
        for (long k = 0; k < K; k++)
            for (long j = 0; j < D; j++) v[k * D + j] = S[k * D + j] / g[k] * lambda;
    } else {
        for (long k = 0; k < K; k++)
            for (long j = 0; j < D; j++) v[k * D + j] = S[k * D + j] / nk[k];
    }
}

/* constrained.common_orientation's loop (EVE: equal_volume 1, VVE: 0): sweeps of plane
 * rotations of the orientation, each pair (i, j) of its columns turned by the angle that
 * minimises sum_k tr(W_k D M_k D') with M_k = diag(1 / v_k) held, exactly (a 2 x 2 problem:
 * with A_k = D' W_k D, the pair's part is alpha cos 2t + beta sin 2t + const, alpha =
 * sum_k (M_ki - M_kj)(A_kii - A_kjj) / 2, beta = sum_k (M_ki - M_kj) A_kij), then the exact
 * eigenvalue step. W (K, D, D) the scatters, nk (K,), Dm (D, D) the orientation and v (K, D)
 * the variances, both read as the start and overwritten with the result; objective the
 * start's; work (K + 7) D^2 + 3 K D doubles. A sweep whose objective is above the one before
 * (rounding: every rotation lowers it in exact arithmetic) is undone and ends the loop
 * (counted as converged). */
long orientation_sweeps(const double *restrict W, const double *restrict nk, long K, long D,
                        long equal_volume, double objective, double tol, long max_iter,
                        double *restrict Dm, double *restrict v, double *restrict work,
                        double *restrict result)
{
    double *A = work, *M = A + K * D * D, *S = M + K * D, *Dlast = S + K * D;
    double *vlast = Dlast + D * D; /* the sweep before, to undo one */
    double total = 0.0, previous = objective;
    for (long k = 0; k < K; k++) total += nk[k];
    times_orientation(W, Dm, K, D, A); /* W_k D, then D' (W_k D) */
    for (long k = 0; k < K; k++) {
        double *Ak = A + k * D * D;
        for (long i = 0; i < D; i++)
            for (long j = 0; j < D; j++) {
                double t = 0.0;
                for (long l = 0; l < D; l++) t += Dm[l * D + i] * Ak[l * D + j];
                Dlast[i * D + j] = t; /* D' W_k D, before it is symmetrised */
            }
        for (long i = 0; i < D; i++)
            for (long j = 0; j < D; j++)
                Ak[i * D + j] = i <= j ? Dlast[i * D + j] : Dlast[j * D + i];
    }
    for (long it = 0; it < max_iter; it++) {
        memcpy(Dlast, Dm, (size_t)(D * D) * sizeof(double));
        memcpy(vlast, v, (size_t)(K * D) * sizeof(double));
        for (long i = 0; i < K * D; i++) M[i] = 1.0 / v[i];
        for (long i = 0; i < D - 1; i++)
            for (long j = i + 1; j < D; j++) {
                double alpha = 0.0, beta = 0.0;
                for (long k = 0; k < K; k++) {
                    const double *Ak = A + k * D * D, m = M[k * D + i] - M[k * D + j];
                    alpha += 0.5 * m * (Ak[i * D + i] - Ak[j * D + j]);
                    beta += m * Ak[i * D + j];
                }
                if (!(beta != 0.0 || alpha > 0.0)) continue; /* the pair is optimal (or NaN) */
                const double half = 0.5 * atan2(-beta, -alpha);
                const double c = cos(half), s = sin(half);
                /* columns i, j of D and rows and columns i, j of every A_k: D R, R' A_k R */
                for (long r = 0; r < D; r++) {
                    const double di = Dm[r * D + i], dj = Dm[r * D + j];
                    Dm[r * D + i] = c * di + s * dj;
                    Dm[r * D + j] = c * dj - s * di;
                }
                for (long k = 0; k < K; k++) {
                    double *Ak = A + k * D * D;
                    const double aii = Ak[i * D + i], ajj = Ak[j * D + j], aij = Ak[i * D + j];
                    for (long r = 0; r < D; r++) {
                        if (r == i || r == j) continue;
                        const double ari = Ak[r * D + i], arj = Ak[r * D + j];
                        Ak[r * D + i] = Ak[i * D + r] = c * ari + s * arj;
                        Ak[r * D + j] = Ak[j * D + r] = c * arj - s * ari;
                    }
                    Ak[i * D + i] = c * c * aii + 2.0 * c * s * aij + s * s * ajj;
                    Ak[j * D + j] = s * s * aii - 2.0 * c * s * aij + c * c * ajj;
                    Ak[i * D + j] = Ak[j * D + i] = (c * c - s * s) * aij + c * s * (ajj - aii);
                }
            }
        for (long k = 0; k < K; k++)
            for (long i = 0; i < D; i++) S[k * D + i] = A[k * D * D + i * D + i];
        /* EVE: A_k = S_k / g(S_k), lambda = sum_k g(S_k) / N; VVE: v_k = S_k / N_k */
        eigenvalue_step(S, nk, K, D, equal_volume, total, M, v); /* M holds g */
        previous = objective;
        objective = diag_objective_c(S, nk, v, K, D);
        if (objective > previous) { /* rounding raised it: the sweep before stands */
            memcpy(Dm, Dlast, (size_t)(D * D) * sizeof(double));
            memcpy(v, vlast, (size_t)(K * D) * sizeof(double));
            result[0] = result[1] = previous;
            return it + 1;
        }
        result[0] = objective;
        result[1] = previous;
        if (inner_converged(previous, objective, tol)) return it + 1;
    }
    return 0;
}

/* constrained.vei's loop: S (K, D) diagonal statistics, nk (K,), volume (K,) the start
 * (overwritten), v (K, D) the variances out, shape D doubles of scratch. */
long vei_loop(const double *restrict S, const double *restrict nk, long K, long D,
              double objective, double tol, long max_iter, double *restrict volume,
              double *restrict v, double *restrict shape, double *restrict result)
{
    double previous = objective;
    for (long it = 0; it < max_iter; it++) {
        double logs = 0.0;
        for (long j = 0; j < D; j++) {
            double s = 0.0;
            for (long k = 0; k < K; k++) s += S[k * D + j] / volume[k];
            shape[j] = s;
            logs += log(s);
        }
        const double g = exp(logs / (double)D);
        for (long j = 0; j < D; j++) shape[j] /= g;
        for (long k = 0; k < K; k++) {
            double s = 0.0;
            for (long j = 0; j < D; j++) s += S[k * D + j] / shape[j];
            volume[k] = s / ((double)D * nk[k]);
            for (long j = 0; j < D; j++) v[k * D + j] = volume[k] * shape[j];
        }
        previous = objective;
        objective = diag_objective_c(S, nk, v, K, D);
        result[0] = objective;
        result[1] = previous;
        if (inner_converged(previous, objective, tol)) return it + 1;
    }
    return 0;
}

/* symmetric_eigen: the eigenvalues (K, D), descending, and eigenvectors (K, D, D, as columns)
 * of K small symmetric matrices (K, D, D), by cyclic Jacobi rotations (each zeroes one
 * off-diagonal pair, A' = J' A J, and is accumulated in V = prod J), for constrained.py's
 * free orientations without LAPACK's per-call overhead; numpy's eigh is the reference (the
 * same values to rounding, the same vectors up to sign). A is D^2 doubles of scratch. Returns
 * -1, or the first matrix that is not finite or whose rotations did not settle. */
long symmetric_eigen(const double *restrict S, long K, long D, double *restrict values,
                     double *restrict vectors, double *restrict A)
{
    for (long m = 0; m < K; m++) {
        double *V = vectors + m * D * D, *w = values + m * D;
        memcpy(A, S + m * D * D, (size_t)(D * D) * sizeof(double));
        for (long i = 0; i < D * D; i++) {
            if (!isfinite(A[i])) return m;
            V[i] = 0.0;
        }
        for (long i = 0; i < D; i++) V[i * D + i] = 1.0;
        int settled = 0;
        for (int sweep = 0; sweep < 64 && !settled; sweep++) {
            settled = 1;
            for (long p = 0; p < D - 1; p++)
                for (long q = p + 1; q < D; q++) {
                    const double apq = A[p * D + q], app = A[p * D + p], aqq = A[q * D + q];
                    if (!(fabs(apq) > 2.2e-16 * sqrt(fabs(app * aqq))) || apq == 0.0) {
                        A[p * D + q] = A[q * D + p] = 0.0; /* below rounding: already diagonal */
                        continue;
                    }
                    settled = 0;
                    const double theta = (aqq - app) / (2.0 * apq);
                    const double t = copysign(1.0, theta) / (fabs(theta) + sqrt(theta * theta + 1.0));
                    const double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                    for (long r = 0; r < D; r++) {
                        if (r != p && r != q) {
                            const double arp = A[r * D + p], arq = A[r * D + q];
                            A[r * D + p] = A[p * D + r] = c * arp - s * arq;
                            A[r * D + q] = A[q * D + r] = s * arp + c * arq;
                        }
                        const double vrp = V[r * D + p], vrq = V[r * D + q];
                        V[r * D + p] = c * vrp - s * vrq;
                        V[r * D + q] = s * vrp + c * vrq;
                    }
                    A[p * D + p] = app - t * apq;
                    A[q * D + q] = aqq + t * apq;
                    A[p * D + q] = A[q * D + p] = 0.0;
                }
        }
        if (!settled) return m;
        for (long i = 0; i < D; i++) w[i] = A[i * D + i];
        /* descending, the vectors' columns following their values (insertion sort) */
        for (long i = 1; i < D; i++)
            for (long j = i; j > 0 && w[j] > w[j - 1]; j--) {
                const double tmp = w[j];
                w[j] = w[j - 1];
                w[j - 1] = tmp;
                for (long r = 0; r < D; r++) {
                    const double u = V[r * D + j];
                    V[r * D + j] = V[r * D + j - 1];
                    V[r * D + j - 1] = u;
                }
            }
    }
    return -1;
}

/* constrained.common_orientation whole, for small D: the candidate starts (the eigenvectors of
 * each of the n_pooled matrices pooled (n_pooled, D, D)), their exact eigenvalue steps and
 * objectives, the best (the first of the least, as Python's min), then orientation_sweeps
 * from it. Dm (D, D) and v
 * (K, D) receive the result; work (K + n_pooled) (D^2 + D) + (K + 8) D^2 + 5 K D + 2 K
 * doubles.
 * Returns orientation_sweeps's code, or -2 when the best start's objective is not finite (a
 * zero variance: Dm and v hold that start, the caller's positivity check says so), or -1 (a
 * scatter that is not finite). */
long common_orientation(const double *restrict W, const double *restrict nk, long K, long D,
                        const double *restrict pooled, long n_pooled, long equal_volume,
                        double tol, long max_iter, double *restrict Dm, double *restrict v,
                        double *restrict work, double *restrict result)
{
    double *values = work, *vectors = values + (K + n_pooled) * D;
    double *scratch = vectors + (K + n_pooled) * D * D, *S = scratch + D * D, *v0 = S + K * D;
    double *g = v0 + K * D, *loop = g + 2 * K;
    for (long i = 0; i < K * D * D; i++)
        if (!isfinite(W[i])) return -1;
    double *cvalues = values + K * D, *cvectors = vectors + K * D * D;
    if (symmetric_eigen(pooled, n_pooled, D, cvalues, cvectors, scratch) >= 0) return -1;
    double total = 0.0;
    for (long k = 0; k < K; k++) total += nk[k];
    double best = 0.0;
    for (long c = 0; c < n_pooled; c++) {
        const double *D0 = cvectors + c * D * D;
        rotated_diagonals(W, D0, K, D, S);
        eigenvalue_step(S, nk, K, D, equal_volume, total, g, v0);
        const double objective = diag_objective_c(S, nk, v0, K, D);
        if (c == 0 || objective < best) {
            best = objective;
            memcpy(Dm, D0, (size_t)(D * D) * sizeof(double));
            memcpy(v, v0, (size_t)(K * D) * sizeof(double));
        }
    }
    result[0] = result[1] = best;
    if (!isfinite(best)) return -2;
    return orientation_sweeps(W, nk, K, D, equal_volume, best, tol, max_iter, Dm, v, loop,
                              result);
}

/* ---------------------------------------------------------------------------------------- */
/* univariate EM: a whole fit of mclust's one-feature models E and V (lean.py), in one call.
 *
 * An iteration on one column of a few hundred rows is a few microseconds of arithmetic; run
 * from Python (loop.run_em: the lean pass, mstep.estimate, the Params and the checks) it is
 * some forty. So the whole loop of run_em runs here, each step the Python one's arithmetic in
 * its order, to the bit: the E-step is estep_rows's (spherical layout, D = 1), the M-step
 * mstep.estimate's with covariance.py's Spherical.scatter and the model's constrain (E: the
 * one variance sum W_k / sum N_k; V: W_k / N_k), their totals numpy's pairwise sums, the
 * precision factors 1 / sqrt(variance), the lower bound loglik / n, and both of run_em's
 * stopping rules ('mean': |change| < tol; 'relative': mclust's |change| n / (1 + |L|) < tol).
 *
 * An iteration whose lower bound is not finite, whose variance is not positive, or in which a
 * component collapses (N_k < collapsed n, with a finite worst log-density) is not done here:
 * the loop stops before it, with the parameters it started from; Python's loop does that
 * iteration (its error, or its re-initialisation and warning), then calls this again.
 *
 * equal: 1 for E, 0 for V.  X: the rows (n,), w: their weights or NULL.
 * param (4 K): means, weights, precision factors (estep_rows's layout), then the variances;
 *   read at the start, overwritten by every finished iteration.
 * prior (4): a conjugate prior's terms (univariate_mstep), or NULL for none.
 * previous: the lower bound the first iteration is compared with (-inf, or a warm start's).
 * history: the lower bounds of the finished iterations (max_iter doubles).
 * work: (K + 7) LEAN_ROWS + 10 K + 4 doubles.  result[0]: the iterations finished.
 * Returns 1 when converged, 0 at max_iter, 2 when an iteration is handed back to Python.
 */

/* numpy's sum of n doubles, to the bit: 0 + its pairwise sum (a plain loop under 8 values,
 * 8 partial sums up to 128, halves above) */
static double numpy_pairwise(const double *a, long n)
{
    if (n < 8) {
        double res = 0.0;
        for (long i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (long j = 0; j < 8; j++) r[j] = a[j];
        long i = 8;
        for (; i < n - (n % 8); i += 8)
            for (long j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    long half = n / 2;
    half -= half % 8;
    return numpy_pairwise(a, half) + numpy_pairwise(a + half, n - half);
}

static double numpy_sum(const double *a, long n) { return 0.0 + numpy_pairwise(a, n); }

/* loop.run_em's test for a re-seed: some N_k below collapsed * n (loop._collapsed), with a
 * finite worst log-density (a row to re-seed it at); shared by the whole-fit loops */
static int collapse_to_reseed(const double *nk, long K, double collapsed, double count,
                              double worst)
{
    const double threshold = collapsed * count;
    int collapse = 0;
    for (long k = 0; k < K; k++) collapse |= nk[k] < threshold;
    return collapse && isfinite(worst);
}

/* run_em's change of the lower bound for its stopping rule: |L_t - L_{t-1}| on the mean, or
 * ('relative', mclust's) times n / (1 + |L|) on the total log-likelihood L */
static double bound_change(double lower_bound, double previous, double loglik, double count,
                           long relative)
{
    double change = fabs(lower_bound - previous);
    if (relative) change *= count / (1.0 + fabs(loglik));
    return change;
}

/* mstep.estimate and Spherical.precisions_cholesky for D = 1: from the statistics (nk, sx,
 * sxx: 3 K) about the means mu, the next means, weights, precision factors and variances
 * (next: 4 K); nkf, scatter: K each. With a conjugate prior (prior: its shrinkage kappa, mean
 * mu_P, scale divided among the components that share it, and the count it adds to each N_k;
 * NULL for none) the posterior mode, as estimate and Covariance.posterior_covariances compute
 * it. Returns 0, or -1 when a variance is not positive. */
static int univariate_mstep(long equal, long K, const double *restrict stats,
                            const double *restrict mu, double reg_covar, double nk_floor,
                            const double *restrict prior, double *restrict next,
                            double *restrict nkf, double *restrict scatter)
{
    const double *nk = stats, *sx = stats + K, *sxx = stats + 2 * K;
    double *means = next, *weights = next + K, *prec = next + 2 * K, *var = next + 3 * K;
    for (long k = 0; k < K; k++) nkf[k] = nk[k] + nk_floor;
    const double total = numpy_sum(nkf, K);
    for (long k = 0; k < K; k++) {
        const double d = sx[k] / nkf[k];
        weights[k] = nkf[k] / total;
        means[k] = mu[k] + d;
        scatter[k] = nkf[k] * (fabs(sxx[k] / nkf[k] - d * d) + reg_covar);
    }
    double counts_total = total;
    if (prior) {
        const double kappa = prior[0], mean = prior[1], scale = prior[2], count = prior[3];
        for (long k = 0; k < K; k++) {
            const double xbar = means[k], delta = xbar - mean;
            means[k] = (nkf[k] * xbar + kappa * mean) / (nkf[k] + kappa);
            const double pull = kappa * nkf[k] / (nkf[k] + kappa);
            scatter[k] = scatter[k] + (pull * (delta * delta) + scale) / 1.0;
            nkf[k] = nkf[k] + count; /* from here on the counts the covariances divide by */
        }
        if (equal) counts_total = numpy_sum(nkf, K);
    }
    if (equal) {
        const double shared = numpy_sum(scatter, K) / counts_total;
        for (long k = 0; k < K; k++) var[k] = shared;
    } else {
        for (long k = 0; k < K; k++) var[k] = scatter[k] / nkf[k];
    }
    for (long k = 0; k < K; k++) {
        if (!(var[k] > 0.0)) return -1;
        prec[k] = 1.0 / sqrt(var[k]);
    }
    return 0;
}

long univariate_em(long equal, const double *X, const double *w, long n, long K,
                   double *restrict param, double reg_covar, double nk_floor, double collapsed,
                   const double *restrict prior, double tol, long relative, long max_iter,
                   double floor_, double previous, double *restrict history,
                   double *restrict work, double *restrict result)
{
    double *out = work, *scratch = out + 3 * K + 4;
    double *next = scratch + (K + 7) * LEAN_ROWS + K, *nkf = next + 4 * K, *scatter = nkf + K;
    long steps = 0, status = 0;
    while (steps < max_iter) {
        estep_spherical(X, w, n, 1, K, param, floor_, out, scratch, 0);
        const double loglik = out[3 * K], count = out[3 * K + 1], worst = out[3 * K + 2];
        const double lower_bound = loglik / count;
        if (!isfinite(lower_bound) ||
            univariate_mstep(equal, K, out, param, reg_covar, nk_floor, prior, next, nkf,
                             scatter) < 0) {
            status = 2;
            break;
        }
        if (collapse_to_reseed(out, K, collapsed, count, worst)) {
            status = 2;
            break;
        }
        memcpy(param, next, (size_t)(4 * K) * sizeof(double));
        history[steps++] = lower_bound;
        const double change = bound_change(lower_bound, previous, loglik, count, relative);
        previous = lower_bound;
        if (change < tol) {
            status = 1;
            break;
        }
    }
    result[0] = (double)steps;
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* closed-form M-steps: the whole M-step of a closed-form model in one call (mstep.py's
 * FitMStep through compiled.ClosedMStep, one per fit), from the merged statistics about the
 * shifts c_k. mstep.estimate with the model's Covariance.covariances, then its
 * precisions_cholesky, is the reference, in the same order of operations:
 *
 *   N_k = nk_k + nk_floor,  pi_k = N_k / sum N,  d_k = sx_k / N_k,  mu_k = c_k + d_k,
 *   VVV: Sigma_k = sym(S_k - N_k d_k d_k' + N_k reg I) / N_k,
 *   EEE: Sigma = sym(S - sum_k N_k d_k d_k' + sum N reg I) / sum N,
 *   VVI: Sigma_k = N_k (|S_k / N_k - d_k^2| + reg) / N_k   (diagonals),
 *   VII: s_k = N_k (|S_k / N_k - |d_k|^2| / D + reg) / N_k,
 *   EII: s = sum_k N_k (...) / sum N,  EEI: v = sum_k N_k (...) / sum N  (the VII / VVI
 *        scatters pooled), EVI: v_k = W_k / g_k * (sum g / sum N), g_k the geometric mean of
 *        W_k = N_k (|S_k / N_k - d_k^2| + reg),
 *
 * with sym(A) = (A + A') / 2, then the precisions' Cholesky factors: precision_factors for
 * the matrix models, 1 / sqrt for the variances.
 *
 * model: one of MSTEP_* below (compiled._MSTEP_MODELS, named by Covariance.compiled_mstep).
 * stats: nk (K), sx (K, D), sxx (the layout: (K, D, D), (D, D), (K, D) or (K,)), shift (K, D).
 * out: weights (K), N (K), means (K, D), covariances (layout), P (layout), overwritten.
 * scratch: 2 K + K D + D D doubles.
 * Returns -1, or the first component (0 for a shared covariance) whose covariance is not
 * positive definite or not positive, or whose factor is not finite: the caller then runs the
 * numpy M-step, which says which and why (DegenerateCovarianceError), as before. */
#define MSTEP_VVV 0
#define MSTEP_EEE 1
#define MSTEP_VVI 2
#define MSTEP_VII 3
#define MSTEP_EII 4
#define MSTEP_EEI 5
#define MSTEP_EVI 6

/* the variances' layouts: N_k (|S_k / N_k - d_k^2| + reg) per coordinate, or with the squares
 * summed and divided by D (spherical) */
static void variance_scatter(const double *restrict sxx, const double *restrict nk,
                             const double *restrict d, long K, long D, long spherical,
                             double reg_covar, double *restrict W)
{
    for (long k = 0; k < K; k++) {
        const double *dk = d + k * D;
        if (spherical) {
            double norm = 0.0;
            for (long j = 0; j < D; j++) norm += dk[j] * dk[j];
            W[k] = nk[k] * (fabs(sxx[k] / nk[k] - norm) / (double)D + reg_covar);
        } else {
            for (long j = 0; j < D; j++)
                W[k * D + j] = nk[k] * (fabs(sxx[k * D + j] / nk[k] - dk[j] * dk[j]) + reg_covar);
        }
    }
}

/* 1 / sqrt(v) for n variances; the first index (divided by per) of one that is not > 0 */
static long inverse_roots(const double *restrict v, long n, long per, double *restrict P)
{
    for (long i = 0; i < n; i++) {
        if (!(v[i] > 0.0)) return i / per;
        P[i] = 1.0 / sqrt(v[i]);
    }
    return -1;
}

long mstep_closed(long model, const double *restrict stats, long K, long D, double reg_covar,
                  double nk_floor, double *restrict out, double *restrict scratch)
{
    const long size = model == MSTEP_VVV ? K * D * D
                      : model == MSTEP_EEE ? D * D
                      : (model == MSTEP_VII || model == MSTEP_EII) ? K : K * D;
    const double *nk_in = stats, *sx = stats + K, *sxx = sx + K * D, *shift = sxx + size;
    double *weights = out, *nk = out + K, *means = nk + K, *cov = means + K * D;
    double *P = cov + size, *d = scratch, *L = d + K * D;
    double total = 0.0;
    for (long k = 0; k < K; k++) {
        nk[k] = nk_in[k] + nk_floor;
        total += nk[k];
    }
    for (long k = 0; k < K; k++) {
        weights[k] = nk[k] / total;
        for (long j = 0; j < D; j++) {
            d[k * D + j] = sx[k * D + j] / nk[k];
            means[k * D + j] = shift[k * D + j] + d[k * D + j];
        }
    }
    switch (model) {
    case MSTEP_VVV:
    case MSTEP_EEE: {
        const long shared = model == MSTEP_EEE, n_matrices = shared ? 1 : K;
        /* S_k - N_k d_k d_k', or S - sum_k N_k d_k d_k' (the sum first, as numpy's matmul) */
        double *moved = shared ? L : cov;
        memset(moved, 0, (size_t)size * sizeof(double));
        for (long k = 0; k < K; k++) {
            double *M = moved + (shared ? 0 : k * D * D);
            const double *dk = d + k * D;
            for (long a = 0; a < D; a++) {
                const double nd = nk[k] * dk[a];
                for (long b = 0; b < D; b++) M[a * D + b] += nd * dk[b];
            }
        }
        for (long i = 0; i < size; i++) cov[i] = sxx[i] - moved[i];
        for (long k = 0; k < n_matrices; k++) {
            double *W = cov + k * D * D;
            const double n_k = shared ? total : nk[k];
            for (long a = 0; a < D; a++) {
                for (long b = 0; b < a; b++) W[a * D + b] = W[b * D + a] =
                    0.5 * (W[a * D + b] + W[b * D + a]);
                W[a * D + a] = 0.5 * (W[a * D + a] + W[a * D + a]) + n_k * reg_covar;
            }
            for (long i = 0; i < D * D; i++) W[i] /= n_k;
        }
        return precision_factors(cov, n_matrices, D, P, L);
    }
    case MSTEP_VVI:
    case MSTEP_EEI:
    case MSTEP_EVI: {
        variance_scatter(sxx, nk, d, K, D, 0, reg_covar, cov);
        if (model == MSTEP_EEI) {
            for (long j = 0; j < D; j++) {
                double pooled = 0.0;
                for (long k = 0; k < K; k++) pooled += cov[k * D + j];
                L[j] = pooled / total;
            }
            for (long k = 0; k < K; k++) memcpy(cov + k * D, L, (size_t)D * sizeof(double));
        } else {
            /* VVI: v_k = W_k / N_k; EVI: v_k = W_k / g_k * (sum g / sum N), g_k the geometric
             * mean of W_k (EVE's and VVE's eigenvalue steps, in place) */
            eigenvalue_step(cov, nk, K, D, model == MSTEP_EVI, total, L, cov);
        }
        return inverse_roots(cov, K * D, D, P);
    }
    case MSTEP_VII:
    case MSTEP_EII: {
        variance_scatter(sxx, nk, d, K, D, 1, reg_covar, cov);
        if (model == MSTEP_VII) {
            for (long k = 0; k < K; k++) cov[k] /= nk[k];
        } else {
            double pooled = 0.0;
            for (long k = 0; k < K; k++) pooled += cov[k];
            for (long k = 0; k < K; k++) cov[k] = pooled / total;
        }
        return inverse_roots(cov, K, 1, P);
    }
    default: return 0;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* constrained M-steps whole: constrained_mstep (covariance.py's compiled_mstep names in compiled.MSTEP_KERNELS).
 *
 * One call does what Covariance.covariances and Covariance.precisions_cholesky do for the
 * iterative and eigen models VEI, VEE, EVE, VVE, EEV, VEV, EVV: the layout's regularised
 * scatter from the shifted statistics (Full.scatter, Diag.scatter), the model's constrained
 * M-step (constrained.py: vei, vee, common_orientation, free_orientation, the loops above), the
 * assembled covariances D_k diag(v_k) D_k' (constrained._assemble) and their precisions'
 * Cholesky factors (precision_factors). The numpy M-steps are the reference: the same
 * arithmetic, to rounding (VEE's determinant and inverse by Cholesky where numpy uses LU).
 *
 * in: nk (K), d (K, D), sxx (the layout: (K, D, D), VEI (K, D)), start (the same layout; read
 *     when has_start). out: the covariances (layout), their precisions' factors (layout),
 *     then result[3]: the last objective, the one before it, and 1 when the factors were
 *     made (0: a covariance not positive definite; the caller's LAPACK path says which).
 * work: constrained_mstep_work(model, K, D) doubles.
 * Returns the inner steps, 0 at the cap (the caller warns), -1 when it declines (a scatter
 * not finite, a Jacobi or Procrustes step that did not settle, VEE's matrix not positive
 * definite: the numpy M-step then runs from the same statistics). */
#define MSTEP_VEI 0
#define MSTEP_VEE 1
#define MSTEP_EVE 2
#define MSTEP_VVE 3
#define MSTEP_EEV 4
#define MSTEP_VEV 5
#define MSTEP_EVV 6

long constrained_mstep_work(long model, long K, long D)
{
    (void)model;
    return 4 * K * D * D + (K + 2) * (D * D + D) + 12 * D * D + 10 * K * D + 8 * K + 8;
}

/* C = (C + C') / 2 for a D x D matrix, in place (numpy's 0.5 * (C + C.T): the diagonal is
 * unchanged, exactly) */
static void symmetrise(double *C, long D)
{
    for (long i = 0; i < D; i++)
        for (long j = 0; j < i; j++) {
            const double s = 0.5 * (C[i * D + j] + C[j * D + i]);
            C[i * D + j] = C[j * D + i] = s;
        }
}

/* Full.scatter: W_k = sxx_k - (N_k d_k) d_k', symmetrised, plus N_k reg on the diagonal */
static void full_scatter(const double *sxx, const double *nk, const double *d, long K, long D,
                         double reg, double *W)
{
    for (long k = 0; k < K; k++) {
        const double *S = sxx + k * D * D, *dk = d + k * D;
        double *Wk = W + k * D * D;
        for (long i = 0; i < D; i++)
            for (long j = 0; j < D; j++) Wk[i * D + j] = S[i * D + j] - nk[k] * dk[i] * dk[j];
        symmetrise(Wk, D);
        const double r = nk[k] * reg;
        for (long i = 0; i < D; i++) Wk[i * D + i] += r;
    }
}

/* constrained._assemble: cov_k = V_k diag(v_k) V_k', symmetrised (V shared when vstride 0) */
static void assemble(const double *V, long vstride, const double *v, long K, long D,
                     double *cov)
{
    for (long k = 0; k < K; k++) {
        const double *Vk = V + k * vstride, *vk = v + k * D;
        double *C = cov + k * D * D;
        for (long i = 0; i < D; i++)
            for (long j = 0; j < D; j++) {
                double s = 0.0;
                for (long l = 0; l < D; l++) s += Vk[i * D + l] * vk[l] * Vk[j * D + l];
                C[i * D + j] = s;
            }
        symmetrise(C, D);
    }
}

/* constrained.vei from a start: the volumes (K,) from the previous variances prev (K, D), or
 * without them S's row means over N_k, then vei_loop; v (K, D) out, work K + D doubles */
static long vei_from(const double *S, const double *nk, const double *prev, long K, long D,
                     double tol, long max_iter, double *v, double *work, double *result)
{
    double *volume = work, *shape = volume + K;
    for (long k = 0; k < K; k++) {
        double s = 0.0;
        if (prev) {
            for (long j = 0; j < D; j++) s += log(prev[k * D + j]);
            volume[k] = exp(s / (double)D);
        } else {
            for (long j = 0; j < D; j++) s += S[k * D + j];
            volume[k] = s / (double)D / nk[k];
        }
        for (long j = 0; j < D; j++) v[k * D + j] = volume[k];
    }
    const double objective = diag_objective_c(S, nk, v, K, D);
    result[0] = result[1] = objective;
    return vei_loop(S, nk, K, D, objective, tol, max_iter, volume, v, shape, result);
}

/* log det A from precision_factors's lower Cholesky factor L of A (left in its scratch) */
static double logdet_from_factor(const double *L, long D)
{
    double total = 0.0;
    for (long j = 0; j < D; j++) total += log(L[j * D + j]);
    return 2.0 * total;
}

/* constrained.vee: alternate C = sum_k W_k / lambda_k normalised to det 1 and
 * lambda_k = tr(W_k C^-1) / (D N_k); cov (K, D, D) out; work 4 D^2 + K doubles */
static long vee_loop(const double *W, const double *nk, const double *start, long K, long D,
                     double tol, long max_iter, double *cov, double *work, double *result)
{
    double *C = work, *L = C + D * D, *P = L + D * D, *Ci = P + D * D, *volume = Ci + D * D;
    for (long k = 0; k < K; k++) {
        if (start) {
            if (precision_factors(start + k * D * D, 1, D, P, L) >= 0) return -1;
            volume[k] = exp(logdet_from_factor(L, D) / (double)D);
        } else {
            double s = 0.0;
            for (long i = 0; i < D; i++) s += W[k * D * D + i * D + i];
            volume[k] = s / ((double)D * nk[k]);
        }
    }
    double objective = INFINITY, previous = INFINITY;
    long steps = 0;
    for (long it = 0; it < max_iter && !steps; it++) {
        for (long i = 0; i < D * D; i++) C[i] = 0.0;
        for (long k = 0; k < K; k++) {
            const double inverse = 1.0 / volume[k];
            for (long i = 0; i < D * D; i++) C[i] += inverse * W[k * D * D + i];
        }
        /* C = L L' and P = L^-T; not positive definite: numpy's slogdet decides */
        if (precision_factors(C, 1, D, P, L) >= 0) return -1;
        const double scale = exp(logdet_from_factor(L, D) / (double)D);
        for (long i = 0; i < D * D; i++) C[i] /= scale;
        /* (C / scale)^-1 = scale (L L')^-1 = scale P P' */
        for (long i = 0; i < D; i++)
            for (long j = 0; j <= i; j++) {
                double s = 0.0;
                for (long p = i; p < D; p++) s += P[i * D + p] * P[j * D + p];
                Ci[i * D + j] = Ci[j * D + i] = scale * s;
            }
        double total = 0.0;
        for (long k = 0; k < K; k++) {
            double t = 0.0;
            for (long i = 0; i < D * D; i++) t += W[k * D * D + i] * Ci[i];
            volume[k] = t / ((double)D * nk[k]);
            total += nk[k] * (double)D * log(volume[k]) + t / volume[k];
        }
        previous = objective;
        objective = total;
        if (inner_converged(previous, objective, tol)) steps = it + 1;
    }
    result[0] = objective;
    result[1] = previous;
    for (long k = 0; k < K; k++) {
        for (long i = 0; i < D * D; i++) cov[k * D * D + i] = volume[k] * C[i];
        symmetrise(cov + k * D * D, D);
    }
    return steps;
}

long constrained_mstep(long model, long K, long D, const double *restrict in, long has_start,
                       double reg, double tol, long max_iter, double *restrict out,
                       double *restrict work)
{
    const double *nk = in, *d = nk + K, *sxx = d + K * D;
    const long size = model == MSTEP_VEI ? K * D : K * D * D;
    const double *start = has_start ? sxx + size : NULL;
    double *cov = out, *prec = cov + size, *result = prec + size;
    for (long i = 0; i < size; i++)
        if (!isfinite(sxx[i])) return -1;
    long code;
    result[2] = 0.0;
    if (model == MSTEP_VEI) {
        /* Diag.scatter: N_k (|sxx / N_k - d^2| + reg) */
        double *S = work;
        for (long k = 0; k < K; k++)
            for (long j = 0; j < D; j++)
                S[k * D + j] = nk[k] * (fabs(sxx[k * D + j] / nk[k] - d[k * D + j] * d[k * D + j])
                                        + reg);
        code = vei_from(S, nk, start, K, D, tol, max_iter, cov, S + K * D, result);
        int positive = 1;
        for (long i = 0; i < size; i++) {
            if (!(cov[i] > 0.0)) positive = 0;
            prec[i] = 1.0 / sqrt(cov[i]);
        }
        result[2] = positive;
        return code;
    }
    double *W = work, *rest = W + K * D * D;
    full_scatter(sxx, nk, d, K, D, reg, W);
    for (long i = 0; i < size; i++)
        if (!isfinite(W[i])) return -1;
    if (model == MSTEP_VEE) {
        code = vee_loop(W, nk, start, K, D, tol, max_iter, cov, rest, result);
        if (code < 0) return code;
    } else if (model == MSTEP_EVE || model == MSTEP_VVE) {
        /* constrained._pooled: the pooled scatter, and sum_k (k + 1) start_k */
        const long n_pooled = start ? 2 : 1;
        double *pooled = rest, *Dm = pooled + 2 * D * D, *v = Dm + D * D, *loop = v + K * D;
        for (long i = 0; i < D * D; i++) {
            double s = 0.0, t = 0.0;
            for (long k = 0; k < K; k++) {
                s += W[k * D * D + i];
                if (start) t += (double)(k + 1) * start[k * D * D + i];
            }
            pooled[i] = s;
            pooled[D * D + i] = t;
        }
        code = common_orientation(W, nk, K, D, pooled, n_pooled, model == MSTEP_EVE, tol,
                                  max_iter, Dm, v, loop, result);
        if (code == -1) return -1;
        if (code == -2) code = 1; /* a degenerate start: its covariances, the checks say so */
        assemble(Dm, 0, v, K, D, cov);
    } else { /* the free orientations: W_k's eigenvectors, the eigenvalue step on omega */
        double *omega = rest, *vectors = omega + K * D, *scratch = vectors + K * D * D;
        double *v = scratch + D * D, *prev = v + K * D, *tail = prev + K * D;
        if (symmetric_eigen(W, K, D, omega, vectors, scratch) >= 0) return -1;
        for (long i = 0; i < K * D; i++)
            if (omega[i] < 0.0) omega[i] = 0.0;
        code = 1;
        result[0] = result[1] = 0.0;
        if (model == MSTEP_VEV) {
            if (start && symmetric_eigen(start, K, D, prev, tail, scratch) >= 0) return -1;
            code = vei_from(omega, nk, start ? prev : NULL, K, D, tol, max_iter, v, tail,
                            result);
        } else if (model == MSTEP_EEV) { /* constrained.eei */
            double total = 0.0;
            for (long k = 0; k < K; k++) total += nk[k];
            for (long j = 0; j < D; j++) {
                double s = 0.0;
                for (long k = 0; k < K; k++) s += omega[k * D + j];
                for (long k = 0; k < K; k++) v[k * D + j] = s / total;
            }
        } else { /* EVV: constrained.evi */
            double total = 0.0;
            for (long k = 0; k < K; k++) total += nk[k];
            eigenvalue_step(omega, nk, K, D, 1, total, tail, v);
        }
        assemble(vectors, D * D, v, K, D, cov);
    }
    result[2] = precision_factors(cov, K, D, prec, rest) < 0 ? 1.0 : 0.0;
    return code;
}

/* ---------------------------------------------------------------------------------------- */
/* hierarchical agglomeration: hc.py's merge loop (hc.hc_tree after its set-up) in one call.
 *
 * The arithmetic is hc._pair_terms / _terms / _scaled_det operation by operation, in the same
 * order, so that every merge cost equals the numpy loop's to the bit and ties (equal costs)
 * fall the same way: no contraction into fused multiply-adds in this section, and the C
 * library's log, which hc._log calls too. The minima bookkeeping is hc_tree's: the first of
 * equal minima wins, as numpy's argmin. A merge costs one log per other cluster. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

/* det(W / n) of the symmetric D x D scatter W of n rows, 0 where it is not positive definite
 * (A: D x D scratch) */
static inline __attribute__((always_inline)) double hc_scaled_det(const double *restrict W, long D,
                                                                   double n, double *restrict A)
{
    double det;
    if (D == 1) {
        det = W[0];
    } else if (D == 2) {
        det = W[0] * W[3] - W[1] * W[2];
    } else if (D == 3) {
        det = W[0] * (W[4] * W[8] - W[5] * W[7]) - W[1] * (W[3] * W[8] - W[5] * W[6])
              + W[2] * (W[3] * W[7] - W[4] * W[6]);
    } else {
        memcpy(A, W, (size_t)(D * D) * sizeof(double));
        det = 1.0;
        for (long k = 0; k < D; k++) {
            const double pivot = A[k * D + k];
            if (!(pivot > 0)) return 0.0;
            det = det * (pivot / n);
            for (long r = k + 1; r < D; r++)
                for (long c = k + 1; c < D; c++) A[r * D + c] -= A[r * D + k] * A[k * D + c] / pivot;
        }
        return det;
    }
    double power = n;
    for (long k = 1; k < D; k++) power = power * n;
    return det > 0 ? det / power : 0.0;
}

struct hc_state {
    long D;
    double alpha;
    double *n, *means, *W, *trace, *term;
    double *diff, *Wij, *A; /* D, D^2, D^2 */
};

/* the term of cluster i merged with j (hc._pair_terms and hc._terms for one pair), with its
 * count and trace; the merged scatter goes into s->Wij when `want_scatter` or when the term
 * needs its determinant. Inlined into one copy per small D (hc_pair_1, ...), whose loops the
 * compiler unrolls: the same operations in the same order. */
static inline __attribute__((always_inline)) double hc_pair_inline(const struct hc_state *s, long i,
                                                                   long j, int want_scatter,
                                                                   double *n_out,
                                                                   double *trace_out, const long D)
{
    const double *mi = s->means + i * D, *mj = s->means + j * D;
    const double nij = s->n[i] + s->n[j];
    const double scale = s->n[i] * s->n[j] / nij;
    double sq = 0.0;
    for (long a = 0; a < D; a++) {
        s->diff[a] = mj[a] - mi[a];
        sq = a == 0 ? s->diff[0] * s->diff[0] : sq + s->diff[a] * s->diff[a];
    }
    const double tr = s->trace[i] + s->trace[j] + scale * sq;
    const int small = nij <= (double)D || tr <= 0;
    if (want_scatter || !small) {
        const double *Wi = s->W + i * D * D, *Wj = s->W + j * D * D;
        for (long a = 0; a < D; a++)
            for (long b = 0; b < D; b++)
                s->Wij[a * D + b] = Wi[a * D + b] + Wj[a * D + b] + scale * s->diff[a] * s->diff[b];
    }
    *n_out = nij;
    *trace_out = tr;
    double out = (tr + s->alpha) / nij;
    if (!small) out = out + hc_scaled_det(s->Wij, D, nij, s->A);
    return nij * log(out);
}

typedef double (*hc_pair_fn)(const struct hc_state *, long, long, int, double *, double *);
#define HC_PAIR(NAME, DIM)                                                                    \
    static double NAME(const struct hc_state *s, long i, long j, int want, double *n_out,     \
                       double *trace_out)                                                     \
    {                                                                                         \
        return hc_pair_inline(s, i, j, want, n_out, trace_out, DIM);                          \
    }
HC_PAIR(hc_pair_1, 1)
HC_PAIR(hc_pair_2, 2)
HC_PAIR(hc_pair_3, 3)
HC_PAIR(hc_pair_4, 4)
HC_PAIR(hc_pair_5, 5)
HC_PAIR(hc_pair_6, 6)
HC_PAIR(hc_pair_any, s->D)

/* numpy's argmin of row r of the m x m costs: the first least entry among the live clusters
 * (live (n_live,), increasing; the others' entries are +inf in hc_tree's matrix and stale
 * here), 0 when all are +inf as numpy's argmin of a row of +inf */
static inline long hc_row_argmin(const double *restrict cost, long m, long r,
                                 const int64_t *restrict live, long n_live)
{
    /* four lanes (k mod 4), each its first least entry, so that the compares do not wait on
     * each other; the first of the lanes' equal leasts is the row's first (live increases) */
    const double *row = cost + r * m;
    double least[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    long best[4] = {m, m, m, m};
    long k = 0;
    for (; k + 4 <= n_live; k += 4)
        for (int l = 0; l < 4; l++) {
            const long c = (long)live[k + l];
            if (row[c] < least[l]) {
                least[l] = row[c];
                best[l] = c;
            }
        }
    for (; k < n_live; k++) {
        const long c = (long)live[k];
        if (row[c] < least[0] || (row[c] == least[0] && c < best[0])) {
            least[0] = row[c];
            best[0] = c;
        }
    }
    long first = best[0];
    double lowest = least[0];
    for (int l = 1; l < 4; l++)
        if (least[l] < lowest || (least[l] == lowest && best[l] < first)) {
            lowest = least[l];
            first = best[l];
        }
    return lowest < INFINITY ? first : 0;
}

/* hc.hc_tree's merge loop (hc._merge_loop) for m >= 2 initial clusters of counts n (m,) and
 * means (m, D), criterion constant alpha: writes the m - 1 merged pairs (i < j) into merges
 * (m - 1, 2). Only the live clusters' rows and columns of the costs are kept up to date (the
 * numpy loop sets the others to +inf, which no minimum can pick). work: m^2 + m (D^2 + D + 4)
 * + 3 D^2 + D doubles; iwork: 2 m. Returns 0, or -1 when a cost is NaN or no least cost is
 * finite (the numpy loop then runs). */
long hc_merge_loop(const double *restrict n0, const double *restrict means0, long m, long D,
                   double alpha, double *restrict work, int64_t *restrict iwork,
                   int64_t *restrict merges)
{
    struct hc_state s;
    s.D = D;
    s.alpha = alpha;
    double *cost = work;
    s.n = cost + m * m;
    s.means = s.n + m;
    s.W = s.means + m * D;
    s.trace = s.W + m * D * D;
    s.term = s.trace + m;
    double *row_min = s.term + m;
    s.diff = row_min + m;
    s.Wij = s.diff + D;
    s.A = s.Wij + D * D;
    double *Wbest = s.A + D * D;
    int64_t *row_arg = iwork, *live = iwork + m;
    static const hc_pair_fn pair_of_d[] = {hc_pair_any, hc_pair_1, hc_pair_2, hc_pair_3,
                                           hc_pair_4,   hc_pair_5, hc_pair_6};
    const hc_pair_fn hc_pair = D <= 6 ? pair_of_d[D] : hc_pair_any;

    memcpy(s.n, n0, (size_t)m * sizeof(double));
    memcpy(s.means, means0, (size_t)(m * D) * sizeof(double));
    memset(s.W, 0, (size_t)(m * D * D) * sizeof(double));
    for (long k = 0; k < m; k++) {
        s.trace[k] = 0.0;
        s.term[k] = s.n[k] * log((0.0 + alpha) / s.n[k]); /* no scatter: the small branch */
        live[k] = k;
    }
    long n_live = m;
    double nij, tr;
    for (long i = 0; i < m; i++) {
        cost[i * m + i] = INFINITY;
        for (long j = i + 1; j < m; j++) {
            const double c = hc_pair(&s, i, j, 0, &nij, &tr) - s.term[i] - s.term[j];
            if (c != c) return -1;
            cost[i * m + j] = cost[j * m + i] = c;
        }
    }
    for (long r = 0; r < m; r++) {
        row_arg[r] = hc_row_argmin(cost, m, r, live, n_live);
        row_min[r] = cost[r * m + row_arg[r]];
    }
    for (long step = 0; step < m - 1; step++) {
        long a = (long)live[0];
        for (long k = 1; k < n_live; k++)
            if (row_min[live[k]] < row_min[a]) a = (long)live[k];
        if (!(row_min[a] < INFINITY)) return -1;
        const long b = (long)row_arg[a];
        const long i = a < b ? a : b, j = a < b ? b : a;
        merges[2 * step] = i;
        merges[2 * step + 1] = j;
        /* cluster i becomes i and j merged; j leaves the live list */
        const double merged = hc_pair(&s, i, j, 1, &nij, &tr);
        memcpy(Wbest, s.Wij, (size_t)(D * D) * sizeof(double));
        for (long d = 0; d < D; d++)
            s.means[i * D + d] = (s.n[i] * s.means[i * D + d] + s.n[j] * s.means[j * D + d]) / nij;
        s.n[i] = nij;
        s.trace[i] = tr;
        memcpy(s.W + i * D * D, Wbest, (size_t)(D * D) * sizeof(double));
        s.term[i] = merged;
        long at = 0;
        while (live[at] != j) at++;
        memmove(live + at, live + at + 1, (size_t)(n_live - at - 1) * sizeof(int64_t));
        n_live--;
        row_min[j] = INFINITY;
        for (long k = 0; k < n_live; k++) {
            const long r = (long)live[k];
            if (r == i) continue;
            const double c = hc_pair(&s, i, r, 0, &nij, &tr) - s.term[i] - s.term[r];
            if (c != c) return -1;
            cost[i * m + r] = cost[r * m + i] = c;
        }
        row_arg[i] = hc_row_argmin(cost, m, i, live, n_live);
        row_min[i] = cost[i * m + row_arg[i]];
        /* rows whose best partner was i or j look again; the others may now prefer i */
        for (long k = 0; k < n_live; k++) {
            const long r = (long)live[k];
            if (r != i && (row_arg[r] == i || row_arg[r] == j)) {
                row_arg[r] = hc_row_argmin(cost, m, r, live, n_live);
                row_min[r] = cost[r * m + row_arg[r]];
            }
        }
        const double *row_i = cost + i * m; /* = column i, read along a row */
        for (long k = 0; k < n_live; k++) {
            const long r = (long)live[k];
            if (r != i && row_i[r] < row_min[r]) {
                row_arg[r] = i;
                row_min[r] = row_i[r];
            }
        }
    }
    return 0;
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

/* ---------------------------------------------------------------------------------------- */
/* whole EM loop: a small multivariate fit's iterations in one call (lean.py's WholeLoop
 * through compiled.WholeEM, one per fit).
 *
 * run_em's Python loop with the lean pass does, per iteration, one estep_rows call, one
 * M-step call (mstep_closed for the closed forms, constrained_mstep for the iterative and
 * eigen models) and some fifteen microseconds of Python around them (the statistics and
 * parameters as objects, the counts, the collapse check, the history, the stopping rule).
 * Here the same calls follow one another with the parameters kept in one buffer: estep_rows
 * on it, the model's M-step from the statistics about the means (the same functions, not
 * copies), and the Python loop's own arithmetic around them, in its order, so that every
 * iteration is the Python loop's to the bit:
 *
 *   closed forms: mstep_closed on (N_k, sum q z, the second moments, the means) as
 *     mstep.FitMStep's ClosedMStep passes them;
 *   iterative and eigen models: mstep.mstep's N_k + nk_floor, d_k = sx_k / N_k,
 *     pi_k = N_k / sum N (numpy's pairwise sum) and mu_k = mu_k + d_k around
 *     constrained_mstep, warm-started from the current covariances, with constrained.py's
 *     inner tolerance and cap (inner_tol, inner_max_iter);
 *   the lower bound loglik / n and both stopping rules of run_em ('mean': |change| < tol;
 *     'relative': mclust's |change| n / (1 + |L|) < tol).
 *
 * An iteration that needs Python is not done here: one whose lower bound is not finite,
 * whose M-step declines or finds a covariance degenerate (Python's M-step then raises its
 * named error, or takes the statistics itself), whose covariance select's rule finds
 * numerically singular where FitMStep checks it (scale below), or in which a component
 * collapses (N_k < collapsed n with a finite worst log-density: Python re-seeds it). The
 * loop stops
 * before it with the parameters it started from, and run_em's Python body does it. An
 * iterative M-step that reached its cap is done, and the loop stops after it, so that
 * Python warns (constrained._cap_reached) before asking for more.
 *
 * kind: estep_rows's layout (KIND_*).  mstep: 0 closed form, 1 constrained; model: the
 *   model's code in that family (MSTEP_* of mstep_closed or of constrained_mstep).
 * X (n, D), w (n) or NULL: the rows and their weights.
 * param: means (K, D), weights (K), precision factors (layout), covariances (layout); the
 *   first three estep_rows's param. Read at the start, overwritten by every finished
 *   iteration.
 * previous: the lower bound the first iteration is compared with (-inf, or a warm start's).
 * history: the lower bounds of the finished iterations (max_iter doubles).
 * work: whole_em_work(mstep, model, K, D, kind) doubles.
 * result: the iterations finished, 1 when the last one's M-step stopped at its cap, and
 *   then its last objective and the one before (constrained_mstep's).
 * scale: inside mstep.singular_fails the data's variance per feature (D), else NULL; calls:
 *   the fit's M-steps before this call (run_em's iterations so far). An iteration whose
 *   M-step FitMStep would check (its count a power of two or a multiple of 64) and find
 *   numerically singular (singular_by_scale) is Python's too: it raises the named error.
 * Returns 1 when converged, 0 at max_iter, 2 when the next iteration is Python's, 3 after an
 * iteration whose M-step reached its cap (result[1]) when not converged, 4 when the next
 * iteration is Python's because constrained_mstep declined it (a Procrustes problem without a
 * unique solution, say: the caller keeps the fit's later iterations in Python, where numpy's
 * M-step takes them, rather than trying C again each time). */
#define WHOLE_CLOSED 0
#define WHOLE_CONSTRAINED 1

/* mstep._check_conditioning on the precision factors P (kind's layout) against the data's
 * variance per feature scale (D): whether some component's variance in some direction, given
 * the features before it (1 / a factor's diagonal squared), is at most float64's eps of the
 * data's. Its arithmetic and NaN rule: the largest of (p p) s, or on a spherical layout of
 * more than one feature the largest p p times the largest s, not below 1 / eps. */
static int singular_by_scale(long kind, const double *P, long K, long D, const double *scale)
{
    const double limit = 4503599627370496.0; /* 1 / eps = 2^52 */
    if (kind == KIND_SPHERICAL && D != 1) {
        double top = P[0] * P[0], widest = scale[0];
        for (long k = 0; k < K; k++) {
            const double t = P[k] * P[k];
            if (t != t) return 1; /* numpy's max propagates NaN */
            if (t > top) top = t;
        }
        for (long j = 1; j < D; j++)
            if (scale[j] > widest) widest = scale[j];
        return !(top * widest < limit);
    }
    const long matrices = kind == KIND_FULL ? K : kind == KIND_TIED ? 1 : 0;
    if (matrices) {
        for (long k = 0; k < matrices; k++)
            for (long j = 0; j < D; j++) {
                const double p = P[k * D * D + j * D + j];
                if (!(p * p * scale[j] < limit)) return 1;
            }
        return 0;
    }
    const long per = kind == KIND_DIAG ? D : 1; /* diag (K, D); spherical on one feature (K) */
    for (long k = 0; k < K; k++)
        for (long j = 0; j < per; j++) {
            const double p = P[k * per + j];
            if (!(p * p * scale[j] < limit)) return 1;
        }
    return 0;
}

long whole_em_work(long mstep, long model, long K, long D, long kind)
{
    const long size = precision_size(kind, K, D), stats = K + K * D + size;
    long total = stats + 4 + (2 * D + K + 5) * LEAN_ROWS + K + K * D + K + 2 * size;
    if (mstep == WHOLE_CLOSED)
        total += stats + K * D + 2 * K + K * D + 2 * size + 2 * K + K * D + D * D;
    else
        total += K + K * D + 2 * size + 2 * size + 3 + constrained_mstep_work(model, K, D);
    return total;
}

/* A closed form's M-step (mstep_closed, from its stats: nk, sx, sxx, shift) into the
 * parameters weights (K), means (K, D), covariances and factors (size each); mstep_closed's
 * code (>= 0: a covariance degenerate, nothing written). mout: 2 K + K D + 2 size doubles,
 * mscratch: 2 K + K D + D D. */
static long closed_step(long model, const double *stats, long K, long D, long size,
                        double reg_covar, double nk_floor, double *mout, double *mscratch,
                        double *weights, double *means, double *cov, double *P)
{
    const long code = mstep_closed(model, stats, K, D, reg_covar, nk_floor, mout, mscratch);
    if (code >= 0) return code;
    /* out: weights, N, means, covariances, factors */
    memcpy(weights, mout, (size_t)K * sizeof(double));
    memcpy(means, mout + 2 * K, (size_t)(K * D) * sizeof(double));
    memcpy(cov, mout + 2 * K + K * D, (size_t)size * sizeof(double));
    memcpy(P, mout + 2 * K + K * D + size, (size_t)size * sizeof(double));
    return code;
}

/* mstep.mstep around constrained_mstep: N_k = nk_k + nk_floor, d_k = sx_k / N_k, the scatter's
 * statistic sxx and, where start is given, the current covariances to go on from; then
 * pi_k = N_k / sum N (numpy's pairwise sum) and mu_k = base_k + d_k, the covariances and their
 * factors into the parameters, where constrained_mstep took the step (code >= 0) and made the
 * factors (*made). in: K + K D + 2 size doubles; mout: 2 size + 3 (its objectives after the
 * factors, read by the caller at a cap); mwork: constrained_mstep_work. Returns its code. */
static long constrained_step(long model, long K, long D, long size, const double *nk,
                             const double *sx, const double *sxx, const double *start,
                             const double *base, double reg_covar, double nk_floor,
                             double inner_tol, long inner_max_iter, double *in, double *mout,
                             double *mwork, double *weights, double *means, double *cov,
                             double *P, long *made)
{
    double *nkf = in, *d = nkf + K;
    for (long k = 0; k < K; k++) nkf[k] = nk[k] + nk_floor;
    for (long k = 0; k < K; k++)
        for (long j = 0; j < D; j++) d[k * D + j] = sx[k * D + j] / nkf[k];
    memcpy(d + K * D, sxx, (size_t)size * sizeof(double));
    if (start) memcpy(d + K * D + size, start, (size_t)size * sizeof(double));
    const long code = constrained_mstep(model, K, D, in, start != NULL, reg_covar, inner_tol,
                                        inner_max_iter, mout, mwork);
    *made = code >= 0 && mout[2 * size + 2] != 0.0;
    if (!*made) return code;
    const double total = numpy_sum(nkf, K);
    for (long k = 0; k < K; k++) weights[k] = nkf[k] / total;
    for (long i = 0; i < K * D; i++) means[i] = base[i] + d[i];
    memcpy(cov, mout, (size_t)size * sizeof(double));
    memcpy(P, mout + size, (size_t)size * sizeof(double));
    return code;
}

long whole_em(long kind, long mstep, long model, const double *X, const double *w, long n,
              long D, long K, double *restrict param, double reg_covar, double nk_floor,
              double collapsed, double tol, long relative, long max_iter, double floor_,
              double previous, double inner_tol, long inner_max_iter,
              double *restrict history, double *restrict work, double *restrict result,
              const double *restrict scale, long calls)
{
    const long size = precision_size(kind, K, D), stats = K + K * D + size;
    const size_t all = (size_t)(K * D + K + 2 * size) * sizeof(double);
    double *out = work, *scratch = out + stats + 4;
    /* the next parameters, in param's layout */
    double *next = scratch + (2 * D + K + 5) * LEAN_ROWS + K;
    double *next_means = next, *next_weights = next + K * D, *next_P = next_weights + K;
    double *next_cov = next_P + size, *rest = next_cov + size;
    const double *means = param, *cov = param + K * D + K + size;
    long steps = 0, status = 0;
    result[1] = 0.0;
    while (steps < max_iter) {
        estep_rows(kind, X, w, n, D, K, param, floor_, out, scratch);
        const double loglik = out[stats], count = out[stats + 1], worst = out[stats + 2];
        const double lower_bound = loglik / count;
        if (!isfinite(lower_bound)) {
            status = 2;
            break;
        }
        long capped = 0;
        double objective = 0.0, before = 0.0;
        if (mstep == WHOLE_CLOSED) {
            /* FitMStep's ClosedMStep: the statistics, then the shifts (the means) */
            double *in = rest, *mout = in + stats + K * D, *mscratch = mout + 2 * K + K * D + 2 * size;
            memcpy(in, out, (size_t)stats * sizeof(double));
            memcpy(in + stats, means, (size_t)(K * D) * sizeof(double));
            if (closed_step(model, in, K, D, size, reg_covar, nk_floor, mout, mscratch,
                            next_weights, next_means, next_cov, next_P) >= 0) {
                status = 2;
                break;
            }
        } else {
            /* mstep.mstep: _counts_and_moves, then covariances_and_factors from the current
             * covariances */
            double *in = rest, *mout = in + K + K * D + 2 * size, *mwork = mout + 2 * size + 3;
            long made = 0;
            const long code = constrained_step(
                model, K, D, size, out, out + K, out + K + K * D, cov, means, reg_covar,
                nk_floor, inner_tol, inner_max_iter, in, mout, mwork, next_weights, next_means,
                next_cov, next_P, &made);
            if (code < 0) { /* declined: numpy's M-step takes this fit's iterations */
                status = 4;
                break;
            }
            if (!made) { /* not positive definite: Python's error */
                status = 2;
                break;
            }
            if (code == 0) {
                capped = 1;
                objective = mout[2 * size];
                before = mout[2 * size + 1];
            }
        }
        /* FitMStep's check inside singular_fails: at the fit's M-steps 1, 2, 4, 8, ... and
         * every 64th, a numerically singular covariance is Python's error */
        const long call = calls + steps + 1;
        if (scale && ((call & (call - 1)) == 0 || call % 64 == 0)
            && singular_by_scale(kind, next_P, K, D, scale)) {
            status = 2;
            break;
        }
        if (collapse_to_reseed(out, K, collapsed, count, worst)) {
            status = 2;
            break;
        }
        memcpy(param, next, all);
        history[steps++] = lower_bound;
        const double change = bound_change(lower_bound, previous, loglik, count, relative);
        previous = lower_bound;
        if (capped) {
            result[1] = 1.0;
            result[2] = objective;
            result[3] = before;
        }
        if (change < tol) {
            status = 1;
            break;
        }
        if (capped) {
            status = 3;
            break;
        }
    }
    result[0] = (double)steps;
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* whole_fit: a whole fit of one of whole_em's models from the statistics of its start, in one
 * call (mixture.py's GaussianMixture._fit_validated, the fits of select's grid): the start's
 * M-step as mstep.FitMStep.unchecked takes it (mstep_closed; or, for the iterative and eigen
 * models, mstep.mstep's N_k + nk_floor, d_k = sx_k / N_k around constrained_mstep from no start
 * with the cold cap, pi_k = N_k / sum N, mu_k = c_k + d_k), whole_em's iterations from it
 * (called again after an iteration whose M-step stopped at its warm cap, as lean.WholeLoop
 * does), then the final E-step's log-likelihood and classification entropy
 * (estep_rows_entropy). Each part is the function the Python path calls, on the same numbers
 * in the same order, so the fit is that path's to the bit; whatever that path would do in
 * Python is left to it: a start whose M-step declines, finds a covariance not positive
 * definite or stops at its cap (Python says which, or warns), and an iteration whole_em hands
 * back (its status 2 or 4). A small fit's Python around these calls (the start's parameters,
 * the loop's buffers, the final pass's) cost several times their arithmetic.
 *
 * stats: nk (K), sx (K, D), sxx (the layout), shift (K, D): the start's statistics.
 *   NULL: a warm start, from the parameters in param (a fit run on from where it stopped).
 * param: whole_em's (means, weights, factors, covariances), written.
 * settings: reg_covar, nk_floor, collapsed, tol; relative; max_iter (<= history's length);
 *   floor_ as in whole_em; inner_tol, warm_max_iter (whole_em's), cold_max_iter (the start's);
 *   previous: the lower bound the first iteration is compared with (-inf, or a warm start's).
 * history: max_iter doubles.  work: whole_fit_work(mstep, model, K, D, kind) doubles.
 * result: [0] iterations done, [1] the log-likelihood and [2] the entropy of the final
 *   parameters, [3] whole_em's last status.
 * scale, as whole_em's (the first call's calls is 0).
 * Returns 1 when converged, 0 at max_iter, 5 when the start's M-step is Python's, 6 when an
 * iteration is. */
long whole_fit_work(long mstep, long model, long K, long D, long kind)
{
    const long size = precision_size(kind, K, D), stats = K + K * D + size;
    long start;
    if (mstep == WHOLE_CLOSED)
        start = stats + K * D + 2 * K + K * D + 2 * size + 2 * K + K * D + D * D;
    else
        start = K + K * D + 2 * size + 2 * size + 3 + constrained_mstep_work(model, K, D);
    const long final = stats + 5 + (2 * D + K + 5) * LEAN_ROWS + K;
    return whole_em_work(mstep, model, K, D, kind) + start + final;
}

long whole_fit(long kind, long mstep, long model, const double *X, const double *w, long n,
               long D, long K, const double *restrict stats, double *restrict param,
               double reg_covar, double nk_floor, double collapsed, double tol, long relative,
               long max_iter, double floor_, double inner_tol, long warm_max_iter,
               long cold_max_iter, double previous, double *restrict history,
               double *restrict work, double *restrict result, const double *restrict scale)
{
    const long size = precision_size(kind, K, D), n_stats = K + K * D + size;
    double *means = param, *weights = means + K * D, *P = weights + K, *cov = P + size;
    double *em_work = work, *start = em_work + whole_em_work(mstep, model, K, D, kind);
    long total_start = 0;
    if (!stats) {
        /* a warm start: from the parameters in param */
    } else if (mstep == WHOLE_CLOSED) {
        double *mout = start, *mscratch = mout + 2 * K + K * D + 2 * size;
        if (closed_step(model, stats, K, D, size, reg_covar, nk_floor, mout, mscratch, weights,
                        means, cov, P) >= 0)
            return 5;
        total_start = 2 * K + K * D + 2 * size + 2 * K + K * D + D * D;
    } else {
        const double *sx = stats + K, *sxx = sx + K * D, *shift = sxx + size;
        double *in = start, *mout = in + K + K * D + 2 * size, *mwork = mout + 2 * size + 3;
        long made = 0;
        /* no start: the cold cap; a cap reached is Python's (it warns) */
        const long code = constrained_step(model, K, D, size, stats, sx, sxx, NULL, shift,
                                           reg_covar, nk_floor, inner_tol, cold_max_iter, in,
                                           mout, mwork, weights, means, cov, P, &made);
        if (code <= 0 || !made) return 5;
        total_start = K + K * D + 2 * size + 2 * size + 3 + constrained_mstep_work(model, K, D);
    }
    double *final = start + total_start, *final_scratch = final + n_stats + 5;
    long done = 0, status = 0;
    double em_result[4];
    while (done < max_iter) {
        status = whole_em(kind, mstep, model, X, w, n, D, K, param, reg_covar, nk_floor,
                          collapsed, tol, relative, max_iter - done, floor_, previous,
                          inner_tol, warm_max_iter, history + done, em_work, em_result, scale,
                          done);
        done += (long)em_result[0];
        if (status != 3) break;
        previous = history[done - 1]; /* a capped warm M-step: lean.WholeLoop goes on */
    }
    result[0] = (double)done;
    result[3] = (double)status;
    if (status == 2 || status == 4) return 6;
    estep_rows_entropy(kind, X, w, n, D, K, param, floor_, final, final_scratch);
    result[1] = final[n_stats];
    result[2] = final[n_stats + 4];
    return status == 1 ? 1 : 0;
}
