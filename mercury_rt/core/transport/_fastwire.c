/* The hot-path envelope codec of fastwire.py, in C: the same four functions, the same
 * results. fastwire.py is the specification; this file only makes it cheaper (each call
 * here costs a fraction of a microsecond, the Python one 1.3-4 us). For arguments of the
 * declared types, passed positionally as every caller does (bytes datagrams; ints and a
 * payload for the writers), every result is identical to the Python one, None included;
 * a non-int writer argument raises TypeError there and here
 * (tests/property/transport/test_fastwire_accelerated.py).
 * setup.py builds it when a C compiler is present, with SOURCE_SHA256 = the hash of this
 * file and fastwire.py, which accelerator.py checks before using it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#ifndef MERCURY_SOURCE_SHA256
#define MERCURY_SOURCE_SHA256 ""
#endif

#define MAX_U32 0xFFFFFFFFull
#define MAX_ATTEMPT 255u
#define MAX_HEAD 9 /* bytes of the longest CBOR head */

static const unsigned char REQUEST_HEAD[3] = {0x89, 0x01, 0x01};
static const unsigned char REPLY_HEAD[3] = {0x85, 0x01, 0x02};

static uint64_t be(const unsigned char *p, int size)
{
    uint64_t value = 0;
    for (int i = 0; i < size; i++) {
        value = (value << 8) | p[i];
    }
    return value;
}

/* One shortest-form CBOR head of major type `major` at *pos, its argument in *value;
 * -1 if truncated or not in its shortest form (fastwire._uints and _payload). */
static int read_head(const unsigned char *d, Py_ssize_t n, Py_ssize_t *pos,
                     unsigned major, uint64_t *value)
{
    Py_ssize_t p = *pos;
    if (p >= n || (d[p] & 0xE0) != major) {
        return -1;
    }
    unsigned arg = d[p] & 0x1F;
    static const uint64_t least[4] = {24, 0x100, 0x10000, MAX_U32 + 1};
    if (arg < 24) {
        *value = arg;
        *pos = p + 1;
        return 0;
    }
    if (arg > 27) {
        return -1;
    }
    int size = 1 << (arg - 24);
    if (n - p - 1 < size) {
        return -1;
    }
    *value = be(d + p + 1, size);
    if (*value < least[arg - 24]) {
        return -1;
    }
    *pos = p + 1 + size;
    return 0;
}

/* The `count` unsigned ints after a 3-byte envelope head, then the payload byte string
 * that must end the datagram exactly; its start in *start. 0, or -1 to refuse. */
static int read_envelope(const unsigned char *d, Py_ssize_t n, const unsigned char *head,
                         int count, uint64_t *ints, Py_ssize_t *start)
{
    Py_ssize_t pos = 3;
    uint64_t size;
    if (n < 3 || memcmp(d, head, 3) != 0) {
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (read_head(d, n, &pos, 0x00, &ints[i]) < 0) {
            return -1;
        }
    }
    /* fastwire._payload reads no 8-byte length: no datagram holds one */
    if (pos < n && (d[pos] & 0x1F) == 27) {
        return -1;
    }
    if (read_head(d, n, &pos, 0x40, &size) < 0 || size != (uint64_t)(n - pos)) {
        return -1;
    }
    *start = pos;
    return 0;
}

static PyObject *fields_tuple(const uint64_t *ints, int count, const char *payload,
                              Py_ssize_t size)
{
    PyObject *tuple = PyTuple_New(count + 1);
    if (tuple == NULL) {
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        PyObject *item = PyLong_FromUnsignedLongLong(ints[i]);
        if (item == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, item);
    }
    PyObject *bytes = PyBytes_FromStringAndSize(payload, size);
    if (bytes == NULL) {
        Py_DECREF(tuple);
        return NULL;
    }
    PyTuple_SET_ITEM(tuple, count, bytes);
    return tuple;
}

static int datagram(PyObject *arg, const unsigned char **d, Py_ssize_t *n)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "a datagram must be bytes");
        return -1;
    }
    *d = (const unsigned char *)PyBytes_AS_STRING(arg);
    *n = PyBytes_GET_SIZE(arg);
    return 0;
}

static PyObject *read_request(PyObject *module, PyObject *arg)
{
    const unsigned char *d;
    Py_ssize_t n, start;
    uint64_t v[6]; /* id, ttl_ms, done_below, attempt, origin, age_ms */
    if (datagram(arg, &d, &n) < 0) {
        return NULL;
    }
    if (read_envelope(d, n, REQUEST_HEAD, 6, v, &start) < 0 || v[1] > MAX_U32
            || v[3] > MAX_ATTEMPT || v[4] > MAX_U32 || v[5] > MAX_U32) {
        Py_RETURN_NONE;
    }
    return fields_tuple(v, 6, (const char *)d + start, n - start);
}

static PyObject *read_reply(PyObject *module, PyObject *arg)
{
    const unsigned char *d;
    Py_ssize_t n, start;
    uint64_t v[2]; /* id, incarnation */
    if (datagram(arg, &d, &n) < 0) {
        return NULL;
    }
    if (read_envelope(d, n, REPLY_HEAD, 2, v, &start) < 0 || v[1] > MAX_U32) {
        Py_RETURN_NONE;
    }
    return fields_tuple(v, 2, (const char *)d + start, n - start);
}

static unsigned char *put_head(unsigned char *p, unsigned major, uint64_t value)
{
    int size;
    if (value < 24) {
        *p++ = (unsigned char)(major + value);
        return p;
    }
    if (value < 0x100) {
        *p++ = (unsigned char)(major + 24);
        size = 1;
    } else if (value < 0x10000) {
        *p++ = (unsigned char)(major + 25);
        size = 2;
    } else if (value <= MAX_U32) {
        *p++ = (unsigned char)(major + 26);
        size = 4;
    } else {
        *p++ = (unsigned char)(major + 27);
        size = 8;
    }
    for (int i = size - 1; i >= 0; i--) {
        *p++ = (unsigned char)(value >> (8 * i));
    }
    return p;
}

/* The datagram: `head`, the `count` ints as shortest heads, then the payload; None when
 * an int is negative or of 65 bits or more, or the payload is not bytes (fastwire's
 * `>> 64` and `type(payload) is not bytes` checks); TypeError for a non-int. */
static PyObject *write_envelope(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t count,
                                const unsigned char *head, const char *name)
{
    uint64_t ints[6];
    unsigned char buffer[3 + 7 * MAX_HEAD];
    int in_range = 1;
    if (nargs != count + 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name,
                     count + 1, nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyLong_Check(args[i])) {
            PyErr_Format(PyExc_TypeError, "%s(): argument %zd must be int", name, i + 1);
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < count && in_range; i++) {
        ints[i] = PyLong_AsUnsignedLongLong(args[i]);
        if (ints[i] == (uint64_t)-1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                return NULL;
            }
            PyErr_Clear();
            in_range = 0;
        }
    }
    PyObject *payload = args[count];
    if (!in_range || !PyBytes_CheckExact(payload)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    unsigned char *p = buffer;
    memcpy(p, head, 3);
    p += 3;
    for (Py_ssize_t i = 0; i < count; i++) {
        p = put_head(p, 0x00, ints[i]);
    }
    p = put_head(p, 0x40, (uint64_t)size);
    Py_ssize_t head_size = p - buffer;
    PyObject *out = PyBytes_FromStringAndSize(NULL, head_size + size);
    if (out == NULL) {
        return NULL;
    }
    memcpy(PyBytes_AS_STRING(out), buffer, (size_t)head_size);
    memcpy(PyBytes_AS_STRING(out) + head_size, PyBytes_AS_STRING(payload), (size_t)size);
    return out;
}

static PyObject *write_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return write_envelope(args, nargs, 6, REQUEST_HEAD, "write_request");
}

static PyObject *write_reply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return write_envelope(args, nargs, 2, REPLY_HEAD, "write_reply");
}

static PyMethodDef methods[] = {
    {"read_request", read_request, METH_O, "fastwire.read_request, in C."},
    {"read_reply", read_reply, METH_O, "fastwire.read_reply, in C."},
    {"write_request", (PyCFunction)(void (*)(void))write_request, METH_FASTCALL,
     "fastwire.write_request, in C."},
    {"write_reply", (PyCFunction)(void (*)(void))write_reply, METH_FASTCALL,
     "fastwire.write_reply, in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fastwire", "fastwire.py's codec in C (see fastwire.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastwire(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module != NULL
            && PyModule_AddStringConstant(module, "SOURCE_SHA256", MERCURY_SOURCE_SHA256) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
