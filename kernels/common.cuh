// Shared definitions of pad's CUDA kernels. It is prepended to every
// kernel family (one .cu file each) before NVRTC compiles it.
//
// The random numbers follow internal/rng (Philox4x32-10, counter layout
// c0 = block, c1/c2 = sequence, c3 = stream, key = seed) exactly, so the
// device draws the same numbers as the CPU backend.

typedef unsigned int u32;
typedef unsigned long long u64;

struct philox_key {
    u32 seed_lo, seed_hi, stream, seq_lo, seq_hi;
};

__device__ __forceinline__ uint4 philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
#pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        u32 hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        u32 hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
    return make_uint4(c0, c1, c2, c3);
}

__device__ __forceinline__ uint4 philox_block(philox_key k, u32 block) {
    return philox4x32_10(block, k.seq_lo, k.seq_hi, k.stream, k.seed_lo, k.seed_hi);
}

__device__ __forceinline__ u32 uint4_get(uint4 v, int i) {
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// uniform_from_word: (top 23 bits + 0.5) · 2^-23, exact in float32.
__device__ __forceinline__ float uniform_from_word(u32 x) {
    return ((float)(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// box_muller in double, rounded once (as rng.BoxMuller).
__device__ __forceinline__ void box_muller(float u1, float u2, float* n0, float* n1) {
    double r = sqrt(-2.0 * log((double)u1));
    double s, c;
    sincos(2.0 * 3.141592653589793 * (double)u2, &s, &c);
    *n0 = (float)(r * c);
    *n1 = (float)(r * s);
}

// Block-wide sum of doubles; every thread gets the result. blockDim.x must
// be a multiple of 32 and at most 1024.
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = threadIdx.x < nw ? warp_sums[threadIdx.x] : 0.0;
    if (warp == 0) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) warp_sums[0] = v;
    }
    __syncthreads();
    double r = warp_sums[0];
    __syncthreads();
    return r;
}
