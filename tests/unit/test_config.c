/* test_config.c - the YAML config loader against a sample schema.
 *
 * Each document case is a label, the YAML text, and either the wanted
 * struct (dumped as text, one field per line) or the exact wanted messages
 * in order. Every case is loaded as "/etc/loom/loom.yaml" so relative paths
 * resolve against /etc/loom, then released, and the struct must come back
 * all zero (ASan reports anything the release missed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_config.h"

/* ---- the sample schema -------------------------------------------------- */

typedef struct bus_cfg {
	char *endpoint;          /* where the broker listens */
	long long heartbeat;     /* ms between pings */
	long long liveness;      /* missed pings before a peer is dead */
	long long backlog;       /* unbounded integer */
	long long max_message;   /* bytes */
	bool compress;           /* compress large messages */
} bus_cfg_t;

typedef struct source_cfg {
	char *url;               /* directory server */
	char *ca_file;           /* CA bundle */
	long long timeout;       /* ms */
} source_cfg_t;

typedef struct process_cfg {
	char *name;              /* the mapping key */
	char *host;              /* where it runs */
	long long port;          /* where it listens */
	loom_cfg_strlist_t args; /* extra arguments */
} process_cfg_t;

typedef struct sample_cfg {
	char *name;                  /* instance name */
	char *data_dir;              /* state directory */
	int level;                   /* index into levels */
	loom_cfg_strlist_t tags;     /* labels */
	bus_cfg_t bus;               /* the bus section */
	loom_cfg_array_t sources;    /* source_cfg_t */
	loom_cfg_array_t processes;  /* process_cfg_t */
} sample_cfg_t;

static const char *const levels[] = { "debug", "info", "warning", "error", NULL };

static const loom_cfg_key_t bus_keys[] = {
	{ .name = "endpoint", .type = LOOM_CFG_ENDPOINT, .offset = offsetof(bus_cfg_t, endpoint),
	  .def = "ipc://run/bus.sock", .help = "where the broker listens" },
	{ .name = "heartbeat", .type = LOOM_CFG_DURATION, .offset = offsetof(bus_cfg_t, heartbeat),
	  .def = "2s", .min = 100, .max = 60000, .help = "how often peers ping" },
	{ .name = "liveness", .type = LOOM_CFG_INT, .offset = offsetof(bus_cfg_t, liveness),
	  .def = "3", .min = 1, .max = 100, .help = "missed pings before a peer is dead" },
	{ .name = "backlog", .type = LOOM_CFG_INT, .offset = offsetof(bus_cfg_t, backlog),
	  .def = "0", .help = "queued messages" },
	{ .name = "max_message", .type = LOOM_CFG_SIZE, .offset = offsetof(bus_cfg_t, max_message),
	  .def = "1MiB", .min = 1024, .max = 1LL << 30, .help = "largest message" },
	{ .name = "compress", .type = LOOM_CFG_BOOL, .offset = offsetof(bus_cfg_t, compress),
	  .def = "off", .help = "compress large messages" },
	{ .name = NULL },
};
static const loom_cfg_table_t bus_table = { .what = "bus", .keys = bus_keys };

static const loom_cfg_key_t source_keys[] = {
	{ .name = "url", .type = LOOM_CFG_STRING, .offset = offsetof(source_cfg_t, url),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "directory server" },
	{ .name = "ca_file", .type = LOOM_CFG_PATH, .offset = offsetof(source_cfg_t, ca_file),
	  .help = "CA bundle" },
	{ .name = "timeout", .type = LOOM_CFG_DURATION, .offset = offsetof(source_cfg_t, timeout),
	  .def = "30s", .help = "per request" },
	{ .name = NULL },
};
static const loom_cfg_table_t source_table = {
	.what = "source", .size = sizeof(source_cfg_t), .keys = source_keys,
};

static const loom_cfg_key_t process_keys[] = {
	{ .name = "host", .type = LOOM_CFG_STRING, .offset = offsetof(process_cfg_t, host),
	  .flags = LOOM_CFG_REQUIRED, .help = "where it runs" },
	{ .name = "port", .type = LOOM_CFG_INT, .offset = offsetof(process_cfg_t, port),
	  .def = "7000", .min = 1, .max = 65535, .help = "where it listens" },
	{ .name = "args", .type = LOOM_CFG_STRLIST, .offset = offsetof(process_cfg_t, args),
	  .help = "extra arguments" },
	{ .name = NULL },
};
static const loom_cfg_table_t process_table = {
	.what = "process", .size = sizeof(process_cfg_t),
	.name_offset = offsetof(process_cfg_t, name), .keys = process_keys,
};

static const loom_cfg_key_t sample_keys[] = {
	{ .name = "name", .type = LOOM_CFG_STRING, .offset = offsetof(sample_cfg_t, name),
	  .flags = LOOM_CFG_REQUIRED | LOOM_CFG_NONEMPTY, .help = "instance name" },
	{ .name = "data_dir", .type = LOOM_CFG_PATH, .offset = offsetof(sample_cfg_t, data_dir),
	  .def = "var/data", .help = "state directory" },
	{ .name = "level", .type = LOOM_CFG_ENUM, .offset = offsetof(sample_cfg_t, level),
	  .def = "info", .choices = levels, .help = "log level" },
	{ .name = "tags", .type = LOOM_CFG_STRLIST, .offset = offsetof(sample_cfg_t, tags),
	  .def = "[core, ldap]", .help = "labels" },
	{ .name = "bus", .type = LOOM_CFG_SECTION, .offset = offsetof(sample_cfg_t, bus),
	  .sub = &bus_table, .help = "the message bus" },
	{ .name = "sources", .type = LOOM_CFG_LIST, .offset = offsetof(sample_cfg_t, sources),
	  .flags = LOOM_CFG_NONEMPTY, .sub = &source_table, .help = "directory servers" },
	{ .name = "processes", .type = LOOM_CFG_MAP, .offset = offsetof(sample_cfg_t, processes),
	  .sub = &process_table, .help = "processes to run" },
	{ .name = NULL },
};
static const loom_cfg_table_t sample_table = { .what = "the top level", .keys = sample_keys };

/* ---- dumping a loaded struct -------------------------------------------- */

static void dump_str(loom_buf_t *b, const char *key, const char *v)
{
	loom_buf_printf(b, "%s=%s\n", key, v ? v : "(null)");
}

static void dump_list(loom_buf_t *b, const char *key, const loom_cfg_strlist_t *l)
{
	loom_buf_printf(b, "%s=[", key);
	for (size_t i = 0; i < l->n; i++)
		loom_buf_printf(b, "%s%s", i ? "," : "", l->v[i]);
	loom_buf_adds(b, "]\n");
}

static char *dump_sample(const sample_cfg_t *c)
{
	loom_buf_t b = LOOM_BUF_INIT;
	dump_str(&b, "name", c->name);
	dump_str(&b, "data_dir", c->data_dir);
	loom_buf_printf(&b, "level=%s\n", levels[c->level]);
	dump_list(&b, "tags", &c->tags);
	dump_str(&b, "bus.endpoint", c->bus.endpoint);
	loom_buf_printf(&b, "bus.heartbeat=%lld\nbus.liveness=%lld\nbus.backlog=%lld\n"
	    "bus.max_message=%lld\nbus.compress=%s\n", c->bus.heartbeat, c->bus.liveness,
	    c->bus.backlog, c->bus.max_message, c->bus.compress ? "true" : "false");
	const source_cfg_t *src = c->sources.v;
	for (size_t i = 0; i < c->sources.n; i++)
		loom_buf_printf(&b, "sources[%zu]=%s %s %lld\n", i, src[i].url,
		    src[i].ca_file ? src[i].ca_file : "(null)", src[i].timeout);
	const process_cfg_t *p = c->processes.v;
	for (size_t i = 0; i < c->processes.n; i++) {
		char key[64];
		loom_buf_printf(&b, "processes.%s=%s:%lld\n", p[i].name, p[i].host, p[i].port);
		snprintf(key, sizeof key, "processes.%s.args", p[i].name);
		dump_list(&b, key, &p[i].args);
	}
	return loom_buf_steal(&b);
}

/* The defaults, with relative paths resolved against /etc/loom. */
#define DEFAULTS_AFTER_NAME \
	"data_dir=/etc/loom/var/data\n" \
	"level=info\n" \
	"tags=[core,ldap]\n" \
	"bus.endpoint=ipc:///etc/loom/run/bus.sock\n" \
	"bus.heartbeat=2000\n" \
	"bus.liveness=3\n" \
	"bus.backlog=0\n" \
	"bus.max_message=1048576\n" \
	"bus.compress=false\n"

#define F "/etc/loom/loom.yaml"

/* ---- document cases ----------------------------------------------------- */

#define MAX_ERRORS 8

typedef struct doc_case {
	const char *label;                /* what the case shows */
	const char *yaml;                 /* the document */
	const char *want;                 /* dump of the loaded struct, or NULL */
	const char *errors[MAX_ERRORS];   /* wanted messages in order, when want is NULL */
} doc_case_t;

static const doc_case_t doc_cases[] = {
	{ "full document",
	  "name: loom\n"
	  "data_dir: /srv/loom\n"
	  "level: debug\n"
	  "tags: [a, b]\n"
	  "bus:\n"
	  "  endpoint: tcp://127.0.0.1:5555\n"
	  "  heartbeat: 1m\n"
	  "  liveness: 100\n"
	  "  backlog: -12\n"
	  "  max_message: 64KiB\n"
	  "  compress: Yes\n"
	  "sources:\n"
	  "  - url: ldap://dc1\n"
	  "    ca_file: certs/ca.pem\n"
	  "    timeout: 1m30s\n"
	  "  - url: ldap://dc2\n"
	  "processes:\n"
	  "  engine:\n"
	  "    host: localhost\n"
	  "    port: 7001\n"
	  "    args: --fast\n"
	  "  pcns:\n"
	  "    host: \"::1\"\n"
	  "    args: [-v, \"-x y\"]\n",
	  "name=loom\n"
	  "data_dir=/srv/loom\n"
	  "level=debug\n"
	  "tags=[a,b]\n"
	  "bus.endpoint=tcp://127.0.0.1:5555\n"
	  "bus.heartbeat=60000\n"
	  "bus.liveness=100\n"
	  "bus.backlog=-12\n"
	  "bus.max_message=65536\n"
	  "bus.compress=true\n"
	  "sources[0]=ldap://dc1 /etc/loom/certs/ca.pem 90000\n"
	  "sources[1]=ldap://dc2 (null) 30000\n"
	  "processes.engine=localhost:7001\n"
	  "processes.engine.args=[--fast]\n"
	  "processes.pcns=::1:7000\n"
	  "processes.pcns.args=[-v,-x y]\n",
	  { NULL } },
	{ "defaults applied to absent keys and an absent section",
	  "name: loom\n",
	  "name=loom\n" DEFAULTS_AFTER_NAME, { NULL } },
	{ "empty section takes its defaults",
	  "name: loom\nbus:\nprocesses:\n",
	  "name=loom\n" DEFAULTS_AFTER_NAME, { NULL } },
	{ "flow style, mixed case words, other units",
	  "{name: x, level: WARNING, data_dir: ./state, tags: solo,\n"
	  " bus: {endpoint: 'tcp://[::1]:80', heartbeat: 1s500ms, max_message: 1GiB, compress: OFF},\n"
	  " sources: [{url: u, ca_file: /abs/ca.pem, timeout: 0}]}\n",
	  "name=x\n"
	  "data_dir=/etc/loom/state\n"
	  "level=warning\n"
	  "tags=[solo]\n"
	  "bus.endpoint=tcp://[::1]:80\n"
	  "bus.heartbeat=1500\n"
	  "bus.liveness=3\n"
	  "bus.backlog=0\n"
	  "bus.max_message=1073741824\n"
	  "bus.compress=false\n"
	  "sources[0]=u /abs/ca.pem 0\n", { NULL } },
	{ "inproc endpoint and decimal size",
	  "name: x\nbus:\n  endpoint: inproc://bus\n  max_message: 2MB\n",
	  "name=x\n"
	  "data_dir=/etc/loom/var/data\n"
	  "level=info\n"
	  "tags=[core,ldap]\n"
	  "bus.endpoint=inproc://bus\n"
	  "bus.heartbeat=2000\n"
	  "bus.liveness=3\n"
	  "bus.backlog=0\n"
	  "bus.max_message=2000000\n"
	  "bus.compress=false\n", { NULL } },

	/* One case per kind of error. */
	{ "empty document lacks the required key", "", NULL,
	  { F ":1:1: key 'name': missing required key" } },
	{ "comments only", "# nothing here\n", NULL,
	  { F ":1:1: key 'name': missing required key" } },
	{ "bad duration", "name: x\nbus:\n  heartbeat: fast\n", NULL,
	  { F ":3:14: key 'bus.heartbeat': bad value 'fast': expected a duration such as 500ms, 2s, 5m" } },
	{ "duration without a unit", "name: x\nbus:\n  heartbeat: 5\n", NULL,
	  { F ":3:14: key 'bus.heartbeat': bad value '5': expected a duration with a unit such as 500ms or 2s" } },
	{ "duration out of bounds", "name: x\nbus: {heartbeat: 1m1ms}\n", NULL,
	  { F ":2:18: key 'bus.heartbeat': bad value '1m1ms': expected a duration from 100ms to 1m" } },
	{ "duration units out of order", "name: x\nbus:\n  heartbeat: 30s1m\n", NULL,
	  { F ":3:14: key 'bus.heartbeat': bad value '30s1m': expected a duration such as 500ms, 2s, 5m" } },
	{ "integer below bounds", "name: x\nbus:\n  liveness: 0\n", NULL,
	  { F ":3:13: key 'bus.liveness': bad value '0': expected an integer from 1 to 100" } },
	{ "integer with trailing garbage", "name: x\nbus:\n  liveness: 10x\n", NULL,
	  { F ":3:13: key 'bus.liveness': bad value '10x': expected an integer from 1 to 100" } },
	{ "integer overflow", "name: x\nbus:\n  backlog: 9223372036854775808\n", NULL,
	  { F ":3:12: key 'bus.backlog': bad value '9223372036854775808': expected an integer from -9223372036854775808 to 9223372036854775807" } },
	{ "not an integer", "name: x\nbus:\n  backlog: 0x10\n", NULL,
	  { F ":3:12: key 'bus.backlog': bad value '0x10': expected an integer" } },
	{ "bad enum", "name: x\nlevel: loud\n", NULL,
	  { F ":2:8: key 'level': bad value 'loud': expected one of debug, info, warning, error" } },
	{ "bad bool", "name: x\nbus:\n  compress: maybe\n", NULL,
	  { F ":3:13: key 'bus.compress': bad value 'maybe': expected one of true, false, yes, no, on, off" } },
	{ "bad size", "name: x\nbus:\n  max_message: 10 MiB\n", NULL,
	  { F ":3:16: key 'bus.max_message': bad value '10 MiB': expected a size such as 512, 64KiB, 10MiB, 2GiB" } },
	{ "size out of bounds", "name: x\nbus:\n  max_message: 2GiB\n", NULL,
	  { F ":3:16: key 'bus.max_message': bad value '2GiB': expected a size from 1KiB to 1GiB" } },
	{ "endpoint with an unknown scheme", "name: x\nbus:\n  endpoint: http://broker\n", NULL,
	  { F ":3:13: key 'bus.endpoint': bad value 'http://broker': expected an endpoint such as ipc://PATH or tcp://HOST:PORT" } },
	{ "tcp endpoint with a bad port", "name: x\nbus:\n  endpoint: tcp://broker:65536\n", NULL,
	  { F ":3:13: key 'bus.endpoint': bad value 'tcp://broker:65536': expected tcp://HOST:PORT with a port from 1 to 65535" } },
	{ "tcp endpoint without a host", "name: x\nbus:\n  endpoint: tcp://:80\n", NULL,
	  { F ":3:13: key 'bus.endpoint': bad value 'tcp://:80': expected tcp://HOST:PORT with a non-empty host" } },
	{ "unknown key close to a known one", "name: x\nbus:\n  hearbeat: 2s\n", NULL,
	  { F ":3:3: unknown key 'hearbeat' in bus (did you mean 'heartbeat'?)" } },
	{ "unknown key near nothing", "name: x\ncolour: red\n", NULL,
	  { F ":2:1: unknown key 'colour' in the top level" } },
	{ "unknown key in a map element", "name: x\nprocesses:\n  engine:\n    host: h\n    prot: 1\n", NULL,
	  { F ":5:5: unknown key 'prot' in process (did you mean 'port'?)" } },
	{ "missing required key in a map element",
	  "name: x\nprocesses:\n  engine:\n    port: 7001\n", NULL,
	  { F ":4:5: key 'processes.engine.host': missing required key" } },
	{ "missing required key in an empty map element",
	  "name: x\nprocesses:\n  engine:\n", NULL,
	  { F ":3:3: key 'processes.engine.host': missing required key" } },
	{ "missing required key in a list item",
	  "name: x\nsources:\n  - ca_file: ca.pem\n", NULL,
	  { F ":3:5: key 'sources[0].url': missing required key" } },
	{ "duplicate key", "name: x\nbus: {}\nbus: {}\n", NULL,
	  { F ":3:1: duplicate key 'bus'" } },
	{ "duplicate map name", "name: x\nprocesses:\n  a: {host: h}\n  a: {host: h}\n", NULL,
	  { F ":4:3: duplicate key 'processes.a'" } },
	{ "anchor and alias", "name: &n loom\ndata_dir: *n\n", NULL,
	  { F ":1:7: key 'name': yaml anchor '&n' is not allowed",
	    F ":2:11: key 'data_dir': yaml alias '*n' is not allowed" } },
	{ "tag", "name: !!str loom\nlevel: !custom info\n", NULL,
	  { F ":1:7: key 'name': yaml tag '!!str' is not allowed",
	    F ":2:8: key 'level': yaml tag '!custom' is not allowed" } },
	{ "multiple documents", "name: a\n---\nname: b\n", NULL,
	  { F ":2:1: unexpected second document: expected one document per file" } },
	{ "sequence at the root", "- name: a\n", NULL,
	  { F ":1:1: top level: expected a mapping, found a sequence" } },
	{ "scalar at the root", "hello\n", NULL,
	  { F ":1:1: top level: bad value 'hello': expected a mapping" } },
	{ "yaml syntax error with context", "name: a\nbus: [1, 2\n", NULL,
	  { F ":3:1: yaml syntax: did not find expected ',' or ']' (while parsing a flow sequence)" } },
	{ "yaml syntax error without context", "name: a: b\n", NULL,
	  { F ":1:8: yaml syntax: mapping values are not allowed in this context" } },
	{ "invalid utf-8", "name: ok\nlevel: \xff\n", NULL,
	  { F ":2:8: yaml syntax: invalid leading UTF-8 octet" } },
	{ "mapping where a scalar goes", "name:\n  first: a\n", NULL,
	  { F ":2:3: key 'name': expected a string, found a mapping" } },
	{ "scalar where a section goes", "name: x\nbus: fast\n", NULL,
	  { F ":2:6: key 'bus': bad value 'fast': expected a mapping" } },
	{ "list item that is not a mapping", "name: x\nsources:\n  - ldap://dc1\n", NULL,
	  { F ":3:5: key 'sources[0]': bad value 'ldap://dc1': expected a mapping" } },
	{ "string list item that is not a string", "name: x\ntags: [a, [b]]\n", NULL,
	  { F ":2:11: key 'tags[1]': expected a string, found a sequence" } },
	{ "empty required string", "name: ''\n", NULL,
	  { F ":1:7: key 'name': bad value '': expected a non-empty string" } },
	{ "empty non-empty list", "name: x\nsources: []\n", NULL,
	  { F ":2:10: key 'sources': expected a non-empty list" } },
	{ "non-scalar key", "name: x\n[a]: b\n", NULL,
	  { F ":2:1: top level: expected a scalar key, found a sequence" } },
	{ "control characters are escaped", "name: x\nlevel: \"a\\tb\\x01'\"\n", NULL,
	  { F ":2:8: key 'level': bad value 'a\\tb\\x01\\'': expected one of debug, info, warning, error" } },
	{ "long values are cut",
	  "name: x\nlevel: 0123456789012345678901234567890123456789012345678901234567890123456789\n", NULL,
	  { F ":2:8: key 'level': bad value '012345678901234567890123456789012345678901234567890123456789...': "
	    "expected one of debug, info, warning, error" } },

	{ "every error of a document, in document order",
	  "bus:\n"
	  "  heartbeat: fast\n"
	  "  liveness: 0\n"
	  "colour: red\n"
	  "processes:\n"
	  "  engine:\n"
	  "    port: 99999\n"
	  "    hots: a\n", NULL,
	  { F ":1:1: key 'name': missing required key",
	    F ":2:14: key 'bus.heartbeat': bad value 'fast': expected a duration such as 500ms, 2s, 5m",
	    F ":3:13: key 'bus.liveness': bad value '0': expected an integer from 1 to 100",
	    F ":4:1: unknown key 'colour' in the top level",
	    F ":7:5: key 'processes.engine.host': missing required key",
	    F ":7:11: key 'processes.engine.port': bad value '99999': expected an integer from 1 to 65535",
	    F ":8:5: unknown key 'hots' in process (did you mean 'host'?)" } },
};

static void assert_all_zero(const void *p, size_t n)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n; i++)
		if (u[i] != 0)
			fail_msg("byte %zu not zero after release", i);
}

static void run_doc_case(const doc_case_t *tc)
{
	sample_cfg_t cfg;
	loom_cfg_diags_t diags = { NULL, 0 };
	memset(&cfg, 0, sizeof cfg);

	int r = loom_config_load_string(F, tc->yaml, strlen(tc->yaml), &sample_table, &cfg, &diags);
	if (tc->want) {
		for (size_t i = 0; i < diags.n; i++)
			print_message("[%s] unexpected: %s\n", tc->label, diags.v[i].text);
		assert_int_equal(r, 0);
		assert_int_equal(diags.n, 0);
		char *got = dump_sample(&cfg);
		if (strcmp(got, tc->want) != 0)
			print_message("[%s] got:\n%s", tc->label, got);
		assert_string_equal(got, tc->want);
		free(got);
	} else {
		size_t nwant = 0;
		while (nwant < MAX_ERRORS && tc->errors[nwant])
			nwant++;
		for (size_t i = 0; i < diags.n; i++)
			if (i >= nwant || strcmp(diags.v[i].text, tc->errors[i]) != 0)
				print_message("[%s] got: %s\n", tc->label, diags.v[i].text);
		assert_int_equal(r, -1);
		assert_int_equal(diags.n, nwant);
		for (size_t i = 0; i < nwant; i++)
			assert_string_equal(diags.v[i].text, tc->errors[i]);
	}
	loom_cfg_diags_release(&diags);
	assert_null(diags.v);
	assert_int_equal(diags.n, 0);
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
}

static void test_document(void **state)
{
	run_doc_case(*state);
}

/* ---- parse helpers ------------------------------------------------------ */

typedef struct num_case {
	const char *text;   /* input */
	int ret;            /* wanted return */
	long long want;     /* wanted value when ret is 0 */
} num_case_t;

static const num_case_t duration_cases[] = {
	{ "0", 0, 0 }, { "00", 0, 0 }, { "0s", 0, 0 }, { "500ms", 0, 500 }, { "2s", 0, 2000 },
	{ "5m", 0, 300000 }, { "1h", 0, 3600000 }, { "1d", 0, 86400000 },
	{ "1h30m", 0, 5400000 }, { "1m5s", 0, 65000 }, { "1s500ms", 0, 1500 },
	{ "1d2h3m4s5ms", 0, 93784005 },
	{ "", -1, 0 }, { "5", -1, 0 }, { "1h0", -1, 0 }, { "1h1h", -1, 0 }, { "30m1h", -1, 0 },
	{ "-1s", -1, 0 }, { "1.5s", -1, 0 }, { "2S", -1, 0 }, { "2 s", -1, 0 }, { " 2s", -1, 0 },
	{ "s", -1, 0 }, { "2w", -1, 0 }, { "9223372036854775807s", -1, 0 },
	{ "99999999999999999999ms", -1, 0 },
};

static const num_case_t size_cases[] = {
	{ "0", 0, 0 }, { "512", 0, 512 }, { "1B", 0, 1 }, { "64KiB", 0, 65536 },
	{ "10MiB", 0, 10485760 }, { "2GiB", 0, 2147483648LL }, { "1TiB", 0, 1099511627776LL },
	{ "4K", 0, 4096 }, { "2M", 0, 2097152 }, { "1G", 0, 1073741824 },
	{ "1kB", 0, 1000 }, { "1MB", 0, 1000000 }, { "1GB", 0, 1000000000 },
	{ "3TB", 0, 3000000000000LL },
	{ "", -1, 0 }, { "KiB", -1, 0 }, { "1KB", -1, 0 }, { "1kib", -1, 0 }, { "10 MiB", -1, 0 },
	{ "-1", -1, 0 }, { "1.5MiB", -1, 0 }, { "8388608TiB", -1, 0 },
	{ "99999999999999999999", -1, 0 }, { "1KiBx", -1, 0 },
};

static void test_parse_duration(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof duration_cases / sizeof duration_cases[0]; i++) {
		const num_case_t *tc = &duration_cases[i];
		long long v = -42;
		int r = loom_config_parse_duration(tc->text, &v);
		if (r != tc->ret)
			fail_msg("duration '%s': returned %d", tc->text, r);
		if (r == 0 && v != tc->want)
			fail_msg("duration '%s': got %lld, want %lld", tc->text, v, tc->want);
		if (r != 0 && v != -42)
			fail_msg("duration '%s': wrote output on failure", tc->text);
	}
}

static void test_parse_size(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof size_cases / sizeof size_cases[0]; i++) {
		const num_case_t *tc = &size_cases[i];
		long long v = -42;
		int r = loom_config_parse_size(tc->text, &v);
		if (r != tc->ret)
			fail_msg("size '%s': returned %d", tc->text, r);
		if (r == 0 && v != tc->want)
			fail_msg("size '%s': got %lld, want %lld", tc->text, v, tc->want);
		if (r != 0 && v != -42)
			fail_msg("size '%s': wrote output on failure", tc->text);
	}
}

static void test_parse_bool(void **state)
{
	static const struct { const char *text; int ret; bool want; } cases[] = {
		{ "true", 0, true }, { "TRUE", 0, true }, { "yes", 0, true }, { "On", 0, true },
		{ "false", 0, false }, { "No", 0, false }, { "off", 0, false }, { "OFF", 0, false },
		{ "", -1, false }, { "1", -1, false }, { "y", -1, false }, { "truee", -1, false },
		{ " true", -1, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool v = !cases[i].want;
		int r = loom_config_parse_bool(cases[i].text, &v);
		if (r != cases[i].ret)
			fail_msg("bool '%s': returned %d", cases[i].text, r);
		if (r == 0 && v != cases[i].want)
			fail_msg("bool '%s': wrong value", cases[i].text);
	}
	assert_int_equal(loom_config_parse_bool(NULL, &(bool){ false }), -1);
}

/* ---- diag fields, defaults, describe, files, release -------------------- */

static void test_diag_fields(void **state)
{
	static const char yaml[] = "name: x\nbus:\n  heartbeat: \"fa\\nst\"\n  hearbeat: 1s\n";
	sample_cfg_t cfg;
	loom_cfg_diags_t diags = { NULL, 0 };
	(void)state;
	memset(&cfg, 0, sizeof cfg);

	assert_int_equal(loom_config_load_string("rel/loom.yaml", yaml, strlen(yaml),
	    &sample_table, &cfg, &diags), -1);
	assert_int_equal(diags.n, 2);
	assert_string_equal(diags.v[0].file, "rel/loom.yaml");
	assert_int_equal(diags.v[0].line, 3);
	assert_int_equal(diags.v[0].column, 14);
	assert_string_equal(diags.v[0].key, "bus.heartbeat");
	assert_string_equal(diags.v[0].value, "fa\nst");
	assert_string_equal(diags.v[0].text, "rel/loom.yaml:3:14: key 'bus.heartbeat': "
	    "bad value 'fa\\nst': expected a duration such as 500ms, 2s, 5m");
	assert_int_equal(diags.v[1].line, 4);
	assert_int_equal(diags.v[1].column, 3);
	assert_string_equal(diags.v[1].key, "bus.hearbeat");
	assert_null(diags.v[1].value);
	/* Relative paths resolve against rel/, as far as the load got. */
	assert_string_equal(cfg.data_dir, "rel/var/data");
	loom_cfg_diags_release(&diags);
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
}

typedef struct tiny_cfg {
	long long t;   /* a duration */
} tiny_cfg_t;

static void test_bad_default(void **state)
{
	static const loom_cfg_key_t keys[] = {
		{ .name = "t", .type = LOOM_CFG_DURATION, .offset = offsetof(tiny_cfg_t, t), .def = "5" },
		{ .name = NULL },
	};
	static const loom_cfg_table_t table = { .what = "tiny", .keys = keys };
	tiny_cfg_t cfg = { 0 };
	loom_cfg_diags_t diags = { NULL, 0 };
	(void)state;

	assert_int_equal(loom_config_load_string("t.yaml", "", 0, &table, &cfg, &diags), -1);
	assert_int_equal(diags.n, 1);
	assert_string_equal(diags.v[0].text, "t.yaml: bad default: key 't': bad value '5': "
	    "expected a duration with a unit such as 500ms or 2s");
	assert_int_equal(diags.v[0].line, 0);
	loom_cfg_diags_release(&diags);
	loom_config_release(&table, &cfg);
}

static void test_describe(void **state)
{
	static const char *const wanted[] = {
		"name (string, required, not empty): instance name\n",
		"data_dir (path, default var/data): state directory\n",
		"level (one of debug|info|warning|error, default info): log level\n",
		"tags (list of strings, default [core, ldap]): labels\n",
		"bus (section): the message bus\n",
		"  endpoint (endpoint, default ipc://run/bus.sock): where the broker listens\n",
		"  heartbeat (duration, from 100ms to 1m, default 2s): how often peers ping\n",
		"  liveness (integer, from 1 to 100, default 3): missed pings before a peer is dead\n",
		"  max_message (size, from 1KiB to 1GiB, default 1MiB): largest message\n",
		"  compress (boolean, default off): compress large messages\n",
		"sources (list of mappings, not empty): directory servers\n",
		"  url (string, required, not empty): directory server\n",
		"processes (mapping of NAME to mappings): processes to run\n",
		"  port (integer, from 1 to 65535, default 7000): where it listens\n",
	};
	loom_buf_t out = LOOM_BUF_INIT;
	(void)state;

	loom_config_describe(&sample_table, &out);
	for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
		if (strstr(loom_buf_cstr(&out), wanted[i]) == NULL)
			fail_msg("describe lacks '%s' in:\n%s", wanted[i], loom_buf_cstr(&out));
	}
	loom_buf_release(&out);
}

/* A scratch directory for the file tests, removed by the teardown. */
typedef struct scratch {
	char dir[64];     /* mkdtemp result */
	char file[128];   /* dir/loom.yaml */
} scratch_t;

static int scratch_setup(void **state)
{
	scratch_t *s = loom_calloc(1, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "/tmp/test_config.XXXXXX");
	if (mkdtemp(s->dir) == NULL) {
		free(s);
		return -1;
	}
	snprintf(s->file, sizeof s->file, "%s/loom.yaml", s->dir);
	*state = s;
	return 0;
}

static int scratch_teardown(void **state)
{
	scratch_t *s = *state;
	unlink(s->file);
	rmdir(s->dir);
	free(s);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void test_load_file_resolves_paths(void **state)
{
	scratch_t *s = *state;
	sample_cfg_t cfg;
	loom_cfg_diags_t diags = { NULL, 0 };
	memset(&cfg, 0, sizeof cfg);

	write_file(s->file, "name: x\ndata_dir: ./var\nbus:\n  endpoint: ipc://run/bus.sock\n"
	    "sources:\n  - {url: u, ca_file: certs/ca.pem}\n  - {url: v, ca_file: /abs/ca.pem}\n");
	assert_int_equal(loom_config_load_file(s->file, &sample_table, &cfg, &diags), 0);
	assert_int_equal(diags.n, 0);

	char *want = loom_sprintf("%s/var", s->dir);
	assert_string_equal(cfg.data_dir, want);
	free(want);
	want = loom_sprintf("ipc://%s/run/bus.sock", s->dir);
	assert_string_equal(cfg.bus.endpoint, want);
	free(want);
	const source_cfg_t *src = cfg.sources.v;
	want = loom_sprintf("%s/certs/ca.pem", s->dir);
	assert_string_equal(src[0].ca_file, want);
	free(want);
	assert_string_equal(src[1].ca_file, "/abs/ca.pem");
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
}

static void test_load_file_unreadable(void **state)
{
	scratch_t *s = *state;
	sample_cfg_t cfg;
	loom_cfg_diags_t diags = { NULL, 0 };
	memset(&cfg, 0, sizeof cfg);

	char *missing = loom_sprintf("%s/absent.yaml", s->dir);
	assert_int_equal(loom_config_load_file(missing, &sample_table, &cfg, &diags), -1);
	assert_int_equal(diags.n, 1);
	char *want = loom_sprintf("%s: cannot read: No such file or directory", missing);
	assert_string_equal(diags.v[0].text, want);
	assert_string_equal(diags.v[0].file, missing);
	free(want);
	free(missing);
	loom_cfg_diags_release(&diags);

	assert_int_equal(loom_config_load_file(s->dir, &sample_table, &cfg, &diags), -1);
	assert_int_equal(diags.n, 1);
	want = loom_sprintf("%s: cannot read: Is a directory", s->dir);
	assert_string_equal(diags.v[0].text, want);
	free(want);
	loom_cfg_diags_release(&diags);
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
}

/* loom_config_load_dir: every *.yaml in name order (dot files and other
 * names left out), every file's errors, a missing directory has no files,
 * one that cannot be listed is an error. */
static int load_sample(const char *path, void *element, loom_cfg_diags_t *diags)
{
	return loom_config_load_file(path, &sample_table, element, diags);
}

static void test_load_dir(void **state)
{
	scratch_t *s = *state;
	char *p[5] = {
		loom_sprintf("%s/b.yaml", s->dir), loom_sprintf("%s/a.yaml", s->dir),
		loom_sprintf("%s/.hidden.yaml", s->dir), loom_sprintf("%s/notes.txt", s->dir),
		loom_sprintf("%s/c.yaml", s->dir),
	};
	write_file(p[0], "name: bee\n");
	write_file(p[1], "name: ay\n");
	write_file(p[2], "name: [not, valid\n");
	write_file(p[3], "name: [not, valid\n");
	write_file(p[4], "nmae: cee\n");
	void *v;
	size_t n;
	loom_cfg_diags_t diags;
	assert_int_equal(loom_config_load_dir(s->dir, sizeof(sample_cfg_t), load_sample, &v, &n, &diags), -1);
	assert_int_equal(n, 3);
	sample_cfg_t *cfg = v;
	assert_string_equal(cfg[0].name, "ay");
	assert_string_equal(cfg[1].name, "bee");
	assert_true(diags.n >= 1); /* the unknown key, and what it leaves missing */
	bool unknown = false;
	for (size_t i = 0; i < diags.n; i++) {
		assert_string_equal(diags.v[i].file, p[4]);
		unknown = unknown || strstr(diags.v[i].text, "unknown key 'nmae'") != NULL;
	}
	assert_true(unknown);
	for (size_t i = 0; i < n; i++)
		loom_config_release(&sample_table, &cfg[i]);
	free(v);
	loom_cfg_diags_release(&diags);

	char *missing = loom_sprintf("%s/none", s->dir);
	assert_int_equal(loom_config_load_dir(missing, sizeof(sample_cfg_t), load_sample, &v, &n, &diags), 0);
	assert_int_equal(n, 0);
	assert_int_equal(diags.n, 0);
	free(v);
	assert_int_equal(loom_config_load_dir(p[3], sizeof(sample_cfg_t), load_sample, &v, &n, &diags), -1);
	assert_int_equal(n, 0);
	assert_int_equal(diags.n, 1);
	char *want = loom_sprintf("%s: cannot list: Not a directory", p[3]);
	assert_string_equal(diags.v[0].text, want);
	free(want);
	free(v);
	loom_cfg_diags_release(&diags);
	free(missing);
	for (size_t i = 0; i < 5; i++) {
		unlink(p[i]);
		free(p[i]);
	}
}

static void test_release_partial(void **state)
{
	/* The load stops being right half-way through: strings, lists and map
	 * elements already allocated must all be released. */
	static const char yaml[] =
	    "name: partial\n"
	    "tags: [a, b, c]\n"
	    "processes:\n"
	    "  engine:\n"
	    "    args: [x, y]\n"
	    "  pcns:\n"
	    "    host: h\n"
	    "    port: nope\n"
	    "sources:\n"
	    "  - url: u\n"
	    "    ca_file: ca.pem\n"
	    "  - 42\n";
	sample_cfg_t cfg;
	loom_cfg_diags_t diags = { NULL, 0 };
	(void)state;
	memset(&cfg, 0, sizeof cfg);

	assert_int_equal(loom_config_load_string(F, yaml, strlen(yaml), &sample_table, &cfg, &diags), -1);
	assert_int_equal(diags.n, 3);
	assert_int_equal(cfg.processes.n, 2);
	assert_int_equal(cfg.sources.n, 1);
	assert_int_equal(cfg.tags.n, 3);
	loom_cfg_diags_release(&diags);
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
	/* Releasing twice, or an untouched struct, is harmless. */
	loom_config_release(&sample_table, &cfg);
	assert_all_zero(&cfg, sizeof cfg);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_diag_fields),
		cmocka_unit_test(test_bad_default),
		cmocka_unit_test(test_describe),
		cmocka_unit_test_setup_teardown(test_load_file_resolves_paths, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_load_file_unreadable, scratch_setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_load_dir, scratch_setup, scratch_teardown),
		cmocka_unit_test(test_release_partial),
	};
	/* One cmocka test per document case, named by its label. */
	size_t ndoc = sizeof doc_cases / sizeof doc_cases[0];
	size_t nfixed = sizeof fixed / sizeof fixed[0];
	struct CMUnitTest *tests = loom_calloc(ndoc + nfixed, sizeof *tests);
	for (size_t i = 0; i < ndoc; i++) {
		tests[i].name = doc_cases[i].label;
		tests[i].test_func = test_document;
		tests[i].initial_state = (void *)&doc_cases[i];
	}
	memcpy(tests + ndoc, fixed, sizeof fixed);
	int failed = _cmocka_run_group_tests("test_config", tests, ndoc + nfixed, NULL, NULL);
	free(tests);
	return failed;
}
