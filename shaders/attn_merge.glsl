/* The merge of attention.comp's key splits, for attn_combine.comp and attention.comp's last
 * workgroup: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M) over the S partials (D outputs,
 * then the running max m and sum l) at base of part[], into o[ob ..]. The includer declares part
 * and o. */
void merge(uint base, uint S, uint D, uint ob)
{
	float M = -1.0e30;
	for (uint s = 0u; s < S; s++)
		M = max(M, part[base + s * (D + 2u) + D]);
	float den = 0.0;
	for (uint s = 0u; s < S; s++)
		den += part[base + s * (D + 2u) + D + 1u] * exp(part[base + s * (D + 2u) + D] - M);
	for (uint d = gl_LocalInvocationID.x; d < D; d += gl_WorkGroupSize.x) {
		float num = 0.0;
		for (uint s = 0u; s < S; s++)
			num += part[base + s * (D + 2u) + d] * exp(part[base + s * (D + 2u) + D] - M);
		o[ob + d] = num / den;
	}
}
