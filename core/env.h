/* Settings from environment variables, shared by the backends and the performance model. */
#ifndef AWQ_ENV_H
#define AWQ_ENV_H

/* An integer setting from environment variable var: def when unset or empty, else its value if it
 * is a whole number in [lo, hi]; anything else is reported on stderr and def used. */
int awq_env_int(const char *var, int def, int lo, int hi);

/* The CUDA backend's AWQ prefill route, which the performance model predicts too: AWQ matmuls of at
 * least this many rows dequantise their weight to an f16 copy and run cuBLAS (AWQ_CUDA_DEQ_ROWS,
 * default AWQ_CUDA_DEQ_ROWS_DEFAULT; 0 = never; decode-sized steps always take the GEMVs, so 1-8
 * mean 9). */
#define AWQ_CUDA_DEQ_ROWS_DEFAULT 256
int awq_cuda_deq_rows(void);

#endif
