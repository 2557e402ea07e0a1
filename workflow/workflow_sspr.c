/* workflow_sspr.c - self-service password reset (docs/sspr.md).
 *
 * Configured by sspr.yaml beside the deployment file (absent: SSPR is off and its messages
 * are refused). Every secret arrives as one loom.SsprSecrets sealed to
 * loom-workflow's key; it is opened into guarded memory and wiped once used.
 * An answer is kept as Argon2id(BLAKE2b-keyed(pepper, question | normalised
 * answer), salt): the pepper is derived from a key of the key set
 * (loom_keyset_derive, the version kept in the record), so a copy of the
 * store or of a backup alone does not allow guessing answers offline, and a
 * rotation does not invalidate a registration (old versions are kept).
 *
 * An account's record (SsprRecord, family "sspr", key: the account), its
 * states (this block and the code change together):
 *
 *   (none) --SsprRegister, >= N answers--> answers hashed, VerifyPasswordRequest
 *             (the current password sealed to the source agent) --ok--> REGISTERED
 *             (--refused--> nothing stored; password_challenge: false skips the check)
 *   REGISTERED --SsprRegister--> REGISTERED (answers replaced, counters reset)
 *   REGISTERED --SsprQuestionsRequest(reset)--> REGISTERED with K presented
 *             (asked again before a reset: the same K)
 *   presented --SsprReset, >= J correct--> REGISTERED, failures 0, the new
 *             password sealed to the engine (PasswordSyncRequest, include_source)
 *   presented --SsprReset, < J correct--> failures + 1; at lockout.threshold:
 *             LOCKED until now + lockout.duration (lockouts + 1, failures 0);
 *             at lockout.permanent_after lockouts: LOCKED for good
 *   LOCKED --time passes--> REGISTERED;  LOCKED for good --SsprRegister--> REGISTERED
 *   Every SsprReset consumes the presented questions (a new set next time).
 *
 * The reply to SsprReset waits for the engine's PasswordSyncReply (pending
 * list below); the engine sets the password on every connector of the
 * account's metaverse object whose agent has password_sync.enabled,
 * the source connector included.
 */
#include "workflow.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_keys.h"
#include "loom_keyset.h"
#include "loom_log.h"
#include "pcns.pb-c.h"
#include "sspr.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEPPER_LEN 32
#define CHECK_LEN LOOM_KEYSET_SSPR_CHECK_LEN
#define PEPPER_CTX LOOM_KEYSET_CTX_SSPR_PEPPER
#define CHECK_CTX LOOM_KEYSET_CTX_SSPR_CHECK
#define PREHASH_LEN 32
#define HASH_LEN 32

typedef struct sspr_lockout {
	long long threshold;       /* wrong resets that lock the account */
	long long duration_ms;     /* how long a lockout lasts */
	long long permanent_after; /* lockouts after which the account stays locked */
} sspr_lockout_t;

typedef struct sspr_cfg {
	char *agent;               /* the source agent: accounts are its account names */
	loom_cfg_strlist_t questions; /* the M questions */
	long long register_n;      /* answers required at registration (N) */
	long long present_k;       /* questions presented at reset (K) */
	long long require_j;       /* correct answers required (J) */
	sspr_lockout_t lockout;    /* the lockout gate */
	bool password_challenge;   /* registration needs the current password checked */
	long long opslimit;        /* Argon2id passes */
	long long memlimit;        /* Argon2id memory, bytes */
} sspr_cfg_t;

typedef struct sspr_pending {
	bool verify;               /* a registration waiting for the agent's VerifyPasswordReply */
	uint8_t msg_id[LOOM_MSG_ID_LEN]; /* verify: our VerifyPasswordRequest's msg_id */
	uint8_t *record;           /* verify: the packed SsprRecord to store when the password is right */
	size_t record_len;         /* its length */
	uint8_t change_id[16];     /* the PasswordSyncRequest's */
	int64_t since_ms;          /* monotonic: when it was sent */
	char *to;                  /* whom to answer */
	uint8_t corr[LOOM_MSG_ID_LEN]; /* their msg_id */
	char *account;             /* for the log */
} sspr_pending_t;

struct wf_sspr {
	sspr_cfg_t cfg;            /* sspr.yaml */
	int cf;                    /* family "sspr" */
	sspr_pending_t *pending;   /* resets waiting for the engine */
	size_t npending;           /* how many */
};

static const loom_cfg_key_t lockout_keys[] = {
	{ "threshold", LOOM_CFG_INT, offsetof(sspr_lockout_t, threshold), 0, "3", 1, 100, NULL, NULL,
	  "wrong resets that lock the account" },
	{ "duration", LOOM_CFG_DURATION, offsetof(sspr_lockout_t, duration_ms), 0, "15m", 1, 366LL * 86400000, NULL,
	  NULL, "how long a lockout lasts" },
	{ "permanent_after", LOOM_CFG_INT, offsetof(sspr_lockout_t, permanent_after), 0, "3", 1, 100, NULL, NULL,
	  "lockouts after which the account stays locked until registered again" },
	{ NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL, NULL },
};
static const loom_cfg_table_t lockout_table = { "lockout", sizeof(sspr_lockout_t), 0, lockout_keys };

static const loom_cfg_key_t sspr_keys[] = {
	{ "agent", LOOM_CFG_STRING, offsetof(sspr_cfg_t, agent), LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, NULL, 0, 0, NULL,
	  NULL, "the source agent whose account names users give" },
	{ "questions", LOOM_CFG_STRLIST, offsetof(sspr_cfg_t, questions), LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, NULL, 0,
	  0, NULL, NULL, "the questions offered at registration (M)" },
	{ "register", LOOM_CFG_INT, offsetof(sspr_cfg_t, register_n), LOOM_CFG_REQUIRED, NULL, 1, 64, NULL, NULL,
	  "answers required at registration (N)" },
	{ "present", LOOM_CFG_INT, offsetof(sspr_cfg_t, present_k), LOOM_CFG_REQUIRED, NULL, 1, 64, NULL, NULL,
	  "questions presented at reset (K)" },
	{ "require", LOOM_CFG_INT, offsetof(sspr_cfg_t, require_j), LOOM_CFG_REQUIRED, NULL, 1, 64, NULL, NULL,
	  "correct answers required (J)" },
	{ "lockout", LOOM_CFG_SECTION, offsetof(sspr_cfg_t, lockout), 0, NULL, 0, 0, NULL, &lockout_table,
	  "the lockout gate" },
	{ "password_challenge", LOOM_CFG_BOOL, offsetof(sspr_cfg_t, password_challenge), 0, "true", 0, 0, NULL, NULL,
	  "registration checks the current password with the source agent (VerifyPasswordRequest)" },
	{ "argon2_opslimit", LOOM_CFG_INT, offsetof(sspr_cfg_t, opslimit), 0, "2", 1, 64, NULL, NULL,
	  "Argon2id passes" },
	{ "argon2_memlimit", LOOM_CFG_SIZE, offsetof(sspr_cfg_t, memlimit), 0, "64MiB", 8192, 4LL << 30, NULL, NULL,
	  "Argon2id memory" },
	{ NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL, NULL },
};
static const loom_cfg_table_t sspr_table = { "sspr", sizeof(sspr_cfg_t), 0, sspr_keys };

/* The pepper of key set version (0: the current one), in guarded memory
 * (sodium_free wipes it), and its check value. STATE_DIR/keyset is read at
 * each use and dropped at once: `loomctl keys create|rotate|import` take
 * effect without a restart, and no key stays in loom-workflow's memory.
 * NULL with *error_r (and *code_r) when there is no key set or it lacks
 * that version. */
static uint8_t *pepper_get(wf_t *w, unsigned version, unsigned *ret_version, uint8_t check[CHECK_LEN],
    const char **code_r, const char **error_r)
{
	static char *msg;
	char *path = loom_sprintf("%s/keyset", loom_daemon_config(w->daemon)->state_dir), *err = NULL;
	loom_keyset_t *ks = NULL;
	uint8_t *pepper = NULL;
	free(msg);
	msg = NULL;
	if (loom_keyset_load(path, &ks, &err) < 0) {
		msg = loom_sprintf("no key set to derive the answers' pepper from (make one with `loomctl keys create`): %s",
		    err);
		free(err);
		*code_r = "no-keyset";
		goto out;
	}
	pepper = sodium_malloc(PEPPER_LEN);
	if (pepper == NULL)
		abort();
	if (loom_keyset_derive(ks, version, PEPPER_CTX, pepper, PEPPER_LEN, ret_version) < 0 ||
	    loom_keyset_derive(ks, version, CHECK_CTX, check, CHECK_LEN, NULL) < 0) {
		msg = loom_sprintf("the answers were registered with key set version %u, which the key set '%s' does not "
		    "hold (restored without this installation's key set?): the account must register again", version, path);
		*code_r = "registration-unusable";
		sodium_free(pepper);
		pepper = NULL;
	}
out:
	loom_keyset_destroy(&ks);
	free(path);
	*error_r = msg;
	return pepper;
}

/* The pepper r's answers were hashed with, or NULL with *code_r
 * "registration-unusable" (or "no-keyset") when this key set cannot give it
 * back: the answers can then never match, and a try must not count as a
 * wrong answer. */
static uint8_t *pepper_for(wf_t *w, const Loom__SsprRecord *r, const char **code_r, const char **error_r)
{
	static const char *nover = "the answers were registered without a key set version (before the pepper moved into "
	    "the key set): the account must register again";
	if (r->pepper_version == 0) {
		*code_r = "registration-unusable";
		*error_r = nover;
		return NULL;
	}
	uint8_t check[CHECK_LEN];
	uint8_t *pepper = pepper_get(w, r->pepper_version, NULL, check, code_r, error_r);
	if (pepper == NULL)
		return NULL;
	if (r->pepper_check.len != CHECK_LEN || sodium_memcmp(check, r->pepper_check.data, CHECK_LEN) != 0) {
		sodium_free(pepper);
		*code_r = "registration-unusable";
		*error_r = "the answers were registered under another key set (restored without this installation's key "
		    "set?): the account must register again";
		return NULL;
	}
	return pepper;
}

/* Logs how many registrations the key set can still check: after a restore
 * without the key set (or with another one) every registration is
 * unusable, and each account must register again. */
static void census(wf_t *w)
{
	struct wf_sspr *s = w->sspr;
	size_t n = 0, unusable = 0;
	char *why = NULL;              /* a copy: the next pepper_for frees its message */
	loom_iter_t *it = loom_iter_new(w->store, s->cf);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t vl;
		const void *v = loom_iter_value(it, &vl);
		Loom__SsprRecord *r = loom__sspr_record__unpack(NULL, vl, v);
		if (r == NULL)
			continue;
		n++;
		const char *code = NULL, *err = NULL;
		uint8_t *pepper = pepper_for(w, r, &code, &err);
		if (pepper == NULL) {
			unusable++;
			free(why);
			why = loom_strdup(err);
		} else
			sodium_free(pepper);
		loom__sspr_record__free_unpacked(r, NULL);
	}
	loom_iter_destroy(&it);
	if (unusable > 0)
		loom_warning("sspr registrations=%zu unusable=%zu: %s", n, unusable, why);
	else
		loom_info("sspr registrations=%zu unusable=0", n);
	free(why);
}

/* Loads and checks path into cfg. 0, or -1 with *ret_error (cfg released). */
static int cfg_load(const char *path, sspr_cfg_t *cfg, char **ret_error)
{
	loom_cfg_diags_t diags = { 0 };
	memset(cfg, 0, sizeof *cfg);
	if (loom_config_load_file(path, &sspr_table, cfg, &diags) < 0) {
		*ret_error = loom_cfg_diags_join(&diags, "; ");
		loom_cfg_diags_release(&diags);
		loom_config_release(&sspr_table, cfg);
		return -1;
	}
	size_t m = cfg->questions.n;
	if ((size_t)cfg->register_n > m || cfg->present_k > cfg->register_n || cfg->require_j > cfg->present_k) {
		*ret_error = loom_sprintf("%s: expected require (%lld) <= present (%lld) <= register (%lld) <= the %zu questions",
		    path, cfg->require_j, cfg->present_k, cfg->register_n, m);
		loom_config_release(&sspr_table, cfg);
		return -1;
	}
	return 0;
}

int wf_sspr_check(const char *sspr_path, char **ret_error)
{
	struct stat st;
	if (stat(sspr_path, &st) < 0)
		return 0;
	sspr_cfg_t cfg;
	if (cfg_load(sspr_path, &cfg, ret_error) < 0)
		return -1;
	loom_config_release(&sspr_table, &cfg);
	return 0;
}

int wf_sspr_open(wf_t *w, const char *sspr_path, char **ret_error)
{
	char *path = loom_strdup(sspr_path);
	struct stat st;
	if (stat(path, &st) < 0) {
		free(path);
		return 0; /* not configured */
	}
	struct wf_sspr *s = loom_calloc(1, sizeof *s);
	if (cfg_load(path, &s->cfg, ret_error) < 0) {
		free(s);
		free(path);
		return -1;
	}
	size_t m = s->cfg.questions.n;
	if (sodium_init() < 0)
		abort();
	s->cf = loom_store_cf(w->store, "sspr");
	w->sspr = s;
	loom_info("sspr ready agent=%s questions=%zu register=%lld present=%lld require=%lld threshold=%lld",
	    s->cfg.agent, m, s->cfg.register_n, s->cfg.present_k, s->cfg.require_j, s->cfg.lockout.threshold);
	census(w);
	free(path);
	return 0;
}

void wf_sspr_close(wf_t *w)
{
	struct wf_sspr *s = w->sspr;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->npending; i++) {
		free(s->pending[i].to);
		free(s->pending[i].account);
		free(s->pending[i].record);
	}
	free(s->pending);
	loom_config_release(&sspr_table, &s->cfg);
	free(s);
	w->sspr = NULL;
}

/* ---- answers ------------------------------------------------------------------------------ */

size_t wf_sspr_normalize(const char *answer, char *out)
{
	size_t n = 0;
	bool space = false;
	for (const char *p = answer; *p; p++) {
		char c = *p;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = n > 0;
			continue;
		}
		if (space)
			out[n++] = ' ';
		space = false;
		out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return n;
}

/* The pepper-keyed BLAKE2b of the question's index (4 bytes, big-endian)
 * and the normalised answer. false when the answer is empty. */
static bool prehash(const uint8_t *pepper, uint32_t q, const char *answer, uint8_t out[PREHASH_LEN])
{
	size_t len = strlen(answer);
	char *norm = sodium_malloc(len + 1);
	if (norm == NULL)
		abort();
	size_t n = wf_sspr_normalize(answer, norm);
	bool ok = n > 0;
	crypto_generichash_state st;
	crypto_generichash_init(&st, pepper, PEPPER_LEN, PREHASH_LEN);
	uint8_t qb[4] = { (uint8_t)(q >> 24), (uint8_t)(q >> 16), (uint8_t)(q >> 8), (uint8_t)q };
	crypto_generichash_update(&st, qb, sizeof qb);
	crypto_generichash_update(&st, (const uint8_t *)norm, n);
	crypto_generichash_final(&st, out, PREHASH_LEN);
	sodium_memzero(&st, sizeof st);
	sodium_free(norm);
	return ok;
}

static int argon(const struct wf_sspr *s, const uint8_t pre[PREHASH_LEN], const uint8_t *salt, uint8_t out[HASH_LEN])
{
	return crypto_pwhash(out, HASH_LEN, (const char *)pre, PREHASH_LEN, salt, (unsigned long long)s->cfg.opslimit,
	    (size_t)s->cfg.memlimit, crypto_pwhash_ALG_ARGON2ID13);
}

/* ---- the record ---------------------------------------------------------------------------- */

static Loom__SsprRecord *rec_get(wf_t *w, const char *account, const char **error_r)
{
	void *v = NULL;
	size_t len;
	int rc = loom_store_get(w->store, w->sspr->cf, account, strlen(account), &v, &len, error_r);
	if (rc <= 0)
		return NULL;
	Loom__SsprRecord *r = loom__sspr_record__unpack(NULL, len, v);
	free(v);
	if (r == NULL)
		*error_r = "a stored SSPR record does not decode";
	return r;
}

static int rec_put(wf_t *w, const Loom__SsprRecord *r, const char **error_r)
{
	size_t len = loom__sspr_record__get_packed_size(r);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__sspr_record__pack(r, buf);
	loom_batch_t *b = loom_batch_new(w->store);
	loom_batch_put(b, w->sspr->cf, r->account, strlen(r->account), buf, len);
	int rc = loom_store_write_ex(w->store, b, true, error_r);
	loom_batch_destroy(&b);
	free(buf);
	return rc;
}

/* ---- replies ------------------------------------------------------------------------------- */

static void reply(wf_t *w, Loom__Envelope *env, bool ok, const char *code, const char *message,
    const Loom__SsprRecord *r)
{
	Loom__SsprReply rep = LOOM__SSPR_REPLY__INIT;
	rep.ok = ok;
	rep.code = (char *)(code ? code : "");
	rep.message = (char *)(message ? message : "");
	if (r && !ok) {
		rep.locked_until = r->permanent ? -1 : r->locked_until > loom_now_us() ? r->locked_until : 0;
		long long left = w->sspr->cfg.lockout.threshold - (long long)r->failures;
		rep.attempts_left = left > 0 && !r->permanent && r->locked_until <= loom_now_us() ? (uint32_t)left : 0;
	}
	const char *err;
	if (loom_bus_reply(loom_daemon_bus(w->daemon), env, &rep.base, &err) < 0)
		loom_warning("cannot answer sspr to=%s: %s", env->from, err);
}

/* The locked state of r as a refusal, or NULL when r may try. */
static const char *locked(const Loom__SsprRecord *r)
{
	if (r->permanent)
		return "locked-permanently";
	if (r->locked_until > loom_now_us())
		return "locked";
	return NULL;
}

static Loom__SsprSecrets *open_secrets(wf_t *w, const Loom__Sealed *sealed, const char **error_r)
{
	const loom_keypair_t *kp = loom_daemon_keypair(w->daemon);
	if (kp == NULL) {
		*error_r = "loom-workflow has no key pair to open secrets with (loomctl keys gen workflow)";
		return NULL;
	}
	uint8_t *plain = NULL;
	size_t plen = 0;
	if (sealed == NULL || loom_unseal(kp, sealed, &plain, &plen) < 0) {
		*error_r = "cannot-open: the secrets do not open with loom-workflow's key";
		return NULL;
	}
	Loom__SsprSecrets *sec = loom__sspr_secrets__unpack(NULL, plen, plain);
	loom_unsealed_free(&plain, plen);
	if (sec == NULL)
		*error_r = "the sealed secrets do not decode";
	return sec;
}

/* Wipes every secret string of sec, then frees it. */
static void secrets_free(Loom__SsprSecrets *sec)
{
	if (sec == NULL)
		return;
	sodium_memzero(sec->current_password, strlen(sec->current_password));
	sodium_memzero(sec->new_password, strlen(sec->new_password));
	for (size_t i = 0; i < sec->n_answers; i++)
		sodium_memzero(sec->answers[i]->answer, strlen(sec->answers[i]->answer));
	loom__sspr_secrets__free_unpacked(sec, NULL);
}

/* ---- handlers ------------------------------------------------------------------------------ */

static void on_questions(wf_t *w, Loom__Envelope *env, const Loom__SsprQuestionsRequest *rq)
{
	struct wf_sspr *s = w->sspr;
	Loom__SsprQuestionsReply rep = LOOM__SSPR_QUESTIONS_REPLY__INIT;
	Loom__SsprQuestion *qs = loom_calloc(s->cfg.questions.n, sizeof *qs);
	Loom__SsprQuestion **qp = loom_calloc(s->cfg.questions.n, sizeof *qp);
	const char *err = NULL;
	Loom__SsprRecord *r = NULL;
	rep.code = "";
	rep.message = "";
	if (!rq->reset) {
		for (size_t i = 0; i < s->cfg.questions.n; i++) {
			loom__sspr_question__init(&qs[i]);
			qs[i].index = (uint32_t)i;
			qs[i].text = s->cfg.questions.v[i];
			qp[i] = &qs[i];
		}
		rep.n_questions = s->cfg.questions.n;
		rep.required = (uint32_t)s->cfg.register_n;
		rep.ok = true;
		goto send;
	}
	r = rec_get(w, rq->account, &err);
	if (r == NULL) {
		rep.code = err ? "store-failed" : "not-registered";
		rep.message = (char *)(err ? err : "the account has not registered for password reset");
		goto send;
	}
	const char *lk = locked(r);
	if (lk) {
		rep.code = (char *)lk;
		rep.message = "too many wrong answers: the account is locked";
		goto send;
	}
	const char *code = NULL;
	uint8_t *pepper = pepper_for(w, r, &code, &err);
	if (pepper == NULL) {
		rep.code = (char *)code;
		rep.message = (char *)err;
		goto send;
	}
	sodium_free(pepper);
	if (r->n_presented > 0) {
		/* the questions drawn last time, until a reset uses them: asking
		 * again must not let a caller pick the questions it knows */
		size_t np = r->n_presented < s->cfg.questions.n ? r->n_presented : s->cfg.questions.n;
		for (size_t i = 0; i < np; i++) {
			uint32_t q = r->presented[i];
			loom__sspr_question__init(&qs[i]);
			qs[i].index = q;
			qs[i].text = q < s->cfg.questions.n ? s->cfg.questions.v[q] : "";
			qp[i] = &qs[i];
		}
		rep.n_questions = np;
		rep.required = (uint32_t)s->cfg.require_j;
		rep.ok = true;
		goto send;
	}
	/* K of the registered questions, chosen at random (partial Fisher-Yates) */
	size_t n = r->n_hashes;
	uint32_t *idx = loom_calloc(n, sizeof *idx);
	for (size_t i = 0; i < n; i++)
		idx[i] = r->hashes[i]->question;
	size_t k = (size_t)s->cfg.present_k < n ? (size_t)s->cfg.present_k : n;
	for (size_t i = 0; i < k; i++) {
		size_t j = i + randombytes_uniform((uint32_t)(n - i));
		uint32_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
	free(r->presented);
	r->presented = loom_calloc(k, sizeof *r->presented);
	r->n_presented = k;
	for (size_t i = 0; i < k; i++) {
		r->presented[i] = idx[i];
		loom__sspr_question__init(&qs[i]);
		qs[i].index = idx[i];
		qs[i].text = idx[i] < s->cfg.questions.n ? s->cfg.questions.v[idx[i]] : "";
		qp[i] = &qs[i];
	}
	free(idx);
	if (rec_put(w, r, &err) < 0) {
		rep.code = "store-failed";
		rep.message = (char *)err;
		goto send;
	}
	rep.n_questions = k;
	rep.required = (uint32_t)s->cfg.require_j;
	rep.ok = true;
send:
	rep.questions = qp;
	if (loom_bus_reply(loom_daemon_bus(w->daemon), env, &rep.base, &err) < 0)
		loom_warning("cannot answer sspr to=%s: %s", env->from, err);
	if (r)
		loom__sspr_record__free_unpacked(r, NULL);
	free(qs);
	free(qp);
}

static void pending_remove(struct wf_sspr *s, size_t i);

/* An answer this late finds nobody waiting (loomctl gave up long before):
 * the entry is dropped when the next one is added. */
#define PENDING_MAX_MS (5 * 60 * 1000)

static sspr_pending_t *pending_add(struct wf_sspr *s, const Loom__Envelope *env, const char *account)
{
	int64_t now = loom_mono_ms();
	for (size_t i = s->npending; i-- > 0;)
		if (now - s->pending[i].since_ms > PENDING_MAX_MS) {
			loom_warning("sspr %s account=%s: no answer in %d s, dropped", s->pending[i].verify ?
			    "registration" : "reset", loom_log_kv_quote(s->pending[i].account), PENDING_MAX_MS / 1000);
			pending_remove(s, i);
		}
	s->pending = loom_realloc(s->pending, (s->npending + 1) * sizeof *s->pending);
	sspr_pending_t *p = &s->pending[s->npending++];
	memset(p, 0, sizeof *p);
	p->to = loom_strdup(env->from);
	if (env->msg_id.len == LOOM_MSG_ID_LEN)
		memcpy(p->corr, env->msg_id.data, LOOM_MSG_ID_LEN);
	p->account = loom_strdup(account);
	p->since_ms = now;
	return p;
}

static void pending_remove(struct wf_sspr *s, size_t i)
{
	free(s->pending[i].to);
	free(s->pending[i].account);
	free(s->pending[i].record);
	s->pending[i] = s->pending[--s->npending];
}

/* Seals the current password to the source agent and asks it whether the
 * directory takes it; r is kept (packed) until the answer. */
static int send_verify(wf_t *w, Loom__Envelope *env, const char *account, const char *pw, const Loom__SsprRecord *r,
    const char **error_r)
{
	struct wf_sspr *s = w->sspr;
	static char *msg;
	char *service = loom_sprintf("ma.%s", s->cfg.agent);
	char *path = loom_sprintf("%s/%s.pub", loom_daemon_config(w->daemon)->bus.keys_dir, service);
	uint8_t pub[LOOM_KEY_LEN];
	char *kerr = NULL;
	int rc = loom_keys_read_public(path, pub, &kerr);
	free(path);
	if (rc < 0) {
		free(msg);
		msg = loom_sprintf("cannot seal the password to agent '%s': %s", s->cfg.agent, kerr);
		free(kerr);
		free(service);
		*error_r = msg;
		return -1;
	}
	Loom__Sealed sealed;
	loom_seal(pub, service, pw, strlen(pw), &sealed);
	Loom__VerifyPasswordRequest rq = LOOM__VERIFY_PASSWORD_REQUEST__INIT;
	rq.agent = s->cfg.agent;
	rq.account = (char *)account;
	rq.password = &sealed;
	uint8_t id[LOOM_MSG_ID_LEN];
	rc = loom_bus_send(loom_daemon_bus(w->daemon), service, &rq.base, NULL, id, error_r);
	loom_sealed_release(&sealed);
	free(service);
	if (rc < 0)
		return -1;
	sspr_pending_t *p = pending_add(s, env, account);
	p->verify = true;
	memcpy(p->msg_id, id, sizeof id);
	p->record_len = loom__sspr_record__get_packed_size(r);
	p->record = loom_malloc(p->record_len ? p->record_len : 1);
	loom__sspr_record__pack(r, p->record);
	return 0;
}

static void on_verify_reply(wf_t *w, const Loom__Envelope *env, const Loom__VerifyPasswordReply *rep)
{
	struct wf_sspr *s = w->sspr;
	for (size_t i = 0; i < s->npending; i++) {
		sspr_pending_t *p = &s->pending[i];
		if (!p->verify || env->correlation_id.len != LOOM_MSG_ID_LEN ||
		    memcmp(env->correlation_id.data, p->msg_id, LOOM_MSG_ID_LEN) != 0)
			continue;
		Loom__SsprReply r = LOOM__SSPR_REPLY__INIT;
		r.ok = rep->ok;
		r.code = rep->ok ? "" : rep->code;
		r.message = rep->ok ? "registered" : rep->message;
		const char *err = NULL;
		if (rep->ok) {
			loom_batch_t *b = loom_batch_new(w->store);
			loom_batch_put(b, s->cf, p->account, strlen(p->account), p->record, p->record_len);
			if (loom_store_write_ex(w->store, b, true, &err) < 0) {
				r.ok = false;
				r.code = "store-failed";
				r.message = (char *)err;
			}
			loom_batch_destroy(&b);
		}
		if (r.ok)
			loom_info("sspr registered account=%s challenge=passed", loom_log_kv_quote(p->account));
		else
			loom_warning("sspr registration refused account=%s code=%s", loom_log_kv_quote(p->account), r.code);
		if (loom_bus_send(loom_daemon_bus(w->daemon), p->to, &r.base, p->corr, NULL, &err) < 0)
			loom_warning("cannot answer sspr to=%s: %s", p->to, err);
		pending_remove(s, i);
		return;
	}
}

static void on_register(wf_t *w, Loom__Envelope *env, const Loom__SsprRegister *rq)
{
	struct wf_sspr *s = w->sspr;
	const char *err = NULL;
	Loom__SsprSecrets *sec = open_secrets(w, rq->secrets, &err);
	Loom__SsprRecord r = LOOM__SSPR_RECORD__INIT;
	Loom__SsprHash *hs = NULL, **hp = NULL;
	if (sec == NULL) {
		reply(w, env, false, "cannot-open", err, NULL);
		return;
	}
	if (rq->account[0] == '\0') {
		reply(w, env, false, "bad-request", "no account given", NULL);
		goto out;
	}
	if (s->cfg.password_challenge && sec->current_password[0] == '\0') {
		reply(w, env, false, "bad-password", "the current password is needed to register", NULL);
		goto out;
	}
	const char *code = NULL;
	uint8_t check[CHECK_LEN];
	unsigned pv = 0;
	uint8_t *pepper = pepper_get(w, 0, &pv, check, &code, &err);
	if (pepper == NULL) {
		loom_warning("sspr registration refused account=%s: %s", loom_log_kv_quote(rq->account), err);
		reply(w, env, false, code, err, NULL);
		goto out;
	}
	size_t m = s->cfg.questions.n, na = 0;
	bool *seen = loom_calloc(m, sizeof *seen);
	hs = loom_calloc(sec->n_answers ? sec->n_answers : 1, sizeof *hs);
	hp = loom_calloc(sec->n_answers ? sec->n_answers : 1, sizeof *hp);
	const char *bad = NULL;
	for (size_t i = 0; i < sec->n_answers && bad == NULL; i++) {
		const Loom__SsprAnswer *a = sec->answers[i];
		if (a->question >= m || seen[a->question]) {
			bad = "an answer names an unknown question, or one answered twice";
			break;
		}
		seen[a->question] = true;
		uint8_t pre[PREHASH_LEN];
		if (!prehash(pepper, a->question, a->answer, pre))
			continue; /* an empty answer: the question is skipped */
		loom__sspr_hash__init(&hs[na]);
		hs[na].question = a->question;
		hs[na].salt.len = crypto_pwhash_SALTBYTES;
		hs[na].salt.data = loom_malloc(crypto_pwhash_SALTBYTES);
		randombytes_buf(hs[na].salt.data, crypto_pwhash_SALTBYTES);
		hs[na].hash.len = HASH_LEN;
		hs[na].hash.data = loom_malloc(HASH_LEN);
		int arc = argon(s, pre, hs[na].salt.data, hs[na].hash.data);
		sodium_memzero(pre, sizeof pre);
		hp[na] = &hs[na];
		na++;
		if (arc != 0)
			bad = "out of memory hashing an answer";
	}
	free(seen);
	sodium_free(pepper);
	if (bad) {
		reply(w, env, false, "bad-request", bad, NULL);
		goto out_hashes;
	}
	if ((long long)na < s->cfg.register_n) {
		char *msg = loom_sprintf("%zu answers given, %lld required", na, s->cfg.register_n);
		reply(w, env, false, "too-few-answers", msg, NULL);
		free(msg);
		goto out_hashes;
	}
	r.account = rq->account;
	r.hashes = hp;
	r.n_hashes = na;
	r.registered_at = loom_now_us();
	r.pepper_version = pv;
	r.pepper_check.data = check;
	r.pepper_check.len = CHECK_LEN;
	if (s->cfg.password_challenge) {
		/* the password authentication challenge: the record is stored when
		 * the source agent says the directory takes the current password */
		if (send_verify(w, env, rq->account, sec->current_password, &r, &err) < 0) {
			loom_warning("sspr registration failed account=%s: %s", loom_log_kv_quote(rq->account), err);
			reply(w, env, false, "agent-unavailable", err, NULL);
		}
		goto out_hashes;
	}
	if (rec_put(w, &r, &err) < 0) {
		reply(w, env, false, "store-failed", err, NULL);
		goto out_hashes;
	}
	loom_info("sspr registered account=%s answers=%zu", loom_log_kv_quote(rq->account), na);
	reply(w, env, true, "", "registered", NULL);
out_hashes:
	for (size_t i = 0; i < na; i++) {
		free(hs[i].salt.data);
		free(hs[i].hash.data);
	}
out:
	free(hs);
	free(hp);
	secrets_free(sec);
}

/* Seals the new password to the engine and asks it to set it everywhere. */
static int send_to_engine(wf_t *w, Loom__Envelope *env, const char *account, const char *pw, const char **error_r)
{
	struct wf_sspr *s = w->sspr;
	char *path = loom_sprintf("%s/engine.pub", loom_daemon_config(w->daemon)->bus.keys_dir);
	uint8_t pub[LOOM_KEY_LEN];
	char *kerr = NULL;
	int rc = loom_keys_read_public(path, pub, &kerr);
	free(path);
	if (rc < 0) {
		static char *msg;
		free(msg);
		msg = loom_sprintf("cannot seal the password to the engine: %s", kerr);
		free(kerr);
		*error_r = msg;
		return -1;
	}
	Loom__Sealed sealed;
	loom_seal(pub, "engine", pw, strlen(pw), &sealed);
	Loom__PasswordSyncRequest rq = LOOM__PASSWORD_SYNC_REQUEST__INIT;
	uint8_t id[16];
	randombytes_buf(id, sizeof id);
	rq.change_id.data = id;
	rq.change_id.len = sizeof id;
	rq.agent = s->cfg.agent;
	rq.account = (char *)account;
	rq.password = &sealed;
	rq.changed_at = loom_now_us();
	rq.origin = "sspr";
	rq.include_source = true;
	rc = loom_bus_send(loom_daemon_bus(w->daemon), "engine", &rq.base, NULL, NULL, error_r);
	loom_sealed_release(&sealed);
	if (rc < 0)
		return -1;
	sspr_pending_t *p = pending_add(s, env, account);
	memcpy(p->change_id, id, sizeof id);
	return 0;
}

static void on_reset(wf_t *w, Loom__Envelope *env, const Loom__SsprReset *rq)
{
	struct wf_sspr *s = w->sspr;
	const char *err = NULL;
	Loom__SsprSecrets *sec = open_secrets(w, rq->secrets, &err);
	Loom__SsprRecord *r = NULL;
	if (sec == NULL) {
		reply(w, env, false, "cannot-open", err, NULL);
		return;
	}
	r = rec_get(w, rq->account, &err);
	if (r == NULL) {
		reply(w, env, false, err ? "store-failed" : "not-registered",
		    err ? err : "the account has not registered for password reset", NULL);
		goto out;
	}
	const char *lk = locked(r);
	if (lk) {
		loom_warning("sspr reset refused account=%s: %s", loom_log_kv_quote(rq->account), lk);
		reply(w, env, false, lk, "too many wrong answers: the account is locked", r);
		goto out;
	}
	if (r->n_presented == 0) {
		reply(w, env, false, "no-questions", "ask for the questions first (SsprQuestionsRequest reset)", r);
		goto out;
	}
	if (sec->new_password[0] == '\0') {
		reply(w, env, false, "bad-request", "no new password given", r);
		goto out;
	}
	const char *ucode = NULL;
	uint8_t *pepper = pepper_for(w, r, &ucode, &err);
	if (pepper == NULL) {
		/* not a wrong answer: no answer could be right */
		loom_warning("sspr reset refused account=%s code=%s: %s", loom_log_kv_quote(rq->account), ucode, err);
		reply(w, env, false, ucode, err, NULL);
		goto out;
	}
	/* the QA gate: each presented question answered right counts once */
	size_t correct = 0;
	for (size_t i = 0; i < r->n_presented; i++) {
		uint32_t q = r->presented[i];
		const Loom__SsprHash *h = NULL;
		for (size_t j = 0; j < r->n_hashes; j++)
			if (r->hashes[j]->question == q)
				h = r->hashes[j];
		const Loom__SsprAnswer *a = NULL;
		for (size_t j = 0; j < sec->n_answers; j++)
			if (sec->answers[j]->question == q)
				a = sec->answers[j];
		if (h == NULL || a == NULL || h->salt.len != crypto_pwhash_SALTBYTES || h->hash.len != HASH_LEN)
			continue;
		uint8_t pre[PREHASH_LEN], got[HASH_LEN];
		if (prehash(pepper, q, a->answer, pre) && argon(s, pre, h->salt.data, got) == 0 &&
		    sodium_memcmp(got, h->hash.data, HASH_LEN) == 0)
			correct++;
		sodium_memzero(pre, sizeof pre);
	}
	sodium_free(pepper);
	free(r->presented);
	r->presented = NULL;
	r->n_presented = 0;
	if ((long long)correct < s->cfg.require_j) {
		/* the lockout gate */
		r->failures++;
		if ((long long)r->failures >= s->cfg.lockout.threshold) {
			r->failures = 0;
			r->lockouts++;
			r->locked_until = loom_now_us() + s->cfg.lockout.duration_ms * 1000;
			if ((long long)r->lockouts >= s->cfg.lockout.permanent_after)
				r->permanent = true;
		}
		if (rec_put(w, r, &err) < 0) {
			reply(w, env, false, "store-failed", err, NULL);
			goto out;
		}
		loom_warning("sspr reset refused account=%s correct=%zu required=%lld failures=%u lockouts=%u%s",
		    loom_log_kv_quote(rq->account), correct, s->cfg.require_j, r->failures, r->lockouts,
		    r->permanent ? " locked=permanent" : r->locked_until > loom_now_us() ? " locked=yes" : "");
		const char *code = r->permanent ? "locked-permanently" : r->locked_until > loom_now_us() ? "locked"
		    : "wrong-answers";
		reply(w, env, false, code, "the answers are not right", r);
		goto out;
	}
	r->failures = 0;
	if (rec_put(w, r, &err) < 0) {
		reply(w, env, false, "store-failed", err, NULL);
		goto out;
	}
	if (send_to_engine(w, env, rq->account, sec->new_password, &err) < 0) {
		loom_warning("sspr reset failed account=%s: %s", loom_log_kv_quote(rq->account), err);
		reply(w, env, false, "engine-unavailable", err, NULL);
		goto out;
	}
	loom_info("sspr reset accepted account=%s correct=%zu: sent to the engine", loom_log_kv_quote(rq->account),
	    correct);
out:
	if (r)
		loom__sspr_record__free_unpacked(r, NULL);
	secrets_free(sec);
}

static void on_engine_reply(wf_t *w, const Loom__PasswordSyncReply *rep)
{
	struct wf_sspr *s = w->sspr;
	for (size_t i = 0; i < s->npending; i++) {
		sspr_pending_t *p = &s->pending[i];
		if (p->verify || rep->change_id.len != sizeof p->change_id ||
		    memcmp(rep->change_id.data, p->change_id, 16) != 0)
			continue;
		bool ok = rep->status == LOOM__PASSWORD_SYNC_REPLY__STATUS__ACCEPTED;
		Loom__SsprReply r = LOOM__SSPR_REPLY__INIT;
		r.ok = ok && rep->targets > 0;
		r.code = r.ok ? "" : ok ? "no-targets" : rep->status == LOOM__PASSWORD_SYNC_REPLY__STATUS__UNMATCHED
		    ? "unmatched" : "refused";
		r.message = rep->message;
		r.targets = rep->targets;
		loom_info("sspr reset account=%s engine=%s targets=%u", loom_log_kv_quote(p->account),
		    r.ok ? "accepted" : r.code, rep->targets);
		const char *err;
		if (loom_bus_send(loom_daemon_bus(w->daemon), p->to, &r.base, p->corr, NULL, &err) < 0)
			loom_warning("cannot answer sspr to=%s: %s", p->to, err);
		pending_remove(s, i);
		return;
	}
}

bool wf_sspr_handle(wf_t *w, Loom__Envelope *env)
{
	static const ProtobufCMessageDescriptor *const ds[] = { &loom__sspr_questions_request__descriptor,
		&loom__sspr_register__descriptor, &loom__sspr_reset__descriptor, &loom__password_sync_reply__descriptor,
		&loom__verify_password_reply__descriptor };
	size_t which = sizeof ds / sizeof ds[0];
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		if (loom_envelope_is(env, ds[i]))
			which = i;
	if (which == sizeof ds / sizeof ds[0])
		return false;
	if (w->sspr == NULL) {
		if (which < 3)
			wf_reply_error(w, env, LOOM__ERROR__CODE__UNKNOWN_TYPE,
			    "self-service password reset is not configured (sspr.yaml beside the deployment file)");
		return true;
	}
	const char *err;
	ProtobufCMessage *m = loom_envelope_body(env, ds[which], &err);
	if (m == NULL) {
		if (which < 3)
			wf_reply_error(w, env, LOOM__ERROR__CODE__MALFORMED, err);
		return true;
	}
	switch (which) {
	case 0: on_questions(w, env, (Loom__SsprQuestionsRequest *)m); break;
	case 1: on_register(w, env, (Loom__SsprRegister *)m); break;
	case 2: on_reset(w, env, (Loom__SsprReset *)m); break;
	case 3: on_engine_reply(w, (Loom__PasswordSyncReply *)m); break;
	default: on_verify_reply(w, env, (Loom__VerifyPasswordReply *)m); break;
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return true;
}
