/* The merge of attention.comp's key splits, for attn_combine.comp and attention.comp's last
 * workgroup: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M) over the S partials (D outputs,
 * then the running max m and sum l) at base of part[], into o[ob ..]. The includer declares part
 * and o; called by whole workgroups (it has barriers).
 *
 * Every split's m and l are loaded in one round (invocation s takes split s) and the factors
 * e^(m_s - M) are formed once, in shared memory; each output element's S partial values are then
 * loaded eight at a time before they are summed. Loaded split by split, as this merge first was,
 * each load waited for the one before: two chains of S L2 round trips for M and the sum, and a third
 * per output element, all after the decode attention's last workgroup has taken its ticket. Same
 * arithmetic in the same order as that form, so the same result bit for bit. */
#define MERGE_MAXS 33u /* the most splits vk_attn_splits gives, + 1 (the HD variants' FOLD split) */
#ifndef MERGE_SLICES
#define MERGE_SLICES 1u
#endif
/* MERGE_SLICES: parts of the workgroup that merge a head each at once (invocation t of nt, their
 * factors at mo = slice x MERGE_MAXS) */
shared float mrg_m[MERGE_MAXS * MERGE_SLICES], mrg_l[MERGE_MAXS * MERGE_SLICES], mrg_e[MERGE_MAXS * MERGE_SLICES];

void merge(uint base, uint S, uint D, uint ob, uint t, uint nt, uint mo)
{
	if (t < S) {
		mrg_m[mo + t] = part[base + t * (D + 2u) + D];
		mrg_l[mo + t] = part[base + t * (D + 2u) + D + 1u];
	}
	barrier();
	float M = -1.0e30;
	for (uint s = 0u; s < S; s++)
		M = max(M, mrg_m[mo + s]);
	float den = 0.0;
	for (uint s = 0u; s < S; s++)
		den += mrg_l[mo + s] * exp(mrg_m[mo + s] - M);
	if (t < S)
		mrg_e[mo + t] = exp(mrg_m[mo + t] - M);
	barrier();
	for (uint d = t; d < D; d += nt) {
		float num = 0.0;
		uint s = 0u;
		for (; s + 8u <= S; s += 8u) {
			float v[8];
			for (uint u = 0u; u < 8u; u++)
				v[u] = part[base + (s + u) * (D + 2u) + d];
			for (uint u = 0u; u < 8u; u++)
				num += v[u] * mrg_e[mo + s + u];
		}
		for (; s < S; s++)
			num += part[base + s * (D + 2u) + d] * mrg_e[mo + s];
		o[ob + d] = num / den;
	}
}
