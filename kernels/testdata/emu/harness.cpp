// harness.cpp runs launches of pad's kernels under emu.h.
//
// It is compiled with
//
//	-DPAD_FAMILIES='"families.inc"'  for each family: namespace pad_family_F {
//	                                 #include "F.cu" } (F.cu: the text
//	                                 kernels.Source(F) returns), then an
//	                                 #undef of every macro F.cu defines
//	-DPAD_REGISTRY='"registry.inc"'  one PAD_KERNEL(pad_family_F, name) line
//	                                 per kernel
//
// Each family keeps its own namespace, as each is its own NVRTC program:
// one family cannot use another's helpers by accident.
//
// It reads launches from stdin until end of file, each (all integers
// little-endian):
//
//	"PADEMU01"
//	u32 name length, name
//	u32 grid[3], u32 block[3]
//	u32 block-order seed (0: blocks in order; else a permutation drawn from it)
//	u32 engine (0: threads, 1: fibers; see emu.h)
//	u32 argument count, u64 slot[count]  (as internal/cu.KernelArgs: each
//	                                      value in the low bytes of a slot)
//	u32 buffer count, then per buffer: u32 index, u64 bytes, the bytes
//
// A pointer argument is 0 (null) or index<<40 | byte offset into buffer
// index. For each launch it writes "PADEMU01", u32 status and then
//
//	status 0: every buffer's bytes after the launch, in input order;
//	status 1: u32 length and the message of a launch that failed (unknown
//	          kernel, wrong argument count, bad pointer, invalid launch
//	          shape, divergent barrier, deadlock, a write outside a
//	          buffer).
//
// A malformed stream ends the harness with exit status 2.
#include "emu.h"  // internal/cudasim/csrc (emu_test.go passes -I)

#include PAD_FAMILIES

#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace emu {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "emu: %s\n", msg.c_str());
    std::exit(2);
}

// A launch that cannot run (reported, the harness goes on).
struct LaunchError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

constexpr int kPtrShift = 40;

// Buffers are allocated at 256-byte alignment, as by cuMemAlloc. Without
// AddressSanitizer each has a redzone of kRed bytes on either side, filled
// with kCanary and checked after the launch, so a kernel that writes
// outside a buffer fails; with it, the allocation is exactly the buffer,
// and the sanitizer reports any access outside it.
constexpr size_t kRed = EMU_ASAN ? 0 : 256;
constexpr unsigned char kCanary = 0xA5;

struct Buffer {
    uint32_t index = 0;
    uint64_t size = 0;
    unsigned char* base = nullptr;
    unsigned char* data = nullptr;

    void alloc() {
        void* p = nullptr;
        if (posix_memalign(&p, 256, kRed + (size ? size : 1) + kRed) != 0) die("out of memory");
        base = static_cast<unsigned char*>(p);
        data = base + kRed;
        std::memset(base, kCanary, kRed);
        std::memset(data + size, kCanary, kRed);
    }

    // damage returns a description of writes into the redzones ("" if none).
    std::string damage() const {
        long before = -1, after = -1;
        for (size_t i = 0; i < kRed; i++) {
            if (base[i] != kCanary && before < 0) before = (long)(kRed - i);
            if (data[size + i] != kCanary) after = (long)i + 1;
        }
        std::string out;
        if (before > 0) out += "wrote up to " + std::to_string(before) + " bytes before the start of buffer " + std::to_string(index);
        if (after > 0) {
            if (!out.empty()) out += "; ";
            out += "wrote up to " + std::to_string(after) + " bytes past the end of buffer " + std::to_string(index) +
                   " (" + std::to_string(size) + " bytes)";
        }
        return out;
    }
};

struct Memory {
    std::vector<Buffer> bufs;

    ~Memory() {
        for (Buffer& b : bufs) std::free(b.base);
    }

    // translate maps a fake device address to host memory, checking the
    // buffer, the offset and the alignment the pointee type needs.
    void* translate(uint64_t p, size_t align, const char* kernel, int arg) {
        if (p == 0) return nullptr;
        uint64_t idx = p >> kPtrShift, off = p & ((uint64_t(1) << kPtrShift) - 1);
        std::string where = std::string(kernel) + ": argument " + std::to_string(arg);
        for (Buffer& b : bufs) {
            if (b.index != idx) continue;
            if (off > b.size)
                throw LaunchError(where + " points " + std::to_string(off) + " bytes into a buffer of " + std::to_string(b.size));
            if (off % align != 0)
                throw LaunchError(where + " is misaligned (offset " + std::to_string(off) + ", needs " + std::to_string(align) + ")");
            return b.data + off;
        }
        throw LaunchError(where + " is not a device pointer (buffer " + std::to_string(idx) + ")");
    }
};

template <class T>
T decode(uint64_t slot, Memory& mem, const char* kernel, int arg) {
    if constexpr (std::is_pointer_v<T>) {
        using P = std::remove_cv_t<std::remove_pointer_t<T>>;
        return static_cast<T>(mem.translate(slot, alignof(P), kernel, arg));
    } else {
        static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "kernel parameter wider than a slot");
        T v;
        std::memcpy(&v, &slot, sizeof(T));  // the low bytes, as the driver reads them
        return v;
    }
}

using Bound = emu::Kernel;

struct Entry {
    const char* name;
    int params;
    std::function<Bound(const uint64_t*, Memory&)> bind;
};

template <class... A, size_t... I>
Bound bind_args(void (*f)(A...), const uint64_t* s, Memory& mem, const char* name, std::index_sequence<I...>) {
    auto args = std::make_tuple(decode<A>(s[I], mem, name, (int)I)...);
    return [f, args]() { std::apply(f, args); };
}

template <class... A>
Entry make_entry(const char* name, void (*f)(A...)) {
    return Entry{name, (int)sizeof...(A), [f, name](const uint64_t* s, Memory& mem) {
                     return bind_args(f, s, mem, name, std::index_sequence_for<A...>{});
                 }};
}

#define PAD_KERNEL(ns, name) make_entry(#name, ns::name),
const Entry kernels[] = {
#include PAD_REGISTRY
};
#undef PAD_KERNEL

void read_exact(void* p, size_t n) {
    if (n > 0 && std::fread(p, 1, n, stdin) != n) die("truncated launch description");
}

template <class T>
T get() {
    T v;
    read_exact(&v, sizeof v);
    return v;
}

void write_all(const void* p, size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, stdout) != n) die("writing the results failed");
}

// serve reads the rest of one launch (after its magic) and runs it.
void serve() {
    uint32_t nlen = get<uint32_t>();
    std::string name(nlen, '\0');
    read_exact(name.data(), nlen);
    dim3 grid, blk;
    grid.x = get<uint32_t>(), grid.y = get<uint32_t>(), grid.z = get<uint32_t>();
    blk.x = get<uint32_t>(), blk.y = get<uint32_t>(), blk.z = get<uint32_t>();
    uint32_t seed = get<uint32_t>();
    uint32_t eng = get<uint32_t>();
    uint32_t nargs = get<uint32_t>();
    std::vector<uint64_t> slots(nargs);
    for (auto& s : slots) s = get<uint64_t>();
    Memory mem;
    uint32_t nbuf = get<uint32_t>();
    for (uint32_t i = 0; i < nbuf; i++) {
        Buffer b;
        b.index = get<uint32_t>();
        b.size = get<uint64_t>();
        b.alloc();
        mem.bufs.push_back(b);
        read_exact(b.data, b.size);
    }

    std::string failure;
    try {
        if (eng > 1) throw LaunchError("unknown engine " + std::to_string(eng));
        const Entry* k = nullptr;
        for (const Entry& c : kernels)
            if (name == c.name) k = &c;
        if (!k) throw LaunchError("no kernel " + name);
        if ((int)nargs != k->params)
            throw LaunchError(name + ": launched with " + std::to_string(nargs) + " arguments, the kernel takes " +
                              std::to_string(k->params));
        // The launch limits of every device pad supports (compute capability ≥ 7).
        uint64_t nthreads = (uint64_t)blk.x * blk.y * blk.z;
        if (nthreads == 0 || nthreads > 1024 || blk.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
            grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
            throw LaunchError(name + ": invalid launch configuration");
        Bound fn = k->bind(slots.data(), mem);

        std::vector<uint3> order = block_order(grid, seed);
        launch(fn, grid, blk, order, eng == 0 ? Engine::threads : Engine::fibers);
        if (const char* e = error.load()) throw LaunchError(name + ": " + e);
        for (const Buffer& b : mem.bufs)
            if (std::string d = b.damage(); !d.empty()) throw LaunchError(name + ": " + d);
    } catch (const LaunchError& e) {
        failure = e.what();
    }

    write_all("PADEMU01", 8);
    uint32_t status = failure.empty() ? 0 : 1;
    write_all(&status, 4);
    if (status == 0) {
        for (const Buffer& b : mem.bufs) write_all(b.data, b.size);
    } else {
        uint32_t len = (uint32_t)failure.size();
        write_all(&len, 4);
        write_all(failure.data(), len);
    }
    if (std::fflush(stdout) != 0) die("writing the results failed");
}

}  // namespace emu

int main() {
    for (;;) {
        char magic[8];
        size_t got = std::fread(magic, 1, 8, stdin);
        if (got == 0 && std::feof(stdin)) break;
        if (got != 8 || std::memcmp(magic, "PADEMU01", 8) != 0) emu::die("bad magic");
        emu::serve();
    }
    emu::pool.stop();
    return 0;
}
