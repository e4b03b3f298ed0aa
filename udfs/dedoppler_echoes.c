/* The walk over the drift search's candidates, strongest first, compiled: the C form of
 * udfs.dedoppler_echoes (Echoes) driven as udfs.dedoppler.find_hits drives it. Each candidate in
 * turn is a hit unless it is an echo of the hits before it: its path sum over the steps that no
 * hit covers is no longer above snr_min, the noise median and std scaled to the steps left. A
 * hit covers, at each step, the channels of its peak track and of its refined track (each with
 * the hit's width lo .. hi and +-1 channel) and of its measured line (its width, +-1.5
 * channels); a candidate takes the hits' coverage one hit at a time, in the hits' order, and a
 * step covered once is not counted again.
 *
 * The numpy path does the same in batches (a guess of the echoes, then the exact test in
 * order); here the order is plain: measure a hit, apply its coverage to the alive candidates
 * within its reach, go on to the next alive candidate. */

#include "dedoppler_hits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int push_row(HitRows *hits, const HitRow *row)
{
    if (hits->size == hits->capacity) {
        int64_t cap = hits->capacity ? 2 * hits->capacity : 64;
        HitRow *rows = realloc(hits->rows, cap * sizeof(HitRow));
        if (!rows) return -1;
        hits->rows = rows;
        hits->capacity = cap;
    }
    hits->rows[hits->size++] = *row;
    return 0;
}

/* covered[t] for the steps t = 0 .. count - 1 of a candidate's path (c0 + path[t]): in one of
 * the hit's three bands at step t (lo and hi [band, t], rows ``stride`` apart) and not covered
 * before (seen[t]); returns how many. Vectorized. */
__attribute__((target_clones("avx2", "default")))
static int64_t covered_steps(const int64_t *restrict path, int64_t c0, const int64_t *restrict lo,
                             const int64_t *restrict hi, int64_t stride, const uint8_t *restrict seen,
                             uint8_t *restrict covered, int64_t count)
{
    int64_t found = 0;
    for (int64_t t = 0; t < count; t++) {
        int64_t col = c0 + path[t];
        uint8_t in = ((col >= lo[t]) & (col <= hi[t])) | ((col >= lo[stride + t]) & (col <= hi[stride + t]))
                     | ((col >= lo[2 * stride + t]) & (col <= hi[2 * stride + t]));
        in &= !seen[t];
        covered[t] = in;
        found += in;
    }
    return found;
}

/* The most a path strays from its straight line (displacement * t / (n - 1)), over the search. */
static double deviation(const Spectrum *s)
{
    double most = 0, scale = 1.0 / (double)(s->n - 1);
    for (int64_t d = -s->max_drift; d <= s->max_drift; d++)
        for (int64_t t = 0; t < s->n_time; t++) {
            double off = fabs((double)s->offsets[(d + s->max_drift) * s->n_time + t] - (double)d * (double)t * scale);
            most = off > most ? off : most;
        }
    return most + 1e-9;
}

typedef struct {
    double start, slope, low, high;
} Line;

/* A hit's coverage lies within low .. high channels of its peak cell's straight line (start +
 * slope * t) at every step: the hull of its bands' lines, each widened by the paths' deviation
 * (udfs.dedoppler_echoes.Echoes.coverage's ``line``). */
static Line hull(const Measured *m, int64_t peak_delta, int64_t peak_chan, double scale, double dev, int64_t T)
{
    double offset = (double)(m->lo_half + m->hi_half) / 2;
    Line ref = {(double)peak_chan, (double)peak_delta * scale, INFINITY, -INFINITY};
    Line bands[3] = {
        {ref.start, ref.slope, (double)m->lo - 1 - 2 * dev, (double)m->hi + 1 + 2 * dev},
        {(double)m->start, (double)m->total * scale, (double)m->lo - 1 - 2 * dev, (double)m->hi + 1 + 2 * dev},
        {m->centre, m->drift * scale, (double)m->lo - offset - 1.5 - dev, (double)m->hi - offset + 1.5 + dev},
    };
    for (int b = 0; b < 3; b++) {
        double o0 = bands[b].start - ref.start, o1 = o0 + (bands[b].slope - ref.slope) * (double)(T - 1);
        ref.low = fmin(ref.low, bands[b].low + fmin(o0, o1));
        ref.high = fmax(ref.high, bands[b].high + fmax(o0, o1));
    }
    return ref;
}

HitRow hit_row(int64_t index, const Measured *m, int64_t n_time)
{
    HitRow row = {index, m->start, m->total, m->lo, m->hi, m->lo_half, m->hi_half, m->track[0], m->track[0],
                  m->centre, m->drift};
    for (int64_t t = 1; t < n_time; t++) {
        row.track_min = m->track[t] < row.track_min ? m->track[t] : row.track_min;
        row.track_max = m->track[t] > row.track_max ? m->track[t] : row.track_max;
    }
    return row;
}

void strongest_first(const float *value, int64_t n, int64_t *order, int64_t *scratch, uint32_t *keys)
{
    uint32_t *key = keys, *key2 = keys + n;
    for (int64_t i = 0; i < n; i++) {
        key[i] = ~ascending_key(value[i]); /* the largest first */
        order[i] = i;
    }
    int64_t *from = order, *to = scratch;
    for (int shift = 0; shift < 33; shift += 11) { /* (three passes: the result lands in scratch) */
        int64_t count[2049] = {0};
        for (int64_t i = 0; i < n; i++) count[((key[i] >> shift) & 2047) + 1]++;
        for (int b = 0; b < 2048; b++) count[b + 1] += count[b];
        for (int64_t i = 0; i < n; i++) {
            int64_t at = count[(key[i] >> shift) & 2047]++;
            key2[at] = key[i];
            to[at] = from[i];
        }
        uint32_t *k = key;
        key = key2;
        key2 = k;
        int64_t *o = from;
        from = to;
        to = o;
    }
    memcpy(order, from, n * sizeof(int64_t)); /* (from: scratch after three passes) */
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The first position whose channel is c or more, in channels sorted ascending. */
static int64_t first_at(const int64_t *by_chan, int64_t n, int64_t c)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (by_chan[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The walk's arrays, of this thread, kept from call to call (up to KEPT_BYTES) so that a call
 * does not pay for fresh pages. */
#define KEPT_BYTES ((size_t)64 << 20)
static _Thread_local void *kept;
static _Thread_local size_t kept_size;

static void *arena(size_t size)
{
    if (size > kept_size) {
        free(kept);
        kept = malloc(size);
        kept_size = kept ? size : 0;
    }
    return kept;
}

static void arena_done(void)
{
    if (kept_size > KEPT_BYTES) {
        free(kept);
        kept = NULL;
        kept_size = 0;
    }
}

int walk_hits(const Spectrum *s, const int64_t *delta, const int64_t *chan, const float *value, int64_t n_cands,
              HitRows *hits)
{
    const int64_t T = s->n_time, C = s->n_chans, D = s->max_drift;
    const double scale = 1.0 / (double)(s->n - 1), dev = deviation(s);
    const size_t k = n_cands ? (size_t)n_cands : 1;
    const int dense = n_cands >= C / 8 || n_cands >= ((int64_t)1 << 32); /* candidates by channel: a counting sort */
    /* the candidates' state by channel (position ``at``), so that a hit's reach is one run */
    size_t sizes[] = {
        k * 8, k * 8, k * 8, k * 8, k * 8, k * 8, k * 8, /* order, pos_of, by_delta, by_chan, by_value,
                                                            covered_sum, slot */
        dense ? (C + 2) * 8 : 8, dense ? (C + 1) * 8 : 8, /* chan_start, fill */
        k * 8, 2 * k * 4,                                 /* the sort's scratch and keys */
        k * 4, k, 2 * T * 8, 3 * T * 8, 3 * T * 8, T + 8, T + 8, /* covered, alive, tracks, band_lo, band_hi,
                                                            none, now */
        k * 8, T * 8, T * 8,                              /* order_at, median_left, std_left */
    };
    enum { N_PARTS = sizeof(sizes) / sizeof(sizes[0]) };
    void *part[N_PARTS];
    size_t total = 0;
    for (int p = 0; p < N_PARTS; p++) total += (sizes[p] + 63) & ~(size_t)63;
    char *base = arena(total);
    if (!base) return -1;
    for (int p = 0; p < N_PARTS; p++) {
        part[p] = base;
        base += (sizes[p] + 63) & ~(size_t)63;
    }
    int64_t *order = part[0], *pos_of = part[1]; /* strongest first; candidate -> at */
    int64_t *by_delta = part[2];                 /* at -> its path's row of offsets */
    int64_t *by_chan = part[3];
    double *by_value = part[4];
    double *covered_sum = part[5]; /* the power on its covered steps */
    int64_t *slot = part[6];       /* its row of ``taken``, or -1 */
    int64_t *chan_start = part[7], *fill = part[8];
    int32_t *covered = part[11]; /* how many steps are covered */
    uint8_t *alive = part[12];
    int64_t *tracks = part[13], *band_lo = part[14], *band_hi = part[15]; /* bands: [band, t] */
    uint8_t *none = part[16], *now = part[17]; /* no step covered before; the steps covered now (and zeros
                                                  to a whole word) */
    int64_t *order_at = part[18];              /* the candidates' positions, strongest first */
    double *median_left = part[19], *std_left = part[20];
    uint8_t *taken = NULL;                     /* [slot, t]: the step is covered */
    int64_t n_slots = 0, slot_capacity = 0;
    int status = -1;
    strongest_first(value, n_cands, order, part[9], part[10]);
    memset(covered_sum, 0, k * 8);
    memset(covered, 0, k * 4);
    memset(alive, 1, k);
    memset(none, 0, T + 8);
    memset(now, 0, T + 8);
    if (dense) { /* a counting sort of the candidates by channel */
        memset(chan_start, 0, (C + 2) * 8);
        for (int64_t j = 0; j < n_cands; j++) chan_start[chan[j] + 1]++; /* (0 <= chan < C: the caller's) */
        for (int64_t c = 0; c < C; c++) chan_start[c + 1] += chan_start[c];
        memcpy(fill, chan_start, (C + 1) * sizeof(int64_t));
        for (int64_t j = 0; j < n_cands; j++) pos_of[j] = fill[chan[j]]++;
    } else { /* few: a sort of (channel, candidate) keys, which spares the arrays over every channel */
        uint64_t *keys = part[9]; /* (the strongest-first sort is done with its scratch) */
        for (int64_t j = 0; j < n_cands; j++) keys[j] = (uint64_t)chan[j] << 32 | (uint64_t)j;
        qsort(keys, n_cands, sizeof(uint64_t), compare_u64);
        for (int64_t at = 0; at < n_cands; at++) pos_of[keys[at] & 0xffffffffu] = at;
    }
    for (int64_t j = 0; j < n_cands; j++) {
        int64_t at = pos_of[j];
        by_delta[at] = (delta[j] + D) * T;
        by_chan[at] = chan[j];
        by_value[at] = value[j];
        slot[at] = -1;
    }
    for (int64_t i = 0; i < n_cands; i++) order_at[i] = pos_of[order[i]]; /* (no branch: the reads overlap) */
    for (int64_t c = 0; c < T; c++) { /* the noise on the steps left, by the count of steps covered */
        double frac = (double)(T - c) / (double)T;
        median_left[c] = s->median * frac;
        std_left[c] = s->std * sqrt(frac);
    }
    for (int64_t i = 0; i < n_cands; i++) {
        int64_t j = order[i];
        if (!alive[order_at[i]]) continue;
        alive[order_at[i]] = 0;
        Measured m = {.peak_track = tracks, .track = tracks + T};
        if (measure_hit(s, delta[j], chan[j], &m)) goto done;
        HitRow row = hit_row(j, &m, T);
        int64_t first = m.peak_track[0], last = m.peak_track[0];
        double offset = (double)(m.lo_half + m.hi_half) / 2;
        double line_lo = (double)m.lo - offset - 1.5, line_hi = (double)m.hi - offset + 1.5;
        for (int64_t t = 0; t < T; t++) {
            int64_t p = m.peak_track[t], q = m.track[t];
            first = p < first ? p : first;
            first = q < first ? q : first;
            last = p > last ? p : last;
            last = q > last ? q : last;
            double line = m.centre + m.drift * ((double)t * scale);
            band_lo[t] = p + m.lo - 1;
            band_hi[t] = p + m.hi + 1;
            band_lo[T + t] = q + m.lo - 1;
            band_hi[T + t] = q + m.hi + 1;
            band_lo[2 * T + t] = (int64_t)ceil(line + line_lo);
            band_hi[2 * T + t] = (int64_t)floor(line + line_hi);
        }
        if (push_row(hits, &row)) goto done;
        Line line = hull(&m, delta[j], chan[j], scale, dev, T);
        /* the candidates that may start where their paths meet the coverage */
        first += m.lo - 1 - D;
        last += m.hi + 1 + D;
        if (last < 0 || first >= C) continue;
        first = first < 0 ? 0 : first;
        last = last >= C ? C - 1 : last;
        for (int64_t at = first_at(by_chan, n_cands, first), end = first_at(by_chan, n_cands, last + 1); at < end;
             at++) {
            if (!alive[at]) continue;
            const int64_t *path = s->offsets + by_delta[at];
            const int64_t c0 = by_chan[at];
            /* the steps t0 .. t1 where its straight line is within the hull's (Echoes._ranges) */
            double a = (double)c0 - line.start, b = (double)(by_delta[at] / T - D) * scale - line.slope;
            b = b == 0 ? 1e-300 : b; /* parallel: all steps or none */
            double u = (line.low - a) / b, v = (line.high - a) / b;
            double t0d = fmax(ceil(fmin(u, v) - 1e-9), 0), t1d = fmin(floor(fmax(u, v) + 1e-9), (double)(T - 1));
            if (!(t1d >= t0d)) continue;
            int64_t t0 = (int64_t)t0d, steps = (int64_t)t1d - t0 + 1;
            const uint8_t *seen = slot[at] >= 0 ? taken + slot[at] * T : none;
            int64_t count = covered_steps(path + t0, c0, band_lo + t0, band_hi + t0, T, seen + t0, now + t0, steps);
            double sum = 0;
            for (int64_t t = t0; t < t0 + steps && count; t++)
                if (now[t]) sum += s->power[t * C + c0 + path[t]];
            if (!count) continue;
            covered_sum[at] += sum;
            covered[at] += count;
            double residual = covered[at] < T ? (by_value[at] - covered_sum[at] - median_left[covered[at]])
                                                    / std_left[covered[at]] : -INFINITY;
            if (residual <= s->snr_min) {
                alive[at] = 0;
                continue;
            }
            if (slot[at] < 0) { /* its covered steps from now on */
                if (n_slots == slot_capacity) {
                    int64_t cap = slot_capacity ? 2 * slot_capacity : 256;
                    uint8_t *grown = realloc(taken, cap * T);
                    if (!grown) goto done;
                    taken = grown;
                    slot_capacity = cap;
                }
                memset(taken + n_slots * T, 0, T);
                slot[at] = n_slots++;
            }
            uint8_t *mark = taken + slot[at] * T;
            for (int64_t t = t0; t < t0 + steps; t++) mark[t] |= now[t];
        }
    }
    status = 0;
done:
    free(taken);
    arena_done();
    return status;
}
