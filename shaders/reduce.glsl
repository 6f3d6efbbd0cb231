/* Workgroup reductions through subgroup operations and a small shared array (up to 64 subgroups:
 * the host checks workgroup size / minimum subgroup size against it). Every invocation of the
 * workgroup must call these. */
shared float red_f[64];

/* Sum / max of v over subgroups first .. first + n - 1 of the workgroup (a part of it made of whole
 * subgroups: attention.comp's slices), through red_f[first ..]; every invocation of the workgroup
 * must call them, each with its own part. */
float part_sum(float v, uint first, uint n)
{
	v = subgroupAdd(v);
	if (subgroupElect())
		red_f[gl_SubgroupID] = v;
	barrier();
	float t = 0.0;
	for (uint i = 0; i < n; i++)
		t += red_f[first + i];
	barrier();
	return t;
}

float part_max(float v, uint first, uint n)
{
	v = subgroupMax(v);
	if (subgroupElect())
		red_f[gl_SubgroupID] = v;
	barrier();
	float t = red_f[first];
	for (uint i = 1; i < n; i++)
		t = max(t, red_f[first + i]);
	barrier();
	return t;
}

/* Sum of v over the workgroup (every invocation must call it). */
float wg_sum(float v)
{
	return part_sum(v, 0u, gl_NumSubgroups);
}

float wg_max(float v)
{
	return part_max(v, 0u, gl_NumSubgroups);
}
