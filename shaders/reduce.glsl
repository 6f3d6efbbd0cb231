/* Workgroup reductions through subgroup operations and a small shared array (up to 64 subgroups:
 * the host checks workgroup size / minimum subgroup size against it). Every invocation of the
 * workgroup must call these. */
shared float red_f[64];

/* Sum of v over the workgroup (every invocation must call it). */
float wg_sum(float v)
{
	v = subgroupAdd(v);
	if (subgroupElect())
		red_f[gl_SubgroupID] = v;
	barrier();
	float t = 0.0;
	for (uint i = 0; i < gl_NumSubgroups; i++)
		t += red_f[i];
	barrier();
	return t;
}

float wg_max(float v)
{
	v = subgroupMax(v);
	if (subgroupElect())
		red_f[gl_SubgroupID] = v;
	barrier();
	float t = red_f[0];
	for (uint i = 1; i < gl_NumSubgroups; i++)
		t = max(t, red_f[i]);
	barrier();
	return t;
}
