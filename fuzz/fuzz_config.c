/* fuzz_config.c - the YAML configuration: lib/loom_config.c (libyaml
 * events against a key table: scalars, durations, sizes, lists, nested
 * sections, diagnostics with positions) behind each of its loaders. One
 * source, one target per loader (FUZZ_CFG_KIND):
 *   config_agent     lib/loom_agentcfg.c   config/agents/NAME.yaml
 *   config_sync      lib/loom_synccfg.c    config/sync/NAME.yaml (sync rules, expressions, scope filters)
 *   config_deploy    lib/loom_deploy.c     config/loom.yaml
 *   config_policy    workflow/workflow_schema.c  config/policy/NAME.yaml (schema, MPRs, sets)
 *   config_workflow  workflow/workflow_defs.c    config/policy/workflows/NAME.yaml
 *                    (against the schema of the repository's config/policy)
 * The loaders read files, as the processes do: the input is written to a
 * file of a private temporary directory first. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "loom_agentcfg.h"
#include "loom_config.h"
#include "loom_deploy.h"
#include "loom_synccfg.h"
#if FUZZ_CFG_KIND >= 3
#include "workflow.h"
#include "workflow_run.h"
#endif

static char dir[2048], sub[3072], file[4096];
#if FUZZ_CFG_KIND == 4
static wf_policy_t policy;
#endif

static void cleanup(void)
{
	unlink(file);
	rmdir(sub);
	char workflows[4200];
	snprintf(workflows, sizeof workflows, "%s/policy/workflows", dir);
	rmdir(workflows);
	char pol[4200];
	snprintf(pol, sizeof pol, "%s/policy/schema.yaml", dir);
	unlink(pol);
	snprintf(pol, sizeof pol, "%s/policy", dir);
	rmdir(pol);
	rmdir(dir);
}

static void write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		fprintf(stderr, "fuzz_config: cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/loom-fuzz-config.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "fuzz_config: cannot create %s: %s\n", dir, strerror(errno));
		exit(2);
	}
	atexit(cleanup);
#if FUZZ_CFG_KIND == 0
	snprintf(sub, sizeof sub, "%s/agents", dir);
	snprintf(file, sizeof file, "%s/hr.yaml", sub);
#elif FUZZ_CFG_KIND == 1
	snprintf(sub, sizeof sub, "%s/sync", dir);
	snprintf(file, sizeof file, "%s/people.yaml", sub);
#elif FUZZ_CFG_KIND == 2
	snprintf(sub, sizeof sub, "%s", dir);
	snprintf(file, sizeof file, "%s/loom.yaml", sub);
#elif FUZZ_CFG_KIND == 3
	snprintf(sub, sizeof sub, "%s/policy", dir);
	snprintf(file, sizeof file, "%s/schema.yaml", sub);
#else
	/* The repository's schema, and the input as the one workflow file. */
	char pol[4200];
	snprintf(pol, sizeof pol, "%s/policy", dir);
	mkdir(pol, 0700);
	snprintf(sub, sizeof sub, "%s/policy/workflows", dir);
	snprintf(file, sizeof file, "%s/fuzz.yaml", sub);
	FILE *f = fopen(LOOM_SOURCE_DIR "/config/policy/schema.yaml", "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz_config: cannot read %s\n", LOOM_SOURCE_DIR "/config/policy/schema.yaml");
		exit(2);
	}
	char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	snprintf(pol, sizeof pol, "%s/policy/schema.yaml", dir);
	write_file(pol, buf, n);
	char *err = NULL;
	snprintf(pol, sizeof pol, "%s/policy", dir);
	if (wf_policy_load(pol, &policy, &err) < 0) {
		fprintf(stderr, "fuzz_config: the repository's schema: %s\n", err);
		exit(2);
	}
#endif
	if (strcmp(sub, dir) != 0 && mkdir(sub, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_config: cannot create %s: %s\n", sub, strerror(errno));
		exit(2);
	}
	return 0;
}

static __attribute__((unused)) void check_diags(int rc, const loom_cfg_diags_t *d)
{
	if (rc < 0 && d->n == 0)
		FUZZ_BUG("configuration refused without a diagnostic");
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].text == NULL || d->v[i].text[0] == '\0')
			FUZZ_BUG("empty diagnostic");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0')
		LLVMFuzzerInitialize(NULL, NULL);
	write_file(file, data, size);
	loom_cfg_diags_t diags = { 0 };
	int rc;
#if FUZZ_CFG_KIND == 0
	loom_agentcfg_t cfg;
	memset(&cfg, 0, sizeof cfg);
	rc = loom_agentcfg_load(file, &cfg, &diags);
	check_diags(rc, &diags);
	if (rc == 0)
		(void)loom_agentcfg_is_ref(&cfg, "manager");
	loom_agentcfg_release(&cfg);
#elif FUZZ_CFG_KIND == 1
	loom_synccfg_t *v = NULL;
	size_t n = 0;
	rc = loom_synccfg_load_dir(sub, &v, &n, &diags);
	check_diags(rc, &diags);
	loom_synccfg_free_all(&v, n);
#elif FUZZ_CFG_KIND == 2
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	rc = loom_deploy_load(file, &cfg, &diags);
	check_diags(rc, &diags);
	loom_deploy_release(&cfg);
#elif FUZZ_CFG_KIND == 3
	wf_policy_t p;
	char *err = NULL;
	rc = wf_policy_load(sub, &p, &err);
	if (rc < 0 && (err == NULL || err[0] == '\0'))
		FUZZ_BUG("policy refused without a message");
	if (err && getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", err);
	free(err);
	wf_policy_release(&p);
#else
	wf_defs_t d;
	char *err = NULL;
	char pol[4200];
	snprintf(pol, sizeof pol, "%s/policy", dir);
	rc = wf_defs_load(pol, NULL, &policy, &d, &err);
	if (rc < 0 && (err == NULL || err[0] == '\0'))
		FUZZ_BUG("workflows refused without a message");
	if (err && getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "%s\n", err);
	free(err);
	wf_defs_release(&d);
#endif
	if (getenv("FUZZ_VERBOSE")) {
		char *t = loom_cfg_diags_join(&diags, "\n");
		fprintf(stderr, "rc=%d %s\n", rc, t);
		free(t);
	}
	loom_cfg_diags_release(&diags);
	return 0;
}
