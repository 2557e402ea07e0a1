/* loomctl_standby.c - the roles part of `loomctl status` (every process on
 * the bus and its role) and `loomctl activate` (make this host's standby processes
 * primary). Design: docs/recovery.md, "Warm standby and activation".
 *
 * Activation, in order; everything that can refuse comes before the first
 * write, so a refusal changes nothing:
 *   1. open the key set export with its passphrase        (refuse: wrong passphrase)
 *   2. check it against STATE_DIR/installation and keyset (refuse: other installation)
 *   3. read the lease                                     (refuse: this host holds it)
 *   4. find this host's standby processes on the bus      (refuse: none)
 *   5. write the key set (merged), then the lease epoch+1 with this host:
 *      from here the old primary's processes stop at their next write
 *   6. send Activate to each standby; each execs itself as primary, waits
 *      for the old primary's store LOCK, opens its stores read-write
 *   7. wait until each service answers Ping as primary of this host.
 */
#include "loomctl.h"
#include "loomctl_recovery.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STANDBY_PREFIX "standby."

/* Pings one instance; the Pong (caller frees) or NULL. */
static Loom__Pong *ping(ctl_t *ctl, const char *instance, long long timeout_ms)
{
	Loom__Ping p = LOOM__PING__INIT;
	uint8_t stamp[1] = { 0 };
	p.payload.data = stamp;
	p.payload.len = sizeof stamp;
	Loom__Envelope *env = NULL;
	const char *err;
	if (loom_bus_request(ctl->bus, instance, &p.base, timeout_ms, &env, &err) < 0)
		return NULL;
	Loom__Pong *pong = (Loom__Pong *)loom_envelope_body(env, &loom__pong__descriptor, &err);
	loom_envelope_free(&env);
	return pong;
}

static void print_lease(ctl_t *ctl, loom_buf_t *b)
{
	loom_lease_t l;
	char *err = NULL;
	int rc = loom_lease_read(ctl->cfg.state_dir, &l, &err);
	if (rc < 0) {
		loom_buf_printf(b, "lease: %s\n", err);
	} else if (rc == 0) {
		loom_buf_printf(b, "lease: none yet in '%s' (the first primary process takes it)\n", ctl->cfg.state_dir);
	} else {
		char when[32] = "?";
		time_t t = (time_t)l.since;
		struct tm tm;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		loom_buf_printf(b, "lease: host %s, epoch %llu, since %s UTC (%s/lease)\n", l.holder, l.epoch, when,
		    ctl->cfg.state_dir);
	}
	free(err);
}

/* The lease and every process on the bus with its role (primary,
 * standby): the second half of `loomctl status` (loomctl_status.c prints
 * the hosts' loomd tables first). */
int ctl_status_roles(ctl_t *ctl)
{
	if (ctl_load_config(ctl) < 0 || ctl_connect(ctl) < 0)
		return 1;
	Loom__Envelope *env = NULL;
	Loom__ServicesReply *r = ctl_list_services(ctl, "status", "", &env);
	if (r == NULL)
		return 1;
	const char *self = loom_bus_instance(ctl->bus);
	long long pt = ctl->timeout_ms < 2000 ? ctl->timeout_ms : 2000;
	loom_buf_t b = LOOM_BUF_INIT;
	if (ctl->json) {
		loom_buf_adds(&b, "[");
	} else {
		print_lease(ctl, &b);
		loom_buf_printf(&b, "%-20s %-30s %-16s %7s %-8s %s\n", "SERVICE", "INSTANCE", "PROCESS", "PID", "ROLE",
		    "DETAIL");
	}
	bool first = true;
	for (size_t i = 0; i < r->n_instances; i++) {
		Loom__ServiceInstance *s = r->instances[i];
		if (strcmp(s->instance, self) == 0)
			continue;
		Loom__Pong *pong = ping(ctl, s->instance, pt);
		const char *role = pong == NULL ? "no-answer" : pong->role[0] ? pong->role : "-";
		const char *detail = pong == NULL ? "" : pong->role_detail;
		if (ctl->json) {
			loom_buf_adds(&b, first ? "\n" : ",\n");
			loom_buf_adds(&b, "  {\"service\":");
			loom_buf_add_json_str(&b, s->service, strlen(s->service));
			loom_buf_adds(&b, ",\"instance\":");
			loom_buf_add_json_str(&b, s->instance, strlen(s->instance));
			loom_buf_adds(&b, ",\"process\":");
			loom_buf_add_json_str(&b, s->process, strlen(s->process));
			loom_buf_printf(&b, ",\"pid\":%u,\"role\":", s->pid);
			loom_buf_add_json_str(&b, role, strlen(role));
			loom_buf_adds(&b, ",\"detail\":");
			loom_buf_add_json_str(&b, detail, strlen(detail));
			loom_buf_adds(&b, "}");
		} else {
			loom_buf_printf(&b, "%-20s %-30s %-16s %7u %-8s %s\n", s->service, s->instance, s->process, s->pid,
			    role, detail);
		}
		first = false;
		if (pong)
			protobuf_c_message_free_unpacked(&pong->base, NULL);
	}
	if (ctl->json)
		loom_buf_adds(&b, first ? "]\n" : "\n]\n");
	fputs(loom_buf_cstr(&b), stdout);
	loom_buf_release(&b);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	loom_envelope_free(&env);
	return 0;
}

/* ---- activate ------------------------------------------------------------------------------ */

typedef struct standby_proc {
	char *instance;                /* standby.SERVICE@id */
	char *service;                 /* SERVICE, the name it takes as primary */
	bool accepted;                 /* answered Activate with ok */
	bool up;                       /* seen answering as primary of this host */
} standby_proc_t;

static void procs_free(standby_proc_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].instance);
		free(v[i].service);
	}
	free(v);
}

/* This host's standby processes on the bus (each asked by Ping for its
 * lease host). Returns how many, with *ret (caller frees), or -1. */
static long find_standbys(ctl_t *ctl, const char *host, standby_proc_t **ret)
{
	Loom__Envelope *env = NULL;
	Loom__ServicesReply *r = ctl_list_services(ctl, "activate", "", &env);
	if (r == NULL)
		return -1;
	standby_proc_t *v = loom_calloc(r->n_instances + 1, sizeof *v);
	size_t n = 0;
	long long pt = ctl->timeout_ms < 2000 ? ctl->timeout_ms : 2000;
	for (size_t i = 0; i < r->n_instances; i++) {
		Loom__ServiceInstance *s = r->instances[i];
		if (strncmp(s->service, STANDBY_PREFIX, strlen(STANDBY_PREFIX)) != 0)
			continue;
		Loom__Pong *pong = ping(ctl, s->instance, pt);
		if (pong == NULL)
			continue;
		if (strcmp(pong->role, "standby") == 0 && strcmp(pong->lease_host, host) == 0) {
			v[n].instance = loom_strdup(s->instance);
			v[n].service = loom_strdup(s->service + strlen(STANDBY_PREFIX));
			n++;
		}
		protobuf_c_message_free_unpacked(&pong->base, NULL);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	loom_envelope_free(&env);
	*ret = v;
	return (long)n;
}

/* True when an instance of service answers as primary of host. */
static bool primary_up(ctl_t *ctl, const char *service, const char *host)
{
	Loom__Envelope *env = NULL;
	Loom__ServicesReply *r = ctl_list_services(ctl, NULL, service, &env);
	if (r == NULL)
		return false;
	loom_envelope_free(&env);
	bool up = false;
	for (size_t i = 0; i < r->n_instances && !up; i++) {
		if (strcmp(r->instances[i]->service, service) != 0)
			continue;
		Loom__Pong *pong = ping(ctl, r->instances[i]->instance, 1000);
		if (pong != NULL) {
			up = strcmp(pong->role, "primary") == 0 && strcmp(pong->lease_host, host) == 0;
			protobuf_c_message_free_unpacked(&pong->base, NULL);
		}
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return up;
}

int ctl_activate(ctl_t *ctl, int argc, char **argv)
{
	const char *keyset = NULL, *pwfile = NULL, *hostarg = NULL, *waitarg = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], **dst, *flag;
		if (strncmp(a, "--keyset", 8) == 0 && (a[8] == '\0' || a[8] == '='))
			dst = &keyset, flag = "--keyset";
		else if (strncmp(a, "--passphrase-file", 17) == 0 && (a[17] == '\0' || a[17] == '='))
			dst = &pwfile, flag = "--passphrase-file";
		else if (strncmp(a, "--host", 6) == 0 && (a[6] == '\0' || a[6] == '='))
			dst = &hostarg, flag = "--host";
		else if (strncmp(a, "--wait", 6) == 0 && (a[6] == '\0' || a[6] == '='))
			dst = &waitarg, flag = "--wait";
		else {
			fprintf(stderr, "loomctl activate: unexpected '%s' (see loomctl activate --help)\n", a);
			return 2;
		}
		if ((*dst = ctl_option_value("activate", argc, argv, &i, flag, strlen(flag))) == NULL)
			return 2;
	}
	if (keyset == NULL) {
		fprintf(stderr, "loomctl activate: expected --keyset FILE (this installation's exported key set)\n");
		return 2;
	}
	long long wait_ms = 60000;
	if (waitarg != NULL && ctl_parse_duration("--wait", waitarg, &wait_ms) < 0)
		return 2;
	const char *host = loom_lease_host(hostarg);
	if (strpbrk(host, " \t\r\n") != NULL || strlen(host) >= sizeof ((loom_lease_t *)0)->holder) {
		fprintf(stderr, "loomctl activate: bad host name '%s': expected a name without spaces\n", host);
		return 2;
	}
	if (ctl_load_config(ctl) < 0) {
		fprintf(stderr, "loomctl activate: cannot load the configuration\n");
		return 1;
	}
	const char *sd = ctl->cfg.state_dir;

	/* 1-2: the key set */
	loom_keyset_t *ks = NULL, *merged = NULL;
	standby_proc_t *procs = NULL;
	long nprocs = 0;
	char *err = NULL;
	int rc = 1;
	if (rcv_open_export(keyset, pwfile, &ks, &err) < 0 || rcv_keyset_accept(sd, &ks, keyset, &merged, &err) < 0) {
		fprintf(stderr, "loomctl activate: refused: %s\n", err);
		goto out;
	}
	/* 3: the lease */
	loom_lease_t l;
	int lrc = loom_lease_read(sd, &l, &err);
	if (lrc < 0) {
		fprintf(stderr, "loomctl activate: refused: %s\n", err);
		goto out;
	}
	if (lrc == 1 && strcmp(l.holder, host) == 0) {
		fprintf(stderr, "loomctl activate: refused: host '%s' is already primary (lease epoch %llu in '%s/lease')\n",
		    host, l.epoch, sd);
		goto out;
	}
	/* 4: this host's standby processes */
	if (ctl_connect(ctl) < 0)
		goto out;
	nprocs = find_standbys(ctl, host, &procs);
	if (nprocs < 0)
		goto out;
	if (nprocs == 0) {
		fprintf(stderr, "loomctl activate: refused: no standby process of host '%s' is on the bus "
		    "(start them with --standby --host %s)\n", host, host);
		goto out;
	}
	/* 5: key set, then the lease (this fences the old primary) */
	if (rcv_keyset_install(sd, merged, &err) < 0) {
		fprintf(stderr, "loomctl activate: cannot write the key set: %s\n", err);
		goto out;
	}
	loom_lease_t nl;
	memset(&nl, 0, sizeof nl);
	nl.epoch = lrc == 1 ? l.epoch + 1 : 1;
	snprintf(nl.holder, sizeof nl.holder, "%s", host);
	nl.since = (long long)time(NULL);
	if (loom_lease_write(sd, &nl, &err) < 0) {
		fprintf(stderr, "loomctl activate: cannot write the lease: %s\n", err);
		goto out;
	}
	printf("lease: host %s, epoch %llu (was %s%s%s epoch %llu): the old primary stops at its next write\n", host,
	    nl.epoch, lrc == 1 ? "host '" : "none", lrc == 1 ? l.holder : "", lrc == 1 ? "'" : "",
	    lrc == 1 ? l.epoch : 0ULL);
	printf("key set of installation %s loaded (%zu version(s), current %u)\n", loom_keyset_installation(merged),
	    loom_keyset_count(merged), loom_keyset_current(merged));

	/* 6: tell each standby */
	Loom__Activate act = LOOM__ACTIVATE__INIT;
	act.epoch = nl.epoch;
	act.host = (char *)host;
	size_t accepted = 0;
	for (long i = 0; i < nprocs; i++) {
		Loom__Envelope *env = NULL;
		const char *berr;
		if (loom_bus_request(ctl->bus, procs[i].instance, &act.base, ctl->timeout_ms, &env, &berr) < 0) {
			fprintf(stderr, "loomctl activate: %s: %s\n", procs[i].instance, berr);
			continue;
		}
		Loom__ActivateReply *r = (Loom__ActivateReply *)loom_envelope_body(env, &loom__activate_reply__descriptor,
		    &berr);
		if (r == NULL)
			fprintf(stderr, "loomctl activate: %s: %s\n", procs[i].instance, berr);
		else if (!r->ok)
			fprintf(stderr, "loomctl activate: %s: %s\n", procs[i].instance, r->error);
		else
			procs[i].accepted = true, accepted++;
		if (r)
			protobuf_c_message_free_unpacked(&r->base, NULL);
		loom_envelope_free(&env);
	}
	/* 7: wait until each answers as primary */
	long long until = loom_mono_ms() + wait_ms;
	size_t up = 0;
	while (up < accepted && loom_mono_ms() < until) {
		for (long i = 0; i < nprocs; i++)
			if (procs[i].accepted && !procs[i].up && primary_up(ctl, procs[i].service, host)) {
				procs[i].up = true;
				up++;
				printf("%s: primary\n", procs[i].service);
			}
		if (up < accepted)
			ctl_sleep_ms(200);
	}
	for (long i = 0; i < nprocs; i++)
		if (!procs[i].up)
			fprintf(stderr, "loomctl activate: %s did not come up as primary of host '%s'%s\n", procs[i].service,
			    host, procs[i].accepted ? " in time (see its log)" : "");
	if (up == (size_t)nprocs) {
		printf("activated host %s (epoch %llu): %zu process(es) primary\n", host, nl.epoch, up);
		rc = 0;
	}
out:
	free(err);
	procs_free(procs, nprocs > 0 ? (size_t)nprocs : 0);
	loom_keyset_destroy(&ks);
	loom_keyset_destroy(&merged);
	return rc;
}
