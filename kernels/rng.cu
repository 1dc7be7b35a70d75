// Random numbers and occlusion masks from the counter-based generator
// (internal/rng and backend.Occlusion define them; these kernels must
// reproduce them exactly).

// The key of a stream is read from device memory (kernels.KeyWords: seed
// low and high word, stream, sequence low and high word), not passed by
// value: a captured CUDA graph then draws new numbers on every replay once
// the host has written the next iteration's key there.
#define KEY_PARAMS const u32* __restrict__ key
#define MAKE_KEY philox_key k = {key[0], key[1], key[2], key[3], key[4]}

// Normal numbers 0..n−1 of the stream: thread t computes block t, i.e.
// numbers 4t..4t+3 (Box–Muller on word pairs (0,1) and (2,3)).

extern "C" __global__ void pad_rand_normal(float* dst, long n, KEY_PARAMS) {
    MAKE_KEY;
    long blocks = (n + 3) / 4;
    for (long b = (long)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += (long)blockDim.x * gridDim.x) {
        uint4 w = philox_block(k, (u32)b);
        float v[4];
        box_muller(uniform_from_word(w.x), uniform_from_word(w.y), &v[0], &v[1]);
        box_muller(uniform_from_word(w.z), uniform_from_word(w.w), &v[2], &v[3]);
        for (int j = 0; j < 4 && b * 4 + j < n; j++) dst[b * 4 + j] = v[j];
    }
}

extern "C" __global__ void pad_rand_uniform(float* dst, long n, KEY_PARAMS) {
    MAKE_KEY;
    long blocks = (n + 3) / 4;
    for (long b = (long)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += (long)blockDim.x * gridDim.x) {
        uint4 w = philox_block(k, (u32)b);
        for (int j = 0; j < 4 && b * 4 + j < n; j++) dst[b * 4 + j] = uniform_from_word(uint4_get(w, j));
    }
}

// Occlusion masks (backend.Occlusion.Mask): masks planes of h·w values.
// p < 0: drawn per mask; tile <= 0: drawn per mask from 1..max_tile.
extern "C" __global__ void pad_occlusion_mask(float* mask, int h, int w, int masks, float p_fixed, int tile_fixed,
                                              int max_tile, KEY_PARAMS) {
    MAKE_KEY;
    long total = (long)masks * h * w;
    int bpm = 1 + (h * w + 3) / 4;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)blockDim.x * gridDim.x) {
        int m = (int)(i / ((long)h * w));
        int pix = (int)(i % ((long)h * w));
        int y = pix / w, x = pix % w;
        uint4 head = philox_block(k, (u32)(m * bpm));
        float p = p_fixed >= 0.0f ? p_fixed : uniform_from_word(head.x);
        int t = tile_fixed > 0 ? tile_fixed : 1 + (int)(((u64)head.y * (u64)max_tile) >> 32);
        int gw = (w + t - 1) / t;
        int j = (y / t) * gw + x / t;
        uint4 tw = philox_block(k, (u32)(m * bpm + 1 + j / 4));
        mask[i] = uniform_from_word(uint4_get(tw, j % 4)) < p ? 0.0f : 1.0f;
    }
}
