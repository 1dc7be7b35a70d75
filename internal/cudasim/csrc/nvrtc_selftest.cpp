// nvrtc_selftest.cpp: checks cudasim's libnvrtc.so.13 and the module images
// it makes, without the driver: it calls the NVRTC API through dlopen, loads
// each image's shared object itself (from a memfd, as driver.cpp does) and
// runs kernels through padsim_module_v1.
//
//	g++ -std=c++20 -O2 -pthread nvrtc_selftest.cpp -o nvrtc_selftest -ldl
//	./nvrtc_selftest <folder of libnvrtc.so.13 (with include/)> <pad repository>
//
// It compiles the test kernels of internal/cu/gpu_kernel_test.go and pad's
// kernel families (kernels/*.cu after kernels/common.cuh, as
// kernels.Source), and checks results, parameter tables, PTX, dynamic and
// static shared memory, barrier errors, a compile error's log, bad options
// and the cache. It prints timings (cold compiles, launches of 2^20
// threads) and exits 1 on any failure.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "padsim.h"

namespace {

typedef void* nvrtcProgram;
int (*nvrtcVersion)(int*, int*);
const char* (*nvrtcGetErrorString)(int);
int (*nvrtcCreateProgram)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*);
int (*nvrtcCompileProgram)(nvrtcProgram, int, const char* const*);
int (*nvrtcDestroyProgram)(nvrtcProgram*);
int (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t*);
int (*nvrtcGetProgramLog)(nvrtcProgram, char*);
int (*nvrtcGetPTXSize)(nvrtcProgram, size_t*);
int (*nvrtcGetPTX)(nvrtcProgram, char*);
int (*nvrtcGetCUBINSize)(nvrtcProgram, size_t*);
int (*nvrtcGetCUBIN)(nvrtcProgram, char*);

int failures = 0;
#define CHECK(cond, ...)                                           \
    do {                                                           \
        if (!(cond)) {                                             \
            failures++;                                            \
            std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            std::fprintf(stderr, __VA_ARGS__);                     \
            std::fprintf(stderr, "\n");                            \
        }                                                          \
    } while (0)

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct Result {
    int rc = -1;
    std::string log, ptx, cubin;
    double ms = 0;
};

Result compile(const std::string& src, const std::string& name, std::vector<std::string> opts) {
    Result r;
    double t0 = now_ms();
    nvrtcProgram p = nullptr;
    if (int rc = nvrtcCreateProgram(&p, src.c_str(), name.c_str(), 0, nullptr, nullptr)) {
        r.rc = rc;
        return r;
    }
    std::vector<const char*> o;
    for (auto& s : opts) o.push_back(s.c_str());
    r.rc = nvrtcCompileProgram(p, (int)o.size(), o.data());
    size_t n = 0;
    nvrtcGetProgramLogSize(p, &n);
    std::string log(n, '\0');
    nvrtcGetProgramLog(p, log.data());
    r.log = log.c_str();
    if (r.rc == 0) {
        nvrtcGetPTXSize(p, &n);
        r.ptx.resize(n);
        nvrtcGetPTX(p, r.ptx.data());
        nvrtcGetCUBINSize(p, &n);
        r.cubin.resize(n);
        if (n) nvrtcGetCUBIN(p, r.cubin.data());
    }
    CHECK(nvrtcDestroyProgram(&p) == 0 && p == nullptr, "nvrtcDestroyProgram");
    r.ms = now_ms() - t0;
    return r;
}

// Module is an image's shared object loaded from a memfd, as the driver
// loads it.
struct Module {
    void* so = nullptr;
    const padsim_module* m = nullptr;
    std::string header;
    const padsim_kernel* k(const char* name) const {
        for (uint32_t i = 0; i < m->nkernels; i++)
            if (!std::strcmp(m->kernels[i].name, name)) return &m->kernels[i];
        std::fprintf(stderr, "FAIL: no kernel %s in %s\n", name, header.c_str());
        failures++;
        std::exit(1);
    }
};

Module load(const std::string& image) {
    Module mod;
    size_t magic = sizeof PADSIM_IMAGE_MAGIC - 1;
    if (image.size() < magic + 4 || image.compare(0, magic, PADSIM_IMAGE_MAGIC) != 0) {
        std::fprintf(stderr, "FAIL: not an image\n");
        std::exit(1);
    }
    uint32_t h;
    std::memcpy(&h, image.data() + magic, 4);
    mod.header = image.substr(magic + 4, h);
    uint64_t s;
    std::memcpy(&s, image.data() + magic + 4 + h, 8);
    CHECK(magic + 4 + h + 8 + s == image.size(), "image length");
    int fd = memfd_create("padsim-module", MFD_CLOEXEC);
    CHECK(write(fd, image.data() + magic + 12 + h, s) == (ssize_t)s, "memfd write");
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    // The memfd stays open while the module is loaded: glibc's dlopen
    // recognises an object already loaded by its path name, and a reused
    // descriptor number would name an earlier module.
    mod.so = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!mod.so) {
        std::fprintf(stderr, "FAIL: dlopen image: %s\n", dlerror());
        std::exit(1);
    }
    auto fn = (padsim_module_fn)dlsym(mod.so, "padsim_module_v1");
    CHECK(fn, "no padsim_module_v1");
    mod.m = fn();
    CHECK(mod.m->abi == PADSIM_MODULE_ABI, "abi");
    // Nothing else is exported.
    for (const char* hidden : {"emu_fiber_switch", "padsim_static_smem_", "add", "mix", "pad_fill"})
        CHECK(!dlsym(mod.so, hidden), "the image exports %s", hidden);
    return mod;
}

int launch(const padsim_kernel* k, uint32_t gx, uint32_t bx, uint32_t dyn, std::vector<void*> args, int engine = PADSIM_ENGINE_FIBERS,
           uint32_t seed = 0, std::string* msg = nullptr, double* ms = nullptr) {
    uint32_t grid[3] = {gx, 1, 1}, block[3] = {bx, 1, 1};
    char err[512] = "";
    double t0 = now_ms();
    int rc = k->run(grid, block, dyn, args.data(), seed, engine, err, sizeof err);
    if (ms) *ms = now_ms() - t0;
    if (msg) *msg = err;
    return rc;
}

std::string test_kernels(const std::string& repo) {
    std::string go = slurp(repo + "/internal/cu/gpu_kernel_test.go");
    size_t a = go.find("const testKernels = `");
    size_t b = go.find('`', a + 21);
    if (a == std::string::npos || b == std::string::npos) {
        std::fprintf(stderr, "testKernels not found\n");
        std::exit(2);
    }
    return go.substr(a + 21, b - a - 21);
}

std::string family(const std::string& repo, const std::string& fam) {
    return "#line 1 \"common.cuh\"\n" + slurp(repo + "/kernels/common.cuh") + "\n#line 1 \"" + fam + ".cu\"\n" + slurp(repo + "/kernels/" + fam + ".cu");
}

const char* kExtra = R"(
// Dynamic shared memory at file scope, with an alignment attribute.
extern __shared__ __align__(16) unsigned file_smem[];

extern "C" __global__ void peek(unsigned* out) {
    out[threadIdx.x] = file_smem[threadIdx.x];  // never written: the NaN pattern
}

template <class T> __device__ T twice(T v) { return v + v; }

extern "C" __global__ void reverse_static(int* out) {
    __shared__ int s[1024];
    int t = threadIdx.x, n = blockDim.x;
    s[t] = twice(t) + 1000 * (int)blockIdx.x;
    __syncthreads();
    out[blockIdx.x * n + t] = s[n - 1 - t];
}

extern "C" __global__ void diverge(int* out) {
    if (threadIdx.x < 32) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

struct pair3 { double a; float b; int c; };
extern "C" __global__ void by_value(pair3 p, char c, short s, double* out) {
    extern __shared__ alignas(8) double scratch[];
    scratch[threadIdx.x] = p.a + p.b + p.c + c + s;
    out[threadIdx.x] = scratch[threadIdx.x];
}

namespace inner {
__global__ void plain_ns(float* x) { x[blockIdx.x * blockDim.x + threadIdx.x] = (float)(blockIdx.x * 1000 + threadIdx.x); }
}
)";

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <libnvrtc folder> <pad repository>\n", argv[0]);
        return 2;
    }
    std::string libdir = argv[1], repo = argv[2];
    if (!std::getenv("PAD_CUDASIM_CACHE")) {
        char tmpl[] = "/tmp/padsim-selftest-cache-XXXXXX";
        setenv("PAD_CUDASIM_CACHE", mkdtemp(tmpl), 1);
    }
    void* lib = dlopen((libdir + "/libnvrtc.so.13").c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
#define BIND(f)                           \
    *(void**)&f = dlsym(lib, #f);         \
    CHECK(f, "missing %s", #f);
    BIND(nvrtcVersion) BIND(nvrtcGetErrorString) BIND(nvrtcCreateProgram) BIND(nvrtcCompileProgram) BIND(nvrtcDestroyProgram)
    BIND(nvrtcGetProgramLogSize) BIND(nvrtcGetProgramLog) BIND(nvrtcGetPTXSize) BIND(nvrtcGetPTX) BIND(nvrtcGetCUBINSize)
    BIND(nvrtcGetCUBIN)
    if (failures) return 1;
    int ma = 0, mi = 0;
    CHECK(nvrtcVersion(&ma, &mi) == 0 && ma == 13 && mi == 0, "version %d.%d", ma, mi);
    CHECK(!std::strcmp(nvrtcGetErrorString(6), "NVRTC_ERROR_COMPILATION"), "error string");

    // ---- internal/cu's test kernels ----
    std::string tk = test_kernels(repo);
    Result r = compile(tk, "kernels.cu", {"--gpu-architecture=sm_90"});
    CHECK(r.rc == 0, "kernels.cu: %d %s", r.rc, r.log.c_str());
    CHECK(r.log.empty(), "kernels.cu warns: %s", r.log.c_str());
    std::printf("kernels.cu (testKernels): cold compile %.0f ms, image %zu bytes\n", r.ms, r.cubin.size());
    Result again = compile(tk, "kernels.cu", {"--gpu-architecture=sm_90"});
    CHECK(again.rc == 0 && again.cubin == r.cubin, "cache hit differs");
    std::printf("kernels.cu again (cache hit): %.1f ms\n", again.ms);
    CHECK(again.ms < 200, "a cache hit took %.0f ms", again.ms);

    Module m = load(r.cubin);
    CHECK(m.header.find("arch=sm_90\n") != std::string::npos && m.header.find("fmad=1\n") != std::string::npos &&
              m.header.find("program=kernels.cu\n") != std::string::npos &&
              m.header.find("kernels=mix,add,scale,busy,reverse_chunks\n") != std::string::npos,
          "header %s", m.header.c_str());
    {
        const padsim_kernel* mix = m.k("mix");
        uint32_t sizes[] = {8, 8, 8, 4, 4, 8, 8, 4}, ptr[] = {1, 1, 1, 0, 0, 0, 0, 0}, pointee[] = {4, 8, 4, 0, 0, 0, 0, 0};
        CHECK(mix->nparams == 8, "mix has %u params", mix->nparams);
        for (int i = 0; i < 8 && i < (int)mix->nparams; i++)
            CHECK(mix->params[i].size == sizes[i] && mix->params[i].align == sizes[i] && mix->params[i].is_pointer == ptr[i] &&
                      mix->params[i].pointee == pointee[i],
                  "mix param %d: %u %u %u %u", i, mix->params[i].size, mix->params[i].align, mix->params[i].is_pointer,
                  mix->params[i].pointee);
        CHECK(mix->static_smem == 0, "mix static smem %u", mix->static_smem);

        // mix through the fibers engine, permuted blocks.
        const int n = 3000;
        std::vector<float> in(n), out(n);
        std::vector<unsigned long long> out64(n);
        for (int i = 0; i < n; i++) in[i] = (float)i;
        float* op = out.data();
        unsigned long long* o64 = out64.data();
        const float* ip = in.data();
        int cnt = n, shift = -5;
        float scale = 0.5f;
        unsigned long long tag = 0x0123456789abcdefull;
        double offset = 0.25;
        std::string msg;
        CHECK(launch(mix, (n + 255) / 256, 256, 0, {&op, &o64, &ip, &cnt, &scale, &tag, &offset, &shift}, PADSIM_ENGINE_FIBERS, 7, &msg) == 0,
              "mix: %s", msg.c_str());
        for (int i = 0; i < n; i++) {
            if (out[i] != (float)i * scale + (float)offset || out64[i] != (tag ^ (unsigned long long)i) + (unsigned long long)(long long)shift) {
                CHECK(false, "mix[%d] = %g %llx", i, out[i], out64[i]);
                break;
            }
        }

        // add over 2^20 elements: plain calls, then fibers (PAD_CUDASIM_PLAIN=0).
        const int big = 1 << 20;
        std::vector<float> x(big, 1.0f);
        float* xp = x.data();
        float v = 2.0f;
        int nb = big;
        const padsim_kernel* add = m.k("add");
        double plain_ms = 0, fiber_ms = 0, threads_ms = 0;
        CHECK(launch(add, big / 256, 256, 0, {&xp, &v, &nb}, PADSIM_ENGINE_FIBERS, 0, &msg, &plain_ms) == 0, "add: %s", msg.c_str());
        launch(add, big / 256, 256, 0, {&xp, &v, &nb}, PADSIM_ENGINE_FIBERS, 0, &msg, &plain_ms);  // warm
        setenv("PAD_CUDASIM_PLAIN", "0", 1);
        CHECK(launch(add, big / 256, 256, 0, {&xp, &v, &nb}, PADSIM_ENGINE_FIBERS, 0, &msg, &fiber_ms) == 0, "add: %s", msg.c_str());
        unsetenv("PAD_CUDASIM_PLAIN");
        CHECK(launch(add, big / 256, 256, 0, {&xp, &v, &nb}, PADSIM_ENGINE_THREADS, 0, &msg, &threads_ms) == 0, "add: %s", msg.c_str());
        bool ok = true;
        for (int i = 0; i < big && ok; i++) ok = x[i] == 9.0f;
        CHECK(ok, "add over 2^20: x[0] = %g", x[0]);
        std::printf("add over 2^20 threads (4096 blocks of 256): plain %.1f ms (%.1f ns/thread), fibers %.1f ms (%.1f ns/thread), threads %.1f ms\n",
                    plain_ms, plain_ms * 1e6 / big, fiber_ms, fiber_ms * 1e6 / big, threads_ms);

        // reverse_chunks: 96 KiB of dynamic shared memory, on both engines.
        const padsim_kernel* rev = m.k("reverse_chunks");
        for (int engine : {PADSIM_ENGINE_FIBERS, PADSIM_ENGINE_THREADS}) {
            int chunk = 96 * 1024 / 4, blocks = 3;
            std::vector<float> y(blocks * chunk);
            for (size_t i = 0; i < y.size(); i++) y[i] = (float)i;
            float* yp = y.data();
            CHECK(launch(rev, blocks, 256, 96 * 1024, {&yp, &chunk}, engine, 3, &msg) == 0, "reverse_chunks: %s", msg.c_str());
            for (int b = 0; b < blocks; b++)
                for (int j = 0; j < chunk; j++)
                    if (y[b * chunk + j] != (float)(b * chunk + chunk - 1 - j)) {
                        CHECK(false, "reverse_chunks engine %d block %d element %d = %g", engine, b, j, y[b * chunk + j]);
                        b = blocks;
                        break;
                    }
        }
    }

    // PTX for a virtual architecture: no CUBIN, the parameter lists in PTX's spelling.
    r = compile(tk, "kernels.cu", {"--gpu-architecture=compute_90"});
    CHECK(r.rc == 0 && r.cubin.empty(), "compute_90: rc %d, %zu bytes of CUBIN", r.rc, r.cubin.size());
    CHECK(!r.ptx.empty() && r.ptx.back() == '\0' && r.ptx.rfind(PADSIM_PTX_MAGIC, 0) == 0, "PTX framing");
    CHECK(r.ptx.find("\n.target sm_90\n") != std::string::npos, "PTX .target");
    CHECK(r.ptx.find(".visible .entry mix(.param .u64 mix_param_0, .param .u64 mix_param_1, .param .u64 mix_param_2, .param .u32 mix_param_3, "
                     ".param .f32 mix_param_4, .param .u64 mix_param_5, .param .f64 mix_param_6, .param .u32 mix_param_7)") != std::string::npos,
          "PTX mix entry");
    CHECK(r.ptx.find("\n// image 50414453494d2d435542494e2d30310a") != std::string::npos, "PTX image line");

    // ---- errors and options ----
    r = compile("extern \"C\" __global__ void bad(float* x) { x[0] = y; }\n", "bad.cu", {"--gpu-architecture=sm_90"});
    CHECK(r.rc == 6, "bad.cu: rc %d", r.rc);
    CHECK(r.log.find("bad.cu(1): error") != std::string::npos, "bad.cu log: %s", r.log.c_str());
    std::printf("bad.cu log:\n%s", r.log.c_str());
    r = compile("extern \"C\" __global__ void k() {}\n", "opt.cu", {"--no-such-option"});
    CHECK(r.rc == 5 && r.log.find("--no-such-option") != std::string::npos, "unknown option: rc %d log %s", r.rc, r.log.c_str());
    for (const char* bad : {"--gpu-architecture=sm_30", "-arch=sm_91", "--fmad=maybe", "--std=c++03", "-arch=compute_80a"}) {
        r = compile("extern \"C\" __global__ void k() {}\n", "opt.cu", {bad});
        CHECK(r.rc == 5, "%s accepted (rc %d)", bad, r.rc);
    }
    r = compile("extern \"C\" __global__ void k(int* o) { o[0] = VAL + ARCH_OK; }\n", "opts.cu",
                {"-arch", "sm_80", "-fmad=false", "-std=c++17", "-DVAL=41", "--define-macro=ARCH_OK=(__CUDA_ARCH__ == 800)", "-D", "UNUSED",
                 "-UUNUSED", "-I", "/tmp", "--include-path=/tmp", "-default-device", "--device-as-default-execution-space", "-lineinfo",
                 "--use_fast_math", "-G", "--ftz=true", "--prec-div=false", "--prec-sqrt=true", "-w", "--restrict",
                 "--extra-device-vectorization", "-dopt=on"});
    CHECK(r.rc == 0, "options: rc %d log %s", r.rc, r.log.c_str());
    if (r.rc == 0) {
        Module om = load(r.cubin);
        CHECK(om.header.find("fmad=0\n") != std::string::npos && om.header.find("arch=sm_80\n") != std::string::npos, "header %s", om.header.c_str());
        int o = 0;
        int* op = &o;
        std::string msg;
        CHECK(launch(om.k("k"), 1, 1, 0, {&op}, PADSIM_ENGINE_FIBERS, 0, &msg) == 0 && o == 42, "-D: o = %d (%s)", o, msg.c_str());
    }

    // ---- shared memory, barriers, struct parameters, namespaces ----
    r = compile(kExtra, "extra.cu", {"--gpu-architecture=sm_86"});
    CHECK(r.rc == 0 && r.log.empty(), "extra.cu: rc %d log %s", r.rc, r.log.c_str());
    if (r.rc == 0) {
        Module em = load(r.cubin);
        std::string msg;
        std::vector<unsigned> peek(64, 0);
        unsigned* pp = peek.data();
        CHECK(launch(em.k("peek"), 2, 64, 256, {&pp}, PADSIM_ENGINE_FIBERS, 0, &msg) == 0, "peek: %s", msg.c_str());
        CHECK(peek[0] == 0xffffffffu && peek[63] == 0xffffffffu, "dynamic shared memory not NaN-filled: %#x", peek[0]);
        CHECK(em.k("reverse_static")->static_smem == 4096, "reverse_static static smem %u", em.k("reverse_static")->static_smem);
        CHECK(em.k("peek")->static_smem == 0, "peek static smem %u", em.k("peek")->static_smem);
        std::vector<int> out(4 * 128);
        int* outp = out.data();
        for (int engine : {PADSIM_ENGINE_FIBERS, PADSIM_ENGINE_THREADS}) {
            CHECK(launch(em.k("reverse_static"), 4, 128, 0, {&outp}, engine, 9, &msg) == 0, "reverse_static: %s", msg.c_str());
            CHECK(out[0] == 2 * 127 && out[128 * 3 + 127] == 3000, "reverse_static: %d %d", out[0], out[128 * 3 + 127]);
        }
        CHECK(launch(em.k("diverge"), 1, 64, 0, {&outp}, PADSIM_ENGINE_FIBERS, 0, &msg) == 1 && msg.find("__syncthreads") != std::string::npos,
              "diverge: %s", msg.c_str());
        std::printf("divergent barrier: %s\n", msg.c_str());
        const padsim_kernel* bv = em.k("by_value");
        CHECK(bv->nparams == 4 && bv->params[0].size == 16 && bv->params[0].align == 8 && bv->params[1].size == 1 && bv->params[2].size == 2 &&
                  bv->params[3].is_pointer == 1 && bv->params[3].pointee == 8,
              "by_value params");
        struct {
            double a;
            float b;
            int c;
        } p3{1.5, 2.0f, 3};
        char c = 4;
        short s = 5;
        std::vector<double> dv(32);
        double* dvp = dv.data();
        CHECK(launch(bv, 1, 32, 32 * 8, {&p3, &c, &s, &dvp}, PADSIM_ENGINE_FIBERS, 0, &msg) == 0 && dv[31] == 15.5, "by_value: %g %s", dv[31],
              msg.c_str());
        std::vector<float> nsx(2 * 32);
        float* nsp = nsx.data();
        CHECK(launch(em.k("plain_ns"), 2, 32, 0, {&nsp}, PADSIM_ENGINE_FIBERS, 5, &msg) == 0 && nsx[33] == 1001.0f, "plain_ns %g", nsx[33]);
    }
    r = compile(kExtra, "extra.cu", {"--gpu-architecture=compute_86"});
    CHECK(r.ptx.find(".visible .entry by_value(.param .align 8 .b8 by_value_param_0[16], .param .u8 by_value_param_1, .param .u16 by_value_param_2, "
                     ".param .u64 by_value_param_3)") != std::string::npos,
          "by_value PTX");

    // ---- pad's kernel families ----
    const char* fams[] = {"adam", "elementwise", "reduce", "rng"};
    for (const char* fam : fams) {
        std::string src = family(repo, fam);
        r = compile(src, std::string(fam) + ".cu", {"--gpu-architecture=sm_90", "--std=c++17", "--fmad=false"});
        CHECK(r.rc == 0, "%s.cu: rc %d log %s", fam, r.rc, r.log.c_str());
        CHECK(r.log.empty(), "%s.cu warns: %s", fam, r.log.c_str());
        std::printf("%s.cu: cold compile %.0f ms, image %zu bytes\n", fam, r.ms, r.cubin.size());
        if (r.rc != 0) continue;
        Module fm = load(r.cubin);
        CHECK(fm.header.find("fmad=0\n") != std::string::npos, "%s header", fam);
        for (uint32_t i = 0; i < fm.m->nkernels; i++) {
            const padsim_kernel& k = fm.m->kernels[i];
            bool uses_block_sum = std::string(fam) == "reduce";
            CHECK(k.static_smem == (uses_block_sum ? 256u : 0u), "%s static smem %u", k.name, k.static_smem);
        }
        std::string msg;
        if (std::string(fam) == "elementwise") {
            const long n = 1 << 20;
            std::vector<float> x(n);
            float* xp = x.data();
            float v = 3.0f;
            long nn = n;
            double plain_ms = 0, fiber_ms = 0;
            launch(fm.k("pad_fill"), 4096, 256, 0, {&xp, &v, &nn}, PADSIM_ENGINE_FIBERS, 0, &msg, &plain_ms);
            CHECK(launch(fm.k("pad_fill"), 4096, 256, 0, {&xp, &v, &nn}, PADSIM_ENGINE_FIBERS, 0, &msg, &plain_ms) == 0, "pad_fill %s", msg.c_str());
            setenv("PAD_CUDASIM_PLAIN", "0", 1);
            v = 4.0f;
            CHECK(launch(fm.k("pad_fill"), 4096, 256, 0, {&xp, &v, &nn}, PADSIM_ENGINE_FIBERS, 0, &msg, &fiber_ms) == 0, "pad_fill %s", msg.c_str());
            unsetenv("PAD_CUDASIM_PLAIN");
            CHECK(x[0] == 4.0f && x[n - 1] == 4.0f, "pad_fill");
            std::printf("pad_fill over 2^20 threads: plain %.1f ms (%.1f ns/thread), fibers %.1f ms (%.1f ns/thread)\n", plain_ms,
                        plain_ms * 1e6 / n, fiber_ms, fiber_ms * 1e6 / n);
        }
        if (std::string(fam) == "reduce") {
            const long n = 1 << 20;
            std::vector<float> x(n);
            double want = 0;
            for (long i = 0; i < n; i++) x[i] = (float)((i % 97) * 0.25), want += x[i];
            const float* xp = x.data();
            std::vector<double> part(256);
            double* pp = part.data();
            long nn = n;
            double ms = 0;
            CHECK(launch(fm.k("pad_sum_partial"), 256, 256, 0, {&xp, &pp, &nn}, PADSIM_ENGINE_FIBERS, 11, &msg, &ms) == 0, "pad_sum_partial %s",
                  msg.c_str());
            double got = 0;
            for (double d : part) got += d;
            CHECK(got == want, "pad_sum_partial: %.17g, want %.17g", got, want);
            std::printf("pad_sum_partial (barriers, fibers) over 2^16 threads, 2^20 elements: %.1f ms\n", ms);
        }
        if (std::string(fam) == "adam") {
            const padsim_kernel* k = fm.k("pad_adam");
            CHECK(k->nparams == 8 && k->params[4].is_pointer && k->params[4].pointee == 24, "pad_adam params");
        }
    }

    if (failures) {
        std::printf("nvrtc selftest: %d failures\n", failures);
        return 1;
    }
    std::printf("nvrtc selftest: ok\n");
    return 0;
}
