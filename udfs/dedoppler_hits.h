/* The drift search after the tree, compiled: the measurement of one hit off the tree's grid
 * (dedoppler_measure.c, the C form of udfs.dedoppler_tracks.measure for one hit) and the walk
 * over the candidates strongest first that keeps the hits and merges their echoes
 * (dedoppler_hits.c, the C form of udfs.dedoppler_echoes with udfs.dedoppler.find_hits). */

#ifndef DEDOPPLER_HITS_H
#define DEDOPPLER_HITS_H

#include <stdint.h>
#include <string.h>

typedef struct {
    const float *power;      /* [n_time, n_chans], C order */
    int64_t n_time, n_chans;
    int64_t n;               /* n_time rounded up to a power of two (the tree's steps) */
    int64_t max_drift;       /* D: displacements -D .. D */
    const int64_t *offsets;  /* [2 * D + 1, n_time]: path_offsets(n, D)[:, :n_time] */
    double median, std, snr_min;
} Spectrum;

typedef struct {
    int64_t *peak_track;     /* [n_time], the caller's: chan + offsets[delta + D] */
    int64_t *track;          /* [n_time], the caller's: start + offsets[total + D] */
    int64_t start, total;    /* the refined cell (the peak cell unless the hit is wide) */
    int64_t lo, hi, lo_half, hi_half;  /* track_widths of the track */
    double centre;           /* channel of the centre line at the first step */
    double drift;            /* channels the centre line moves over the n - 1 steps */
} Measured;

/* The measurement of the hit whose tree cell is (delta, chan): what udfs.dedoppler_tracks.measure
 * gives for it. 0, or -1 when out of memory. */
int measure_hit(const Spectrum *s, int64_t delta, int64_t chan, Measured *m);

/* A hit as the walk reports it: which candidate, and its measurement (tracks' extent only). */
typedef struct {
    int64_t index;                     /* the candidate's position, strongest first */
    int64_t start, total, lo, hi, lo_half, hi_half;
    int64_t track_min, track_max;      /* channels the refined track spans */
    double centre, drift;
} HitRow;

typedef struct {
    HitRow *rows;
    int64_t size, capacity;
} HitRows;

/* A float32's bits as a key that increases with its value (-0.0 and 0.0 one key), and back. */
static inline uint32_t ascending_key(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if (bits == 0x80000000u) bits = 0;
    return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

static inline float key_value(uint32_t key)
{
    uint32_t bits = key & 0x80000000u ? key & 0x7fffffffu : ~key;
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

/* The HitRow of candidate ``index`` measured as m (its track's extent over the n_time steps). */
HitRow hit_row(int64_t index, const Measured *m, int64_t n_time);

/* The order of n float32 values from the largest, equal values by position (np.argsort(-value,
 * kind="stable")): an LSD radix sort. scratch: room for n int64, keys: for 2 * n uint32. */
void strongest_first(const float *value, int64_t n, int64_t *order, int64_t *scratch, uint32_t *keys);

/* The hits among the candidates (tree cells delta, chan with float32 path sums value, in any
 * order): strongest first, each candidate is a hit unless the coverage of the hits before it
 * made it an echo (udfs.dedoppler_echoes); HitRow.index is its position in the arrays given.
 * Appends to ``hits``; 0, or -1 when out of memory. */
int walk_hits(const Spectrum *s, const int64_t *delta, const int64_t *chan, const float *value, int64_t n_cands,
              HitRows *hits);

#endif
