/* loomctl_sspr.c - `loomctl sspr register|reset`: self-service password
 * reset through loom-workflow (docs/sspr.md).
 *
 * On a terminal every secret (the current password, the answers, the new
 * password) is asked without echo; otherwise standard input gives them one
 * per line:
 *   register: the current password, then one answer per configured question
 *             in index order (an empty line skips the question)
 *   reset:    one answer per configured question in index order (only the
 *             presented ones are sent), then the new password
 * Secrets are held in libsodium guarded memory, packed into one
 * SsprSecrets, sealed to loom-workflow's key (keys_dir/workflow.pub) and
 * wiped: only the sealed box crosses the bus.
 */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_keys.h"
#include "sspr.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define SECRET_MAX 1024 /* bytes of a secret read */

/* A secret into a fresh guarded buffer: asked with echo off on a terminal,
 * else the next line of standard input. NULL after saying why. */
static char *ask(const char *prompt, bool tty, bool optional)
{
	char *buf = sodium_malloc(SECRET_MAX + 1);
	if (buf == NULL)
		abort();
	size_t len = 0;
	errno = 0;
	int rc = ctl_read_secret(prompt, tty, buf, SECRET_MAX, &len);
	if (rc > 0 && optional) {
		buf[0] = '\0';
		return buf;
	}
	if (rc != 0)
		goto fail;
	return buf;
fail:
	fprintf(stderr, "loomctl sspr: cannot read '%s': %s\n", prompt,
	    errno == EMSGSIZE ? "a line over 1024 bytes" : errno ? strerror(errno) : "end of input");
	sodium_free(buf);
	return NULL;
}

static Loom__SsprQuestionsReply *questions(ctl_t *ctl, const char *account, bool reset)
{
	Loom__SsprQuestionsRequest rq = LOOM__SSPR_QUESTIONS_REQUEST__INIT;
	rq.account = (char *)account;
	rq.reset = reset;
	Loom__Envelope *env = NULL;
	const char *err = NULL;
	if (loom_bus_request(ctl->bus, "workflow", &rq.base, ctl->timeout_ms, &env, &err) < 0) {
		fprintf(stderr, "loomctl sspr: %s\n", err);
		return NULL;
	}
	Loom__SsprQuestionsReply *r = (Loom__SsprQuestionsReply *)loom_envelope_body(env,
	    &loom__sspr_questions_reply__descriptor, &err);
	loom_envelope_free(&env);
	if (r == NULL) {
		fprintf(stderr, "loomctl sspr: the reply of loom-workflow: %s\n", err);
		return NULL;
	}
	if (!r->ok) {
		fprintf(stderr, "loomctl sspr: %s: %s\n", r->code, r->message);
		loom__sspr_questions_reply__free_unpacked(r, NULL);
		return NULL;
	}
	return r;
}

/* Packs, seals and wipes sec's secrets; sends reset or register; prints the reply. */
static int send_secrets(ctl_t *ctl, const uint8_t pub[LOOM_KEY_LEN], const char *account, bool reset,
    Loom__SsprSecrets *sec)
{
	size_t plen = loom__sspr_secrets__get_packed_size(sec);
	uint8_t *plain = sodium_malloc(plen ? plen : 1);
	if (plain == NULL)
		abort();
	loom__sspr_secrets__pack(sec, plain);
	Loom__Sealed sealed;
	loom_seal(pub, "workflow", plain, plen, &sealed);
	sodium_free(plain);
	Loom__SsprRegister reg = LOOM__SSPR_REGISTER__INIT;
	Loom__SsprReset rst = LOOM__SSPR_RESET__INIT;
	reg.account = rst.account = (char *)account;
	reg.secrets = rst.secrets = &sealed;
	Loom__Envelope *env = NULL;
	const char *err = NULL;
	int rc = loom_bus_request(ctl->bus, "workflow", reset ? &rst.base : &reg.base, ctl->timeout_ms, &env, &err);
	loom_sealed_release(&sealed);
	if (rc < 0) {
		fprintf(stderr, "loomctl sspr: %s\n", err);
		return 1;
	}
	Loom__SsprReply *r = (Loom__SsprReply *)loom_envelope_body(env, &loom__sspr_reply__descriptor, &err);
	loom_envelope_free(&env);
	if (r == NULL) {
		fprintf(stderr, "loomctl sspr: the reply of loom-workflow: %s\n", err);
		return 1;
	}
	int status = r->ok ? 0 : 3;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else if (r->ok) {
		if (reset)
			printf("password reset for %s: %u connected system(s) will be set\n", account, r->targets);
		else
			printf("%s registered for password reset\n", account);
	} else {
		fprintf(stderr, "loomctl sspr: %s: %s", r->code, r->message);
		if (r->attempts_left)
			fprintf(stderr, " (%u attempt(s) left)", r->attempts_left);
		if (r->locked_until < 0)
			fprintf(stderr, " (locked until an administrator registers the account again)");
		else if (r->locked_until > 0) {
			char t[32];
			ctl_fmt_time(t, sizeof t, r->locked_until);
			fprintf(stderr, " (locked until %s UTC)", t);
		}
		fputs("\n", stderr);
	}
	loom__sspr_reply__free_unpacked(r, NULL);
	return status;
}

static int sspr_run(ctl_t *ctl, bool reset, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *account = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'a')
			return 2;
		account = optarg;
	}
	if (optind != argc || account == NULL || account[0] == '\0') {
		fprintf(stderr, "loomctl sspr: expected --account NAME (see loomctl sspr --help)\n");
		return 2;
	}
	if (ctl_load_config(ctl) < 0)
		return 1;
	char *path = loom_sprintf("%s/workflow.pub", ctl->cfg.bus.keys_dir);
	uint8_t pub[LOOM_KEY_LEN];
	char *kerr = NULL;
	if (loom_keys_read_public(path, pub, &kerr) < 0) {
		fprintf(stderr, "loomctl sspr: cannot seal to loom-workflow: %s (loomctl keys gen workflow)\n", kerr);
		free(kerr);
		free(path);
		return 1;
	}
	free(path);
	if (ctl_connect(ctl) < 0)
		return 1;
	if (sodium_init() < 0)
		abort();
	bool tty = isatty(STDIN_FILENO);
	Loom__SsprQuestionsReply *all = questions(ctl, account, false);
	if (all == NULL)
		return 3;
	Loom__SsprQuestionsReply *shown = reset ? questions(ctl, account, true) : NULL;
	if (reset && shown == NULL) {
		loom__sspr_questions_reply__free_unpacked(all, NULL);
		return 3;
	}
	Loom__SsprSecrets sec = LOOM__SSPR_SECRETS__INIT;
	char *cur = NULL, *npw = NULL, *again = NULL;
	char **ans = loom_calloc(all->n_questions, sizeof *ans);
	Loom__SsprAnswer *as = loom_calloc(all->n_questions, sizeof *as);
	Loom__SsprAnswer **ap = loom_calloc(all->n_questions, sizeof *ap);
	int status = 1;
	if (!reset) {
		char *prompt = loom_sprintf("Current password of %s: ", account);
		cur = ask(prompt, tty, false);
		free(prompt);
		if (cur == NULL)
			goto out;
		sec.current_password = cur;
		if (tty)
			fprintf(stderr, "Answer at least %u of these (an empty answer skips one):\n", all->required);
	} else if (tty) {
		fprintf(stderr, "Answer these (%u must be right):\n", shown->required);
	}
	for (size_t i = 0; i < all->n_questions; i++) {
		const Loom__SsprQuestion *q = all->questions[i];
		bool wanted = !reset;
		for (size_t j = 0; reset && j < shown->n_questions; j++)
			wanted |= shown->questions[j]->index == q->index;
		if (tty && !wanted)
			continue; /* on a terminal only what is asked */
		char *prompt = loom_sprintf("%s ", q->text);
		ans[i] = ask(prompt, tty, true);
		free(prompt);
		if (ans[i] == NULL)
			goto out;
		if (!wanted || ans[i][0] == '\0')
			continue;
		loom__sspr_answer__init(&as[sec.n_answers]);
		as[sec.n_answers].question = q->index;
		as[sec.n_answers].answer = ans[i];
		ap[sec.n_answers] = &as[sec.n_answers];
		sec.n_answers++;
	}
	sec.answers = ap;
	if (reset) {
		char *prompt = loom_sprintf("New password for %s: ", account);
		npw = ask(prompt, tty, false);
		free(prompt);
		if (npw == NULL)
			goto out;
		if (tty) {
			again = ask("Retype the new password: ", tty, false);
			if (again == NULL)
				goto out;
			if (strlen(again) != strlen(npw) || sodium_memcmp(again, npw, strlen(npw)) != 0) {
				fprintf(stderr, "loomctl sspr: the two passwords differ: nothing was changed\n");
				goto out;
			}
		}
		if (npw[0] == '\0') {
			fprintf(stderr, "loomctl sspr: the new password is empty: nothing was changed\n");
			goto out;
		}
		sec.new_password = npw;
	}
	status = send_secrets(ctl, pub, account, reset, &sec);
out:
	for (size_t i = 0; i < all->n_questions; i++)
		if (ans[i])
			sodium_free(ans[i]);
	if (cur)
		sodium_free(cur);
	if (npw)
		sodium_free(npw);
	if (again)
		sodium_free(again);
	free(ans);
	free(as);
	free(ap);
	loom__sspr_questions_reply__free_unpacked(all, NULL);
	if (shown)
		loom__sspr_questions_reply__free_unpacked(shown, NULL);
	return status;
}

/* `loomctl sspr questions --account NAME [--reset]`: what a front end
 * would show (the questions only; nothing secret). */
static int sspr_questions(ctl_t *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ "reset", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *account = "";
	bool reset = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'a')
			account = optarg;
		else if (c == 'r')
			reset = true;
		else
			return 2;
	}
	if (optind != argc || (reset && account[0] == '\0')) {
		fprintf(stderr, "loomctl sspr questions: expected [--account NAME --reset]\n");
		return 2;
	}
	if (ctl_load_config(ctl) < 0 || ctl_connect(ctl) < 0)
		return 1;
	Loom__SsprQuestionsReply *r = questions(ctl, account, reset);
	if (r == NULL)
		return 3;
	if (ctl->json) {
		ctl_print_json(&r->base);
	} else {
		printf("%s %u:\n", reset ? "answer right at least" : "answer at least", r->required);
		for (size_t i = 0; i < r->n_questions; i++)
			printf("%u\t%s\n", r->questions[i]->index, r->questions[i]->text);
	}
	loom__sspr_questions_reply__free_unpacked(r, NULL);
	return 0;
}

int ctl_sspr(ctl_t *ctl, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "questions") == 0)
		return sspr_questions(ctl, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "register") == 0)
		return sspr_run(ctl, false, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "reset") == 0)
		return sspr_run(ctl, true, argc - 1, argv + 1);
	fprintf(stderr, "loomctl sspr: expected 'register', 'reset' or 'questions' (see loomctl sspr --help)\n");
	return 2;
}
