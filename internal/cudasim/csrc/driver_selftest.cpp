// driver_selftest.cpp: a hand-run test of the simulated driver (driver.cpp).
// It dlopens libcuda.so.1 and calls it through function pointers, as pad
// does. Kernels come from a tiny module written and compiled here (no NVRTC
// needed); library ops are host functions queued with padsim_enqueue.
//
//	g++ -std=c++20 -O1 -g -pthread internal/cudasim/csrc/driver_selftest.cpp -o /tmp/driver_selftest -ldl
//	/tmp/driver_selftest /tmp/simdrv/libcuda.so.1
//
// With only the library argument it runs every scenario, each in a child
// process with its own environment (PAD_CUDASIM_SCHEDULE, _FAULT).

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "padsim.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void* H;  // every opaque handle

#define FNS(X)                                                                                        \
    X(int, cuInit, (unsigned))                                                                        \
    X(int, cuDriverGetVersion, (int*))                                                                \
    X(int, cuGetErrorName, (int, const char**))                                                       \
    X(int, cuGetErrorString, (int, const char**))                                                     \
    X(int, cuDeviceGetCount, (int*))                                                                  \
    X(int, cuDeviceGet, (int*, int))                                                                  \
    X(int, cuDeviceGetName, (char*, int, int))                                                        \
    X(int, cuDeviceGetAttribute, (int*, int, int))                                                    \
    X(int, cuDeviceTotalMem_v2, (size_t*, int))                                                       \
    X(int, cuDevicePrimaryCtxRetain, (H*, int))                                                       \
    X(int, cuDevicePrimaryCtxRelease_v2, (int))                                                       \
    X(int, cuCtxSetCurrent, (H))                                                                      \
    X(int, cuCtxSynchronize, (void))                                                                  \
    X(int, cuMemAlloc_v2, (CUdeviceptr*, size_t))                                                     \
    X(int, cuMemFree_v2, (CUdeviceptr))                                                               \
    X(int, cuMemGetInfo_v2, (size_t*, size_t*))                                                      \
    X(int, cuMemHostAlloc, (void**, size_t, unsigned))                                                \
    X(int, cuMemFreeHost, (void*))                                                                    \
    X(int, cuMemcpyHtoD_v2, (CUdeviceptr, const void*, size_t))                                       \
    X(int, cuMemcpyDtoH_v2, (void*, CUdeviceptr, size_t))                                             \
    X(int, cuMemcpyDtoD_v2, (CUdeviceptr, CUdeviceptr, size_t))                                       \
    X(int, cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void*, size_t, H))                               \
    X(int, cuMemcpyDtoHAsync_v2, (void*, CUdeviceptr, size_t, H))                                     \
    X(int, cuMemcpyDtoDAsync_v2, (CUdeviceptr, CUdeviceptr, size_t, H))                               \
    X(int, cuMemsetD32_v2, (CUdeviceptr, unsigned, size_t))                                           \
    X(int, cuMemsetD32Async, (CUdeviceptr, unsigned, size_t, H))                                      \
    X(int, cuStreamCreate, (H*, unsigned))                                                            \
    X(int, cuStreamDestroy_v2, (H))                                                                   \
    X(int, cuStreamSynchronize, (H))                                                                  \
    X(int, cuStreamWaitEvent, (H, H, unsigned))                                                       \
    X(int, cuStreamQuery, (H))                                                                        \
    X(int, cuEventCreate, (H*, unsigned))                                                             \
    X(int, cuEventRecord, (H, H))                                                                     \
    X(int, cuEventSynchronize, (H))                                                                   \
    X(int, cuEventElapsedTime_v2, (float*, H, H))                                                     \
    X(int, cuEventElapsedTime, (float*, H, H))                                                        \
    X(int, cuEventDestroy_v2, (H))                                                                    \
    X(int, cuModuleLoadData, (H*, const void*))                                                       \
    X(int, cuModuleGetFunction, (H*, H, const char*))                                                 \
    X(int, cuModuleUnload, (H))                                                                       \
    X(int, cuLaunchKernel, (H, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, H, void**, void**)) \
    X(int, cuFuncSetAttribute, (H, int, int))                                                         \
    X(int, cuFuncGetAttribute, (int*, int, H))                                                        \
    X(int, cuStreamBeginCapture_v2, (H, int))                                                         \
    X(int, cuStreamEndCapture, (H, H*))                                                               \
    X(int, cuStreamIsCapturing, (H, int*))                                                            \
    X(int, cuGraphInstantiateWithFlags, (H*, H, unsigned long long))                                  \
    X(int, cuGraphLaunch, (H, H))                                                                     \
    X(int, cuGraphExecDestroy, (H))                                                                   \
    X(int, cuGraphDestroy, (H))                                                                       \
    X(int, padsim_check_range, (uint64_t, uint64_t, const char*, char*, size_t))                      \
    X(int, padsim_enqueue, (uint64_t, int, const char*, padsim_op_fn, void*, void (*)(void*), const uint64_t*, int)) \
    X(int, padsim_fault, (const char*, const char*))                                                  \
    X(void, padsim_count, (const char*, uint64_t))                                                    \
    X(int, padsim_counter_count, (void))                                                              \
    X(const char*, padsim_counter_name, (int))                                                        \
    X(uint64_t, padsim_counter_value, (int))                                                          \
    X(void, padsim_counters_reset, (void))                                                            \
    X(const char*, padsim_last_message, (void))

// The pointers live in namespace sim, where they hide padsim.h's declarations.
namespace sim {
#define DECL(ret, name, args) static ret(*name) args;
FNS(DECL)

static int failures = 0;
static const char* scenario = "";
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            printf("FAIL [%s] %s:%d: %s: ", scenario, __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                           \
            printf("  (last message: %s)\n", padsim_last_message());       \
        }                                                                  \
    } while (0)
#define EQ(call, want)                                                     \
    do {                                                                   \
        int got_ = (call);                                                 \
        CHECK(got_ == (want), "%s = %d, want %d", #call, got_, (int)(want)); \
    } while (0)
#define OK(call) EQ(call, 0)

static bool contains(const char* s, const char* sub) { return s && strstr(s, sub); }

static uint64_t counter(const char* name) {
    for (int i = 0; i < padsim_counter_count(); i++)
        if (!strcmp(padsim_counter_name(i), name)) return padsim_counter_value(i);
    return ~0ull;
}

// ---- The test module ---------------------------------------------------------------

static const char* kModuleSource = R"(
#include "padsim.h"
#include <stdio.h>
static int fill(const uint32_t* grid, const uint32_t* block, uint32_t dyn, void* const* args, uint32_t seed,
                int engine, char* err, size_t errlen) {
    float* p = *(float* const*)args[0];
    float v = *(const float*)args[1];
    int n = *(const int*)args[2];
    for (int i = 0; i < n; i++) p[i] = v;
    return 0;
}
static int add(const uint32_t* grid, const uint32_t* block, uint32_t dyn, void* const* args, uint32_t seed,
               int engine, char* err, size_t errlen) {
    float* p = *(float* const*)args[0];
    float v = *(const float*)args[1];
    int n = *(const int*)args[2];
    for (int i = 0; i < n; i++) p[i] += v;
    return 0;
}
static int logid(const uint32_t* grid, const uint32_t* block, uint32_t dyn, void* const* args, uint32_t seed,
                 int engine, char* err, size_t errlen) {
    int* log = *(int* const*)args[0];
    log[++log[0]] = *(const int*)args[1];
    return 0;
}
static int broken(const uint32_t* grid, const uint32_t* block, uint32_t dyn, void* const* args, uint32_t seed,
                  int engine, char* err, size_t errlen) {
    snprintf(err, errlen, "divergent __syncthreads in block 0");
    return 1;
}
static const padsim_param fp[] = {{8, 8, 1, 4}, {4, 4, 0, 0}, {4, 4, 0, 0}};
static const padsim_param lp[] = {{8, 8, 1, 4}, {4, 4, 0, 0}};
static const padsim_kernel ks[] = {
    {"fill", 3, fp, 0, fill}, {"add", 3, fp, 0, add}, {"logid", 2, lp, 0, logid}, {"broken", 0, 0, 4096, broken}};
static const padsim_module mod = {PADSIM_MODULE_ABI, 4, ks};
extern "C" __attribute__((visibility("default"))) const padsim_module* padsim_module_v1(void) { return &mod; }
)";

static std::string g_srcdir;

// build_image compiles the module and wraps it as a padsim image.
static std::vector<uint8_t> build_image(const char* arch) {
    std::string dir = "/tmp/padsim_selftest_" + std::to_string(getpid());
    std::string cmd = "mkdir -p " + dir;
    if (system(cmd.c_str())) return {};
    FILE* f = fopen((dir + "/m.cpp").c_str(), "w");
    fputs(kModuleSource, f);
    fclose(f);
    cmd = "g++ -std=c++17 -O1 -fPIC -shared -fvisibility=hidden -I" + g_srcdir + " " + dir + "/m.cpp -o " + dir + "/m.so";
    if (system(cmd.c_str())) return {};
    f = fopen((dir + "/m.so").c_str(), "rb");
    std::vector<uint8_t> so;
    for (int c; (c = fgetc(f)) != EOF;) so.push_back((uint8_t)c);
    fclose(f);
    cmd = "rm -rf " + dir;
    if (system(cmd.c_str())) {}
    std::string header = std::string("arch=") + arch + "\nfmad=0\nprogram=selftest.cu\nkernels=fill,add,logid,broken\n";
    std::vector<uint8_t> img(PADSIM_IMAGE_MAGIC, PADSIM_IMAGE_MAGIC + 16);
    uint32_t h = (uint32_t)header.size();
    img.insert(img.end(), (uint8_t*)&h, (uint8_t*)&h + 4);
    img.insert(img.end(), header.begin(), header.end());
    uint64_t s = so.size();
    img.insert(img.end(), (uint8_t*)&s, (uint8_t*)&s + 8);
    img.insert(img.end(), so.begin(), so.end());
    return img;
}

static std::string to_ptx(const std::vector<uint8_t>& img) {
    std::string t = PADSIM_PTX_MAGIC;
    t += ".visible .entry fill(.param .u64 p, .param .f32 v, .param .u32 n)\n// image ";
    static const char* hx = "0123456789abcdef";
    for (uint8_t b : img) t += hx[b >> 4], t += hx[b & 15];
    return t + "\n";
}

static H g_mod, k_fill, k_add, k_log, k_broken;

static void load_module() {
    std::vector<uint8_t> img = build_image("sm_90");
    CHECK(!img.empty(), "could not build the test module\n");
    OK(cuModuleLoadData(&g_mod, img.data()));
    OK(cuModuleGetFunction(&k_fill, g_mod, "fill"));
    OK(cuModuleGetFunction(&k_add, g_mod, "add"));
    OK(cuModuleGetFunction(&k_log, g_mod, "logid"));
    OK(cuModuleGetFunction(&k_broken, g_mod, "broken"));
}

static int launch3(H k, CUdeviceptr p, float v, int n, H s) {
    void* args[] = {&p, &v, &n};
    return cuLaunchKernel(k, 1, 1, 1, 32, 1, 1, 0, s, args, nullptr);
}

// ---- Host ops queued like cuDNN/cuBLAS ---------------------------------------------

struct FillOp {
    uint32_t* p;
    size_t n;
    uint32_t v;
};
static int fill_op(void* a, char*, size_t) {
    FillOp* f = (FillOp*)a;
    for (size_t i = 0; i < f->n; i++) f->p[i] = f->v;
    return 0;
}
static int freed_ops = 0;
static void free_op(void* a) {
    freed_ops++;
    delete (FillOp*)a;
}
static int enqueue_fill(H s, CUdeviceptr p, size_t n, uint32_t v) {
    uint64_t r[2] = {p, n * 4};
    return padsim_enqueue((uint64_t)s, PADSIM_OP_BLAS, "test fill", fill_op, new FillOp{(uint32_t*)p, n, v}, free_op, r, 1);
}
static int bad_op(void*, char* msg, size_t len) {
    snprintf(msg, len, "cublasSgemm: simulated failure");
    return 1;
}

static H ctx;
static void setup() {
    OK(cuInit(0));
    OK(cuDevicePrimaryCtxRetain(&ctx, 0));
    OK(cuCtxSetCurrent(ctx));
}
static H stream(unsigned flags) {
    H s = nullptr;
    OK(cuStreamCreate(&s, flags));
    return s;
}
static CUdeviceptr dalloc(size_t n) {
    CUdeviceptr p = 0;
    OK(cuMemAlloc_v2(&p, n));
    return p;
}

// ---- Scenarios -------------------------------------------------------------------------

static void t_init_device() {
    EQ(cuDeviceGetCount(nullptr), 3);  // before cuInit
    int n = 0;
    EQ(cuDeviceGetCount(&n), 3);
    EQ(cuInit(1), 1);
    OK(cuInit(0));
    OK(cuDeviceGetCount(&n));
    CHECK(n == 1, "count %d\n", n);
    int d = -1;
    EQ(cuDeviceGet(&d, 1), 101);
    OK(cuDeviceGet(&d, 0));
    int v = 0;
    struct {
        int a, want;
    } attrs[] = {{75, 9}, {76, 0}, {16, 132}, {10, 32}, {1, 1024}, {8, 49152}, {97, 232448}, {41, 1}, {5, 2147483647}, {4, 64}};
    for (auto& a : attrs) {
        OK(cuDeviceGetAttribute(&v, a.a, 0));
        CHECK(v == a.want, "attribute %d = %d, want %d\n", a.a, v, a.want);
    }
    size_t tot = 0;
    OK(cuDeviceTotalMem_v2(&tot, 0));
    CHECK(tot == 80ull << 30, "total %zu\n", tot);
    char name[256];
    OK(cuDeviceGetName(name, sizeof name, 0));
    CHECK(!strcmp(name, PADSIM_DEVICE_NAME), "name %s\n", name);
    const char* s = nullptr;
    OK(cuGetErrorString(2, &s));
    CHECK(s && !strcmp(s, "out of memory"), "%s\n", s);
    OK(cuGetErrorName(906, &s));
    CHECK(s && !strcmp(s, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT"), "%s\n", s);
    CUdeviceptr p;
    EQ(cuMemAlloc_v2(&p, 16), 201);  // no current context
    OK(cuDevicePrimaryCtxRetain(&ctx, 0));
    EQ(cuMemAlloc_v2(&p, 16), 201);  // retained but not current
    OK(cuCtxSetCurrent(ctx));
    OK(cuMemAlloc_v2(&p, 16));
    std::thread([&] { EQ(cuMemFree_v2(p), 201); }).join();  // current is per thread
    OK(cuMemFree_v2(p));
    OK(cuDevicePrimaryCtxRelease_v2(0));
    EQ(cuDevicePrimaryCtxRelease_v2(0), 201);
    EQ(cuMemAlloc_v2(&p, 16), 201);  // the context is gone
}

static void t_memory() {
    setup();
    size_t f0, t0, f1, t1;
    OK(cuMemGetInfo_v2(&f0, &t0));
    CUdeviceptr a = dalloc(1000);
    OK(cuMemGetInfo_v2(&f1, &t1));
    CHECK(t0 == t1 && f0 - f1 == 1024, "free %zu -> %zu\n", f0, f1);
    uint32_t buf[251];
    OK(cuMemcpyDtoH_v2(buf, a, 1000));
    CHECK(buf[0] == 0xFFFFFFFF && buf[249] == 0xFFFFFFFF, "new memory is %#x, want NaN pattern\n", buf[0]);
    // Out of bounds.
    EQ(cuMemcpyHtoD_v2(a, buf, 1004), 1);
    CHECK(contains(padsim_last_message(), "past its end"), "\n");
    EQ(cuMemcpyDtoH_v2(buf, a + 4, 1000), 1);
    EQ(cuMemsetD32_v2(a + 2, 0, 1), 1);  // misaligned
    OK(cuMemcpyHtoD_v2(a, buf, 0));     // empty copies are fine
    char msg[512];
    EQ(padsim_check_range(a + 500, 501, "cudnnConvolutionForward: y", msg, sizeof msg), 1);
    CHECK(contains(msg, "cudnnConvolutionForward: y"), "%s\n", msg);
    OK(padsim_check_range(a + 1000, 0, "end", msg, sizeof msg));
    OK(padsim_check_range(0, 0, "null workspace", msg, sizeof msg));
    // Frees.
    EQ(cuMemFree_v2(a + 8), 1);
    CHECK(contains(padsim_last_message(), "interior"), "\n");
    OK(cuMemFree_v2(a));
    EQ(cuMemFree_v2(a), 1);
    CHECK(contains(padsim_last_message(), "double free"), "\n");
    EQ(cuMemcpyDtoH_v2(buf, a, 4), 1);
    CHECK(contains(padsim_last_message(), "use after free"), "\n");
    // 1 PiB.
    CUdeviceptr big;
    EQ(cuMemAlloc_v2(&big, 1ull << 50), 2);
    EQ(cuMemAlloc_v2(&big, 0), 1);
    // Pinned.
    void* h;
    OK(cuMemHostAlloc(&h, 4096, 1));
    EQ(cuMemHostAlloc(&h, 4096, 8), 1);
    EQ(cuMemFreeHost((char*)h + 1), 1);
    EQ(cuMemFreeHost(buf), 1);
    OK(cuMemFreeHost(h));
    EQ(cuMemFreeHost(h), 1);
    // None of these errors is sticky.
    CUdeviceptr b = dalloc(64);
    OK(cuMemsetD32_v2(b, 7, 16));
    OK(cuMemcpyDtoH_v2(buf, b, 64));
    CHECK(buf[15] == 7, "%u\n", buf[15]);
    OK(cuMemFree_v2(b));
    // Leaks are reported when the context goes.
    CUdeviceptr leak = dalloc(300);
    (void)leak;
    H s = stream(0);
    (void)s;
    OK(cuDevicePrimaryCtxRelease_v2(0));
    CHECK(contains(padsim_last_message(), "context destroyed with 1 leaked allocations (300 bytes)") &&
              contains(padsim_last_message(), "1 stream"),
          "\n");
}

// A missing event wait gives stale data; with the wait it is right.
static void t_lazy_streams() {
    setup();
    const size_t n = 1024;
    H s1 = stream(1), s2 = stream(1);
    H ev;
    OK(cuEventCreate(&ev, 2));
    CUdeviceptr a = dalloc(4 * n);
    void* hp;
    OK(cuMemHostAlloc(&hp, 4 * n, 0));
    uint32_t* host = (uint32_t*)hp;
    // Without a wait s2 copies before s1's op ran.
    OK(enqueue_fill(s1, a, n, 5));
    OK(cuMemcpyDtoHAsync_v2(host, a, 4 * n, s2));
    EQ(cuStreamQuery(s2), 600);
    CHECK(host[0] == 0xFFFFFFFF, "pinned DtoH destination changed before synchronising: %u\n", host[0]);
    OK(cuStreamSynchronize(s2));
    OK(cuStreamQuery(s2));
    CHECK(host[0] == 0xFFFFFFFF, "without the event wait the copy saw %u (should be stale)\n", host[0]);
    OK(cuStreamSynchronize(s1));
    CHECK(freed_ops == 1, "free_fn ran %d times\n", freed_ops);
    // With the wait it is right.
    OK(enqueue_fill(s1, a, n, 6));
    OK(cuEventRecord(ev, s1));
    OK(cuStreamWaitEvent(s2, ev, 0));
    OK(cuMemcpyDtoHAsync_v2(host, a, 4 * n, s2));
    CHECK(host[0] != 6, "ran before forced\n");
    OK(cuStreamSynchronize(s2));
    CHECK(host[0] == 6 && host[n - 1] == 6, "with the wait: %u\n", host[0]);
    EQ(cuStreamQuery(s1), 0);  // its prefix ran to satisfy the wait
    // Pinned HtoD source overwritten before the copy ran: the copy sees the new data.
    for (size_t i = 0; i < n; i++) host[i] = 1;
    OK(cuMemcpyHtoDAsync_v2(a, host, 4 * n, s1));
    for (size_t i = 0; i < n; i++) host[i] = 2;
    uint32_t back[1024];
    OK(cuStreamSynchronize(s1));
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 2, "pinned HtoD read %u at run time, want 2\n", back[0]);
    // Pageable HtoD is staged at the call.
    std::vector<uint32_t> pg(n, 3);
    uint64_t pa0 = counter("pageable_async_copies");
    OK(cuMemcpyHtoDAsync_v2(a, pg.data(), 4 * n, s1));
    pg.assign(n, 4);
    OK(cuStreamSynchronize(s1));
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 3, "pageable HtoD: %u, want the value at the call (3)\n", back[0]);
    // Pageable DtoH is synchronous.
    OK(enqueue_fill(s1, a, n, 9));
    OK(cuMemcpyDtoHAsync_v2(pg.data(), a, 4 * n, s1));
    CHECK(pg[0] == 9, "pageable DtoH async: %u\n", pg[0]);
    CHECK(counter("pageable_async_copies") == pa0 + 2, "\n");
    // Legacy stream: a blocking copy waits for blocking streams, not for non-blocking ones.
    H sb = stream(0);
    OK(enqueue_fill(sb, a, n, 11));
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 11, "legacy copy did not wait for the blocking stream: %u\n", back[0]);
    OK(enqueue_fill(s1, a, n, 12));
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 11, "legacy copy waited for a non-blocking stream: %u\n", back[0]);
    OK(cuStreamSynchronize(s1));
    // Stream destroy runs the remaining work.
    OK(enqueue_fill(s2, a, n, 13));
    OK(cuStreamDestroy_v2(s2));
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 13, "work of a destroyed stream: %u\n", back[0]);
    // cuMemFree synchronises.
    CUdeviceptr b = dalloc(4 * n);
    OK(enqueue_fill(s1, b, n, 1));
    OK(cuMemFree_v2(b));
    EQ(cuStreamQuery(s1), 0);
    // A host op's error is sticky.
    uint64_t r[2] = {a, 4};
    OK(padsim_enqueue((uint64_t)s1, PADSIM_OP_BLAS, "cublasSgemm_v2", bad_op, nullptr, nullptr, r, 1));
    EQ(cuStreamSynchronize(s1), 1);
    CHECK(contains(padsim_last_message(), "simulated failure"), "\n");
    EQ(cuMemAlloc_v2(&b, 4), 1);
    EQ(cuCtxSynchronize(), 1);
}

static void t_kernels() {
    setup();
    load_module();
    H bad;
    EQ(cuModuleLoadData(&bad, "this is not a module"), 200);
    H fn;
    EQ(cuModuleGetFunction(&fn, g_mod, "nope"), 500);
    std::vector<uint8_t> img = build_image("sm_80");
    EQ(cuModuleLoadData(&bad, img.data()), 209);
    img = build_image("sm_90");
    std::string ptx = to_ptx(img);
    H m2, f2;
    OK(cuModuleLoadData(&m2, ptx.data()));
    OK(cuModuleGetFunction(&f2, m2, "fill"));
    int v = 0;
    OK(cuFuncGetAttribute(&v, 1, k_broken));
    CHECK(v == 4096, "static smem %d\n", v);
    OK(cuFuncGetAttribute(&v, 8, k_fill));
    CHECK(v == 49152, "max dyn %d\n", v);
    const int n = 256;
    CUdeviceptr a = dalloc(4 * n);
    float x = 2.5f;
    int nn = n;
    void* args[] = {&a, &x, &nn};
    // Launch configuration errors are not sticky.
    EQ(cuLaunchKernel(k_fill, 0, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr), 1);
    EQ(cuLaunchKernel(k_fill, 1, 1, 1, 4096, 1, 1, 0, nullptr, args, nullptr), 1);
    EQ(cuLaunchKernel(k_fill, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), 1);
    EQ(cuLaunchKernel(k_fill, 1, 1, 1, 32, 1, 1, 0, nullptr, args, args), 801);
    EQ(cuLaunchKernel(k_fill, 1, 1, 1, 32, 1, 1, 64 * 1024, nullptr, args, nullptr), 1);
    OK(cuFuncSetAttribute(k_fill, 8, 64 * 1024));
    EQ(cuFuncSetAttribute(k_fill, 8, 300 * 1024), 1);
    OK(cuLaunchKernel(f2, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
    OK(cuLaunchKernel(k_fill, 1, 1, 1, 32, 1, 1, 64 * 1024, nullptr, args, nullptr));
    x = 99;  // the parameters were copied at the launch
    float back[256];
    OK(cuMemcpyDtoH_v2(back, a, sizeof back));
    CHECK(back[0] == 2.5f && back[n - 1] == 2.5f, "%g\n", back[0]);
    CHECK(counter("kernel_launches") == 2, "%llu\n", (unsigned long long)counter("kernel_launches"));
    // A kernel writing past the end: sticky ILLEGAL_ADDRESS naming it.
    OK(launch3(k_fill, a, 1, n + 3, nullptr));
    EQ(cuCtxSynchronize(), 700);
    CHECK(contains(padsim_last_message(), "kernel fill wrote 12 bytes past the end of the allocation") &&
              contains(padsim_last_message(), "argument 0"),
          "\n");
    EQ(cuMemAlloc_v2(&a, 4), 700);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    // A fresh context: pointer argument checks at launch.
    setup();
    load_module();
    a = dalloc(4 * n);
    CUdeviceptr b = dalloc(64);
    OK(cuMemFree_v2(b));
    EQ(launch3(k_fill, b, 1, 1, nullptr), 700);
    CHECK(contains(padsim_last_message(), "kernel fill: argument 0") && contains(padsim_last_message(), "use after free"), "\n");
    OK(cuDevicePrimaryCtxRelease_v2(0));
    setup();
    load_module();
    a = dalloc(4 * n);
    EQ(launch3(k_fill, a + 2, 1, 1, nullptr), 716);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    setup();
    load_module();
    OK(cuLaunchKernel(k_broken, 1, 1, 1, 32, 1, 1, 0, nullptr, args, nullptr));
    EQ(cuCtxSynchronize(), 719);
    CHECK(contains(padsim_last_message(), "divergent"), "\n");
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

static void t_capture() {
    setup();
    load_module();
    const int n = 1024;
    H s = stream(1), s2 = stream(1), sb = stream(0);
    H e1, e2;
    OK(cuEventCreate(&e1, 2));
    OK(cuEventCreate(&e2, 2));
    CUdeviceptr a = dalloc(4 * n);
    int st = -1;
    // End without begin; begin on the legacy stream; twice.
    H gr = (H)1;
    EQ(cuStreamEndCapture(s, &gr), 401);
    CHECK(gr == nullptr, "\n");
    EQ(cuStreamBeginCapture_v2(nullptr, 0), 900);
    // Synchronising a capturing stream fails and invalidates.
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == 1, "%d\n", st);
    EQ(cuStreamBeginCapture_v2(s, 0), 401);
    OK(cuStreamBeginCapture_v2(s2, 2) == 0 ? cuStreamEndCapture(s2, &gr) : 1);  // an empty relaxed capture
    OK(cuGraphDestroy(gr));
    OK(launch3(k_fill, a, 1, n, s));
    EQ(cuStreamSynchronize(s), 900);
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == 2, "%d\n", st);
    EQ(launch3(k_fill, a, 1, n, s), 901);
    EQ(cuStreamEndCapture(s, &gr), 901);
    CHECK(gr == nullptr, "\n");
    OK(cuStreamIsCapturing(s, &st));
    CHECK(st == 0, "%d\n", st);
    // Query, ctx sync, alloc, blocking copy and legacy use during capture.
    float hbuf[4];
    struct {
        const char* what;
        int want;
    } rules[] = {{"query", 900}, {"ctxsync", 900}, {"alloc", 900}, {"copy", 900}, {"legacy", 906}};
    for (auto& rule : rules) {
        OK(cuStreamBeginCapture_v2(sb, 0));
        CUdeviceptr p;
        int r = !strcmp(rule.what, "query")     ? cuStreamQuery(sb)
                : !strcmp(rule.what, "ctxsync") ? cuCtxSynchronize()
                : !strcmp(rule.what, "alloc")   ? cuMemAlloc_v2(&p, 16)
                : !strcmp(rule.what, "copy")    ? cuMemcpyDtoH_v2(hbuf, a, 16)
                                                : cuMemsetD32Async(a, 0, 4, nullptr);
        CHECK(r == rule.want, "%s during capture: %d, want %d\n", rule.what, r, rule.want);
        EQ(cuStreamEndCapture(sb, &gr), 901);
    }
    // Relaxed mode allows cuMemAlloc.
    OK(cuStreamBeginCapture_v2(s, 2));
    CUdeviceptr tmp;
    OK(cuMemAlloc_v2(&tmp, 16));
    OK(cuStreamEndCapture(s, &gr));
    OK(cuGraphDestroy(gr));
    OK(cuMemFree_v2(tmp));
    // Pageable copies cannot be captured.
    OK(cuStreamBeginCapture_v2(s, 0));
    EQ(cuMemcpyDtoHAsync_v2(hbuf, a, 16, s), 900);
    EQ(cuStreamEndCapture(s, &gr), 901);
    // Captured events.
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuEventRecord(e1, s));
    EQ(cuEventSynchronize(e1), 907);
    EQ(cuStreamEndCapture(s, &gr), 901);
    // Unjoined fork.
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(launch3(k_fill, a, 1, n, s));
    OK(cuEventRecord(e1, s));
    OK(cuStreamWaitEvent(s2, e1, 0));
    OK(cuStreamIsCapturing(s2, &st));
    CHECK(st == 1, "joined stream status %d\n", st);
    OK(launch3(k_add, a, 1, n, s2));
    EQ(cuStreamEndCapture(s, &gr), 904);
    OK(cuStreamIsCapturing(s2, &st));
    CHECK(st == 0, "%d\n", st);
    // End on the wrong stream.
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuEventRecord(e1, s));
    OK(cuStreamWaitEvent(s2, e1, 0));
    EQ(cuStreamEndCapture(s2, &gr), 903);
    EQ(cuStreamEndCapture(s, &gr), 901);
    // Wrong thread.
    OK(cuStreamBeginCapture_v2(s, 1));
    std::thread([&] {
        OK(cuCtxSetCurrent(ctx));
        H g2;
        EQ(cuStreamEndCapture(s, &g2), 908);
    }).join();
    OK(cuStreamEndCapture(s, &gr));
    OK(cuGraphDestroy(gr));
    // Waiting in a capture on an event recorded outside: isolation.
    OK(cuEventRecord(e2, s2));
    OK(cuStreamBeginCapture_v2(s, 0));
    EQ(cuStreamWaitEvent(s, e2, 0), 905);
    EQ(cuStreamEndCapture(s, &gr), 901);

    // A joined fork; replays read memory at replay time.
    void *inp, *outp;
    OK(cuMemHostAlloc(&inp, 4 * n, 0));
    OK(cuMemHostAlloc(&outp, 4 * n, 0));
    float *in = (float*)inp, *out = (float*)outp;
    CUdeviceptr b = dalloc(4 * n);
    for (int i = 0; i < n; i++) out[i] = -7;
    uint64_t launches0 = counter("kernel_launches");
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuMemcpyHtoDAsync_v2(a, in, 4 * n, s));
    OK(cuEventRecord(e1, s));
    OK(cuStreamWaitEvent(s2, e1, 0));
    OK(launch3(k_add, a, 1, n, s));        // a += 1 on the origin
    OK(cuMemsetD32Async(b, 0x40000000, n, s2));  // b = 2 on the fork
    OK(cuEventRecord(e2, s2));
    OK(cuStreamWaitEvent(s, e2, 0));        // join back
    OK(cuMemcpyDtoDAsync_v2(b, a, 4 * (n / 2), s));
    OK(cuMemcpyDtoHAsync_v2(out, b, 4 * n, s));
    OK(cuStreamEndCapture(s, &gr));
    CHECK(gr != nullptr, "\n");
    OK(cuStreamSynchronize(s));
    CHECK(out[0] == -7, "captured work ran during capture\n");
    H ex;
    OK(cuGraphInstantiateWithFlags(&ex, gr, 0));
    OK(cuGraphDestroy(gr));  // the exec is independent
    uint64_t nodes0 = counter("graph_nodes");
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < n; i++) in[i] = (float)(i + rep);
        OK(cuGraphLaunch(ex, s));
        OK(cuStreamSynchronize(s));
        bool good = true;
        for (int i = 0; i < n; i++) good &= out[i] == (i < n / 2 ? (float)(i + rep + 1) : 2.0f);
        CHECK(good, "replay %d: out[0]=%g out[n-1]=%g\n", rep, out[0], out[n - 1]);
    }
    for (int i = 0; i < n; i++) in[i] = 0.5f;
    for (int rep = 0; rep < 10; rep++) OK(cuGraphLaunch(ex, s));
    OK(cuStreamSynchronize(s));
    CHECK(out[0] == 1.5f && out[n - 1] == 2.0f, "%g %g\n", out[0], out[n - 1]);
    CHECK(counter("graph_nodes") == nodes0 + 13 * 5, "graph_nodes %llu\n", (unsigned long long)(counter("graph_nodes") - nodes0));
    CHECK(counter("graph_launches") == 13, "\n");
    CHECK(counter("kernel_launches") == launches0 + 1, "captured launches count once\n");
    // A replay after a captured buffer was freed: sticky ILLEGAL_ADDRESS.
    OK(cuMemFree_v2(b));
    OK(cuGraphLaunch(ex, s));
    EQ(cuStreamSynchronize(s), 700);
    CHECK(contains(padsim_last_message(), "use after free"), "\n");
    OK(cuDevicePrimaryCtxRelease_v2(0) == 0 ? 0 : 1);
}

// Library ops captured: free_fn runs when the graph and its execs are gone.
static void t_capture_lib() {
    setup();
    freed_ops = 0;
    H s = stream(1);
    CUdeviceptr a = dalloc(64);
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(enqueue_fill(s, a, 16, 42));
    H gr, ex;
    OK(cuStreamEndCapture(s, &gr));
    OK(cuGraphInstantiateWithFlags(&ex, gr, 0));
    OK(cuGraphLaunch(ex, s));
    OK(cuGraphDestroy(gr));
    CHECK(freed_ops == 0, "freed while the exec holds it\n");
    OK(cuGraphExecDestroy(ex));
    CHECK(freed_ops == 0, "freed while a launch is queued\n");
    OK(cuStreamSynchronize(s));
    uint32_t v[16];
    OK(cuMemcpyDtoH_v2(v, a, 64));
    CHECK(v[15] == 42, "%u\n", v[15]);
    CHECK(freed_ops == 1, "free_fn ran %d times\n", freed_ops);
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

static void t_events() {
    setup();
    H s = stream(1);
    H a, b, nt;
    OK(cuEventCreate(&a, 0));
    OK(cuEventCreate(&b, 0));
    OK(cuEventCreate(&nt, 2));
    float ms = -1;
    EQ(cuEventElapsedTime(&ms, a, b), 400);  // never recorded
    OK(cuEventSynchronize(a));               // never recorded: returns at once
    CUdeviceptr p = dalloc(1 << 20);
    OK(cuEventRecord(a, s));
    OK(enqueue_fill(s, p, 1 << 18, 1));
    OK(cuEventRecord(b, s));
    OK(cuEventRecord(nt, s));
    EQ(cuEventElapsedTime_v2(&ms, a, b), 600);  // not forced
    OK(cuEventSynchronize(b));
    OK(cuEventElapsedTime_v2(&ms, a, b));
    CHECK(ms > 0, "elapsed %g ms\n", ms);
    OK(cuEventElapsedTime(&ms, a, b));
    EQ(cuEventElapsedTime(&ms, a, nt), 400);
    EQ(cuEventSynchronize((H)0x1234), 400);
    OK(cuEventDestroy_v2(a));
    EQ(cuEventDestroy_v2(a), 400);
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

static void t_counters() {
    setup();
    padsim_counters_reset();
    H s = stream(1);
    H e;
    OK(cuEventCreate(&e, 2));
    CUdeviceptr a = dalloc(64);
    uint32_t h[16] = {};
    OK(cuMemcpyHtoD_v2(a, h, 64));
    OK(cuMemcpyDtoH_v2(h, a, 64));
    OK(cuMemcpyDtoDAsync_v2(a, a, 0, s));
    OK(cuMemsetD32Async(a, 1, 16, s));
    OK(cuEventRecord(e, s));
    OK(cuStreamWaitEvent(s, e, 0));
    OK(cuStreamSynchronize(s));
    padsim_count("dnn_calls", 2);
    struct {
        const char* name;
        uint64_t want;
    } want[] = {{"allocs", 1}, {"htod_copies", 1}, {"htod_bytes", 64}, {"dtoh_copies", 1}, {"memsets", 1},
                {"events_recorded", 1}, {"stream_waits", 1}, {"host_syncs", 3}, {"dnn_calls", 2}, {"dtod_copies", 0}};
    for (auto& w : want) CHECK(counter(w.name) == w.want, "%s = %llu, want %llu\n", w.name, (unsigned long long)counter(w.name),
                               (unsigned long long)w.want);
    CHECK(padsim_counter_count() == 20, "\n");
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

// random:SEED: a graph of independent nodes replays in different orders.
static void t_random() {
    setup();
    load_module();
    H s = stream(1), s2 = stream(1);
    H e;
    OK(cuEventCreate(&e, 2));
    CUdeviceptr log = dalloc(4 * 64);
    OK(cuMemsetD32_v2(log, 0, 64));
    OK(cuCtxSynchronize());  // the legacy memset is asynchronous: s does not wait for it
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuEventRecord(e, s));
    OK(cuStreamWaitEvent(s2, e, 0));
    int id1 = 1, id2 = 2;
    void* a1[] = {&log, &id1};
    void* a2[] = {&log, &id2};
    OK(cuLaunchKernel(k_log, 1, 1, 1, 1, 1, 1, 0, s, a1, nullptr));
    OK(cuLaunchKernel(k_log, 1, 1, 1, 1, 1, 1, 0, s2, a2, nullptr));
    OK(cuEventRecord(e, s2));
    OK(cuStreamWaitEvent(s, e, 0));
    H gr, ex;
    OK(cuStreamEndCapture(s, &gr));
    OK(cuGraphInstantiateWithFlags(&ex, gr, 0));
    std::set<int> firsts;
    for (int i = 0; i < 20; i++) {
        OK(cuMemsetD32Async(log, 0, 3, s));
        OK(cuGraphLaunch(ex, s));
        int h[3];
        OK(cuMemcpyDtoHAsync_v2(h, log, 12, s));  // pageable: synchronous
        CHECK(h[0] == 2, "%d nodes ran\n", h[0]);
        firsts.insert(h[1]);
    }
    CHECK(firsts.size() == 2, "random mode: always node %d first\n", *firsts.begin());
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

static void t_eager() {
    setup();
    H s = stream(1);
    CUdeviceptr a = dalloc(64);
    void* hp;
    OK(cuMemHostAlloc(&hp, 64, 0));
    OK(enqueue_fill(s, a, 16, 8));
    OK(cuMemcpyDtoHAsync_v2(hp, a, 64, s));
    CHECK(((uint32_t*)hp)[0] == 8, "eager: not run at once\n");
    EQ(cuStreamQuery(s), 0);
    OK(cuDevicePrimaryCtxRelease_v2(0));
}

static void t_faults() {
    // PAD_CUDASIM_FAULT=oom@2,launch@2,capture@1,dnn_unsupported=fwd:1,lost@4
    setup();
    load_module();
    CUdeviceptr a, b;
    OK(cuMemAlloc_v2(&a, 64));
    EQ(cuMemAlloc_v2(&b, 64), 2);
    OK(cuMemAlloc_v2(&b, 64));
    CHECK(padsim_fault("dnn_unsupported", "fwd:1") == 1 && padsim_fault("dnn_unsupported", "fwd:1") == 1 &&
              padsim_fault("dnn_unsupported", "fwd:0") == 0 && padsim_fault("dnn_wrong", "fwd") == 0,
          "dnn faults\n");
    H s = stream(1), gr;
    OK(cuStreamBeginCapture_v2(s, 0));
    EQ(cuStreamEndCapture(s, &gr), 901);
    OK(cuStreamBeginCapture_v2(s, 0));
    OK(cuStreamEndCapture(s, &gr));
    OK(launch3(k_fill, a, 1, 16, s));
    OK(cuStreamSynchronize(s));
    OK(launch3(k_fill, a, 1, 16, s));  // the 2nd launch fails when it runs
    EQ(cuStreamSynchronize(s), 719);
    OK(cuDevicePrimaryCtxRelease_v2(0));
    setup();
    load_module();
    OK(cuMemAlloc_v2(&a, 64));
    OK(launch3(k_fill, a, 1, 16, s = stream(1)));
    EQ(launch3(k_fill, a, 1, 16, s), 46);  // the 4th launch: the device is lost
    EQ(cuMemAlloc_v2(&b, 4), 46);
    int n;
    EQ(cuDeviceGetCount(&n), 46);
}

// ---- Driver ------------------------------------------------------------------------------

struct Scenario {
    const char* name;
    void (*fn)();
    const char* schedule;
    const char* fault;
};
static const Scenario kScenarios[] = {
    {"init_device", t_init_device, "lazy", ""},
    {"memory", t_memory, "lazy", ""},
    {"lazy_streams", t_lazy_streams, "lazy", ""},
    {"kernels", t_kernels, "lazy", ""},
    {"capture", t_capture, "lazy", ""},
    {"capture_random", t_capture, "random:7", ""},
    {"capture_lib", t_capture_lib, "lazy", ""},
    {"events", t_events, "lazy", ""},
    {"counters", t_counters, "lazy", ""},
    {"random", t_random, "random:12345", ""},
    {"eager", t_eager, "eager", ""},
    {"faults", t_faults, "lazy", "oom@2,launch@2,capture@1,dnn_unsupported=fwd:1,lost@4"},
};

}  // namespace sim

using namespace sim;

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s /path/to/libcuda.so.1 [scenario]\n", argv[0]);
        return 2;
    }
    g_srcdir = __FILE__;
    g_srcdir = g_srcdir.substr(0, g_srcdir.rfind('/') == std::string::npos ? 0 : g_srcdir.rfind('/'));
    if (g_srcdir.empty()) g_srcdir = ".";
    if (argc == 2) {  // run every scenario in its own process
        int bad = 0;
        for (const Scenario& sc : kScenarios) {
            pid_t pid = fork();
            if (pid == 0) {
                setenv("PAD_CUDASIM_SCHEDULE", sc.schedule, 1);
                setenv("PAD_CUDASIM_FAULT", sc.fault, 1);
                setenv("PAD_CUDASIM_QUIET", "1", 1);
                execl(argv[0], argv[0], argv[1], sc.name, (char*)nullptr);
                _exit(127);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            printf("%s %s\n", ok ? "ok  " : "FAIL", sc.name);
            bad += !ok;
        }
        printf(bad ? "%d scenario(s) failed\n" : "all scenarios passed\n", bad);
        return bad ? 1 : 0;
    }
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
#define LOAD(ret, name, args)                                      \
    sim::name = (ret(*) args)dlsym(lib, #name);                    \
    if (!sim::name) {                                                   \
        fprintf(stderr, "missing symbol %s\n", #name);             \
        return 2;                                                  \
    }
    FNS(LOAD)
    for (const Scenario& sc : kScenarios)
        if (!strcmp(sc.name, argv[2])) {
            scenario = sc.name;
            sc.fn();
            return failures ? 1 : 0;
        }
    fprintf(stderr, "no scenario %s\n", argv[2]);
    return 2;
}
