#include "dtype.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[AWQ_DT_COUNT] = {
	[AWQ_DT_F64] = {"F64", 8},   [AWQ_DT_F32] = {"F32", 4},   [AWQ_DT_F16] = {"F16", 2},
	[AWQ_DT_BF16] = {"BF16", 2}, [AWQ_DT_I64] = {"I64", 8},   [AWQ_DT_I32] = {"I32", 4},
	[AWQ_DT_I16] = {"I16", 2},   [AWQ_DT_I8] = {"I8", 1},     [AWQ_DT_U64] = {"U64", 8},
	[AWQ_DT_U32] = {"U32", 4},   [AWQ_DT_U16] = {"U16", 2},   [AWQ_DT_U8] = {"U8", 1},
	[AWQ_DT_BOOL] = {"BOOL", 1}, [AWQ_DT_F8_E4M3] = {"F8_E4M3", 1},
	[AWQ_DT_F8_E5M2] = {"F8_E5M2", 1},
};

size_t awq_dtype_size(enum awq_dtype t)
{
	return (unsigned)t < AWQ_DT_COUNT ? dtypes[t].size : 0;
}

const char *awq_dtype_name(enum awq_dtype t)
{
	return (unsigned)t < AWQ_DT_COUNT ? dtypes[t].name : "?";
}

int awq_dtype_from_name(const char *name, enum awq_dtype *out)
{
	for (int i = 0; i < AWQ_DT_COUNT; i++) {
		if (strcmp(name, dtypes[i].name) == 0) {
			*out = (enum awq_dtype)i;
			return 0;
		}
	}
	return -1;
}

float awq_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t exp = (h >> 10) & 0x1fu;
	uint32_t man = h & 0x3ffu;
	uint32_t u;
	if (exp == 0) {
		if (man == 0) {
			u = sign;
		} else { /* subnormal: normalise */
			int e = -1;
			do {
				e++;
				man <<= 1;
			} while (!(man & 0x400u));
			u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
		}
	} else if (exp == 31) {
		u = sign | 0x7f800000u | (man << 13);
	} else {
		u = sign | ((exp + 127 - 15) << 23) | (man << 13);
	}
	float f;
	memcpy(&f, &u, 4);
	return f;
}

uint16_t awq_f32_to_f16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	uint32_t sign = (u >> 16) & 0x8000u;
	uint32_t abs = u & 0x7fffffffu;
	if (abs > 0x7f800000u)
		return (uint16_t)(sign | 0x7e00u);
	if (abs >= 0x477ff000u) /* rounds to >= 65520: inf */
		return (uint16_t)(sign | 0x7c00u);
	if (abs < 0x38800000u) { /* below f16 normal range: subnormal or zero */
		if (abs < 0x33000000u)
			return (uint16_t)sign;
		uint32_t e = abs >> 23;
		uint32_t m = (abs & 0x7fffffu) | 0x800000u;
		uint32_t shift = 126 - e; /* 14..24 */
		uint32_t half = 1u << (shift - 1);
		uint32_t r = m >> shift;
		uint32_t rem = m & ((1u << shift) - 1);
		if (rem > half || (rem == half && (r & 1u)))
			r++;
		return (uint16_t)(sign | r);
	}
	uint32_t r = abs - 0x38000000u; /* rebias exponent 127 -> 15 */
	uint32_t base = r >> 13;
	uint32_t rem = r & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (base & 1u)))
		base++;
	return (uint16_t)(sign | base);
}
