/* Plain SGD on the middle matrix of R teacher-student networks n_in -> n1 -> n2 -> 1
 * (physml.phases.teacher_student, which documents the model and holds the numpy twin
 * of this kernel).  One call advances every active run by n_steps SGD steps.
 *
 * Layout (float32, C order; n2 is padded to nk * 16 with zero columns of V and zero
 * entries of Z, which stay zero and change nothing):
 *   V  (R, n1, nk*16)  V = W^T, updated in place
 *   A  (R, nb, B, n1)  first-layer features f(M x) of the training set, mini-batch by mini-batch
 *   T  (R, nb, B)      teacher outputs
 *   Z  (R, nk*16)      readout
 * Step s uses mini-batch (step0 + s) mod nb.  With u_b = W a_b, s_b = f(u_b),
 * e_b = Z . s_b - t_b and delta_b = e_b Z * f'(u_b):
 *   V[i, :] -= (lr / B) sum_b a_b[i] delta_b
 * last_loss[r] = 1/(2B) sum_b e_b^2 of the last step done.  act: 0 tanh, 1 relu, 2 identity.
 * Runs with active[r] == 0 are left untouched.  Each run is computed on its own, so a
 * run's numbers do not depend on which other runs share the call.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));

#define INLINE static inline __attribute__((always_inline))

INLINE v16 splat(float x) { return (v16){0} + x; }
INLINE v16 blend(v16i mask, v16 a, v16 b) { return (v16)((mask & (v16i)a) | (~mask & (v16i)b)); }
INLINE v16 load16(const float *p) { v16 v; memcpy(&v, p, sizeof v); return v; }
INLINE void store16(float *p, v16 v) { memcpy(p, &v, sizeof v); }

/* tanh(x) = sign(x) m / (m + 2) with m = expm1(2|x|), |x| clamped at 9 (tanh(9) rounds to 1
 * in float32).  expm1(y) = 2^n expm1(f) + (2^n - 1), n = round(y / ln 2), |f| <= ln(2)/2,
 * expm1(f) by its Taylor series to f^7/7! (the rest is below float32 rounding), so the
 * relative error stays at a few ulp also for tiny x. */
INLINE v16 tanh16(v16 x) {
    const v16i sign = (v16i)x & (int32_t)0x80000000;
    v16 ax = (v16)((v16i)x & 0x7fffffff);
    ax = blend(ax > 9.0f, splat(9.0f), ax);
    const v16 y = ax + ax;
    const float shifter = 12582912.0f;            /* 1.5 * 2^23: adding it rounds to an integer */
    const v16 big = y * (float)M_LOG2E + shifter;
    const v16i n = (v16i)big - (v16i)splat(shifter);
    const v16 f = y - (big - shifter) * (float)M_LN2;
    v16 p = splat(1.0f / 5040);
    p = p * f + 1.0f / 720;
    p = p * f + 1.0f / 120;
    p = p * f + 1.0f / 24;
    p = p * f + 1.0f / 6;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f;                                     /* expm1(f) */
    const v16 two_n = (v16)((n + 127) << 23);
    const v16 m = two_n * p + (two_n - 1.0f);
    return (v16)((v16i)(m / (m + 2.0f)) | sign);
}

/* s = f(u) and f'(u) */
INLINE void activate(int act, v16 u, v16 *s, v16 *d) {
    if (act == 0) {
        *s = tanh16(u);
        *d = 1.0f - *s * *s;
    } else if (act == 1) {
        const v16i pos = u > 0.0f;
        *s = blend(pos, u, splat(0));
        *d = blend(pos, splat(1), splat(0));
    } else {
        *s = u;
        *d = splat(1);
    }
}

INLINE float hsum(v16 v) {
    float s = 0;
    for (int k = 0; k < 16; k++) s += v[k];
    return s;
}

/* n_steps SGD steps of one run; returns its last mini-batch loss.  Inlined with constant
 * sizes for the paper's shape, so that the compiler keeps W in registers. */
INLINE double run_steps(float *restrict V, const float *restrict A, const float *restrict T,
                        const float *restrict Z, long nb, long B, long n1, long nk,
                        long step0, long n_steps, float lr_over_B, int act)
{
    v16 u[B][nk], d[B][nk];
    double loss = 0;
    long batch = step0 % nb;
    for (long step = 0; step < n_steps; step++) {
        const float *restrict a = A + batch * B * n1;
        const float *restrict t = T + batch * B;
        for (long b = 0; b < B; b++)
            for (long j = 0; j < nk; j++) u[b][j] = splat(0);
        for (long i = 0; i < n1; i++)                       /* u_b = W a_b */
            for (long j = 0; j < nk; j++) {
                const v16 v = load16(V + (i * nk + j) * 16);
                for (long b = 0; b < B; b++) u[b][j] += a[b * n1 + i] * v;
            }
        loss = 0;
        for (long b = 0; b < B; b++) {                      /* e_b, delta_b * lr/B */
            v16 y = splat(0), s;
            for (long j = 0; j < nk; j++) {
                activate(act, u[b][j], &s, &d[b][j]);
                y += load16(Z + j * 16) * s;
            }
            const float e = hsum(y) - t[b];
            loss += (double)e * e;
            for (long j = 0; j < nk; j++) d[b][j] *= (e * lr_over_B) * load16(Z + j * 16);
        }
        for (long i = 0; i < n1; i++)                       /* V[i] -= sum_b a_b[i] delta_b */
            for (long j = 0; j < nk; j++) {
                v16 v = load16(V + (i * nk + j) * 16);
                for (long b = 0; b < B; b++) v -= a[b * n1 + i] * d[b][j];
                store16(V + (i * nk + j) * 16, v);
            }
        if (++batch == nb) batch = 0;
    }
    return 0.5 * loss / B;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void sgd_steps(float *restrict V, const float *restrict A, const float *restrict T,
               const float *restrict Z, const uint8_t *restrict active, double *restrict last_loss,
               long R, long nb, long B, long n1, long nk, long step0, long n_steps,
               float lr_over_B, int act)
{
    for (long r = 0; r < R; r++) {
        if (!active[r]) continue;
        float *Vr = V + r * n1 * nk * 16;
        const float *Ar = A + r * nb * B * n1, *Tr = T + r * nb * B, *Zr = Z + r * nk * 16;
        double loss;
        if (B == 4 && n1 == 32 && nk == 1 && act == 0)      /* 3 -> 32 -> 16 -> 1, tanh, B = 4 */
            loss = run_steps(Vr, Ar, Tr, Zr, nb, 4, 32, 1, step0, n_steps, lr_over_B, 0);
        else if (B == 4 && n1 == 32 && nk == 1 && act == 1)
            loss = run_steps(Vr, Ar, Tr, Zr, nb, 4, 32, 1, step0, n_steps, lr_over_B, 1);
        else
            loss = run_steps(Vr, Ar, Tr, Zr, nb, B, n1, nk, step0, n_steps, lr_over_B, act);
        last_loss[r] = loss;
    }
}
