/* Leapfrog trajectories of 2D phi^4 fields in the hopping-parameter form
 * (physml.lattice.phi4, whose torch code is the twin of this kernel):
 *
 *   F(phi)_x = -dS/dphi_x = 2 kappa sum_{+-mu} phi_{x+-mu} + phi_x ((4 lambda - 2) - 4 lambda phi_x^2)
 *
 *   S(phi) = sum_x [ phi_x^2 (lambda phi_x^2 + 1 - 2 lambda) - 2 kappa phi_x (phi_{x+1} + phi_{x+2}) ]
 *
 * kick-drift-kick: p += dt/2 F(x); n_steps times { x += dt p; p += dt F(x) } with the
 * last kick dt/2.  x and p (float64, C order (n, lx, ly), periodic in both site axes) are
 * updated in place, one configuration after the other, so that a configuration's x and p
 * stay in the L1 cache for the whole trajectory; per configuration the kernel also
 * returns the change of the kinetic energy p^2/2 and the action of the final x (buf:
 * lx * ly doubles of scratch).
 */
#include <stddef.h>

/* p += h F(x) at the sites j0 <= j < j1 of one row, neighbours in the row at j -+ 1 (wrapped
 * by the caller at the ends), in the rows above and below at j */
static inline __attribute__((always_inline))
void kick_sites(double *restrict p, const double *restrict row, const double *restrict up,
                const double *restrict down, long j0, long j1, long jl, long jr,
                double h, double two_kappa, double c1, double c2)
{
    for (long j = j0; j < j1; j++) {
        const double xx = row[j];
        const double nn = up[j] + down[j] + row[jl + j] + row[jr + j];
        p[j] += h * (two_kappa * nn + xx * (c1 - c2 * xx * xx));
    }
}

/* p += h F(x) for one lx * ly configuration (inlined, so that every target clone of
 * phi4_leapfrog gets its own vectorised copy) */
static inline __attribute__((always_inline))
void kick(double *restrict p, const double *restrict x, long lx, long ly,
                 double h, double two_kappa, double c1, double c2)
{
    for (long i = 0; i < lx; i++) {
        const double *row = x + i * ly;
        const double *up = x + ((i + lx - 1) % lx) * ly, *down = x + ((i + 1) % lx) * ly;
        double *prow = p + i * ly;
        if (ly == 1) {
            kick_sites(prow, row, up, down, 0, 1, 0, 0, h, two_kappa, c1, c2);
            continue;
        }
        kick_sites(prow, row, up, down, 0, 1, ly - 1, 1, h, two_kappa, c1, c2);
        kick_sites(prow, row, up, down, 1, ly - 1, -1, 1, h, two_kappa, c1, c2);   /* vectorised */
        kick_sites(prow, row, up, down, ly - 1, ly, -1, 1 - ly, h, two_kappa, c1, c2);
    }
}

/* sum of v[0..n) in 8 interleaved partial sums, so that the compiler can vectorise it
 * without reassociating (the order is fixed, the result deterministic) */
static inline __attribute__((always_inline))
double sum8(const double *restrict v, long n)
{
    double acc[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += v[i + l];
    double s = 0;
    for (; i < n; i++) s += v[i];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

/* S(x) of one configuration; buf holds lx * ly doubles of scratch */
static inline __attribute__((always_inline))
double action(const double *restrict x, double *restrict buf, long lx, long ly, double kappa, double lam)
{
    for (long i = 0; i < lx; i++) {
        const double *row = x + i * ly, *down = x + ((i + 1) % lx) * ly;
        double *b = buf + i * ly;
        for (long j = 0; j < ly - 1; j++)
            b[j] = row[j] * row[j] * (lam * row[j] * row[j] + (1 - 2 * lam))
                   - 2 * kappa * row[j] * (down[j] + row[j + 1]);
        const long j = ly - 1;
        b[j] = row[j] * row[j] * (lam * row[j] * row[j] + (1 - 2 * lam))
               - 2 * kappa * row[j] * (down[j] + row[0]);
    }
    return sum8(buf, lx * ly);
}

/* p^2 / 2 of one configuration; buf as for action */
static inline __attribute__((always_inline))
double kinetic(const double *restrict p, double *restrict buf, long V)
{
    for (long i = 0; i < V; i++) buf[i] = p[i] * p[i];
    return 0.5 * sum8(buf, V);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
void phi4_leapfrog(double *restrict x, double *restrict p, long n, long lx, long ly,
                   double kappa, double lam, double dt, long n_steps,
                   double *restrict d_kinetic, double *restrict s_final, double *restrict buf)
{
    const double two_kappa = 2 * kappa, c1 = 4 * lam - 2, c2 = 4 * lam;
    const long V = lx * ly;
    for (long c = 0; c < n; c++) {
        double *restrict xc = x + c * V, *restrict pc = p + c * V;
        const double k0 = kinetic(pc, buf, V);
        kick(pc, xc, lx, ly, 0.5 * dt, two_kappa, c1, c2);
        for (long s = 0; s < n_steps; s++) {
            for (long k = 0; k < V; k++) xc[k] += dt * pc[k];
            kick(pc, xc, lx, ly, s < n_steps - 1 ? dt : 0.5 * dt, two_kappa, c1, c2);
        }
        d_kinetic[c] = kinetic(pc, buf, V) - k0;
        s_final[c] = action(xc, buf, lx, ly, kappa, lam);
    }
}
