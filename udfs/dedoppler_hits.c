/* udfs._dedoppler_hits_c: the drift search after the tree, compiled (see dedoppler_hits.h).
 *
 *   measure(power, n_time, n_chans, n, offsets, max_drift, median, std, snr_min, delta, chan, n_cells)
 *     -> (rows, peak_tracks, tracks): udfs.dedoppler_tracks.measure of each cell
 *   find_hits(power, n_time, n_chans, n, offsets, max_drift, median, std, snr_min, delta, chan, n_cells, value)
 *     -> rows: the hits among the candidates (in any order), strongest first, as udfs.dedoppler.find_hits
 *   strongest_first(value, n) -> the order of float32 values from the largest (int64)
 *   order_statistics(values, n, ranks, m) -> the float32 values of those ranks, as sorted
 *   trimmed_std(values, n, low, high) -> (count, std) of the float32 values in low .. high
 *
 * rows are HitRow structs (9 int64 and 2 float64 each), tracks int64 [hit, n_time]. Every input
 * is checked here: the kernels read only inside the spectrogram. The GIL is released. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "dedoppler_hits.h"
#include "python_buffers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer power, offsets, delta, chan, value;
    int got; /* how many of them are held */
    Spectrum s;
    Py_ssize_t n_cells;
} Args;

static void release(Args *a)
{
    Py_buffer *views[] = {&a->power, &a->offsets, &a->delta, &a->chan, &a->value};
    for (int k = a->got - 1; k >= 0; k--) PyBuffer_Release(views[k]);
    a->got = 0;
}

/* Parses and checks the arguments (``with_value``: find_hits's); 0, or -1 with an exception. */
static int parse(PyObject *args, Args *a, int with_value)
{
    PyObject *power, *offsets, *delta, *chan, *value = NULL;
    Py_ssize_t n_time, n_chans, n, max_drift, n_cells;
    double median, std, snr_min;
    memset(a, 0, sizeof(*a));
    if (!PyArg_ParseTuple(args, with_value ? "OnnnOndddOOnO" : "OnnnOndddOOn", &power, &n_time, &n_chans, &n,
                          &offsets, &max_drift, &median, &std, &snr_min, &delta, &chan, &n_cells, &value))
        return -1;
    if (n_time < 1 || n_chans < 1 || n < 2 || n < n_time || (n & (n - 1)) || max_drift < 0 || n_cells < 0) {
        PyErr_SetString(PyExc_ValueError, "inconsistent shape for the drift search's hits");
        return -1;
    }
    if (!(std > 0) || !isfinite(std) || !isfinite(median) || !isfinite(snr_min)) {
        PyErr_SetString(PyExc_ValueError, "median, std and snr_min must be finite, std positive");
        return -1;
    }
    Py_ssize_t rows = 2 * max_drift + 1;
    if (get_buffer(power, &a->power, 4, n_time * n_chans, "power")) return -1;
    a->got = 1;
    if (get_buffer(offsets, &a->offsets, 8, rows * n_time, "offsets")) goto fail;
    a->got = 2;
    if (get_buffer(delta, &a->delta, 8, n_cells, "delta")) goto fail;
    a->got = 3;
    if (get_buffer(chan, &a->chan, 8, n_cells, "chan")) goto fail;
    a->got = 4;
    if (with_value) {
        if (get_buffer(value, &a->value, 4, n_cells, "value")) goto fail;
        a->got = 5;
    }
    const int64_t *off = a->offsets.buf, *d = a->delta.buf, *c = a->chan.buf;
    int64_t *low = malloc(rows * sizeof(int64_t)), *high = malloc(rows * sizeof(int64_t));
    if (!low || !high) {
        free(low);
        free(high);
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        low[r] = high[r] = off[r * n_time];
        for (Py_ssize_t t = 1; t < n_time; t++) {
            int64_t o = off[r * n_time + t];
            low[r] = o < low[r] ? o : low[r];
            high[r] = o > high[r] ? o : high[r];
        }
    }
    Py_ssize_t bad = -1;
    for (Py_ssize_t k = 0; k < n_cells && bad < 0; k++)
        if (d[k] < -max_drift || d[k] > max_drift || c[k] + low[d[k] + max_drift] < 0
            || c[k] + high[d[k] + max_drift] >= n_chans || c[k] < 0 || c[k] >= n_chans)
            bad = k;
    free(low);
    free(high);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "cell %zd's path leaves the band or its drift is out of the search", bad);
        goto fail;
    }
    a->s = (Spectrum){a->power.buf, n_time, n_chans, n, max_drift, off, median, std, snr_min};
    a->n_cells = n_cells;
    return 0;
fail:
    release(a);
    return -1;
}

static PyObject *py_measure(PyObject *self, PyObject *args)
{
    Args a;
    if (parse(args, &a, 0)) return NULL;
    Py_ssize_t k = a.n_cells, T = a.s.n_time;
    HitRow *rows = malloc((k ? k : 1) * sizeof(HitRow));
    int64_t *peaks = malloc((k ? k : 1) * T * sizeof(int64_t)), *tracks = malloc((k ? k : 1) * T * sizeof(int64_t));
    int status = !rows || !peaks || !tracks;
    const int64_t *d = a.delta.buf, *c = a.chan.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < k && !status; i++) {
        Measured m = {.peak_track = peaks + i * T, .track = tracks + i * T};
        status = measure_hit(&a.s, d[i], c[i], &m);
        rows[i] = hit_row(i, &m, T);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = status ? PyErr_NoMemory()
                              : Py_BuildValue("NNN", as_bytes(rows, k * sizeof(HitRow)),
                                              as_bytes(peaks, k * T * 8), as_bytes(tracks, k * T * 8));
    free(rows);
    free(peaks);
    free(tracks);
    release(&a);
    return result;
}

static PyObject *py_find_hits(PyObject *self, PyObject *args)
{
    Args a;
    if (parse(args, &a, 1)) return NULL;
    HitRows hits = {0};
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = walk_hits(&a.s, a.delta.buf, a.chan.buf, a.value.buf, a.n_cells, &hits);
    Py_END_ALLOW_THREADS
    PyObject *result = status ? PyErr_NoMemory() : as_bytes(hits.rows, hits.size * sizeof(HitRow));
    free(hits.rows);
    release(&a);
    return result;
}

static PyObject *py_strongest_first(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On", &obj, &n)) return NULL;
    Py_buffer value;
    if (n < 0 || get_buffer(obj, &value, 4, n, "value")) {
        if (n < 0) PyErr_SetString(PyExc_ValueError, "a negative count");
        return NULL;
    }
    int64_t *order = malloc((n ? n : 1) * sizeof(int64_t)), *scratch = malloc((n ? n : 1) * sizeof(int64_t));
    uint32_t *keys = malloc((n ? n : 1) * 2 * sizeof(uint32_t));
    int status = !order || !scratch || !keys;
    if (!status) {
        Py_BEGIN_ALLOW_THREADS
        strongest_first(value.buf, n, order, scratch, keys);
        Py_END_ALLOW_THREADS
    }
    PyObject *result = status ? PyErr_NoMemory() : as_bytes(order, n * 8);
    free(order);
    free(scratch);
    free(keys);
    PyBuffer_Release(&value);
    return result;
}

static int compare_keys(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

enum { BINS = 4096 };

/* out[i] = the value of rank ks[i] (0: the smallest) among n float32 values, as a sort would
 * place it: a histogram of BINS bins over the range of the values' order-preserving keys finds
 * each rank's bin, and only the values of those bins are sorted. 0; -2 if a value is not finite
 * (its key is then outside those of -inf .. inf: the range shows it), -1 out of memory. */
static int order_statistics(const float *value, int64_t n, const int64_t *ks, int64_t m, float *out)
{
    uint32_t low = UINT32_MAX, high = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = ascending_key(value[i]);
        low = key < low ? key : low;
        high = key > high ? key : high;
    }
    if (low <= ascending_key(-INFINITY) || high >= ascending_key(INFINITY)) return -2;
    int shift = 0;
    while (((high - low) >> shift) >= BINS) shift++;
    int64_t start[BINS + 1] = {0}, fill[BINS], first[BINS], bin_of[64];
    uint8_t wanted[BINS] = {0};
    if (m > 64) return -1;
    for (int64_t i = 0; i < n; i++) start[((ascending_key(value[i]) - low) >> shift) + 1]++;
    for (int b = 0; b < BINS; b++) start[b + 1] += start[b];
    int64_t total = 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t lo = 0, hi = BINS; /* the bin b with start[b] <= k < start[b + 1] */
        while (hi - lo > 1) {
            int64_t mid = (lo + hi) / 2;
            if (start[mid] <= ks[i]) lo = mid;
            else hi = mid;
        }
        bin_of[i] = lo;
        if (!wanted[lo]) total += start[lo + 1] - start[lo];
        wanted[lo] = 1;
    }
    uint32_t *picked = malloc((total ? total : 1) * sizeof(uint32_t));
    if (!picked) return -1;
    int64_t at = 0;
    for (int b = 0; b < BINS; b++)
        if (wanted[b]) {
            first[b] = fill[b] = at;
            at += start[b + 1] - start[b];
        }
    for (int64_t i = 0; i < n; i++) {
        uint32_t key = ascending_key(value[i]), b = (key - low) >> shift;
        if (wanted[b]) picked[fill[b]++] = key;
    }
    for (int b = 0; b < BINS; b++)
        if (wanted[b]) qsort(picked + first[b], start[b + 1] - start[b], sizeof(uint32_t), compare_keys);
    for (int64_t i = 0; i < m; i++) out[i] = key_value(picked[first[bin_of[i]] + (ks[i] - start[bin_of[i]])]);
    free(picked);
    return 0;
}

static PyObject *py_order_statistics(PyObject *self, PyObject *args)
{
    PyObject *values_obj, *ks_obj;
    Py_ssize_t n, m;
    if (!PyArg_ParseTuple(args, "OnOn", &values_obj, &n, &ks_obj, &m)) return NULL;
    if (n < 1 || m < 0 || m > 64) {
        PyErr_SetString(PyExc_ValueError, "order statistics need values, and at most 64 ranks");
        return NULL;
    }
    Py_buffer values, ks;
    if (get_buffer(values_obj, &values, 4, n, "values")) return NULL;
    if (get_buffer(ks_obj, &ks, 8, m, "ranks")) {
        PyBuffer_Release(&values);
        return NULL;
    }
    const int64_t *k = ks.buf;
    int bad = 0;
    for (Py_ssize_t i = 0; i < m; i++) bad |= k[i] < 0 || k[i] >= n;
    float *out = malloc((m ? m : 1) * sizeof(float));
    int status = bad || !out;
    if (!status) {
        Py_BEGIN_ALLOW_THREADS
        status = order_statistics(values.buf, n, k, m, out);
        Py_END_ALLOW_THREADS
    }
    PyObject *result = NULL;
    if (bad) PyErr_SetString(PyExc_ValueError, "a rank is out of the values");
    else if (status == -2) PyErr_SetString(PyExc_ValueError, "the values must be finite");
    else if (status) PyErr_NoMemory();
    else result = as_bytes(out, m * 4);
    free(out);
    PyBuffer_Release(&values);
    PyBuffer_Release(&ks);
    return result;
}

typedef float float4 __attribute__((vector_size(16)));
typedef double double4 __attribute__((vector_size(32)));
typedef int64_t int4x64 __attribute__((vector_size(32)));

/* The count and the sum of the float32 values in low .. high, and the sum of their squares about
 * ``about`` (float64; in 8 interleaved parts, so that the additions do not wait on each other,
 * then added). */
__attribute__((target_clones("avx2", "default")))
static void trimmed_sums(const float *v, int64_t n, double low, double high, double about, int64_t *count,
                         double *sum, double *squares)
{
    double4 sums[2] = {{0}}, square_sums[2] = {{0}}, lows = low - (double4){0}, highs = high - (double4){0},
            abouts = about - (double4){0};
    int4x64 counts[2] = {{0}};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 2; k++) {
            float4 f;
            memcpy(&f, v + i + 4 * k, sizeof f);
            double4 x = __builtin_convertvector(f, double4), d = x - abouts;
            int4x64 inside = (x >= lows) & (x <= highs); /* -1 or 0 */
            sums[k] += (double4)((int4x64)x & inside);
            square_sums[k] += (double4)((int4x64)(d * d) & inside);
            counts[k] -= inside;
        }
    *sum = *squares = 0;
    *count = 0;
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++) {
            *sum += sums[k][j];
            *squares += square_sums[k][j];
            *count += counts[k][j];
        }
    for (; i < n; i++) {
        double x = v[i], d = x - about;
        if (x >= low && x <= high) {
            *sum += x;
            *squares += d * d;
            ++*count;
        }
    }
}

/* trimmed_std(values, n, low, high) -> (count, std): the standard deviation (float64, two passes:
 * the mean, then the squares about it) of the float32 values in low .. high. */
static PyObject *py_trimmed_std(PyObject *self, PyObject *args)
{
    PyObject *values_obj;
    Py_ssize_t n;
    double low, high;
    if (!PyArg_ParseTuple(args, "Ondd", &values_obj, &n, &low, &high)) return NULL;
    Py_buffer values;
    if (n < 0 || get_buffer(values_obj, &values, 4, n, "values")) {
        if (n < 0) PyErr_SetString(PyExc_ValueError, "a negative count");
        return NULL;
    }
    double sum, squares, unused;
    int64_t count;
    Py_BEGIN_ALLOW_THREADS
    trimmed_sums(values.buf, n, low, high, 0, &count, &sum, &unused);
    double mean = count ? sum / (double)count : 0;
    trimmed_sums(values.buf, n, low, high, mean, &count, &unused, &squares);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&values);
    return Py_BuildValue("nd", (Py_ssize_t)count, count ? sqrt(squares / (double)count) : NAN);
}

static PyMethodDef methods[] = {
    {"trimmed_std", py_trimmed_std, METH_VARARGS,
     "trimmed_std(values, n, low, high) -> (count, std) of the float32 values in low .. high, in float64."},
    {"order_statistics", py_order_statistics, METH_VARARGS,
     "order_statistics(values, n, ranks, m): the float32 values of those ranks (0: the smallest)."},
    {"strongest_first", py_strongest_first, METH_VARARGS,
     "The order of float32 values from the largest, equal ones by position (int64 bytes)."},
    {"measure", py_measure, METH_VARARGS, "udfs.dedoppler_tracks.measure of each cell, compiled."},
    {"find_hits", py_find_hits, METH_VARARGS, "The hits among the candidates, strongest first, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dedoppler_hits_c", NULL, -1, methods};

PyMODINIT_FUNC PyInit__dedoppler_hits_c(void) { return PyModule_Create(&module); }
