/* The argument helpers of the C extensions (include after Python.h). */

#ifndef PYTHON_BUFFERS_H
#define PYTHON_BUFFERS_H

/* A C-contiguous view of obj holding count items of item bytes, or -1 with a ValueError. */
static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t item, Py_ssize_t count, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len != item * count) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd", what, view->len, item * count);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *as_bytes(const void *data, Py_ssize_t n)
{
    return PyBytes_FromStringAndSize(n ? (const char *)data : "", n);
}

#endif
