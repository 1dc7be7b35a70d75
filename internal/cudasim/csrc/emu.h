// emu.h: a small "CUDA on threads" emulation, enough to run pad's kernels
// (kernels/*.cu) on the CPU. The simulated NVRTC of internal/cudasim
// (nvrtc.cpp) includes it before the kernel source it is given and
// compiles every program around it into a module image (module_main.h
// runs its kernels).
// emu::launch runs a kernel; emu::run_plain runs one without barriers.
//
// Model:
//   - A launch runs its blocks one at a time, in an order the caller picks,
//     so __shared__ can be a function-static: only one block exists at a
//     time (its contents carry over from block to block, where a GPU leaves
//     them undefined).
//   - Every CUDA thread of a block has its own stack and its own built-in
//     variables (threadIdx, blockIdx, blockDim, gridDim are thread_local).
//     Two engines run them:
//       threads: one real std::thread per CUDA thread (a pool kept from
//                launch to launch), __syncthreads a std::barrier. Threads
//                interleave preemptively, as on the GPU, but each barrier
//                costs a futex wake-up per thread.
//       fibers:  one fiber (own stack, x86-64 context switch without a
//                system call) per CUDA thread, all on one OS thread; a fiber
//                runs until it waits at a barrier or returns, then the next
//                ready one (round robin) runs. Deterministic and ~100x
//                faster; used for large grids.
//   - Warps are 32 consecutive linear thread ids. __shfl_down_sync
//     exchanges values through a per-warp array and a per-warp barrier
//     (double-buffered, so one barrier per shuffle); a lane whose source
//     lane is outside its segment (lane % width + delta >= width) or outside
//     the block gets its own value back, as on the GPU.
//   - A thread that returns from the kernel drops out of its block's and its
//     warp's barriers (as exited threads do on the hardware). A barrier
//     phase that some thread waits in after another has returned is a
//     barrier not reached by every thread (undefined behaviour in CUDA): an
//     error. So are threads waiting at barriers that can never complete
//     (detected by the fibers engine; under threads the launch hangs until
//     the caller's timeout).
//   - Global memory is plain host memory: no caches, no weak ordering
//     beyond the C++ memory model, no atomics needed by pad's kernels.
//   - Floating point is the host's: IEEE binary32/64 with SSE2 on x86-64, no
//     flush to zero, and no contraction when compiled with -ffp-contract=off
//     (the kernels are compiled with --fmad=false). Double log/exp/tanh/
//     sincos come from glibc, not libdevice (which has up to 1-2 ulp error).
//   - Under AddressSanitizer the fiber switches are announced to it, so a
//     sanitizer build can run both engines.
//   - Kernels that use no barrier and no warp operation can run as plain
//     function calls, one thread after another (run_plain): no stacks, no
//     context switches. A barrier reached there is reported as an error.
//   - Dynamic shared memory (extern __shared__) is dyn_smem: the simulated
//     NVRTC rewrites such declarations to read it; every block starts with
//     it filled with 0xFF bytes (NaN as float and double), as real shared
//     memory starts out undefined.
//   - Everything here has internal linkage or hidden visibility when
//     compiled with -fvisibility=hidden (the fiber switch's assembly says
//     .hidden), so modules loaded into one process share no state.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
#include <memory>
#include <pthread.h>
#include <sys/mman.h>
#include <thread>
#include <type_traits>
#include <unistd.h>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) alignas(n)
#define __launch_bounds__(...)
#define __noinline__ __attribute__((noinline))
#define __constant__

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct alignas(16) uint4 {
    unsigned int x, y, z, w;
};

inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }

// A few more of CUDA's vector types and built-ins, for programs other than
// pad's (the simulated NVRTC compiles any program around this header).
struct alignas(8) float2 {
    float x, y;
};
struct float3 {
    float x, y, z;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) int2 {
    int x, y;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned int x, y;
};
struct alignas(16) double2 {
    double x, y;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

constexpr int warpSize = 32;

template <class T>
inline T __ldg(const T* p) {
    return *p;
}
inline int __float_as_int(float f) {
    int i;
    std::memcpy(&i, &f, 4);
    return i;
}
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline unsigned int __float_as_uint(float f) { return (unsigned int)__float_as_int(f); }
inline float __uint_as_float(unsigned int i) { return __int_as_float((int)i); }
inline long long __double_as_longlong(double d) {
    long long i;
    std::memcpy(&i, &d, 8);
    return i;
}
inline double __longlong_as_double(long long i) {
    double d;
    std::memcpy(&d, &i, 8);
    return d;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// Atomics: real ones, since the threads engine runs threads in parallel.
template <class T>
inline T atomicAdd(T* p, T v) {
    if constexpr (std::is_floating_point_v<T>) {
        T old = __atomic_load_n(p, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(p, &old, old + v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        }
        return old;
    } else {
        return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    }
}
template <class T>
inline T atomicSub(T* p, T v) {
    return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST);
}
template <class T>
inline T atomicExch(T* p, T v) {
    T old;
    __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
    return old;
}
template <class T>
inline T atomicCAS(T* p, T expected, T desired) {
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}
template <class T>
inline T atomicMax(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
    }
    return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
    }
    return old;
}

inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * (unsigned long long)b) >> 32);
}

// CUDA's min/max: integer overloads with the usual arithmetic conversions
// (min(int, unsigned) is unsigned), fmin/fmax for floating point.
template <class A, class B>
inline auto min(A a, B b) -> std::common_type_t<A, B> {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) {
        return std::fmin((T)a, (T)b);
    } else {
        return (T)a < (T)b ? (T)a : (T)b;
    }
}
template <class A, class B>
inline auto max(A a, B b) -> std::common_type_t<A, B> {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) {
        return std::fmax((T)a, (T)b);
    } else {
        return (T)a > (T)b ? (T)a : (T)b;
    }
}

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace emu {

constexpr int kWarp = 32;

enum class Engine { threads, fibers };

// Errors found while running (divergent barriers, deadlocks, unsupported
// calls); the first is kept and reported by the launch (module_main.h).
inline std::atomic<const char*> error{nullptr};
inline void fail(const char* what) {
    const char* none = nullptr;
    error.compare_exchange_strong(none, what);
}

inline Engine engine = Engine::threads;

// Dynamic shared memory of the running launch (see the model above).
inline unsigned char* dyn_smem = nullptr;
inline size_t dyn_smem_bytes = 0;
inline void fill_dyn_smem() {
    if (dyn_smem_bytes) std::memset(dyn_smem, 0xFF, dyn_smem_bytes);
}

// DynShared<T> stands for a file-scope extern __shared__ T name[]: it reads
// the running launch's buffer wherever the name is used.
template <class T>
struct DynShared {
    operator T*() const { return reinterpret_cast<T*>(dyn_smem); }
    T& operator[](long long i) const { return reinterpret_cast<T*>(dyn_smem)[i]; }
};

// ---- fibers ----

extern "C" void emu_fiber_switch(void** save_sp, void* to_sp);
extern "C" void emu_fiber_entry();

#if defined(__x86_64__)
// emu_fiber_switch saves the callee-saved registers, MXCSR and the x87
// control word on the current stack, stores the stack pointer in *save_sp
// and resumes the context whose stack pointer is to_sp. emu_fiber_entry
// starts a fresh fiber: it calls r13(r12) and never returns.
asm(R"(
    .text
    .globl emu_fiber_switch
    .hidden emu_fiber_switch
    .type emu_fiber_switch, @function
emu_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_fiber_switch, .-emu_fiber_switch

    .globl emu_fiber_entry
    .hidden emu_fiber_entry
    .type emu_fiber_entry, @function
emu_fiber_entry:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size emu_fiber_entry, .-emu_fiber_entry
    .section .note.GNU-stack,"",@progbits
    .text
)");
constexpr bool kHaveFibers = true;
#else
constexpr bool kHaveFibers = false;
#endif

struct Barrier;

struct Fiber {
    void* sp = nullptr;
    unsigned char* stack = nullptr;  // usable part, above a guard page
    size_t stack_size = 0;
    bool done = false;
    const Barrier* waiting = nullptr;
    unsigned long long wait_gen = 0;
};

struct Fibers {
    std::vector<Fiber> f;
    void* main_sp = nullptr;
    void* main_stack = nullptr;  // the launcher's stack (for AddressSanitizer)
    size_t main_stack_size = 0;
    int cur = -1;
};
inline Fibers fibers;

// switch_context saves the current context in *save and resumes to_sp,
// whose stack is [stack, stack+size). Under AddressSanitizer it tells the
// sanitizer about the switch (final: the current fiber never runs again).
inline void switch_context(void** save, void* to_sp, const void* stack, size_t size, bool final) {
#if EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(final ? nullptr : &fake, stack, size);
    emu_fiber_switch(save, to_sp);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    (void)stack, (void)size, (void)final;
    emu_fiber_switch(save, to_sp);
#endif
}

// ---- barriers ----

// A barrier of n threads that knows whether a phase completed with threads
// missing: a thread that returned from the kernel is dropped from the
// barrier, and a phase some thread waited in after another had already
// returned is a barrier not reached by every thread.
struct OnPhase {
    Barrier* b;
    void operator()() noexcept;
};

struct Barrier {
    const char* what;
    std::atomic<int> waiters{0};
    std::atomic<int> dropped{0};
    // threads engine
    std::unique_ptr<std::barrier<OnPhase>> bar;
    // fibers engine
    int expected = 0, arrived = 0;
    unsigned long long gen = 0;

    Barrier(int n, const char* what) : what(what), expected(n) {
        if (engine == Engine::threads) bar = std::make_unique<std::barrier<OnPhase>>(n, OnPhase{this});
    }
    void phase_done() {
        if (waiters.exchange(0) > 0 && dropped.load() > 0) fail(what);
    }
    void wait();
    void drop();
};

inline void OnPhase::operator()() noexcept { b->phase_done(); }

void fiber_yield();

inline void Barrier::wait() {
    waiters.fetch_add(1);
    if (engine == Engine::threads) {
        bar->arrive_and_wait();
        return;
    }
    if (++arrived == expected) {
        arrived = 0;
        gen++;
        phase_done();
        return;
    }
    Fiber& me = fibers.f[fibers.cur];
    me.waiting = this;
    me.wait_gen = gen;
    fiber_yield();
}

inline void Barrier::drop() {
    dropped.fetch_add(1);
    if (engine == Engine::threads) {
        bar->arrive_and_drop();
        return;
    }
    expected--;
    if (arrived > 0 && arrived == expected) {
        arrived = 0;
        gen++;
        phase_done();
    }
}

struct Warp {
    // Two exchange slots per lane: shuffle k uses buf[k & 1].
    alignas(64) unsigned long long buf[2][kWarp];
    std::unique_ptr<Barrier> bar;
    int lanes = 0;
};

struct Block {
    std::unique_ptr<Barrier> bar;
    std::unique_ptr<Warp[]> warps;
    int nwarps = 0;
};

inline Block block;
inline dim3 grid_dim, block_dim;

// The per-CUDA-thread state besides the built-in variables.
struct ThreadState {
    Warp* warp = nullptr;
    int lane = 0;
    unsigned phase = 0;
    uint3 tid{}, bid{};
};
inline thread_local ThreadState* self = nullptr;
inline std::vector<ThreadState> states;

// install makes s the current CUDA thread of this OS thread.
inline void install(ThreadState* s) {
    self = s;
    threadIdx = s->tid;
    blockIdx = s->bid;
    blockDim = block_dim;
    gridDim = grid_dim;
}

inline bool ready(const Fiber& f) {
    if (f.done) return false;
    if (!f.waiting) return true;
    return f.waiting->gen != f.wait_gen;
}

// fiber_yield suspends the current fiber (waiting or done) and resumes the
// next ready one, or the launcher once every fiber is done.
inline void fiber_yield() {
    int n = (int)fibers.f.size(), me = fibers.cur;
    for (int k = 1; k <= n; k++) {
        int j = (me + k) % n;
        Fiber& f = fibers.f[j];
        if (!ready(f)) continue;
        if (j == me) break;  // cannot happen: the caller is not ready
        f.waiting = nullptr;
        fibers.cur = j;
        install(&states[j]);
        switch_context(&fibers.f[me].sp, f.sp, f.stack, f.stack_size, fibers.f[me].done);
        // Resumed.
        fibers.f[me].waiting = nullptr;
        return;
    }
    bool all_done = true;
    for (const Fiber& f : fibers.f) all_done = all_done && f.done;
    if (!all_done) fail("threads wait at barriers that can never complete (deadlock)");
    fibers.cur = -1;
    switch_context(&fibers.f[me].sp, fibers.main_sp, fibers.main_stack, fibers.main_stack_size, true);
    std::abort();  // a finished or deadlocked fiber is never resumed
}

}  // namespace emu

namespace emu {
// in_plain reports (as an error) a barrier or warp operation reached by a
// kernel that run_plain runs: there, threads run one after another and
// cannot wait for each other.
inline bool in_plain(const char* what) {
    if (self) return false;
    fail(what);
    return true;
}

// exchange publishes v for the lanes of the current warp and waits until
// every lane has; it returns the warp's slots of this exchange.
// Double-buffered: one barrier per exchange.
inline const unsigned long long* exchange(unsigned long long v, unsigned mask, const char* what) {
    ThreadState& me = *self;
    Warp& w = *me.warp;
    unsigned full = w.lanes == kWarp ? 0xffffffffu : ((1u << w.lanes) - 1);
    if ((mask & full) != full) fail(what);
    unsigned ph = me.phase++ & 1;
    w.buf[ph][me.lane] = v;
    w.bar->wait();
    return w.buf[ph];
}

// shfl is every __shfl*_sync: src(lane) picks the source lane, or -1 for
// the thread's own value.
template <class T, class Src>
inline T shfl(unsigned mask, T v, int width, const char* what, Src src) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    if (in_plain(what)) return v;
    if (width <= 0 || width > kWarp || (width & (width - 1)) != 0) fail("warp shuffle: width not a power of 2 in 1..32");
    unsigned long long slot = 0;
    std::memcpy(&slot, &v, sizeof(T));
    const unsigned long long* all = exchange(slot, mask, "warp shuffle with a mask that leaves out lanes of the warp is not emulated");
    int s = src(self->lane);
    if (s < 0 || s >= self->warp->lanes) return v;
    T r;
    std::memcpy(&r, &all[s], sizeof(T));
    return r;
}
}  // namespace emu

inline void __syncthreads() {
    if (emu::in_plain("__syncthreads in a kernel run without barriers (the barrier scan missed it)")) return;
    emu::block.bar->wait();
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (emu::in_plain("__syncwarp in a kernel run without barriers (the barrier scan missed it)")) return;
    if (mask != 0xffffffffu) emu::fail("__syncwarp with a partial mask is not emulated");
    emu::self->warp->bar->wait();
}

// A lane whose source lane is outside its segment (lane % width + delta >=
// width) or outside the block gets its own value back, as on the GPU.
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = emu::kWarp) {
    return emu::shfl(mask, v, width, "__shfl_down_sync in a kernel run without barriers", [&](int lane) {
        return (lane % width) + (int)delta >= width ? -1 : lane + (int)delta;
    });
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = emu::kWarp) {
    return emu::shfl(mask, v, width, "__shfl_up_sync in a kernel run without barriers",
                     [&](int lane) { return (lane % width) < (int)delta ? -1 : lane - (int)delta; });
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = emu::kWarp) {
    return emu::shfl(mask, v, width, "__shfl_xor_sync in a kernel run without barriers", [&](int lane) {
        int s = lane ^ lane_mask;
        return s / width > lane / width ? -1 : s;  // later segments are out of reach
    });
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = emu::kWarp) {
    return emu::shfl(mask, v, width, "__shfl_sync in a kernel run without barriers",
                     [&](int lane) { return (lane / width) * width + (src_lane % width); });
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
    if (emu::in_plain("__ballot_sync in a kernel run without barriers")) return 0;
    const unsigned long long* all = emu::exchange(pred != 0, mask, "__ballot_sync with a partial mask is not emulated");
    unsigned r = 0;
    for (int l = 0; l < emu::self->warp->lanes; l++)
        if (all[l]) r |= 1u << l;
    return r & mask;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) {
    unsigned full = emu::self && emu::self->warp->lanes < emu::kWarp ? (1u << emu::self->warp->lanes) - 1 : 0xffffffffu;
    return __ballot_sync(mask, pred) == (mask & full);
}
inline unsigned __activemask() {
    if (!emu::self) return 0xffffffffu;
    int n = emu::self->warp->lanes;
    return n == emu::kWarp ? 0xffffffffu : (1u << n) - 1;
}

namespace emu {

// reset_block prepares the block-wide state for block b of n threads
// (while no thread of the block runs).
inline void reset_block(int n, uint3 b) {
    fill_dyn_smem();
    block.bar = std::make_unique<Barrier>(n, "__syncthreads not reached by every thread of the block (some had returned)");
    block.nwarps = (n + kWarp - 1) / kWarp;
    block.warps = std::make_unique<Warp[]>(block.nwarps);
    for (int i = 0; i < block.nwarps; i++) {
        Warp& w = block.warps[i];
        w.lanes = std::min(kWarp, n - i * kWarp);
        w.bar = std::make_unique<Barrier>(w.lanes, "warp shuffle or __syncwarp not reached by every lane of the warp (some had returned)");
    }
    states.assign(n, ThreadState{});
    for (int t = 0; t < n; t++) {
        ThreadState& s = states[t];
        unsigned u = (unsigned)t;
        s.tid = uint3{u % block_dim.x, (u / block_dim.x) % block_dim.y, u / (block_dim.x * block_dim.y)};
        s.bid = b;
        s.warp = &block.warps[t / kWarp];
        s.lane = t % kWarp;
    }
}

// leave drops the current thread from its block's barriers.
inline void leave() {
    self->warp->bar->drop();
    block.bar->drop();
}

using Kernel = std::function<void()>;

// The threads engine's pool: n OS threads, one per CUDA thread of a block,
// kept from launch to launch (creating hundreds of threads per launch costs
// more than running most kernels).
struct Pool {
    struct Advance {
        Pool* p;
        void operator()() noexcept { p->advance(); }
    };
    int n = 0;
    std::vector<std::thread> threads;
    std::unique_ptr<std::barrier<Advance>> bar;
    std::atomic<unsigned> job{0};       // generation of the current launch
    std::atomic<unsigned> finished{0};  // generation of the last finished one
    unsigned done_job = 0;              // written by the completion step
    bool quit = false;
    const Kernel* fn = nullptr;
    const std::vector<uint3>* order = nullptr;
    size_t next = 0;

    // advance runs once per block, after its last thread has left and
    // before any is released: it sets up the next block, or ends the launch.
    void advance() {
        if (next == order->size()) {
            done_job = job.load();
            finished.store(done_job);
            finished.notify_all();
            return;
        }
        reset_block(n, (*order)[next++]);
    }

    void worker(int t, unsigned seen) {
        for (;;) {
            job.wait(seen);
            unsigned mine = job.load();
            seen = mine;
            if (quit) return;
            for (;;) {
                install(&states[t]);
                (*fn)();
                leave();
                bar->arrive_and_wait();
                if (done_job == mine) break;
            }
        }
    }

    void start(int threads_per_block) {
        n = threads_per_block;
        quit = false;
        bar = std::make_unique<std::barrier<Advance>>(n, Advance{this});
        threads.reserve(n);
        unsigned now = job.load();  // new threads wait for the next launch
        for (int t = 0; t < n; t++) threads.emplace_back([this, t, now] { worker(t, now); });
    }

    void stop() {
        if (threads.empty()) return;
        quit = true;
        job.fetch_add(1);
        job.notify_all();
        for (std::thread& th : threads) th.join();
        threads.clear();
        n = 0;
    }

    void run(const Kernel& k, const std::vector<uint3>& blocks, int threads_per_block) {
        if (n != threads_per_block) {
            stop();
            start(threads_per_block);
        }
        fn = &k;
        order = &blocks;
        next = 0;
        reset_block(n, (*order)[next++]);
        unsigned j = job.load() + 1;
        job.store(j);
        job.notify_all();
        for (unsigned f = finished.load(); f != j; f = finished.load()) finished.wait(f);
    }

    ~Pool() { stop(); }
};
inline Pool pool;

inline void run_threads(const Kernel& fn, const std::vector<uint3>& order, int n) { pool.run(fn, order, n); }

struct FiberRun {
    const Kernel* fn;
};
inline FiberRun fiber_run;

inline void fiber_body(void* arg) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    size_t t = (size_t)(uintptr_t)arg;
    (*fiber_run.fn)();
    leave();
    fibers.f[t].done = true;
    fiber_yield();
}

inline void* fiber_stack_init(Fiber& f, size_t t) {
    uintptr_t top = ((uintptr_t)(f.stack + f.stack_size)) & ~(uintptr_t)15;
    uint64_t* s = reinterpret_cast<uint64_t*>(top - 80);
    uint32_t csr = 0;
    uint16_t fcw = 0;
#if defined(__x86_64__)
    asm volatile("stmxcsr %0" : "=m"(csr));
    asm volatile("fnstcw %0" : "=m"(fcw));
#endif
    // Popped by emu_fiber_switch: MXCSR|FCW, r15, r14, r13, r12, rbx, rbp,
    // return address.
    s[0] = (uint64_t)csr | ((uint64_t)fcw << 32);
    s[1] = 0;
    s[2] = 0;
    s[3] = (uint64_t)(uintptr_t)&fiber_body;
    s[4] = (uint64_t)t;
    s[5] = 0;
    s[6] = 0;
    s[7] = (uint64_t)(uintptr_t)&emu_fiber_entry;
    return s;
}

// Fiber stacks, kept from launch to launch; each sits above a PROT_NONE
// guard page, so an overflow faults.
struct Stacks {
    unsigned char* mem = nullptr;
    size_t span = 0;
    int n = 0;
    bool ensure(int want) {
        if (want <= n) return true;
        if (mem) munmap(mem, span * n);
        mem = nullptr;
        n = 0;
        const size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 256 << 10;
        span = page + size;
        void* m = mmap(nullptr, span * want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return false;
        mem = static_cast<unsigned char*>(m);
        for (int t = 0; t < want; t++) mprotect(mem + span * t, page, PROT_NONE);
        n = want;
        return true;
    }
    // A module image is unloaded with dlclose: give its stacks back.
    ~Stacks() {
        if (mem) munmap(mem, span * n);
    }
};
inline Stacks stacks;

inline void run_fibers(const Kernel& fn, const std::vector<uint3>& order, int n) {
    if (!kHaveFibers) {
        fail("the fibers engine needs x86-64");
        return;
    }
    if (!stacks.ensure(n)) {
        fail("cannot map fiber stacks");
        return;
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!fibers.main_stack) {
        pthread_attr_t attr;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            pthread_attr_getstack(&attr, &fibers.main_stack, &fibers.main_stack_size);
            pthread_attr_destroy(&attr);
        }
    }
    fibers.f.assign(n, Fiber{});
    for (int t = 0; t < n; t++) {
        fibers.f[t].stack = stacks.mem + stacks.span * t + page;
        fibers.f[t].stack_size = stacks.span - page;
    }
    fiber_run.fn = &fn;
    for (const uint3& b : order) {
        reset_block(n, b);
        for (int t = 0; t < n; t++) {
            Fiber& f = fibers.f[t];
            f.done = false;
            f.waiting = nullptr;
            f.sp = fiber_stack_init(f, (size_t)t);
        }
        fibers.cur = 0;
        install(&states[0]);
        switch_context(&fibers.main_sp, fibers.f[0].sp, fibers.f[0].stack, fibers.f[0].stack_size, false);
        if (error.load()) break;
    }
}

// block_order lists the blocks of a grid: in order for seed 0, else in a
// permutation drawn from seed (a linear congruential Fisher-Yates shuffle).
inline std::vector<uint3> block_order(dim3 grid, uint32_t seed) {
    std::vector<uint3> order;
    order.reserve((size_t)grid.x * grid.y * grid.z);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) order.push_back(uint3{x, y, z});
    if (seed != 0) {
        uint64_t s = seed;
        for (size_t i = order.size(); i > 1; i--) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t j = (size_t)((s >> 33) % i);
            std::swap(order[i - 1], order[j]);
        }
    }
    return order;
}

// run_plain runs fn (a kernel without barriers or warp operations) for
// every thread of every block of order, as plain calls on this thread:
// threads of a block in linear order. The built-in variables are set for
// each; self stays null, so a barrier reached anyway is an error.
template <class F>
inline void run_plain(F&& fn, dim3 grid, dim3 blk, const std::vector<uint3>* order) {
    error.store(nullptr);
    grid_dim = grid;
    block_dim = blk;
    self = nullptr;
    blockDim = blk;
    gridDim = grid;
    auto one_block = [&](uint3 b) {
        fill_dyn_smem();
        blockIdx = b;
        for (unsigned z = 0; z < blk.z; z++)
            for (unsigned y = 0; y < blk.y; y++)
                for (unsigned x = 0; x < blk.x; x++) {
                    threadIdx = uint3{x, y, z};
                    fn();
                }
    };
    if (order) {
        for (const uint3& b : *order) {
            one_block(b);
            if (error.load(std::memory_order_relaxed)) return;
        }
        return;
    }
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                one_block(uint3{x, y, z});
                if (error.load(std::memory_order_relaxed)) return;
            }
}

// launch runs fn for every block of order (block indices of a grid of
// grid blocks), with block threads per block.
inline void launch(const Kernel& fn, dim3 grid, dim3 blk, const std::vector<uint3>& order, Engine e) {
    error.store(nullptr);
    grid_dim = grid;
    block_dim = blk;
    engine = e;
    int n = (int)(blk.x * blk.y * blk.z);
    if (e == Engine::threads)
        run_threads(fn, order, n);
    else
        run_fibers(fn, order, n);
}

}  // namespace emu
