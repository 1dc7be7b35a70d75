// Reductions: bias gradients, the losses (MSE, BCE, KL of batch
// statistics) with their gradients, means. Sums are accumulated in double
// in a fixed order, so results are deterministic run to run.

#define GRID_STRIDE(i, n) for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

// db[c] = Σ_{n,hw} dy[n, c, hw] + beta·db[c]; one block per channel.
extern "C" __global__ void pad_bias_grad(const float* dy, float* db, int n, int c, int hw, float beta) {
    int ch = blockIdx.x;
    double s = 0.0;
    long cnt = (long)n * hw;
    for (long k = threadIdx.x; k < cnt; k += blockDim.x) {
        long img = k / hw, p = k % hw;
        s += (double)dy[(img * c + ch) * hw + p];
    }
    s = block_sum(s);
    if (threadIdx.x == 0) db[ch] = (float)(s + (double)beta * (double)db[ch]);
}

// Stage 1 of the loss reductions: each block sums its part into
// partial[blockIdx.x] (double). Stage 2 (pad_finish_mean) adds the partials
// in order. The gradients are written elementwise in stage 1.

// MSE: partial Σ (a−b)²; grad = scale·2(a−b)/n (if grad).
extern "C" __global__ void pad_mse_partial(const float* a, const float* b, float* grad, double* partial, long n, float scale) {
    double s = 0.0;
    double k = 2.0 * (double)scale / (double)n;
    GRID_STRIDE(i, n) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
        if (grad) grad[i] = (float)(k * d);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// BCE with PyTorch's clamp of each log at −100; grad follows PyTorch's
// (d − t) / max(d(1 − d), 1e-12) / n, times scale.
extern "C" __global__ void pad_bce_partial(const float* d, float target, float* grad, double* partial, long n, float scale) {
    double s = 0.0;
    double t = (double)target;
    GRID_STRIDE(i, n) {
        double p = (double)d[i];
        s -= t * fmax(log(p), -100.0) + (1.0 - t) * fmax(log(1.0 - p), -100.0);
        if (grad) grad[i] = (float)((double)scale * (p - t) / fmax(p * (1.0 - p), 1e-12) / (double)n);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out[0] = (Σ partial[0..parts)) / divisor, summed in order by one block.
extern "C" __global__ void pad_finish_mean(const double* partial, int parts, double divisor, float* out) {
    double s = 0.0;
    // Each thread sums a contiguous run, then the runs are added in
    // thread order: a fixed order for a fixed launch.
    int per = (parts + blockDim.x - 1) / blockDim.x;
    for (int k = threadIdx.x * per; k < min(parts, (threadIdx.x + 1) * per); k++) s += partial[k];
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = (float)(s / divisor);
}

// KL of batch statistics, one block per latent unit j:
// term_j = (s² + m²)/2 − log s − 1/2 with m the batch mean and s the
// unbiased std of column j of z [n, nz]; grad (if not null) =
// scale·(1/nz)·(m/N + (s − 1/s)(z − m)/((N−1)s)) + beta·grad.
extern "C" __global__ void pad_kl_batch(const float* z, int n, int nz, double* terms, float* grad, float scale, float beta) {
    int j = blockIdx.x;
    double m = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m += (double)z[(long)i * nz + j];
    m = block_sum(m) / (double)n;
    double v = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        double d = (double)z[(long)i * nz + j] - m;
        v += d * d;
    }
    v = block_sum(v) / (double)(n - 1);
    double s = sqrt(v);
    if (threadIdx.x == 0) terms[j] = (v + m * m) / 2.0 - log(s) - 0.5;
    if (grad) {
        double k = (double)scale / (double)nz;
        double a = (s - 1.0 / s) / ((double)(n - 1) * s);
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            long idx = (long)i * nz + j;
            double g = k * (m / (double)n + a * ((double)z[idx] - m));
            grad[idx] = (float)(g + (double)beta * (double)grad[idx]);
        }
    }
}

// Partial sums of x (for Mean).
extern "C" __global__ void pad_sum_partial(const float* x, double* partial, long n) {
    double s = 0.0;
    GRID_STRIDE(i, n) s += (double)x[i];
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out[0] = mean over rows of the Euclidean norm of each row of x [rows, cols];
// one block.
extern "C" __global__ void pad_row_norm_mean(const float* x, int rows, int cols, float* out) {
    double total = 0.0;
    for (int r = 0; r < rows; r++) {
        double q = 0.0;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            double v = (double)x[(long)r * cols + c];
            q += v * v;
        }
        q = block_sum(q);
        total += sqrt(q);
    }
    if (threadIdx.x == 0) out[0] = (float)(total / (double)rows);
}
