#version 450
/* out[r][c] = table[tokens[r]][c]; table [vocab, cols] stored as DT. An id outside the table
 * writes NaN (the session validates ids first, so this only shows a bug loudly). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(constant_id = 0) const int DT = 0;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Tok { int tokens[]; };
layout(set = 0, binding = 2, std430) readonly buffer Tab { uint w[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

/* u0 = cols, u1 = vocab */
void main()
{
	uint c = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y, cols = pc.u0;
	if (c >= cols)
		return;
	int t = tokens[r];
	if (t < 0 || uint(t) >= pc.u1) {
		o[r * cols + c] = uintBitsToFloat(0x7fc00000u);
		return;
	}
	uint i = uint(t) * cols + c;
	const float v = dt_value(w[dt_word(i, DT)], i, DT);
	o[r * cols + c] = v;
}
