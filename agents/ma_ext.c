/* ma_ext.c - loom-ma-ext: a management agent whose connected system is
 * reached by a program the administrator configures (ext.command), which
 * speaks the agent protocol as JSON lines on its stdin and stdout. One
 * process per agent: `loom-ma-ext --agent crm` reads config/agents/crm.yaml
 * and registers as service "ma.crm". docs/agents.md "Extensible agents"
 * has the protocol; config/examples/ext-agent.py is a complete agent.
 *
 * Each operation runs the program once: an import run, an export run (the
 * program lives for all of the run's batches), a password set. The program
 * keeps no connection to Loom between operations, as agents keep no state
 * between runs: the watermark of a delta import comes back with the next.
 *
 * What fails an operation cleanly (the run fails with one line saying why,
 * the program is killed, the agent goes on): a program that cannot be
 * started, that writes a line that is not JSON or not a message, that is
 * silent past ext.timeout while Loom waits for it, that writes a line
 * longer than ext.max_line, that exits (or crashes) before its end
 * message, or that says "fail". A well-formed object message that makes
 * no object (no anchor, a bad value) is an error on that object only, as
 * a malformed record in a file is.
 */
#include "ma_ext.h"
#include "loom_agentproto.h"
#include "loom_alloc.h"
#include "loom_attrs.h"
#include "loom_envelope.h"
#include "loom_keys.h"
#include "loom_log.h"
#include "loom_text.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static extagent_t the_agent;

/* ---- messages from the program ------------------------------------------------------ */

/* Parses one line as a protocol message: an object with a string "type".
 * Returns it, or NULL with *ret_error (malloc'd). */
static loom_json_t *message_of(extagent_t *ea, const char *line, size_t len, unsigned lineno, char **ret_error)
{
	loom_json_t *j = NULL;
	char *err = NULL;
	char shown[80];
	snprintf(shown, sizeof shown, "%.64s%s", line, len > 64 ? "..." : "");
	if (loom_json_parse(line, len, &j, &err) < 0) {
		*ret_error = loom_sprintf("program '%s' output line %u is not JSON (%s): '%s'", ea->cfg.ext.command.v[0],
		    lineno, err, shown);
		free(err);
		return NULL;
	}
	if (j->type != LOOM_JSON_OBJECT || loom_json_get_str(j, "type") == NULL) {
		*ret_error = loom_sprintf("program '%s' output line %u is not a message (an object with a \"type\"): '%s'",
		    ea->cfg.ext.command.v[0], lineno, shown);
		loom_json_free(&j);
		return NULL;
	}
	return j;
}

/* {"type":"log","level":"info|warning|error","message":"..."} */
static void program_log(extagent_t *ea, const loom_json_t *j)
{
	const char *level = loom_json_get_str(j, "level");
	const char *msg = loom_json_get_str(j, "message");
	loom_buf_t t = LOOM_BUF_INIT;
	loom_buf_add_logval(&t, msg ? msg : "", msg ? strlen(msg) : 0);
	if (level && strcmp(level, "error") == 0)
		loom_error("program says agent=%s message=%s", ea->name, loom_buf_cstr(&t));
	else if (level && strcmp(level, "warning") == 0)
		loom_warning("program says agent=%s message=%s", ea->name, loom_buf_cstr(&t));
	else
		loom_info("program says agent=%s message=%s", ea->name, loom_buf_cstr(&t));
	loom_buf_release(&t);
}

/* Why a program ended too soon, with its last stderr line. */
static char *ended_early(extagent_t *ea, ext_proc_t *p, const char *why, const char *before)
{
	const char *last = ext_proc_last_stderr(p);
	return loom_sprintf("program '%s' %s before %s%s%s", ea->cfg.ext.command.v[0], why, before,
	    last[0] ? "; its last stderr line: " : "", last);
}

/* ---- import --------------------------------------------------------------------------- */

static void imp_stop(extagent_t *ea)
{
	ext_import_t *im = &ea->imp;
	ext_proc_destroy(&im->proc);
	if (im->batch)
		loom__import_batch__free_unpacked(im->batch, NULL);
	free(im->engine);
	free(im->watermark);
	memset(im, 0, sizeof *im);
}

static void imp_send(extagent_t *ea, Loom__ImportBatch *b)
{
	loom_agent_send_batch(ea->d, ea->imp.engine, b);
}

static void imp_fail(extagent_t *ea, const char *message)
{
	ext_import_t *im = &ea->imp;
	Loom__ImportBatch b = LOOM__IMPORT_BATCH__INIT;
	b.run_id = im->run_id;
	b.seq = ++im->seq;
	b.last = true;
	b.failed = true;
	b.message = (char *)message;
	imp_send(ea, &b);
	loom_error("import failed run=%llu: %s", (unsigned long long)im->run_id, message);
	imp_stop(ea);
}

static Loom__ImportBatch *batch_new(ext_import_t *im)
{
	Loom__ImportBatch *b = loom_malloc(sizeof *b);
	loom__import_batch__init(b);
	b->run_id = im->run_id;
	b->objects = loom_calloc(im->batch_size, sizeof *b->objects);
	return b;
}

/* Sends the batch being filled (the last one with the watermark). */
static void imp_flush(extagent_t *ea, bool last)
{
	ext_import_t *im = &ea->imp;
	Loom__ImportBatch *b = im->batch;
	b->seq = ++im->seq;
	if (last) {
		b->last = true;
		const char *wm = im->watermark ? im->watermark : "";
		b->watermark.len = strlen(wm);
		b->watermark.data = (uint8_t *)loom_strdup(wm);
	}
	im->objects += b->n_objects;
	imp_send(ea, b);
	loom__import_batch__free_unpacked(b, NULL);
	im->batch = last ? NULL : batch_new(im);
	im->items = 0;
	im->credit--;
	if (!last && im->credit == 0)
		ext_proc_pause(im->proc, true); /* the program blocks on its pipe until more credit */
}

static void imp_item(extagent_t *ea)
{
	ext_import_t *im = &ea->imp;
	if (++im->items >= im->batch_size)
		imp_flush(ea, false);
}

static void imp_line(void *arg, const char *line, size_t len)
{
	extagent_t *ea = arg;
	ext_import_t *im = &ea->imp;
	if (!im->active || im->ended)
		return;
	unsigned lineno = ++im->lines;
	if (len == 0)
		return; /* blank lines are allowed between messages */
	char *err = NULL;
	loom_json_t *j = message_of(ea, line, len, lineno, &err);
	if (j == NULL) {
		imp_fail(ea, err);
		free(err);
		return;
	}
	const char *type = loom_json_get_str(j, "type");
	char why[400];
	if (strcmp(type, "object") == 0) {
		Loom__ImportObject *o = ext_object_from_json(&ea->cfg, im->delta, j, why, sizeof why);
		if (o) {
			im->batch->objects[im->batch->n_objects++] = o;
		} else {
			Loom__RunObjectError *e = loom_malloc(sizeof *e);
			loom__run_object_error__init(e);
			const char *a = loom_json_get_str(j, "anchor");
			e->anchor = loom_strdup(a ? a : "");
			e->code = loom_strdup("bad-object");
			e->message = loom_strdup(why);
			e->where = loom_sprintf("program output line %u", lineno);
			im->batch->errors = loom_realloc(im->batch->errors, (im->batch->n_errors + 1) * sizeof *im->batch->errors);
			im->batch->errors[im->batch->n_errors++] = e;
		}
		imp_item(ea);
	} else if (strcmp(type, "error") == 0) {
		/* The program could not read one of its objects. */
		Loom__RunObjectError *e = loom_malloc(sizeof *e);
		loom__run_object_error__init(e);
		const char *s;
		e->anchor = loom_strdup((s = loom_json_get_str(j, "anchor")) ? s : "");
		e->dn = loom_strdup((s = loom_json_get_str(j, "dn")) ? s : "");
		e->code = loom_strdup((s = loom_json_get_str(j, "code")) ? s : "program-error");
		e->message = loom_strdup((s = loom_json_get_str(j, "message")) ? s : "(no message)");
		e->where = (s = loom_json_get_str(j, "where")) ? loom_strdup(s) : loom_sprintf("program output line %u", lineno);
		im->batch->errors = loom_realloc(im->batch->errors, (im->batch->n_errors + 1) * sizeof *im->batch->errors);
		im->batch->errors[im->batch->n_errors++] = e;
		imp_item(ea);
	} else if (strcmp(type, "end") == 0) {
		const char *wm = loom_json_get_str(j, "watermark");
		im->watermark = loom_strdup(wm ? wm : "");
		im->ended = true;
		ext_proc_expect(im->proc, false);
		imp_flush(ea, true);
		loom_info("import sent run=%llu objects=%llu batches=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)im->objects, (unsigned long long)im->seq);
	} else if (strcmp(type, "fail") == 0) {
		const char *m = loom_json_get_str(j, "message");
		char *t = loom_sprintf("program '%s' failed the import: %s", ea->cfg.ext.command.v[0], m ? m : "(no message)");
		imp_fail(ea, t);
		free(t);
	} else if (strcmp(type, "log") == 0) {
		program_log(ea, j);
	} else {
		char *t = loom_sprintf("program '%s' output line %u: message type '%.32s' has no place in an import "
				       "(object, error, log, end or fail)",
		    ea->cfg.ext.command.v[0], lineno, type);
		imp_fail(ea, t);
		free(t);
	}
	loom_json_free(&j);
}

static void imp_gone(void *arg, bool clean, const char *why)
{
	extagent_t *ea = arg;
	ext_import_t *im = &ea->imp;
	if (im->ended) {
		if (!clean)
			loom_warning("program ended after its import agent=%s: %s", ea->name, why);
		imp_stop(ea); /* the run is complete: only the program is left to free */
		return;
	}
	char *t = ended_early(ea, im->proc, why, "its end message");
	imp_fail(ea, t);
	free(t);
}

static const ext_proc_ops_t imp_ops = { imp_line, imp_gone };

static void on_import_start(void *a, Loom__Envelope *env, const Loom__ImportRequest *rq)
{
	extagent_t *ea = a;
	ext_import_t *im = &ea->imp;
	if (im->active && !im->ended)
		loom_warning("abandoning import run=%llu for run=%llu", (unsigned long long)im->run_id,
		    (unsigned long long)rq->run_id);
	imp_stop(ea);
	im->active = true;
	im->run_id = rq->run_id;
	im->engine = loom_strdup(env->from);
	im->delta = rq->delta;
	im->batch_size = rq->batch_size ? rq->batch_size : 500;
	im->credit = rq->credit ? rq->credit : 1;
	im->batch = batch_new(im);
	if (rq->live) {
		imp_fail(ea, "an extensible agent has no live mode (live.enabled is for type ldap)");
		return;
	}
	loom_info("import started run=%llu mode=%s", (unsigned long long)rq->run_id, rq->delta ? "delta" : "full");
	char *err = NULL;
	if (ext_proc_start(loom_daemon_loop(ea->d), &ea->cfg, ea->name, &imp_ops, ea, &im->proc, &err) < 0) {
		imp_fail(ea, err);
		free(err);
		return;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "{\"type\":\"import\",\"protocol\":1,\"agent\":");
	loom_buf_add_json_str(&b, ea->name, strlen(ea->name));
	loom_buf_printf(&b, ",\"run_id\":%llu,\"mode\":\"%s\",\"watermark\":", (unsigned long long)rq->run_id,
	    rq->delta ? "delta" : "full");
	loom_buf_add_json_str(&b, rq->watermark.len ? (const char *)rq->watermark.data : "", rq->watermark.len);
	loom_buf_printf(&b, ",\"anchor\":");
	loom_buf_add_json_str(&b, ea->cfg.anchor, strlen(ea->cfg.anchor));
	loom_buf_adds(&b, "}\n");
	int rc = ext_proc_send(im->proc, b.data, b.len, &err);
	loom_buf_release(&b);
	if (rc < 0) {
		char *t = ended_early(ea, im->proc, err, "reading its request");
		imp_fail(ea, t);
		free(t);
		free(err);
		return;
	}
	ext_proc_close_input(im->proc);
	ext_proc_expect(im->proc, true);
}

static void on_import_credit(void *a, const Loom__ImportCredit *c)
{
	extagent_t *ea = a;
	ext_import_t *im = &ea->imp;
	if (!im->active || c->run_id != im->run_id)
		return;
	if (c->abort) {
		loom_info("import aborted by the engine run=%llu", (unsigned long long)im->run_id);
		imp_stop(ea);
		return;
	}
	im->credit += c->credit;
	if (im->credit > 0 && im->proc && !im->ended)
		ext_proc_pause(im->proc, false); /* delivers what is buffered, may stop again */
}

/* ---- export --------------------------------------------------------------------------- */

static void batch_free(ext_batch_t *b)
{
	for (size_t i = 0; i < b->nids; i++)
		if (b->results[i])
			loom__export_change_result__free_unpacked(b->results[i], NULL);
	free(b->ids);
	free(b->results);
	memset(b, 0, sizeof *b);
}

static void exp_clear(ext_export_t *ex)
{
	for (size_t i = 0; i < ex->nq; i++)
		batch_free(&ex->q[i]);
	free(ex->q);
	ex->q = NULL;
	ex->nq = 0;
}

static void exp_stop(extagent_t *ea)
{
	ext_export_t *ex = &ea->exp;
	ext_proc_destroy(&ex->proc);
	exp_clear(ex);
	free(ex->engine);
	memset(ex, 0, sizeof *ex);
}

static void exp_send_results(extagent_t *ea, Loom__ExportResults *rs)
{
	const char *err;
	if (loom_bus_send(loom_daemon_bus(ea->d), ea->exp.engine, &rs->base, NULL, NULL, &err) < 0)
		loom_warning("cannot send export results run=%llu: %s", (unsigned long long)rs->run_id, err);
}

/* The run fails: the oldest batch's results say why (the engine ends the
 * run on them), the program is killed. */
static void exp_fail(extagent_t *ea, const char *message)
{
	ext_export_t *ex = &ea->exp;
	Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
	rs.run_id = ex->run_id;
	rs.seq = ex->nq ? ex->q[0].seq : ex->last_seq;
	rs.failed = true;
	rs.message = (char *)message;
	exp_send_results(ea, &rs);
	loom_error("export failed run=%llu: %s", (unsigned long long)ex->run_id, message);
	exp_stop(ea);
}

/* Sends the results of the complete batches at the head of the queue. */
static void exp_flush(extagent_t *ea)
{
	ext_export_t *ex = &ea->exp;
	while (ex->nq && ex->q[0].nresults == ex->q[0].nids) {
		ext_batch_t *b = &ex->q[0];
		Loom__ExportResults rs = LOOM__EXPORT_RESULTS__INIT;
		rs.run_id = ex->run_id;
		rs.seq = b->seq;
		rs.results = b->results;
		rs.n_results = b->nids;
		exp_send_results(ea, &rs);
		size_t okn = 0;
		for (size_t k = 0; k < b->nids; k++)
			okn += b->results[k]->ok;
		loom_info("export batch applied run=%llu seq=%llu changes=%zu ok=%zu", (unsigned long long)ex->run_id,
		    (unsigned long long)b->seq, b->nids, okn);
		bool last = b->last;
		batch_free(b);
		memmove(&ex->q[0], &ex->q[1], (ex->nq - 1) * sizeof *ex->q);
		ex->nq--;
		if (last) {
			/* The run is over: the program sees the end of its input and exits. */
			ext_proc_close_input(ex->proc);
			ex->active = false;
		}
	}
	ext_proc_expect(ex->proc, ex->nq > 0);
}

static void exp_line(void *arg, const char *line, size_t len)
{
	extagent_t *ea = arg;
	ext_export_t *ex = &ea->exp;
	unsigned lineno = ++ex->lines;
	if (len == 0)
		return;
	char *err = NULL;
	loom_json_t *j = message_of(ea, line, len, lineno, &err);
	if (j == NULL) {
		exp_fail(ea, err);
		free(err);
		return;
	}
	const char *type = loom_json_get_str(j, "type");
	if (strcmp(type, "result") == 0) {
		const loom_json_t *id = loom_json_get(j, "id");
		const loom_json_t *ok = loom_json_get(j, "ok");
		ext_batch_t *b = NULL;
		size_t i = 0;
		for (size_t q = 0; id && id->type == LOOM_JSON_NUMBER && id->is_int && q < ex->nq && b == NULL; q++)
			for (i = 0; i < ex->q[q].nids; i++)
				if (ex->q[q].ids[i] == (uint64_t)id->i) {
					b = &ex->q[q];
					break;
				}
		if (b == NULL || b->results[i] || ok == NULL || ok->type != LOOM_JSON_BOOL) {
			char *t = loom_sprintf("program '%s': a result for %s (each change of a batch gets one result "
					       "with its id and ok true or false)",
			    ea->cfg.ext.command.v[0],
			    b == NULL ? "a change id it was not sent" : b->results[i] ? "a change answered twice"
										  : "a change without \"ok\"");
			exp_fail(ea, t);
			free(t);
			loom_json_free(&j);
			return;
		}
		Loom__ExportChangeResult *r = loom_malloc(sizeof *r);
		loom__export_change_result__init(r);
		r->change_id = b->ids[i];
		r->ok = ok->b;
		const char *s;
		if ((s = loom_json_get_str(j, "anchor")))
			r->anchor = loom_strdup(s);
		if (!r->ok) {
			r->code = loom_strdup((s = loom_json_get_str(j, "code")) ? s : "program-error");
			r->message = loom_strdup((s = loom_json_get_str(j, "message")) ? s : "(no message)");
			const loom_json_t *rt = loom_json_get(j, "retryable");
			r->retryable = rt && rt->type == LOOM_JSON_BOOL && rt->b;
		}
		b->results[i] = r;
		b->nresults++;
		exp_flush(ea);
	} else if (strcmp(type, "fail") == 0) {
		const char *m = loom_json_get_str(j, "message");
		char *t = loom_sprintf("program '%s' failed the export: %s", ea->cfg.ext.command.v[0], m ? m : "(no message)");
		exp_fail(ea, t);
		free(t);
	} else if (strcmp(type, "log") == 0) {
		program_log(ea, j);
	} else {
		char *t = loom_sprintf("program '%s' output line %u: message type '%.32s' has no place in an export "
				       "(result, log or fail)",
		    ea->cfg.ext.command.v[0], lineno, type);
		exp_fail(ea, t);
		free(t);
	}
	loom_json_free(&j);
}

static void exp_gone(void *arg, bool clean, const char *why)
{
	extagent_t *ea = arg;
	ext_export_t *ex = &ea->exp;
	if (ex->nq == 0) {
		/* Between batches or after the last: nothing is lost. */
		if (!clean || ex->active)
			loom_warning("program ended agent=%s: %s", ea->name, why);
		if (ex->active)
			ext_proc_destroy(&ex->proc); /* the next batch starts it again */
		else
			exp_stop(ea);
		return;
	}
	char *t = ended_early(ea, ex->proc, why, "answering every change of its batch");
	exp_fail(ea, t);
	free(t);
}

static const ext_proc_ops_t exp_ops = { exp_line, exp_gone };

static void on_export_batch(void *a, Loom__Envelope *env, const Loom__ExportBatch *b)
{
	extagent_t *ea = a;
	ext_export_t *ex = &ea->exp;
	if (!ex->active || ex->run_id != b->run_id) {
		if (ex->active)
			loom_warning("export abandoned run=%llu (a new run started before its last batch)",
			    (unsigned long long)ex->run_id);
		exp_stop(ea);
		ex->active = true;
		ex->run_id = b->run_id;
		ex->engine = loom_strdup(env->from);
		loom_info("export started run=%llu", (unsigned long long)b->run_id);
	}
	ex->last_seq = b->seq;
	char *err = NULL;
	if (ex->proc == NULL) {
		if (ext_proc_start(loom_daemon_loop(ea->d), &ea->cfg, ea->name, &exp_ops, ea, &ex->proc, &err) < 0) {
			exp_fail(ea, err);
			free(err);
			return;
		}
		loom_buf_t h = LOOM_BUF_INIT;
		loom_buf_adds(&h, "{\"type\":\"export\",\"protocol\":1,\"agent\":");
		loom_buf_add_json_str(&h, ea->name, strlen(ea->name));
		loom_buf_printf(&h, ",\"run_id\":%llu,\"anchor\":", (unsigned long long)b->run_id);
		loom_buf_add_json_str(&h, ea->cfg.anchor, strlen(ea->cfg.anchor));
		loom_buf_adds(&h, "}\n");
		int rc = ext_proc_send(ex->proc, h.data, h.len, &err);
		loom_buf_release(&h);
		if (rc < 0) {
			char *t = ended_early(ea, ex->proc, err, "reading its request");
			exp_fail(ea, t);
			free(t);
			free(err);
			return;
		}
	}
	ex->q = loom_realloc(ex->q, (ex->nq + 1) * sizeof *ex->q);
	ext_batch_t *q = &ex->q[ex->nq++];
	memset(q, 0, sizeof *q);
	q->seq = b->seq;
	q->last = b->last;
	q->nids = b->n_changes;
	q->ids = loom_calloc(b->n_changes ? b->n_changes : 1, sizeof *q->ids);
	q->results = loom_calloc(b->n_changes ? b->n_changes : 1, sizeof *q->results);
	loom_buf_t out = LOOM_BUF_INIT;
	for (size_t i = 0; i < b->n_changes; i++) {
		q->ids[i] = b->changes[i]->change_id;
		ext_json_change(&out, b->changes[i]);
	}
	loom_buf_printf(&out, "{\"type\":\"batch_end\",\"seq\":%llu,\"last\":%s}\n", (unsigned long long)b->seq,
	    b->last ? "true" : "false");
	/* Writing may read the program's results meanwhile; they are delivered
	 * by the loop afterwards, so the queue entry above stays in place. */
	int rc = ext_proc_send(ex->proc, out.data, out.len, &err);
	loom_buf_release(&out);
	if (rc < 0) {
		char *t = ended_early(ea, ex->proc, err, "reading its batch");
		exp_fail(ea, t);
		free(t);
		free(err);
		return;
	}
	exp_flush(ea); /* an empty batch is complete at once */
}

/* ---- SetPassword ------------------------------------------------------------------------ */

static void pw_stop(extagent_t *ea)
{
	ext_pw_t *pw = &ea->pw;
	ext_proc_destroy(&pw->proc);
	if (pw->env)
		loom__envelope__free_unpacked(pw->env, NULL);
	free(pw->dn);
	memset(pw, 0, sizeof *pw);
}

static void pw_reply(extagent_t *ea, const char *code, const char *message, bool retryable)
{
	ext_pw_t *pw = &ea->pw;
	Loom__SetPasswordRequest rq = LOOM__SET_PASSWORD_REQUEST__INIT;
	rq.request_id = pw->request_id;
	if (code == NULL)
		loom_info("password set agent=%s dn=%s from=%s", ea->name, pw->dn, pw->env->from);
	else
		loom_warning("password not set agent=%s dn=%s from=%s code=%s message=%s", ea->name, pw->dn, pw->env->from,
		    code, message);
	loom_agent_password_reply(ea->d, pw->env, &rq, pw->dn, code, 0, message, retryable);
	pw->answered = true;
}

static void pw_line(void *arg, const char *line, size_t len)
{
	extagent_t *ea = arg;
	ext_pw_t *pw = &ea->pw;
	if (len == 0 || pw->answered)
		return;
	char *err = NULL;
	loom_json_t *j = message_of(ea, line, len, 1, &err);
	if (j == NULL) {
		pw_reply(ea, "program-failed", err, false);
		free(err);
		pw_stop(ea);
		return;
	}
	const char *type = loom_json_get_str(j, "type");
	if (strcmp(type, "log") == 0) {
		program_log(ea, j);
	} else if (strcmp(type, "password_result") == 0) {
		const loom_json_t *ok = loom_json_get(j, "ok");
		const loom_json_t *rt = loom_json_get(j, "retryable");
		const char *code = loom_json_get_str(j, "code");
		const char *msg = loom_json_get_str(j, "message");
		if (ok && ok->type == LOOM_JSON_BOOL && ok->b)
			pw_reply(ea, NULL, NULL, false);
		else
			pw_reply(ea, code ? code : "program-error", msg ? msg : "(no message)",
			    rt && rt->type == LOOM_JSON_BOOL && rt->b);
		/* The answer is the program's last word: the next request need not wait for its exit. */
		loom_json_free(&j);
		pw_stop(ea);
		return;
	} else {
		char *t = loom_sprintf("program '%s': message type '%.32s' has no place in a password set "
				       "(password_result or log)",
		    ea->cfg.ext.command.v[0], type);
		pw_reply(ea, "program-failed", t, false);
		free(t);
		pw_stop(ea);
	}
	loom_json_free(&j);
}

static void pw_gone(void *arg, bool clean, const char *why)
{
	extagent_t *ea = arg;
	ext_pw_t *pw = &ea->pw;
	(void)clean;
	if (!pw->answered) {
		char *t = ended_early(ea, pw->proc, why, "its password_result");
		pw_reply(ea, "program-failed", t, true);
		free(t);
	}
	pw_stop(ea);
}

static const ext_proc_ops_t pw_ops = { pw_line, pw_gone };

static void on_set_password(void *a, Loom__Envelope *env, const Loom__SetPasswordRequest *rq)
{
	extagent_t *ea = a;
	ext_pw_t *pw = &ea->pw;
	const loom_keypair_t *kp = loom_daemon_keypair(ea->d);
	const char *svc = loom_daemon_service(ea->d);
	char *msg = NULL;
	const char *code = NULL;
	if (pw->active) {
		code = "busy";
		msg = loom_strdup("another password is being set: send it again");
	} else if (rq->agent[0] && strcmp(rq->agent, ea->name) != 0) {
		code = "bad-request";
		msg = loom_sprintf("the request is for agent '%s', and this is agent '%s'", rq->agent, ea->name);
	} else if (rq->dn[0] == '\0' && rq->anchor[0] == '\0') {
		code = "bad-request";
		msg = loom_strdup("the request names no account: give a DN or an anchor");
	} else if (rq->password == NULL || rq->password->box.len == 0) {
		code = "bad-request";
		msg = loom_strdup("the request carries no sealed password");
	} else if (kp == NULL) {
		code = "no-key";
		msg = loom_sprintf("this agent has no key pair to open sealed passwords with: create %s/%s.key (loomctl keys "
				   "gen %s) and restart it",
		    loom_daemon_config(ea->d)->bus.keys_dir, svc, svc);
	}
	if (code) {
		Loom__SetPasswordRequest r = LOOM__SET_PASSWORD_REQUEST__INIT;
		r.request_id = rq->request_id;
		loom_agent_password_reply(ea->d, env, &r, rq->dn, code, 0, msg, strcmp(code, "busy") == 0);
		loom_warning("password not set agent=%s code=%s message=%s", ea->name, code, msg);
		free(msg);
		return;
	}
	/* Keep what the asynchronous reply needs. */
	size_t elen = loom__envelope__get_packed_size(env);
	uint8_t *eb = loom_malloc(elen ? elen : 1);
	loom__envelope__pack(env, eb);
	pw->env = loom__envelope__unpack(NULL, elen, eb);
	free(eb);
	pw->active = true;
	pw->request_id = rq->request_id;
	pw->dn = loom_strdup(rq->dn[0] ? rq->dn : rq->anchor);
	uint8_t *plain = NULL;
	size_t plen = 0;
	if (loom_unseal(kp, rq->password, &plain, &plen) < 0) {
		char *t = loom_sprintf("the password does not open with this agent's key '%s' (sealed to '%s'): seal it to "
				       "%s.pub of this deployment",
		    svc, rq->password->key_id, svc);
		pw_reply(ea, "cannot-open", t, false);
		free(t);
		pw_stop(ea);
		return;
	}
	if (plen == 0 || !loom_utf8_text(plain, plen)) {
		pw_reply(ea, "bad-password", plen ? "the password is not valid UTF-8 text (or holds a NUL)" : "the password is empty",
		    false);
		loom_unsealed_free(&plain, plen);
		pw_stop(ea);
		return;
	}
	char *err = NULL;
	if (ext_proc_start(loom_daemon_loop(ea->d), &ea->cfg, ea->name, &pw_ops, ea, &pw->proc, &err) < 0) {
		loom_unsealed_free(&plain, plen);
		pw_reply(ea, "program-failed", err, true);
		free(err);
		pw_stop(ea);
		return;
	}
	/* The line is built in guarded memory sized for the worst escaping,
	 * so that no copy of the password is left behind by a realloc. */
	size_t cap = 256 + strlen(rq->dn) * 6 + strlen(rq->anchor) * 6 + plen * 6 + strlen(ea->name) * 6;
	loom_buf_t b = LOOM_BUF_INIT;
	b.data = sodium_malloc(cap);
	b.cap = cap;
	b.data[0] = '\0';
	loom_buf_adds(&b, "{\"type\":\"set_password\",\"protocol\":1,\"agent\":");
	loom_buf_add_json_str(&b, ea->name, strlen(ea->name));
	loom_buf_adds(&b, ",\"dn\":");
	loom_buf_add_json_str(&b, rq->dn, strlen(rq->dn));
	loom_buf_adds(&b, ",\"anchor\":");
	loom_buf_add_json_str(&b, rq->anchor, strlen(rq->anchor));
	loom_buf_adds(&b, ",\"password\":");
	loom_buf_add_json_str(&b, (const char *)plain, plen);
	loom_buf_adds(&b, "}\n");
	loom_unsealed_free(&plain, plen);
	int rc = b.cap == cap ? ext_proc_send(pw->proc, b.data, b.len, &err) : -1;
	if (b.cap != cap)
		err = loom_strdup("internal: the password line outgrew its buffer");
	sodium_memzero(b.data, b.cap);
	if (b.cap == cap)
		sodium_free(b.data);
	else
		free(b.data);
	if (rc < 0) {
		char *t = ended_early(ea, pw->proc, err, "reading its request");
		pw_reply(ea, "program-failed", t, true);
		free(t);
		free(err);
		pw_stop(ea);
		return;
	}
	ext_proc_close_input(pw->proc);
	ext_proc_expect(pw->proc, true);
}

/* ---- SchemaRequest and TestConnectionRequest ------------------------------------------------ */

/* The program is asked {"type":"schema"} or {"type":"test"} and answers
 * {"type":"schema","types":[{"name","anchor","attrs":[{"name","type","multi"}]}],
 *  "can_delta","can_export"} or {"type":"test_result","ok","message"}; "fail"
 * and "log" as always (docs/agents.md). */

static void ask_stop(extagent_t *ea)
{
	ext_ask_t *q = &ea->ask;
	ext_proc_destroy(&q->proc);
	if (q->env)
		loom__envelope__free_unpacked(q->env, NULL);
	memset(q, 0, sizeof *q);
}

static void ask_fail(extagent_t *ea, const char *why)
{
	ext_ask_t *q = &ea->ask;
	if (q->schema)
		loom_agent_schema_reply(ea->d, q->env, NULL, false, false, 0, "", why);
	else
		loom_agent_test_reply(ea->d, q->env, false, why);
	q->answered = true;
}

static bool json_true(const loom_json_t *j, const char *key)
{
	const loom_json_t *v = loom_json_get(j, key);
	return v && v->type == LOOM_JSON_BOOL && v->b;
}

/* {"type":"schema",...} into a SchemaReply; false with *why when it is not one. */
static bool ask_schema(extagent_t *ea, const loom_json_t *j, const char **why)
{
	const loom_json_t *types = loom_json_get(j, "types");
	if (types == NULL || types->type != LOOM_JSON_ARRAY) {
		*why = "a schema message needs \"types\": an array";
		return false;
	}
	loom_schema_t *s = loom_schema_new();
	static const char *const known[] = { "string", "integer", "boolean", "binary", "reference", "datetime" };
	for (size_t i = 0; i < types->n; i++) {
		const loom_json_t *t = types->items[i];
		const char *name = loom_json_get_str(t, "name");
		const loom_json_t *attrs = loom_json_get(t, "attrs");
		if (name == NULL || name[0] == '\0' || (attrs && attrs->type != LOOM_JSON_ARRAY)) {
			*why = "each of \"types\" needs a \"name\" and an \"attrs\" array";
			loom_schema_destroy(&s);
			return false;
		}
		loom_schema_type(s, name, loom_json_get_str(t, "anchor"));
		for (size_t k = 0; attrs && k < attrs->n; k++) {
			const char *an = loom_json_get_str(attrs->items[k], "name");
			const char *at = loom_json_get_str(attrs->items[k], "type");
			bool ok_type = at == NULL;
			for (size_t x = 0; at && x < sizeof known / sizeof known[0]; x++)
				ok_type = ok_type || strcmp(at, known[x]) == 0;
			if (an == NULL || an[0] == '\0' || !ok_type) {
				*why = "an attribute needs a \"name\" and a \"type\" among string, integer, boolean, binary, "
				       "reference, datetime";
				loom_schema_destroy(&s);
				return false;
			}
			loom_schema_attr(s, name, an, at ? at : "string", json_true(attrs->items[k], "multi"));
		}
	}
	char *src = loom_sprintf("program '%s'", ea->cfg.ext.command.v[0]);
	loom_agent_schema_reply(ea->d, ea->ask.env, s, json_true(j, "can_delta"), json_true(j, "can_export"), 0, src,
	    NULL);
	free(src);
	loom_schema_destroy(&s);
	return true;
}

static void ask_line(void *arg, const char *line, size_t len)
{
	extagent_t *ea = arg;
	ext_ask_t *q = &ea->ask;
	if (len == 0 || q->answered)
		return;
	char *err = NULL;
	loom_json_t *j = message_of(ea, line, len, 1, &err);
	if (j == NULL) {
		ask_fail(ea, err);
		free(err);
		ask_stop(ea);
		return;
	}
	const char *type = loom_json_get_str(j, "type");
	const char *want = q->schema ? "schema" : "test_result";
	if (strcmp(type, "log") == 0) {
		program_log(ea, j);
		loom_json_free(&j);
		return;
	}
	if (strcmp(type, "fail") == 0) {
		const char *m = loom_json_get_str(j, "message");
		char *t = loom_sprintf("program '%s' says: %s", ea->cfg.ext.command.v[0], m ? m : "(no message)");
		ask_fail(ea, t);
		free(t);
	} else if (strcmp(type, want) != 0) {
		char *t = loom_sprintf("program '%s': message type '%.32s' has no place here (%s, fail or log)",
		    ea->cfg.ext.command.v[0], type, want);
		ask_fail(ea, t);
		free(t);
	} else if (q->schema) {
		const char *why = NULL;
		if (!ask_schema(ea, j, &why)) {
			char *t = loom_sprintf("program '%s': %s", ea->cfg.ext.command.v[0], why);
			ask_fail(ea, t);
			free(t);
		}
		q->answered = true;
	} else {
		const char *m = loom_json_get_str(j, "message");
		loom_agent_test_reply(ea->d, q->env, json_true(j, "ok"), m ? m : "");
		q->answered = true;
	}
	loom_json_free(&j);
	ask_stop(ea);
}

static void ask_gone(void *arg, bool clean, const char *why)
{
	extagent_t *ea = arg;
	(void)clean;
	if (!ea->ask.answered) {
		char *t = ended_early(ea, ea->ask.proc, why, ea->ask.schema ? "its schema" : "its test_result");
		ask_fail(ea, t);
		free(t);
	}
	ask_stop(ea);
}

static const ext_proc_ops_t ask_ops = { ask_line, ask_gone };

static void ask(extagent_t *ea, Loom__Envelope *env, bool schema)
{
	ext_ask_t *q = &ea->ask;
	if (q->active) {
		const char *busy = "another schema request or connection test is with the program: ask again";
		if (schema)
			loom_agent_schema_reply(ea->d, env, NULL, false, false, 0, "", busy);
		else
			loom_agent_test_reply(ea->d, env, false, busy);
		return;
	}
	size_t elen = loom__envelope__get_packed_size(env);
	uint8_t *eb = loom_malloc(elen ? elen : 1);
	loom__envelope__pack(env, eb);
	q->env = loom__envelope__unpack(NULL, elen, eb);
	free(eb);
	q->active = true;
	q->schema = schema;
	char *err = NULL;
	if (ext_proc_start(loom_daemon_loop(ea->d), &ea->cfg, ea->name, &ask_ops, ea, &q->proc, &err) < 0) {
		ask_fail(ea, err);
		free(err);
		ask_stop(ea);
		return;
	}
	loom_buf_t b = LOOM_BUF_INIT;
	loom_buf_printf(&b, "{\"type\":\"%s\",\"protocol\":1,\"agent\":", schema ? "schema" : "test");
	loom_buf_add_json_str(&b, ea->name, strlen(ea->name));
	loom_buf_adds(&b, "}\n");
	int rc = ext_proc_send(q->proc, b.data, b.len, &err);
	loom_buf_release(&b);
	if (rc < 0) {
		char *t = ended_early(ea, q->proc, err, "reading its request");
		ask_fail(ea, t);
		free(t);
		free(err);
		ask_stop(ea);
		return;
	}
	ext_proc_close_input(q->proc);
	ext_proc_expect(q->proc, true);
}

static void on_schema(void *a, Loom__Envelope *env, const Loom__SchemaRequest *rq)
{
	(void)rq;
	ask(a, env, true);
}

static void on_test_connection(void *a, Loom__Envelope *env, const Loom__TestConnectionRequest *rq)
{
	(void)rq;
	ask(a, env, false);
}

/* ---- the daemon ------------------------------------------------------------------------- */

static int set_agent(loom_daemon_t *d, const char *v, const char **error_r)
{
	return loom_agent_name_option(d, &the_agent.name, v, error_r);
}

static int load(extagent_t *ea, const loom_deploy_t *cfg, char **ret_error)
{
	return loom_agentcfg_load_named(cfg->path, ea->name, LOOM_AGENT_EXT, &ea->cfg, ret_error);
}

static int ea_check(loom_daemon_t *d, const char **error_r)
{
	return loom_agent_check_named(d, the_agent.name, LOOM_AGENT_EXT, error_r);
}

static int ea_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	extagent_t *ea = &the_agent;
	ea->d = d;
	loom_daemon_set_user(d, ea);
	if (load(ea, loom_daemon_config(d), &msg) < 0) {
		*error_r = msg;
		return -1;
	}
	loom_buf_t cmd = LOOM_BUF_INIT;
	for (size_t i = 0; i < ea->cfg.ext.command.n; i++) {
		loom_buf_adds(&cmd, i ? " " : "");
		loom_buf_adds(&cmd, ea->cfg.ext.command.v[i]);
	}
	loom_buf_t q = LOOM_BUF_INIT;
	loom_buf_add_logval(&q, cmd.data, cmd.len);
	loom_info("agent ready agent=%s command=%s dir=%s", ea->name, loom_buf_cstr(&q), ea->cfg.ext.dir);
	loom_buf_release(&q);
	loom_buf_release(&cmd);
	return 0;
}

static const loom_agent_ops_t agent_ops = { "loom-ma-ext", on_import_start, on_import_credit, on_export_batch,
	on_set_password, on_schema, on_test_connection };

static void ea_message(loom_daemon_t *d, Loom__Envelope *env)
{
	loom_agent_dispatch(d, &agent_ops, loom_daemon_user(d), env);
}

static void ea_stop(loom_daemon_t *d)
{
	extagent_t *ea = loom_daemon_user(d);
	if (ea == NULL)
		return;
	imp_stop(ea);
	exp_stop(ea);
	pw_stop(ea);
	ask_stop(ea);
	loom_agentcfg_release(&ea->cfg);
}

static const loom_flag_t flags[] = {
	{ "agent", "NAME", "the agent to run (config/agents/NAME.yaml; service ma.NAME)", set_agent },
	{ NULL, NULL, NULL, NULL },
};

static const loom_daemon_def_t def = {
	.process = "loom-ma-ext",
	.summary = "Loom extensible management agent: runs the program of ext.command for each import, export and "
		   "password set, and speaks the agent protocol with it as JSON lines (docs/agents.md).",
	.default_service = NULL,
	.no_service_hint = "--agent NAME is required (the agent's file is config/agents/NAME.yaml)",
	.bus_client = true,
	.flags = flags,
	.start = ea_start,
	.on_message = ea_message,
	.stop = ea_stop,
	.own_config = &loom_agentcfg_table,
	.own_config_what = "agent file config/agents/NAME.yaml (type: ext, with its ext: section)",
	.check = ea_check,
};

int main(int argc, char **argv)
{
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_agent.name);
	return rc;
}
