/* The grouping buffer of a MOE_EXPERTS node for prefill steps (written by moe_group.comp), in uint
 * words, for E experts and a capacity of S = max tokens x top_k slots:
 *   [0..3)  indirect dispatch of the gate/up grouped matmul, [4..7) of the down one;
 *   start[E + 1]    first permuted slot of each expert (start[E] = slots);
 *   slot_token[S]   permuted slot -> token;
 *   token_slot[S]   token * top_k + j -> permuted slot;
 *   tiles[2 T]      (expert, first row within it) of each 64-row tile, T = S / 64 + E + 1.
 * The host sizes the buffer with the same formula (vk_moe.c). */
#define MOE_START 8u

uint moe_slot_token(uint E)
{
	return MOE_START + E + 1u;
}

uint moe_token_slot(uint E, uint S)
{
	return moe_slot_token(E) + S;
}

uint moe_tiles(uint E, uint S)
{
	return moe_token_slot(E, S) + S;
}

/* A router id as an expert index that is always in range (the CPU backend rejects bad ids; a
 * shader cannot, so it never reads outside the experts). */
uint moe_expert(float id, uint E)
{
	return min(uint(clamp(id, 0.0, float(E - 1u))), E - 1u);
}
