// cublas.cpp: the simulated cuBLAS (libcublas.so.13): handles, math modes,
// workspaces and SGEMM, plain and strided batched, as pad binds them
// (internal/cu/cublas.go).
//
// A GEMM validates its arguments as cuBLAS does (CUBLAS_STATUS_INVALID_VALUE
// for negative sizes, short leading dimensions, bad operations), reads alpha
// and beta from host memory at call time, checks the device ranges it will
// touch, and queues one operation on the handle's stream (padsim_enqueue),
// so it is lazy, ordered and capturable like a kernel.
//
// Numerics: each C element is accumulated in double over k in increasing
// order and rounded to float once (alpha*sum + beta*C in double), so results
// are bit-identical whatever the thread count. CUBLAS_TF32_TENSOR_OP_MATH
// rounds A and B to TF32 first, as tensor cores read them;
// CUBLAS_TENSOR_OP_MATH (deprecated; for SGEMM it means
// CUBLAS_COMPUTE_32F_FAST_16F) rounds them to half. NVIDIA_TF32_OVERRIDE=0
// disables TF32 as it does on hardware.
#include "padsim.h"
#include "simcompute.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <unordered_set>
#include <vector>

namespace {

enum : int {
    ST_SUCCESS = 0,
    ST_NOT_INITIALIZED = 1,
    ST_ALLOC_FAILED = 3,
    ST_INVALID_VALUE = 7,
    ST_ARCH_MISMATCH = 8,
    ST_MAPPING_ERROR = 11,
    ST_EXECUTION_FAILED = 13,
    ST_INTERNAL_ERROR = 14,
    ST_NOT_SUPPORTED = 15,
    ST_LICENSE_ERROR = 16,
};

struct StatusText {
    int code;
    const char *name, *text;
};
const StatusText kStatus[] = {
    {0, "CUBLAS_STATUS_SUCCESS", "success"},
    {1, "CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
    {3, "CUBLAS_STATUS_ALLOC_FAILED", "the resource allocation failed"},
    {7, "CUBLAS_STATUS_INVALID_VALUE", "an invalid numeric value was used as an argument"},
    {8, "CUBLAS_STATUS_ARCH_MISMATCH", "an absent device architectural feature is required"},
    {11, "CUBLAS_STATUS_MAPPING_ERROR", "an access to GPU memory space failed"},
    {13, "CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
    {14, "CUBLAS_STATUS_INTERNAL_ERROR", "an internal operation failed"},
    {15, "CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
    {16, "CUBLAS_STATUS_LICENSE_ERROR", "error detected trying to check the license"},
};

enum { OP_N = 0, OP_T = 1, OP_C = 2 };
enum { MATH_DEFAULT = 0, MATH_TENSOR_OP = 1, MATH_PEDANTIC = 2, MATH_TF32 = 3, MATH_DISALLOW_REDUCED = 16 };

struct Handle {
    uint64_t stream = 0;
    int math = MATH_DEFAULT;
    uint64_t ws = 0;  // the user workspace (0: cuBLAS's own pool)
    size_t ws_bytes = 0;
};

std::mutex g_mu;
std::unordered_set<Handle*> g_handles;

Handle* lookup(void* h) {
    std::lock_guard<std::mutex> g(g_mu);
    return g_handles.count((Handle*)h) ? (Handle*)h : nullptr;
}

// cuBLAS has no error-message API: the reason for a failure goes to stderr
// (as the simulation's other "cudasim:" messages) unless PAD_CUDASIM_QUIET=1.
__attribute__((format(printf, 2, 3))) int complain(int status, const char* fmt, ...) {
    const char* q = getenv("PAD_CUDASIM_QUIET");
    if (q && q[0] == '1') return status;
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "cudasim: %s\n", buf);
    return status;
}

// ---- Numerics ------------------------------------------------------------------------
enum Round { ROUND_NONE, ROUND_TF32, ROUND_HALF };

inline float rnd(float v, Round r) {
    switch (r) {
        case ROUND_TF32: return tf32(v);
        case ROUND_HALF: return (float)(_Float16)v;
        default: return v;
    }
}

struct Gemm {
    int ta, tb, m, n, k, lda, ldb, ldc, batch;
    long long sa, sb, sc;
    double alpha, beta;
    const float *A, *B;
    float* C;
    Round round;
};

// run_gemm computes C = alpha*op(A)*op(B) + beta*C, column-major. op(A) is
// packed as Ap[l][i] (k x m, rows padded to 16) and op(B) as Bp[j][l], so
// the kernel vectorises over 16 rows i and keeps 6 columns j in registers.
int run_gemm(void* arg, char*, size_t) {
    const Gemm& g = *(const Gemm*)arg;
    const long m = g.m, n = g.n, k = g.k, mp = (m + 15) / 16 * 16;
    const bool compute = g.alpha != 0 && k > 0;  // alpha == 0: A and B are not read
    std::vector<float> ap(compute ? (size_t)k * mp : 0), bp(compute ? (size_t)n * k : 0);
    for (int b = 0; b < g.batch; b++) {
        const float* A = g.A + b * g.sa;
        const float* B = g.B + b * g.sb;
        float* C = g.C + b * g.sc;
        if (compute) {
            Pool::get().parallel_for(k, [&](size_t l) {
                float* row = &ap[l * mp];
                for (long i = 0; i < m; i++) row[i] = rnd(g.ta == OP_N ? A[i + l * g.lda] : A[l + i * g.lda], g.round);
                for (long i = m; i < mp; i++) row[i] = 0;
            });
            Pool::get().parallel_for(n, [&](size_t j) {
                float* row = &bp[j * k];
                for (long l = 0; l < k; l++) row[l] = rnd(g.tb == OP_N ? B[l + j * g.ldb] : B[j + l * g.ldb], g.round);
            });
        }
        const long IB = mp / 16, JT = (n + kNR - 1) / kNR;
        Pool::get().parallel_for((size_t)IB * JT, [&](size_t item) {
            long i0 = (item % IB) * 16, j0 = (item / IB) * kNR;
            int nr = (int)std::min<long>(kNR, n - j0);
            alignas(64) double acc[kNR * 16] = {};
            if (compute) tile_n(nr, k, &ap[i0], mp, &bp[j0 * k], k, 1, acc);
            for (int t = 0; t < nr; t++)
                for (long v = 0; v < 16 && i0 + v < m; v++) {
                    float* c = C + (i0 + v) + (j0 + t) * (long)g.ldc;
                    double s = g.alpha * acc[t * 16 + v];
                    *c = g.beta == 0 ? (float)s : (float)(s + g.beta * (double)*c);  // beta 0: C is not read
                }
        });
    }
    return 0;
}

void free_gemm(void* arg) { delete (Gemm*)arg; }

// span is the bytes a column-major rows x cols matrix with leading
// dimension ld covers (the last column only to its last row).
uint64_t span(long rows, long cols, long ld) { return rows == 0 || cols == 0 ? 0 : 4 * (uint64_t)((cols - 1) * ld + rows); }

int gemm(const char* fn, void* handle, int ta, int tb, int m, int n, int k, const float* alpha, const float* A, int lda,
         long long sa, const float* B, int ldb, long long sb, const float* beta, float* C, int ldc, long long sc, int batch) {
    Handle* h = lookup(handle);
    if (!h) return complain(ST_NOT_INITIALIZED, "%s: handle is null or destroyed", fn);
    auto op_ok = [](int o) { return o == OP_N || o == OP_T || o == OP_C; };
    if (!op_ok(ta) || !op_ok(tb)) return ST_INVALID_VALUE;
    if (m < 0 || n < 0 || k < 0 || batch < 0) return ST_INVALID_VALUE;
    const int rowsA = ta == OP_N ? m : k, colsA = ta == OP_N ? k : m;
    const int rowsB = tb == OP_N ? k : n, colsB = tb == OP_N ? n : k;
    if (lda < std::max(1, rowsA) || ldb < std::max(1, rowsB) || ldc < std::max(1, m)) return ST_INVALID_VALUE;
    if (!alpha || !beta) return ST_INVALID_VALUE;
    if (m == 0 || n == 0 || batch == 0) return ST_SUCCESS;  // nothing to do; cuBLAS returns at once
    auto* g = new Gemm{ta, tb, m, n, k, lda, ldb, ldc, batch, sa, sb, sc, *alpha, *beta, A, B, C, ROUND_NONE};
    const bool tf32_ok = tf32_allowed();
    switch (h->math & ~MATH_DISALLOW_REDUCED) {
        case MATH_TF32: g->round = tf32_ok ? ROUND_TF32 : ROUND_NONE; break;
        case MATH_TENSOR_OP: g->round = ROUND_HALF; break;
        default: g->round = ROUND_NONE;
    }
    // The device ranges, each over all batches.
    const bool readAB = g->alpha != 0 && k > 0;
    struct {
        const char* name;
        const void* p;
        uint64_t bytes;
    } r[3] = {{"A", A, readAB ? span(rowsA, colsA, lda) : 0},
              {"B", B, readAB ? span(rowsB, colsB, ldb) : 0},
              {"C", C, span(m, n, ldc)}};
    const long long strides[3] = {sa, sb, sc};
    uint64_t ranges[6];
    int nr = 0;
    for (int i = 0; i < 3; i++) {
        if (!r[i].bytes) continue;
        uint64_t bytes = r[i].bytes + 4 * (uint64_t)(batch - 1) * (uint64_t)std::max<long long>(strides[i], 0);
        char what[96], msg[512];
        snprintf(what, sizeof what, "%s: %s", fn, r[i].name);
        if (padsim_check_range((uint64_t)(uintptr_t)r[i].p, bytes, what, msg, sizeof msg) != 0) {
            delete g;
            return complain(ST_INVALID_VALUE, "%s", msg);
        }
        ranges[2 * nr] = (uint64_t)(uintptr_t)r[i].p;
        ranges[2 * nr + 1] = bytes;
        nr++;
    }
    int rc = padsim_enqueue(h->stream, PADSIM_OP_BLAS, fn, run_gemm, g, free_gemm, ranges, nr);
    if (rc != 0) {
        free_gemm(g);
        return complain(ST_EXECUTION_FAILED, "%s: queuing the operation failed (CUresult %d): %s", fn, rc, padsim_last_message());
    }
    padsim_count("blas_calls", 1);
    return ST_SUCCESS;
}

}  // namespace

// INJECTABLE starts every exported function: the fault fail[=FUNCTION][@N]
// of PAD_CUDASIM_FAULT fails the call with INTERNAL_ERROR before it does
// anything.
#define INJECTABLE                     \
    if (padsim_fault("fail", __func__)) \
    return complain(ST_INTERNAL_ERROR, "%s: failed (fault injected by PAD_CUDASIM_FAULT=fail)", __func__)

extern "C" {

PADSIM_EXPORT int cublasCreate_v2(void** handle) {
    INJECTABLE;
    if (!handle) return ST_INVALID_VALUE;
    auto* h = new Handle;
    std::lock_guard<std::mutex> g(g_mu);
    g_handles.insert(h);
    *handle = h;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasDestroy_v2(void* handle) {
    INJECTABLE;
    {
        std::lock_guard<std::mutex> g(g_mu);
        if (!handle || !g_handles.erase((Handle*)handle)) return ST_NOT_INITIALIZED;
    }
    delete (Handle*)handle;  // queued GEMMs hold copies of what they need
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasGetVersion_v2(void* handle, int* version) {
    INJECTABLE;
    if (!lookup(handle)) return ST_NOT_INITIALIZED;
    if (!version) return ST_INVALID_VALUE;
    *version = PADSIM_CUBLAS_VERSION;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasSetStream_v2(void* handle, void* stream) {
    INJECTABLE;
    Handle* h = lookup(handle);
    if (!h) return ST_NOT_INITIALIZED;
    h->stream = (uint64_t)(uintptr_t)stream;
    h->ws = 0;  // as cuBLAS: a new stream resets the workspace to the default pool
    h->ws_bytes = 0;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasSetMathMode(void* handle, int mode) {
    INJECTABLE;
    Handle* h = lookup(handle);
    if (!h) return ST_NOT_INITIALIZED;
    int base = mode & ~MATH_DISALLOW_REDUCED;
    if (base < MATH_DEFAULT || base > MATH_TF32) return ST_INVALID_VALUE;
    h->math = mode;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasSetWorkspace_v2(void* handle, void* ws, size_t bytes) {
    INJECTABLE;
    Handle* h = lookup(handle);
    if (!h) return ST_NOT_INITIALIZED;
    if (bytes > 0) {
        if (!ws) return ST_INVALID_VALUE;
        if ((uintptr_t)ws % 256 != 0) return ST_INVALID_VALUE;  // cuBLAS wants 256-byte alignment
        char msg[512];
        if (padsim_check_range((uint64_t)(uintptr_t)ws, bytes, "cublasSetWorkspace_v2: workspace", msg, sizeof msg) != 0)
            return complain(ST_INVALID_VALUE, "%s", msg);
    }
    h->ws = (uint64_t)(uintptr_t)ws;
    h->ws_bytes = bytes;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cublasSgemm_v2(void* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                                 const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
    INJECTABLE;
    return gemm("cublasSgemm_v2", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

PADSIM_EXPORT int cublasSgemmStridedBatched(void* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                                            const float* A, int lda, long long strideA, const float* B, int ldb,
                                            long long strideB, const float* beta, float* C, int ldc, long long strideC,
                                            int batchCount) {
    INJECTABLE;
    return gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta,
                C, ldc, strideC, batchCount);
}

PADSIM_EXPORT const char* cublasGetStatusName(int status) {
    for (const auto& s : kStatus)
        if (s.code == status) return s.name;
    return "CUBLAS_STATUS_UNKNOWN";
}

PADSIM_EXPORT const char* cublasGetStatusString(int status) {
    for (const auto& s : kStatus)
        if (s.code == status) return s.text;
    return "unknown error";
}

// cublasGetProperty: MAJOR_VERSION 0, MINOR_VERSION 1, PATCH_LEVEL 2 (library_types.h).
PADSIM_EXPORT int cublasGetProperty(int type, int* value) {
    INJECTABLE;
    if (!value) return ST_INVALID_VALUE;
    switch (type) {
        case 0: *value = PADSIM_CUBLAS_VERSION / 10000; return ST_SUCCESS;
        case 1: *value = PADSIM_CUBLAS_VERSION / 100 % 100; return ST_SUCCESS;
        case 2: *value = PADSIM_CUBLAS_VERSION % 100; return ST_SUCCESS;
    }
    return ST_INVALID_VALUE;
}

}  // extern "C"
