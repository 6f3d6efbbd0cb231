#include "cpu_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int awq_ref_embed(const struct awq_weight *w, const int32_t *tokens, int rows, float *out)
{
	for (int r = 0; r < rows; r++) {
		if (tokens[r] < 0 || tokens[r] >= w->n)
			return -1;
		for (int64_t c = 0; c < w->k; c++)
			out[(size_t)r * (size_t)w->k + (size_t)c] =
				awq_load_float(w->data, w->dtype, (size_t)tokens[r] * (size_t)w->k + (size_t)c);
	}
	return 0;
}

void awq_ref_rmsnorm(const float *x, int rows, int cols, int group, float eps, const struct awq_weight *w,
		     float *out)
{
	for (int r = 0; r < rows; r++) {
		for (int g0 = 0; g0 < cols; g0 += group) {
			const float *xi = x + (size_t)r * cols + g0;
			double ss = 0;
			for (int i = 0; i < group; i++)
				ss += (double)xi[i] * xi[i];
			float inv = 1.0f / sqrtf((float)(ss / group) + eps);
			for (int i = 0; i < group; i++)
				out[(size_t)r * cols + g0 + i] = xi[i] * inv * awq_load_float(w->data, w->dtype, (size_t)i);
		}
	}
}

void awq_ref_matmul_cols(const float *x, int rows, const struct awq_weight *w, int64_t n0, int64_t n1,
			 float *out)
{
	const int64_t K = w->k, N = w->n;
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * (size_t)K;
		for (int64_t n = n0; n < n1; n++) {
			double acc = 0;
			if (w->fmt == AWQ_WFMT_AWQ4) {
				for (int64_t k = 0; k < K; k++)
					acc += (double)xr[k] * awq_awq4_weight_at(w, k, n);
			} else {
				for (int64_t k = 0; k < K; k++)
					acc += (double)xr[k] * awq_load_float(w->data, w->dtype, (size_t)(n * K + k));
			}
			if (w->bias)
				acc += awq_load_float(w->bias, w->bias_dtype, (size_t)n);
			out[(size_t)r * (size_t)N + (size_t)n] = (float)acc;
		}
	}
}

void awq_ref_matmul(const float *x, int rows, const struct awq_weight *w, float *out)
{
	awq_ref_matmul_cols(x, rows, w, 0, w->n, out);
}

void awq_rope_inv_freq(const struct awq_rope *r, int head_dim, float *inv_freq, float *pos_scale)
{
	*pos_scale = 1.0f;
	for (int i = 0; i < head_dim / 2; i++) {
		double inv = pow((double)r->theta, -2.0 * i / head_dim);
		if (r->type == AWQ_ROPE_LLAMA3) {
			/* transformers' _compute_llama3_parameters */
			double wavelen = 2 * M_PI / inv;
			double low_wl = r->original_max_pos / r->low_freq_factor;
			double high_wl = r->original_max_pos / r->high_freq_factor;
			if (wavelen > low_wl) {
				inv /= r->factor;
			} else if (wavelen >= high_wl) {
				double smooth = (r->original_max_pos / wavelen - r->low_freq_factor) /
						(r->high_freq_factor - r->low_freq_factor);
				inv = (1 - smooth) * inv / r->factor + smooth * inv;
			}
		}
		inv_freq[i] = (float)inv;
	}
	if (r->type == AWQ_ROPE_LINEAR)
		*pos_scale = 1.0f / r->factor;
}

void awq_ref_rope(const float *x, int rows, int n_heads, int head_dim, const struct awq_rope *rope, int pos,
		  float *out)
{
	int half = head_dim / 2, cols = n_heads * head_dim;
	float *inv = malloc((size_t)half * sizeof(float)), ps;
	if (!inv)
		return;
	awq_rope_inv_freq(rope, head_dim, inv, &ps);
	for (int r = 0; r < rows; r++) {
		for (int h = 0; h < n_heads; h++) {
			const float *xi = x + (size_t)r * cols + h * head_dim;
			float *o = out + (size_t)r * cols + h * head_dim;
			for (int i = 0; i < half; i++) {
				float ang = (float)(pos + r) * ps * inv[i];
				float c = cosf(ang), s = sinf(ang);
				float x1 = xi[i], x2 = xi[i + half];
				o[i] = x1 * c - x2 * s;
				o[i + half] = x2 * c + x1 * s;
			}
		}
	}
	free(inv);
}

void awq_ref_attention(const float *q, const float *k, const float *v, int rows, int pos, int n_heads,
		       int n_kv_heads, int head_dim, float scale, float *kc, float *vc, float *out)
{
	int kv_dim = n_kv_heads * head_dim, q_dim = n_heads * head_dim, grp = n_heads / n_kv_heads;
	memcpy(kc + (size_t)pos * kv_dim, k, (size_t)rows * kv_dim * sizeof(float));
	memcpy(vc + (size_t)pos * kv_dim, v, (size_t)rows * kv_dim * sizeof(float));
	float *p = malloc((size_t)(pos + rows) * sizeof(float));
	if (!p)
		return;
	for (int r = 0; r < rows; r++) {
		int last = pos + r;
		for (int h = 0; h < n_heads; h++) {
			const float *qi = q + (size_t)r * q_dim + h * head_dim;
			int kh = h / grp;
			float mx = -INFINITY;
			for (int t = 0; t <= last; t++) {
				const float *kt = kc + (size_t)t * kv_dim + kh * head_dim;
				double d = 0;
				for (int i = 0; i < head_dim; i++)
					d += (double)qi[i] * kt[i];
				p[t] = (float)d * scale;
				mx = p[t] > mx ? p[t] : mx;
			}
			double sum = 0;
			for (int t = 0; t <= last; t++) {
				p[t] = expf(p[t] - mx);
				sum += p[t];
			}
			float *o = out + (size_t)r * q_dim + h * head_dim;
			for (int i = 0; i < head_dim; i++) {
				double acc = 0;
				for (int t = 0; t <= last; t++)
					acc += (double)p[t] * vc[(size_t)t * kv_dim + kh * head_dim + i];
				o[i] = (float)(acc / sum);
			}
		}
	}
	free(p);
}

void awq_ref_silu_mul(const float *a, const float *b, int n, float *out)
{
	for (int i = 0; i < n; i++)
		out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

void awq_ref_add(const float *a, const float *b, int n, float *out)
{
	for (int i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

void awq_ref_sigmoid_mul(const float *g, const float *x, int rows, int cols, float *out)
{
	for (int r = 0; r < rows; r++) {
		const float s = 1.0f / (1.0f + expf(-g[r]));
		for (int c = 0; c < cols; c++)
			out[(size_t)r * cols + c] = s * x[(size_t)r * cols + c];
	}
}

void awq_ref_argmax(const float *x, int rows, int cols, int32_t *out)
{
	for (int r = 0; r < rows; r++) {
		int best = 0;
		for (int c = 1; c < cols; c++)
			if (x[(size_t)r * cols + c] > x[(size_t)r * cols + best])
				best = c;
		out[r] = best;
	}
}
