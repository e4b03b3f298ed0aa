/* The measurement of one hit off the tree's grid: udfs.dedoppler_tracks.measure for one cell.
 *
 * Each function below is the numpy function of udfs/dedoppler_tracks.py it is named after, for
 * one hit, with that hit's own sizes (its own window a0 .. a1, its own reach in refine and
 * centroid_line) where numpy pads a group of hits to the widest. The arithmetic is numpy's, in
 * the same order where numpy's is fixed: sums along an array's last axis are numpy's pairwise
 * sums (np_sum), the window's cumulative power is summed channel by channel from 0 (np.cumsum),
 * argmax keeps the first maximum in numpy's flattened order, np.round is round-half-to-even
 * (nearbyint), centroid_line's weights are float32 as numpy's (float32 power minus the float32
 * noise floor). Only fine_line's two matrix products (BLAS in numpy) are summed here step by
 * step in order.
 *
 * Pure C11, no globals; a few scratch arrays per call (track_widths' SNRs grow with its reach),
 * none per step. */

#include "dedoppler_hits.h"

#include <math.h>
#include <stdlib.h>

#define RISE 6.0          /* dedoppler_tracks.RISE */
#define FIRST_REACH 16    /* track_widths' reach */
#define MAX_WIDTH 4096    /* track_widths' max_width */
#define N_C 13            /* len(FINE_CENTRES): -6 .. 6 quarter channels */
#define N_D 17            /* len(FINE_DRIFTS): -8 .. 8 quarter channels */
#define FINE_SPAN 10      /* dedoppler_tracks.FINE_SPAN */
#define N_Q (4 * FINE_SPAN)  /* fine_line's table of quarter channels */
#define FIRST_MAX (4 * (FINE_SPAN - 1) - N_C)  /* fine_line's clip of ``first`` */
#define PASSES 2          /* centroid_line's passes */
#define PW_BLOCKSIZE 128  /* numpy's pairwise summation block */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* ndarray.sum along a contiguous last axis (float64): numpy's pairwise summation
 * (numpy/_core/src/umath/loops_utils.h.src, DOUBLE_pairwise_sum), the same order bit for bit. */
static double np_sum(const double *a, int64_t n)
{
    if (n < 8) {
        double res = -0.0;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= PW_BLOCKSIZE) {
        double r[8], res;
        int64_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_sum(a, n2) + np_sum(a + n2, n - n2);
}

/* Many sums at once in np_sum's order: out[j] = np_sum over t of base[off[t] + j] (as float64),
 * j = 0 .. count - 1, the values of each step contiguous in j, taken in blocks of BLOCK columns
 * (the 8 accumulators of each column in arrays, so that the additions run along j). */
#define BLOCK 256
#define DEFINE_SUM_COLUMNS(name, type)                                                               \
    static void name##_block(const type *base, const int64_t *off, int64_t nt, int64_t m, double *out) \
    {                                                                                                \
        if (nt < 8) {                                                                                \
            for (int64_t j = 0; j < m; j++)                                                          \
                out[j] = -0.0;                                                                       \
            for (int64_t t = 0; t < nt; t++)                                                         \
                for (int64_t j = 0; j < m; j++)                                                      \
                    out[j] += (double)base[off[t] + j];                                              \
            return;                                                                                  \
        }                                                                                            \
        if (nt <= PW_BLOCKSIZE) {                                                                    \
            double r[8][BLOCK];                                                                      \
            int64_t i;                                                                               \
            for (int k = 0; k < 8; k++)                                                              \
                for (int64_t j = 0; j < m; j++)                                                      \
                    r[k][j] = (double)base[off[k] + j];                                              \
            for (i = 8; i < nt - (nt % 8); i += 8)                                                   \
                for (int k = 0; k < 8; k++)                                                          \
                    for (int64_t j = 0; j < m; j++)                                                  \
                        r[k][j] += (double)base[off[i + k] + j];                                     \
            for (int64_t j = 0; j < m; j++)                                                          \
                out[j] = ((r[0][j] + r[1][j]) + (r[2][j] + r[3][j])) + ((r[4][j] + r[5][j]) + (r[6][j] + r[7][j])); \
            for (; i < nt; i++)                                                                      \
                for (int64_t j = 0; j < m; j++)                                                      \
                    out[j] += (double)base[off[i] + j];                                              \
            return;                                                                                  \
        }                                                                                            \
        double second[BLOCK];                                                                        \
        int64_t n2 = nt / 2;                                                                         \
        n2 -= n2 % 8;                                                                                \
        name##_block(base, off, n2, m, out);                                                         \
        name##_block(base, off + n2, nt - n2, m, second);                                            \
        for (int64_t j = 0; j < m; j++)                                                              \
            out[j] += second[j];                                                                     \
    }                                                                                                \
    static void name(const type *base, const int64_t *off, int64_t nt, int64_t count, double *out)    \
    {                                                                                                \
        for (int64_t j0 = 0; j0 < count; j0 += BLOCK)                                                \
            name##_block(base + j0, off, nt, min64(BLOCK, count - j0), out + j0);                   \
    }
DEFINE_SUM_COLUMNS(sum_columns_f, float)
DEFINE_SUM_COLUMNS(sum_columns_d, double)

/* track_snrs for the shifted tracks track + k, k = -reach .. reach, into snr[k + reach]: the SNR
 * of the sum (float64) of power[t, track[t] + k] over the steps, -inf where a step is outside.
 * ``off`` holds n_time. */
static void track_snrs(const Spectrum *s, const int64_t *track, int64_t reach, double *snr, int64_t *off)
{
    int64_t nt = s->n_time, nc = s->n_chans, lo = track[0], hi = track[0];
    for (int64_t t = 0; t < nt; t++) {
        lo = min64(lo, track[t]);
        hi = max64(hi, track[t]);
    }
    int64_t k0 = max64(-reach, -lo), k1 = min64(reach, nc - 1 - hi);  /* inside: k0 .. k1 */
    for (int64_t k = -reach; k <= reach; k++)
        snr[k + reach] = -INFINITY;
    if (k0 > k1)
        return;
    for (int64_t t = 0; t < nt; t++)
        off[t] = t * nc + track[t] + k0;
    sum_columns_f(s->power, off, nt, k1 - k0 + 1, snr + k0 + reach);
    for (int64_t k = k0; k <= k1; k++)
        snr[k + reach] = (snr[k + reach] - s->median) / s->std;
}

/* The SNRs of track_widths: 2 * FIRST_REACH + 1 values of the caller's, and a larger array of
 * its own once the reach grows (kept for the call's second track_widths, freed at its end). */
typedef struct {
    double first[2 * FIRST_REACH + 1];
    double *more;
    int64_t n_more;
} Snrs;

static double *snrs_for(Snrs *b, int64_t reach)
{
    if (reach == FIRST_REACH)
        return b->first;
    if (b->n_more < 2 * reach + 1) {
        free(b->more);
        b->n_more = 2 * reach + 1;
        b->more = malloc((size_t)b->n_more * sizeof(double));
        if (!b->more)
            b->n_more = 0;
    }
    return b->more;
}

/* track_widths of one track: (lo, hi, lo_half, hi_half) into w, offsets relative to the track;
 * the hill climb and the runs of _run_end walked directly, the reach grown 4-fold (the
 * recursion) while the walk meets the edge of the shifted tracks, up to MAX_WIDTH. ``off``
 * holds n_time. 0, or -1 when out of memory. */
static int track_widths(const Spectrum *s, const int64_t *track, int64_t w[4], Snrs *snrs, int64_t *off)
{
    for (int64_t reach = FIRST_REACH;; reach *= 4) {
        int64_t last = 2 * reach;
        double *snr = snrs_for(snrs, reach);
        if (!snr)
            return -1;
        track_snrs(s, track, reach, snr, off);
        /* hill climb: up (the run of rising values past reach), down (the same to the left) */
        int64_t up = reach, down = reach, top = reach;
        while (up + 1 <= last && snr[up + 1] > snr[up])
            up++;
        while (down - 1 >= 0 && snr[down - 1] > snr[down])
            down--;
        double left = snr[reach - 1], mid = snr[reach], right = snr[reach + 1];
        if ((left > right ? left : right) > mid)  /* np.maximum (no NaN here) */
            top = right > left ? up : down;
        double half = 0.5 * snr[top];
        /* outwards to lower offsets (numpy's reversed values): the falling run ends at jend,
         * the half run at h0; then to higher offsets: end1, h1 */
        int64_t jend = top, h0 = top, end1 = top, h1 = top;
        while (jend - 1 >= 0 && snr[jend - 1] > s->snr_min && snr[jend - 1] <= snr[jend] + RISE)
            jend--;
        while (h0 - 1 >= jend && snr[h0 - 1] >= half)
            h0--;
        while (end1 + 1 <= last && snr[end1 + 1] > s->snr_min && snr[end1 + 1] <= snr[end1] + RISE)
            end1++;
        while (h1 + 1 <= end1 && snr[h1 + 1] >= half)
            h1++;
        /* bounds[0] = last - jend < last, bounds[1] = end1 < last */
        int complete = (top > 0 && top < last && jend > 0 && end1 < last) || reach >= MAX_WIDTH;
        if (complete) {
            w[0] = min64(jend - reach, 0);  /* min(reach - bounds[0], 0) */
            w[1] = max64(end1 - reach, 0);
            w[2] = h0 - reach;              /* reach - halves[0] */
            w[3] = h1 - reach;
            return 0;
        }
    }
}

/* Windows for one hit: channels a0 .. a0 + size - 1, cum[t * (size + 1) + j] the power of step t
 * in its channels 0 .. j - 1 (float64, summed from channel 0 as np.cumsum). */
typedef struct {
    int64_t a0, size;
    double *cum;
} Window;

static void window_fill(const Spectrum *s, Window *w)
{
    int64_t nt = s->n_time, nc = s->n_chans, row = w->size + 1;
    const float *p = s->power + w->a0;
    double *c = w->cum;
    int64_t t = 0;
    /* four steps at a time, channel by channel: each step's sum in its own order, the four
     * chains of additions overlapping */
    for (; t + 4 <= nt; t += 4) {
        const float *p0 = p + t * nc, *p1 = p0 + nc, *p2 = p1 + nc, *p3 = p2 + nc;
        double *c0 = c + t * row, *c1 = c0 + row, *c2 = c1 + row, *c3 = c2 + row;
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
        c0[0] = c1[0] = c2[0] = c3[0] = 0.0;
        for (int64_t j = 0; j < w->size; j++) {
            c0[j + 1] = a0 += (double)p0[j];
            c1[j + 1] = a1 += (double)p1[j];
            c2[j + 1] = a2 += (double)p2[j];
            c3[j + 1] = a3 += (double)p3[j];
        }
    }
    for (; t < nt; t++) {
        const float *p0 = p + t * nc;
        double *c0 = c + t * row, a0 = 0.0;
        c0[0] = 0.0;
        for (int64_t j = 0; j < w->size; j++)
            c0[j + 1] = a0 += (double)p0[j];
    }
}

/* Windows.cum at column j of step t: numpy's values where it reads inside the row (the
 * cumulative is constant past size); clamped to the row where numpy's flat clip reads a
 * neighbouring row (only lines that are not inside read there, or with weight 0). */
static double window_cum(const Window *w, int64_t t, int64_t j)
{
    j = j < 0 ? 0 : (j > w->size ? w->size : j);
    return w->cum[t * (w->size + 1) + j];
}

/* refine for one hit: the (start, total) whose track's window of hi - lo + 1 channels holds the
 * most power, starts and totals within +-reach (reach = max(2, width)); the first best in
 * numpy's order (total, then start). ``sums`` holds n_time * (size + 1), ``line`` 2 * reach + 1,
 * ``off`` n_time. */
static void refine(const Spectrum *s, const Window *win, int64_t *start, int64_t *total, int64_t lo, int64_t hi,
                   double *sums, double *line, int64_t *off)
{
    int64_t nt = s->n_time, D = s->max_drift, width = hi - lo + 1;
    int64_t reach = max64(2, width), n_j = win->size - width + 1;  /* window sums j = 0 .. size - width */
    if (n_j <= 0)
        return;  /* no window fits: none ok, not found */
    for (int64_t t = 0; t < nt; t++) {  /* Windows.sums: cumulative[j + width] - cumulative[j] */
        const double *c = win->cum + t * (win->size + 1);
        for (int64_t j = 0; j < n_j; j++)
            sums[t * n_j + j] = c[j + width] - c[j];
    }
    int64_t base = *start - win->a0 + lo;  /* starts[S] = base + S - reach, window coordinates */
    double best = -INFINITY;
    int64_t best_t = 0, best_s = 0;
    int found = 0;
    for (int64_t bt = -reach; bt <= reach; bt++) {
        int64_t tt = *total + bt;
        if (tt < -D || tt > D)
            continue;
        const int64_t *path = s->offsets + (tt + D) * nt;
        int64_t pmin = path[0], pmax = path[0];
        for (int64_t t = 0; t < nt; t++) {
            pmin = min64(pmin, path[t]);
            pmax = max64(pmax, path[t]);
        }
        /* ok: low = pmin + st >= 0, high = pmax + st + width <= size */
        int64_t s0 = max64(-reach, -pmin - base), s1 = min64(reach, win->size - width - pmax - base);
        if (s0 > s1)
            continue;
        for (int64_t t = 0; t < nt; t++)
            off[t] = t * n_j + path[t] + base + s0;
        sum_columns_d(sums, off, nt, s1 - s0 + 1, line);
        for (int64_t bs = s0; bs <= s1; bs++)
            if (line[bs - s0] > best) {
                best = line[bs - s0], best_t = bt, best_s = bs, found = 1;
            }
    }
    if (found && isfinite(best)) {
        *start += best_s;
        *total += best_t;
    }
}

/* fine_line for one hit: the line (centre at the first step in window coordinates, channels moved
 * over the n - 1 steps) on the grid of quarter channels of centre and drift around (centre,
 * total) whose window of +-span / 2 channels holds the most power; numpy's table of quarter
 * channels per step and its runs, the matrix products summed over the steps in order.
 * ``scratch`` holds n_time * (N_Q + 2 * N_D). */
static void fine_line(const Spectrum *s, const Window *win, double centre, int64_t total, int64_t lo, int64_t hi,
                      double *scratch, double *out_centre, double *out_drift)
{
    int64_t nt = s->n_time, span = hi - lo + 1;
    double drifts[N_D], half_span = (double)span / 2.0;
    double a = ((centre + (-6 * 0.25)) + 0.5) - half_span;  /* lower edge of the first centre's window */
    double *table = scratch, *frac = table + nt * N_Q;       /* [t, q], [t, d] */
    int64_t *first = (int64_t *)(frac + nt * N_D);            /* [t, d] */
    for (int d = 0; d < N_D; d++)
        drifts[d] = (double)total + (d - 8) * 0.25;
    for (int64_t t = 0; t < nt; t++) {  /* each step's table and each drift's run of it */
        double slope = (double)t / (double)(s->n - 1), edge[N_D], lowest = INFINITY;
        for (int d = 0; d < N_D; d++) {
            edge[d] = a + slope * drifts[d];
            lowest = edge[d] < lowest ? edge[d] : lowest;
        }
        int64_t origin = (int64_t)floor(lowest);
        double power[FINE_SPAN + 1], *tab = table + t * N_Q;
        for (int j = 0; j <= FINE_SPAN; j++)
            power[j] = window_cum(win, t, origin + j + span) - window_cum(win, t, origin + j);
        for (int q = 0; q < N_Q; q++)
            tab[q] = power[q / 4] + ((double)(q % 4) / 4.0) * (power[q / 4 + 1] - power[q / 4]);
        for (int d = 0; d < N_D; d++) {
            double quarter = 4.0 * (edge[d] - (double)origin);
            first[t * N_D + d] = min64((int64_t)quarter, FIRST_MAX);
            frac[t * N_D + d] = quarter - (double)first[t * N_D + d];
        }
    }
    double last_slope = (double)(nt - 1) / (double)(s->n - 1);
    double best = -INFINITY, sums[N_C][N_D];
    int inside[N_C][N_D];
    for (int d = 0; d < N_D; d++) {
        double move = drifts[d] * last_slope;
        int any = 0;
        for (int c = 0; c < N_C; c++) {  /* the line's window inside the hit's at the first and last steps */
            double centre_c = centre + (c - 6) * 0.25;
            double lower = (centre_c + (0.5 - half_span)) + (move < 0.0 ? move : 0.0);
            double upper = (centre_c + (0.5 + half_span)) + (move > 0.0 ? move : 0.0);
            inside[c][d] = lower >= 0 && upper <= (double)win->size && fabs(drifts[d]) <= (double)s->max_drift + 0.5;
            any |= inside[c][d];
        }
        if (!any)
            continue;
        /* low = (1 - w) @ rows (columns 0 .. N_C - 1 used), high = w @ rows (columns 1 .. N_C):
         * over the steps, this drift's accumulators (one product at a time: few enough to stay
         * in registers) */
        double low[N_C] = {0}, high[N_C] = {0};
        for (int64_t t = 0; t < nt; t++) {
            const double *row = table + t * N_Q + first[t * N_D + d];
            double rest = 1.0 - frac[t * N_D + d];
            for (int c = 0; c < N_C; c++)
                low[c] += rest * row[c];
        }
        for (int64_t t = 0; t < nt; t++) {
            const double *row = table + t * N_Q + first[t * N_D + d] + 1;
            double f = frac[t * N_D + d];
            for (int c = 0; c < N_C; c++)
                high[c] += f * row[c];
        }
        for (int c = 0; c < N_C; c++)
            sums[c][d] = low[c] + high[c];
    }
    int best_c = 0, best_d = 0, found = 0;
    for (int c = 0; c < N_C; c++)  /* argmax over [c, d], d fastest */
        for (int d = 0; d < N_D; d++)
            if (inside[c][d] && sums[c][d] > best) {
                best = sums[c][d], best_c = c, best_d = d, found = 1;
            }
    if (found && isfinite(best)) {
        *out_centre = centre + (best_c - 6) * 0.25;
        *out_drift = drifts[best_d];
    } else {
        *out_centre = centre;
        *out_drift = (double)total;
    }
}

/* centroid_line for one hit: the weighted least-squares line through each step's centroid of
 * power above the noise floor within +-ceil(half_width) channels of the line, PASSES times;
 * unchanged from the pass where a column leaves the window or a step has no power. ``buf``
 * holds 2 * (2 * ceil(half_width) + 1) + 5 * n_time. */
static void centroid_line(const Spectrum *s, const Window *win, double *centre, double *total, double half_width,
                          double *buf)
{
    int64_t nt = s->n_time, nc = s->n_chans;
    int64_t reach = (int64_t)ceil(half_width), n_o = 2 * reach + 1;
    float floor32 = (float)(s->median / (double)nt);  /* numpy: float32 power - Python float */
    double *weight = buf, *moment = weight + n_o, *mass = moment + n_o, *cen = mass + nt;
    double *tmp = cen + nt, *dx = tmp + nt, *x = dx + nt;
    for (int64_t t = 0; t < nt; t++)
        x[t] = (double)t / (double)(s->n - 1);
    for (int pass = 0; pass < PASSES; pass++) {
        for (int64_t t = 0; t < nt; t++) {
            int64_t col = (int64_t)nearbyint(*centre + *total * x[t]);
            if (col - reach < 0 || col + reach >= win->size)
                return;
        }
        for (int64_t t = 0; t < nt; t++) {
            int64_t col = (int64_t)nearbyint(*centre + *total * x[t]) - reach;
            const float *p = s->power + t * nc + win->a0;
            for (int64_t o = 0; o < n_o; o++) {
                float w = p[col + o] - floor32;
                w = w >= 0.0f ? w : 0.0f;  /* np.maximum(values - floor, 0), float32 */
                weight[o] = (double)w;
                moment[o] = (double)w * (double)(col + o);
            }
            mass[t] = np_sum(weight, n_o);
            if (!(mass[t] > 0))
                return;
            cen[t] = np_sum(moment, n_o) / mass[t];
        }
        double sum = np_sum(mass, nt);
        for (int64_t t = 0; t < nt; t++)
            tmp[t] = mass[t] * x[t];
        double mx = np_sum(tmp, nt) / sum;
        for (int64_t t = 0; t < nt; t++)
            tmp[t] = mass[t] * cen[t];
        double my = np_sum(tmp, nt) / sum;
        for (int64_t t = 0; t < nt; t++) {
            dx[t] = x[t] - mx;
            tmp[t] = (mass[t] * dx[t]) * (cen[t] - my);
        }
        double sxy = np_sum(tmp, nt);
        for (int64_t t = 0; t < nt; t++)
            tmp[t] = (mass[t] * dx[t]) * dx[t];
        double slope = sxy / np_sum(tmp, nt);
        *centre = my - slope * mx;
        *total = slope;
    }
}

/* measure (with _measure_group) for the hit whose tree cell is (delta, chan). */
int measure_hit(const Spectrum *s, int64_t delta, int64_t chan, Measured *m)
{
    int64_t nt = s->n_time, D = s->max_drift, w[4];
    /* the steps' offsets into a row of values, track_widths' SNRs */
    int64_t *off = malloc((size_t)nt * sizeof(int64_t));
    Snrs snrs = {.more = NULL, .n_more = 0};
    double *cum = NULL, *line = NULL;
    int status = -1;
    if (!off)
        goto done;
    const int64_t *path = s->offsets + (delta + D) * nt;
    int64_t pmin = chan + path[0], pmax = chan + path[0];
    for (int64_t t = 0; t < nt; t++) {
        m->peak_track[t] = m->track[t] = chan + path[t];
        pmin = min64(pmin, m->peak_track[t]);
        pmax = max64(pmax, m->peak_track[t]);
    }
    if (track_widths(s, m->peak_track, w, &snrs, off))
        goto done;
    int64_t start = chan, total = delta;
    /* _measure_group's window: the refinements look only near the track */
    int64_t margin = 2 * max64(2, w[3] - w[2] + 1) + 8;
    Window win;
    win.a0 = max64(0, pmin + w[2] - margin);
    win.size = max64(0, min64(s->n_chans, pmax + w[3] + margin + 1) - win.a0);
    /* the window's cumulative power, refine's window sums and its line of sums */
    int64_t n_line = 2 * max64(2, w[3] - w[2] + 1) + 1;
    cum = malloc((size_t)(2 * nt * (win.size + 1) + n_line) * sizeof(double));
    if (!cum)
        goto done;
    win.cum = cum;
    window_fill(s, &win);
    if (w[3] - w[2] >= 2) {  /* follow a wide signal's centre line */
        refine(s, &win, &start, &total, w[2], w[3], cum + nt * (win.size + 1), cum + 2 * nt * (win.size + 1), off);
        path = s->offsets + (total + D) * nt;
        for (int64_t t = 0; t < nt; t++)
            m->track[t] = start + path[t];
        if (track_widths(s, m->track, w, &snrs, off))
            goto done;
    }
    double centre, drift, half_width = (double)(w[3] - w[2] + 1) / 2.0;
    int64_t n_o = 2 * (int64_t)ceil(half_width) + 1;  /* fine_line's scratch, then centroid_line's */
    line = malloc((size_t)max64(nt * (N_Q + 2 * N_D), 2 * n_o + 5 * nt) * sizeof(double));
    if (!line)
        goto done;
    fine_line(s, &win, (double)(start - win.a0) + (double)(w[2] + w[3]) / 2.0, total, w[2], w[3], line, &centre,
              &drift);
    centroid_line(s, &win, &centre, &drift, half_width, line);
    m->start = start;
    m->total = total;
    m->lo = w[0];
    m->hi = w[1];
    m->lo_half = w[2];
    m->hi_half = w[3];
    m->centre = centre + (double)win.a0;
    m->drift = drift;
    status = 0;
done:
    free(line);
    free(cum);
    free(snrs.more);
    free(off);
    return status;
}
