// module_main.h: the part of every module image (see padsim.h) that is not
// the user's program. The simulated NVRTC (nvrtc.cpp) compiles one
// translation unit per program:
//
//	#include "emu.h"            CUDA's built-ins on the CPU
//	#include "module_main.h"    this file: templates only
//	#define ... (the -D options)
//	#include "<program>"        the user's source, saved under its name
//	PADSIM_KERNEL(...) lines    one per __global__ function, then
//	PADSIM_MODULE_END           the table and padsim_module_v1
//
// This file comes before the user's source so that the user's macros
// cannot change it; the lines after the source use only padsim_-prefixed
// names.
//
// For each kernel the templates deduce the parameter types from the
// function's own type: the padsim_param table (size, alignment, pointer,
// pointee size), a signature record for nvrtc.cpp's PTX text (a section the
// compiler reads back from the shared object), and run, which reads the
// arguments from cuLaunchKernel's kernelParams and runs the grid under
// emu.h.
//
// Kernels whose source reaches no barrier and no warp operation (nvrtc.cpp
// scans the source for them) run as plain calls (emu::run_plain) unless the
// threads engine is asked for; PAD_CUDASIM_PLAIN=0 turns that off (to
// compare timings, or to check a suspected miss of the scan).
#pragma once

#include <cstdlib>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>

#include "emu.h"
#include "padsim.h"

// Static shared memory per kernel, in bytes, at [1 + kernel index]: nvrtc.cpp
// measures the __shared__ variables each kernel can reach in the compiled
// object's symbol table and writes the numbers into this array of the
// finished shared object (found by its symbol name). [0] holds a marker,
// which also keeps the array in .data (file bytes to patch), not .bss.
// volatile: read at run time, not folded to the zeros it is compiled with.
extern "C" volatile uint32_t padsim_static_smem_[];
#define PADSIM_SMEM_MARKER 0x4d454d53u /* "SMEM" */

namespace padsim_mod {

template <class P>
constexpr uint32_t pointee_size() {
    if constexpr (std::is_void_v<P> || std::is_function_v<P>) {
        return 1;
    } else if constexpr (requires { sizeof(P); }) {
        return (uint32_t)sizeof(P);
    } else {
        return 1;  // an incomplete type
    }
}

template <class T>
constexpr padsim_param param_of() {
    if constexpr (std::is_pointer_v<T>) {
        return padsim_param{(uint32_t)sizeof(T), (uint32_t)alignof(T), 1, pointee_size<std::remove_cv_t<std::remove_pointer_t<T>>>()};
    } else {
        return padsim_param{(uint32_t)sizeof(T), (uint32_t)alignof(T), 0, 0};
    }
}

// Kinds of the signature records: how PTX spells a parameter.
enum : uint32_t { kPointer = 1, kFloat = 2, kInteger = 3, kBytes = 4 };

template <class T>
constexpr uint32_t kind_of() {
    if constexpr (std::is_pointer_v<T>) return kPointer;
    else if constexpr (std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8)) return kFloat;
    else if constexpr ((std::is_integral_v<T> || std::is_enum_v<T>) && sizeof(T) <= 8) return kInteger;
    else return kBytes;
}

// SigRecord is what nvrtc.cpp reads back from the "padsim_sig" section:
// all 32-bit words, starting with kSigMagic, the kernel's index in the
// table, whether it runs plain, the parameter count, then per parameter
// kind, size, alignment.
constexpr uint32_t kSigMagic = 0x47495350;  // "PSIG"
template <size_t N>
struct SigRecord {
    uint32_t magic, index, plain, n;
    uint32_t p[N == 0 ? 1 : 3 * N];
};

template <class F>
struct Fn;
template <class... A>
struct Fn<void (*)(A...)> {
    static constexpr size_t N = sizeof...(A);
    static constexpr padsim_param params[N + 1] = {param_of<std::decay_t<A>>()..., padsim_param{0, 0, 0, 0}};
    static constexpr SigRecord<N> sig(uint32_t index, bool plain) {
        SigRecord<N> r{kSigMagic, index, plain ? 1u : 0u, (uint32_t)N, {}};
        const uint32_t kinds[N + 1] = {kind_of<std::decay_t<A>>()..., 0};
        for (size_t i = 0; i < N; i++) {
            r.p[3 * i] = kinds[i];
            r.p[3 * i + 1] = params[i].size;
            r.p[3 * i + 2] = params[i].align;
        }
        return r;
    }
};

// emu.h keeps its state (the block, fibers, the threads engine's pool) in
// module-wide variables: one launch of this module at a time.
inline std::mutex launch_mu;

// The dynamic shared memory buffer, 256-byte aligned, kept from launch to
// launch and grown as needed.
struct DynBuffer {
    void* p = nullptr;
    size_t cap = 0;
    unsigned char* get(size_t n) {
        if (n > cap) {
            std::free(p);
            p = nullptr;
            cap = 0;
            if (posix_memalign(&p, 256, n) != 0) return nullptr;
            cap = n;
        }
        return static_cast<unsigned char*>(p);
    }
    ~DynBuffer() { std::free(p); }
};
inline DynBuffer dyn_buffer;

// plain_allowed reads the environment at every launch (a getenv is nothing
// next to a launch), so a test can compare both ways in one process.
inline bool plain_allowed() {
    const char* v = std::getenv("PAD_CUDASIM_PLAIN");
    return !(v && v[0] == '0');
}

template <class T>
T load_arg(const void* p) {
    static_assert(std::is_trivially_copyable_v<T>, "a kernel parameter must be trivially copyable");
    T v;
    std::memcpy(&v, p, sizeof(T));  // kernelParams[i] need not be aligned
    return v;
}

inline int fail_with(char* err, size_t errlen, const char* kernel, const char* msg) {
    if (err && errlen) std::snprintf(err, errlen, "%s: %s", kernel, msg);
    return 1;
}

template <auto F, bool Plain, class... A, size_t... I>
int run_impl(const char* name, const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_smem, void* const* args,
             uint32_t order_seed, int engine, char* err, size_t errlen, std::index_sequence<I...>) {
    dim3 g{grid[0], grid[1], grid[2]}, b{block[0], block[1], block[2]};
    uint64_t nthreads = (uint64_t)b.x * b.y * b.z;
    if (nthreads == 0 || nthreads > 1024 || g.x == 0 || g.y == 0 || g.z == 0)
        return fail_with(err, errlen, name, "invalid launch configuration");
    if (sizeof...(A) > 0 && !args) return fail_with(err, errlen, name, "no kernel parameters given");
    // Each argument is read once; every CUDA thread gets its own copy (the
    // kernel's by-value parameters).
    std::tuple<std::decay_t<A>...> vals{load_arg<std::decay_t<A>>(args[I])...};

    std::lock_guard<std::mutex> lock(launch_mu);
    emu::dyn_smem = dyn_buffer.get(dyn_smem < 16 ? 16 : dyn_smem);
    emu::dyn_smem_bytes = dyn_smem;
    if (!emu::dyn_smem) return fail_with(err, errlen, name, "cannot allocate dynamic shared memory");
    auto call = [&vals]() { F(std::get<I>(vals)...); };

    bool threads = engine == PADSIM_ENGINE_THREADS || !emu::kHaveFibers;
    if (Plain && !threads && plain_allowed()) {
        if (order_seed == 0) {
            emu::run_plain(call, g, b, nullptr);
        } else {
            std::vector<uint3> order = emu::block_order(g, order_seed);
            emu::run_plain(call, g, b, &order);
        }
    } else {
        emu::Kernel fn = call;
        emu::launch(fn, g, b, emu::block_order(g, order_seed), threads ? emu::Engine::threads : emu::Engine::fibers);
    }
    emu::dyn_smem = nullptr;
    emu::dyn_smem_bytes = 0;
    if (const char* e = emu::error.load()) return fail_with(err, errlen, name, e);
    return 0;
}

template <class F>
struct Runner;
template <class... A>
struct Runner<void (*)(A...)> {
    template <auto F, bool Plain, const char* Name>
    static int run(const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_smem, void* const* args,
                   uint32_t order_seed, int engine, char* err, size_t errlen) {
        return run_impl<F, Plain, A...>(Name, grid, block, dyn_smem, args, order_seed, engine, err, errlen,
                                         std::index_sequence_for<A...>{});
    }
};

template <auto F, bool Plain, const char* Name>
constexpr padsim_kernel kernel() {
    using Sig = decltype(F);
    return padsim_kernel{Name, (uint32_t)Fn<Sig>::N, Fn<Sig>::params, 0, &Runner<Sig>::template run<F, Plain, Name>};
}

}  // namespace padsim_mod

// PADSIM_KERNEL(index, function, "name", plain): one kernel of the table
// (function: its qualified name, e.g. ::add).
#define PADSIM_KERNEL(idx, fn, name, plain)                                                                    \
    namespace padsim_gen {                                                                                  \
    constexpr char padsim_name_##idx[] = name;                                                              \
    constexpr padsim_kernel padsim_kernel_##idx = ::padsim_mod::kernel<&fn, plain, padsim_name_##idx>();    \
    __attribute__((used, section("padsim_sig"), aligned(4))) const auto padsim_sig_##idx =                   \
        ::padsim_mod::Fn<decltype(&fn)>::sig(idx, plain);                                                   \
    }

// PADSIM_MODULE_END(n, entries): the table of the n kernels (entries:
// padsim_gen::padsim_kernel_0, ...) and the one exported function.
#define PADSIM_MODULE_END(n, ...)                                                                            \
    extern "C" {                                                                                            \
    volatile uint32_t padsim_static_smem_[(n) + 1] = {PADSIM_SMEM_MARKER};                                  \
    }                                                                                                       \
    namespace padsim_gen {                                                                                  \
    padsim_kernel padsim_table[n + 1] = {__VA_ARGS__};                                                      \
    }                                                                                                       \
    extern "C" PADSIM_EXPORT const padsim_module* padsim_module_v1(void) {                                  \
        static const padsim_module m = [] {                                                                 \
            for (unsigned i = 0; i < (n); i++) padsim_gen::padsim_table[i].static_smem = padsim_static_smem_[i + 1]; \
            return padsim_module{PADSIM_MODULE_ABI, (n), padsim_gen::padsim_table};                         \
        }();                                                                                                \
        return &m;                                                                                          \
    }
