/* loomctl_status.c - `loomctl status`: every process on every host, from
 * each host's loomd (docs/deploy.md). */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_pbfmt.h"
#include "loomd.pb-c.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is the process registered with the broker (service and pid match)? */
static const char *on_bus(const Loom__ServicesReply *sr, const Loom__ProcessStatus *p)
{
	if (strcmp(p->name, "broker") == 0 || strcmp(p->name, "tap") == 0)
		return "-";
	if (p->pid == 0)
		return "no";
	for (size_t i = 0; i < sr->n_instances; i++)
		if (strcmp(sr->instances[i]->service, p->name) == 0 && sr->instances[i]->pid == p->pid)
			return "yes";
	return "no";
}

/* --local: the state files loomd writes in STATE_DIR/run, for when the
 * broker does not answer. */
static int status_local(ctl_t *ctl)
{
	if (ctl_load_config(ctl) < 0)
		return 1;
	char *run = loom_sprintf("%s/run", ctl->cfg.state_dir);
	DIR *dir = opendir(run);
	int status = 0, n = 0;
	if (dir == NULL) {
		printf("(no loomd state in '%s')\n", run);
		free(run);
		return 3;
	}
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, "loomd.", 6) != 0 || len < 12 || strcmp(e->d_name + len - 6, ".state") != 0)
			continue;
		char *path = loom_sprintf("%s/%s", run, e->d_name);
		FILE *f = fopen(path, "r");
		char line[1024];
		int pid = 0;
		while (f && fgets(line, sizeof line, f)) {
			if (strncmp(line, "loomd ", 6) == 0) {
				const char *p = strstr(line, " pid=");
				pid = p ? atoi(p + 5) : 0;
				bool alive = pid > 0 && kill(pid, 0) == 0;
				line[strcspn(line, "\n")] = '\0';
				printf("%s%s\n", line, alive ? "" : " (not running: the table is as it last wrote it)");
				if (!alive)
					status = 3;
			} else {
				printf("  %s", line);
				if (strstr(line, " running ") == NULL)
					status = 3;
			}
		}
		if (f)
			fclose(f);
		free(path);
		n++;
	}
	closedir(dir);
	if (n == 0) {
		printf("(no loomd state in '%s')\n", run);
		status = 3;
	}
	free(run);
	return status;
}

int ctl_status(ctl_t *ctl, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--local") == 0)
		return status_local(ctl);
	if (argc > 1) {
		fprintf(stderr, "loomctl status: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	if (ctl_connect(ctl) < 0)
		return 1;
	Loom__Envelope *senv = NULL;
	Loom__ServicesReply *sr = ctl_list_services(ctl, "status", "", &senv);
	if (sr == NULL)
		return 1;
	const char *err;
	int status = 0;
	loom_buf_t b = LOOM_BUF_INIT;
	if (ctl->json)
		loom_buf_adds(&b, "[");
	else
		loom_buf_printf(&b, "%-12s %-16s %-9s %7s %8s %-4s %-19s %s\n", "HOST", "PROCESS", "STATE", "PID",
		    "RESTARTS", "BUS", "SINCE (UTC)", "LAST EXIT");
	/* hosts of loom.yaml seen answering */
	const loom_deploy_host_t *hosts = ctl->cfg.hosts.v;
	bool *seen = loom_calloc(ctl->cfg.hosts.n + 1, sizeof *seen);
	int nreplies = 0;
	for (size_t i = 0; i < sr->n_instances; i++) {
		Loom__ServiceInstance *s = sr->instances[i];
		if (strncmp(s->service, "loomd.", 6) != 0)
			continue;
		Loom__HostStatusRequest hq = LOOM__HOST_STATUS_REQUEST__INIT;
		Loom__Envelope *env = NULL;
		if (loom_bus_request(ctl->bus, s->instance, &hq.base, ctl->timeout_ms, &env, &err) < 0) {
			if (!ctl->json)
				loom_buf_printf(&b, "%-12s %-16s %-9s  (%s)\n", s->service + 6, "loomd", "no-answer", err);
			status = 3;
			continue;
		}
		Loom__HostStatusReply *r = (Loom__HostStatusReply *)loom_envelope_body(env,
		    &loom__host_status_reply__descriptor, &err);
		if (r == NULL) {
			fprintf(stderr, "loomctl status: reply of %s: %s\n", s->instance, err);
			loom_envelope_free(&env);
			status = 1;
			continue;
		}
		for (size_t h = 0; h < ctl->cfg.hosts.n; h++)
			if (hosts[h].name.text && strcmp(hosts[h].name.text, r->host) == 0)
				seen[h] = true;
		nreplies++;
		char when[32];
		if (ctl->json) {
			loom_buf_adds(&b, nreplies > 1 ? ",\n" : "\n");
			loom_pbfmt_json(&b, &r->base);
		} else {
			ctl_fmt_time(when, sizeof when, r->started);
			loom_buf_printf(&b, "%-12s %-16s %-9s %7u %8s %-4s %-19s\n", r->host, "loomd", "running", r->pid, "-",
			    "yes", when);
		}
		for (size_t k = 0; k < r->n_processes; k++) {
			Loom__ProcessStatus *p = r->processes[k];
			if (strcmp(p->state, "running") != 0)
				status = 3;
			if (ctl->json)
				continue;
			ctl_fmt_time(when, sizeof when, p->since);
			loom_buf_printf(&b, "%-12s %-16s %-9s %7u %8u %-4s %-19s %s", r->host, p->name, p->state, p->pid,
			    p->restarts, on_bus(sr, p), when, p->last_exit[0] ? p->last_exit : "-");
			if (strcmp(p->state, "backoff") == 0) {
				ctl_fmt_time(when, sizeof when, p->next_start);
				loom_buf_printf(&b, " (starts again at %s, fast crashes %u)", when, p->fast_crashes);
			}
			loom_buf_adds(&b, "\n");
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
		loom_envelope_free(&env);
	}
	for (size_t h = 0; h < ctl->cfg.hosts.n; h++) {
		if (seen[h] || hosts[h].name.text == NULL)
			continue;
		status = 3;
		if (!ctl->json)
			loom_buf_printf(&b, "%-12s %-16s %-9s  (no loomd.%s registered with the broker)\n", hosts[h].name.text,
			    "loomd", "unknown", hosts[h].name.text);
	}
	/* Without loomd and without hosts: in loom.yaml the processes run
	 * unsupervised (started by hand or by a test): not an error. */
	bool unsupervised = nreplies == 0 && ctl->cfg.hosts.n == 0;
	if (ctl->json)
		loom_buf_adds(&b, nreplies ? "\n]\n" : "]\n");
	else if (unsupervised)
		loom_buf_adds(&b, "(no loomd registered with the broker)\n");
	if (nreplies == 0 && status == 0 && !unsupervised)
		status = 3;
	if (!(ctl->json && unsupervised))
		fputs(loom_buf_cstr(&b), stdout);
	loom_buf_release(&b);
	if (!ctl->json)
		fputs("\n", stdout);
	fflush(stdout);
	if ((!ctl->json || unsupervised) && ctl_status_roles(ctl) != 0 && status == 0)
		status = 1;
	free(seen);
	protobuf_c_message_free_unpacked(&sr->base, NULL);
	loom_envelope_free(&senv);
	return status;
}
