/* loomctl_xpath.c - `loomctl xpath eval`: compile a FIM XPath filter and
 * evaluate it offline against resources read from a YAML file, printing
 * the ObjectIDs it selects. Needs no configuration, no store and no bus:
 * it is the policy service's compiler and evaluator (lib/loom_xpath.h) with
 * the in-memory provider (lib/loom_xpath_mem.h), run once.
 */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_xpath.h"
#include "loom_xpath_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "loomctl xpath eval"

/* Exit statuses. */
#define EXIT_FILE 1     /* the resources file cannot be read or is wrong */
#define EXIT_FILTER 2   /* the filter does not parse, or bad usage */
#define EXIT_EVAL 3     /* the filter parses but the resources make it meaningless */

/* Prints the line of text the error points at and a caret under its column. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}


static bool is_flag(const char *a, const char *flag)
{
	size_t n = strlen(flag);
	return strncmp(a, flag, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

int ctl_xpath(ctl_t *ctl, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "eval") != 0) {
		fprintf(stderr, "loomctl xpath: expected 'eval FILTER --resources FILE' (see loomctl xpath --help)\n");
		return EXIT_FILTER;
	}
	const char *filter_arg = NULL, *res_path = NULL, *now_arg = NULL;
	bool json = ctl->json, options = true;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!options || a[0] != '-' || a[1] == '\0') {
			if (filter_arg) {
				fprintf(stderr, CMD ": more than one filter ('%s' and '%s'); quote the filter\n", filter_arg, a);
				return EXIT_FILTER;
			}
			filter_arg = a;
		} else if (strcmp(a, "--") == 0) {
			options = false;
		} else if (is_flag(a, "--resources") || strcmp(a, "-r") == 0) {
			if ((res_path = ctl_option_value(CMD, argc, argv, &i, "--resources", a[1] == 'r' ? 2 : 11)) == NULL)
				return EXIT_FILTER;
		} else if (is_flag(a, "--now")) {
			if ((now_arg = ctl_option_value(CMD, argc, argv, &i, "--now", 5)) == NULL)
				return EXIT_FILTER;
		} else if (strcmp(a, "-o") == 0 || is_flag(a, "--output")) {
			const char *v = ctl_option_value(CMD, argc, argv, &i, "--output", a[1] == 'o' ? 2 : 8);
			if (v == NULL)
				return EXIT_FILTER;
			if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
				fprintf(stderr, CMD ": bad --output '%s': expected text or json\n", v);
				return EXIT_FILTER;
			}
			json = strcmp(v, "json") == 0;
		} else {
			fprintf(stderr, CMD ": unknown option '%s' (see loomctl xpath --help)\n", a);
			return EXIT_FILTER;
		}
	}
	if (filter_arg == NULL) {
		fprintf(stderr, CMD ": expected a FILTER (see loomctl xpath --help)\n");
		return EXIT_FILTER;
	}
	if (res_path == NULL) {
		fprintf(stderr, CMD ": expected --resources FILE (see loomctl xpath --help)\n");
		return EXIT_FILTER;
	}
	loom_xpath_eval_opts_t eo = { 0 };
	if (now_arg && loom_xpath_parse_time(now_arg, strlen(now_arg), &eo.now_us) < 0) {
		fprintf(stderr, CMD ": bad --now '%s': expected a datetime such as 2026-01-02T03:04:05Z\n", now_arg);
		return EXIT_FILTER;
	}
	int status = EXIT_FILTER;
	char *text = strcmp(filter_arg, "-") == 0 ? ctl_read_stdin() : loom_strdup(filter_arg);
	/* a filter piped in ends with a newline that is not part of it */
	size_t tl = strlen(text);
	while (tl && (text[tl - 1] == '\n' || text[tl - 1] == '\r'))
		text[--tl] = '\0';
	loom_xpath_t *x = NULL;
	loom_xpath_error_t err = { 0 };
	loom_xpath_mem_t *m = NULL;
	loom_xpath_result_t r;
	loom_xpath_result_init(&r);
	if (loom_xpath_compile(text, NULL, &x, &err) < 0) {
		fprintf(stderr, CMD ": %s\n", err.text);
		ctl_show_caret(text, err.line, err.column);
		goto out;
	}
	m = loom_xpath_mem_new();
	char *lerr = NULL;
	if (loom_xpath_mem_load_yaml(m, res_path, &lerr) < 0) {
		fprintf(stderr, CMD ": %s\n", lerr);
		free(lerr);
		status = EXIT_FILE;
		goto out;
	}
	if (loom_xpath_mem_compute_sets(m, &eo, &lerr) < 0) {
		fprintf(stderr, CMD ": %s\n", lerr);
		free(lerr);
		status = EXIT_FILE;
		goto out;
	}
	loom_xpath_provider_t p;
	loom_xpath_mem_provider(m, &p);
	if (loom_xpath_eval(x, &p, &eo, &r, &err) < 0) {
		fprintf(stderr, CMD ": %s\n", err.text);
		ctl_show_caret(text, err.line, err.column);
		status = EXIT_EVAL;
		goto out;
	}
	const char **ids = loom_malloc((r.n ? r.n : 1) * sizeof *ids);
	for (size_t i = 0; i < r.n; i++)
		ids[i] = loom_xpath_mem_object_id(m, r.rids[i]);
	qsort(ids, r.n, sizeof *ids, cmp_str);
	loom_buf_t b = LOOM_BUF_INIT;
	if (json) {
		loom_buf_addc(&b, '[');
		for (size_t i = 0; i < r.n; i++) {
			if (i)
				loom_buf_addc(&b, ',');
			loom_buf_add_json_str(&b, ids[i], strlen(ids[i]));
		}
		loom_buf_adds(&b, "]\n");
	} else {
		for (size_t i = 0; i < r.n; i++)
			loom_buf_printf(&b, "%s\n", ids[i]);
	}
	fputs(loom_buf_cstr(&b), stdout);
	loom_buf_release(&b);
	free(ids);
	status = 0;
out:
	loom_xpath_error_release(&err);
	loom_xpath_result_release(&r);
	loom_xpath_mem_destroy(&m);
	loom_xpath_destroy(&x);
	free(text);
	return status;
}
