/* A stand-in libcuda.so.1 for machines without a GPU: the driver API's C entry points, each
 * forwarded to a hook the test sets (`oi_stub_hook`). Loaded before cuda-bindings looks for the
 * driver, it lets the real cuda-bindings package marshal every call the runtime makes, and the
 * compiled launches call its exported cuLaunchKernel and cuMemcpy, as they would the driver's.
 * A function whose hook is unset answers CUDA_ERROR_NO_DEVICE (100). Build:
 *   gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o libcuda.so.1 stub_libcuda.c
 */
#include <stddef.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long cuuint64_t;
typedef void *P;
typedef unsigned int U;

#define NO_DEVICE 100
#define NOT_FOUND 500

/* name, parameters, arguments: an exported function calling its hook */
#define FUNCTIONS(X)                                                                              \
    X(cuInit, (U flags), (flags))                                                                 \
    X(cuDeviceGetCount, (int *count), (count))                                                    \
    X(cuDeviceGet, (int *device, int ordinal), (device, ordinal))                                 \
    X(cuDeviceGetName, (char *name, int len, int dev), (name, len, dev))                          \
    X(cuDevicePrimaryCtxRetain, (P *ctx, int dev), (ctx, dev))                                    \
    X(cuCtxSetCurrent, (P ctx), (ctx))                                                            \
    X(cuCtxSynchronize, (void), ())                                                               \
    X(cuModuleLoadData, (P *module, const void *image), (module, image))                          \
    X(cuModuleGetFunction, (P *function, P module, const char *name), (function, module, name))   \
    X(cuMemAlloc, (CUdeviceptr *pointer, size_t n), (pointer, n))                                 \
    X(cuMemFree, (CUdeviceptr pointer), (pointer))                                                \
    X(cuMemcpyHtoD, (CUdeviceptr dst, const void *src, size_t n), (dst, src, n))                  \
    X(cuMemcpyDtoH, (void *dst, CUdeviceptr src, size_t n), (dst, src, n))                        \
    X(cuMemcpyDtoD, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))                  \
    X(cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t n), (dst, src, n))                      \
    X(cuMemsetD8, (CUdeviceptr dst, unsigned char value, size_t n), (dst, value, n))              \
    X(cuMemsetD16, (CUdeviceptr dst, unsigned short value, size_t n), (dst, value, n))            \
    X(cuMemsetD32, (CUdeviceptr dst, unsigned int value, size_t n), (dst, value, n))              \
    X(cuMemsetD2D32, (CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height), \
      (dst, pitch, value, width, height))                                                         \
    X(cuLaunchKernel, (P f, U gx, U gy, U gz, U bx, U by, U bz, U shared, P stream, P *params,   \
                       P *extra), (f, gx, gy, gz, bx, by, bz, shared, stream, params, extra))    \
    X(cuEventCreate, (P *event, U flags), (event, flags))                                         \
    X(cuEventRecord, (P event, P stream), (event, stream))                                        \
    X(cuEventSynchronize, (P event), (event))                                                     \
    X(cuEventElapsedTime, (float *ms, P start, P end), (ms, start, end))                          \
    X(cuEventDestroy, (P event), (event))

#define DEFINE(name, params, args)                                                                \
    static CUresult(*hook_##name) params;                                                         \
    CUresult name params { return hook_##name ? hook_##name args : NO_DEVICE; }
FUNCTIONS(DEFINE)

/* the versioned names the driver exports beside the plain ones */
CUresult cuMemAlloc_v2(CUdeviceptr *pointer, size_t n) { return cuMemAlloc(pointer, n); }
CUresult cuMemFree_v2(CUdeviceptr pointer) { return cuMemFree(pointer); }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { return cuMemcpyHtoD(dst, src, n); }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoH(dst, src, n); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoD(dst, src, n); }
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n) { return cuMemsetD8(dst, value, n); }
CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short value, size_t n) { return cuMemsetD16(dst, value, n); }
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t n) { return cuMemsetD32(dst, value, n); }
CUresult cuMemsetD2D32_v2(CUdeviceptr dst, size_t pitch, unsigned int value, size_t width, size_t height) {
    return cuMemsetD2D32(dst, pitch, value, width, height);
}

CUresult cuDriverGetVersion(int *version) {
    *version = 13000;
    return 0;
}

CUresult cuGetErrorName(CUresult error, const char **text) {
    *text = error == NO_DEVICE ? "CUDA_ERROR_NO_DEVICE" : error == NOT_FOUND ? "CUDA_ERROR_NOT_FOUND"
                                                                             : "CUDA_ERROR_UNKNOWN";
    return 0;
}

CUresult cuGetErrorString(CUresult error, const char **text) {
    *text = error == NO_DEVICE ? "no CUDA-capable device is detected (stub libcuda)" : "stub libcuda error";
    return 0;
}

struct entry {
    const char *name;
    void *function;
    void **hook;
};

#define ENTRY(name, params, args) {#name, (void *)name, (void **)&hook_##name},
static const struct entry entries[] = {
    FUNCTIONS(ENTRY)
    {"cuDriverGetVersion", (void *)cuDriverGetVersion, NULL},
    {"cuGetErrorName", (void *)cuGetErrorName, NULL},
    {"cuGetErrorString", (void *)cuGetErrorString, NULL},
};

static const struct entry *find(const char *name) {
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (strcmp(entries[i].name, name) == 0)
            return &entries[i];
    return NULL;
}

/* the test's hooks: 0 when `name` is one of the functions above */
int oi_stub_hook(const char *name, void *hook) {
    const struct entry *e = find(name);
    if (e == NULL || e->hook == NULL)
        return -1;
    *e->hook = hook;
    return 0;
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status) {
    const struct entry *e = find(symbol);
    (void)version, (void)flags;
    *pfn = e ? e->function : NULL;
    if (status)
        *status = e ? 0 : 1; /* CU_GET_PROC_ADDRESS_SUCCESS, _SYMBOL_NOT_FOUND */
    return e ? 0 : NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags) {
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
