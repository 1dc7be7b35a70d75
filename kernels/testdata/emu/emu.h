// emu.h: a small "CUDA on threads" emulation, enough to run pad's kernels
// (kernels/*.cu) on the CPU for the tests in kernels/emu_test.go. Include
// it before the kernel source; emu::launch runs a kernel.
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
// calls); the first is kept and reported by the harness.
inline std::atomic<const char*> error{nullptr};
inline void fail(const char* what) {
    const char* none = nullptr;
    error.compare_exchange_strong(none, what);
}

inline Engine engine = Engine::threads;

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

inline void __syncthreads() { emu::block.bar->wait(); }

inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) emu::fail("__syncwarp with a partial mask is not emulated");
    emu::self->warp->bar->wait();
}

template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = emu::kWarp) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    emu::ThreadState& me = *emu::self;
    emu::Warp& w = *me.warp;
    int lane = me.lane;
    unsigned full = w.lanes == emu::kWarp ? 0xffffffffu : ((1u << w.lanes) - 1);
    if ((mask & full) != full) emu::fail("__shfl_down_sync with a mask that leaves out lanes of the warp is not emulated");
    if (width <= 0 || width > emu::kWarp || (width & (width - 1)) != 0) emu::fail("__shfl_down_sync: width not a power of 2 in 1..32");
    unsigned ph = me.phase++ & 1;
    unsigned long long slot = 0;
    std::memcpy(&slot, &v, sizeof(T));
    w.buf[ph][lane] = slot;
    w.bar->wait();
    int src = lane + (int)delta;
    if ((lane % width) + (int)delta >= width || src >= w.lanes) return v;
    T r;
    slot = w.buf[ph][src];
    std::memcpy(&r, &slot, sizeof(T));
    return r;
}

namespace emu {

// reset_block prepares the block-wide state for block b of n threads
// (while no thread of the block runs).
inline void reset_block(int n, uint3 b) {
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
    void ensure(int want) {
        if (want <= n) return;
        if (mem) munmap(mem, span * n);
        const size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 256 << 10;
        span = page + size;
        mem = static_cast<unsigned char*>(mmap(nullptr, span * want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (mem == MAP_FAILED) {
            std::fprintf(stderr, "emu: cannot map fiber stacks\n");
            std::exit(2);
        }
        for (int t = 0; t < want; t++) mprotect(mem + span * t, page, PROT_NONE);
        n = want;
    }
};
inline Stacks stacks;

inline void run_fibers(const Kernel& fn, const std::vector<uint3>& order, int n) {
    if (!kHaveFibers) {
        std::fprintf(stderr, "emu: the fibers engine needs x86-64\n");
        std::exit(2);
    }
    stacks.ensure(n);
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
