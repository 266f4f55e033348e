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
 *
 * Clones: sgd_steps_avx512 (x86-64-v4), sgd_steps_avx2 (x86-64-v3) and sgd_steps_baseline
 * (the compiler's default target) do the same arithmetic; cpu_clones() is the bitmask
 * (1 avx512, 2 avx2, 4 baseline) of those this CPU runs, and the caller picks one
 * (physml.native).  The body below is compiled once per vector width VW: 16 floats for
 * AVX-512 (a row of W^T is one register), 8 for AVX2 and 4 for the baseline (SSE2, NEON),
 * each the width of the clone's registers: wider vectors than the registers are split by
 * the compiler through the stack.  For the paper's shape the AVX2 clone then holds the
 * 4 samples x 16 outputs of u (or delta) in 8 ymm registers, a row of W^T in 2 and one
 * a_b[i] at a time in 1, within the 16 that AVX2 has.
 */
#ifndef VW  /* ---------------------------------------------- shared part, then the clones */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#define VW 16
#include "sgd_teacher_student.c"
#undef VW
#define VW 8
#include "sgd_teacher_student.c"
#undef VW
#define VW 4
#include "sgd_teacher_student.c"
#undef VW

#define SGD_ARGS float *restrict V, const float *restrict A, const float *restrict T, \
    const float *restrict Z, const uint8_t *restrict active, double *restrict last_loss, \
    long R, long nb, long B, long n1, long nk, long step0, long n_steps, float lr_over_B, int act
#define SGD_PASS V, A, T, Z, active, last_loss, R, nb, B, n1, nk, step0, n_steps, lr_over_B, act

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("arch=x86-64-v4"))) void sgd_steps_avx512(SGD_ARGS) { sgd_runs16(SGD_PASS); }
__attribute__((target("arch=x86-64-v3"))) void sgd_steps_avx2(SGD_ARGS) { sgd_runs8(SGD_PASS); }

int cpu_clones(void)
{
    __builtin_cpu_init();
    return (__builtin_cpu_supports("x86-64-v4") ? 1 : 0) | (__builtin_cpu_supports("x86-64-v3") ? 2 : 0) | 4;
}
#else
int cpu_clones(void) { return 4; }
#endif

void sgd_steps_baseline(SGD_ARGS) { sgd_runs4(SGD_PASS); }

#else  /* ------------------------------------------------- the body for vectors of VW floats */
#define vec CAT(vf, VW)
#define veci CAT(vi, VW)
#define WIDE(name) CAT(name, VW)

typedef float vec __attribute__((vector_size(4 * VW), aligned(4)));
typedef int32_t veci __attribute__((vector_size(4 * VW), aligned(4)));

INLINE vec WIDE(splat)(float x) { return (vec){0} + x; }
INLINE vec WIDE(blend)(veci mask, vec a, vec b) { return (vec)((mask & (veci)a) | (~mask & (veci)b)); }
INLINE vec WIDE(load)(const float *p) { vec v; memcpy(&v, p, sizeof v); return v; }
INLINE void WIDE(store)(float *p, vec v) { memcpy(p, &v, sizeof v); }

/* tanh(x) = sign(x) m / (m + 2) with m = expm1(2|x|), |x| clamped at 9 (tanh(9) rounds to 1
 * in float32).  expm1(y) = 2^n expm1(f) + (2^n - 1), n = round(y / ln 2), |f| <= ln(2)/2,
 * expm1(f) by its Taylor series to f^7/7! (the rest is below float32 rounding), so the
 * relative error stays at a few ulp also for tiny x. */
INLINE vec WIDE(tanhv)(vec x) {
    const veci sign = (veci)x & (int32_t)0x80000000;
    vec ax = (vec)((veci)x & 0x7fffffff);
    ax = WIDE(blend)(ax > 9.0f, WIDE(splat)(9.0f), ax);
    const vec y = ax + ax;
    const float shifter = 12582912.0f;            /* 1.5 * 2^23: adding it rounds to an integer */
    const vec big = y * (float)M_LOG2E + shifter;
    const veci n = (veci)big - (veci)WIDE(splat)(shifter);
    const vec f = y - (big - shifter) * (float)M_LN2;
    vec p = WIDE(splat)(1.0f / 5040);
    p = p * f + 1.0f / 720;
    p = p * f + 1.0f / 120;
    p = p * f + 1.0f / 24;
    p = p * f + 1.0f / 6;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f;                                     /* expm1(f) */
    const vec two_n = (vec)((n + 127) << 23);
    const vec m = two_n * p + (two_n - 1.0f);
    return (vec)((veci)(m / (m + 2.0f)) | sign);
}

/* s = f(u) and f'(u) */
INLINE void WIDE(activate)(int act, vec u, vec *s, vec *d) {
    if (act == 0) {
        *s = WIDE(tanhv)(u);
        *d = 1.0f - *s * *s;
    } else if (act == 1) {
        const veci pos = u > 0.0f;
        *s = WIDE(blend)(pos, u, WIDE(splat)(0));
        *d = WIDE(blend)(pos, WIDE(splat)(1), WIDE(splat)(0));
    } else {
        *s = u;
        *d = WIDE(splat)(1);
    }
}

INLINE float WIDE(hsum)(vec v) {
    float s = 0;
    for (int k = 0; k < VW; k++) s += v[k];
    return s;
}

/* n_steps SGD steps of one run, rows of nv vectors; returns its last mini-batch loss.
 * Inlined with constant sizes for the paper's shape, so that the compiler keeps the
 * B x nv pre-activations and deltas in registers. */
INLINE double WIDE(run_steps)(float *restrict V, const float *restrict A, const float *restrict T,
                              const float *restrict Z, long nb, long B, long n1, long nv,
                              long step0, long n_steps, float lr_over_B, int act)
{
    vec u[B][nv], d[B][nv], v[nv];
    double loss = 0;
    long batch = step0 % nb;
    for (long step = 0; step < n_steps; step++) {
        const float *restrict a = A + batch * B * n1;
        const float *restrict t = T + batch * B;
        for (long b = 0; b < B; b++)
            for (long j = 0; j < nv; j++) u[b][j] = WIDE(splat)(0);
        for (long i = 0; i < n1; i++) {                     /* u_b = W a_b */
            for (long j = 0; j < nv; j++) v[j] = WIDE(load)(V + (i * nv + j) * VW);
            for (long b = 0; b < B; b++) {                  /* one a_b[i] live at a time */
                const float ab = a[b * n1 + i];
                for (long j = 0; j < nv; j++) u[b][j] += ab * v[j];
            }
        }
        loss = 0;
        for (long b = 0; b < B; b++) {                      /* e_b, delta_b * lr/B */
            vec y = WIDE(splat)(0), s;
            for (long j = 0; j < nv; j++) {
                WIDE(activate)(act, u[b][j], &s, &d[b][j]);
                y += WIDE(load)(Z + j * VW) * s;
            }
            const float e = WIDE(hsum)(y) - t[b];
            loss += (double)e * e;
            for (long j = 0; j < nv; j++) d[b][j] *= (e * lr_over_B) * WIDE(load)(Z + j * VW);
        }
        for (long i = 0; i < n1; i++) {                     /* V[i] -= sum_b a_b[i] delta_b */
            for (long j = 0; j < nv; j++) v[j] = WIDE(load)(V + (i * nv + j) * VW);
            for (long b = 0; b < B; b++) {
                const float ab = a[b * n1 + i];
                for (long j = 0; j < nv; j++) v[j] -= ab * d[b][j];
            }
            for (long j = 0; j < nv; j++) WIDE(store)(V + (i * nv + j) * VW, v[j]);
        }
        if (++batch == nb) batch = 0;
    }
    return 0.5 * loss / B;
}

/* every active run in turn (nk blocks of 16 outputs = 16 / VW vectors each) */
INLINE void WIDE(sgd_runs)(float *restrict V, const float *restrict A, const float *restrict T,
                           const float *restrict Z, const uint8_t *restrict active,
                           double *restrict last_loss, long R, long nb, long B, long n1, long nk,
                           long step0, long n_steps, float lr_over_B, int act)
{
    const long nv = nk * (16 / VW);
    for (long r = 0; r < R; r++) {
        if (!active[r]) continue;
        float *Vr = V + r * n1 * nk * 16;
        const float *Ar = A + r * nb * B * n1, *Tr = T + r * nb * B, *Zr = Z + r * nk * 16;
        double loss;
        if (B == 4 && n1 == 32 && nk == 1 && act == 0)      /* 3 -> 32 -> 16 -> 1, tanh, B = 4 */
            loss = WIDE(run_steps)(Vr, Ar, Tr, Zr, nb, 4, 32, 16 / VW, step0, n_steps, lr_over_B, 0);
        else if (B == 4 && n1 == 32 && nk == 1 && act == 1)
            loss = WIDE(run_steps)(Vr, Ar, Tr, Zr, nb, 4, 32, 16 / VW, step0, n_steps, lr_over_B, 1);
        else
            loss = WIDE(run_steps)(Vr, Ar, Tr, Zr, nb, B, n1, nv, step0, n_steps, lr_over_B, act);
        last_loss[r] = loss;
    }
}

#undef vec
#undef veci
#undef WIDE
#endif
