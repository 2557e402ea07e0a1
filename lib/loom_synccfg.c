/* loom_synccfg.c - the table behind config/sync/NAME.yaml. */
#include "loom_synccfg.h"
#include "loom_alloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const directions[] = { "inbound", "outbound", NULL };
static const char *const deprovs[] = { "disconnect", "explicit-disconnect", "delete", NULL };
static const char *const mvdel_whens[] = { "last-connector", "agent-disconnected", NULL };
static const char *const link_types[] = { "join", "provision", "sticky-join", NULL };

static const loom_cfg_key_t match_keys[] = {
	{ .name = "cs", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_match_t, cs),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "connector-space attribute" },
	{ .name = "mv", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_match_t, mv),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "metaverse attribute it must equal" },
	{ NULL }
};
static const loom_cfg_table_t match_table = { .what = "join match", .size = sizeof(loom_sync_match_t), .keys = match_keys };

static const loom_cfg_key_t group_keys[] = {
	{ .name = "match", .type = LOOM_CFG_LIST, .offset = offsetof(loom_sync_joingroup_t, match),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .sub = &match_table,
	  .help = "attribute pairs that must all be equal" },
	{ NULL }
};
static const loom_cfg_table_t group_table = { .what = "join group", .size = sizeof(loom_sync_joingroup_t), .keys = group_keys };

static const char *const scope_ops[] = { "EQUAL", "NOTEQUAL", "LESSTHAN", "LESSTHAN_OR_EQUAL", "GREATERTHAN",
	"GREATERTHAN_OR_EQUAL", "CONTAINS", "NOTCONTAINS", "STARTSWITH", "NOTSTARTSWITH", "ENDSWITH", "NOTENDSWITH",
	"ISNULL", "ISNOTNULL", "ISIN", "ISNOTIN", "ISBITSET", "ISNOTBITSET", "ISMEMBEROF", "ISNOTMEMBEROF", NULL };

static const loom_cfg_key_t clause_keys[] = {
	{ .name = "attribute", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_clause_t, attribute),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "attribute tested" },
	{ .name = "operator", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_sync_clause_t, op),
	  .flags = LOOM_CFG_REQUIRED, .choices = scope_ops, .help = "comparison" },
	{ .name = "value", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_clause_t, value),
	  .help = "the operand (not for ISNULL, ISNOTNULL, ISIN, ISNOTIN)" },
	{ .name = "values", .type = LOOM_CFG_STRLIST, .offset = offsetof(loom_sync_clause_t, values),
	  .help = "ISIN / ISNOTIN: the list" },
	{ .name = "agent", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_clause_t, agent),
	  .help = "ISMEMBEROF / ISNOTMEMBEROF: the agent whose connector space holds the group at DN value "
	          "(default: the rule's agent)" },
	{ NULL }
};
static const loom_cfg_table_t clause_table = { .what = "scope clause", .size = sizeof(loom_sync_clause_t), .keys = clause_keys };

static const loom_cfg_key_t scopegroup_keys[] = {
	{ .name = "all", .type = LOOM_CFG_LIST, .offset = offsetof(loom_sync_scopegroup_t, all),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .sub = &clause_table, .help = "clauses that must all hold" },
	{ NULL }
};
static const loom_cfg_table_t scopegroup_table = { .what = "scope group", .size = sizeof(loom_sync_scopegroup_t), .keys = scopegroup_keys };

static const loom_cfg_key_t flow_keys[] = {
	{ .name = "mv", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_flow_t, mv),
	  .help = "inbound: the metaverse attribute written" },
	{ .name = "cs", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_flow_t, cs),
	  .help = "outbound: the connector-space attribute written" },
	{ .name = "expr", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_sync_flow_t, expr),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the value, an expression over the source object" },
	{ .name = "initial", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_sync_flow_t, initial),
	  .def = "false", .help = "outbound: only when the object is created" },
	{ .name = "existence", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_sync_flow_t, existence),
	  .def = "false", .help = "outbound: an existence test: the rule holds the object only while this flow "
	                          "has a value (a null deprovisions it)" },
	{ NULL }
};
static const loom_cfg_table_t flow_table = { .what = "flow", .size = sizeof(loom_sync_flow_t), .keys = flow_keys };

static const loom_cfg_key_t rule_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_rule_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "unique rule name" },
	{ .name = "direction", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_sync_rule_t, direction),
	  .flags = LOOM_CFG_REQUIRED, .choices = directions, .help = "inbound or outbound" },
	{ .name = "agent", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_rule_t, agent),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "the management agent" },
	{ .name = "cs_type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_rule_t, cs_type),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "connector-space object type" },
	{ .name = "mv_type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_rule_t, mv_type),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "metaverse object type" },
	{ .name = "filter", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_sync_rule_t, filter),
	  .help = "inbound connector filter: objects for which it is true stay disconnected" },
	{ .name = "join", .type = LOOM_CFG_LIST, .offset = offsetof(loom_sync_rule_t, join),
	  .sub = &group_table, .help = "inbound join groups, tried in order" },
	{ .name = "project", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_sync_rule_t, project),
	  .def = "false", .help = "inbound: create a metaverse object when nothing joins" },
	{ .name = "precedence", .type = LOOM_CFG_INT, .offset = offsetof(loom_sync_rule_t, precedence),
	  .def = "100", .min = 0, .max = 1000000, .help = "inbound: lower number wins an attribute" },
	{ .name = "scope", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_sync_rule_t, scope),
	  .help = "outbound: metaverse objects the rule applies to (default all of mv_type)" },
	{ .name = "scope_filter", .type = LOOM_CFG_LIST, .offset = offsetof(loom_sync_rule_t, scope_filter),
	  .sub = &scopegroup_table, .help = "FIM scoping filter: any group of clauses that all hold" },
	{ .name = "provision", .type = LOOM_CFG_BOOL, .offset = offsetof(loom_sync_rule_t, provision),
	  .def = "false", .help = "outbound: create a connector for objects in scope" },
	{ .name = "link_type", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_sync_rule_t, link_type),
	  .def = "join", .choices = link_types, .help = "outbound: provision, join or sticky-join" },
	{ .name = "anchor", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_sync_rule_t, anchor),
	  .help = "outbound: anchor of provisioned objects (expression), where the agent does not anchor on dn" },
	{ .name = "dn", .type = LOOM_CFG_TEXT, .offset = offsetof(loom_sync_rule_t, dn),
	  .help = "outbound: DN of provisioned objects (expression)" },
	{ .name = "deprovision", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_sync_rule_t, deprovision),
	  .def = "disconnect", .choices = deprovs, .help = "what happens to a connector that leaves scope" },
	{ .name = "flows", .type = LOOM_CFG_LIST, .offset = offsetof(loom_sync_rule_t, flows),
	  .sub = &flow_table, .help = "attribute flows" },
	{ NULL }
};
static const loom_cfg_table_t rule_table = { .what = "rule", .size = sizeof(loom_sync_rule_t), .keys = rule_keys };

static const loom_cfg_key_t mvdel_keys[] = {
	{ .name = "mv_type", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_mvdel_t, mv_type),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "metaverse object type" },
	{ .name = "when", .type = LOOM_CFG_ENUM, .offset = offsetof(loom_sync_mvdel_t, when),
	  .def = "last-connector", .choices = mvdel_whens, .help = "what deletes the metaverse object" },
	{ .name = "agent", .type = LOOM_CFG_STRING, .offset = offsetof(loom_sync_mvdel_t, agent),
	  .help = "for agent-disconnected: the agent whose connector matters" },
	{ NULL }
};
static const loom_cfg_table_t mvdel_table = { .what = "mv_deletion rule", .size = sizeof(loom_sync_mvdel_t), .keys = mvdel_keys };

static const loom_cfg_key_t top_keys[] = {
	{ .name = "rules", .type = LOOM_CFG_LIST, .offset = offsetof(loom_synccfg_t, rules),
	  .sub = &rule_table, .help = "synchronization rules" },
	{ .name = "mv_deletion", .type = LOOM_CFG_LIST, .offset = offsetof(loom_synccfg_t, mv_deletion),
	  .sub = &mvdel_table, .help = "metaverse object deletion rules" },
	{ NULL }
};
const loom_cfg_table_t loom_synccfg_table = { .what = "sync file", .keys = top_keys };

static int load_one(const char *path, void *element, loom_cfg_diags_t *diags)
{
	loom_synccfg_t *cfg = element;
	cfg->path = loom_strdup(path);
	return loom_config_load_file(path, &loom_synccfg_table, cfg, diags);
}

int loom_synccfg_load_dir(const char *dir, loom_synccfg_t **ret, size_t *ret_n, loom_cfg_diags_t *diags)
{
	void *v;
	int rc = loom_config_load_dir(dir, sizeof **ret, load_one, &v, ret_n, diags);
	*ret = v;
	return rc;
}

void loom_synccfg_free_all(loom_synccfg_t **v, size_t n)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		loom_config_release(&loom_synccfg_table, &(*v)[i]);
		free((*v)[i].path);
	}
	free(*v);
	*v = NULL;
}
