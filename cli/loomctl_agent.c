/* loomctl_agent.c - `loomctl agent test|schema NAME`: the agent protocol's
 * TestConnectionRequest and SchemaRequest (proto/agent.proto), answered by
 * every agent type (docs/agents.md "Schema and connection test"). */
#include "loomctl.h"
#include "agent.pb-c.h"
#include "loom_agentcfg.h"
#include "loom_alloc.h"

#include <stdlib.h>
#include <string.h>

/* The bus service that answers for agent name: ma.NAME, or for a policy
 * agent its policy.service. NULL (printed why) when there is no such agent. */
static char *agent_service(ctl_t *ctl, const char *name)
{
	char *dir = loom_agentcfg_dir(ctl->cfg.path);
	loom_agentcfg_t *agents = NULL;
	size_t n = 0;
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	loom_agentcfg_load_dir(dir, &agents, &n, &diags);
	char *service = NULL;
	for (size_t i = 0; i < n; i++) {
		if (agents[i].name == NULL || strcmp(agents[i].name, name) != 0)
			continue;
		service = agents[i].type == LOOM_AGENT_POLICY ? loom_strdup(agents[i].policy.service)
							      : loom_sprintf("ma.%s", name);
	}
	if (service == NULL) {
		fprintf(stderr, "loomctl agent: no agent '%s' (no loadable %s/%s.yaml", name, dir, name);
		for (size_t i = 0; i < diags.n; i++)
			if (strstr(diags.v[i].text, name) != NULL) {
				fprintf(stderr, ": %s", diags.v[i].text);
				break;
			}
		fprintf(stderr, ")\n");
	}
	for (size_t i = 0; i < n; i++)
		loom_agentcfg_release(&agents[i]);
	free(agents);
	loom_cfg_diags_release(&diags);
	free(dir);
	return service;
}

static int agent_test(ctl_t *ctl, const char *name, const char *service)
{
	Loom__TestConnectionRequest rq = LOOM__TEST_CONNECTION_REQUEST__INIT;
	rq.agent = (char *)name;
	Loom__TestConnectionReply *r = (Loom__TestConnectionReply *)ctl_ask(ctl, service, &rq.base,
	    &loom__test_connection_reply__descriptor, "agent test");
	if (r == NULL)
		return 1;
	int status = r->ok ? 0 : 3;
	if (ctl->json)
		ctl_print_json(&r->base);
	else if (r->ok)
		printf("agent %s: ok: %s\n", name, r->message);
	else
		fprintf(stderr, "agent %s: failed: %s\n", name, r->message);
	loom__test_connection_reply__free_unpacked(r, NULL);
	return status;
}

static int agent_schema(ctl_t *ctl, const char *name, const char *service)
{
	Loom__SchemaRequest rq = LOOM__SCHEMA_REQUEST__INIT;
	rq.agent = (char *)name;
	Loom__SchemaReply *r = (Loom__SchemaReply *)ctl_ask(ctl, service, &rq.base, &loom__schema_reply__descriptor,
	    "agent schema");
	if (r == NULL)
		return 1;
	int status = r->error[0] ? 3 : 0;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else if (r->error[0]) {
		fprintf(stderr, "agent %s: cannot read the schema: %s\n", name, r->error);
	} else {
		printf("agent %s: %s\n", name, r->source);
		printf("delta import: %s, export: %s\n", r->can_delta ? "yes" : "no", r->can_export ? "yes" : "no");
		for (size_t i = 0; i < r->n_types; i++) {
			const Loom__SchemaObjectType *t = r->types[i];
			printf("type %s anchor=%s attributes=%zu\n", t->name, t->anchor[0] ? t->anchor : "-", t->n_attrs);
			for (size_t k = 0; k < t->n_attrs; k++)
				printf("  %-32s %-9s %s\n", t->attrs[k]->name, t->attrs[k]->type,
				    t->attrs[k]->multi ? "multi" : "single");
		}
	}
	loom__schema_reply__free_unpacked(r, NULL);
	return status;
}

int ctl_agent(ctl_t *ctl, int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "test") != 0 && strcmp(argv[1], "schema") != 0)) {
		fprintf(stderr, "usage: loomctl agent test|schema NAME\n");
		return 2;
	}
	if (ctl_load_config(ctl) < 0)
		return 1;
	char *service = agent_service(ctl, argv[2]);
	if (service == NULL)
		return 1;
	int rc = strcmp(argv[1], "test") == 0 ? agent_test(ctl, argv[2], service) : agent_schema(ctl, argv[2], service);
	free(service);
	return rc;
}
