/* loom_tap.c - prints the bus live: every frame the broker moves, decoded.
 *
 *   2026-11-21T03:40:01.123456Z D loomctl@9a1b2c3d -> echo@77e1f0aa loom.Ping id=1f2e3d4c payload=0102
 *
 * One line per frame (or one JSON object with --json). Fields of type
 * loom.Sealed print as <sealed>: the tap never shows a secret, and could not
 * open one anyway since it holds no process's key.
 *
 * --raw FILE also appends every batch the broker mirrors, byte for byte as it
 * came (a 4-byte big-endian length, then the batch), unfiltered: a capture of
 * the whole bus for audits (tests/integration/secrets_audit.sh searches it).
 */
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_daemon.h"
#include "loom_envelope.h"
#include "loom_log.h"
#include "loom_pbfmt.h"
#include "loom_tapwire.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct tap_opts {
	const char *config_path;       /* --config */
	bool json;                     /* --json */
	const char *type;              /* --type filter */
	const char *from;              /* --from filter */
	const char *to;                /* --to filter */
	const char *topic;             /* --topic: events with this prefix only */
	long count;                    /* --count: exit after this many lines (0: never) */
	const char *key_name;          /* --key */
	const char *raw_path;          /* --raw: append every batch to this file */
} tap_opts_t;

static bool stopping; /* the reader went away */

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: loom-tap [options]\n"
	    "Print every message on the Loom bus as it passes the broker, decoded; secrets show as <sealed>.\n\n"
	    "options:\n"
	    "  -c, --config FILE   deployment file (default $LOOM_CONFIG or config/loom.yaml)\n"
	    "      --json          one JSON object per line\n"
	    "      --type TYPE     only this message type (loom.Ping or just Ping)\n"
	    "      --from NAME     only from this service or instance\n"
	    "      --to NAME       only to this service or instance\n"
	    "      --topic PREFIX  only events whose topic starts with PREFIX\n"
	    "  -n, --count N       exit after printing N messages\n"
	    "      --key NAME      key pair to use when the bus uses CURVE (default tap)\n"
	    "      --raw FILE      also append every frame mirrored, unfiltered and undecoded, to FILE\n"
	    "                      (4-byte big-endian length + the broker's tap batch)\n"
	    "  -h, --help          this help\n\n"
	    "kinds: D delivered, U undeliverable, E event\n");
}

/* NAME matches a service "svc" or instance "svc@id" address. */
static bool addr_match(const char *want, const char *addr)
{
	if (want == NULL)
		return true;
	if (strcmp(want, addr) == 0)
		return true;
	size_t n = loom_addr_service_len(addr, strlen(addr));
	return strlen(want) == n && strncmp(want, addr, n) == 0;
}

static bool type_match(const char *want, const char *type)
{
	if (want == NULL)
		return true;
	if (strcmp(want, type) == 0)
		return true;
	const char *dot = strrchr(type, '.');
	return dot && strcmp(want, dot + 1) == 0;
}

static void render(const tap_opts_t *o, char kind, const char *detail, size_t dlen,
    const Loom__Envelope *env, loom_buf_t *out)
{
	time_t secs = (time_t)(env->sent_at / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char stamp[32];
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	const char *err = NULL;
	loom_buf_t body = LOOM_BUF_INIT;
	int rc = loom_pbfmt_body(&body, env->type, env->body.data, env->body.len, o->json, &err);
	if (o->json) {
		loom_buf_printf(out, "{\"time\":\"%s.%06dZ\",\"kind\":\"%s\"", stamp, (int)(env->sent_at % 1000000),
		    kind == LOOM_TAP_EVENT ? "event" : kind == LOOM_TAP_UNDELIVERED ? "undelivered" : "direct");
		loom_buf_adds(out, ",\"from\":");
		loom_buf_add_json_str(out, env->from, strlen(env->from));
		loom_buf_adds(out, ",\"to\":");
		loom_buf_add_json_str(out, env->to, strlen(env->to));
		loom_buf_adds(out, kind == LOOM_TAP_EVENT ? ",\"topic\":" :
		    kind == LOOM_TAP_UNDELIVERED ? ",\"reason\":" : ",\"delivered_to\":");
		loom_buf_add_json_str(out, detail, dlen);
		loom_buf_adds(out, ",\"type\":");
		loom_buf_add_json_str(out, env->type, strlen(env->type));
		loom_buf_adds(out, ",\"msg_id\":\"");
		loom_msgid_format(out, env->msg_id.data, env->msg_id.len);
		loom_buf_addc(out, '"');
		if (env->correlation_id.len) {
			loom_buf_adds(out, ",\"correlation_id\":\"");
			loom_msgid_format(out, env->correlation_id.data, env->correlation_id.len);
			loom_buf_addc(out, '"');
		}
		if (rc == 0) {
			loom_buf_adds(out, ",\"body\":");
			loom_buf_add(out, body.data, body.len);
		} else {
			loom_buf_adds(out, ",\"body_error\":");
			loom_buf_add_json_str(out, err, strlen(err));
		}
		loom_buf_adds(out, "}\n");
	} else {
		loom_buf_printf(out, "%s.%06dZ %c %s ", stamp, (int)(env->sent_at % 1000000), kind, env->from);
		if (kind == LOOM_TAP_EVENT) {
			loom_buf_adds(out, "=> [");
			loom_buf_add(out, detail, dlen);
			loom_buf_adds(out, "]");
		} else if (kind == LOOM_TAP_UNDELIVERED) {
			loom_buf_printf(out, "-> %s (undelivered: %.*s)", env->to, (int)dlen, detail);
		} else {
			loom_buf_printf(out, "-> %.*s", (int)dlen, detail);
		}
		loom_buf_printf(out, " %s id=", env->type);
		loom_buf_add_hex(out, env->msg_id.data, env->msg_id.len < 4 ? env->msg_id.len : 4);
		if (env->correlation_id.len) {
			loom_buf_adds(out, " re=");
			loom_buf_add_hex(out, env->correlation_id.data, 4);
		}
		if (rc == 0) {
			if (body.len) {
				loom_buf_addc(out, ' ');
				loom_buf_add(out, body.data, body.len);
			}
		} else {
			loom_buf_printf(out, " <%s>", err);
		}
		loom_buf_addc(out, '\n');
	}
	loom_buf_release(&body);
}

int main(int argc, char **argv)
{
	tap_opts_t o = { .config_path = loom_deploy_default_path(), .key_name = "tap" };
	loom_log_init("loom-tap");
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' },
		{ "type", required_argument, NULL, 't' }, { "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 'T' }, { "topic", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' }, { "key", required_argument, NULL, 'k' },
		{ "raw", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:n:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case 'j': o.json = true; break;
		case 't': o.type = optarg; break;
		case 'f': o.from = optarg; break;
		case 'T': o.to = optarg; break;
		case 'p': o.topic = optarg; break;
		case 'k': o.key_name = optarg; break;
		case 'r': o.raw_path = optarg; break;
		case 'n':
			o.count = strtol(optarg, &end, 10);
			if (*end || o.count < 1) {
				fprintf(stderr, "loom-tap: bad --count '%s': expected a number from 1\n", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "loom-tap: see loom-tap --help\n"); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "loom-tap: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	FILE *raw = NULL;
	if (o.raw_path && (raw = fopen(o.raw_path, "ab")) == NULL) {
		fprintf(stderr, "loom-tap: cannot open --raw file '%s': %s\n", o.raw_path, strerror(errno));
		return 1;
	}
	loom_deploy_t cfg;
	memset(&cfg, 0, sizeof cfg);
	loom_cfg_diags_t diags;
	if (loom_deploy_load(o.config_path, &cfg, &diags) < 0) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "%s\n", diags.v[i].text);
		loom_cfg_diags_release(&diags);
		loom_deploy_release(&cfg);
		return 1;
	}
	loom_cfg_diags_release(&diags);
	loom_keypair_t kp;
	bool have = false;
	uint8_t server[LOOM_KEY_LEN];
	char *kerr = NULL;
	if (loom_daemon_load_keys(&cfg, o.key_name, cfg.bus.curve, &kp, &have, server, &kerr) < 0) {
		fprintf(stderr, "loom-tap: %s\n", kerr);
		free(kerr);
		loom_deploy_release(&cfg);
		return 1;
	}
	void *zctx = zmq_ctx_new();
	void *sub = zmq_socket(zctx, ZMQ_SUB);
	int zero = 0;
	zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
	if (cfg.bus.curve) {
		zmq_setsockopt(sub, ZMQ_CURVE_SERVERKEY, server, LOOM_KEY_LEN);
		zmq_setsockopt(sub, ZMQ_CURVE_PUBLICKEY, kp.pub, LOOM_KEY_LEN);
		zmq_setsockopt(sub, ZMQ_CURVE_SECRETKEY, kp.sec, LOOM_KEY_LEN);
	}
	loom_keypair_wipe(&kp);
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	int status = 0;
	if (zmq_connect(sub, cfg.bus.tap) < 0) {
		fprintf(stderr, "loom-tap: cannot connect to '%s': %s\n", cfg.bus.tap, zmq_strerror(errno));
		status = 1;
		goto out;
	}
	/* Signals arrive on a descriptor polled with the socket: no window
	 * between checking for a stop and blocking in a receive. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	fprintf(stderr, "loom-tap: listening on %s\n", cfg.bus.tap);
	long printed = 0;
	loom_buf_t line = LOOM_BUF_INIT;
	while (!stopping) {
		zmq_pollitem_t items[2] = { { .socket = sub, .events = ZMQ_POLLIN },
			{ .fd = sigfd, .events = ZMQ_POLLIN } };
		if (zmq_poll(items, sigfd >= 0 ? 2 : 1, sigfd >= 0 ? -1 : 200) < 0 && errno != EINTR) {
			fprintf(stderr, "loom-tap: poll failed: %s\n", zmq_strerror(errno));
			status = 1;
			break;
		}
		if (items[1].revents & ZMQ_POLLIN)
			break;
		if (!(items[0].revents & ZMQ_POLLIN))
			continue;
		zmq_msg_t batch;
		zmq_msg_init(&batch);
		if (zmq_msg_recv(&batch, sub, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&batch);
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "loom-tap: receive failed: %s\n", zmq_strerror(errno));
			status = 1;
			break;
		}
		const uint8_t *data = zmq_msg_data(&batch);
		size_t len = zmq_msg_size(&batch);
		if (raw) {
			uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
			if (fwrite(be, 1, 4, raw) != 4 || fwrite(data, 1, len, raw) != len || fflush(raw) != 0) {
				fprintf(stderr, "loom-tap: cannot write --raw file '%s': %s\n", o.raw_path, strerror(errno));
				status = 1;
				zmq_msg_close(&batch);
				break;
			}
		}
		if (len < 1 || data[0] != LOOM_TAP_VERSION || zmq_msg_more(&batch)) {
			fprintf(stderr, "loom-tap: the broker speaks another tap format (version %d): use the loom-tap of the same release\n",
			    len ? data[0] : -1);
			zmq_msg_close(&batch);
			continue;
		}
		size_t pos = 1;
		loom_tap_record_t rec;
		int rc = 0;
		while (!stopping && (rc = loom_tapwire_next(data, len, &pos, &rec)) == 1) {
			char detail[LOOM_ADDR_MAX + 64];
			size_t dlen = rec.detail_len < sizeof detail - 1 ? rec.detail_len : sizeof detail - 1;
			memcpy(detail, rec.detail, dlen);
			detail[dlen] = '\0';
			if (o.topic && (rec.kind != LOOM_TAP_EVENT || strncmp(detail, o.topic, strlen(o.topic)) != 0))
				continue;
			const char *err;
			Loom__Envelope *env = loom_envelope_unpack(rec.env, rec.env_len, &err);
			if (env == NULL) {
				fprintf(stderr, "loom-tap: undecodable frame (%s)\n", err);
			} else if (type_match(o.type, env->type) && addr_match(o.from, env->from) &&
			    (addr_match(o.to, env->to) || (rec.kind == LOOM_TAP_DIRECT && o.to && addr_match(o.to, detail)))) {
				loom_buf_reset(&line);
				render(&o, rec.kind, detail, dlen, env, &line);
				if (fwrite(line.data, 1, line.len, stdout) != line.len)
					stopping = 1; /* reader went away */
				printed++;
				if (o.count && printed >= o.count)
					stopping = 1;
			}
			loom_envelope_free(&env);
		}
		if (rc < 0)
			fprintf(stderr, "loom-tap: malformed tap batch from the broker\n");
		zmq_msg_close(&batch);
	}
	loom_buf_release(&line);
	if (sigfd >= 0)
		close(sigfd);
out:
	zmq_close(sub);
	zmq_ctx_term(zctx);
	loom_deploy_release(&cfg);
	if (raw)
		fclose(raw);
	return status;
}
