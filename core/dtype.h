/* Element types as safetensors names them, and exact conversions between 16-bit floats and f32. */
#ifndef AWQ_DTYPE_H
#define AWQ_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum awq_dtype {
	AWQ_DT_F64, AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16,
	AWQ_DT_I64, AWQ_DT_I32, AWQ_DT_I16, AWQ_DT_I8,
	AWQ_DT_U64, AWQ_DT_U32, AWQ_DT_U16, AWQ_DT_U8,
	AWQ_DT_BOOL, AWQ_DT_F8_E4M3, AWQ_DT_F8_E5M2,
	AWQ_DT_COUNT
};

size_t awq_dtype_size(enum awq_dtype t);
const char *awq_dtype_name(enum awq_dtype t);
/* 0 and *out set when name is a safetensors dtype string, -1 otherwise. */
int awq_dtype_from_name(const char *name, enum awq_dtype *out);

static inline float awq_bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t awq_f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

float awq_f16_to_f32(uint16_t h);
uint16_t awq_f32_to_f16(float f); /* round to nearest even, overflow to inf */

/* Read element i of a float tensor stored as F32, F16 or BF16. */
static inline float awq_load_float(const void *p, enum awq_dtype t, size_t i)
{
	switch (t) {
	case AWQ_DT_F32: return ((const float *)p)[i];
	case AWQ_DT_F16: return awq_f16_to_f32(((const uint16_t *)p)[i]);
	case AWQ_DT_BF16: return awq_bf16_to_f32(((const uint16_t *)p)[i]);
	default: return 0.0f;
	}
}

/* Write v as element i of a float tensor of type F32, F16 or BF16 (round to nearest even). */
static inline void awq_store_float(void *p, enum awq_dtype t, size_t i, float v)
{
	switch (t) {
	case AWQ_DT_F32: ((float *)p)[i] = v; break;
	case AWQ_DT_F16: ((uint16_t *)p)[i] = awq_f32_to_f16(v); break;
	case AWQ_DT_BF16: ((uint16_t *)p)[i] = awq_f32_to_bf16(v); break;
	default: break;
	}
}

#endif
