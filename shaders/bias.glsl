/* The optional bias of the matrix shaders (matvec.comp, matvec_q4k.comp, matmul_tile.comp,
 * matmul_coopmat.comp): binding 7, of type BDT (specialisation constant 2), added where u4 != 0. */
layout(set = 0, binding = 7, std430) readonly buffer Bias { uint bias[]; };

float load_bias(uint n)
{
	return dt_value(bias[dt_word(n, BDT)], n, BDT);
}

#define BIAS(n) (pc.u4 != 0u ? load_bias(n) : 0.0)
