/* loomctl_passwd.c - `loomctl password set`: an administrator sets one
 * account's password through its agent.
 *
 * The password is read without echo from the terminal (asked twice), or
 * as the first line of standard input when that is not a terminal; it is
 * held in libsodium guarded memory, sealed to the agent's public key
 * (keys_dir/ma.NAME.pub) and wiped. Only the sealed box crosses the bus.
 */
#include "loomctl.h"
#include "agent.pb-c.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_keys.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PW_MAX 1024 /* bytes of a password read */

/* Asks on the terminal with echo off. 0, or -1 after saying why. */
static int ask_tty(const char *prompt, char *buf, size_t *ret_len)
{
	errno = 0;
	int rc = ctl_read_secret(prompt, true, buf, PW_MAX, ret_len);
	if (rc != 0) {
		fprintf(stderr, "loomctl password set: %s\n", errno == EMSGSIZE ? "the password is over 1024 bytes"
		    : rc > 0 ? "no password given" : strerror(errno));
		return -1;
	}
	return 0;
}

/* The new password into pw (guarded, PW_MAX + 1 bytes). 0 or -1 after saying why. */
static int read_password(const char *dn, char *pw, size_t *ret_len)
{
	if (isatty(STDIN_FILENO)) {
		char *again = sodium_malloc(PW_MAX + 1);
		if (again == NULL)
			abort();
		char *prompt = loom_sprintf("New password for %s: ", dn);
		size_t len2 = 0;
		int rc = ask_tty(prompt, pw, ret_len);
		if (rc == 0)
			rc = ask_tty("Retype the new password: ", again, &len2);
		free(prompt);
		if (rc == 0 && (len2 != *ret_len || sodium_memcmp(pw, again, len2) != 0)) {
			fprintf(stderr, "loomctl password set: the two passwords differ: nothing was changed\n");
			rc = -1;
		}
		sodium_free(again);
		return rc;
	}
	errno = 0;
	int rc = ctl_read_secret(NULL, false, pw, PW_MAX, ret_len);
	if (rc != 0) {
		fprintf(stderr, "loomctl password set: cannot read the password from standard input: %s\n",
		    errno == EMSGSIZE ? "its first line is over 1024 bytes" : rc > 0 ? "it is empty" : strerror(errno));
		return -1;
	}
	/* Only one line: anything after it is a mistake (a file of several?). */
	char extra[1];
	ssize_t n;
	while ((n = read(STDIN_FILENO, extra, 1)) < 0 && errno == EINTR)
		;
	if (n > 0) {
		sodium_memzero(extra, sizeof extra);
		fprintf(stderr, "loomctl password set: standard input holds more than one line: give the password alone\n");
		return -1;
	}
	return 0;
}

static int password_set(ctl_t *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "dn", required_argument, NULL, 'd' },
		{ "anchor", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *agent = NULL, *dn = "", *anchor = "";
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': agent = optarg; break;
		case 'd': dn = optarg; break;
		case 'n': anchor = optarg; break;
		default: return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "loomctl password set: unexpected '%s' (see loomctl password --help)\n", argv[optind]);
		return 2;
	}
	if (agent == NULL || agent[0] == '\0') {
		fprintf(stderr, "loomctl password set: --agent NAME is required\n");
		return 2;
	}
	if (!loom_service_name_valid(agent, strlen(agent))) {
		fprintf(stderr, "loomctl password set: bad --agent '%s': expected a name of letters, digits, '.', '_' and '-'\n",
		    agent);
		return 2;
	}
	if (dn[0] == '\0' && anchor[0] == '\0') {
		fprintf(stderr, "loomctl password set: give the account as --dn DN or --anchor ANCHOR\n");
		return 2;
	}
	if (ctl_load_config(ctl) < 0)
		return 1;
	char *service = loom_sprintf("ma.%s", agent);
	char *path = loom_sprintf("%s/%s.pub", ctl->cfg.bus.keys_dir, service);
	uint8_t pub[LOOM_KEY_LEN];
	char *err = NULL;
	if (loom_keys_read_public(path, pub, &err) < 0) {
		fprintf(stderr, "loomctl password set: cannot seal the password to agent '%s': %s (the agent's key pair is "
				"made with: loomctl keys gen %s)\n",
		    agent, err, service);
		free(err);
		free(path);
		free(service);
		return 1;
	}
	free(path);
	if (ctl_connect(ctl) < 0) {
		free(service);
		return 1;
	}
	if (sodium_init() < 0)
		abort();
	char *pw = sodium_malloc(PW_MAX + 1);
	if (pw == NULL)
		abort();
	size_t len = 0;
	int status = 1;
	if (read_password(dn[0] ? dn : anchor, pw, &len) < 0)
		goto out;
	if (len == 0) {
		fprintf(stderr, "loomctl password set: the password is empty: nothing was changed\n");
		goto out;
	}
	Loom__Sealed sealed;
	loom_seal(pub, service, pw, len, &sealed);
	sodium_free(pw); /* wipes it: from here on only the sealed box exists */
	pw = NULL;
	Loom__SetPasswordRequest rq = LOOM__SET_PASSWORD_REQUEST__INIT;
	rq.agent = (char *)agent;
	rq.dn = (char *)dn;
	rq.anchor = (char *)anchor;
	rq.password = &sealed;
	randombytes_buf(&rq.request_id, sizeof rq.request_id);
	Loom__Envelope *env = NULL;
	const char *berr = NULL;
	int brc = loom_bus_request(ctl->bus, service, &rq.base, ctl->timeout_ms, &env, &berr);
	loom_sealed_release(&sealed);
	if (brc < 0) {
		fprintf(stderr, "loomctl password set: %s\n", berr);
		/* Sent but not answered: the agent may have set it all the same
		 * (its server can take up to ldap.timeout). */
		if (strncmp(berr, "no reply from", 13) == 0)
			fprintf(stderr, "loomctl password set: whether the password was set is unknown (a longer --timeout "
					"waits longer for the agent)\n");
		goto out;
	}
	Loom__SetPasswordReply *r = (Loom__SetPasswordReply *)loom_envelope_body(env, &loom__set_password_reply__descriptor,
	    &berr);
	loom_envelope_free(&env);
	if (r == NULL) {
		fprintf(stderr, "loomctl password set: the reply of '%s': %s\n", service, berr);
		goto out;
	}
	if (r->request_id != rq.request_id) {
		fprintf(stderr, "loomctl password set: the reply answers another request\n");
	} else if (ctl->json) {
		ctl_print_json(&r->base);
		status = r->ok ? 0 : 3;
	} else if (r->ok) {
		printf("password set on %s (agent %s)\n", r->dn, agent);
		status = 0;
	} else {
		fprintf(stderr, "loomctl password set: %s: %s (%s)\n", r->code, r->message,
		    r->retryable ? "may succeed if tried again" : "retrying will not help");
		status = 3;
	}
	loom__set_password_reply__free_unpacked(r, NULL);
out:
	if (pw)
		sodium_free(pw);
	free(service);
	return status;
}

int ctl_password(ctl_t *ctl, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "set") != 0) {
		fprintf(stderr, "loomctl password: expected 'set' (see loomctl password --help)\n");
		return 2;
	}
	return password_set(ctl, argc - 1, argv + 1);
}
