// driver.cpp: libcuda.so.1 of cudasim, the simulated CUDA driver.
//
// One simulated device (sm_90, H100 figures) whose memory is host memory:
// a device address is the host address of the block behind it, so kernels
// compiled by the simulated NVRTC (emu.h) dereference it directly. What
// makes the simulation useful is that it is strict and adversarial where a
// real GPU would only fail sometimes:
//
//   - every device range a call or a kernel argument names is checked
//     against the table of live allocations; allocations carry redzones
//     that are checked after each kernel and end in a guard page (an
//     access further out faults); freed blocks sit in a quarantine without
//     access, so that a use after free is caught, not silently served;
//   - queued work runs as late as CUDA allows (PAD_CUDASIM_SCHEDULE=lazy),
//     so a missing event wait or a host read of a pinned buffer before its
//     stream was synchronised sees stale data every time, not once a month;
//   - stream capture follows CUDA's rules and error codes;
//   - errors found while running queued work are sticky, as on hardware.
//
// padsim.h is the contract with the other simulated libraries. All state
// lives behind one recursive mutex: library ops that run under it (cuDNN,
// cuBLAS callbacks) call back into padsim_check_range and friends.
//
// Counters (padsim_counter_*) count host API calls, not device work, except
// graph_nodes: kernel_launches = cuLaunchKernel calls that were accepted
// (captured ones included, replays not); graph_launches = cuGraphLaunch
// calls; graph_nodes = nodes run by graph replays; host_syncs = calls that
// blocked the host on device work (stream/event/context synchronise,
// cuMemcpyHtoD/DtoH, a pageable DtoH async copy, cuMemFree, cuMemFreeHost);
// *_copies/*_bytes/memsets = copy and memset calls (sync, async and
// captured); captures = graphs produced by cuStreamEndCapture;
// events_recorded = cuEventRecord calls; stream_waits = cuStreamWaitEvent
// calls; allocs/frees/host_allocs = successful calls. dnn_calls and
// blas_calls are counted by cuDNN and cuBLAS themselves (padsim_count):
// padsim_enqueue counts nothing.
//
// Where CUDA's documented behaviour is weaker than "blocking", we follow
// CUDA: cuMemcpyDtoD_v2 and cuMemsetD32_v2 on device memory are queued on
// the legacy stream and return at once (host_syncs not counted);
// cuMemcpyHtoD_v2/DtoH_v2 run the legacy stream to completion. cuStreamQuery
// never runs work, except that after 1000 NOT_READY answers in a row it
// runs one op, so that a polling loop cannot hang forever.

#include "padsim.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

// ---- CUDA types (cuda.h of CUDA 13, written out: we have no headers) --------

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;
typedef struct CUstream_st* CUstream;
typedef struct CUevent_st* CUevent;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUgraph_st* CUgraph;
typedef struct CUgraphExec_st* CUgraphExec;

enum : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
    CUDA_ERROR_INVALID_PTX = 218,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600,
    CUDA_ERROR_ILLEGAL_ADDRESS = 700,
    CUDA_ERROR_MISALIGNED_ADDRESS = 716,
    CUDA_ERROR_LAUNCH_FAILED = 719,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
    CUDA_ERROR_UNKNOWN = 999,
    CUDA_ERROR_STREAM_CAPTURE_MERGE = 902,
    CUDA_ERROR_STREAM_CAPTURE_UNMATCHED = 903,
    CUDA_ERROR_STREAM_CAPTURE_UNJOINED = 904,
    CUDA_ERROR_STREAM_CAPTURE_ISOLATION = 905,
    CUDA_ERROR_STREAM_CAPTURE_IMPLICIT = 906,
    CUDA_ERROR_CAPTURED_EVENT = 907,
    CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD = 908,
};

#define API extern "C" __attribute__((visibility("default")))

namespace {

// ---- Error names and strings (NVIDIA's, as cuGetErrorName/String give) ------

struct ErrName {
    int code;
    const char* name;
    const char* text;
};
const ErrName kErrors[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {5, "CUDA_ERROR_PROFILER_DISABLED", "profiler disabled while using external profiling tool"},
    {6, "CUDA_ERROR_PROFILER_NOT_INITIALIZED", "profiler not initialized: call cudaProfilerInitialize()"},
    {7, "CUDA_ERROR_PROFILER_ALREADY_STARTED", "profiler already started"},
    {8, "CUDA_ERROR_PROFILER_ALREADY_STOPPED", "profiler already stopped"},
    {34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
    {35, "CUDA_ERROR_INSUFFICIENT_DRIVER", "CUDA driver version is insufficient"},
    {36, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER", "API call requires a newer CUDA driver"},
    {46, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {102, "CUDA_ERROR_DEVICE_NOT_LICENSED", "device doesn't have valid Grid license"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {202, "CUDA_ERROR_CONTEXT_ALREADY_CURRENT", "context already current"},
    {205, "CUDA_ERROR_MAP_FAILED", "mapping of buffer object failed"},
    {206, "CUDA_ERROR_UNMAP_FAILED", "unmapping of buffer object failed"},
    {207, "CUDA_ERROR_ARRAY_IS_MAPPED", "array is mapped"},
    {208, "CUDA_ERROR_ALREADY_MAPPED", "resource already mapped"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
    {210, "CUDA_ERROR_ALREADY_ACQUIRED", "resource already acquired"},
    {211, "CUDA_ERROR_NOT_MAPPED", "resource not mapped"},
    {212, "CUDA_ERROR_NOT_MAPPED_AS_ARRAY", "resource not mapped as array"},
    {213, "CUDA_ERROR_NOT_MAPPED_AS_POINTER", "resource not mapped as pointer"},
    {214, "CUDA_ERROR_ECC_UNCORRECTABLE", "uncorrectable ECC error encountered"},
    {215, "CUDA_ERROR_UNSUPPORTED_LIMIT", "limit is not supported on this architecture"},
    {216, "CUDA_ERROR_CONTEXT_ALREADY_IN_USE", "exclusive-thread device already in use by a different thread"},
    {217, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", "peer access is not supported between these two devices"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {219, "CUDA_ERROR_INVALID_GRAPHICS_CONTEXT", "invalid OpenGL or DirectX context"},
    {220, "CUDA_ERROR_NVLINK_UNCORRECTABLE", "uncorrectable NVLink error detected during the execution"},
    {221, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", "PTX JIT compiler library not found"},
    {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
    {223, "CUDA_ERROR_JIT_COMPILATION_DISABLED", "PTX JIT compilation was disabled"},
    {300, "CUDA_ERROR_INVALID_SOURCE", "device kernel source is invalid"},
    {301, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"},
    {302, "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND", "shared object symbol not found"},
    {303, "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", "shared object initialization failed"},
    {304, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {401, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
    {402, "CUDA_ERROR_LOSSY_QUERY", "attempted introspection would be semantically lossy"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {702, "CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
    {703, "CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING", "launch uses incompatible texturing mode"},
    {704, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED", "peer access is already enabled"},
    {705, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", "peer access has not been enabled"},
    {708, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE", "cannot set while device is active in this process"},
    {709, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
    {710, "CUDA_ERROR_ASSERT", "device-side assert triggered"},
    {711, "CUDA_ERROR_TOO_MANY_PEERS", "peer mapping resources exhausted"},
    {712, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"},
    {713, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", "pointer does not correspond to a registered memory region"},
    {714, "CUDA_ERROR_HARDWARE_STACK_ERROR", "hardware stack error"},
    {715, "CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
    {716, "CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"},
    {717, "CUDA_ERROR_INVALID_ADDRESS_SPACE", "operation not supported on global/shared address space"},
    {718, "CUDA_ERROR_INVALID_PC", "invalid program counter"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {720, "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", "too many blocks in cooperative launch"},
    {800, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {802, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
    {803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
    {804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
    {900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
    {901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
    {902, "CUDA_ERROR_STREAM_CAPTURE_MERGE", "operation would result in a merge of separate capture sequences"},
    {903, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED", "capture was not ended in the same stream as it began"},
    {904, "CUDA_ERROR_STREAM_CAPTURE_UNJOINED", "capturing stream has unjoined work"},
    {905, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION", "dependency created on uncaptured work in another stream"},
    {906, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
    {907, "CUDA_ERROR_CAPTURED_EVENT", "operation not permitted on an event last recorded in a capturing stream"},
    {908, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
    {909, "CUDA_ERROR_TIMEOUT", "wait operation timed out"},
    {910, "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE", "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

const ErrName* find_error(int code) {
    for (const ErrName& e : kErrors)
        if (e.code == code) return &e;
    return nullptr;
}

// ---- The simulated device ---------------------------------------------------

constexpr uint64_t kTotalMem = 80ull << 30;      // 80 GiB
constexpr uint64_t kContextReserve = 512ull << 20;  // what the context itself takes, as on hardware
constexpr int kSharedDefault = 48 * 1024;        // per block without opt-in
constexpr int kSharedOptin = 232448;             // 227 KiB
constexpr uint64_t kRedzone = 256;               // before and after each allocation
constexpr uint8_t kCanary = 0xCD;
constexpr uint8_t kPoison = 0xFB;  // freed blocks in quarantine
constexpr uint64_t kQuarantineBytes = 256ull << 20;
constexpr size_t kQuarantineBlocks = 4096;

// H100 SXM values of the attributes pad asks for (and a few neighbours);
// every other attribute below kAttrMax reads 0.
struct Attr {
    int attr, value;
};
const Attr kAttrs[] = {
    {1, 1024},         {2, 1024},       {3, 1024},     {4, 64},         {5, 2147483647}, {6, 65535},
    {7, 65535},        {8, kSharedDefault}, {9, 65536}, {10, 32},       {11, 2147483647}, {12, 65536},
    {13, 1980000},     {14, 512},       {15, 1},       {16, 132},       {17, 0},          {18, 0},
    {19, 1},           {20, 0},         {31, 1},       {32, 1},         {33, 0x1b},       {34, 0},
    {35, 0},           {36, 2619000},   {37, 5120},    {38, 50 * 1024 * 1024}, {39, 2048}, {40, 3},
    {41, 1},           {50, 0},         {75, 9},       {76, 0},         {78, 1},          {79, 1},
    {80, 1},           {81, 233472},    {82, 65536},   {83, 1},         {84, 0},          {85, 0},
    {86, 0},           {87, 0},         {88, 0},       {89, 0},         {95, 1},          {96, 1},
    {97, kSharedOptin}, {98, 0},        {99, 0},       {100, 0},        {106, 32},        {115, 1},
};
constexpr int kAttrMax = 140;

double now_ms() {
    static const auto t0 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

// ---- Counters -----------------------------------------------------------------

const char* const kCounterNames[] = {
    "kernel_launches", "dnn_calls",  "blas_calls",  "graph_launches", "graph_nodes",
    "host_syncs",      "allocs",     "frees",       "host_allocs",    "htod_copies",
    "htod_bytes",      "dtoh_copies", "dtoh_bytes", "dtod_copies",    "dtod_bytes",
    "memsets",         "pageable_async_copies", "captures", "events_recorded", "stream_waits",
};
enum Counter {
    C_KERNEL_LAUNCHES, C_DNN_CALLS, C_BLAS_CALLS, C_GRAPH_LAUNCHES, C_GRAPH_NODES,
    C_HOST_SYNCS, C_ALLOCS, C_FREES, C_HOST_ALLOCS, C_HTOD_COPIES,
    C_HTOD_BYTES, C_DTOH_COPIES, C_DTOH_BYTES, C_DTOD_COPIES, C_DTOD_BYTES,
    C_MEMSETS, C_PAGEABLE_ASYNC, C_CAPTURES, C_EVENTS_RECORDED, C_STREAM_WAITS,
    C_COUNT
};
static_assert(sizeof kCounterNames / sizeof kCounterNames[0] == C_COUNT, "counter names");
std::atomic<uint64_t> g_counters[C_COUNT];
void count(Counter c, uint64_t n = 1) { g_counters[c].fetch_add(n, std::memory_order_relaxed); }

// ---- Global state -----------------------------------------------------------

std::recursive_mutex mu;
#define LOCK std::lock_guard<std::recursive_mutex> lock_(mu)
// ENTER starts an API call: the message of an earlier call is forgotten, so
// the error of this call never carries another call's explanation.
// The fault fail[=FUNCTION][@N] of PAD_CUDASIM_FAULT makes the call fail with
// CUDA_ERROR_UNKNOWN before it does anything.
#define ENTER_AS(name)          \
    LOCK;                       \
    g_last_message.clear();     \
    if (fault("fail", name)) return fail(CUDA_ERROR_UNKNOWN, std::string(name) + ": failed (fault injected by PAD_CUDASIM_FAULT=fail)")
#define ENTER ENTER_AS(__func__)

enum Schedule { LAZY, EAGER, RANDOM };
struct Config {
    Schedule sched = LAZY;
    uint64_t seed = 0;
    int engine = PADSIM_ENGINE_FIBERS;
    bool quiet = false;
} cfg;
bool g_inited = false;
bool g_lost = false;  // fault lost@N fired: the device fell off the bus
std::mt19937_64 rng;
int in_run = 0;  // >0 while queued work runs (no random advancing inside)
std::string g_last_message;

// Faults of PAD_CUDASIM_FAULT: key[=detail][@N].
struct Fault {
    std::string key, detail;
    uint64_t n = 1;
    bool explicit_n = false;
    uint64_t seen = 0;
};
std::vector<Fault> g_faults;
bool g_faults_parsed = false;

void parse_fault_spec(const char* spec) {
    g_faults.clear();
    if (!spec) return;
    std::string s = spec;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t end = s.find(',', pos);
        if (end == std::string::npos) end = s.size();
        std::string item = s.substr(pos, end - pos);
        pos = end + 1;
        if (item.empty()) continue;
        Fault f;
        size_t at = item.rfind('@');
        if (at != std::string::npos) {
            f.n = strtoull(item.c_str() + at + 1, nullptr, 10);
            f.explicit_n = true;
            if (f.n == 0) f.n = 1;
            item.resize(at);
        }
        size_t eq = item.find('=');
        if (eq != std::string::npos) {
            f.detail = item.substr(eq + 1);
            item.resize(eq);
        }
        f.key = item;
        g_faults.push_back(f);
    }
}

void parse_faults() {
    if (g_faults_parsed) return;
    g_faults_parsed = true;
    parse_fault_spec(getenv("PAD_CUDASIM_FAULT"));
}

// fault consumes one occasion of every fault named key (narrowed by
// detail) and reports whether one fires now. Faults that describe a
// property (dnn_unsupported, dnn_wrong) fire on every occasion unless an
// @N names one.
bool fault(const char* key, const char* detail) {
    parse_faults();
    bool fire = false;
    for (Fault& f : g_faults) {
        if (f.key != key) continue;
        // An empty detail matches every occasion (fail@N: the N-th call of any function).
        if (!f.detail.empty() && (!detail || f.detail != detail)) continue;
        f.seen++;
        bool every = !f.explicit_n && (f.key == "dnn_unsupported" || f.key == "dnn_wrong");
        if (every || f.seen == f.n) fire = true;
    }
    return fire;
}

// message records the text behind an error; fail also returns the code.
void message(const std::string& m) { g_last_message = m; }
int fail(int code, const std::string& m) {
    message(m);
    return code;
}

// ---- Memory table -------------------------------------------------------------

struct Alloc {
    uint64_t base = 0, size = 0;
    void* raw = nullptr;   // the accessible block: front redzone, the allocation, tail redzone
    uint64_t rawsize = 0;
    bool pinned = false;
    unsigned flags = 0;
    bool mapped = false;   // device memory: raw is a mapping followed by a guard page
    uint64_t charged = 0;  // what it counts against the device's memory
};

// ---- Streams, work and graphs -------------------------------------------------

// Mark is the completion of one event record: when its marker ran on the
// stream and the stream's simulated clock at that point.
struct Mark {
    bool ran = false;
    double t = 0;
};

// Work is what an op or a graph node does on the device. run returns a
// CUresult (with msg) and may raise est_ms, the simulated duration.
struct Work {
    std::string name;
    virtual ~Work() {}
    virtual int run(std::string& msg, double& est_ms) = 0;
};

struct Node {
    std::shared_ptr<Work> work;
    std::vector<int> deps;
};
typedef std::vector<Node> Nodes;

struct Capture {
    int mode = 0;
    CUstream_st* origin = nullptr;
    std::thread::id thread;
    Nodes nodes;
    bool invalid = false;
    bool active = true;
    std::set<CUstream_st*> streams;  // origin and the streams that joined
};

struct Dep;

}  // namespace

struct CUstream_st;
namespace {
struct Dep {
    std::shared_ptr<CUstream_st> s;  // keeps a destroyed stream's counters readable
    uint64_t seq;                    // s must have completed this many ops
    std::shared_ptr<Mark> mark;      // the record waited for, if any (its time)
};
struct Op {
    std::shared_ptr<Work> work;  // null for markers and waits
    std::vector<Dep> deps;
    std::shared_ptr<Mark> mark;  // set for event records
    double enq_ms = 0;
};
}  // namespace

struct CUstream_st {
    bool legacy = false;
    bool blocking = true;
    unsigned flags = 0;
    std::deque<Op> q;
    uint64_t enq = 0, done = 0;  // ops enqueued / completed so far
    double clock = 0;            // simulated device time of the stream (ms)
    std::shared_ptr<Capture> cap;
    std::vector<int> tail;  // while capturing: the nodes the next node depends on
    int polls = 0;          // consecutive NOT_READY answers of cuStreamQuery
};

struct CUevent_st {
    unsigned flags = 0;
    bool recorded = false;  // recorded outside capture at least once
    std::shared_ptr<CUstream_st> s;
    uint64_t seq = 0;
    std::shared_ptr<Mark> mark;
    bool in_capture = false;  // last recorded in a capturing stream
    std::shared_ptr<Capture> cap;
    std::vector<int> cap_nodes;
};

struct CUfunc_st {
    CUmod_st* mod = nullptr;
    const padsim_kernel* k = nullptr;
    int max_dyn = 0;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    int carveout = -1;
};

// A module's shared object, closed (unmapped) when the last holder goes:
// the module, a launch still queued, or a graph node that may run it.
struct SharedObject {
    void* dl = nullptr;
    explicit SharedObject(void* d) : dl(d) {}
    SharedObject(const SharedObject&) = delete;
    SharedObject& operator=(const SharedObject&) = delete;
    ~SharedObject() {
        if (dl) dlclose(dl);
    }
};

struct CUmod_st {
    std::shared_ptr<SharedObject> so;
    const padsim_module* pm = nullptr;
    std::string program;
    std::vector<std::unique_ptr<CUfunc_st>> funcs;
};

struct CUgraph_st {
    std::shared_ptr<Nodes> nodes;
};
struct CUgraphExec_st {
    std::shared_ptr<const Nodes> nodes;
};

// The primary context of device 0: all state of the simulated device.
struct CUctx_st {
    int refs = 0;
    int sticky = 0;
    std::string sticky_msg;
    std::map<uint64_t, Alloc> dev, pinned;
    std::map<uint64_t, Alloc> quarantine;  // freed blocks, kept out of reuse for a while
    std::deque<uint64_t> quarantine_order;
    uint64_t quarantine_bytes = 0;
    uint64_t used = 0;
    std::shared_ptr<CUstream_st> legacy;
    std::map<CUstream_st*, std::shared_ptr<CUstream_st>> streams;  // created streams (not legacy)
    std::map<CUevent_st*, std::unique_ptr<CUevent_st>> events;
    std::map<CUmod_st*, std::unique_ptr<CUmod_st>> modules;
    std::set<CUfunc_st*> funcs;
    std::map<CUgraph_st*, std::unique_ptr<CUgraph_st>> graphs;
    std::map<CUgraphExec_st*, std::unique_ptr<CUgraphExec_st>> execs;
    std::vector<std::shared_ptr<Capture>> caps;  // active captures
};

namespace {

CUctx_st g;
thread_local CUctx_st* t_cur = nullptr;

// set_sticky makes code the context's sticky error (the first one wins, as
// on hardware) and prints its message once.
void set_sticky(int code, const std::string& m) {
    message(m);
    if (g.sticky) return;
    g.sticky = code;
    g.sticky_msg = m;
    if (!cfg.quiet) fprintf(stderr, "cudasim: %s\n", m.c_str());
}

// ---- Range checks ---------------------------------------------------------

bool inside(const Alloc& a, uint64_t p, uint64_t n) {
    return p >= a.base && p <= a.base + a.size && n <= a.base + a.size - p;
}

// owner returns the allocation of m whose block holds p (end inclusive), or null.
const Alloc* owner(const std::map<uint64_t, Alloc>& m, uint64_t p) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) return nullptr;
    --it;
    return p <= it->second.base + it->second.size ? &it->second : nullptr;
}

// live returns the live device or pinned allocation holding [p, p+n), or null.
const Alloc* live(uint64_t p, uint64_t n, bool allow_pinned = true) {
    const Alloc* a = owner(g.dev, p);
    if (a && inside(*a, p, n)) return a;
    if (allow_pinned) {
        a = owner(g.pinned, p);
        if (a && inside(*a, p, n)) return a;
    }
    return nullptr;
}

// explain says why [p, p+n) is not a valid device range.
std::string explain(uint64_t p, uint64_t n) {
    std::string s = fmt("0x%llx (%llu bytes) is not inside one live device allocation", (unsigned long long)p,
                        (unsigned long long)n);
    if (const Alloc* a = owner(g.dev, p))
        return s + fmt(": it starts %llu bytes into the allocation at 0x%llx (%llu bytes) and runs %llu bytes past its end",
                       (unsigned long long)(p - a->base), (unsigned long long)a->base, (unsigned long long)a->size,
                       (unsigned long long)(p + n - a->base - a->size));
    if (const Alloc* a = owner(g.pinned, p))
        return s + fmt(": it starts inside the pinned host block at 0x%llx (%llu bytes) and runs past its end",
                       (unsigned long long)a->base, (unsigned long long)a->size);
    if (const Alloc* a = owner(g.quarantine, p))
        return s + fmt(": it lies in the %s at 0x%llx (%llu bytes), freed earlier (use after free)",
                       a->pinned ? "pinned host block" : "allocation", (unsigned long long)a->base,
                       (unsigned long long)a->size);
    // The nearest live allocation, before or after.
    const Alloc* best = nullptr;
    uint64_t dist = ~0ull;
    auto it = g.dev.upper_bound(p);
    if (it != g.dev.end() && it->second.base - p < dist) best = &it->second, dist = it->second.base - p;
    if (it != g.dev.begin()) {
        --it;
        uint64_t d = p - (it->second.base + it->second.size);
        if (d < dist) best = &it->second, dist = d;
    }
    if (!best) return s + ": there are no live allocations";
    return s + fmt("; nearest allocation: 0x%llx (%llu bytes), %llu bytes %s it", (unsigned long long)best->base,
                   (unsigned long long)best->size, (unsigned long long)dist, best->base > p ? "before" : "after");
}

// check_range checks a device range named by what; null with 0 bytes is
// allowed (an empty workspace).
int check_range(uint64_t p, uint64_t n, const std::string& what, std::string* msg) {
    if (p == 0 && n == 0) return CUDA_SUCCESS;
    if (live(p, n)) return CUDA_SUCCESS;
    std::string m = what + ": " + explain(p, n);
    if (msg) *msg = m;
    return fail(CUDA_ERROR_INVALID_VALUE, m);
}

// Host side of a copy: pinned (inside one pinned block), pageable, or a
// device address (an error: the host and device sides were swapped).
enum HostKind { HOST_PAGEABLE, HOST_PINNED, HOST_DEVICE };
HostKind host_kind(const void* h, uint64_t n) {
    uint64_t p = (uint64_t)h;
    if (const Alloc* a = owner(g.pinned, p); a && inside(*a, p, n)) return HOST_PINNED;
    if (owner(g.dev, p) && p < owner(g.dev, p)->base + owner(g.dev, p)->size) return HOST_DEVICE;
    return HOST_PAGEABLE;
}

// redzone_damage returns how far past the end (after=true) or before the
// start damage reaches in a's redzones, restoring the canary; 0 if intact.
uint64_t redzone_damage(const Alloc& a, bool after) {
    uint8_t* lo = after ? (uint8_t*)a.base + a.size : (uint8_t*)a.raw;
    uint8_t* hi = after ? (uint8_t*)a.raw + a.rawsize : (uint8_t*)a.base;
    uint64_t reach = 0;
    for (uint8_t* q = lo; q < hi; q++)
        if (*q != kCanary) {
            reach = after ? (uint64_t)(q - lo) + 1 : std::max<uint64_t>(reach, (uint64_t)(hi - q));
            *q = kCanary;
        }
    return reach;
}

// check_redzones checks the redzones of the device allocation holding p;
// who names the culprit ("kernel k" ...), arg the argument.
int check_redzones(uint64_t p, const std::string& who, const std::string& arg, std::string& msg) {
    const Alloc* a = owner(g.dev, p);
    if (!a) return 0;
    if (uint64_t n = redzone_damage(*a, true)) {
        msg = fmt("%s wrote %llu bytes past the end of the allocation at 0x%llx (%llu bytes) passed as %s", who.c_str(),
                  (unsigned long long)n, (unsigned long long)a->base, (unsigned long long)a->size, arg.c_str());
        return CUDA_ERROR_ILLEGAL_ADDRESS;
    }
    if (uint64_t n = redzone_damage(*a, false)) {
        msg = fmt("%s wrote %llu bytes before the start of the allocation at 0x%llx (%llu bytes) passed as %s",
                  who.c_str(), (unsigned long long)n, (unsigned long long)a->base, (unsigned long long)a->size,
                  arg.c_str());
        return CUDA_ERROR_ILLEGAL_ADDRESS;
    }
    return 0;
}

// ---- Running queued work ----------------------------------------------------

bool dep_done(const Dep& d) { return d.s->done >= d.seq; }
bool ready(const CUstream_st* s) {
    if (s->q.empty()) return false;
    for (const Dep& d : s->q.front().deps)
        if (!dep_done(d)) return false;
    return true;
}

// run_work runs one piece of work (a queued op or a graph node) and returns
// its simulated duration; a failure becomes the sticky error. After a
// sticky error nothing runs any more, as on a faulted GPU.
double run_work(Work& w) {
    if (g.sticky) return 0;
    std::string msg;
    double est = 0, t0 = now_ms();
    in_run++;
    int r = w.run(msg, est);
    in_run--;
    if (r) set_sticky(r, msg.empty() ? w.name + " failed" : msg);
    return std::max(now_ms() - t0, est);
}

// run_front runs the first op of s; its dependencies must be complete.
void run_front(CUstream_st* s) {
    Op op = std::move(s->q.front());
    s->q.pop_front();
    double start = std::max(s->clock, op.enq_ms);
    for (const Dep& d : op.deps) start = std::max(start, d.mark ? d.mark->t : d.s->clock);
    double dur = op.work ? run_work(*op.work) : 0;
    s->clock = start + dur;
    if (op.mark) {
        op.mark->t = s->clock;
        op.mark->ran = true;
    }
    s->done++;
    s->polls = 0;
}

// run_to runs s until it has completed target ops, first running the
// prefix of other streams its ops wait for. Dependencies always point at
// ops enqueued earlier, so this terminates.
void run_to(CUstream_st* s, uint64_t target) {
    while (s->done < target && !s->q.empty()) {
        for (size_t i = 0; i < s->q.front().deps.size(); i++) {
            Dep d = s->q.front().deps[i];
            if (!dep_done(d)) run_to(d.s.get(), d.seq);
        }
        run_front(s);
    }
}

std::vector<std::shared_ptr<CUstream_st>> all_streams() {
    std::vector<std::shared_ptr<CUstream_st>> v;
    if (g.legacy) v.push_back(g.legacy);
    for (auto& kv : g.streams) v.push_back(kv.second);
    return v;
}

void sync_all() {
    for (auto& s : all_streams()) run_to(s.get(), s->enq);
}

// random_tick (PAD_CUDASIM_SCHEDULE=random:SEED) advances a random subset
// of streams by a few ready ops each, in a random order, at each API call.
void random_tick() {
    if (cfg.sched != RANDOM || in_run || g.refs == 0) return;
    auto v = all_streams();
    std::shuffle(v.begin(), v.end(), rng);
    for (auto& s : v) {
        if (rng() & 1) continue;
        for (int k = (int)(rng() % 4); k > 0 && ready(s.get()); k--) run_front(s.get());
    }
}

// enqueue appends an op to s, adding the legacy stream's implicit
// synchronisation: an op on the legacy stream waits for all blocking
// streams, an op on a blocking stream waits for the legacy stream.
void enqueue(CUstream_st* s, std::shared_ptr<Work> w, std::vector<Dep> deps, std::shared_ptr<Mark> mark) {
    if (s->legacy) {
        for (auto& kv : g.streams)
            if (kv.second->blocking && kv.second->done < kv.second->enq) deps.push_back({kv.second, kv.second->enq, nullptr});
    } else if (s->blocking && g.legacy->done < g.legacy->enq) {
        deps.push_back({g.legacy, g.legacy->enq, nullptr});
    }
    Op op;
    op.work = std::move(w);
    op.deps = std::move(deps);
    op.mark = std::move(mark);
    op.enq_ms = now_ms();
    s->q.push_back(std::move(op));
    s->enq++;
    if (cfg.sched == EAGER) run_to(s, s->enq);
}

// ---- Capture rules --------------------------------------------------------

void invalidate(Capture& c) { c.invalid = true; }

// unsafe_check: calls that CUDA forbids while a capture could be affected
// (synchronising or allocating calls): any GLOBAL-mode capture, or a
// THREAD_LOCAL one begun on this thread. all_modes: relaxed ones too.
int unsafe_check(const char* call, bool all_modes = false) {
    bool hit = false;
    for (auto& c : g.caps)
        if (all_modes || c->mode == 0 || (c->mode == 1 && c->thread == std::this_thread::get_id())) {
            invalidate(*c);
            hit = true;
        }
    if (!hit) return 0;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                fmt("%s is not permitted while a stream is being captured (the capture is invalidated)", call));
}

// implicit_check: using the legacy stream while a blocking stream captures.
int implicit_check(const char* call) {
    bool hit = false;
    for (auto& c : g.caps)
        for (CUstream_st* s : c->streams)
            if (s->blocking) {
                invalidate(*c);
                hit = true;
                break;
            }
    if (!hit) return 0;
    return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
                fmt("%s uses the legacy stream while a blocking stream is being captured (the capture is invalidated)", call));
}

// resolve maps a stream handle to the stream, applying the legacy stream's
// capture rule.
int resolve(CUstream h, CUstream_st** out, const char* call) {
    uintptr_t v = (uintptr_t)h;
    if (v == 0 || v == 1) {  // 0 and CU_STREAM_LEGACY
        if (int r = implicit_check(call)) return r;
        *out = g.legacy.get();
        return 0;
    }
    if (v == 2) return fail(CUDA_ERROR_NOT_SUPPORTED, fmt("%s: CU_STREAM_PER_THREAD is not simulated", call));
    auto it = g.streams.find(h);
    if (it == g.streams.end()) return fail(CUDA_ERROR_INVALID_HANDLE, fmt("%s: %p is not a live stream", call, (void*)h));
    *out = h;
    return 0;
}

// submit routes the work of an async call: a node of the graph while s
// captures, else an op queued on s.
int submit(CUstream_st* s, std::shared_ptr<Work> w) {
    if (s->cap) {
        if (s->cap->invalid)
            return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, w->name + ": the capture of this stream was invalidated earlier");
        s->cap->nodes.push_back({std::move(w), s->tail});
        s->tail = {(int)s->cap->nodes.size() - 1};
        return 0;
    }
    enqueue(s, std::move(w), {}, nullptr);
    return 0;
}

void end_capture(const std::shared_ptr<Capture>& c) {
    for (CUstream_st* s : c->streams) {
        s->cap.reset();
        s->tail.clear();
    }
    c->streams.clear();
    c->active = false;
    g.caps.erase(std::remove(g.caps.begin(), g.caps.end(), c), g.caps.end());
}

// ---- Work kinds -------------------------------------------------------------

// Bandwidths of the simulated device for duration estimates (bytes per ms).
constexpr double kDeviceBW = 2.0e9, kHostBW = 2.5e7, kOpOverhead = 0.002;

struct CopyWork : Work {
    uint64_t dst, src, n;
    bool dst_dev, src_dev;          // which sides are device ranges (checked again at run)
    bool host_pinned = false;       // the host side must still be pinned at run
    std::vector<uint8_t> snapshot;  // pageable HtoD: the source as it was at the call
    int run(std::string& msg, double& est) override {
        const char* what[2] = {"destination", "source"};
        uint64_t ends[2] = {dst, src};
        bool dev[2] = {dst_dev, src_dev};
        for (int i = 0; i < 2; i++) {
            if (dev[i] && !live(ends[i], n)) {
                msg = name + ": " + what[i] + " " + explain(ends[i], n) + " when the copy ran";
                return CUDA_ERROR_ILLEGAL_ADDRESS;
            }
            if (!dev[i] && host_pinned && !live(ends[i], n)) {
                msg = name + ": the pinned host " + what[i] + " was freed before the copy ran";
                return CUDA_ERROR_ILLEGAL_ADDRESS;
            }
        }
        memmove((void*)dst, snapshot.empty() ? (const void*)src : snapshot.data(), n);
        est = kOpOverhead + n / (dst_dev && src_dev ? kDeviceBW : kHostBW);
        return 0;
    }
};

struct MemsetWork : Work {
    uint64_t dst, count;
    uint32_t value;
    int run(std::string& msg, double& est) override {
        if (!live(dst, 4 * count)) {
            msg = name + ": " + explain(dst, 4 * count) + " when the memset ran";
            return CUDA_ERROR_ILLEGAL_ADDRESS;
        }
        uint32_t* p = (uint32_t*)dst;
        for (uint64_t i = 0; i < count; i++) p[i] = value;
        est = kOpOverhead + 4 * count / kDeviceBW;
        return 0;
    }
};

struct KernelWork : Work {
    const padsim_kernel* k;
    std::shared_ptr<SharedObject> so;  // keeps k's code mapped until the work is gone
    uint32_t grid[3], block[3], dyn;
    std::unique_ptr<uint64_t[]> storage;  // the parameter bytes, copied at the launch
    std::vector<void*> args;
    std::vector<uint64_t> ptrs;  // pointer arguments (0: not a pointer or null)
    bool fault = false;          // launch@N: fail when it runs
    int run(std::string& msg, double& est) override {
        if (fault) {
            fault = false;
            msg = "kernel " + name + ": launch failed (fault injected by PAD_CUDASIM_FAULT)";
            return CUDA_ERROR_LAUNCH_FAILED;
        }
        for (size_t i = 0; i < ptrs.size(); i++)
            if (ptrs[i] && !live(ptrs[i], 0)) {
                msg = fmt("kernel %s: argument %zu: ", name.c_str(), i) + explain(ptrs[i], 0) + " when the kernel ran";
                return CUDA_ERROR_ILLEGAL_ADDRESS;
            }
        uint32_t seed = cfg.sched == RANDOM ? (uint32_t)(rng() | 1) : 0;
        char err[1024] = "";
        int r = k->run(grid, block, dyn, args.data(), seed, cfg.engine, err, sizeof err);
        if (r) {
            msg = "kernel " + name + ": " + (err[0] ? err : "the emulation failed");
            return CUDA_ERROR_LAUNCH_FAILED;
        }
        for (size_t i = 0; i < ptrs.size(); i++)
            if (ptrs[i])
                if (int rr = check_redzones(ptrs[i], "kernel " + name, fmt("argument %zu", i), msg)) return rr;
        est = kOpOverhead;
        return 0;
    }
};

// LibWork is an op of cuDNN or cuBLAS (padsim_enqueue). free_fn runs when
// the last op or graph node holding it is gone.
struct LibWork : Work {
    int kind = 0;
    padsim_op_fn fn = nullptr;
    void* arg = nullptr;
    void (*free_fn)(void*) = nullptr;
    std::vector<uint64_t> ranges;  // address, bytes pairs
    ~LibWork() override {
        if (free_fn) free_fn(arg);
    }
    int run(std::string& msg, double& est) override {
        for (size_t i = 0; i + 1 < ranges.size(); i += 2)
            if (!(ranges[i] == 0 && ranges[i + 1] == 0) && !live(ranges[i], ranges[i + 1])) {
                msg = fmt("%s: range %zu: ", name.c_str(), i / 2) + explain(ranges[i], ranges[i + 1]) + " when it ran";
                return CUDA_ERROR_ILLEGAL_ADDRESS;
            }
        char buf[1024] = "";
        int r = fn(arg, buf, sizeof buf);
        if (r) {
            msg = buf[0] ? std::string(buf) : name + " failed";
            return r;
        }
        for (size_t i = 0; i + 1 < ranges.size(); i += 2)
            if (ranges[i])
                if (int rr = check_redzones(ranges[i], name, fmt("range %zu", i / 2), msg)) return rr;
        est = kOpOverhead;
        return 0;
    }
};

// GraphWork is one replay of an instantiated graph: its nodes run in
// capture order, or (random schedule) in a random topological order.
struct GraphWork : Work {
    std::shared_ptr<const Nodes> nodes;
    int run(std::string& msg, double& est) override {
        const Nodes& ns = *nodes;
        std::vector<int> order;
        if (cfg.sched != RANDOM) {
            for (size_t i = 0; i < ns.size(); i++) order.push_back((int)i);
        } else {
            std::vector<int> indeg(ns.size());
            std::vector<std::vector<int>> outs(ns.size());
            for (size_t i = 0; i < ns.size(); i++)
                for (int d : ns[i].deps) {
                    indeg[i]++;
                    outs[d].push_back((int)i);
                }
            std::vector<int> readyv;
            for (size_t i = 0; i < ns.size(); i++)
                if (!indeg[i]) readyv.push_back((int)i);
            while (!readyv.empty()) {
                size_t j = rng() % readyv.size();
                int v = readyv[j];
                readyv.erase(readyv.begin() + j);
                order.push_back(v);
                for (int o : outs[v])
                    if (--indeg[o] == 0) readyv.push_back(o);
            }
        }
        double total = 0;
        for (int i : order) {
            count(C_GRAPH_NODES);
            std::string m;
            double e = 0, t0 = now_ms();
            int r = ns[i].work->run(m, e);
            total += std::max(now_ms() - t0, e);
            if (r) {
                msg = fmt("graph node %d (%s): ", i, ns[i].work->name.c_str()) + m;
                return r;
            }
        }
        est = total;
        return 0;
    }
};

// ---- Context lifetime ---------------------------------------------------------

// Device memory is mapped, each block ending in a page that cannot be
// touched (kGuard): a kernel reading or writing past the tail redzone
// faults at once (the process ends with SIGSEGV at the address, where
// hardware would report an illegal address), instead of reading another
// allocation's data. Freed blocks in quarantine lose all access, so that
// a late read faults too. Mappings are reused by size (g_pool), so that
// the pages stay resident and the NaN fill costs no page faults.
constexpr uint64_t kGuard = 4096;
std::multimap<uint64_t, void*> g_pool;  // accessible size → mapping, protected
uint64_t g_pool_bytes = 0;
constexpr uint64_t kPoolBytes = 1ull << 30;

void* map_block(uint64_t access) {
    auto it = g_pool.find(access);
    if (it != g_pool.end()) {
        void* m = it->second;
        g_pool.erase(it);
        g_pool_bytes -= access;
        if (mprotect(m, access, PROT_READ | PROT_WRITE) == 0) return m;
        munmap(m, access + kGuard);
    }
    void* m = mmap(nullptr, access + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    if (mprotect((uint8_t*)m + access, kGuard, PROT_NONE) != 0) {
        munmap(m, access + kGuard);
        return nullptr;
    }
    return m;
}

void free_block(const Alloc& a) {
    if (!a.mapped) {
        free(a.raw);
        return;
    }
    if (g_pool_bytes + a.rawsize <= kPoolBytes && mprotect(a.raw, a.rawsize, PROT_NONE) == 0) {
        g_pool.emplace(a.rawsize, a.raw);
        g_pool_bytes += a.rawsize;
        return;
    }
    munmap(a.raw, a.rawsize + kGuard);
}

void quarantine(const Alloc& a) {
    // A freed device block loses all access; host blocks are poisoned
    // where that is cheap, huge ones go back at once.
    if (a.mapped) mprotect(a.raw, a.rawsize, PROT_NONE);
    else if (a.size <= (64ull << 20)) memset((void*)a.base, kPoison, a.size);
    g.quarantine[a.base] = a;
    g.quarantine_order.push_back(a.base);
    g.quarantine_bytes += a.rawsize;
    while (!g.quarantine_order.empty() &&
           (g.quarantine_bytes > kQuarantineBytes || g.quarantine_order.size() > kQuarantineBlocks)) {
        auto it = g.quarantine.find(g.quarantine_order.front());
        g.quarantine_order.pop_front();
        g.quarantine_bytes -= it->second.rawsize;
        free_block(it->second);
        g.quarantine.erase(it);
    }
}

void create_ctx() {
    g.sticky = 0;
    g.used = 0;
    g.legacy = std::make_shared<CUstream_st>();
    g.legacy->legacy = true;
    g.legacy->clock = now_ms();
    for (auto& c : g_counters) c.store(0);
}

// destroy_ctx runs the remaining work, reports what the program leaked
// and frees everything.
void destroy_ctx() {
    sync_all();
    for (auto c : std::vector<std::shared_ptr<Capture>>(g.caps)) end_capture(c);
    uint64_t bytes = 0, pbytes = 0;
    std::string list;
    int shown = 0;
    for (auto& kv : g.dev) {
        bytes += kv.second.size;
        if (shown++ < 8) list += fmt("%s0x%llx (%llu bytes)", list.empty() ? "" : ", ", (unsigned long long)kv.first,
                                     (unsigned long long)kv.second.size);
    }
    if (g.dev.size() > 8) list += ", ...";
    for (auto& kv : g.pinned) pbytes += kv.second.size;
    std::string more;
    auto add = [&](size_t n, const char* what) {
        if (n) more += fmt("; %zu %s%s", n, what, n == 1 ? "" : "s");
    };
    if (!g.pinned.empty()) more += fmt("; %zu pinned host block%s (%llu bytes)", g.pinned.size(), g.pinned.size() == 1 ? "" : "s",
                                       (unsigned long long)pbytes);
    add(g.streams.size(), "stream");
    add(g.events.size(), "event");
    add(g.modules.size(), "module");
    add(g.graphs.size(), "graph");
    add(g.execs.size(), "graph exec");
    if (!g.dev.empty() || !more.empty()) {
        std::string m = fmt("context destroyed with %zu leaked allocations (%llu bytes)", g.dev.size(),
                            (unsigned long long)bytes) +
                        (list.empty() ? "" : ": " + list) + more;
        message(m);
        if (!cfg.quiet) fprintf(stderr, "cudasim: %s\n", m.c_str());
    }
    for (auto& kv : g.dev) free_block(kv.second);
    for (auto& kv : g.pinned) free_block(kv.second);
    for (auto& kv : g.quarantine) free_block(kv.second);
    g.dev.clear();
    g.pinned.clear();
    g.quarantine.clear();
    g.quarantine_order.clear();
    g.quarantine_bytes = 0;
    g.used = 0;
    g.streams.clear();
    g.events.clear();
    g.modules.clear();
    g.funcs.clear();
    g.graphs.clear();
    g.execs.clear();
    g.legacy.reset();
    g.sticky = 0;
    g.sticky_msg.clear();
}

// ---- Entry checks -------------------------------------------------------------

int enter_device(CUdevice d) {
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (d != 0) return fail(CUDA_ERROR_INVALID_DEVICE, fmt("device %d does not exist (one simulated device)", d));
    return 0;
}

// enter_ctx is the gate of every call that touches the context.
int enter_ctx() {
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (t_cur != &g || g.refs == 0)
        return fail(CUDA_ERROR_INVALID_CONTEXT, "no current context on this thread (cuCtxSetCurrent)");
    random_tick();
    if (g.sticky) message(g.sticky_msg);
    return g.sticky;
}

#define ENTER_CTX \
    ENTER;        \
    if (int r_ = enter_ctx()) return r_
#define ENTER_CTX_AS(name) \
    ENTER_AS(name);        \
    if (int r_ = enter_ctx()) return r_

bool valid_event(CUevent e) { return e && g.events.count(e); }

// ---- Module images ----------------------------------------------------------

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// ImageReader reads an image either raw or hex-encoded (PTX), never past
// the first byte that cannot belong to it.
struct ImageReader {
    const uint8_t* raw = nullptr;
    const char* hex = nullptr;
    uint64_t off = 0;
    bool get(uint8_t* out, uint64_t n) {
        for (uint64_t i = 0; i < n; i++, off++) {
            if (raw) {
                out[i] = raw[off];
            } else {
                int hi = hexval(hex[2 * off]);
                if (hi < 0) return false;
                int lo = hexval(hex[2 * off + 1]);
                if (lo < 0) return false;
                out[i] = (uint8_t)(hi * 16 + lo);
            }
        }
        return true;
    }
};

bool has_prefix(const char* p, const char* prefix) {
    for (; *prefix; p++, prefix++)
        if (*p != *prefix) return false;  // stops at a NUL of p too
    return true;
}

int load_module(const void* image, CUmod_st** out) {
    const char* text = (const char*)image;
    ImageReader rd;
    bool ptx = has_prefix(text, PADSIM_PTX_MAGIC);
    int bad = ptx ? CUDA_ERROR_INVALID_PTX : CUDA_ERROR_INVALID_IMAGE;
    if (ptx) {
        const char* p = text;
        const char* line = nullptr;
        for (; *p; p++)
            if ((p == text || p[-1] == '\n') && has_prefix(p, "// image ")) {
                line = p + 9;
                break;
            }
        if (!line) return fail(bad, "cuModuleLoadData: PTX without an \"// image \" line");
        rd.hex = line;
    } else {
        rd.raw = (const uint8_t*)image;
    }
    // Magic: compared byte by byte, so a short text stops at its NUL.
    char magic[16];
    for (int i = 0; i < 16; i++) {
        if (!rd.get((uint8_t*)&magic[i], 1) || magic[i] != PADSIM_IMAGE_MAGIC[i])
            return fail(bad, "cuModuleLoadData: not a module image (no cudasim cubin or PTX magic)");
    }
    uint32_t h = 0;
    if (!rd.get((uint8_t*)&h, 4) || h > (1u << 20)) return fail(bad, "cuModuleLoadData: corrupt image header length");
    std::string header(h, '\0');
    if (!rd.get((uint8_t*)header.data(), h)) return fail(bad, "cuModuleLoadData: truncated image header");
    uint64_t sz = 0;
    if (!rd.get((uint8_t*)&sz, 8) || sz == 0 || sz > (1ull << 32)) return fail(bad, "cuModuleLoadData: corrupt shared-object length");
    std::vector<uint8_t> so(sz);
    if (!rd.get(so.data(), sz)) return fail(bad, "cuModuleLoadData: truncated image");
    std::string arch, program;
    size_t pos = 0;
    while (pos < header.size()) {
        size_t nl = header.find('\n', pos);
        if (nl == std::string::npos) nl = header.size();
        std::string kv = header.substr(pos, nl - pos);
        pos = nl + 1;
        if (kv.rfind("arch=", 0) == 0) arch = kv.substr(5);
        if (kv.rfind("program=", 0) == 0) program = kv.substr(8);
    }
    if (arch.empty()) return fail(bad, "cuModuleLoadData: image header names no arch");
    if (arch != "sm_90" && arch != "sm_90a" && arch != "compute_90")
        return fail(CUDA_ERROR_NO_BINARY_FOR_GPU, "cuModuleLoadData: image built for " + arch + ", the device is sm_90");
    if (memcmp(so.data(), "\x7f" "ELF", 4) != 0) return fail(bad, "cuModuleLoadData: the image's shared object is not ELF");
    // The shared object goes into a file of its own with a name never used
    // before in this process, is opened, and is unlinked at once (the
    // mapping stays). A reused name would not do: the dynamic loader
    // treats an object whose path it has loaded before as already loaded
    // (a /proc/self/fd/N path recurs as soon as N is closed and reused).
    static std::atomic<uint64_t> serial{0};
    const char* tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir) tmpdir = "/tmp";
    std::string path = fmt("%s/padsim-module-%d-%llu.so", tmpdir, (int)getpid(), (unsigned long long)++serial);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(CUDA_ERROR_INVALID_IMAGE, fmt("cuModuleLoadData: creating %s: %s", path.c_str(), strerror(errno)));
    for (uint64_t w = 0; w < sz;) {
        ssize_t k = write(fd, so.data() + w, sz - w);
        if (k <= 0) {
            close(fd);
            unlink(path.c_str());
            return fail(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: writing the image's shared object failed");
        }
        w += (uint64_t)k;
    }
    close(fd);
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    unlink(path.c_str());
    if (!dl) return fail(CUDA_ERROR_INVALID_IMAGE, std::string("cuModuleLoadData: dlopen: ") + dlerror());
    auto fn = (padsim_module_fn)dlsym(dl, "padsim_module_v1");
    const padsim_module* pm = fn ? fn() : nullptr;
    if (!pm || pm->abi != PADSIM_MODULE_ABI || (pm->nkernels && !pm->kernels)) {
        dlclose(dl);
        return fail(CUDA_ERROR_INVALID_IMAGE, fmt("cuModuleLoadData: the image's shared object has no padsim_module_v1 of ABI %d",
                                                  PADSIM_MODULE_ABI));
    }
    auto m = std::make_unique<CUmod_st>();
    m->so = std::make_shared<SharedObject>(dl);
    m->pm = pm;
    m->program = program;
    for (uint32_t i = 0; i < pm->nkernels; i++) {
        auto f = std::make_unique<CUfunc_st>();
        f->mod = m.get();
        f->k = &pm->kernels[i];
        f->max_dyn = std::max<int>(0, kSharedDefault - (int)f->k->static_smem);
        g.funcs.insert(f.get());
        m->funcs.push_back(std::move(f));
    }
    *out = m.get();
    g.modules[m.get()] = std::move(m);
    return 0;
}

// ---- Copies ---------------------------------------------------------------------

enum Dir { HTOD, DTOH, DTOD };

// transfer_stream finds the stream of a copy or memset: a blocking one
// (sync) runs on the legacy stream, which a capture forbids touching; an
// async one on h.
int transfer_stream(bool sync, CUstream h, const char* call, CUstream_st** s) {
    if (sync) {
        if (int r = unsafe_check(call)) return r;
    }
    return resolve(sync ? nullptr : h, s, call);
}

// copy is every cuMemcpy*: sync says whether it is a blocking call (on the
// legacy stream); h the stream of an async one.
int do_copy(Dir dir, uint64_t dst, uint64_t src, uint64_t n, bool sync, CUstream h, const char* call) {
    ENTER_CTX_AS(call);
    CUstream_st* s;
    if (int r = transfer_stream(sync, h, call, &s)) return r;
    if (n == 0) return 0;
    uint64_t dev_end = dir == DTOH ? src : dst;
    if (int r = check_range(dev_end, n, fmt("%s: %s", call, dir == DTOH ? "source" : "destination"), nullptr)) return r;
    if (dir == DTOD) {
        if (int r = check_range(src, n, fmt("%s: source", call), nullptr)) return r;
    }
    uint64_t host = dir == HTOD ? src : dir == DTOH ? dst : 0;
    HostKind hk = HOST_PINNED;
    if (dir != DTOD) {
        if (!host) return fail(CUDA_ERROR_INVALID_VALUE, fmt("%s: null host pointer", call));
        hk = host_kind((void*)host, n);
        if (hk == HOST_DEVICE)
            return fail(CUDA_ERROR_INVALID_VALUE, fmt("%s: the host pointer 0x%llx is a device address", call, (unsigned long long)host));
    }
    if (!sync && hk == HOST_PAGEABLE && s->cap) {
        invalidate(*s->cap);
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                    fmt("%s: capturing a copy from or to pageable host memory is not permitted (use pinned memory)", call));
    }
    auto w = std::make_shared<CopyWork>();
    w->name = call;
    w->dst = dst;
    w->src = src;
    w->n = n;
    w->dst_dev = dir != DTOH;
    w->src_dev = dir != HTOD;
    w->host_pinned = hk == HOST_PINNED && dir != DTOD;
    switch (dir) {
        case HTOD: count(C_HTOD_COPIES), count(C_HTOD_BYTES, n); break;
        case DTOH: count(C_DTOH_COPIES), count(C_DTOH_BYTES, n); break;
        case DTOD: count(C_DTOD_COPIES), count(C_DTOD_BYTES, n); break;
    }
    if (!sync && hk == HOST_PAGEABLE) {
        count(C_PAGEABLE_ASYNC);
        // As CUDA: a pageable HtoD is staged at the call, a pageable DtoH
        // is synchronous.
        if (dir == HTOD) w->snapshot.assign((const uint8_t*)src, (const uint8_t*)src + n);
    }
    if (int r = submit(s, w)) return r;
    // Blocking calls wait for the legacy stream, except DtoD copies between
    // device buffers, which CUDA documents as asynchronous to the host.
    bool wait = (sync && dir != DTOD) || (!sync && hk == HOST_PAGEABLE && dir == DTOH);
    if (wait) {
        count(C_HOST_SYNCS);
        run_to(s, s->enq);
    }
    return g.sticky;
}

int memset32(uint64_t dst, uint32_t v, uint64_t n, bool sync, CUstream h, const char* call) {
    ENTER_CTX_AS(call);
    CUstream_st* s;
    if (int r = transfer_stream(sync, h, call, &s)) return r;
    if (n == 0) return 0;
    if (dst % 4) return fail(CUDA_ERROR_INVALID_VALUE, fmt("%s: 0x%llx is not 4-byte aligned", call, (unsigned long long)dst));
    if (n > (~0ull >> 2)) return fail(CUDA_ERROR_INVALID_VALUE, fmt("%s: %llu words", call, (unsigned long long)n));
    if (int r = check_range(dst, 4 * n, fmt("%s: destination", call), nullptr)) return r;
    auto w = std::make_shared<MemsetWork>();
    w->name = call;
    w->dst = dst;
    w->count = n;
    w->value = v;
    count(C_MEMSETS);
    if (int r = submit(s, w)) return r;
    // A blocking memset of device memory is asynchronous to the host (as
    // CUDA documents); of pinned host memory it completes before returning.
    if (sync && owner(g.pinned, dst)) {
        count(C_HOST_SYNCS);
        run_to(s, s->enq);
    }
    return g.sticky;
}

}  // namespace

// =============================================================================
// The exported driver API
// =============================================================================

// ---- Initialisation, errors, devices ----------------------------------------

API CUresult cuInit(unsigned int flags) {
    ENTER;
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuInit: flags must be 0");
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (!g_inited) {
        const char* s = getenv("PAD_CUDASIM_SCHEDULE");
        if (s && !strcmp(s, "eager")) cfg.sched = EAGER;
        else if (s && !strncmp(s, "random", 6)) {
            cfg.sched = RANDOM;
            cfg.seed = s[6] == ':' ? strtoull(s + 7, nullptr, 10) : 1;
            rng.seed(cfg.seed);
        } else if (s && *s && strcmp(s, "lazy") != 0) {
            fprintf(stderr, "cudasim: PAD_CUDASIM_SCHEDULE=%s is not lazy, eager or random:SEED; using lazy\n", s);
        }
        const char* e = getenv("PAD_CUDASIM_ENGINE");
        cfg.engine = e && !strcmp(e, "threads") ? PADSIM_ENGINE_THREADS : PADSIM_ENGINE_FIBERS;
        const char* q = getenv("PAD_CUDASIM_QUIET");
        cfg.quiet = q && !strcmp(q, "1");
        parse_faults();
        g_inited = true;
    }
    return CUDA_SUCCESS;
}

API CUresult cuDriverGetVersion(int* v) {
    ENTER;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    *v = PADSIM_DRIVER_VERSION;
    return CUDA_SUCCESS;
}

API CUresult cuGetErrorName(CUresult code, const char** p) {
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    const ErrName* e = find_error(code);
    *p = e ? e->name : nullptr;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuGetErrorString(CUresult code, const char** p) {
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    const ErrName* e = find_error(code);
    *p = e ? e->text : nullptr;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuDeviceGetCount(int* n) {
    ENTER;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (!n) return CUDA_ERROR_INVALID_VALUE;
    *n = 1;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    ENTER;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (!d) return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0) return fail(CUDA_ERROR_INVALID_DEVICE, fmt("cuDeviceGet: ordinal %d (one simulated device)", ordinal));
    *d = 0;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    ENTER;
    if (int r = enter_device(d)) return r;
    if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", PADSIM_DEVICE_NAME);
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice d) {
    ENTER;
    if (int r = enter_device(d)) return r;
    if (!v || attr <= 0 || attr >= kAttrMax) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuDeviceGetAttribute: attribute %d", attr));
    *v = 0;
    for (const Attr& a : kAttrs)
        if (a.attr == attr) *v = a.value;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
    ENTER;
    if (int r = enter_device(d)) return r;
    if (!bytes) return CUDA_ERROR_INVALID_VALUE;
    *bytes = kTotalMem;
    return CUDA_SUCCESS;
}

// ---- Primary context ----------------------------------------------------------

API CUresult cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d) {
    ENTER;
    if (int r = enter_device(d)) return r;
    if (!ctx) return CUDA_ERROR_INVALID_VALUE;
    if (g.refs++ == 0) create_ctx();
    *ctx = &g;
    return CUDA_SUCCESS;
}

API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
    ENTER;
    if (int r = enter_device(d)) return r;
    if (g.refs == 0) return fail(CUDA_ERROR_INVALID_CONTEXT, "cuDevicePrimaryCtxRelease_v2: the primary context is not retained");
    if (--g.refs == 0) destroy_ctx();
    return CUDA_SUCCESS;
}

API CUresult cuCtxSetCurrent(CUcontext ctx) {
    ENTER;
    if (!g_inited) return CUDA_ERROR_NOT_INITIALIZED;
    if (g_lost) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (ctx && (ctx != &g || g.refs == 0))
        return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent: not a live context");
    t_cur = ctx;
    return CUDA_SUCCESS;
}

API CUresult cuCtxSynchronize(void) {
    ENTER_CTX;
    // Synchronising the device would synchronise a capturing stream: not
    // permitted in any capture mode.
    if (int r = unsafe_check("cuCtxSynchronize", true)) return r;
    count(C_HOST_SYNCS);
    sync_all();
    return g.sticky;
}

// ---- Memory -------------------------------------------------------------------

API CUresult cuMemAlloc_v2(CUdeviceptr* out, size_t bytes) {
    ENTER_CTX;
    if (int r = unsafe_check("cuMemAlloc_v2")) return r;
    if (!out || bytes == 0) return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc_v2: null result pointer or 0 bytes");
    if (fault("oom", nullptr))
        return fail(CUDA_ERROR_OUT_OF_MEMORY, fmt("cuMemAlloc_v2: %zu bytes: out of memory (fault injected by PAD_CUDASIM_FAULT)", bytes));
    uint64_t avail = kTotalMem - kContextReserve - g.used;
    uint64_t rounded = (bytes + kRedzone - 1) / kRedzone * kRedzone;
    if (bytes > avail || rounded > avail)
        return fail(CUDA_ERROR_OUT_OF_MEMORY, fmt("cuMemAlloc_v2: %zu bytes requested, %llu of %llu bytes free", bytes,
                                                  (unsigned long long)avail, (unsigned long long)kTotalMem));
    Alloc a;
    a.size = bytes;
    a.mapped = true;
    a.charged = rounded;
    // [front redzone ≥ kRedzone | the allocation | its rounding + kRedzone] then the guard page.
    a.rawsize = (rounded + 2 * kRedzone + kGuard - 1) / kGuard * kGuard;
    a.raw = map_block(a.rawsize);
    if (!a.raw) return fail(CUDA_ERROR_OUT_OF_MEMORY, fmt("cuMemAlloc_v2: %zu bytes: the host mapping behind it failed", bytes));
    a.base = (uint64_t)a.raw + a.rawsize - kRedzone - rounded;
    memset(a.raw, kCanary, a.base - (uint64_t)a.raw);
    memset((void*)a.base, 0xFF, bytes);  // uninitialised memory: NaN, not zeros
    memset((void*)(a.base + bytes), kCanary, (uint64_t)a.raw + a.rawsize - (a.base + bytes));
    g.dev[a.base] = a;
    g.used += rounded;
    count(C_ALLOCS);
    *out = a.base;
    return CUDA_SUCCESS;
}

API CUresult cuMemFree_v2(CUdeviceptr p) {
    ENTER_CTX;
    if (int r = unsafe_check("cuMemFree_v2")) return r;
    if (p == 0) return CUDA_SUCCESS;
    auto it = g.dev.find(p);
    if (it == g.dev.end()) {
        std::string why;
        if (const Alloc* a = owner(g.dev, p))
            why = fmt("an interior pointer, %llu bytes into the allocation at 0x%llx", (unsigned long long)(p - a->base),
                      (unsigned long long)a->base);
        else if (g.quarantine.count(p))
            why = "already freed (double free)";
        else if (g.pinned.count(p))
            why = "pinned host memory (free it with cuMemFreeHost)";
        else
            why = "not an allocation of cuMemAlloc";
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuMemFree_v2(0x%llx): ", (unsigned long long)p) + why);
    }
    // cuMemFree synchronises the device, as cudaFree does.
    count(C_HOST_SYNCS);
    sync_all();
    if (g.sticky) return g.sticky;
    Alloc a = it->second;
    std::string msg;
    if (int r = check_redzones(p, "something", "the allocation freed by cuMemFree_v2", msg)) set_sticky(r, msg);
    g.dev.erase(p);
    g.used -= a.charged;
    quarantine(a);
    count(C_FREES);
    return g.sticky;
}

API CUresult cuMemGetInfo_v2(size_t* free_, size_t* total) {
    ENTER_CTX;
    if (!free_ || !total) return CUDA_ERROR_INVALID_VALUE;
    *free_ = kTotalMem - kContextReserve - g.used;
    *total = kTotalMem;
    return CUDA_SUCCESS;
}

API CUresult cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
    ENTER_CTX;
    if (int r = unsafe_check("cuMemHostAlloc")) return r;
    if (!pp || bytes == 0 || (flags & ~7u))
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuMemHostAlloc(%zu bytes, flags %#x): invalid argument", bytes, flags));
    Alloc a;
    a.size = bytes;
    a.rawsize = bytes;
    a.pinned = true;
    a.flags = flags;
    if (posix_memalign(&a.raw, 4096, bytes) != 0)
        return fail(CUDA_ERROR_OUT_OF_MEMORY, fmt("cuMemHostAlloc: %zu bytes: out of memory", bytes));
    a.base = (uint64_t)a.raw;
    memset(a.raw, 0xFF, bytes);
    g.pinned[a.base] = a;
    count(C_HOST_ALLOCS);
    *pp = a.raw;
    return CUDA_SUCCESS;
}

API CUresult cuMemFreeHost(void* p) {
    ENTER_CTX;
    if (int r = unsafe_check("cuMemFreeHost")) return r;
    auto it = g.pinned.find((uint64_t)p);
    if (it == g.pinned.end()) {
        std::string why = g.quarantine.count((uint64_t)p) ? "already freed (double free)"
                          : owner(g.pinned, (uint64_t)p) ? "an interior pointer of a pinned block"
                          : g.dev.count((uint64_t)p)     ? "device memory (free it with cuMemFree)"
                                                         : "not a block of cuMemHostAlloc";
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuMemFreeHost(%p): ", p) + why);
    }
    count(C_HOST_SYNCS);  // freeing pinned memory synchronises the device
    sync_all();
    Alloc a = it->second;
    g.pinned.erase(it);
    quarantine(a);
    return g.sticky;
}

API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    return do_copy(HTOD, dst, (uint64_t)src, n, true, nullptr, "cuMemcpyHtoD_v2");
}
API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    return do_copy(DTOH, (uint64_t)dst, src, n, true, nullptr, "cuMemcpyDtoH_v2");
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    return do_copy(DTOD, dst, src, n, true, nullptr, "cuMemcpyDtoD_v2");
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
    return do_copy(HTOD, dst, (uint64_t)src, n, false, s, "cuMemcpyHtoDAsync_v2");
}
API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
    return do_copy(DTOH, (uint64_t)dst, src, n, false, s, "cuMemcpyDtoHAsync_v2");
}
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    return do_copy(DTOD, dst, src, n, false, s, "cuMemcpyDtoDAsync_v2");
}
API CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int v, size_t n) {
    return memset32(dst, v, n, true, nullptr, "cuMemsetD32_v2");
}
API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
    return memset32(dst, v, n, false, s, "cuMemsetD32Async");
}

// ---- Streams ------------------------------------------------------------------

API CUresult cuStreamCreate(CUstream* out, unsigned int flags) {
    ENTER_CTX;
    if (!out || (flags & ~1u)) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuStreamCreate: flags %#x", flags));
    auto s = std::make_shared<CUstream_st>();
    s->flags = flags;
    s->blocking = !(flags & 1);
    s->clock = now_ms();
    g.streams[s.get()] = s;
    *out = s.get();
    return CUDA_SUCCESS;
}

API CUresult cuStreamDestroy_v2(CUstream h) {
    ENTER_CTX;
    auto it = g.streams.find(h);
    if (it == g.streams.end()) return fail(CUDA_ERROR_INVALID_HANDLE, fmt("cuStreamDestroy_v2: %p is not a live stream", (void*)h));
    auto s = it->second;
    if (s->cap) {
        invalidate(*s->cap);
        s->cap->streams.erase(s.get());
        s->cap.reset();
    }
    // The work queued on a destroyed stream still completes.
    run_to(s.get(), s->enq);
    g.streams.erase(it);
    return g.sticky;
}

// refuse_capturing fails a call that would wait for or look at the work of
// a capturing stream: CUDA refuses it and invalidates the capture.
static int refuse_capturing(CUstream_st* s, const char* call) {
    if (!s->cap) return CUDA_SUCCESS;
    invalidate(*s->cap);
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, std::string(call) + " of a capturing stream (the capture is invalidated)");
}

API CUresult cuStreamSynchronize(CUstream h) {
    ENTER_CTX;
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuStreamSynchronize")) return r;
    if (int r = refuse_capturing(s, "cuStreamSynchronize")) return r;
    if (s->done < s->enq) count(C_HOST_SYNCS);  // an idle stream does not block
    run_to(s, s->enq);
    return g.sticky;
}

API CUresult cuStreamQuery(CUstream h) {
    ENTER_CTX;
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuStreamQuery")) return r;
    if (int r = refuse_capturing(s, "cuStreamQuery")) return r;
    if (s->done == s->enq) return CUDA_SUCCESS;
    // Lazy: queued work does not run because someone asks. Only a program
    // that polls a thousand times in a row gets one op of progress, so a
    // polling loop cannot hang forever.
    if (++s->polls >= 1000) {
        run_to(s, s->done + 1);
        return g.sticky ? g.sticky : s->done == s->enq ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
    }
    return CUDA_ERROR_NOT_READY;
}

API CUresult cuStreamWaitEvent(CUstream h, CUevent e, unsigned int flags) {
    ENTER_CTX;
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuStreamWaitEvent")) return r;
    if (!valid_event(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: not a live event");
    if (flags != 0) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuStreamWaitEvent: flags %#x", flags));
    count(C_STREAM_WAITS);
    if (e->in_capture) {
        auto c = e->cap;
        if (!c->active)
            return fail(CUDA_ERROR_CAPTURED_EVENT, "cuStreamWaitEvent: the event was last recorded in a capture that has ended");
        if (c->invalid) return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamWaitEvent: the event's capture was invalidated");
        if (s->legacy) {
            invalidate(*c);
            return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamWaitEvent: the legacy stream cannot join a capture");
        }
        if (!s->cap) {  // fork: s joins the capture after the event's nodes
            s->cap = c;
            s->tail = e->cap_nodes;
            c->streams.insert(s);
            return 0;
        }
        if (s->cap != c) {
            invalidate(*c);
            invalidate(*s->cap);
            return fail(CUDA_ERROR_STREAM_CAPTURE_MERGE, "cuStreamWaitEvent: would merge two separate captures");
        }
        for (int n : e->cap_nodes)  // join: s's next node also depends on the event's nodes
            if (std::find(s->tail.begin(), s->tail.end(), n) == s->tail.end()) s->tail.push_back(n);
        return 0;
    }
    if (!e->recorded) return 0;  // waiting on a never-recorded event is a no-op
    if (s->cap) {
        invalidate(*s->cap);
        return fail(CUDA_ERROR_STREAM_CAPTURE_ISOLATION,
                    "cuStreamWaitEvent: a capturing stream cannot wait on an event recorded outside the capture");
    }
    enqueue(s, nullptr, {Dep{e->s, e->seq, e->mark}}, nullptr);
    return 0;
}

// ---- Events -------------------------------------------------------------------

API CUresult cuEventCreate(CUevent* out, unsigned int flags) {
    ENTER_CTX;
    if (!out || (flags & ~7u) || ((flags & 4) && !(flags & 2)))
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuEventCreate: flags %#x", flags));
    auto e = std::make_unique<CUevent_st>();
    e->flags = flags;
    *out = e.get();
    g.events[e.get()] = std::move(e);
    return CUDA_SUCCESS;
}

API CUresult cuEventRecord(CUevent e, CUstream h) {
    ENTER_CTX;
    if (!valid_event(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventRecord: not a live event");
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuEventRecord")) return r;
    if (s->cap) {
        if (s->cap->invalid) return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuEventRecord: the capture was invalidated");
        count(C_EVENTS_RECORDED);
        e->in_capture = true;
        e->cap = s->cap;
        e->cap_nodes = s->tail;
        return 0;
    }
    count(C_EVENTS_RECORDED);
    auto mark = std::make_shared<Mark>();
    enqueue(s, nullptr, {}, mark);
    e->recorded = true;
    e->in_capture = false;
    e->cap.reset();
    e->s = s->legacy ? g.legacy : g.streams[s];
    e->seq = s->enq;
    e->mark = mark;
    return 0;
}

// captured_event reports the event last recorded in a capture.
int captured_event(CUevent e, const char* call) {
    if (!e->in_capture) return 0;
    if (e->cap->active) invalidate(*e->cap);
    return fail(CUDA_ERROR_CAPTURED_EVENT, fmt("%s: the event was last recorded in a capturing stream", call));
}

API CUresult cuEventSynchronize(CUevent e) {
    ENTER_CTX;
    if (!valid_event(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventSynchronize: not a live event");
    if (int r = captured_event(e, "cuEventSynchronize")) return r;
    if (!e->recorded) return CUDA_SUCCESS;
    // Waiting for work that is already done does not block the host: only
    // a wait that would is a host synchronisation.
    if (e->s->done < e->seq) count(C_HOST_SYNCS);
    run_to(e->s.get(), e->seq);
    return g.sticky;
}

API CUresult cuEventElapsedTime_v2(float* ms, CUevent a, CUevent b) {
    ENTER_CTX;
    if (!ms) return CUDA_ERROR_INVALID_VALUE;
    if (!valid_event(a) || !valid_event(b)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: not a live event");
    if ((a->flags | b->flags) & 2)
        return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was created with CU_EVENT_DISABLE_TIMING");
    if (int r = captured_event(a, "cuEventElapsedTime")) return r;
    if (int r = captured_event(b, "cuEventElapsedTime")) return r;
    if (!a->recorded || !b->recorded) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: an event was never recorded");
    if (!a->mark->ran || !b->mark->ran) return CUDA_ERROR_NOT_READY;  // not forced: the host only asks
    *ms = (float)(b->mark->t - a->mark->t);
    return CUDA_SUCCESS;
}

API CUresult cuEventElapsedTime(float* ms, CUevent a, CUevent b) { return cuEventElapsedTime_v2(ms, a, b); }

API CUresult cuEventDestroy_v2(CUevent e) {
    ENTER_CTX;
    if (!valid_event(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventDestroy_v2: not a live event");
    g.events.erase(e);  // a queued record keeps its Mark
    return CUDA_SUCCESS;
}

// ---- Modules and launches ---------------------------------------------------

API CUresult cuModuleLoadData(CUmodule* out, const void* image) {
    ENTER_CTX;
    if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
    return load_module(image, out);
}

API CUresult cuModuleGetFunction(CUfunction* out, CUmodule m, const char* name) {
    ENTER_CTX;
    if (!out || !name) return CUDA_ERROR_INVALID_VALUE;
    if (!m || !g.modules.count(m)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleGetFunction: not a loaded module");
    for (auto& f : m->funcs)
        if (f->k->name && !strcmp(f->k->name, name)) {
            *out = f.get();
            return CUDA_SUCCESS;
        }
    return fail(CUDA_ERROR_NOT_FOUND, fmt("cuModuleGetFunction: module %s has no kernel named \"%s\"", m->program.c_str(), name));
}

API CUresult cuModuleUnload(CUmodule m) {
    ENTER_CTX;
    auto it = g.modules.find(m);
    if (it == g.modules.end()) return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleUnload: not a loaded module");
    for (auto& f : m->funcs) g.funcs.erase(f.get());
    g.modules.erase(it);  // its shared object stays mapped while queued work or a graph may run its kernels
    return CUDA_SUCCESS;
}

API CUresult cuFuncGetAttribute(int* v, int attr, CUfunction f) {
    ENTER_CTX;
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    if (!f || !g.funcs.count(f)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuFuncGetAttribute: not a live function");
    switch (attr) {
        case 0: *v = 1024; break;                  // MAX_THREADS_PER_BLOCK
        case 1: *v = (int)f->k->static_smem; break;  // SHARED_SIZE_BYTES
        case 2: case 3: case 7: *v = 0; break;    // CONST/LOCAL_SIZE_BYTES, CACHE_MODE_CA
        case 4: *v = 32; break;                    // NUM_REGS
        case 5: case 6: *v = 90; break;            // PTX_VERSION, BINARY_VERSION
        case 8: *v = f->max_dyn; break;            // MAX_DYNAMIC_SHARED_SIZE_BYTES
        case 9: *v = f->carveout; break;           // PREFERRED_SHARED_MEMORY_CARVEOUT
        default:
            if (attr < 0 || attr > 20) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuFuncGetAttribute: attribute %d", attr));
            *v = 0;
    }
    return CUDA_SUCCESS;
}

API CUresult cuFuncSetAttribute(CUfunction f, int attr, int value) {
    ENTER_CTX;
    if (!f || !g.funcs.count(f)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuFuncSetAttribute: not a live function");
    if (attr == 8) {
        if (value < 0 || value + (int)f->k->static_smem > kSharedOptin)
            return fail(CUDA_ERROR_INVALID_VALUE,
                        fmt("cuFuncSetAttribute: %d bytes of dynamic shared memory + %u static exceed the %d-byte opt-in limit",
                            value, f->k->static_smem, kSharedOptin));
        f->max_dyn = value;
        return CUDA_SUCCESS;
    }
    if (attr == 9) {
        if (value < -1 || value > 100) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuFuncSetAttribute: carveout %d", value));
        f->carveout = value;
        return CUDA_SUCCESS;
    }
    return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuFuncSetAttribute: attribute %d cannot be set", attr));
}

API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shmem, CUstream h, void** params, void** extra) {
    ENTER_CTX;
    if (!f || !g.funcs.count(f)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuLaunchKernel: not a live function");
    const padsim_kernel* k = f->k;
    std::string kn = k->name ? k->name : "?";
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuLaunchKernel")) return r;
    if (extra) return fail(CUDA_ERROR_NOT_SUPPORTED, "cuLaunchKernel: the extra argument is not simulated");
    if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535)
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuLaunchKernel: kernel %s: grid %ux%ux%u is outside 1..2^31-1 x 1..65535 x 1..65535",
                                                  kn.c_str(), gx, gy, gz));
    if (bx == 0 || by == 0 || bz == 0 || bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024)
        return fail(CUDA_ERROR_INVALID_VALUE,
                    fmt("cuLaunchKernel: kernel %s: block %ux%ux%u (at most 1024x1024x64 and 1024 threads)", kn.c_str(), bx, by, bz));
    if ((int64_t)shmem > f->max_dyn)
        return fail(CUDA_ERROR_INVALID_VALUE,
                    fmt("cuLaunchKernel: kernel %s: %u bytes of dynamic shared memory exceed the function's limit of %d "
                        "(raise it with cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES))",
                        kn.c_str(), shmem, f->max_dyn));
    if (k->nparams && !params)
        return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuLaunchKernel: kernel %s: kernelParams is NULL for %u parameters", kn.c_str(), k->nparams));
    // Copy the parameters now: the caller may reuse its values at once.
    auto w = std::make_shared<KernelWork>();
    w->name = kn;
    w->k = k;
    w->so = f->mod->so;
    uint32_t gr[3] = {gx, gy, gz}, bl[3] = {bx, by, bz};
    memcpy(w->grid, gr, sizeof gr);
    memcpy(w->block, bl, sizeof bl);
    w->dyn = shmem;
    std::vector<size_t> offs;
    size_t total = 0;
    for (uint32_t i = 0; i < k->nparams; i++) {
        size_t a = std::max<uint32_t>(8, k->params[i].align);
        total = (total + a - 1) / a * a;
        offs.push_back(total);
        total += k->params[i].size;
    }
    w->storage.reset(new uint64_t[total / 8 + 2]());
    uint8_t* base = (uint8_t*)w->storage.get();
    for (uint32_t i = 0; i < k->nparams; i++) {
        const padsim_param& pp = k->params[i];
        if (!params[i]) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuLaunchKernel: kernel %s: kernelParams[%u] is NULL", kn.c_str(), i));
        memcpy(base + offs[i], params[i], pp.size);
        w->args.push_back(base + offs[i]);
        uint64_t v = 0;
        if (pp.is_pointer) {
            memcpy(&v, params[i], std::min<uint32_t>(pp.size, 8));
            if (v && !live(v, 0)) {
                set_sticky(CUDA_ERROR_ILLEGAL_ADDRESS,
                           fmt("cuLaunchKernel: kernel %s: argument %u: ", kn.c_str(), i) + explain(v, 0));
                return CUDA_ERROR_ILLEGAL_ADDRESS;
            }
            uint64_t al = pp.pointee ? (pp.pointee & (~pp.pointee + 1)) : 1;  // largest power of 2 dividing it
            al = std::min<uint64_t>(al, 16);
            if (v % al) {
                set_sticky(CUDA_ERROR_MISALIGNED_ADDRESS,
                           fmt("cuLaunchKernel: kernel %s: argument %u: 0x%llx is not aligned to its %u-byte pointee", kn.c_str(), i,
                               (unsigned long long)v, pp.pointee));
                return CUDA_ERROR_MISALIGNED_ADDRESS;
            }
        }
        w->ptrs.push_back(v);
    }
    if (fault("lost", nullptr)) {
        g_lost = true;
        std::string m = "cuLaunchKernel: kernel " + kn + ": the device is lost (fault injected by PAD_CUDASIM_FAULT)";
        message(m);
        if (!cfg.quiet) fprintf(stderr, "cudasim: %s\n", m.c_str());
        return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    w->fault = fault("launch", nullptr);
    if (int r = submit(s, w)) return r;
    count(C_KERNEL_LAUNCHES);
    return CUDA_SUCCESS;
}

// ---- Capture and graphs -----------------------------------------------------

API CUresult cuStreamBeginCapture_v2(CUstream h, int mode) {
    ENTER_CTX;
    if ((uintptr_t)h <= 2)
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "cuStreamBeginCapture_v2: the legacy stream cannot be captured");
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuStreamBeginCapture_v2")) return r;
    if (mode < 0 || mode > 2) return fail(CUDA_ERROR_INVALID_VALUE, fmt("cuStreamBeginCapture_v2: mode %d", mode));
    if (s->cap) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamBeginCapture_v2: the stream is already capturing");
    auto c = std::make_shared<Capture>();
    c->mode = mode;
    c->origin = s;
    c->thread = std::this_thread::get_id();
    c->streams.insert(s);
    s->cap = c;
    s->tail.clear();
    g.caps.push_back(c);
    return CUDA_SUCCESS;
}

API CUresult cuStreamEndCapture(CUstream h, CUgraph* out) {
    ENTER_CTX;
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuStreamEndCapture")) return r;
    *out = nullptr;
    if (!s->cap) return fail(CUDA_ERROR_ILLEGAL_STATE, "cuStreamEndCapture: the stream is not capturing");
    auto c = s->cap;
    if (c->origin != s) {
        invalidate(*c);
        return fail(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "cuStreamEndCapture: the capture began on another stream");
    }
    if (c->mode != 2 && c->thread != std::this_thread::get_id())
        return fail(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "cuStreamEndCapture: the capture began on another thread");
    if (fault("capture", nullptr)) {
        end_capture(c);
        return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamEndCapture: capture failed (fault injected by PAD_CUDASIM_FAULT)");
    }
    if (c->invalid) {
        end_capture(c);
        return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "cuStreamEndCapture: the capture was invalidated by an earlier error");
    }
    // Every stream that joined must have been joined back: its last nodes
    // must be ancestors of the origin's last nodes.
    std::vector<bool> anc(c->nodes.size());
    std::vector<int> stack(s->tail);
    while (!stack.empty()) {
        int n = stack.back();
        stack.pop_back();
        if (anc[n]) continue;
        anc[n] = true;
        for (int d : c->nodes[n].deps) stack.push_back(d);
    }
    for (CUstream_st* o : c->streams)
        for (int n : o->tail)
            if (o != s && !anc[n]) {
                end_capture(c);
                return fail(CUDA_ERROR_STREAM_CAPTURE_UNJOINED,
                            "cuStreamEndCapture: a stream forked into the capture was not joined back into the origin stream");
            }
    auto gr = std::make_unique<CUgraph_st>();
    gr->nodes = std::make_shared<Nodes>(std::move(c->nodes));
    end_capture(c);
    *out = gr.get();
    g.graphs[gr.get()] = std::move(gr);
    count(C_CAPTURES);
    return CUDA_SUCCESS;
}

API CUresult cuStreamIsCapturing(CUstream h, int* status) {
    ENTER_CTX;
    if (!status) return CUDA_ERROR_INVALID_VALUE;
    CUstream_st* s;
    if ((uintptr_t)h <= 1) {  // the legacy stream: an error while a blocking stream captures
        for (auto& c : g.caps)
            for (CUstream_st* o : c->streams)
                if (o->blocking)
                    return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "cuStreamIsCapturing: a blocking stream is capturing");
    }
    if (int r = resolve(h, &s, "cuStreamIsCapturing")) return r;
    *status = !s->cap ? 0 : s->cap->invalid ? 2 : 1;
    return CUDA_SUCCESS;
}

API CUresult cuGraphInstantiateWithFlags(CUgraphExec* out, CUgraph gr, unsigned long long flags) {
    ENTER_CTX;
    if (!out || (flags & ~0xFull)) return fail(CUDA_ERROR_INVALID_VALUE, "cuGraphInstantiateWithFlags: invalid argument");
    if (!gr || !g.graphs.count(gr)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphInstantiateWithFlags: not a live graph");
    auto e = std::make_unique<CUgraphExec_st>();
    e->nodes = std::make_shared<const Nodes>(*gr->nodes);  // a copy: the graph may change or go
    *out = e.get();
    g.execs[e.get()] = std::move(e);
    return CUDA_SUCCESS;
}

API CUresult cuGraphLaunch(CUgraphExec e, CUstream h) {
    ENTER_CTX;
    if (!e || !g.execs.count(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphLaunch: not a live graph exec");
    CUstream_st* s;
    if (int r = resolve(h, &s, "cuGraphLaunch")) return r;
    auto w = std::make_shared<GraphWork>();
    w->name = "cuGraphLaunch";
    w->nodes = e->nodes;
    if (int r = submit(s, w)) return r;
    count(C_GRAPH_LAUNCHES);
    return CUDA_SUCCESS;
}

API CUresult cuGraphExecDestroy(CUgraphExec e) {
    ENTER_CTX;
    if (!e || !g.execs.erase(e)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphExecDestroy: not a live graph exec");
    return CUDA_SUCCESS;  // queued launches keep their nodes
}

API CUresult cuGraphDestroy(CUgraph gr) {
    ENTER_CTX;
    if (!gr || !g.graphs.erase(gr)) return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphDestroy: not a live graph");
    return CUDA_SUCCESS;
}

// ---- padsim services (padsim.h) -----------------------------------------------

API int padsim_check_range(uint64_t p, uint64_t bytes, const char* what, char* msg, size_t msglen) {
    LOCK;
    std::string m;
    int r = check_range(p, bytes, what ? what : "padsim_check_range", &m);
    if (r && msg && msglen) snprintf(msg, msglen, "%s", m.c_str());
    return r;
}

API int padsim_enqueue(uint64_t stream, int kind, const char* what, padsim_op_fn fn, void* arg, void (*free_fn)(void*),
                       const uint64_t* ranges, int nranges) {
    ENTER_CTX;
    std::string name = what ? what : "padsim op";
    if (!fn || nranges < 0 || (nranges && !ranges)) return fail(CUDA_ERROR_INVALID_VALUE, name + ": padsim_enqueue: invalid argument");
    CUstream_st* s;
    if (int r = resolve((CUstream)(uintptr_t)stream, &s, name.c_str())) return r;
    for (int i = 0; i < nranges; i++)
        if (int r = check_range(ranges[2 * i], ranges[2 * i + 1], fmt("%s: range %d", name.c_str(), i), nullptr)) return r;
    // From here on the op owns arg: free_fn runs when it can never run again.
    auto w = std::make_shared<LibWork>();
    w->name = name;
    w->kind = kind;
    w->fn = fn;
    w->arg = arg;
    w->ranges.assign(ranges, ranges + 2 * nranges);
    w->free_fn = free_fn;
    if (int r = submit(s, w)) {
        w->free_fn = nullptr;  // rejected: the caller keeps arg
        return r;
    }
    // Accepted: 0 even if the op already ran and failed (eager), since a
    // nonzero result tells the caller that it still owns arg (cuDNN and
    // cuBLAS free it then). The sticky error surfaces at the next call.
    return CUDA_SUCCESS;
}

API int padsim_fault(const char* key, const char* detail) {
    LOCK;
    return key && fault(key, detail) ? 1 : 0;
}

std::atomic<uint64_t> g_fault_generation{0};

API void padsim_set_faults(const char* spec) {
    LOCK;
    g_faults_parsed = true;
    parse_fault_spec(spec);
    g_fault_generation++;
}

API uint64_t padsim_faults_generation(void) { return g_fault_generation.load(); }

API void padsim_count(const char* counter, uint64_t n) {
    if (!counter) return;
    for (int i = 0; i < C_COUNT; i++)
        if (!strcmp(kCounterNames[i], counter)) {
            count((Counter)i, n);
            return;
        }
    LOCK;
    message(fmt("padsim_count: unknown counter \"%s\"", counter));
}

API int padsim_counter_count(void) { return C_COUNT; }
API const char* padsim_counter_name(int i) { return i >= 0 && i < C_COUNT ? kCounterNames[i] : nullptr; }
API uint64_t padsim_counter_value(int i) { return i >= 0 && i < C_COUNT ? g_counters[i].load() : 0; }
API void padsim_counters_reset(void) {
    for (auto& c : g_counters) c.store(0);
}

API const char* padsim_last_message(void) {
    static thread_local std::string copy;
    LOCK;
    copy = g_last_message;
    return copy.c_str();
}
