// simcompute.h: what the simulated cuDNN (cudnn.cpp) and cuBLAS (cublas.cpp)
// compute with: a thread pool whose results do not depend on the thread
// count, TF32 rounding, and the one double-accumulating tile kernel. Each
// library compiles its own copy (an anonymous namespace; hidden symbols).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <pthread.h>
#include <sched.h>

namespace {

// ---- Thread pool ----------------------------------------------------------------
// parallel_for hands out items by an atomic counter. Each item computes a
// disjoint set of output elements, each in a fixed order, so the results do
// not depend on which thread ran which item or on the number of threads.
// (Plain pthreads: std::unique_lock and friends would leak weak template
// symbols out of the library despite -fvisibility=hidden.)
class Pool {
public:
    static Pool& get() {
        static Pool* p = new Pool;  // never destroyed: its threads outlive static destructors
        return *p;
    }

    void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
        if (n == 0) return;
        // Serial when there is one thread, one item, or the pool is busy
        // (another stream's operation, or a nested call).
        if (nthreads_ <= 1 || n == 1 || pthread_mutex_trylock(&run_mu_) != 0) {
            for (size_t i = 0; i < n; i++) fn(i);
            return;
        }
        start();
        pthread_mutex_lock(&mu_);
        job_ = &fn;
        n_ = n;
        next_.store(0);
        pending_ = nworkers_;
        gen_++;
        pthread_cond_broadcast(&cv_);
        pthread_mutex_unlock(&mu_);
        work();
        pthread_mutex_lock(&mu_);
        while (pending_ > 0) pthread_cond_wait(&done_, &mu_);
        job_ = nullptr;
        pthread_mutex_unlock(&mu_);
        pthread_mutex_unlock(&run_mu_);
    }

private:
    Pool() {
        int n = 1;
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
        if (const char* e = getenv("PAD_CUDASIM_THREADS")) n = atoi(e);
        nthreads_ = std::clamp(n, 1, kMaxThreads);
    }

public:
    int threads() const { return nthreads_; }

private:
    void start() {
        if (started_) return;
        started_ = true;
        for (int i = 1; i < nthreads_; i++) {
            pthread_t t;
            if (pthread_create(&t, nullptr, &Pool::entry, this) != 0) break;
            pthread_detach(t);
            nworkers_++;
        }
    }
    static void* entry(void* self) {
        ((Pool*)self)->loop();
        return nullptr;
    }
    void work() {
        for (size_t i; (i = next_.fetch_add(1)) < n_;) (*job_)(i);
    }
    void loop() {
        uint64_t seen = 0;
        for (;;) {
            pthread_mutex_lock(&mu_);
            while (gen_ == seen) pthread_cond_wait(&cv_, &mu_);
            seen = gen_;
            pthread_mutex_unlock(&mu_);
            work();
            pthread_mutex_lock(&mu_);
            if (--pending_ == 0) pthread_cond_signal(&done_);
            pthread_mutex_unlock(&mu_);
        }
    }
    static constexpr int kMaxThreads = 256;
    int nthreads_ = 1, nworkers_ = 0;
    bool started_ = false;  // guarded by run_mu_
    pthread_mutex_t run_mu_ = PTHREAD_MUTEX_INITIALIZER, mu_ = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv_ = PTHREAD_COND_INITIALIZER, done_ = PTHREAD_COND_INITIALIZER;
    const std::function<void(size_t)>* job_ = nullptr;
    size_t n_ = 0;
    std::atomic<size_t> next_{0};
    int pending_ = 0;
    uint64_t gen_ = 0;
};

// ---- Numerics helpers -------------------------------------------------------------

// tf32 rounds a float to TF32 (10 explicit mantissa bits), to nearest even,
// as tensor cores read FP32 operands.
inline float tf32(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return f;  // Inf, NaN
    u += 0xfffu + ((u >> 13) & 1u);
    u &= ~0x1fffu;
    memcpy(&f, &u, 4);
    return f;
}

// NVIDIA_TF32_OVERRIDE=0 disables TF32 in every library, as on hardware.
bool tf32_allowed() {
    const char* e = getenv("NVIDIA_TF32_OVERRIDE");
    return !(e && e[0] == '0' && e[1] == 0);
}

typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

inline v8d load8(const float* p) {
    v8f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, v8d);
}

// tile is the one compute kernel: for t < NR and v < 16,
//   acc[t*16+v] += sum over l < L of bc[t*bs + l*bl] * vec[l*vs + v]
// with l in increasing order and one double accumulator per element. The
// operands are floats (converted exactly to double).
template <int NR>
void tile(long L, const float* vec, long vs, const float* bc, long bs, long bl, double* acc) {
    v8d a0[NR], a1[NR];
    for (int t = 0; t < NR; t++) {
        memcpy(&a0[t], acc + t * 16, 64);
        memcpy(&a1[t], acc + t * 16 + 8, 64);
    }
    for (long l = 0; l < L; l++) {
        const float* v = vec + l * vs;
        v8d x0 = load8(v), x1 = load8(v + 8);
        const float* b = bc + l * bl;
        for (int t = 0; t < NR; t++) {
            v8d bb = v8d{} + (double)b[t * bs];
            a0[t] += bb * x0;
            a1[t] += bb * x1;
        }
    }
    for (int t = 0; t < NR; t++) {
        memcpy(acc + t * 16, &a0[t], 64);
        memcpy(acc + t * 16 + 8, &a1[t], 64);
    }
}

constexpr int kNR = 6;  // rows per tile: 12 accumulators of 8 doubles

void tile_n(int nr, long L, const float* vec, long vs, const float* bc, long bs, long bl, double* acc) {
    switch (nr) {
        case 1: return tile<1>(L, vec, vs, bc, bs, bl, acc);
        case 2: return tile<2>(L, vec, vs, bc, bs, bl, acc);
        case 3: return tile<3>(L, vec, vs, bc, bs, bl, acc);
        case 4: return tile<4>(L, vec, vs, bc, bs, bl, acc);
        case 5: return tile<5>(L, vec, vs, bc, bs, bl, acc);
        default: return tile<6>(L, vec, vs, bc, bs, bl, acc);
    }
}

}  // namespace
