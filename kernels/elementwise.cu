// Elementwise kernels: activations and their backwards, scaling, latent
// mixing, occlusion masks applied to images, bias addition. Transcendental
// functions are evaluated in double and rounded once, as the CPU backend
// does.

#define GRID_STRIDE(i, n) for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

extern "C" __global__ void pad_fill(float* x, float v, long n) {
    GRID_STRIDE(i, n) x[i] = v;
}

extern "C" __global__ void pad_leaky_relu(float* x, float slope, long n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        if (v < 0.0f) x[i] = v * slope;
    }
}

extern "C" __global__ void pad_leaky_relu_backward(const float* y, float* dy, float slope, long n) {
    GRID_STRIDE(i, n) {
        if (y[i] <= 0.0f) dy[i] *= slope;
    }
}

extern "C" __global__ void pad_tanh(float* x, long n) {
    GRID_STRIDE(i, n) x[i] = (float)tanh((double)x[i]);
}

extern "C" __global__ void pad_tanh_backward(const float* y, float* dy, long n) {
    GRID_STRIDE(i, n) {
        float v = y[i];
        dy[i] *= 1.0f - v * v;
    }
}

extern "C" __global__ void pad_sigmoid(float* x, long n) {
    GRID_STRIDE(i, n) x[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

extern "C" __global__ void pad_sigmoid_backward(const float* y, float* dy, long n) {
    GRID_STRIDE(i, n) {
        float v = y[i];
        dy[i] *= v * (1.0f - v);
    }
}

extern "C" __global__ void pad_scale(float* x, float a, long n) {
    GRID_STRIDE(i, n) x[i] *= a;
}

// y = a·x + b·y
extern "C" __global__ void pad_axpby(float* y, const float* x, float a, float b, long n) {
    GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}

// dst = a·z + b·z_old + c·noise; z_old and noise may be null (weight 0).
extern "C" __global__ void pad_latent_mix(float* dst, const float* z, const float* z_old, const float* noise,
                                          float a, float b, float c, long n) {
    GRID_STRIDE(i, n) {
        float v = a * z[i];
        if (z_old) v += b * z_old[i];
        if (noise) v += c * noise[i];
        dst[i] = v;
    }
}

// x [n, c, hw] *= mask [hw] (shared) or [n, hw] (per image).
extern "C" __global__ void pad_apply_mask(float* x, const float* mask, int n, int c, int hw, int per_image) {
    long total = (long)n * c * hw;
    GRID_STRIDE(i, total) {
        int p = (int)(i % hw);
        int img = (int)(i / ((long)c * hw));
        x[i] *= per_image ? mask[(long)img * hw + p] : mask[p];
    }
}

// y [n, c, hw] += b[c]
extern "C" __global__ void pad_bias_add(float* y, const float* b, int n, int c, int hw) {
    long total = (long)n * c * hw;
    GRID_STRIDE(i, total) {
        int ch = (int)((i / hw) % c);
        y[i] += b[ch];
    }
}

// y [n, c, hw] = act(y + b[c]), act 0 none, 1 LeakyReLU(slope), 2 tanh,
// 3 sigmoid: the arithmetic of pad_bias_add followed by the activation's
// kernel, in one pass.
extern "C" __global__ void pad_bias_act(float* y, const float* b, int n, int c, int hw, int act, float slope) {
    long total = (long)n * c * hw;
    GRID_STRIDE(i, total) {
        int ch = (int)((i / hw) % c);
        float v = y[i] + b[ch];
        switch (act) {
        case 1:
            if (v < 0.0f) v = v * slope;
            break;
        case 2:
            v = (float)tanh((double)v);
            break;
        case 3:
            v = (float)(1.0 / (1.0 + exp(-(double)v)));
            break;
        }
        y[i] = v;
    }
}
