/* Two loops of the natural-parameter kernel that numpy can only do in several passes.
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
 *
 * The features are computed in double (the *_f32 variants store float). Arrays are C-ordered.
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
