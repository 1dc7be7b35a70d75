// dnn_selftest.cpp: a standalone test of the simulated cuDNN and cuBLAS
// (cudnn.cpp, cublas.cpp), run by hand; it is not part of any library.
//
// Build it against a folder holding libcuda.so.1 (the simulated driver, or a
// stub exporting the padsim_* services), libcudnn.so.9 and libcublas.so.13:
//
//	g++ -std=c++20 -O2 -Wall internal/cudasim/csrc/dnn_selftest.cpp -o $DIR/dnn_selftest
//	    -L$DIR -l:libcudnn.so.9 -l:libcublas.so.13 -l:libcuda.so.1 -ldl -Wl,-rpath,$DIR
//	(one command)
//	$DIR/dnn_selftest          # the checks
//	$DIR/dnn_selftest bench    # GFLOP/s of the paper model's convolutions
//
// With the real simulated driver (it exports cuMemAlloc_v2) device memory
// comes from the driver; with a stub, from malloc. The fault checks need a
// driver that reads PAD_CUDASIM_FAULT (or the stub's STUB_FAULT); they set
// both and skip themselves if the fault does not fire.
#include <dlfcn.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
size_t cudnnGetVersion(void);
const char* cudnnGetErrorString(int);
void cudnnGetLastErrorString(char*, size_t) __attribute__((weak));
int cudnnCreate(void**);
int cudnnDestroy(void*);
int cudnnSetStream(void*, void*);
int cudnnCreateTensorDescriptor(void**);
int cudnnSetTensor4dDescriptor(void*, int, int, int, int, int, int);
int cudnnDestroyTensorDescriptor(void*);
int cudnnCreateFilterDescriptor(void**);
int cudnnSetFilter4dDescriptor(void*, int, int, int, int, int, int);
int cudnnDestroyFilterDescriptor(void*);
int cudnnCreateConvolutionDescriptor(void**);
int cudnnSetConvolution2dDescriptor(void*, int, int, int, int, int, int, int, int);
int cudnnSetConvolutionMathType(void*, int);
int cudnnDestroyConvolutionDescriptor(void*);
int cudnnGetConvolution2dForwardOutputDim(void*, void*, void*, int*, int*, int*, int*);
int cudnnGetConvolutionForwardAlgorithmMaxCount(void*, int*);
int cudnnFindConvolutionForwardAlgorithmEx(void*, void*, const void*, void*, const void*, void*, void*, void*, int, int*,
                                           void*, void*, size_t);
int cudnnFindConvolutionBackwardFilterAlgorithmEx(void*, void*, const void*, void*, const void*, void*, void*, void*, int,
                                                  int*, void*, void*, size_t);
int cudnnGetConvolutionForwardAlgorithm_v7(void*, void*, void*, void*, void*, int, int*, void*);
int cudnnGetConvolutionBackwardFilterAlgorithm_v7(void*, void*, void*, void*, void*, int, int*, void*);
int cudnnGetConvolutionForwardWorkspaceSize(void*, void*, void*, void*, void*, int, size_t*);
int cudnnGetConvolutionBackwardDataWorkspaceSize(void*, void*, void*, void*, void*, int, size_t*);
int cudnnGetConvolutionBackwardFilterWorkspaceSize(void*, void*, void*, void*, void*, int, size_t*);
int cudnnConvolutionForward(void*, const float*, void*, const void*, void*, const void*, void*, int, void*, size_t,
                            const float*, void*, void*);
int cudnnConvolutionBackwardData(void*, const float*, void*, const void*, void*, const void*, void*, int, void*, size_t,
                                 const float*, void*, void*);
int cudnnConvolutionBackwardFilter(void*, const float*, void*, const void*, void*, const void*, void*, int, void*, size_t,
                                   const float*, void*, void*);
int cudnnConvolutionBackwardBias(void*, const float*, void*, const void*, const float*, void*, void*);
int cudnnAddTensor(void*, const float*, void*, const void*, const float*, void*, void*);

int cublasCreate_v2(void**);
int cublasDestroy_v2(void*);
int cublasSetMathMode(void*, int);
int cublasSgemm_v2(void*, int, int, int, int, int, const float*, const float*, int, const float*, int, const float*,
                   float*, int);
int cublasSgemmStridedBatched(void*, int, int, int, int, int, const float*, const float*, int, long long, const float*, int,
                              long long, const float*, float*, int, long long, int);
}

// ---- Device memory: the driver's when there is one, else malloc -------------
struct Dev {
    int (*memAlloc)(uint64_t*, size_t) = nullptr;
    int (*htod)(uint64_t, const void*, size_t) = nullptr;
    int (*dtoh)(void*, uint64_t, size_t) = nullptr;
    int (*sync)(void) = nullptr;
    bool real = false;
    void init() {
        memAlloc = (decltype(memAlloc))dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
        if (!memAlloc) return;
        real = true;
        htod = (decltype(htod))dlsym(RTLD_DEFAULT, "cuMemcpyHtoD_v2");
        dtoh = (decltype(dtoh))dlsym(RTLD_DEFAULT, "cuMemcpyDtoH_v2");
        sync = (decltype(sync))dlsym(RTLD_DEFAULT, "cuCtxSynchronize");
        auto cuInit = (int (*)(unsigned))dlsym(RTLD_DEFAULT, "cuInit");
        auto cuDeviceGet = (int (*)(int*, int))dlsym(RTLD_DEFAULT, "cuDeviceGet");
        auto retain = (int (*)(void**, int))dlsym(RTLD_DEFAULT, "cuDevicePrimaryCtxRetain");
        auto setCurrent = (int (*)(void*))dlsym(RTLD_DEFAULT, "cuCtxSetCurrent");
        int dev = 0;
        void* ctx = nullptr;
        if (cuInit(0) || cuDeviceGet(&dev, 0) || retain(&ctx, dev) || setCurrent(ctx)) {
            fprintf(stderr, "driver initialisation failed\n");
            exit(2);
        }
    }
    void* alloc(size_t bytes) {
        if (!real) return calloc(1, bytes + 64);
        uint64_t p = 0;
        if (memAlloc(&p, bytes)) {
            fprintf(stderr, "cuMemAlloc failed\n");
            exit(2);
        }
        return (void*)p;
    }
    void put(void* d, const std::vector<float>& h) {
        if (!real) memcpy(d, h.data(), h.size() * 4);
        else htod((uint64_t)d, h.data(), h.size() * 4);
    }
    std::vector<float> get(const void* d, size_t n) {
        std::vector<float> h(n);
        if (!real) memcpy(h.data(), d, n * 4);
        else dtoh(h.data(), (uint64_t)d, n * 4);
        return h;
    }
    void wait() {
        if (real) sync();
    }
} dev;

int g_failures = 0;
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            g_failures++;                                  \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);    \
            printf(__VA_ARGS__);                           \
            printf("\n");                                  \
        }                                                  \
    } while (0)
#define OK(call)                                                                                         \
    do {                                                                                                 \
        int st_ = (call);                                                                                \
        if (st_ != 0) {                                                                                  \
            printf("FAIL %s:%d: %s = %d (%s)\n", __FILE__, __LINE__, #call, st_, cudnnGetErrorString(st_)); \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

std::mt19937_64 rng(42);
std::vector<float> rand_vec(size_t n) {
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

// ---- Convolution cases and the naive reference --------------------------------
struct Case {
    int n, c, h, w, k, r, s, ph, pw, sh, sw, dh, dw, mode;
    int P() const { return (h + 2 * ph - dh * (r - 1) - 1) / sh + 1; }
    int Q() const { return (w + 2 * pw - dw * (s - 1) - 1) / sw + 1; }
    size_t xl() const { return (size_t)n * c * h * w; }
    size_t wl() const { return (size_t)k * c * r * s; }
    size_t yl() const { return (size_t)n * k * P() * Q(); }
    std::string str() const {
        char b[200];
        snprintf(b, sizeof b, "x %dx%dx%dx%d w %dx%dx%dx%d pad %dx%d stride %dx%d dil %dx%d %s", n, c, h, w, k, c, r, s, ph,
                 pw, sh, sw, dh, dw, mode == 0 ? "CONV" : "XCORR");
        return b;
    }
    template <class F>
    void visit(F f) const {
        int P_ = P(), Q_ = Q();
        for (int in = 0; in < n; in++)
            for (int ik = 0; ik < k; ik++)
                for (int p = 0; p < P_; p++)
                    for (int q = 0; q < Q_; q++)
                        for (int ic = 0; ic < c; ic++)
                            for (int ir = 0; ir < r; ir++)
                                for (int is = 0; is < s; is++) {
                                    int hh = p * sh - ph + ir * dh, ww = q * sw - pw + is * dw;
                                    if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                                    int fr = mode == 0 ? r - 1 - ir : ir, fs = mode == 0 ? s - 1 - is : is;
                                    f(((size_t)(in * k + ik) * P_ + p) * Q_ + q, ((size_t)(in * c + ic) * h + hh) * w + ww,
                                      ((size_t)(ik * c + ic) * r + fr) * s + fs);
                                }
    }
};

struct Ref {
    std::vector<double> v, scale;
};

Ref reference(const Case& cc, int op, const std::vector<float>& a, const std::vector<float>& b) {
    Ref R;
    size_t n = op == 0 ? cc.yl() : op == 1 ? cc.xl() : cc.wl();
    R.v.assign(n, 0);
    R.scale.assign(n, 0);
    cc.visit([&](size_t yi, size_t xi, size_t wi) {
        double p;
        size_t o;
        if (op == 0) p = (double)a[xi] * b[wi], o = yi;       // a = x, b = w
        else if (op == 1) p = (double)b[yi] * a[wi], o = xi;  // a = w, b = dy
        else p = (double)b[yi] * a[xi], o = wi;               // a = x, b = dy
        R.v[o] += p;
        R.scale[o] += fabs(p);
    });
    return R;
}

// err is the largest |got - want| relative to the magnitude of the terms.
double err(const std::vector<float>& got, const Ref& R, double alpha, double beta, const std::vector<float>* old) {
    double worst = 0;
    for (size_t i = 0; i < got.size(); i++) {
        double want = alpha * R.v[i] + (old ? beta * (*old)[i] : 0);
        double scale = fabs(alpha) * R.scale[i] + (old ? fabs(beta * (*old)[i]) : 0) + 1e-30;
        double e = fabs(got[i] - want) / scale;
        if (!(e == e)) e = INFINITY;
        worst = std::max(worst, e);
    }
    return worst;
}

struct Fixture {
    Case cc;
    void *h, *xd, *yd, *wd, *cd;
    void *x, *w, *y, *ws;
    size_t wsBytes = 256 << 20;
    std::vector<float> hx, hw, hy;
    Fixture(void* handle, const Case& c, int math) : cc(c), h(handle) {
        OK(cudnnCreateTensorDescriptor(&xd));
        OK(cudnnCreateTensorDescriptor(&yd));
        OK(cudnnCreateFilterDescriptor(&wd));
        OK(cudnnCreateConvolutionDescriptor(&cd));
        OK(cudnnSetTensor4dDescriptor(xd, 0, 0, c.n, c.c, c.h, c.w));
        OK(cudnnSetFilter4dDescriptor(wd, 0, 0, c.k, c.c, c.r, c.s));
        OK(cudnnSetConvolution2dDescriptor(cd, c.ph, c.pw, c.sh, c.sw, c.dh, c.dw, c.mode, 0));
        OK(cudnnSetConvolutionMathType(cd, math));
        int dn, dc, dh, dw;
        OK(cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &dn, &dc, &dh, &dw));
        CHECK(dn == c.n && dc == c.k && dh == c.P() && dw == c.Q(), "output dims %d %d %d %d for %s", dn, dc, dh, dw,
              c.str().c_str());
        OK(cudnnSetTensor4dDescriptor(yd, 0, 0, c.n, c.k, c.P(), c.Q()));
        hx = rand_vec(c.xl());
        hw = rand_vec(c.wl());
        hy = rand_vec(c.yl());
        x = dev.alloc(4 * c.xl());
        w = dev.alloc(4 * c.wl());
        y = dev.alloc(4 * c.yl());
        ws = dev.alloc(wsBytes);
        dev.put(x, hx);
        dev.put(w, hw);
        dev.put(y, hy);
    }
    // run one op (0 fwd, 1 bwd data, 2 bwd filter) with the given algorithm;
    // the output buffer starts as `init`. Returns the status.
    int run(int op, int algo, float alpha, float beta, const std::vector<float>& init, std::vector<float>* out,
            size_t wsGiven = (size_t)-1) {
        size_t need = 0;
        int st = op == 0   ? cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &need)
                 : op == 1 ? cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, cd, xd, algo, &need)
                           : cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd, algo, &need);
        if (st) return st;
        if (wsGiven == (size_t)-1) wsGiven = need;
        void* o = op == 0 ? y : op == 1 ? x : w;
        // the output buffer: fresh copies, so the inputs stay intact
        void* ob = dev.alloc(4 * init.size());
        dev.put(ob, init);
        if (op == 0) st = cudnnConvolutionForward(h, &alpha, xd, x, wd, w, cd, algo, ws, wsGiven, &beta, yd, ob);
        else if (op == 1) st = cudnnConvolutionBackwardData(h, &alpha, wd, w, yd, y, cd, algo, ws, wsGiven, &beta, xd, ob);
        else st = cudnnConvolutionBackwardFilter(h, &alpha, xd, x, yd, y, cd, algo, ws, wsGiven, &beta, wd, ob);
        (void)o;
        dev.wait();
        if (out) *out = dev.get(ob, init.size());
        return st;
    }
    Ref ref(int op) {
        return op == 0 ? reference(cc, 0, hx, hw) : op == 1 ? reference(cc, 1, hw, hy) : reference(cc, 2, hx, hy);
    }
    size_t outLen(int op) const { return op == 0 ? cc.yl() : op == 1 ? cc.xl() : cc.wl(); }
};

const int kAlgos[3] = {8, 6, 7};
const int kNotSupported = 3000;  // cuDNN 9 numbering; set from the library's version in main
int g_notSupported = kNotSupported, g_badParam = 2000, g_allocFailed = 4003;

void test_conv(void* h) {
    std::vector<Case> cases = {
        {3, 5, 9, 9, 4, 4, 4, 1, 1, 2, 2, 1, 1, 1},   {3, 5, 9, 9, 4, 4, 4, 0, 0, 1, 1, 1, 1, 1},
        {2, 3, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1},   {2, 4, 10, 7, 3, 3, 2, 2, 1, 1, 2, 2, 1, 1},
        {2, 3, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 0},   {1, 7, 11, 6, 20, 2, 3, 0, 2, 3, 1, 1, 2, 0},
        {5, 2, 6, 6, 17, 1, 1, 0, 0, 1, 1, 1, 1, 1},  {2, 16, 4, 4, 33, 4, 4, 1, 1, 2, 2, 1, 1, 1},
    };
    std::uniform_int_distribution<int> d(1, 4);
    for (int i = 0; i < 6; i++) {  // random shapes
        Case c{d(rng), d(rng) + 1, 5 + d(rng) * 2, 4 + d(rng) * 2, d(rng) * 3, d(rng), d(rng), d(rng) - 1, d(rng) - 1,
               d(rng) % 3 + 1, d(rng) % 2 + 1, d(rng) % 2 + 1, d(rng) % 3 + 1, d(rng) % 2};
        if (c.P() >= 1 && c.Q() >= 1 && c.h + 2 * c.ph >= c.dh * (c.r - 1) + 1 && c.w + 2 * c.pw >= c.dw * (c.s - 1) + 1)
            cases.push_back(c);
    }
    const char* opname[3] = {"fwd", "bwd_data", "bwd_filter"};
    for (const Case& c : cases) {
        Fixture f(h, c, 3 /* FMA */);
        for (int op = 0; op < 3; op++) {
            Ref R = f.ref(op);
            size_t n = f.outLen(op);
            std::vector<float> old = rand_vec(n), nan(n, NAN), got;
            int ran = 0;
            for (int a = 0; a < kAlgos[op]; a++) {
                int st = f.run(op, a, 1.5f, 0.25f, old, &got);
                if (st == g_notSupported) continue;
                CHECK(st == 0, "%s algo %d: status %d (%s)", opname[op], a, st, c.str().c_str());
                if (st) continue;
                ran++;
                double e = err(got, R, 1.5, 0.25, &old);
                CHECK(e < 1e-5, "%s algo %d alpha/beta: error %.3g (%s)", opname[op], a, e, c.str().c_str());
                OK(f.run(op, a, 1.0f, 0.0f, nan, &got));  // beta 0 overwrites NaN
                e = err(got, R, 1.0, 0, nullptr);
                CHECK(e < 1e-5, "%s algo %d beta 0 over NaN: error %.3g (%s)", opname[op], a, e, c.str().c_str());
                OK(f.run(op, a, 1.0f, 1.0f, old, &got));  // beta 1 accumulates
                e = err(got, R, 1.0, 1.0, &old);
                CHECK(e < 1e-5, "%s algo %d beta 1: error %.3g (%s)", opname[op], a, e, c.str().c_str());
            }
            CHECK(ran >= 2, "%s: only %d algorithms ran (%s)", opname[op], ran, c.str().c_str());
        }
    }
    printf("conv: %zu cases x 3 directions x all algorithms checked\n", cases.size());
}

struct Perf {
    int algo, status;
    float time;
    size_t memory;
    int determinism, mathType, reserved[3];
};

void test_tf32_find_ws(void* h) {
    Case c{4, 16, 12, 12, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    for (int math : {0, 1, 3}) {
        Fixture f(h, c, math);
        Ref R = f.ref(0);
        std::vector<float> nan(c.yl(), NAN), got;
        OK(f.run(0, 1, 1, 0, nan, &got));  // IMPLICIT_PRECOMP_GEMM: tensor cores unless FMA
        double e = err(got, R, 1, 0, nullptr);
        if (math == 3) CHECK(e < 1e-6, "FMA math PRECOMP error %.3g", e);
        else CHECK(e > 1e-5 && e < 1e-2, "math %d PRECOMP (TF32) error %.3g: want TF32-sized", math, e);
        OK(f.run(0, 0, 1, 0, nan, &got));  // IMPLICIT_GEMM never uses tensor cores
        e = err(got, R, 1, 0, nullptr);
        CHECK(e < 1e-6, "math %d IMPLICIT_GEMM error %.3g", math, e);

        // Find overwrites y and reports each algorithm with the math type rules.
        std::vector<Perf> perf(8);
        int n = 0;
        dev.put(f.y, nan);
        OK(cudnnFindConvolutionForwardAlgorithmEx(h, f.xd, f.x, f.wd, f.w, f.cd, f.yd, f.y, 8, &n, perf.data(), f.ws,
                                                  f.wsBytes));
        dev.wait();
        CHECK(n == 8, "find returned %d", n);
        got = dev.get(f.y, c.yl());
        e = err(got, R, 1, 0, nullptr);
        CHECK(e < 1e-2, "find left y with error %.3g", e);
        float last = 0;
        bool seenFail = false;
        for (int i = 0; i < n; i++) {
            const Perf& p = perf[i];
            if (p.status == 0) {
                CHECK(!seenFail && p.time >= last, "find order");
                last = p.time;
                bool tc = p.algo == 1 || p.algo == 7;
                int want = math == 3 ? 3 : tc ? 1 : 0;
                CHECK(p.mathType == want, "math %d algo %d reports math %d, want %d", math, p.algo, p.mathType, want);
            } else {
                seenFail = true;
            }
            if (p.algo == 3) CHECK(p.status == g_notSupported, "DIRECT status %d", p.status);
        }
        // A small workspace: the algorithms needing more are ALLOC_FAILED.
        OK(cudnnFindConvolutionForwardAlgorithmEx(h, f.xd, f.x, f.wd, f.w, f.cd, f.yd, f.y, 8, &n, perf.data(), f.ws, 16));
        int allocFailed = 0;
        for (int i = 0; i < n; i++) allocFailed += perf[i].status == g_allocFailed;
        CHECK(allocFailed >= 2, "small workspace: %d ALLOC_FAILED", allocFailed);
        // Heuristics
        OK(cudnnGetConvolutionForwardAlgorithm_v7(h, f.xd, f.wd, f.cd, f.yd, 8, &n, perf.data()));
        CHECK(n == 8 && perf[0].status == 0, "heuristic n=%d", n);

        // Workspace too small to run: an error and nothing written.
        size_t need = 0;
        OK(cudnnGetConvolutionForwardWorkspaceSize(h, f.xd, f.wd, f.cd, f.yd, 2, &need));
        CHECK(need > 0, "GEMM workspace 0");
        std::vector<float> marker(c.yl(), 7.0f);
        int st = f.run(0, 2, 1, 0, marker, &got, need - 4);
        CHECK(st == g_badParam, "short workspace: status %d", st);
        CHECK(got == marker, "short workspace wrote y");
        float one = 1, zero = 0;
        st = cudnnConvolutionForward(h, &one, f.xd, f.x, f.wd, f.w, f.cd, 2, nullptr, need, &zero, f.yd, f.y);
        CHECK(st == g_badParam, "null workspace: status %d", st);
        if (cudnnGetLastErrorString) {
            char msg[512];
            cudnnGetLastErrorString(msg, sizeof msg);
            CHECK(strstr(msg, "cudnnConvolutionForward") != nullptr, "last error %s", msg);
        }
        if (dev.real) {  // y overruns its allocation by one element
            st = cudnnConvolutionForward(h, &one, f.xd, f.x, f.wd, f.w, f.cd, 0, f.ws, 0, &zero, f.yd, (float*)f.y + 1);
            CHECK(st == g_badParam, "y out of range: status %d", st);
            if (cudnnGetLastErrorString) {
                char msg[512];
                cudnnGetLastErrorString(msg, sizeof msg);
                CHECK(strncmp(msg, "cudnnConvolutionForward: y", 26) == 0, "range message: %s", msg);
                if (c.n == 4 && math == 0) printf("range error message: %s\n", msg);
            }
        }
        // A wrong output shape
        void* bad;
        OK(cudnnCreateTensorDescriptor(&bad));
        OK(cudnnSetTensor4dDescriptor(bad, 0, 0, c.n, c.k + 1, 3, 3));
        st = cudnnConvolutionForward(h, &one, f.xd, f.x, f.wd, f.w, f.cd, 0, f.ws, 0, &zero, bad, f.y);
        CHECK(st == g_badParam, "bad y: status %d", st);
        OK(cudnnDestroyTensorDescriptor(bad));
    }
    // descriptor validation
    void* t;
    OK(cudnnCreateTensorDescriptor(&t));
    CHECK(cudnnSetTensor4dDescriptor(t, 0, 0, -1, 2, 3, 4) == g_badParam, "negative dim");
    CHECK(cudnnSetTensor4dDescriptor(t, 7, 0, 1, 2, 3, 4) == g_badParam, "bad format");
    CHECK(cudnnSetTensor4dDescriptor(t, 0, 99, 1, 2, 3, 4) == g_badParam, "bad type");
    OK(cudnnDestroyTensorDescriptor(t));
    printf("tf32, find, heuristics, workspace and validation checked\n");
}

void test_nondeterminism(void* h) {
    Case c{8, 16, 10, 10, 16, 4, 4, 1, 1, 2, 2, 1, 1, 1};
    Fixture f(h, c, 3);
    for (int op : {1, 2})
        for (int a = 0; a < kAlgos[op]; a++) {
            size_t n = f.outLen(op);
            std::vector<float> z(n, 0), r1, r2;
            int st = f.run(op, a, 1, 0, z, &r1);
            if (st == g_notSupported) continue;
            OK(st);
            OK(f.run(op, a, 1, 0, z, &r2));
            bool nondet = (op == 1 && a == 0) || (op == 2 && (a == 0 || a == 3));
            bool same = memcmp(r1.data(), r2.data(), 4 * n) == 0;
            CHECK(same != nondet, "op %d algo %d: runs %s, want %s", op, a, same ? "identical" : "different",
                  nondet ? "different" : "identical");
            double e = err(r2, f.ref(op), 1, 0, nullptr);
            CHECK(e < 1e-5, "op %d algo %d error %.3g", op, a, e);
        }
    printf("determinism checked\n");
}

void test_bias(void* h) {
    const int n = 3, c = 5, H = 4, W = 7;
    void *yd, *bd;
    OK(cudnnCreateTensorDescriptor(&yd));
    OK(cudnnCreateTensorDescriptor(&bd));
    OK(cudnnSetTensor4dDescriptor(yd, 0, 0, n, c, H, W));
    OK(cudnnSetTensor4dDescriptor(bd, 0, 0, 1, c, 1, 1));
    auto y = rand_vec(n * c * H * W), b = rand_vec(c);
    void *yp = dev.alloc(4 * y.size()), *bp = dev.alloc(4 * c), *dbp = dev.alloc(4 * c);
    dev.put(yp, y);
    dev.put(bp, b);
    float one = 1, half = 0.5f, zero = 0;
    OK(cudnnAddTensor(h, &one, bd, bp, &half, yd, yp));
    dev.wait();
    auto got = dev.get(yp, y.size());
    for (size_t i = 0; i < y.size(); i++) {
        float want = (float)(0.5 * y[i] + b[i / (H * W) % c]);
        CHECK(got[i] == want, "AddTensor %zu: %g want %g", i, got[i], want);
        if (got[i] != want) break;
    }
    dev.put(dbp, std::vector<float>(c, NAN));
    OK(cudnnConvolutionBackwardBias(h, &one, yd, yp, &zero, bd, dbp));
    dev.wait();
    auto db = dev.get(dbp, c);
    for (int ch = 0; ch < c; ch++) {
        double s = 0;
        for (size_t i = 0; i < got.size(); i++)
            if ((int)(i / (H * W) % c) == ch) s += got[i];
        CHECK(db[ch] == (float)s, "bias grad %d: %g want %g", ch, db[ch], s);
    }
    printf("bias checked\n");
}

void test_faults(void* h) {
    Case c{2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    // A driver that reads PAD_CUDASIM_FAULT once needs it set before the
    // start: PAD_CUDASIM_FAULT=dnn_wrong=fwd,dnn_unsupported=fwd:1 dnn_selftest faults
    const bool preset = getenv("PAD_CUDASIM_FAULT") != nullptr;
    if (!preset) setenv("STUB_FAULT", "dnn_wrong=fwd", 1), setenv("PAD_CUDASIM_FAULT", "dnn_wrong=fwd", 1);
    {
        Fixture f(h, c, 3);
        std::vector<float> z(c.yl(), 0), got;
        OK(f.run(0, 0, 1, 0, z, &got));
        Ref R = f.ref(0);
        int off = 0;
        for (size_t i = 0; i < got.size(); i++) {
            double rel = fabs(got[i] - R.v[i]) / (R.scale[i] + 1e-30);
            if (rel > 1e-4) off++;
        }
        if (off == 0) printf("dnn_wrong did not fire (the driver reads the fault at start-up?): skipped\n");
        else CHECK(off == 1, "dnn_wrong: %d elements off", off);
    }
    if (!preset) setenv("STUB_FAULT", "dnn_unsupported=fwd:1", 1), setenv("PAD_CUDASIM_FAULT", "dnn_unsupported=fwd:1", 1);
    {
        Fixture f(h, c, 3);
        size_t need;
        int st = cudnnGetConvolutionForwardWorkspaceSize(h, f.xd, f.wd, f.cd, f.yd, 1, &need);
        if (st == 0) printf("dnn_unsupported did not fire: skipped\n");
        else {
            CHECK(st == g_notSupported, "dnn_unsupported: status %d", st);
            std::vector<Perf> perf(8);
            int n;
            OK(cudnnGetConvolutionForwardAlgorithm_v7(h, f.xd, f.wd, f.cd, f.yd, 8, &n, perf.data()));
            for (int i = 0; i < n; i++)
                if (perf[i].algo == 1) CHECK(perf[i].status == g_notSupported, "heuristic still lists algo 1");
        }
    }
    if (!preset) unsetenv("STUB_FAULT"), unsetenv("PAD_CUDASIM_FAULT");
    printf("faults checked\n");
}

// ---- SGEMM --------------------------------------------------------------------------
void test_sgemm() {
    void* b;
    if (cublasCreate_v2(&b)) {
        printf("FAIL cublasCreate\n");
        g_failures++;
        return;
    }
    std::uniform_int_distribution<int> d(1, 70);
    for (int mode : {0, 2, 3}) {
        cublasSetMathMode(b, mode);
        double worst = 0;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int it = 0; it < 6; it++) {
                    int m = d(rng), n = d(rng), k = d(rng);
                    int ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
                    int lda = ra + it % 3, ldb = rb + it % 2, ldc = m + it % 3;
                    auto A = rand_vec((size_t)lda * ca), B = rand_vec((size_t)ldb * cb), C = rand_vec((size_t)ldc * n);
                    float alpha = 1.5f, beta = it % 2 ? 0.0f : -0.5f;
                    if (beta == 0) std::fill(C.begin(), C.end(), NAN);
                    void *dA = dev.alloc(4 * A.size()), *dB = dev.alloc(4 * B.size()), *dC = dev.alloc(4 * C.size());
                    dev.put(dA, A);
                    dev.put(dB, B);
                    dev.put(dC, C);
                    int st = cublasSgemm_v2(b, ta, tb, m, n, k, &alpha, (float*)dA, lda, (float*)dB, ldb, &beta, (float*)dC, ldc);
                    CHECK(st == 0, "sgemm status %d", st);
                    dev.wait();
                    auto got = dev.get(dC, C.size());
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < ldc; i++) {
                            size_t idx = i + (size_t)j * ldc;
                            if (i >= m) {
                                CHECK(memcmp(&got[idx], &C[idx], 4) == 0, "padding changed");
                                continue;
                            }
                            double s = 0, sc = 0;
                            for (int l = 0; l < k; l++) {
                                double av = ta ? A[l + (size_t)i * lda] : A[i + (size_t)l * lda];
                                double bv = tb ? B[j + (size_t)l * ldb] : B[l + (size_t)j * ldb];
                                s += av * bv;
                                sc += fabs(av * bv);
                            }
                            double want = alpha * s + (beta != 0 ? beta * C[idx] : 0);
                            double scale = fabs(alpha) * sc + (beta != 0 ? fabs(beta * C[idx]) : 0);
                            double e = fabs(got[idx] - want) / (scale + 1e-30);
                            if (!(e == e)) e = INFINITY;
                            worst = std::max(worst, e);
                        }
                }
        if (mode == 3) CHECK(worst > 1e-6 && worst < 1e-2, "tf32 sgemm error %.3g", worst);
        else CHECK(worst < 1e-6, "mode %d sgemm error %.3g", mode, worst);
        printf("sgemm math %d: worst error %.3g\n", mode, worst);
    }
    cublasSetMathMode(b, 0);
    // Strided batched against single GEMMs (bitwise).
    {
        const int m = 17, n = 13, k = 9, batch = 3, sa = m * k + 5, sb = k * n + 3, sc = m * n + 1;
        auto A = rand_vec(sa * batch), B = rand_vec(sb * batch), C = rand_vec(sc * batch);
        void *dA = dev.alloc(4 * A.size()), *dB = dev.alloc(4 * B.size()), *dC = dev.alloc(4 * C.size()),
             *dC1 = dev.alloc(4 * C.size());
        dev.put(dA, A);
        dev.put(dB, B);
        dev.put(dC, C);
        dev.put(dC1, C);
        float alpha = 0.75f, beta = 0.5f;
        CHECK(cublasSgemmStridedBatched(b, 0, 1, m, n, k, &alpha, (float*)dA, m, sa, (float*)dB, n, sb, &beta, (float*)dC, m,
                                        sc, batch) == 0,
              "strided");
        for (int i = 0; i < batch; i++)
            cublasSgemm_v2(b, 0, 1, m, n, k, &alpha, (float*)dA + i * sa, m, (float*)dB + i * sb, n, &beta,
                           (float*)dC1 + i * sc, m);
        dev.wait();
        CHECK(dev.get(dC, C.size()) == dev.get(dC1, C.size()), "strided batched differs from single GEMMs");
    }
    float one = 1;
    void* p = dev.alloc(4 * 64);
    CHECK(cublasSgemm_v2(b, 0, 0, 8, 8, 8, &one, (float*)p, 4, (float*)p, 8, &one, (float*)p, 8) == 7, "lda < m");
    CHECK(cublasSgemm_v2(b, 0, 0, -1, 8, 8, &one, (float*)p, 8, (float*)p, 8, &one, (float*)p, 8) == 7, "m < 0");
    CHECK(cublasSgemm_v2(b, 5, 0, 8, 8, 8, &one, (float*)p, 8, (float*)p, 8, &one, (float*)p, 8) == 7, "bad op");
    cublasDestroy_v2(b);
    CHECK(cublasSgemm_v2(b, 0, 0, 1, 1, 1, &one, (float*)p, 1, (float*)p, 1, &one, (float*)p, 1) == 1, "destroyed handle");
    printf("sgemm checked\n");
}

// ---- Benchmark: the paper model's convolutions ----------------------------------------
double cpu_seconds() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

void bench(void* h) {
    struct B {
        Case c;
        const char* what;
    } cases[] = {
        {{64, 3, 32, 32, 64, 4, 4, 1, 1, 2, 2, 1, 1, 1}, "64x3x32x32 -> 64x64x16x16"},
        {{64, 64, 16, 16, 128, 4, 4, 1, 1, 2, 2, 1, 1, 1}, "64x64x16x16 -> 64x128x8x8"},
        {{64, 128, 8, 8, 256, 4, 4, 1, 1, 2, 2, 1, 1, 1}, "64x128x8x8 -> 64x256x4x4"},
        {{64, 256, 4, 4, 512, 4, 4, 1, 1, 2, 2, 1, 1, 1}, "64x256x4x4 -> 64x512x2x2"},
        {{64, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1}, "64x64x16x16 3x3 -> 64x64x16x16"},
    };
    const char* opname[3] = {"fwd", "bwd_data", "bwd_filter"};
    for (auto& bc : cases) {
        Fixture f(h, bc.c, 3);
        double flops = 2.0 * bc.c.n * bc.c.k * bc.c.c * bc.c.r * bc.c.s * bc.c.P() * bc.c.Q();
        printf("%-32s %5.2f GFLOP:", bc.what, flops / 1e9);
        for (int op = 0; op < 3; op++) {
            int algo = op == 2 ? 1 : 0;
            size_t need = 0;
            if (op == 0) OK(cudnnGetConvolutionForwardWorkspaceSize(h, f.xd, f.wd, f.cd, f.yd, algo, &need));
            if (op == 1) OK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, f.wd, f.yd, f.cd, f.xd, algo, &need));
            if (op == 2) OK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, f.xd, f.yd, f.cd, f.wd, algo, &need));
            void* ob = dev.alloc(4 * f.outLen(op));
            float one = 1, zero = 0;
            auto once = [&] {
                if (op == 0) OK(cudnnConvolutionForward(h, &one, f.xd, f.x, f.wd, f.w, f.cd, algo, f.ws, need, &zero, f.yd, ob));
                if (op == 1) OK(cudnnConvolutionBackwardData(h, &one, f.wd, f.w, f.yd, f.y, f.cd, algo, f.ws, need, &zero, f.xd, ob));
                if (op == 2) OK(cudnnConvolutionBackwardFilter(h, &one, f.xd, f.x, f.yd, f.y, f.cd, algo, f.ws, need, &zero, f.wd, ob));
                dev.wait();
            };
            once();  // warm up
            // Wall time and CPU time of all threads: the machine may be shared,
            // so flops per CPU second is the per-core rate.
            int reps = 0;
            auto t0 = std::chrono::steady_clock::now();
            double c0 = cpu_seconds(), sec = 0;
            while (sec < 0.5 || reps < 2) {
                once();
                reps++;
                sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            double cpu = cpu_seconds() - c0;
            printf("  %s %.1f ms %.1f GF/s/core", opname[op], 1e3 * sec / reps, flops * reps / cpu / 1e9);
        }
        printf("\n");
    }
}

int main(int argc, char** argv) {
    dev.init();
    size_t v = cudnnGetVersion();
    if (v < 10000) g_notSupported = 9, g_badParam = 3, g_allocFailed = 2;  // cuDNN 8 numbering
    printf("cuDNN %zu, %s device memory\n", v, dev.real ? "driver" : "stub (malloc)");
    void* h;
    OK(cudnnCreate(&h));
    OK(cudnnSetStream(h, nullptr));
    if (argc > 1 && !strcmp(argv[1], "faults")) {
        test_faults(h);
        printf(g_failures ? "FAILED: %d\n" : "PASS\n", g_failures);
        return g_failures ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        bench(h);
        return 0;
    }
    test_conv(h);
    test_tf32_find_ws(h);
    test_nondeterminism(h);
    test_bias(h);
    test_sgemm();
    test_faults(h);  // last: dnn_unsupported sticks for the process
    OK(cudnnDestroy(h));
    CHECK(cudnnSetStream(h, nullptr) != 0, "destroyed handle accepted");
    printf(g_failures ? "FAILED: %d\n" : "PASS\n", g_failures);
    return g_failures ? 1 : 0;
}
