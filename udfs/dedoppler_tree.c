/* The drift search's inner loop, compiled: udfs._dedoppler_tree_c.peaks runs the additions of a
 * udfs.dedoppler_tree.Plan (its op list, as udfs.dedoppler_tree._fused orders it over three
 * buffers: two for the stored levels, one of scratch rows) over every chunk of channels of a spectrogram, in both
 * directions, and returns the tree cells above a threshold that are local maxima on turboSETI's
 * grids -- the same cells, in the same order and with the same float32 sums, as the numpy path
 * (udfs.dedoppler_tree.drift_sums_above with the compiled kernel off). The plan stays in Python:
 * this file only executes it, so there is one definition of the tree.
 *
 * The GIL is released while it runs. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h> /* INFINITY */

#include "python_buffers.h"

enum { OP_ADD = 0, OP_CLEAR = 1 };
enum { N_BUFFERS = 3, SCRATCH = 2 }; /* the levels' two buffers, and rows made just before their use */

/* out[i] = a[i] + b[i]: the only arithmetic of the tree. Built for AVX2 and for the baseline, the
 * loader picks one on the running CPU; the sums are the same (one rounding per addition). */
__attribute__((target_clones("avx2", "default")))
static void add_rows(const float *restrict a, const float *restrict b, float *restrict out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* add_rows, and most[i] = the larger of most[i] and out[i] while out[i] is in a register. */
__attribute__((target_clones("avx2", "default")))
static void add_rows_max(const float *restrict a, const float *restrict b, float *restrict out, float *restrict most,
                         Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        out[i] = v;
        most[i] = v > most[i] ? v : most[i];
    }
}

typedef float float8 __attribute__((vector_size(32)));
typedef int32_t int8x32 __attribute__((vector_size(32)));

/* add_rows, returning the largest of ``most`` and the sums (8 running maxima, in registers). */
__attribute__((target_clones("avx2", "default")))
static float add_rows_most(const float *restrict a, const float *restrict b, float *restrict out, Py_ssize_t n,
                           float most)
{
    float8 lanes = most - (float8){0};
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float8 x, y;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        float8 v = x + y;
        memcpy(out + i, &v, sizeof v);
        int8x32 larger = v > lanes; /* (a NaN is never larger, as in the scalar form) */
        lanes = (float8)(((int8x32)v & larger) | ((int8x32)lanes & ~larger));
    }
    for (; i < n; i++) {
        float v = a[i] + b[i];
        out[i] = v;
        most = v > most ? v : most;
    }
    for (int k = 0; k < 8; k++) most = lanes[k] > most ? lanes[k] : most;
    return most;
}

typedef struct {
    int64_t *delta, *chan;
    float *value;
    Py_ssize_t size, capacity;
} Found;

static int found_push(Found *f, int64_t delta, int64_t chan, float value)
{
    if (f->size == f->capacity) {
        Py_ssize_t cap = f->capacity ? 2 * f->capacity : 1024;
        int64_t *d = realloc(f->delta, cap * sizeof(int64_t));
        if (d) f->delta = d;
        int64_t *c = realloc(f->chan, cap * sizeof(int64_t));
        if (c) f->chan = c;
        float *v = realloc(f->value, cap * sizeof(float));
        if (v) f->value = v;
        if (!d || !c || !v) return -1;
        f->capacity = cap;
    }
    f->delta[f->size] = delta;
    f->chan[f->size] = chan;
    f->value[f->size] = value;
    f->size++;
    return 0;
}

typedef struct {
    const float *power;          /* [n_time, n_chans] */
    Py_ssize_t n_time, n_chans;
    Py_ssize_t n, width, chunk, max_drift;
    const int64_t *ops;          /* [n_ops, 7]: kind 0 (add), src buffer, a, b, dst buffer, out, length;
                                    kind 1 (clear), buffer, start, 0, 0, 0, length */
    Py_ssize_t n_ops;
    const int64_t *steps;        /* [n]: time step at each position of x */
    const int64_t *row_of_delta; /* [D + 1] */
    const uint8_t *block_end;    /* [D + 1]: no comparison with the displacement above */
    const int64_t *reach;        /* [D + 1]: channels the path of each displacement moves at most */
    int top_buffer;
    float threshold;
    Py_ssize_t split_op;         /* ops split_op .. top_op - 1 make the level below the top (-1: none) */
    Py_ssize_t split_second;     /* where that level's second halves start in its buffer */
    Py_ssize_t top_op;           /* ops from here on make the top level (their rows' maxima are kept) */
} Search;

/* x (buffer 0, [n, width]) = channels first - 1 .. first - 2 + width of the data in this
 * direction (sign -1: channels read from the top), zero outside the band and past n_time. */
static void load(const Search *s, float *x, Py_ssize_t first, int sign)
{
    Py_ssize_t lo = first - 1, w = s->width;
    for (Py_ssize_t pos = 0; pos < s->n; pos++) {
        float *row = x + pos * w;
        Py_ssize_t t = s->steps[pos];
        if (t >= s->n_time) {
            memset(row, 0, w * sizeof(float));
            continue;
        }
        const float *src = s->power + t * s->n_chans;
        Py_ssize_t a = lo < 0 ? 0 : lo, b = lo + w < s->n_chans ? lo + w : s->n_chans;
        if (a > lo || b < lo + w) memset(row, 0, w * sizeof(float));
        if (sign > 0) {
            if (b > a) memcpy(row + (a - lo), src + a, (b - a) * sizeof(float));
        } else {
            for (Py_ssize_t c = a; c < b; c++)
                row[c - lo] = src[s->n_chans - 1 - c];
        }
    }
}

/* The next chunk's spectrogram lines, asked of the memory a few at a time while this chunk's
 * levels are made: a chunk reads n_time short runs of channels a whole row apart, which the
 * hardware prefetcher does not see coming, so without this the load waits on memory. */
typedef struct {
    const float *power;
    Py_ssize_t stride, rows;   /* floats between time steps; time steps to prefetch (0: none) */
    Py_ssize_t a, b;           /* the columns, in the band's order */
    Py_ssize_t row, at;        /* the next line */
} Ahead;

enum { LINE_FLOATS = 16 };

/* The chunk after (c0, sign): the next in this direction, or the first of the negative one. */
static void ahead_of(Ahead *p, const Search *s, Py_ssize_t c0, int sign)
{
    c0 += s->chunk;
    if (c0 >= s->n_chans) {
        c0 = 0;
        sign -= 2;
    }
    p->power = s->power;
    p->stride = s->n_chans;
    p->rows = sign < -1 ? 0 : s->n_time;
    Py_ssize_t lo = c0 - 1, a = lo < 0 ? 0 : lo, b = lo + s->width < s->n_chans ? lo + s->width : s->n_chans;
    if (sign < 0) { /* the negative direction reads channels from the top */
        Py_ssize_t mirrored = s->n_chans - b;
        b = s->n_chans - a;
        a = mirrored;
    }
    p->a = a - a % LINE_FLOATS;
    p->b = b;
    p->row = 0;
    p->at = p->a;
    if (p->b <= p->a) p->rows = 0;
}

static inline void ahead_some(Ahead *p, int lines)
{
    for (int i = 0; i < lines && p->row < p->rows; i++) {
        __builtin_prefetch(p->power + p->row * p->stride + p->at, 0, 2);
        p->at += LINE_FLOATS;
        if (p->at >= p->b) {
            p->row++;
            p->at = p->a;
        }
    }
}

/* The ops first .. last - 1. With ``best``, each add is of whole rows of the top level (or
 * their first columns) and best (columns 0 .. span + 1 of a row) keeps their maximum, while the
 * rows are in the cache. With ``halves`` (2 floats), the ops are the level below the top (and
 * its scratch rows), and halves keeps the largest value (from 0) of its first and of its
 * second halves. */
static void run_ops(const Search *s, float **buffers, Py_ssize_t first, Py_ssize_t last, float *best,
                    Py_ssize_t span, float *halves, Ahead *ahead, int lines)
{
    Py_ssize_t w = s->width;
    for (Py_ssize_t k = first; k < last; k++) {
        const int64_t *op = s->ops + 7 * k;
        ahead_some(ahead, lines);
        if (op[0] == OP_CLEAR) {
            memset(buffers[op[1]] + op[2], 0, op[6] * sizeof(float));
            continue;
        }
        const float *src = buffers[op[1]];
        float *out = buffers[op[4]] + op[5];
        if (halves && op[4] != SCRATCH) { /* rows of the level below the top: one pass */
            float *most = halves + (op[5] >= s->split_second);
            *most = add_rows_most(src + op[2], src + op[3], out, op[6], *most);
            continue;
        }
        if (best) { /* rows of the top: only their columns 0 .. span + 1 are read */
            for (Py_ssize_t r = 0; r < op[6]; r += w) {
                Py_ssize_t length = op[6] - r < w ? op[6] - r : w;
                add_rows_max(src + op[2] + r, src + op[3] + r, out + r, best, length < span + 2 ? length : span + 2);
            }
            continue;
        }
        add_rows(src + op[2], src + op[3], out, op[6]);
    }
}

/* is_peak[j] for the columns 1 .. span of a row: above the threshold and not below the columns
 * beside it nor the rows below and above (NULL: none). Vectorized: a crowded band has most
 * columns above the threshold somewhere, and there a scan of every column beats a gather. */
__attribute__((target_clones("avx2", "default")))
static void peak_row(const float *restrict row, const float *restrict below, const float *restrict above,
                     float thr, uint8_t *restrict is_peak, Py_ssize_t span)
{
    const float *b = below ? below : row, *a = above ? above : row; /* (a row is not below itself) */
    for (Py_ssize_t j = 1; j <= span; j++) {
        float v = row[j];
        is_peak[j] = (v > thr) & (v >= row[j - 1]) & (v >= row[j + 1]) & (v >= b[j]) & (v >= a[j]);
    }
}

/* Keeps the peak at displacement d, column j of the chunk at c0, unless its path leaves the band
 * or it is the zero drift searched again; -1 when out of memory. */
static int emit(const Search *s, Py_ssize_t d, Py_ssize_t j, Py_ssize_t c0, int sign, float v, Found *found)
{
    Py_ssize_t start = c0 - 1 + j;
    if (start + s->reach[d] >= s->n_chans) return 0; /* the path leaves the band */
    if (sign < 0 && d == 0) return 0;                 /* zero drift is searched once */
    return found_push(found, sign * d, sign > 0 ? start : s->n_chans - 1 - start, v);
}

/* The local maxima above the threshold of top's columns 1 .. span, as udfs.dedoppler_tree._peaks,
 * in [displacement, column] order; ``best``: each column's maximum over the displacements, so
 * only the columns where it is above the threshold are looked at (``cols``: room for span). */
static int peaks(const Search *s, const float *top, const float *best, Py_ssize_t *cols, uint8_t *is_peak,
                 Py_ssize_t span, Py_ssize_t c0, int sign, Found *found)
{
    Py_ssize_t w = s->width, d_max = s->max_drift, n_cols = 0;
    float thr = s->threshold;
    for (Py_ssize_t j = 1; j <= span; j++)
        if (best[j] > thr) cols[n_cols++] = j;
    int dense = 8 * n_cols > span;
    for (Py_ssize_t d = 0; d <= d_max && n_cols; d++) {
        const float *row = top + s->row_of_delta[d] * w;
        const float *below = d > 0 ? top + s->row_of_delta[d - 1] * w : NULL;
        const float *above = d < d_max && !s->block_end[d] ? top + s->row_of_delta[d + 1] * w : NULL;
        if (dense) {
            peak_row(row, below, above, thr, is_peak, span);
            memset(is_peak + span + 1, 0, 64);
            for (Py_ssize_t j0 = 1; j0 <= span; j0 += 64) { /* 64 columns' flags as the bits of a word */
                uint64_t mask = 0;
                for (int k = 0; k < 8; k++) {
                    uint64_t bytes; /* eight flags of 0 or 1, to eight bits (no product overlaps another) */
                    memcpy(&bytes, is_peak + j0 + 8 * k, 8);
                    mask |= ((bytes * 0x0102040810204080ull) >> 56) << (8 * k);
                }
                while (mask) {
                    Py_ssize_t j = j0 + __builtin_ctzll(mask);
                    mask &= mask - 1;
                    if (emit(s, d, j, c0, sign, row[j], found)) return -1;
                }
            }
            continue;
        }
        for (Py_ssize_t i = 0; i < n_cols; i++) {
            Py_ssize_t j = cols[i];
            float v = row[j];
            if (!(v > thr)) continue;
            /* a neighbour not above the threshold is below v: the comparisons are those of _peaks */
            if (!(v >= row[j - 1]) || !(v >= row[j + 1])) continue;
            if (below && !(v >= below[j])) continue;
            if (above && !(v >= above[j])) continue;
            if (emit(s, d, j, c0, sign, v, found)) return -1;
        }
    }
    return 0;
}

/* The levels' buffers of this thread, kept from call to call as the numpy path's plans keep
 * theirs (zero when allocated; the plan's clear ops keep what is read past a level's end from
 * growing), so that a call on a small spectrogram does not pay for fresh pages. */
static _Thread_local float *kept[N_BUFFERS];
static _Thread_local Py_ssize_t kept_size[N_BUFFERS];

static float *level_buffer(int i, Py_ssize_t size)
{
    if (kept_size[i] < size) {
        free(kept[i]);
        kept[i] = calloc(size, sizeof(float));
        kept_size[i] = kept[i] ? size : 0;
    }
    return kept[i];
}

static int search(const Search *s, const Py_ssize_t sizes[N_BUFFERS], Found *found)
{
    float *buffers[N_BUFFERS] = {level_buffer(0, sizes[0]), level_buffer(1, sizes[1]), level_buffer(2, sizes[2])};
    float *best = malloc(s->width * sizeof(float));
    Py_ssize_t *cols = malloc(s->width * sizeof(Py_ssize_t));
    uint8_t *is_peak = malloc(s->width + 72); /* (the columns 0 .. span, and 64 past them) */
    int status = 0;
    if (!buffers[0] || !buffers[1] || !buffers[2] || !best || !cols || !is_peak) {
        status = -1;
        goto done;
    }
    /* the scratch past its two rows, which the second's shifted read reaches, is zeros (a call
     * of another width may have made rows there) */
    if (sizes[SCRATCH] > 2 * s->width) memset(buffers[SCRATCH] + 2 * s->width, 0, (sizes[SCRATCH] - 2 * s->width) * sizeof(float));
    /* the next chunk's lines, spread over the ops below the top (which every chunk runs) */
    Py_ssize_t line_count = s->n_time * (s->width / LINE_FLOATS + 2);
    int lines = s->top_op > 0 ? (int)(line_count / s->top_op + 1) : 0;
    for (int sign = 1; sign >= -1 && status == 0; sign -= 2) {
        for (Py_ssize_t c0 = 0; c0 < s->n_chans; c0 += s->chunk) {
            Py_ssize_t span = s->n_chans - c0 < s->chunk ? s->n_chans - c0 : s->chunk;
            load(s, buffers[0], c0, sign);
            Ahead ahead;
            ahead_of(&ahead, s, c0, sign);
            if (s->split_op < 0) {
                run_ops(s, buffers, 0, s->top_op, NULL, span, NULL, &ahead, lines);
            } else { /* a chunk of noise: no top cell can be above the threshold, the top is not made */
                run_ops(s, buffers, 0, s->split_op, NULL, span, NULL, &ahead, lines);
                /* No top cell is above the bound: every one adds a first and a second half of the
                 * level below, and the rounding is monotonic; the zeros of that level's clear,
                 * which the top may read, are under it too (the maxima start from 0). */
                float halves[2] = {0, 0};
                run_ops(s, buffers, s->split_op, s->top_op, NULL, span, halves, &ahead, lines);
                if (halves[0] + halves[1] <= s->threshold) continue;
            }
            for (Py_ssize_t j = 0; j < span + 2; j++) best[j] = -INFINITY;
            run_ops(s, buffers, s->top_op, s->n_ops, best, span, NULL, &ahead, lines);
            if (peaks(s, buffers[s->top_buffer], best, cols, is_peak, span, c0, sign, found)) {
                status = -1;
                break;
            }
        }
    }
done:
    free(best);
    free(cols);
    free(is_peak);
    return status;
}

/* peaks(power, n_time, n_chans, n, width, chunk, max_drift, ops, n_ops, size0, size1, size2, top_buffer, steps,
 *       row_of_delta, block_end, reach, threshold, split_op, split_second, top_op)
 * -> (delta int64 bytes, chan int64 bytes, value float32 bytes) */
static PyObject *py_peaks(PyObject *self, PyObject *args)
{
    PyObject *power_obj, *ops_obj, *steps_obj, *rows_obj, *ends_obj, *reach_obj;
    Py_ssize_t n_time, n_chans, n, width, chunk, max_drift, size0, size1, size2, n_ops;
    int top_buffer;
    float threshold;
    Py_ssize_t split_op, split_second, top_op;
    if (!PyArg_ParseTuple(args, "OnnnnnnOnnnniOOOOfnnn", &power_obj, &n_time, &n_chans, &n, &width, &chunk,
                          &max_drift, &ops_obj, &n_ops, &size0, &size1, &size2, &top_buffer, &steps_obj, &rows_obj,
                          &ends_obj, &reach_obj, &threshold, &split_op, &split_second, &top_op))
        return NULL;
    if (top_op < 0 || top_op > n_ops || split_op < -1 || split_op > top_op) {
        PyErr_SetString(PyExc_ValueError, "the top level's first op is out of the plan");
        return NULL;
    }
    if (n_time < 1 || n_chans < 1 || n < n_time || chunk < 1 || width < chunk + max_drift + 3 || top_buffer < 0
        || top_buffer > 1) {
        PyErr_SetString(PyExc_ValueError, "inconsistent shape for the drift search");
        return NULL;
    }
    Py_buffer power, ops, steps, rows, ends, reach;
    int got = 0;
    if (get_buffer(power_obj, &power, 4, n_time * n_chans, "power") == 0) got = 1;
    if (got == 1 && get_buffer(ops_obj, &ops, 8, 7 * n_ops, "ops") == 0) got = 2;
    if (got == 2 && get_buffer(steps_obj, &steps, 8, n, "steps") == 0) got = 3;
    if (got == 3 && get_buffer(rows_obj, &rows, 8, max_drift + 1, "row_of_delta") == 0) got = 4;
    if (got == 4 && get_buffer(ends_obj, &ends, 1, max_drift + 1, "block_end") == 0) got = 5;
    if (got == 5 && get_buffer(reach_obj, &reach, 8, max_drift + 1, "reach") == 0) got = 6;
    PyObject *result = NULL;
    if (got == 6) { /* every op inside its buffers, adds from one buffer into the other */
        int bad = 0;
        const int64_t *op = ops.buf;
        Py_ssize_t sz[N_BUFFERS] = {size0, size1, size2};
        for (Py_ssize_t k = 0; k < n_ops; k++, op += 7) {
            int ok = op[6] >= 0 && op[1] >= 0 && op[1] < N_BUFFERS && op[2] >= 0 && op[2] + op[6] <= sz[op[1]];
            if (ok && op[0] == OP_ADD)
                ok = op[4] >= 0 && op[4] < N_BUFFERS && op[4] != op[1] && op[3] >= 0 && op[3] + op[6] <= sz[op[1]]
                     && op[5] >= 0 && op[5] + op[6] <= sz[op[4]];
            else if (ok)
                ok = op[0] == OP_CLEAR;
            if (!ok) {
                PyErr_Format(PyExc_ValueError, "op %zd of the drift search's plan is out of its buffers", k);
                bad = 1;
                break;
            }
        }
        if (!bad && (size0 < n * width || (Py_ssize_t)(max_drift + 1) * width > sz[top_buffer])) {
            PyErr_SetString(PyExc_ValueError, "the drift search's buffers are too small for its shape");
            bad = 1;
        }
        for (Py_ssize_t k = 0; !bad && k <= max_drift; k++)
            if (((const int64_t *)rows.buf)[k] < 0 || ((const int64_t *)rows.buf)[k] > max_drift) {
                PyErr_SetString(PyExc_ValueError, "row_of_delta is out of the top level");
                bad = 1;
            }
        for (Py_ssize_t k = 0; !bad && k < n; k++)
            if (((const int64_t *)steps.buf)[k] < 0) {
                PyErr_SetString(PyExc_ValueError, "steps must not be negative");
                bad = 1;
            }
        if (bad) got = -got;
    }
    if (got == 6) {
        Search s = {power.buf, n_time, n_chans, n, width, chunk, max_drift, ops.buf, n_ops, steps.buf,
                    rows.buf, ends.buf, reach.buf, top_buffer, threshold, split_op, split_second, top_op};
        Py_ssize_t sizes[N_BUFFERS] = {size0, size1, size2};
        Found found = {0};
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = search(&s, sizes, &found);
        Py_END_ALLOW_THREADS
        if (status)
            PyErr_NoMemory();
        else
            result = Py_BuildValue("NNN", as_bytes(found.delta, found.size * 8), as_bytes(found.chan, found.size * 8),
                                   as_bytes(found.value, found.size * 4));
        free(found.delta);
        free(found.chan);
        free(found.value);
    }
    if (got < 0) got = -got;
    if (got >= 6) PyBuffer_Release(&reach);
    if (got >= 5) PyBuffer_Release(&ends);
    if (got >= 4) PyBuffer_Release(&rows);
    if (got >= 3) PyBuffer_Release(&steps);
    if (got >= 2) PyBuffer_Release(&ops);
    if (got >= 1) PyBuffer_Release(&power);
    return result;
}

static PyMethodDef methods[] = {
    {"peaks", py_peaks, METH_VARARGS, "The drift search's local maxima above a threshold (see udfs.dedoppler_tree)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dedoppler_tree_c", NULL, -1, methods};

PyMODINIT_FUNC PyInit__dedoppler_tree_c(void) { return PyModule_Create(&module); }
