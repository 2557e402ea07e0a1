/* test_deploy.c - config/loom.yaml loading (lib/loom_deploy.c) and the
 * log-value and JSON string escaping of lib/loom_buf.c.
 *
 * Deploy cases: a label, the YAML text (written to loom.yaml in a fresh
 * mkdtemp directory), and either the wanted struct dumped one field per line
 * or the wanted diags in order, each with its line:column and a text that
 * must match exactly or contain a fragment. In wanted text, @D@ stands for
 * the directory and @F@ for the file. After every case the struct is
 * released and must come back all zero (ASan reports what the release missed).
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_config.h"
#include "loom_deploy.h"
#include "loom_log.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers -------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *scratch_new(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = loom_sprintf("%s/loom-test-deploy.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp '%s': %s", tmpl, strerror(errno));
	return tmpl;
}

static void scratch_free(char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fail_msg("cannot remove '%s'", dir);
	free(dir);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		fail_msg("cannot create '%s': %s", path, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0)
		fail_msg("cannot write '%s': %s", path, strerror(errno));
}

/* text with @D@ replaced by dir, @P@ by its parent, @F@ by file and @LONG@ by a long name. */
static char *expand(const char *text, const char *dir, const char *file)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (const char *c = text; *c;) {
		if (strncmp(c, "@D@", 3) == 0) {
			loom_buf_adds(&b, dir);
			c += 3;
		} else if (strncmp(c, "@F@", 3) == 0) {
			loom_buf_adds(&b, file);
			c += 3;
		} else if (strncmp(c, "@P@", 3) == 0) {
			/* The parent of dir: relative paths are cleaned of "..". */
			const char *slash = strrchr(dir, '/');
			loom_buf_add(&b, dir, slash && slash != dir ? (size_t)(slash - dir) : 1);
			c += 3;
		} else if (strncmp(c, "@LONG@", 6) == 0) {
			for (int i = 0; i < 100; i++)
				loom_buf_addc(&b, 's');
			c += 6;
		} else {
			loom_buf_addc(&b, *c++);
		}
	}
	return loom_buf_steal(&b);
}

static void dump(loom_buf_t *b, const loom_deploy_t *d)
{
	loom_buf_printf(b, "path=%s\n", d->path ? d->path : "(null)");
	loom_buf_printf(b, "state_dir=%s\n", d->state_dir ? d->state_dir : "(null)");
	loom_buf_printf(b, "log.level=%s\n", loom_log_level_name((loom_log_level_t)d->log.level));
	loom_buf_printf(b, "bus.router=%s\n", d->bus.router ? d->bus.router : "(null)");
	loom_buf_printf(b, "bus.publish=%s\n", d->bus.publish ? d->bus.publish : "(null)");
	loom_buf_printf(b, "bus.subscribe=%s\n", d->bus.subscribe ? d->bus.subscribe : "(null)");
	loom_buf_printf(b, "bus.tap=%s\n", d->bus.tap ? d->bus.tap : "(null)");
	loom_buf_printf(b, "bus.heartbeat_ms=%lld\n", d->bus.heartbeat_ms);
	loom_buf_printf(b, "bus.liveness=%lld\n", d->bus.liveness);
	loom_buf_printf(b, "bus.request_timeout_ms=%lld\n", d->bus.request_timeout_ms);
	loom_buf_printf(b, "bus.max_frame=%lld\n", d->bus.max_frame);
	loom_buf_printf(b, "bus.curve=%s\n", d->bus.curve ? "true" : "false");
	loom_buf_printf(b, "bus.keys_dir=%s\n", d->bus.keys_dir ? d->bus.keys_dir : "(null)");
	/* hosts: and supervisor: only when hosts are given (the other cases'
	 * dumps stay as they were) */
	const loom_deploy_host_t *h = d->hosts.v;
	for (size_t i = 0; i < d->hosts.n; i++) {
		loom_buf_printf(b, "hosts[%zu]=%s:", i, h[i].name.text);
		for (size_t k = 0; k < h[i].processes.n; k++)
			loom_buf_printf(b, "%s%s", k ? "," : " ", h[i].processes.v[k]);
		loom_buf_adds(b, "\n");
	}
	if (d->hosts.n)
		loom_buf_printf(b, "supervisor=%lld,%lld,%lld,%lld,%lld\n", d->supervisor.restart_min_ms,
		    d->supervisor.restart_max_ms, d->supervisor.fast_crash_ms, d->supervisor.give_up,
		    d->supervisor.stop_timeout_ms);
}

/* What every field is when the file says nothing, relative to dir @D@. */
#define DUMP_ENDPOINTS(sd) \
	"bus.router=ipc://" sd "/run/bus-router\n" \
	"bus.publish=ipc://" sd "/run/bus-publish\n" \
	"bus.subscribe=ipc://" sd "/run/bus-subscribe\n" \
	"bus.tap=ipc://" sd "/run/bus-tap\n"
#define DUMP_TIMING \
	"bus.heartbeat_ms=1000\n" \
	"bus.liveness=3\n" \
	"bus.request_timeout_ms=5000\n" \
	"bus.max_frame=67108864\n"
#define DUMP_DEFAULTS \
	"path=@F@\n" \
	"state_dir=@P@/var\n" \
	"log.level=info\n" \
	DUMP_ENDPOINTS("@P@/var") \
	DUMP_TIMING \
	"bus.curve=false\n" \
	"bus.keys_dir=@D@/keys\n"

/* Fails naming the first line where got and want differ (cmocka cuts long
 * messages, so the whole dumps would not show). */
static void check_dump(const char *label, const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return;
	size_t line = 1;
	const char *g = got, *w = want;
	while (*g && *g == *w) {
		if (*g == '\n') {
			line++;
			got = g + 1;
			want = w + 1;
		}
		g++;
		w++;
	}
	int gl = (int)strcspn(got, "\n"), wl = (int)strcspn(want, "\n");
	fail_msg("%s: dump line %zu\n got: %.*s\nwant: %.*s", label, line, gl, got, wl, want);
}

/* Checks the struct is all zero after release. */
static void check_released(const char *label, const loom_deploy_t *d)
{
	const unsigned char *p = (const unsigned char *)d;
	for (size_t i = 0; i < sizeof *d; i++)
		if (p[i] != 0)
			fail_msg("%s: byte %zu not zero after release", label, i);
}

/* ---- deploy cases --------------------------------------------------------- */

typedef struct want_diag {
	unsigned line;               /* 0: none (a cross-field check) */
	unsigned column;
	bool exact;                  /* text must equal, else contain, the wanted */
	const char *text;            /* with @D@ / @F@ placeholders */
} want_diag_t;

typedef struct deploy_case {
	const char *label;           /* what the case shows */
	const char *yaml;            /* loom.yaml text; NULL: no file */
	const char *want_dump;       /* the struct when valid, else NULL */
	want_diag_t want[5];         /* the diags when invalid, ended by text NULL */
} deploy_case_t;

static const deploy_case_t deploy_cases[] = {
	{ "empty file gets all defaults", "", DUMP_DEFAULTS, { { 0 } } },
	{ "only a comment", "# nothing to say\n", DUMP_DEFAULTS, { { 0 } } },
	{ "empty sections", "log:\nbus:\n", DUMP_DEFAULTS, { { 0 } } },
	{ "everything set",
	  "state_dir: /srv/loom\n"
	  "log:\n  level: debug\n"
	  "bus:\n"
	  "  router: ipc://run/r\n"
	  "  publish: inproc://pub\n"
	  "  subscribe: ipc:///tmp/sub\n"
	  "  tap: ipc://./tap\n"
	  "  heartbeat: 250ms\n"
	  "  liveness: 5\n"
	  "  request_timeout: 1m\n"
	  "  max_frame: 1MiB\n"
	  "  curve: false\n"
	  "  keys_dir: /etc/loom/keys\n",
	  "path=@F@\n"
	  "state_dir=/srv/loom\n"
	  "log.level=debug\n"
	  "bus.router=ipc://@D@/run/r\n"
	  "bus.publish=inproc://pub\n"
	  "bus.subscribe=ipc:///tmp/sub\n"
	  "bus.tap=ipc://@D@/tap\n"
	  "bus.heartbeat_ms=250\n"
	  "bus.liveness=5\n"
	  "bus.request_timeout_ms=60000\n"
	  "bus.max_frame=1048576\n"
	  "bus.curve=false\n"
	  "bus.keys_dir=/etc/loom/keys\n", { { 0 } } },
	{ "absolute state_dir moves the default sockets", "state_dir: /var/lib/loom\n",
	  "path=@F@\n"
	  "state_dir=/var/lib/loom\n"
	  "log.level=info\n"
	  DUMP_ENDPOINTS("/var/lib/loom")
	  DUMP_TIMING
	  "bus.curve=false\n"
	  "bus.keys_dir=@D@/keys\n", { { 0 } } },
	{ "tcp with curve", "bus:\n  curve: true\n  router: tcp://127.0.0.1:5555\n  tap: tcp://*:5558\n",
	  "path=@F@\n"
	  "state_dir=@P@/var\n"
	  "log.level=info\n"
	  "bus.router=tcp://127.0.0.1:5555\n"
	  "bus.publish=ipc://@P@/var/run/bus-publish\n"
	  "bus.subscribe=ipc://@P@/var/run/bus-subscribe\n"
	  "bus.tap=tcp://*:5558\n"
	  DUMP_TIMING
	  "bus.curve=true\n"
	  "bus.keys_dir=@D@/keys\n", { { 0 } } },
	{ "typo under bus", "state_dir: ../var\n\nbus:\n  hearbeat: 2s\n  liveness: 3\n", NULL,
	  { { 4, 3, true, "@F@:4:3: unknown key 'hearbeat' in bus (did you mean 'heartbeat'?)" } } },
	{ "tcp without curve", "bus:\n  router: tcp://127.0.0.1:5555\n", NULL,
	  { { 0, 0, true, "@F@: key 'bus.router': tcp endpoint 'tcp://127.0.0.1:5555' needs 'bus.curve: true': "
	      "the bus never crosses a network unencrypted" } } },
	{ "tcp without curve, explicitly off", "bus:\n  curve: false\n  publish: tcp://10.0.0.1:1\n  subscribe: tcp://10.0.0.1:2\n", NULL,
	  { { 0, 0, false, "key 'bus.publish': tcp endpoint 'tcp://10.0.0.1:1' needs 'bus.curve: true'" },
	    { 0, 0, false, "key 'bus.subscribe': tcp endpoint 'tcp://10.0.0.1:2' needs 'bus.curve: true'" } } },
	{ "state_dir too long for a socket path", "state_dir: @LONG@\n", NULL,
	  { { 0, 0, false, "key 'bus.router': ipc path '@D@/@LONG@/run/bus-router' is" },
	    { 0, 0, false, "key 'bus.publish': ipc path '@D@/@LONG@/run/bus-publish' is" },
	    { 0, 0, false, "key 'bus.subscribe': ipc path '@D@/@LONG@/run/bus-subscribe' is" },
	    { 0, 0, false, "key 'bus.tap': ipc path '@D@/@LONG@/run/bus-tap' is" } } },
	{ "bad log level", "log:\n  level: verbose\n", NULL,
	  { { 2, 10, true, "@F@:2:10: key 'log.level': bad value 'verbose': expected one of debug, info, warning, error" } } },
	{ "bad duration and bound", "bus:\n  heartbeat: fast\n  liveness: 1\n", NULL,
	  { { 2, 14, false, "key 'bus.heartbeat': bad value 'fast'" },
	    { 3, 13, false, "key 'bus.liveness': bad value '1'" } } },
	{ "unknown top-level key", "state_dri: ../var\n", NULL,
	  { { 1, 1, false, "unknown key 'state_dri'" } } },
	{ "hosts and supervisor",
	  "hosts:\n  - { name: core1, processes: [broker, engine] }\n  - name: dir1\n    processes: [agents, ma.hr, tap]\n"
	  "  - { name: spare, processes: [] }\n"
	  "supervisor: { restart_min: 1s, give_up: 2 }\n",
	  DUMP_DEFAULTS
	  "hosts[0]=core1: broker,engine\n"
	  "hosts[1]=dir1: agents,ma.hr,tap\n"
	  "hosts[2]=spare:\n"
	  "supervisor=1000,30000,10000,2,15000\n", { { 0 } } },
	{ "hosts: a name twice, a process on two hosts, an unknown process",
	  "hosts:\n  - name: a\n    processes: [broker, engine]\n  - name: a\n    processes: [engine, mailer]\n", NULL,
	  { { 4, 11, true, "@F@:4:11: key 'hosts[1].name': host name 'a' is already used at line 2: expected a unique name" },
	    { 4, 11, true, "@F@:4:11: key 'hosts[1].processes': 'engine' is already assigned to host 'a': a process runs on one host only" },
	    { 4, 11, true, "@F@:4:11: key 'hosts[1].processes': bad value 'mailer': expected broker, tap, engine, workflow, pcns, agents or ma.NAME" } } },
	{ "hosts: a bad host name, a process twice on one host, supervisor out of range",
	  "hosts:\n  - { name: 9lives, processes: [pcns, pcns, ma.] }\nsupervisor:\n  give_up: 0\n", NULL,
	  { { 4, 12, false, "key 'supervisor.give_up': bad value '0'" },
	    { 2, 13, true, "@F@:2:13: key 'hosts[0].name': bad value '9lives': expected letters, digits, '.', '_' and '-', starting with a letter" },
	    { 2, 13, true, "@F@:2:13: key 'hosts[0].processes': 'pcns' is already assigned to host '9lives': a process runs on one host only" },
	    { 2, 13, false, "bad value 'ma.'" } } },
	{ "missing file", NULL, NULL,
	  { { 0, 0, false, "@F@: cannot read" } } },
};

/* Also checks the "socket path" wording of the too-long case on every diag. */
static const char *const long_fragment = "a socket path holds at most 107: use a shorter state_dir or set the endpoint";

static void test_deploy_case(void **state)
{
	const deploy_case_t *c = *state;
	char *dir = scratch_new();
	char *file = loom_sprintf("%s/loom.yaml", dir);
	if (c->yaml) {
		char *yaml = expand(c->yaml, dir, file);
		write_file(file, yaml);
		free(yaml);
	}
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	loom_cfg_diags_t diags;
	memset(&diags, 0xee, sizeof diags); /* the loader must reset it */
	int rc = loom_deploy_load(file, &cfg, &diags);

	size_t nwant = 0;
	while (nwant < N_ELEMS(c->want) && c->want[nwant].text)
		nwant++;
	loom_buf_t all = LOOM_BUF_INIT;
	for (size_t i = 0; i < diags.n; i++)
		loom_buf_printf(&all, "  %u:%u %s\n", diags.v[i].line, diags.v[i].column, diags.v[i].text);

	if (c->want_dump) {
		if (rc != 0)
			fail_msg("%s: rc %d with diags:\n%s", c->label, rc, loom_buf_cstr(&all));
		if (diags.n != 0)
			fail_msg("%s: ok but with diags:\n%s", c->label, loom_buf_cstr(&all));
		loom_buf_t got = LOOM_BUF_INIT;
		dump(&got, &cfg);
		char *want = expand(c->want_dump, dir, file);
		check_dump(c->label, loom_buf_cstr(&got), want);
		free(want);
		loom_buf_release(&got);
	} else {
		if (rc != -1)
			fail_msg("%s: rc %d, want -1", c->label, rc);
		if (diags.n != nwant)
			fail_msg("%s: %zu diags, want %zu:\n%s", c->label, diags.n, nwant, loom_buf_cstr(&all));
		for (size_t i = 0; i < nwant; i++) {
			const want_diag_t *w = &c->want[i];
			const loom_cfg_diag_t *d = &diags.v[i];
			char *want = expand(w->text, dir, file);
			bool ok = w->exact ? strcmp(d->text, want) == 0 : strstr(d->text, want) != NULL;
			if (!ok)
				fail_msg("%s: diag %zu\n got: %s\nwant %s: %s", c->label, i, d->text,
				    w->exact ? "exactly" : "a text containing", want);
			if (d->line != w->line || d->column != w->column)
				fail_msg("%s: diag %zu at %u:%u, want %u:%u", c->label, i, d->line, d->column,
				    w->line, w->column);
			if (d->file == NULL || strcmp(d->file, file) != 0)
				fail_msg("%s: diag %zu names file '%s'", c->label, i, d->file ? d->file : "(null)");
			if (strstr(w->text, "ipc path") && strstr(d->text, long_fragment) == NULL)
				fail_msg("%s: diag %zu lacks '%s': %s", c->label, i, long_fragment, d->text);
			free(want);
		}
	}
	loom_buf_release(&all);
	loom_cfg_diags_release(&diags);
	assert_int_equal(diags.n, 0);
	loom_deploy_release(&cfg);
	check_released(c->label, &cfg);
	free(file);
	scratch_free(dir);
}

/* The repository's own config/loom.yaml loads, with derived defaults. */
static void test_repo_config(void **state)
{
	(void)state;
	const char *file = LOOM_SOURCE_DIR "/config/loom.yaml";
	const char *dir = LOOM_SOURCE_DIR "/config";
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	loom_cfg_diags_t diags;
	int rc = loom_deploy_load(file, &cfg, &diags);
	loom_buf_t all = LOOM_BUF_INIT;
	for (size_t i = 0; i < diags.n; i++)
		loom_buf_printf(&all, "  %s\n", diags.v[i].text);
	if (rc != 0 || diags.n != 0)
		fail_msg("%s: rc %d:\n%s", file, rc, loom_buf_cstr(&all));
	loom_buf_t got = LOOM_BUF_INIT;
	dump(&got, &cfg);
	char *want = expand(DUMP_DEFAULTS, dir, file);
	check_dump(file, loom_buf_cstr(&got), want);
	/* Spelled out, as the brief for the defaults says. */
	char *router = loom_sprintf("ipc://%s/run/bus-router", cfg.state_dir);
	assert_string_equal(cfg.bus.router, router);
	free(router);
	free(want);
	loom_buf_release(&got);
	loom_buf_release(&all);
	loom_cfg_diags_release(&diags);
	loom_deploy_release(&cfg);
	check_released("repo config", &cfg);
}

static void test_default_path(void **state)
{
	(void)state;
	static const struct {
		const char *label;
		const char *env;         /* LOOM_CONFIG, NULL: unset */
		const char *want;
	} cases[] = {
		{ "unset", NULL, "config/loom.yaml" },
		{ "empty", "", "config/loom.yaml" },
		{ "set", "/etc/loom/loom.yaml", "/etc/loom/loom.yaml" },
	};
	const char *old = getenv("LOOM_CONFIG");
	char *saved = old ? loom_strdup(old) : NULL;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		if (cases[i].env)
			setenv("LOOM_CONFIG", cases[i].env, 1);
		else
			unsetenv("LOOM_CONFIG");
		const char *got = loom_deploy_default_path();
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: got '%s', want '%s'", cases[i].label, got, cases[i].want);
	}
	if (saved)
		setenv("LOOM_CONFIG", saved, 1);
	else
		unsetenv("LOOM_CONFIG");
	free(saved);
}

/* ---- loom_buf escaping ---------------------------------------------------- */

typedef struct esc_case {
	const char *label;           /* what the case shows */
	const char *in;              /* input bytes */
	size_t len;                  /* their length */
	const char *want;            /* exact output */
} esc_case_t;

#define ESC(label, lit, want) { label, lit, sizeof(lit) - 1, want }

static const esc_case_t logval_cases[] = {
	ESC("plain", "engine@1f2e", "engine@1f2e"),
	ESC("path and punctuation", "/var/run/bus-router:1,2", "/var/run/bus-router:1,2"),
	ESC("UTF-8 stays bare", "caf\xc3\xa9", "caf\xc3\xa9"),
	ESC("with space", "no such service", "\"no such service\""),
	ESC("with quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
	ESC("only a quote", "\"", "\"\\\"\""),
	ESC("with '='", "a=b", "\"a=b\""),
	ESC("with backslash", "a\\b", "\"a\\\\b\""),
	ESC("newline", "line1\nline2", "\"line1\\nline2\""),
	ESC("tab", "a\tb", "\"a\\x09b\""),
	ESC("carriage return", "a\r", "\"a\\x0d\""),
	ESC("DEL", "a\x7f", "\"a\\x7f\""),
	ESC("NUL byte", "a\0b", "\"a\\x00b\""),
	ESC("empty", "", "\"\""),
};

static const esc_case_t json_cases[] = {
	ESC("plain", "engine", "\"engine\""),
	ESC("empty", "", "\"\""),
	ESC("quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
	ESC("backslash", "C:\\dir", "\"C:\\\\dir\""),
	ESC("slash stays", "a/b", "\"a/b\""),
	ESC("newline, return, tab", "a\nb\rc\td", "\"a\\nb\\rc\\td\""),
	ESC("other control chars", "\x01\x08\x0c\x1f", "\"\\u0001\\u0008\\u000c\\u001f\""),
	ESC("NUL byte", "a\0b", "\"a\\u0000b\""),
	ESC("DEL", "\x7f", "\"\\u007f\""),
	ESC("UTF-8 passes through", "caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\""),
	ESC("space and '='", "a = b", "\"a = b\""),
};

static void run_esc(const esc_case_t *c, void (*fn)(loom_buf_t *, const char *, size_t), const char *what)
{
	/* Input in an exact heap block: the escaper must stop at len. */
	char *in = loom_memdup(c->in, c->len);
	loom_buf_t b = LOOM_BUF_INIT;
	fn(&b, in, c->len);
	if (strcmp(loom_buf_cstr(&b), c->want) != 0 || b.len != strlen(c->want))
		fail_msg("%s %s:\n got: %s\nwant: %s", what, c->label, loom_buf_cstr(&b), c->want);
	/* Appends after what is there. */
	loom_buf_reset(&b);
	loom_buf_adds(&b, "k=");
	fn(&b, in, c->len);
	if (strncmp(loom_buf_cstr(&b), "k=", 2) != 0 || strcmp(loom_buf_cstr(&b) + 2, c->want) != 0)
		fail_msg("%s %s: did not append: %s", what, c->label, loom_buf_cstr(&b));
	loom_buf_release(&b);
	free(in);
}

static void test_logval_case(void **state)
{
	run_esc(*state, loom_buf_add_logval, "logval");
}

static void test_json_case(void **state)
{
	run_esc(*state, loom_buf_add_json_str, "json");
}

/* Every byte value through both escapers: the output is always one clean
 * token (logval) or one JSON string with no raw control characters. */
static void test_escape_every_byte(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		char in[3] = { 'x', (char)c, 'y' };
		loom_buf_t b = LOOM_BUF_INIT;
		loom_buf_add_logval(&b, in, sizeof in);
		for (size_t i = 0; i < b.len; i++) {
			unsigned char u = (unsigned char)b.data[i];
			if (u < 0x20 || u == 0x7f)
				fail_msg("logval of byte 0x%02x holds a raw control char: %s", c, b.data);
		}
		bool quoted = b.data[0] == '"';
		for (size_t i = 0; !quoted && i < b.len; i++)
			if (b.data[i] == ' ' || b.data[i] == '=' || b.data[i] == '"')
				fail_msg("logval of byte 0x%02x is bare but needs quotes: %s", c, b.data);
		loom_buf_reset(&b);
		loom_buf_add_json_str(&b, in, sizeof in);
		if (b.data[0] != '"' || b.data[b.len - 1] != '"')
			fail_msg("json of byte 0x%02x not quoted", c);
		for (size_t i = 1; i + 1 < b.len; i++) {
			unsigned char u = (unsigned char)b.data[i];
			if (u < 0x20 || u == 0x7f)
				fail_msg("json of byte 0x%02x holds a raw control char", c);
			if (u == '"' && b.data[i - 1] != '\\')
				fail_msg("json of byte 0x%02x holds a bare quote: %s", c, b.data);
		}
		loom_buf_release(&b);
	}
}

/* A few buffer basics the escapers lean on. */
static void test_buf_basics(void **state)
{
	(void)state;
	loom_buf_t b = LOOM_BUF_INIT;
	assert_string_equal(loom_buf_cstr(&b), "");
	char *s = loom_buf_steal(&b);
	assert_string_equal(s, "");
	free(s);
	for (int i = 0; i < 1000; i++)
		loom_buf_printf(&b, "%03d,", i);
	assert_int_equal(b.len, 4000);
	assert_int_equal(b.data[b.len], '\0');
	assert_memory_equal(b.data + 3996, "999,", 4);
	loom_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(loom_buf_cstr(&b), "");
	loom_buf_add_hex(&b, "\x00\xff\x10", 3);
	assert_string_equal(loom_buf_cstr(&b), "00ff10");
	s = loom_buf_steal(&b);
	assert_string_equal(s, "00ff10");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	s = loom_hex("\x00\xff\x10\xab", 4);
	assert_string_equal(s, "00ff10ab");
	free(s);
	s = loom_hex("", 0);
	assert_string_equal(s, "");
	free(s);
	loom_buf_release(&b);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_repo_config),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_escape_every_byte),
		cmocka_unit_test(test_buf_basics),
	};
	size_t n = N_ELEMS(fixed) + N_ELEMS(deploy_cases) + N_ELEMS(logval_cases) + N_ELEMS(json_cases);
	struct CMUnitTest *tests = loom_calloc(n, sizeof *tests);
	char **names = loom_calloc(n, sizeof *names);
	size_t k = 0, nn = 0;
	for (size_t i = 0; i < N_ELEMS(fixed); i++)
		tests[k++] = fixed[i];
	for (size_t i = 0; i < N_ELEMS(deploy_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_deploy_case, (void *)&deploy_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("deploy: %s", deploy_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(logval_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_logval_case, (void *)&logval_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("logval: %s", logval_cases[i].label);
	}
	for (size_t i = 0; i < N_ELEMS(json_cases); i++) {
		tests[k] = (struct CMUnitTest)cmocka_unit_test_prestate(test_json_case, (void *)&json_cases[i]);
		tests[k++].name = names[nn++] = loom_sprintf("json: %s", json_cases[i].label);
	}
	int failed = _cmocka_run_group_tests("test_deploy", tests, k, NULL, NULL);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(tests);
	return failed;
}
