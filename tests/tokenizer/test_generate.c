/* Generation golden through the API: the tiny Qwen3 of tests/data/gen/qwen3-tiny
 * (tools/reference/make_gen_golden.py). The chat-formatted prompt must encode to transformers'
 * ids, greedy decoding (device argmax, and full logits through the sampler at temperature 0) must
 * give generate()'s tokens, and the generated text must decode as the tokenizers library does.
 *   test_generate DIR [--backend NAME] */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "awqrun_text.h"
#include "awq_test.h"

static int ids_equal(const cJSON *arr, const int32_t *v, int n)
{
	if (cJSON_GetArraySize(arr) != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (cJSON_GetArrayItem(arr, i)->valueint != v[i])
			return 0;
	return 1;
}

static void print_ids(const char *label, const int32_t *v, int n)
{
	fprintf(stderr, "%s:", label);
	for (int i = 0; i < n; i++)
		fprintf(stderr, " %d", v[i]);
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	const char *backend = argc > 3 && !strcmp(argv[2], "--backend") ? argv[3] : "cpu";
	char err[AWQ_ERRLEN], path[4096], *text, *formatted, *decoded;
	awq_tokenizer *tok;
	awq_model *m;
	awq_session *s;
	struct awq_chat chat;
	int fails = 0, n_prompt;
	int32_t *prompt, gen_a[64], gen_b[64];
	if (argc < 2)
		return 2;
	snprintf(path, sizeof(path), "%s/golden.json", argv[1]);
	cJSON *g = (text = awq_test_slurp(path)) ? cJSON_Parse(text) : NULL;
	if (!g || awq_tokenizer_load(argv[1], &tok, err, sizeof(err)) ||
	    awq_chat_detect(awq_tokenizer_chat_template(tok), awq_tokenizer_bos_text(tok), &chat, err, sizeof(err))) {
		fprintf(stderr, "FAIL setup: %s\n", g ? err : path);
		return 1;
	}
	struct awq_chat_msg msg = {"user", cJSON_GetObjectItem(g, "prompt")->valuestring};
	if (awq_chat_format(&chat, &msg, 1, 1, 0, &formatted) ||
	    awq_tokenizer_encode(tok, formatted, strlen(formatted), 0, &prompt, &n_prompt, err, sizeof(err)))
		return fprintf(stderr, "FAIL encode\n"), 1;
	if (strcmp(formatted, cJSON_GetObjectItem(g, "chat_text")->valuestring))
		fails++, fprintf(stderr, "FAIL chat text: %s\n", formatted);
	if (!ids_equal(cJSON_GetObjectItem(g, "prompt_ids"), prompt, n_prompt))
		fails++, print_ids("FAIL prompt ids", prompt, n_prompt);

	const cJSON *want = cJSON_GetObjectItem(g, "generated_ids");
	int n_gen = cJSON_GetArraySize(want);
	struct awq_session_opts so;
	awq_session_opts_default(&so);
	so.backend = backend;
	so.quiet = 1;
	so.max_ctx = 256;
	if (n_gen > 64 || awq_model_load(argv[1], &m, err, sizeof(err)) || awq_session_create(m, &so, &s, err, sizeof(err)))
		return fprintf(stderr, "FAIL model: %s\n", err), 77;
	struct awq_model_info mi;
	awq_model_get_info(m, &mi);

	/* device argmax */
	int rc = awq_session_eval_greedy(s, prompt, n_prompt, 0, &gen_a[0], err, sizeof(err));
	for (int i = 1; i < n_gen && !rc; i++)
		rc = awq_session_eval_greedy(s, &gen_a[i - 1], 1, n_prompt + i - 1, &gen_a[i], err, sizeof(err));
	/* full logits and the sampler at temperature 0 */
	struct awq_sampler_opts o;
	struct awq_sampler smp;
	float *logits = malloc(sizeof(float) * (size_t)mi.vocab);
	awq_sampler_opts_default(&o);
	o.temperature = 0;
	rc = rc ? rc : awq_sampler_init(&smp, &o, mi.vocab, err, sizeof(err));
	rc = rc ? rc : awq_session_eval(s, prompt, n_prompt, 0, 0, logits, err, sizeof(err));
	for (int i = 0; i < n_gen && !rc; i++) {
		gen_b[i] = awq_sampler_sample(&smp, logits, NULL, 0);
		if (i + 1 < n_gen)
			rc = awq_session_eval(s, &gen_b[i], 1, n_prompt + i, 0, logits, err, sizeof(err));
	}
	if (rc)
		return fprintf(stderr, "FAIL eval: %s\n", err), 1;
	if (!ids_equal(want, gen_a, n_gen))
		fails++, print_ids("FAIL greedy (device argmax)", gen_a, n_gen);
	if (!ids_equal(want, gen_b, n_gen))
		fails++, print_ids("FAIL greedy (logits + sampler)", gen_b, n_gen);
	size_t dl;
	if (awq_tokenizer_decode(tok, gen_a, n_gen, 1, &decoded, &dl, err, sizeof(err)) ||
	    strcmp(decoded, cJSON_GetObjectItem(g, "generated_text")->valuestring))
		fails++, fprintf(stderr, "FAIL decoded text\n");
	printf("generate: prompt %d tokens, %d greedy tokens on %s, %d failures\n", n_prompt, n_gen, backend, fails);
	free(decoded);
	free(logits);
	free(prompt);
	free(formatted);
	awq_sampler_free(&smp);
	awq_session_free(s);
	awq_model_free(m);
	awq_tokenizer_free(tok);
	cJSON_Delete(g);
	free(text);
	return fails ? 1 : 0;
}
