/* Shared by every compute shader of the Vulkan backend. One descriptor set layout serves all
 * pipelines: binding 0 is the per-step buffer the host rewrites before each submit (positions and
 * RoPE tables), so a recorded command buffer stays valid when only the position changes;
 * bindings 1..5 are the node's operands. Weights of 16-bit types are read as uint words and widened
 * here, which needs no 16-bit storage feature. */
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

#ifndef STEP_ACCESS
#define STEP_ACCESS readonly /* chain.comp alone writes it */
#endif
layout(set = 0, binding = 0, std430) STEP_ACCESS buffer StepBuf {
	int pos;
	int n_tokens;
	int all_rows;
	int pad;
	float tab[];
} step;

/* Generic push constants: every shader names its own meaning for u0..u7, f0 and f1. */
layout(push_constant, std430) uniform Push {
	uint u0, u1, u2, u3, u4, u5, u6, u7;
	float f0, f1;
} pc;

#define DT_F32 0
#define DT_F16 1
#define DT_BF16 2

float widen16(uint h, int dt)
{
	return dt == DT_BF16 ? uintBitsToFloat(h << 16) : unpackHalf2x16(h).x;
}

/* Element i of an array of type dt read as uint words (f32: a word each; 16-bit: two per word, the
 * even element in the low half): the word to load is dt_word(i, dt), its value dt_value(word, i, dt). */
uint dt_word(uint i, int dt)
{
	return dt == DT_F32 ? i : i >> 1;
}

float dt_value(uint word, uint i, int dt)
{
	return dt == DT_F32 ? uintBitsToFloat(word) : widen16((word >> ((i & 1u) * 16u)) & 0xffffu, dt);
}

/* The workgroup index over a 2-D grid, for dispatches with more than 65535 groups in x. */
uint flat_group()
{
	return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}
