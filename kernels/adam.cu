// Adam over several tensors of one flat parameter buffer in one launch
// (backend.AdamElem, in PyTorch's order of operations). blockIdx.y picks
// the segment; each segment has its own offset, length, step size
// lr/(1−β1^t) and √(1−β2^t).

struct adam_seg {
    long off, len;
    float step_size, bc2_sqrt;
};

extern "C" __global__ void pad_adam(float* p, const float* g, float* m, float* v, const adam_seg* segs,
                                    float beta1, float beta2, float eps) {
    adam_seg s = segs[blockIdx.y];
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < s.len; i += (long)blockDim.x * gridDim.x) {
        long k = s.off + i;
        float gi = g[k];
        float mi = m[k], vi = v[k];
        mi += (1.0f - beta1) * (gi - mi);
        vi = beta2 * vi + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(vi) / s.bc2_sqrt + eps;
        p[k] -= s.step_size * mi / denom;
        m[k] = mi;
        v[k] = vi;
    }
}
