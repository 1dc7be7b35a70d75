// cudnn.cpp: the simulated cuDNN (libcudnn.so.9, or libcudnn.so.8 when
// built with -DPADSIM_CUDNN_MAJOR=8): the legacy convolution API that pad
// binds (internal/cu/cudnn.go, cudnn_conv.go) for float NCHW tensors.
//
// Every compute call validates its arguments, checks the device ranges it
// will touch (padsim_check_range), and queues one operation on the handle's
// stream (padsim_enqueue), so work is lazy, ordered and capturable like a
// kernel. The operation carries copies of everything it needs (descriptors,
// alpha/beta read at call time), so it can be replayed by a graph after the
// caller destroyed its descriptors.
//
// Numerics: sums are accumulated in double and rounded to float once
// (products of two floats are exact in double, so fused or unfused
// multiply-add give the same bits and the result does not depend on the
// compiler's contraction choices). Each output element is computed by
// exactly one thread in a fixed order, so results are bit-identical run to
// run whatever the thread count. Exceptions that model the hardware:
//   - the tensor-core algorithms round their inputs to TF32 unless the
//     descriptor's math type is CUDNN_FMA_MATH;
//   - the NONDETERMINISTIC algorithms (backward data ALGO_0, backward filter
//     ALGO_0 and ALGO_3, which use atomics on a GPU) sum float partial
//     results in an order that changes from run to run.
#include "padsim.h"
#include "simcompute.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <unordered_set>
#include <vector>

#ifndef PADSIM_CUDNN_MAJOR
#define PADSIM_CUDNN_MAJOR 9
#endif

#if PADSIM_CUDNN_MAJOR >= 9
#define PADSIM_CUDNN_VERSION 91400  // 9.14.0: major*10000 + minor*100 + patch
#else
#define PADSIM_CUDNN_VERSION 8907  // 8.9.7: major*1000 + minor*100 + patch
#endif

namespace {

// ---- Statuses ---------------------------------------------------------------
// cuDNN 9 renumbered cudnnStatus_t into classes (cudnn_graph.h); cuDNN 8 used
// 0..14. The deprecated CUDNN_STATUS_ALLOC_FAILED of cuDNN 9 is an alias of
// CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED (4003).
#if PADSIM_CUDNN_MAJOR >= 9
enum : int {
    ST_SUCCESS = 0,
    ST_NOT_INITIALIZED = 1001,
    ST_BAD_PARAM = 2000,
    ST_NULL_POINTER = 2002,
    ST_NOT_SUPPORTED = 3000,
    ST_INTERNAL_ERROR = 4000,
    ST_ALLOC_FAILED = 4003,
    ST_EXECUTION_FAILED = 5000,
};
struct StatusName {
    int code;
    const char* name;
};
const StatusName kStatusNames[] = {
    {0, "CUDNN_STATUS_SUCCESS"},
    {1001, "CUDNN_STATUS_NOT_INITIALIZED"},
    {1002, "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH"},
    {1003, "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH"},
    {1004, "CUDNN_STATUS_DEPRECATED"},
    {1005, "CUDNN_STATUS_LICENSE_ERROR"},
    {1006, "CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING"},
    {1008, "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED"},
    {2000, "CUDNN_STATUS_BAD_PARAM"},
    {2001, "CUDNN_STATUS_INVALID_VALUE"},
    {2002, "CUDNN_STATUS_BAD_PARAM_NULL_POINTER"},
    {2003, "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER"},
    {2004, "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED"},
    {2005, "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND"},
    {2006, "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT"},
    {2007, "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH"},
    {2008, "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH"},
    {2009, "CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES"},
    {2010, "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE"},
    {3000, "CUDNN_STATUS_NOT_SUPPORTED"},
    {3001, "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN"},
    {3002, "CUDNN_STATUS_NOT_SUPPORTED_SHAPE"},
    {3003, "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE"},
    {3004, "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT"},
    {3005, "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER"},
    {3006, "CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART"},
    {3007, "CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH"},
    {3008, "CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING"},
    {3009, "CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE"},
    {3010, "CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT"},
    {3011, "CUDNN_STATUS_NOT_SUPPORTED_PADDING"},
    {3012, "CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM"},
    {4000, "CUDNN_STATUS_INTERNAL_ERROR"},
    {4001, "CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED"},
    {4002, "CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE"},
    {4003, "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED"},
    {4004, "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED"},
    {4005, "CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM"},
    {4006, "CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED"},
    {5000, "CUDNN_STATUS_EXECUTION_FAILED"},
    {5001, "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER"},
    {5002, "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS"},
    {5003, "CUDNN_STATUS_EXECUTION_FAILED_CUDART"},
    {5004, "CUDNN_STATUS_EXECUTION_FAILED_CURAND"},
};
#else
enum : int {
    ST_SUCCESS = 0,
    ST_NOT_INITIALIZED = 1,
    ST_ALLOC_FAILED = 2,
    ST_BAD_PARAM = 3,
    ST_NULL_POINTER = 3,  // cuDNN 8 has no finer class
    ST_INTERNAL_ERROR = 4,
    ST_EXECUTION_FAILED = 8,
    ST_NOT_SUPPORTED = 9,
};
struct StatusName {
    int code;
    const char* name;
};
const StatusName kStatusNames[] = {
    {0, "CUDNN_STATUS_SUCCESS"},
    {1, "CUDNN_STATUS_NOT_INITIALIZED"},
    {2, "CUDNN_STATUS_ALLOC_FAILED"},
    {3, "CUDNN_STATUS_BAD_PARAM"},
    {4, "CUDNN_STATUS_INTERNAL_ERROR"},
    {5, "CUDNN_STATUS_INVALID_VALUE"},
    {6, "CUDNN_STATUS_ARCH_MISMATCH"},
    {7, "CUDNN_STATUS_MAPPING_ERROR"},
    {8, "CUDNN_STATUS_EXECUTION_FAILED"},
    {9, "CUDNN_STATUS_NOT_SUPPORTED"},
    {10, "CUDNN_STATUS_LICENSE_ERROR"},
    {11, "CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING"},
    {12, "CUDNN_STATUS_RUNTIME_IN_PROGRESS"},
    {13, "CUDNN_STATUS_RUNTIME_FP_OVERFLOW"},
    {14, "CUDNN_STATUS_VERSION_MISMATCH"},
};
#endif

// The message behind the last failed call of this thread, as cuDNN 9 keeps
// it for cudnnGetLastErrorString.
thread_local char t_last_error[1024];

__attribute__((format(printf, 3, 4))) int fail(int status, const char* fn, const char* fmt, ...) {
    int n = snprintf(t_last_error, sizeof t_last_error, "%s: ", fn);
    if (n < 0 || n >= (int)sizeof t_last_error) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_last_error + n, sizeof t_last_error - n, fmt, ap);
    va_end(ap);
    return status;
}

// ---- Enumerations (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h) -------------------
enum { FMT_NCHW = 0, FMT_NHWC = 1, FMT_NCHW_VECT_C = 2 };
enum { DT_FLOAT = 0, DT_DOUBLE = 1, DT_HALF = 2, DT_LAST = 16 };
enum { MATH_DEFAULT = 0, MATH_TENSOR_OP = 1, MATH_TENSOR_OP_ALLOW_CONVERSION = 2, MATH_FMA = 3 };
enum { MODE_CONVOLUTION = 0, MODE_CROSS_CORRELATION = 1 };
enum { NONDETERMINISTIC = 0, DETERMINISTIC = 1 };

// ---- Objects ------------------------------------------------------------------
struct Handle {
    uint64_t stream = 0;
    std::atomic<uint64_t> calls{0};  // seeds the order of the nondeterministic algorithms
};
struct Tensor {
    bool set = false;
    int format = 0, dtype = 0, n = 0, c = 0, h = 0, w = 0;
};
struct Filter {
    bool set = false;
    int dtype = 0, format = 0, k = 0, c = 0, r = 0, s = 0;
};
struct Conv {
    bool set = false;
    int ph = 0, pw = 0, sh = 1, sw = 1, dh = 1, dw = 1, mode = MODE_CROSS_CORRELATION, ctype = DT_FLOAT;
    int math = MATH_DEFAULT;
};

// A registry of live objects, so that a destroyed or foreign handle or
// descriptor is a BAD_PARAM instead of a crash.
template <class T>
struct Registry {
    std::mutex mu;
    std::unordered_set<T*> live;
    T* make() {
        T* p = new T;
        std::lock_guard<std::mutex> g(mu);
        live.insert(p);
        return p;
    }
    bool has(const void* p) {
        std::lock_guard<std::mutex> g(mu);
        return p && live.count((T*)p);
    }
    bool destroy(void* p) {
        {
            std::lock_guard<std::mutex> g(mu);
            if (!p || !live.erase((T*)p)) return false;
        }
        delete (T*)p;
        return true;
    }
};
Registry<Handle> g_handles;
Registry<Tensor> g_tensors;
Registry<Filter> g_filters;
Registry<Conv> g_convs;

inline long round16(long n) { return (n + 15) / 16 * 16; }

// blend is alpha*acc + beta*old in double, rounded once; beta == 0 does not
// read old (it may hold NaN).
inline float blend(double acc, double alpha, double beta, const float* old) {
    if (beta == 0) return (float)(alpha * acc);
    return (float)(alpha * acc + beta * (double)*old);
}

// mix64 is splitmix64's finaliser: the per-element order of the
// nondeterministic algorithms.
inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// fsum_rotated sums J float partials in float, starting at a position and in
// a direction drawn from (seed, element): the order of atomics on a GPU.
inline float fsum_rotated(const float* part, long stride, int J, uint64_t seed, uint64_t elem) {
    uint64_t h = mix64(seed ^ (elem * 0x2545f4914f6cdd1dull));
    int start = (int)(h % (uint64_t)J);
    bool back = (h >> 32) & 1;
    float s = 0;
    for (int i = 0; i < J; i++) {
        int j = back ? (start - i + J) % J : (start + i) % J;
        s += part[j * stride];
    }
    return s;
}

// ---- Geometry and algorithms ------------------------------------------------------
enum Op { OP_FWD = 0, OP_BWD_DATA = 1, OP_BWD_FILTER = 2 };
const char* const kOpKey[] = {"fwd", "bwd_data", "bwd_filter"};
const int kAlgoCount[] = {8, 6, 7};
const char* const kAlgoNames[3][8] = {
    {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
    {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"},
    {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"},
};

struct Geom {
    long N, C, H, W, K, R, S, P, Q;
    int ph, pw, sh, sw, dh, dw;
    bool flip;  // CUDNN_CONVOLUTION: the filter is applied flipped
    int math;
    long xlen() const { return N * C * H * W; }
    long wlen() const { return K * C * R * S; }
    long ylen() const { return N * K * P * Q; }
    double flops() const { return 2.0 * N * K * C * R * S * P * Q; }
};

bool tensor_ok(const Tensor* t) { return t->set && t->dtype == DT_FLOAT && t->format == FMT_NCHW; }

// geometry validates a convolution's descriptors (x, w, conv, y: y is dy
// and x is dx for the backward directions) and fills g.
int geometry(const char* fn, const void* hx, const void* hw, const void* hc, const void* hy, Geom* g) {
    if (!g_tensors.has(hx)) return fail(ST_BAD_PARAM, fn, "x descriptor is null, destroyed or not a tensor descriptor");
    if (!g_filters.has(hw)) return fail(ST_BAD_PARAM, fn, "w descriptor is null, destroyed or not a filter descriptor");
    if (!g_convs.has(hc)) return fail(ST_BAD_PARAM, fn, "convolution descriptor is null, destroyed or not a convolution descriptor");
    if (!g_tensors.has(hy)) return fail(ST_BAD_PARAM, fn, "y descriptor is null, destroyed or not a tensor descriptor");
    auto x = (const Tensor*)hx, y = (const Tensor*)hy;
    auto w = (const Filter*)hw;
    auto c = (const Conv*)hc;
    if (!x->set || !y->set || !w->set || !c->set) return fail(ST_BAD_PARAM, fn, "a descriptor was never set");
    if (!tensor_ok(x) || !tensor_ok(y) || w->dtype != DT_FLOAT || w->format != FMT_NCHW)
        return fail(ST_NOT_SUPPORTED, fn, "the simulation supports float NCHW tensors and filters only");
    if (c->ctype != DT_FLOAT) return fail(ST_NOT_SUPPORTED, fn, "float data needs a float compute type (got %d)", c->ctype);
    if (x->c != w->c) return fail(ST_BAD_PARAM, fn, "x has %d channels, the filter %d", x->c, w->c);
    long eh = (long)(w->r - 1) * c->dh + 1, ew = (long)(w->s - 1) * c->dw + 1;
    long P = ((long)x->h + 2L * c->ph - eh), Q = ((long)x->w + 2L * c->pw - ew);
    if (P < 0 || Q < 0) return fail(ST_BAD_PARAM, fn, "the dilated filter is larger than the padded input");
    P = P / c->sh + 1;
    Q = Q / c->sw + 1;
    if (y->n != x->n || y->c != w->k || y->h != P || y->w != Q)
        return fail(ST_BAD_PARAM, fn, "y is %dx%dx%dx%d, the convolution gives %dx%dx%ldx%ld", y->n, y->c, y->h, y->w, x->n,
                    w->k, P, Q);
    *g = Geom{x->n, x->c, x->h, x->w, w->k, w->r, w->s, P, Q, c->ph, c->pw, c->sh, c->sw, c->dh, c->dw,
              c->mode == MODE_CONVOLUTION, c->math};
    return ST_SUCCESS;
}

// An algorithm's properties for one geometry.
struct Algo {
    bool supported = false;
    size_t ws = 0;
    bool det = true;
    bool tc = false;   // uses tensor cores (TF32) unless the math type is FMA
    double ms = 0;     // the simulated time
    int math = 0;      // the math type a search reports for it
    bool rounds() const { return tc && math == MATH_TENSOR_OP; }
};

// Algorithms made NOT_SUPPORTED by the dnn_unsupported fault. Once the
// fault fires for an algorithm it stays unsupported until the faults are
// changed (padsim_set_faults), so that heuristics, searches, workspace
// queries and runs all agree.
std::mutex g_unsup_mu;
bool g_unsup[3][8];
uint64_t g_unsup_generation = 0;

bool fault_unsupported(Op op, int a) {
    std::lock_guard<std::mutex> g(g_unsup_mu);
    if (uint64_t gen = padsim_faults_generation(); gen != g_unsup_generation) {
        memset(g_unsup, 0, sizeof g_unsup);
        g_unsup_generation = gen;
    }
    if (g_unsup[op][a]) return true;
    char detail[32];
    snprintf(detail, sizeof detail, "%s:%d", kOpKey[op], a);
    if (padsim_fault("dnn_unsupported", detail)) g_unsup[op][a] = true;
    return g_unsup[op][a];
}

// algo_info models NVIDIA's support lists (DIRECT and backward-filter
// WINOGRAD never; WINOGRAD only 3x3 stride 1 without dilation; FFT only
// stride 1, no dilation, small filters), workspace sizes (0 for implicit
// GEMM, im2col-sized for GEMM, large for FFT) and a deterministic time model
// of an H100-class GPU.
Algo algo_info(Op op, int a, const Geom& g) {
    Algo al;
    const double F = g.flops();
    const long CRS = g.C * g.R * g.S;
    const bool unit = g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
    const bool k3 = g.R == 3 && g.S == 3 && unit;
    const bool fft_ok = unit && g.R <= 32 && g.S <= 32 && g.ph < g.R && g.pw < g.S && g.H + 2 * g.ph <= 256 &&
                        g.W + 2 * g.pw <= 256;
    const bool tiling_ok = unit && g.R <= 32 && g.S <= 32 && g.ph < g.R && g.pw < g.S;
    auto pow2 = [](long n) {
        long p = 1;
        while (p < n) p *= 2;
        return p;
    };
    const long fh = pow2(g.H + 2 * g.ph), fw = pow2(g.W + 2 * g.pw);
    const size_t fft_ws = (size_t)(g.N * g.C + g.K * g.C + g.N * g.K) * fh * (fw / 2 + 1) * 8;
    const long tiles = ((g.H + 2 * g.ph + 31 - g.R) / (33 - g.R) + 1) * ((g.W + 2 * g.pw + 31 - g.S) / (33 - g.S) + 1);
    const size_t tiling_ws = (size_t)(g.N * g.C + g.K * g.C + g.N * g.K) * 32 * 17 * 8 * std::max<long>(tiles, 1) / 4;
    const long wtiles = ((g.P + 3) / 4) * ((g.Q + 3) / 4);
    const size_t wino_ws = (size_t)(g.N * g.C + g.K * g.C + g.N * g.K) * wtiles * 36 * 4;
    const size_t im2col = (size_t)CRS * g.P * g.Q * 4;
    // efficiency: the fraction of the peak the kernels reach; work: the
    // flops they do (FFT and Winograd do less); launches: kernel count.
    double eff = 0.3, work = F;
    int launches = 1;
    switch (op) {
        case OP_FWD:
            switch (a) {
                case 0: al.supported = true, eff = 0.30; break;
                case 1: al.supported = true, al.tc = true, al.ws = (size_t)CRS * 8 + 64, eff = 0.45; break;
                case 2: al.supported = true, al.ws = im2col * g.N, eff = 0.40, launches = 2; break;
                case 3: break;  // DIRECT: never implemented by cuDNN
                case 4: al.supported = fft_ok, al.ws = fft_ws, launches = 4; break;
                case 5: al.supported = tiling_ok, al.ws = tiling_ws, launches = 4; break;
                case 6: al.supported = k3, al.ws = 0, eff = 0.35, work = F / 2.25; break;
                case 7: al.supported = k3, al.tc = true, al.ws = wino_ws, eff = 0.30, work = F / 2.25, launches = 3; break;
            }
            break;
        case OP_BWD_DATA:
            switch (a) {
                case 0: al.supported = true, al.det = false, eff = 0.35; break;
                case 1: al.supported = true, al.tc = true, al.ws = (size_t)CRS * 8 + 64, eff = 0.40; break;
                case 2: al.supported = fft_ok, al.ws = fft_ws, launches = 4; break;
                case 3: al.supported = tiling_ok, al.ws = tiling_ws, launches = 4; break;
                case 4: al.supported = k3, al.ws = 0, eff = 0.35, work = F / 2.25; break;
                case 5: al.supported = k3, al.tc = true, al.ws = wino_ws, eff = 0.30, work = F / 2.25, launches = 3; break;
            }
            break;
        case OP_BWD_FILTER:
            switch (a) {
                case 0: al.supported = true, al.det = false, eff = 0.30; break;
                case 1: al.supported = true, al.tc = true, al.ws = (size_t)g.K * CRS * 4 + 256, eff = 0.40, launches = 2; break;
                case 2: al.supported = fft_ok, al.ws = fft_ws, launches = 4; break;
                case 3: al.supported = true, al.det = false, al.ws = (size_t)g.K * CRS * 4 / 2 + 256, eff = 0.35; break;
                case 4: break;  // WINOGRAD: never implemented for the filter gradient
                case 5: al.supported = k3, al.tc = true, al.ws = wino_ws, eff = 0.30, work = F / 2.25, launches = 3; break;
                case 6: al.supported = tiling_ok, al.ws = tiling_ws, launches = 4; break;
            }
            break;
    }
    if (al.supported && fault_unsupported(op, a)) al.supported = false;
    if (!al.supported) {
        al.ws = 0;
        return al;
    }
    if ((op == OP_FWD && (a == 4 || a == 5)) || (op == OP_BWD_DATA && (a == 2 || a == 3)) ||
        (op == OP_BWD_FILTER && (a == 2 || a == 6))) {
        // FFT: transforms plus a pointwise product, independent of the filter size.
        double area = (a == 4 || (op == OP_BWD_DATA && a == 2) || (op == OP_BWD_FILTER && a == 2))
                          ? (double)fh * fw
                          : 32.0 * 32.0 * std::max<long>(tiles, 1);
        work = 5.0 * (g.N * g.C + g.N * g.K + g.K * g.C) * area * std::log2(std::max(area, 2.0)) +
               8.0 * g.N * g.K * g.C * area / 2;
        eff = 0.35;
    }
    // Math: with CUDNN_FMA_MATH nothing uses tensor cores; otherwise the
    // tensor-core algorithms report CUDNN_TENSOR_OP_MATH and the rest the
    // default math.
    const bool tensor = g.math != MATH_FMA && tf32_allowed();
    al.math = g.math == MATH_FMA ? MATH_FMA : (al.tc && tensor ? MATH_TENSOR_OP : MATH_DEFAULT);
    const double peak = al.rounds() ? 400e12 : 50e12;  // TF32 tensor cores vs FP32 FMA, flop/s
    const double bytes = 4.0 * (g.xlen() + g.wlen() + g.ylen()) + 2.0 * al.ws;
    al.ms = 1e3 * (launches * 4e-6 + work / (peak * eff) + bytes / 3e12);
    return al;
}

// ---- The operations -------------------------------------------------------------------
struct ConvJob {
    Op op;
    Geom g;
    int algo;
    bool tf32, nondet, wrong;
    double alpha, beta;
    const float *a, *b;  // fwd: x, w; bwd data: w, dy; bwd filter: x, dy
    float* out;          // y, dx or dw
    void* ws;
    size_t ws_fill;
    uint64_t seed;
    std::atomic<uint64_t> runs{0};  // a graph replays the op: each run gets its own order
};

// The packed operands, rounded to TF32 when the algorithm does.
inline float rnd(float v, bool r) { return r ? tf32(v) : v; }

// scratch returns a per-thread buffer of at least n elements (slot picks one
// of a few), kept between operations: large per-operation allocations would
// be mmap'ed, page-faulted and unmapped every time. Contents are stale.
template <class T>
T* scratch(int slot, size_t n) {
    thread_local std::vector<T> bufs[4];
    std::vector<T>& b = bufs[slot];
    if (b.size() < n) b.resize(n);
    return b.data();
}

// im2col packs one image as PT[pq][crs] (row stride CRSp, zero padding): the
// input patch under each output position.
void im2col(const Geom& g, const float* x, bool r, float* pt, long CRSp) {
    for (long p = 0; p < g.P; p++)
        for (long q = 0; q < g.Q; q++) {
            float* row = pt + (p * g.Q + q) * CRSp;
            long i = 0;
            for (long c = 0; c < g.C; c++)
                for (long rr = 0; rr < g.R; rr++) {
                    long h = p * g.sh - g.ph + rr * g.dh;
                    const float* xr = x + (c * g.H + h) * g.W;
                    bool hin = h >= 0 && h < g.H;
                    for (long s = 0; s < g.S; s++, i++) {
                        long w = q * g.sw - g.pw + s * g.dw;
                        row[i] = hin && w >= 0 && w < g.W ? rnd(xr[w], r) : 0.0f;
                    }
                }
            for (; i < CRSp; i++) row[i] = 0;
        }
}

// strip packs the im2col columns [cb, cb+16) of the output positions
// l0 .. l0+len (l = n*PQ + pq, across images) as S[l][16]: the operand of the
// filter gradient, built where it is used so it stays in L1.
void strip(const Geom& g, const float* x, bool rd, long cb, long l0, long len, float* out) {
    const long CRS = g.C * g.R * g.S, PQ = g.P * g.Q;
    long off[16], roff[16], soff[16];
    bool live[16];
    for (int v = 0; v < 16; v++) {
        long i = cb + v;
        live[v] = i < CRS;
        long c = live[v] ? i / (g.R * g.S) : 0, r = live[v] ? i / g.S % g.R : 0, s = live[v] ? i % g.S : 0;
        off[v] = c * g.H * g.W;
        roff[v] = r * g.dh - g.ph;
        soff[v] = s * g.dw - g.pw;
    }
    for (long l = l0; l < l0 + len; l++, out += 16) {
        long n = l / PQ, p = l % PQ / g.Q, q = l % g.Q;
        const float* xn = x + n * g.C * g.H * g.W;
        for (int v = 0; v < 16; v++) {
            long h = p * g.sh + roff[v], w = q * g.sw + soff[v];
            out[v] = live[v] && h >= 0 && h < g.H && w >= 0 && w < g.W ? rnd(xn[off[v] + h * g.W + w], rd) : 0.0f;
        }
    }
}

// dy_t returns dy transposed to [k][n*PQ + pq] (rounded to TF32 when
// asked), so that a tile's contraction or rows run across images.
std::vector<float> dy_t(const Geom& g, const float* dy, bool rd) {
    const long PQ = g.P * g.Q, total = g.N * PQ;
    std::vector<float> t((size_t)g.K * total);
    Pool::get().parallel_for(g.K, [&](size_t k) {
        for (long n = 0; n < g.N; n++)
            for (long pq = 0; pq < PQ; pq++) t[k * total + n * PQ + pq] = rnd(dy[(n * g.K + k) * PQ + pq], rd);
    });
    return t;
}

// images_per_item groups small images so that a tile's rows span at least
// 96 output positions (the weights are then streamed once per group, not
// once per image), keeping enough items for the threads.
long images_per_item(const Geom& g) {
    const long PQ = g.P * g.Q;
    long per = std::max<long>(1, (96 + PQ - 1) / PQ);
    per = std::min<long>(per, std::max<long>(1, g.N / (2L * Pool::get().threads())));
    return std::min(per, g.N);
}

// wval returns the weight the cross-correlation applies at (k, c, r, s).
inline float wval(const Geom& g, const float* w, long k, long c, long r, long s) {
    if (g.flip) r = g.R - 1 - r, s = g.S - 1 - s;
    return w[((k * g.C + c) * g.R + r) * g.S + s];
}

void make_wrong(float* out, long n) {
    // Every element 1 % too large: what `pad doctor` must catch at either
    // precision (a 1 % error is above the TF32 limit too, as a slip in one
    // element is not).
    for (long i = 0; i < n; i++) out[i] *= 1.01f;
}

// groups splits work into enough items for all threads: each of the
// `outer` items is split into up to `inner` groups.
long groups(long outer, long inner) {
    long want = (2L * Pool::get().threads() + outer - 1) / outer;
    return std::clamp(want, 1L, std::max(inner, 1L));
}

void run_forward(const ConvJob& j) {
    const Geom& g = j.g;
    const long CRS = g.C * g.R * g.S, CRSp = round16(CRS), PQ = g.P * g.Q, KB = (g.K + 15) / 16;
    // Wt[kb][crs][16]: the weights, 16 output channels side by side.
    std::vector<float> wt((size_t)KB * CRS * 16);
    Pool::get().parallel_for(KB, [&](size_t kb) {
        for (long v = 0; v < 16; v++) {
            long k = kb * 16 + v;
            for (long c = 0, i = 0; c < g.C; c++)
                for (long r = 0; r < g.R; r++)
                    for (long s = 0; s < g.S; s++, i++)
                        wt[(kb * CRS + i) * 16 + v] = k < g.K ? rnd(wval(g, j.b, k, c, r, s), j.tf32) : 0.0f;
        }
    });
    // Items: (group of images, group of output-channel blocks). Each packs
    // its images (im2col) into a per-thread buffer that stays in cache, then
    // y (rows l = n*PQ + pq, x K) = PT (l x CRS) . Wt (CRS x K) in tiles of
    // 6 positions x 16 channels.
    const long NI = images_per_item(g), NG = (g.N + NI - 1) / NI, KG = groups(NG, KB);
    Pool::get().parallel_for((size_t)NG * KG, [&](size_t item) {
        long ng = item / KG, gi = item % KG, kb0 = KB * gi / KG, kb1 = KB * (gi + 1) / KG;
        long n0 = ng * NI, n1 = std::min(g.N, n0 + NI), rows = (n1 - n0) * PQ;
        float* pt = scratch<float>(0, (size_t)rows * CRSp);
        for (long n = n0; n < n1; n++) im2col(g, j.a + n * g.C * g.H * g.W, j.tf32, pt + (n - n0) * PQ * CRSp, CRSp);
        alignas(64) double acc[kNR * 16];
        for (long kb = kb0; kb < kb1; kb++)
            for (long l0 = 0; l0 < rows; l0 += kNR) {
                int nr = (int)std::min<long>(kNR, rows - l0);
                memset(acc, 0, sizeof acc);
                tile_n(nr, CRS, &wt[kb * CRS * 16], 16, pt + l0 * CRSp, CRSp, 1, acc);
                for (int t = 0; t < nr; t++) {
                    long l = n0 * PQ + l0 + t, n = l / PQ, pq = l % PQ;
                    for (long v = 0; v < 16 && kb * 16 + v < g.K; v++) {
                        float* o = j.out + (n * g.K + kb * 16 + v) * PQ + pq;
                        *o = blend(acc[t * 16 + v], j.alpha, j.beta, o);
                    }
                }
            }
    });
}

void run_backward_data(const ConvJob& j, uint64_t seed) {
    const Geom& g = j.g;
    const long RS = g.R * g.S, CRS = g.C * RS, PQ = g.P * g.Q, HW = g.H * g.W, total = g.N * PQ;
    const long WS = CRS + 16;  // row stride of Wb: a tile may start at any column
    const std::vector<float> dyt = dy_t(g, j.b, j.tf32);
    // Wb[k][crs]: the weights as the cross-correlation applies them.
    std::vector<float> wb((size_t)g.K * WS, 0.0f);
    Pool::get().parallel_for(g.K, [&](size_t k) {
        for (long c = 0, i = 0; c < g.C; c++)
            for (long r = 0; r < g.R; r++)
                for (long s = 0; s < g.S; s++, i++) wb[k * WS + i] = rnd(wval(g, j.a, k, c, r, s), j.tf32);
    });
    // The nondeterministic algorithm splits the sum over k into J partial
    // results (float) added in a varying order.
    const int J = j.nondet ? (int)std::min<long>(4, g.K) : 1;
    // Items: (group of images, group of input channels); each computes its
    // dx planes whole.
    const long NI = images_per_item(g), NG = (g.N + NI - 1) / NI, CG = groups(NG, g.C);
    Pool::get().parallel_for((size_t)NG * CG, [&](size_t item) {
        long ng = item / CG, gi = item % CG, c0 = g.C * gi / CG, c1 = g.C * (gi + 1) / CG;
        long n0 = ng * NI, n1 = std::min(g.N, n0 + NI), cols = (n1 - n0) * PQ;
        long i0 = c0 * RS, ni = (c1 - c0) * RS, nip = round16(ni), planes = (c1 - c0) * HW;
        // GT[crs][l] = sum over k of W[k][crs] * dy[k][l], l = n*PQ + pq over
        // the group's images: what each output position sends back through
        // each tap; col2im adds them up.
        double* GT = scratch<double>(0, (size_t)nip * cols);
        double* dx = scratch<double>(1, (size_t)J * planes);
        float* part = scratch<float>(2, J > 1 ? (size_t)J * planes : 1);
        alignas(64) double acc[kNR * 16];
        for (long n = n0; n < n1; n++) {
            for (int jj = 0; jj < J; jj++) {
                // The group's GT is computed at its first image (for each chunk when J > 1).
                if (n == n0 || J > 1) {
                    long k0 = g.K * jj / J, k1 = g.K * (jj + 1) / J;
                    long la = J > 1 ? (n - n0) * PQ : 0, lb = J > 1 ? la + PQ : cols;
                    for (long cb = 0; cb < nip; cb += 16)
                        for (long l0 = la; l0 < lb; l0 += kNR) {
                            int nr = (int)std::min<long>(kNR, lb - l0);
                            memset(acc, 0, sizeof acc);
                            tile_n(nr, k1 - k0, &wb[k0 * WS + i0 + cb], WS, &dyt[k0 * total + n0 * PQ + l0], 1, total, acc);
                            for (int v = 0; v < 16; v++)
                                for (int t = 0; t < nr; t++) GT[(cb + v) * cols + l0 + t] = acc[t * 16 + v];
                        }
                }
                // col2im in (c, r, s, p, q) order: each dx element sums its taps in (r, s) order.
                double* d = dx + (size_t)jj * planes;
                std::fill(d, d + planes, 0.0);
                for (long c = c0; c < c1; c++)
                    for (long r = 0; r < g.R; r++)
                        for (long s = 0; s < g.S; s++) {
                            const double* gr = GT + ((c * g.R + r) * g.S + s - i0) * cols + (n - n0) * PQ;
                            for (long p = 0; p < g.P; p++) {
                                long h = p * g.sh - g.ph + r * g.dh;
                                if (h < 0 || h >= g.H) continue;
                                double* drow = d + (c - c0) * HW + h * g.W;
                                const double* gp = gr + p * g.Q;
                                for (long q = 0; q < g.Q; q++) {
                                    long w = q * g.sw - g.pw + s * g.dw;
                                    if (w >= 0 && w < g.W) drow[w] += gp[q];
                                }
                            }
                        }
                if (J > 1)
                    for (long e = 0; e < planes; e++) part[jj * planes + e] = (float)d[e];
            }
            float* o = j.out + (n * g.C + c0) * HW;
            for (long e = 0; e < planes; e++) {
                double v = J > 1 ? (double)fsum_rotated(&part[e], planes, J, seed, (n * g.C + c0) * HW + e) : dx[e];
                o[e] = blend(v, j.alpha, j.beta, &o[e]);
            }
        }
    });
}

void run_backward_filter(const ConvJob& j, uint64_t seed) {
    const Geom& g = j.g;
    const long CRS = g.C * g.R * g.S, CB = (CRS + 15) / 16, PQ = g.P * g.Q, total = g.N * PQ;
    const std::vector<float> dyt = dy_t(g, j.b, j.tf32);
    // dW (K x CRS) = dy (K x l) . PT (l x CRS) over l = n*PQ + pq. Items:
    // groups of up to 4 blocks of 16 taps (so each dy row read serves 64
    // taps); the item packs im2col strips of 128 positions (L1-sized) and
    // accumulates all K rows in tiles of 6 channels x 16 taps, each dw
    // element summed over l in order. The nondeterministic algorithms split
    // the l range into J chunks whose float partials are added in a varying
    // order.
    const int J = j.nondet ? (int)std::min<long>(8, total) : 1;
    const long LC = 128;
    const long GB = std::clamp<long>(CB / (2L * Pool::get().threads()), 1, 4), items = (CB + GB - 1) / GB;
    Pool::get().parallel_for(items, [&](size_t item) {
        long b0 = item * GB, nb = std::min(GB, CB - b0), na = nb * g.K * 16;
        double* acc = scratch<double>(0, (size_t)na);
        float* st = scratch<float>(1, (size_t)nb * LC * 16);
        float* part = scratch<float>(2, J > 1 ? (size_t)J * na : 1);
        for (int jj = 0; jj < J; jj++) {
            std::fill(acc, acc + na, 0.0);
            long l1 = total * (jj + 1) / J;
            for (long l = total * jj / J; l < l1; l += LC) {
                long len = std::min(LC, l1 - l);
                for (long b = 0; b < nb; b++) strip(g, j.a, j.tf32, (b0 + b) * 16, l, len, st + b * LC * 16);
                for (long k0 = 0; k0 < g.K; k0 += kNR) {
                    int nr = (int)std::min<long>(kNR, g.K - k0);
                    for (long b = 0; b < nb; b++)
                        tile_n(nr, len, st + b * LC * 16, 16, &dyt[k0 * total + l], total, 1, acc + (b * g.K + k0) * 16);
                }
            }
            if (J > 1)
                for (long e = 0; e < na; e++) part[jj * na + e] = (float)acc[e];
        }
        for (long b = 0; b < nb; b++)
            for (long k = 0; k < g.K; k++)
                for (long v = 0; v < 16 && (b0 + b) * 16 + v < CRS; v++) {
                    long i = (b0 + b) * 16 + v, a = (b * g.K + k) * 16 + v;
                    long c = i / (g.R * g.S), r = i / g.S % g.R, s = i % g.S;
                    // Store at the weight's own index: flipped for CUDNN_CONVOLUTION.
                    if (g.flip) r = g.R - 1 - r, s = g.S - 1 - s;
                    long e = ((k * g.C + c) * g.R + r) * g.S + s;
                    double val = J > 1 ? (double)fsum_rotated(&part[a], na, J, seed, e) : acc[a];
                    j.out[e] = blend(val, j.alpha, j.beta, &j.out[e]);
                }
    });
}

int run_conv(void* arg, char*, size_t) {
    ConvJob& j = *(ConvJob*)arg;
    uint64_t seed = mix64(j.seed + 0x1000193ull * j.runs.fetch_add(1));
    // The real algorithms scribble on their workspace: leave a NaN pattern,
    // over its first and last 256 KiB (filling tens of MiB at every call
    // was a third of pad doctor's time on the simulation).
    if (j.ws && j.ws_fill) {
        constexpr size_t kEnd = 256 << 10;
        if (j.ws_fill <= 2 * kEnd) {
            memset(j.ws, 0xff, j.ws_fill);
        } else {
            memset(j.ws, 0xff, kEnd);
            memset((char*)j.ws + j.ws_fill - kEnd, 0xff, kEnd);
        }
    }
    switch (j.op) {
        case OP_FWD: run_forward(j); break;
        case OP_BWD_DATA: run_backward_data(j, seed); break;
        case OP_BWD_FILTER: run_backward_filter(j, seed); break;
    }
    if (j.wrong) make_wrong(j.out, j.op == OP_FWD ? j.g.ylen() : j.op == OP_BWD_DATA ? j.g.xlen() : j.g.wlen());
    return 0;
}

void free_conv(void* arg) { delete (ConvJob*)arg; }

// check_ranges checks each (name, pointer, bytes) at call time.
struct Range {
    const char* name;
    const void* p;
    size_t bytes;
};
int check_ranges(const char* fn, const Range* r, int n) {
    for (int i = 0; i < n; i++) {
        if (r[i].bytes == 0) continue;  // an empty workspace may be null
        char what[128], msg[512];
        snprintf(what, sizeof what, "%s: %s", fn, r[i].name);
        if (padsim_check_range((uint64_t)(uintptr_t)r[i].p, r[i].bytes, what, msg, sizeof msg) != 0) {
            // The driver's sentence usually starts with `what`; keep one "fn: name:".
            size_t n = strlen(what);
            if (strncmp(msg, what, n) == 0) return fail(ST_BAD_PARAM, fn, "%s%s", r[i].name, msg + n);
            return fail(ST_BAD_PARAM, fn, "%s: %s", r[i].name, msg);
        }
    }
    return ST_SUCCESS;
}

int enqueue(const char* fn, uint64_t stream, padsim_op_fn op, void* arg, void (*free_fn)(void*), const Range* r, int n) {
    uint64_t ranges[16];
    int m = 0;
    for (int i = 0; i < n && m < 8; i++) {
        if (!r[i].bytes) continue;
        ranges[2 * m] = (uint64_t)(uintptr_t)r[i].p;
        ranges[2 * m + 1] = r[i].bytes;
        m++;
    }
    int rc = padsim_enqueue(stream, PADSIM_OP_DNN, fn, op, arg, free_fn, ranges, m);
    if (rc != 0) {
        free_fn(arg);
        return fail(ST_EXECUTION_FAILED, fn, "queuing the operation failed (CUresult %d): %s", rc, padsim_last_message());
    }
    padsim_count("dnn_calls", 1);
    return ST_SUCCESS;
}

// The three directions differ in which descriptors play which part: a and b
// are the inputs, out the output (fwd: x, w -> y; bwd data: w, dy -> dx; bwd
// filter: x, dy -> dw), and the geometry is always described by (x, w, conv, y).
struct ConvCall {
    const char* fn;
    Op op;
    const void *hx, *hw, *hc, *hy;  // descriptors
    const void *a, *b;
    void* out;
    const char *aname, *bname, *oname;
};

size_t bytes_of(const Geom& g, Op op, int which) {  // which: 0 a, 1 b, 2 out
    static const int kind[3][3] = {{0, 1, 2}, {1, 2, 0}, {0, 2, 1}};  // 0 x, 1 w, 2 y
    int k = kind[op][which];
    return 4 * (size_t)(k == 0 ? g.xlen() : k == 1 ? g.wlen() : g.ylen());
}

// launch runs one algorithm of a call: validation done, geometry known.
int launch(const ConvCall& c, Handle* h, const Geom& g, int algo, const Algo& al, double alpha, double beta, void* ws,
           size_t ws_bytes, bool wrong) {
    Range r[4] = {{c.aname, c.a, bytes_of(g, c.op, 0)},
                  {c.bname, c.b, bytes_of(g, c.op, 1)},
                  {c.oname, c.out, bytes_of(g, c.op, 2)},
                  {"workSpace", ws, ws_bytes}};
    if (int st = check_ranges(c.fn, r, 4)) return st;
    auto* j = new ConvJob;
    j->op = c.op;
    j->g = g;
    j->algo = algo;
    j->tf32 = al.tc && g.math != MATH_FMA && tf32_allowed();
    j->nondet = !al.det;
    j->wrong = wrong;
    j->alpha = alpha;
    j->beta = beta;
    j->a = (const float*)c.a;
    j->b = (const float*)c.b;
    j->out = (float*)c.out;
    j->ws = ws;
    j->ws_fill = std::min(al.ws, ws_bytes);
    j->seed = mix64((uint64_t)(uintptr_t)h ^ (h->calls.fetch_add(1) * 0x9e3779b97f4a7c15ull));
    r[3].bytes = j->ws_fill;
    return enqueue(c.fn, h->stream, run_conv, j, free_conv, r, 4);
}

int check_call(const ConvCall& c, const void* handle, Handle** h, Geom* g) {
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, c.fn, "handle is null or destroyed");
    *h = (Handle*)handle;
    if (int st = geometry(c.fn, c.hx, c.hw, c.hc, c.hy, g)) return st;
    if (!c.a) return fail(ST_NULL_POINTER, c.fn, "%s is null", c.aname);
    if (!c.b) return fail(ST_NULL_POINTER, c.fn, "%s is null", c.bname);
    if (!c.out) return fail(ST_NULL_POINTER, c.fn, "%s is null", c.oname);
    return ST_SUCCESS;
}

int execute(const ConvCall& c, const void* handle, const float* alpha, const float* beta, int algo, void* ws,
            size_t ws_bytes) {
    Handle* h;
    Geom g;
    if (int st = check_call(c, handle, &h, &g)) return st;
    if (!alpha || !beta) return fail(ST_NULL_POINTER, c.fn, "alpha or beta is null");
    if (algo < 0 || algo >= kAlgoCount[c.op]) return fail(ST_BAD_PARAM, c.fn, "algorithm %d does not exist", algo);
    Algo al = algo_info(c.op, algo, g);
    if (!al.supported)
        return fail(ST_NOT_SUPPORTED, c.fn, "algorithm %s is not supported for this configuration", kAlgoNames[c.op][algo]);
    if (!ws && ws_bytes > 0) return fail(ST_BAD_PARAM, c.fn, "workSpace is null but workSpaceSizeInBytes is %zu", ws_bytes);
    if (ws_bytes < al.ws)
        return fail(ST_BAD_PARAM, c.fn, "algorithm %s needs %zu bytes of workspace, got %zu", kAlgoNames[c.op][algo], al.ws,
                    ws_bytes);
    bool wrong = padsim_fault("dnn_wrong", kOpKey[c.op]) != 0;
    return launch(c, h, g, algo, al, *alpha, *beta, ws, ws_bytes, wrong);
}

struct PerfC {  // cudnnConvolution*AlgoPerf_t: one layout for all three (48 bytes on LP64)
    int algo;
    int status;
    float time;
    size_t memory;
    int determinism;
    int mathType;
    int reserved[3];
};
static_assert(sizeof(PerfC) == 48, "cudnnConvolutionFwdAlgoPerf_t layout");

// rank sorts results: usable first, each group by time, ties by algorithm.
void rank(std::vector<PerfC>& v) {
    std::stable_sort(v.begin(), v.end(), [](const PerfC& x, const PerfC& y) {
        bool ox = x.status == ST_SUCCESS, oy = y.status == ST_SUCCESS;
        if (ox != oy) return ox;
        if (ox && x.time != y.time) return x.time < y.time;
        return x.algo < y.algo;
    });
}

int copy_out(const char* fn, std::vector<PerfC>& v, int req, int* ret, void* perf) {
    int n = std::min<int>(req, (int)v.size());
    memcpy(perf, v.data(), n * sizeof(PerfC));
    *ret = n;
    (void)fn;
    return ST_SUCCESS;
}

int heuristic(const ConvCall& c, const void* handle, int req, int* ret, void* perf) {
    Handle* h;
    Geom g;
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, c.fn, "handle is null or destroyed");
    h = (Handle*)handle;
    (void)h;
    if (int st = geometry(c.fn, c.hx, c.hw, c.hc, c.hy, &g)) return st;
    if (!ret || !perf) return fail(ST_NULL_POINTER, c.fn, "returnedAlgoCount or perfResults is null");
    if (req < 1) return fail(ST_BAD_PARAM, c.fn, "requestedAlgoCount is %d", req);
    std::vector<PerfC> v;
    int last = -1;  // the last algorithm that ran: its result is what the output holds
    Algo last_al{};
    for (int a = 0; a < kAlgoCount[c.op]; a++) {
        Algo al = algo_info(c.op, a, g);
        PerfC p{};
        p.algo = a;
        p.status = al.supported ? ST_SUCCESS : ST_NOT_SUPPORTED;
        p.time = al.supported ? (float)al.ms : -1.0f;  // ranked by the model; -1 as heuristics report
        p.memory = al.ws;
        p.determinism = al.det ? DETERMINISTIC : NONDETERMINISTIC;
        p.mathType = al.supported ? al.math : g.math;
        v.push_back(p);
    }
    rank(v);
    for (auto& p : v) p.time = -1.0f;  // heuristics measure nothing
    return copy_out(c.fn, v, req, ret, perf);
}

int find(const ConvCall& c, const void* handle, int req, int* ret, void* perf, void* ws, size_t ws_bytes) {
    Handle* h;
    Geom g;
    if (int st = check_call(c, handle, &h, &g)) return st;
    if (!ret || !perf) return fail(ST_NULL_POINTER, c.fn, "returnedAlgoCount or perfResults is null");
    if (req < 1) return fail(ST_BAD_PARAM, c.fn, "requestedAlgoCount is %d", req);
    if (!ws && ws_bytes > 0) return fail(ST_BAD_PARAM, c.fn, "workSpace is null but workSpaceSizeInBytes is %zu", ws_bytes);
    {
        Range r[4] = {{c.aname, c.a, bytes_of(g, c.op, 0)},
                      {c.bname, c.b, bytes_of(g, c.op, 1)},
                      {c.oname, c.out, bytes_of(g, c.op, 2)},
                      {"workSpace", ws, ws_bytes}};
        if (int st = check_ranges(c.fn, r, 4)) return st;
    }
    std::vector<PerfC> v;
    int last = -1;  // the last algorithm that ran: its result is what the output holds
    Algo last_al{};
    for (int a = 0; a < kAlgoCount[c.op]; a++) {
        Algo al = algo_info(c.op, a, g);
        PerfC p{};
        p.algo = a;
        p.determinism = al.det ? DETERMINISTIC : NONDETERMINISTIC;
        p.mathType = al.supported ? al.math : g.math;
        p.time = -1.0f;
        if (!al.supported) {
            p.status = ST_NOT_SUPPORTED;
        } else if (al.ws > ws_bytes) {
            p.status = ST_ALLOC_FAILED;  // as cuDNN reports an insufficient workspace
            p.memory = al.ws;
        } else {
            // cuDNN's search runs each algorithm, overwriting the output;
            // here they all compute the same convolution, so only the last
            // one that runs is computed (below), for the output it leaves.
            last = a;
            last_al = al;
            p.status = ST_SUCCESS;
            p.memory = al.ws;
            // A "measurement": the model plus a deterministic ±2 % wobble.
            uint64_t z = mix64((uint64_t)a * 131 + (uint64_t)g.N * 7 + (uint64_t)g.C * 13 + (uint64_t)g.K * 17 +
                               (uint64_t)g.H * 19 + (uint64_t)g.R * 23);
            p.time = (float)(al.ms * (0.98 + 0.04 * (double)(z % 1000) / 1000.0));
        }
        v.push_back(p);
    }
    if (last >= 0) {
        if (int st = launch(c, h, g, last, last_al, 1.0, 0.0, ws, ws_bytes, false); st != ST_SUCCESS) return st;
    }
    rank(v);
    return copy_out(c.fn, v, req, ret, perf);
}

int workspace(const ConvCall& c, const void* handle, int algo, size_t* size) {
    Geom g;
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, c.fn, "handle is null or destroyed");
    if (int st = geometry(c.fn, c.hx, c.hw, c.hc, c.hy, &g)) return st;
    if (!size) return fail(ST_NULL_POINTER, c.fn, "sizeInBytes is null");
    if (algo < 0 || algo >= kAlgoCount[c.op]) return fail(ST_BAD_PARAM, c.fn, "algorithm %d does not exist", algo);
    Algo al = algo_info(c.op, algo, g);
    if (!al.supported)
        return fail(ST_NOT_SUPPORTED, c.fn, "algorithm %s is not supported for this configuration", kAlgoNames[c.op][algo]);
    *size = al.ws;
    return ST_SUCCESS;
}

// ---- Tensor ops: bias ---------------------------------------------------------------
struct BiasJob {
    bool add;  // AddTensor; else BackwardBias
    Tensor a, c;
    double alpha, beta;
    const float* src;
    float* dst;
};

int run_bias(void* arg, char*, size_t) {
    BiasJob& j = *(BiasJob*)arg;
    if (j.add) {
        // C = alpha*A + beta*C, A broadcast over its size-1 dimensions.
        const Tensor &A = j.a, &C = j.c;
        const long planes = (long)C.n * C.c, HW = (long)C.h * C.w;
        Pool::get().parallel_for(planes, [&](size_t pl) {
            long n = pl / C.c, ch = pl % C.c;
            long an = A.n == 1 ? 0 : n, ac = A.c == 1 ? 0 : ch;
            float* o = j.dst + pl * HW;
            for (long y = 0; y < C.h; y++)
                for (long x = 0; x < C.w; x++) {
                    long ay = A.h == 1 ? 0 : y, ax = A.w == 1 ? 0 : x;
                    double v = j.src[((an * A.c + ac) * A.h + ay) * A.w + ax];
                    o[y * C.w + x] = blend(v, j.alpha, j.beta, &o[y * C.w + x]);
                }
        });
    } else {
        // db[c] = alpha * sum over n, h, w of dy + beta*db[c], summed in (n, h, w) order.
        const Tensor& D = j.a;
        const long HW = (long)D.h * D.w;
        Pool::get().parallel_for(D.c, [&](size_t ch) {
            double s = 0;
            for (long n = 0; n < D.n; n++) {
                const float* p = j.src + (n * D.c + ch) * HW;
                for (long i = 0; i < HW; i++) s += p[i];
            }
            j.dst[ch] = blend(s, j.alpha, j.beta, &j.dst[ch]);
        });
    }
    return 0;
}

void free_bias(void* arg) { delete (BiasJob*)arg; }

long tlen(const Tensor& t) { return (long)t.n * t.c * t.h * t.w; }

}  // namespace

// ==== The exported API =================================================================
// INJECTABLE starts every exported function: the fault fail[=FUNCTION][@N]
// of PAD_CUDASIM_FAULT fails the call with INTERNAL_ERROR before it does
// anything.
#define INJECTABLE                     \
    if (padsim_fault("fail", __func__)) \
    return fail(ST_INTERNAL_ERROR, __func__, "failed (fault injected by PAD_CUDASIM_FAULT=fail)")

extern "C" {

PADSIM_EXPORT size_t cudnnGetVersion(void) { return PADSIM_CUDNN_VERSION; }

PADSIM_EXPORT const char* cudnnGetErrorString(int status) {
    for (const auto& s : kStatusNames)
        if (s.code == status) return s.name;
    return "CUDNN_UNKNOWN_STATUS";
}

#if PADSIM_CUDNN_MAJOR >= 9
// cudnnGetLastErrorString copies this thread's last error message and clears it.
PADSIM_EXPORT void cudnnGetLastErrorString(char* message, size_t max_size) {
    if (!message || max_size == 0) return;
    snprintf(message, max_size, "%s", t_last_error);
    t_last_error[0] = 0;
}
#endif

PADSIM_EXPORT int cudnnCreate(void** handle) {
    INJECTABLE;
    if (!handle) return fail(ST_NULL_POINTER, "cudnnCreate", "handle is null");
    *handle = g_handles.make();
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnDestroy(void* handle) {
    INJECTABLE;
    // Queued work keeps its own copies: destroying the handle is safe at once.
    if (!g_handles.destroy(handle)) return fail(ST_BAD_PARAM, "cudnnDestroy", "handle is null or already destroyed");
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnSetStream(void* handle, void* stream) {
    INJECTABLE;
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, "cudnnSetStream", "handle is null or destroyed");
    ((Handle*)handle)->stream = (uint64_t)(uintptr_t)stream;
    return ST_SUCCESS;
}

// ---- Descriptors ----
PADSIM_EXPORT int cudnnCreateTensorDescriptor(void** d) {
    INJECTABLE;
    if (!d) return fail(ST_NULL_POINTER, "cudnnCreateTensorDescriptor", "tensorDesc is null");
    *d = g_tensors.make();
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnSetTensor4dDescriptor(void* d, int format, int dtype, int n, int c, int h, int w) {
    INJECTABLE;
    const char* fn = "cudnnSetTensor4dDescriptor";
    if (!g_tensors.has(d)) return fail(ST_BAD_PARAM, fn, "tensorDesc is null or destroyed");
    if (format < FMT_NCHW || format > FMT_NCHW_VECT_C) return fail(ST_BAD_PARAM, fn, "format %d is not a cudnnTensorFormat_t", format);
    if (dtype < 0 || dtype > DT_LAST) return fail(ST_BAD_PARAM, fn, "dataType %d is not a cudnnDataType_t", dtype);
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(ST_BAD_PARAM, fn, "dimensions %dx%dx%dx%d must be positive", n, c, h, w);
    if ((double)n * c * h * w > 2147483647.0) return fail(ST_BAD_PARAM, fn, "%dx%dx%dx%d elements exceed 2^31-1", n, c, h, w);
    *(Tensor*)d = Tensor{true, format, dtype, n, c, h, w};
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnDestroyTensorDescriptor(void* d) {
    INJECTABLE;
    if (!d) return ST_SUCCESS;  // cuDNN accepts a null descriptor
    if (!g_tensors.destroy(d)) return fail(ST_BAD_PARAM, "cudnnDestroyTensorDescriptor", "not a live tensor descriptor");
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnCreateFilterDescriptor(void** d) {
    INJECTABLE;
    if (!d) return fail(ST_NULL_POINTER, "cudnnCreateFilterDescriptor", "filterDesc is null");
    *d = g_filters.make();
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnSetFilter4dDescriptor(void* d, int dtype, int format, int k, int c, int h, int w) {
    INJECTABLE;
    const char* fn = "cudnnSetFilter4dDescriptor";
    if (!g_filters.has(d)) return fail(ST_BAD_PARAM, fn, "filterDesc is null or destroyed");
    if (format < FMT_NCHW || format > FMT_NCHW_VECT_C) return fail(ST_BAD_PARAM, fn, "format %d is not a cudnnTensorFormat_t", format);
    if (dtype < 0 || dtype > DT_LAST) return fail(ST_BAD_PARAM, fn, "dataType %d is not a cudnnDataType_t", dtype);
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(ST_BAD_PARAM, fn, "dimensions %dx%dx%dx%d must be positive", k, c, h, w);
    if ((double)k * c * h * w > 2147483647.0) return fail(ST_BAD_PARAM, fn, "%dx%dx%dx%d elements exceed 2^31-1", k, c, h, w);
    *(Filter*)d = Filter{true, dtype, format, k, c, h, w};
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnDestroyFilterDescriptor(void* d) {
    INJECTABLE;
    if (!d) return ST_SUCCESS;
    if (!g_filters.destroy(d)) return fail(ST_BAD_PARAM, "cudnnDestroyFilterDescriptor", "not a live filter descriptor");
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnCreateConvolutionDescriptor(void** d) {
    INJECTABLE;
    if (!d) return fail(ST_NULL_POINTER, "cudnnCreateConvolutionDescriptor", "convDesc is null");
    *d = g_convs.make();
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnSetConvolution2dDescriptor(void* d, int ph, int pw, int sh, int sw, int dh, int dw, int mode,
                                                  int ctype) {
    INJECTABLE;
    const char* fn = "cudnnSetConvolution2dDescriptor";
    if (!g_convs.has(d)) return fail(ST_BAD_PARAM, fn, "convDesc is null or destroyed");
    if (ph < 0 || pw < 0) return fail(ST_BAD_PARAM, fn, "padding %dx%d is negative", ph, pw);
    if (sh <= 0 || sw <= 0) return fail(ST_BAD_PARAM, fn, "stride %dx%d must be positive", sh, sw);
    if (dh <= 0 || dw <= 0) return fail(ST_BAD_PARAM, fn, "dilation %dx%d must be positive", dh, dw);
    if (mode != MODE_CONVOLUTION && mode != MODE_CROSS_CORRELATION)
        return fail(ST_BAD_PARAM, fn, "mode %d is not a cudnnConvolutionMode_t", mode);
    if (ctype != DT_FLOAT && ctype != DT_DOUBLE && ctype != DT_HALF)
        return fail(ST_BAD_PARAM, fn, "computeType %d is not float, double or half", ctype);
    Conv* c = (Conv*)d;
    int math = c->math;  // the math type is set separately and survives
    *c = Conv{true, ph, pw, sh, sw, dh, dw, mode, ctype, math};
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnSetConvolutionMathType(void* d, int math) {
    INJECTABLE;
    const char* fn = "cudnnSetConvolutionMathType";
    if (!g_convs.has(d)) return fail(ST_BAD_PARAM, fn, "convDesc is null or destroyed");
    if (math < MATH_DEFAULT || math > MATH_FMA) return fail(ST_BAD_PARAM, fn, "mathType %d is not a cudnnMathType_t", math);
    ((Conv*)d)->math = math;
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnDestroyConvolutionDescriptor(void* d) {
    INJECTABLE;
    if (!d) return ST_SUCCESS;
    if (!g_convs.destroy(d)) return fail(ST_BAD_PARAM, "cudnnDestroyConvolutionDescriptor", "not a live convolution descriptor");
    return ST_SUCCESS;
}

PADSIM_EXPORT int cudnnGetConvolution2dForwardOutputDim(const void* conv, const void* x, const void* w, int* n, int* c,
                                                        int* h, int* wd) {
    INJECTABLE;
    const char* fn = "cudnnGetConvolution2dForwardOutputDim";
    if (!g_convs.has(conv) || !g_tensors.has(x) || !g_filters.has(w))
        return fail(ST_BAD_PARAM, fn, "a descriptor is null or destroyed");
    if (!n || !c || !h || !wd) return fail(ST_NULL_POINTER, fn, "an output pointer is null");
    auto cv = (const Conv*)conv;
    auto xt = (const Tensor*)x;
    auto wf = (const Filter*)w;
    if (!cv->set || !xt->set || !wf->set) return fail(ST_BAD_PARAM, fn, "a descriptor was never set");
    if (xt->c != wf->c) return fail(ST_BAD_PARAM, fn, "x has %d channels, the filter %d", xt->c, wf->c);
    long eh = (long)(wf->r - 1) * cv->dh + 1, ew = (long)(wf->s - 1) * cv->dw + 1;
    long P = (long)xt->h + 2L * cv->ph - eh, Q = (long)xt->w + 2L * cv->pw - ew;
    if (P < 0 || Q < 0) return fail(ST_BAD_PARAM, fn, "the dilated filter is larger than the padded input");
    *n = xt->n;
    *c = wf->k;
    *h = (int)(P / cv->sh + 1);
    *wd = (int)(Q / cv->sw + 1);
    return ST_SUCCESS;
}

// ---- Algorithm counts, searches, heuristics, workspaces ----
static int max_count(const char* fn, const void* handle, int* count, int n) {
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, fn, "handle is null or destroyed");
    if (!count) return fail(ST_NULL_POINTER, fn, "count is null");
    *count = n;
    return ST_SUCCESS;
}
PADSIM_EXPORT int cudnnGetConvolutionForwardAlgorithmMaxCount(const void* h, int* count) {
    INJECTABLE;
    return max_count("cudnnGetConvolutionForwardAlgorithmMaxCount", h, count, kAlgoCount[OP_FWD]);
}
PADSIM_EXPORT int cudnnGetConvolutionBackwardDataAlgorithmMaxCount(const void* h, int* count) {
    INJECTABLE;
    return max_count("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", h, count, kAlgoCount[OP_BWD_DATA]);
}
PADSIM_EXPORT int cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(const void* h, int* count) {
    INJECTABLE;
    return max_count("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", h, count, kAlgoCount[OP_BWD_FILTER]);
}

PADSIM_EXPORT int cudnnFindConvolutionForwardAlgorithmEx(void* handle, const void* xDesc, const void* x, const void* wDesc,
                                                         const void* w, const void* convDesc, const void* yDesc, void* y,
                                                         int req, int* ret, void* perf, void* ws, size_t wsBytes) {
    INJECTABLE;
    ConvCall c{"cudnnFindConvolutionForwardAlgorithmEx", OP_FWD, xDesc, wDesc, convDesc, yDesc, x, w, y, "x", "w", "y"};
    return find(c, handle, req, ret, perf, ws, wsBytes);
}

PADSIM_EXPORT int cudnnFindConvolutionBackwardDataAlgorithmEx(void* handle, const void* wDesc, const void* w,
                                                              const void* dyDesc, const void* dy, const void* convDesc,
                                                              const void* dxDesc, void* dx, int req, int* ret, void* perf,
                                                              void* ws, size_t wsBytes) {
    INJECTABLE;
    ConvCall c{"cudnnFindConvolutionBackwardDataAlgorithmEx", OP_BWD_DATA, dxDesc, wDesc, convDesc, dyDesc, w, dy, dx, "w",
               "dy", "dx"};
    return find(c, handle, req, ret, perf, ws, wsBytes);
}

PADSIM_EXPORT int cudnnFindConvolutionBackwardFilterAlgorithmEx(void* handle, const void* xDesc, const void* x,
                                                                const void* dyDesc, const void* dy, const void* convDesc,
                                                                const void* dwDesc, void* dw, int req, int* ret,
                                                                void* perf, void* ws, size_t wsBytes) {
    INJECTABLE;
    ConvCall c{"cudnnFindConvolutionBackwardFilterAlgorithmEx", OP_BWD_FILTER, xDesc, dwDesc, convDesc, dyDesc, x, dy, dw,
               "x", "dy", "dw"};
    return find(c, handle, req, ret, perf, ws, wsBytes);
}

PADSIM_EXPORT int cudnnGetConvolutionForwardAlgorithm_v7(void* handle, const void* xDesc, const void* wDesc,
                                                         const void* convDesc, const void* yDesc, int req, int* ret,
                                                         void* perf) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionForwardAlgorithm_v7", OP_FWD, xDesc, wDesc, convDesc, yDesc, nullptr, nullptr, nullptr,
               "x", "w", "y"};
    return heuristic(c, handle, req, ret, perf);
}

PADSIM_EXPORT int cudnnGetConvolutionBackwardDataAlgorithm_v7(void* handle, const void* wDesc, const void* dyDesc,
                                                              const void* convDesc, const void* dxDesc, int req, int* ret,
                                                              void* perf) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionBackwardDataAlgorithm_v7", OP_BWD_DATA, dxDesc, wDesc, convDesc, dyDesc, nullptr,
               nullptr, nullptr, "w", "dy", "dx"};
    return heuristic(c, handle, req, ret, perf);
}

PADSIM_EXPORT int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void* handle, const void* xDesc, const void* dyDesc,
                                                                const void* convDesc, const void* dwDesc, int req,
                                                                int* ret, void* perf) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionBackwardFilterAlgorithm_v7", OP_BWD_FILTER, xDesc, dwDesc, convDesc, dyDesc, nullptr,
               nullptr, nullptr, "x", "dy", "dw"};
    return heuristic(c, handle, req, ret, perf);
}

PADSIM_EXPORT int cudnnGetConvolutionForwardWorkspaceSize(void* handle, const void* xDesc, const void* wDesc,
                                                          const void* convDesc, const void* yDesc, int algo, size_t* size) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionForwardWorkspaceSize", OP_FWD, xDesc, wDesc, convDesc, yDesc, nullptr, nullptr, nullptr,
               "x", "w", "y"};
    return workspace(c, handle, algo, size);
}

PADSIM_EXPORT int cudnnGetConvolutionBackwardDataWorkspaceSize(void* handle, const void* wDesc, const void* dyDesc,
                                                               const void* convDesc, const void* dxDesc, int algo,
                                                               size_t* size) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionBackwardDataWorkspaceSize", OP_BWD_DATA, dxDesc, wDesc, convDesc, dyDesc, nullptr,
               nullptr, nullptr, "w", "dy", "dx"};
    return workspace(c, handle, algo, size);
}

PADSIM_EXPORT int cudnnGetConvolutionBackwardFilterWorkspaceSize(void* handle, const void* xDesc, const void* dyDesc,
                                                                 const void* convDesc, const void* dwDesc, int algo,
                                                                 size_t* size) {
    INJECTABLE;
    ConvCall c{"cudnnGetConvolutionBackwardFilterWorkspaceSize", OP_BWD_FILTER, xDesc, dwDesc, convDesc, dyDesc, nullptr,
               nullptr, nullptr, "x", "dy", "dw"};
    return workspace(c, handle, algo, size);
}

// ---- Compute ----
PADSIM_EXPORT int cudnnConvolutionForward(void* handle, const float* alpha, const void* xDesc, const void* x,
                                          const void* wDesc, const void* w, const void* convDesc, int algo, void* ws,
                                          size_t wsBytes, const float* beta, const void* yDesc, void* y) {
    INJECTABLE;
    ConvCall c{"cudnnConvolutionForward", OP_FWD, xDesc, wDesc, convDesc, yDesc, x, w, y, "x", "w", "y"};
    return execute(c, handle, alpha, beta, algo, ws, wsBytes);
}

PADSIM_EXPORT int cudnnConvolutionBackwardData(void* handle, const float* alpha, const void* wDesc, const void* w,
                                               const void* dyDesc, const void* dy, const void* convDesc, int algo, void* ws,
                                               size_t wsBytes, const float* beta, const void* dxDesc, void* dx) {
    INJECTABLE;
    ConvCall c{"cudnnConvolutionBackwardData", OP_BWD_DATA, dxDesc, wDesc, convDesc, dyDesc, w, dy, dx, "w", "dy", "dx"};
    return execute(c, handle, alpha, beta, algo, ws, wsBytes);
}

PADSIM_EXPORT int cudnnConvolutionBackwardFilter(void* handle, const float* alpha, const void* xDesc, const void* x,
                                                 const void* dyDesc, const void* dy, const void* convDesc, int algo,
                                                 void* ws, size_t wsBytes, const float* beta, const void* dwDesc,
                                                 void* dw) {
    INJECTABLE;
    ConvCall c{"cudnnConvolutionBackwardFilter", OP_BWD_FILTER, xDesc, dwDesc, convDesc, dyDesc, x, dy, dw, "x", "dy", "dw"};
    return execute(c, handle, alpha, beta, algo, ws, wsBytes);
}

PADSIM_EXPORT int cudnnConvolutionBackwardBias(void* handle, const float* alpha, const void* dyDesc, const void* dy,
                                               const float* beta, const void* dbDesc, void* db) {
    INJECTABLE;
    const char* fn = "cudnnConvolutionBackwardBias";
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, fn, "handle is null or destroyed");
    if (!g_tensors.has(dyDesc) || !g_tensors.has(dbDesc)) return fail(ST_BAD_PARAM, fn, "a descriptor is null or destroyed");
    const Tensor &D = *(const Tensor*)dyDesc, &B = *(const Tensor*)dbDesc;
    if (!D.set || !B.set) return fail(ST_BAD_PARAM, fn, "a descriptor was never set");
    if (!tensor_ok(&D) || !tensor_ok(&B)) return fail(ST_NOT_SUPPORTED, fn, "the simulation supports float NCHW tensors only");
    if (B.n != 1 || B.c != D.c || B.h != 1 || B.w != 1)
        return fail(ST_BAD_PARAM, fn, "db is %dx%dx%dx%d, want 1x%dx1x1", B.n, B.c, B.h, B.w, D.c);
    if (!alpha || !beta) return fail(ST_NULL_POINTER, fn, "alpha or beta is null");
    if (!dy || !db) return fail(ST_NULL_POINTER, fn, "dy or db is null");
    Range r[2] = {{"dy", dy, 4 * (size_t)tlen(D)}, {"db", db, 4 * (size_t)tlen(B)}};
    if (int st = check_ranges(fn, r, 2)) return st;
    auto* j = new BiasJob{false, D, B, *alpha, *beta, (const float*)dy, (float*)db};
    return enqueue(fn, ((Handle*)handle)->stream, run_bias, j, free_bias, r, 2);
}

PADSIM_EXPORT int cudnnAddTensor(void* handle, const float* alpha, const void* aDesc, const void* A, const float* beta,
                                 const void* cDesc, void* C) {
    INJECTABLE;
    const char* fn = "cudnnAddTensor";
    if (!g_handles.has(handle)) return fail(ST_BAD_PARAM, fn, "handle is null or destroyed");
    if (!g_tensors.has(aDesc) || !g_tensors.has(cDesc)) return fail(ST_BAD_PARAM, fn, "a descriptor is null or destroyed");
    const Tensor &At = *(const Tensor*)aDesc, &Ct = *(const Tensor*)cDesc;
    if (!At.set || !Ct.set) return fail(ST_BAD_PARAM, fn, "a descriptor was never set");
    if (!tensor_ok(&At) || !tensor_ok(&Ct)) return fail(ST_NOT_SUPPORTED, fn, "the simulation supports float NCHW tensors only");
    int ad[4] = {At.n, At.c, At.h, At.w}, cd[4] = {Ct.n, Ct.c, Ct.h, Ct.w};
    for (int i = 0; i < 4; i++)
        if (ad[i] != cd[i] && ad[i] != 1)
            return fail(ST_BAD_PARAM, fn, "A %dx%dx%dx%d does not broadcast to C %dx%dx%dx%d", At.n, At.c, At.h, At.w, Ct.n,
                        Ct.c, Ct.h, Ct.w);
    if (!alpha || !beta) return fail(ST_NULL_POINTER, fn, "alpha or beta is null");
    if (!A || !C) return fail(ST_NULL_POINTER, fn, "A or C is null");
    Range r[2] = {{"A", A, 4 * (size_t)tlen(At)}, {"C", C, 4 * (size_t)tlen(Ct)}};
    if (int st = check_ranges(fn, r, 2)) return st;
    auto* j = new BiasJob{true, At, Ct, *alpha, *beta, (const float*)A, (float*)C};
    return enqueue(fn, ((Handle*)handle)->stream, run_bias, j, free_bias, r, 2);
}

}  // extern "C"
