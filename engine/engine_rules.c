/* engine_rules.c - agents and synchronization rules, loaded from
 * config/agents and config/sync beside loom.yaml and compiled once: every
 * expression is parsed and type-checked here, so a bad one stops the engine
 * at start with file:line:column instead of failing objects later. */
#include "engine.h"
#include "loom_alloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *sibling_dir(const char *deploy_path, const char *name)
{
	const char *slash = strrchr(deploy_path, '/');
	if (slash == NULL)
		return loom_strdup(name);
	return loom_sprintf("%.*s/%s", (int)(slash - deploy_path), deploy_path, name);
}

eng_agent_t *eng_agent_find(engine_t *e, const char *name)
{
	for (size_t i = 0; i < e->nagents; i++)
		if (strcmp(e->agents[i].cfg->name, name) == 0)
			return &e->agents[i];
	return NULL;
}

static int compile(const char *file, const loom_cfg_text_t *t, loom_expr_type_t want,
    loom_expr_t **ret, loom_buf_t *errors)
{
	if (t->text == NULL) {
		*ret = NULL;
		return 0;
	}
	loom_expr_compile_opts_t o = { .file = file, .line = t->line, .column = t->column, .want = want };
	char *err = NULL;
	if (loom_expr_compile(t->text, &o, ret, &err) < 0) {
		loom_buf_printf(errors, "%s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

int eng_rules_load(engine_t *e, const char *deploy_path, char **ret_error)
{
	loom_buf_t errors = LOOM_BUF_INIT;
	char *adir = sibling_dir(deploy_path, "agents");
	char *sdir = sibling_dir(deploy_path, "sync");
	loom_cfg_diags_t diags;
	if (loom_agentcfg_load_dir(adir, &e->agentcfgs, &e->nagentcfgs, &diags) < 0)
		for (size_t i = 0; i < diags.n; i++)
			loom_buf_printf(&errors, "%s\n", diags.v[i].text);
	loom_cfg_diags_release(&diags);
	if (loom_synccfg_load_dir(sdir, &e->synccfgs, &e->nsynccfgs, &diags) < 0)
		for (size_t i = 0; i < diags.n; i++)
			loom_buf_printf(&errors, "%s\n", diags.v[i].text);
	loom_cfg_diags_release(&diags);
	free(adir);
	free(sdir);
	if (errors.len)
		goto fail;

	e->nagents = e->nagentcfgs;
	e->agents = loom_calloc(e->nagents ? e->nagents : 1, sizeof *e->agents);
	for (size_t i = 0; i < e->nagents; i++) {
		e->agents[i].cfg = &e->agentcfgs[i];
		/* A policy agent has no process of its own: the policy service answers. */
		e->agents[i].service = e->agentcfgs[i].type == LOOM_AGENT_POLICY
		    ? loom_strdup(e->agentcfgs[i].policy.service) : loom_sprintf("ma.%s", e->agentcfgs[i].name);
	}
	size_t total = 0;
	for (size_t f = 0; f < e->nsynccfgs; f++)
		total += e->synccfgs[f].rules.n;
	e->rules = loom_calloc(total ? total : 1, sizeof *e->rules);
	for (size_t f = 0; f < e->nsynccfgs; f++) {
		const loom_synccfg_t *sc = &e->synccfgs[f];
		const loom_sync_rule_t *rv = sc->rules.v;
		for (size_t r = 0; r < sc->rules.n; r++) {
			const loom_sync_rule_t *rc = &rv[r];
			eng_rule_t *rule = &e->rules[e->nrules++];
			rule->cfg = rc;
			rule->file = sc->path;
			for (size_t k = 0; k + 1 < e->nrules; k++)
				if (strcmp(e->rules[k].cfg->name, rc->name) == 0)
					loom_buf_printf(&errors, "%s: rule '%s': the name is already used in %s\n",
					    sc->path, rc->name, e->rules[k].file);
			rule->agent = eng_agent_find(e, rc->agent);
			if (rule->agent == NULL) {
				loom_buf_printf(&errors, "%s: rule '%s': no agent '%s' (config/agents/%s.yaml does not exist)\n",
				    sc->path, rc->name, rc->agent, rc->agent);
				continue;
			}
			bool in = rc->direction == LOOM_SYNC_INBOUND;
			rule->provision = rc->provision || rc->link_type == LOOM_LINK_PROVISION;
			if (rc->provision && rc->link_type == LOOM_LINK_STICKY)
				loom_buf_printf(&errors, "%s: rule '%s': provision: true contradicts link_type: sticky-join\n",
				    sc->path, rc->name);
			if (in && (rc->scope.text || rc->dn.text || rc->anchor.text || rule->provision || rc->link_type))
				loom_buf_printf(&errors, "%s: rule '%s': scope, dn, anchor, provision and link_type belong to outbound rules\n",
				    sc->path, rc->name);
			if (!in && (rc->filter.text || rc->join.n || rc->project))
				loom_buf_printf(&errors, "%s: rule '%s': filter, join and project belong to inbound rules\n",
				    sc->path, rc->name);
			if (!in && rule->provision && rc->dn.text == NULL && rule->agent->cfg->type != LOOM_AGENT_POLICY)
				loom_buf_printf(&errors, "%s: rule '%s': provision needs dn, the expression for new objects' DN\n",
				    sc->path, rc->name);
			eng_scope_check(sc->path, rc, &errors);
			const loom_sync_scopegroup_t *sg = rc->scope_filter.v;
			for (size_t g = 0; g < rc->scope_filter.n; g++) {
				const loom_sync_clause_t *cl = sg[g].all.v;
				for (size_t k = 0; k < sg[g].all.n; k++) {
					if (cl[k].op != LOOM_SCOPE_ISMEMBEROF && cl[k].op != LOOM_SCOPE_ISNOTMEMBEROF)
						continue;
					e->uses_membership = true;
					if (cl[k].agent && eng_agent_find(e, cl[k].agent) == NULL)
						loom_buf_printf(&errors, "%s: rule '%s': scope_filter group %zu clause %zu (%s): no agent '%s' "
						    "(config/agents/%s.yaml does not exist)\n", sc->path, rc->name, g + 1, k + 1,
						    cl[k].attribute, cl[k].agent, cl[k].agent);
				}
			}
			compile(sc->path, &rc->filter, LOOM_EXPR_BOOL, &rule->filter, &errors);
			compile(sc->path, &rc->scope, LOOM_EXPR_BOOL, &rule->scope, &errors);
			compile(sc->path, &rc->dn, LOOM_EXPR_STRING, &rule->dn, &errors);
			compile(sc->path, &rc->anchor, LOOM_EXPR_STRING, &rule->anchor, &errors);
			rule->flows = loom_calloc(rc->flows.n ? rc->flows.n : 1, sizeof *rule->flows);
			const loom_sync_flow_t *fv = rc->flows.v;
			for (size_t k = 0; k < rc->flows.n; k++) {
				eng_flow_t *fl = &rule->flows[rule->nflows++];
				fl->cfg = &fv[k];
				fl->target = in ? fv[k].mv : fv[k].cs;
				if (fl->target == NULL || fl->target[0] == '\0')
					loom_buf_printf(&errors, "%s:%u: rule '%s': an %s flow needs '%s', the attribute it writes\n",
					    sc->path, fv[k].expr.line, rc->name, in ? "inbound" : "outbound", in ? "mv" : "cs");
				compile(sc->path, &fv[k].expr, LOOM_EXPR_ANY, &fl->expr, &errors);
				fl->direct = fl->expr ? loom_expr_direct_attr(fl->expr) : NULL;
				if (in && (fv[k].initial || fv[k].existence))
					loom_buf_printf(&errors, "%s:%u: rule '%s': initial and existence belong to outbound flows\n",
					    sc->path, fv[k].expr.line, rc->name);
			}
			eng_agent_t *a = rule->agent;
			if (in) {
				a->in = loom_realloc(a->in, (a->nin + 1) * sizeof *a->in);
				a->in[a->nin++] = rule;
			} else {
				a->out = loom_realloc(a->out, (a->nout + 1) * sizeof *a->out);
				a->out[a->nout++] = rule;
			}
		}
		const loom_sync_mvdel_t *dv = sc->mv_deletion.v;
		for (size_t k = 0; k < sc->mv_deletion.n; k++)
			if (dv[k].when == LOOM_MVDEL_AGENT && (dv[k].agent == NULL || eng_agent_find(e, dv[k].agent) == NULL))
				loom_buf_printf(&errors, "%s: mv_deletion for '%s': when agent-disconnected needs an existing agent, got '%s'\n",
				    sc->path, dv[k].mv_type, dv[k].agent ? dv[k].agent : "");
	}
	/* Synchronization keeps an object's inbound rules, and the rules that
	 * may write one metaverse attribute, in fixed arrays of ENG_MAX_INBOUND:
	 * refuse a deployment past that instead of leaving rules out. */
	for (size_t i = 0; i < e->nrules; i++) {
		const eng_rule_t *r = &e->rules[i];
		if (r->cfg->direction != LOOM_SYNC_INBOUND)
			continue;
		size_t same = 0;
		bool first = true;
		for (size_t k = 0; k < e->nrules; k++) {
			const eng_rule_t *o = &e->rules[k];
			if (o->cfg->direction == LOOM_SYNC_INBOUND && strcmp(o->cfg->mv_type, r->cfg->mv_type) == 0) {
				first = first && k >= i;
				same++;
			}
		}
		if (first && same > ENG_MAX_INBOUND)
			loom_buf_printf(&errors, "%s: %zu inbound rules feed metaverse type '%s': at most %d are supported\n",
			    r->file, same, r->cfg->mv_type, ENG_MAX_INBOUND);
	}
	for (size_t i = 0; i < e->nagents; i++)
		if (e->agents[i].nin > ENG_MAX_INBOUND)
			loom_buf_printf(&errors, "agent '%s' has %zu inbound rules: at most %d are supported\n",
			    e->agents[i].cfg->name, e->agents[i].nin, ENG_MAX_INBOUND);
	if (errors.len)
		goto fail;
	/* Only join attributes are indexed: joins are the index's one user. */
	e->indexed = loom_map_new();
	for (size_t i = 0; i < e->nrules; i++) {
		const loom_sync_rule_t *rc = e->rules[i].cfg;
		const loom_sync_joingroup_t *g = rc->join.v;
		for (size_t k = 0; k < rc->join.n; k++) {
			const loom_sync_match_t *m = g[k].match.v;
			for (size_t j = 0; j < g[k].match.n; j++) {
				loom_buf_t key = LOOM_BUF_INIT;
				loom_buf_adds(&key, rc->mv_type);
				loom_buf_addc(&key, '\0');
				for (const char *p = m[j].mv; *p; p++)
					loom_buf_addc(&key, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
				loom_map_put(e->indexed, key.data, key.len, (void *)1);
				loom_buf_release(&key);
			}
		}
	}
	return 0;
fail:
	if (errors.len && errors.data[errors.len - 1] == '\n')
		errors.data[--errors.len] = '\0';
	*ret_error = loom_buf_steal(&errors);
	return -1;
}

void eng_rules_free(engine_t *e)
{
	eng_groups_forget(e);
	for (size_t i = 0; i < e->nrules; i++) {
		eng_rule_t *r = &e->rules[i];
		loom_expr_destroy(&r->filter);
		loom_expr_destroy(&r->scope);
		loom_expr_destroy(&r->dn);
		loom_expr_destroy(&r->anchor);
		for (size_t k = 0; k < r->nflows; k++)
			loom_expr_destroy(&r->flows[k].expr);
		free(r->flows);
	}
	free(e->rules);
	e->rules = NULL;
	e->nrules = 0;
	for (size_t i = 0; i < e->nagents; i++) {
		free(e->agents[i].service);
		free(e->agents[i].in);
		free(e->agents[i].out);
	}
	free(e->agents);
	e->agents = NULL;
	e->nagents = 0;
	loom_map_destroy(&e->indexed);
	loom_agentcfg_free_all(&e->agentcfgs, e->nagentcfgs);
	loom_synccfg_free_all(&e->synccfgs, e->nsynccfgs);
}
