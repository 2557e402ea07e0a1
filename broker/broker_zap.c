/* broker_zap.c - the ZAP handler (ZeroMQ RFC 27) behind CURVE: a client is
 * admitted only when its public key is in the allow-list, the *.pub files
 * of bus.keys_dir. Every refusal is logged with the key and address. */
#include "broker.h"
#include "loom_alloc.h"
#include "loom_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES 7

static void send_str(void *s, const char *str, int more)
{
	zmq_send(s, str, strlen(str), more ? ZMQ_SNDMORE : 0);
}

static int on_zap(loom_loop_t *loop, void *arg)
{
	(void)loop;
	broker_t *b = arg;
	for (;;) {
		zmq_msg_t f[ZAP_FRAMES + 1];
		int n = 0;
		bool more = true;
		while (more) {
			zmq_msg_t *m = &f[n < ZAP_FRAMES ? n : ZAP_FRAMES];
			zmq_msg_init(m);
			if (zmq_msg_recv(m, b->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
				zmq_msg_close(m);
				if (n == 0)
					return 0;
				break;
			}
			more = zmq_msg_more(m);
			if (n >= ZAP_FRAMES)
				zmq_msg_close(m); /* surplus frame: not part of the protocol */
			else
				n++;
		}
		const char *status = "400", *text = "key not in allow-list", *user = "";
		char z85[LOOM_Z85_KEY_LEN + 1] = "?";
		char mech[16] = "", addr[64] = "";
		if (n == ZAP_FRAMES) {
			snprintf(mech, sizeof mech, "%.*s", (int)zmq_msg_size(&f[5]), (char *)zmq_msg_data(&f[5]));
			snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]), (char *)zmq_msg_data(&f[3]));
			if (strcmp(mech, "CURVE") != 0)
				text = "only CURVE is accepted";
		}
		/* The credentials frame is the last one for CURVE. */
		if (n == ZAP_FRAMES && strcmp(mech, "CURVE") == 0 && zmq_msg_size(&f[6]) == LOOM_KEY_LEN) {
			const uint8_t *key = zmq_msg_data(&f[6]);
			loom_keys_z85(key, z85);
			const char *name = loom_keyring_find(b->allowed, key);
			if (name) {
				status = "200";
				text = "OK";
				user = name;
			}
		} else if (n == ZAP_FRAMES && strcmp(mech, "CURVE") == 0) {
			text = "malformed CURVE credentials";
		}
		if (strcmp(status, "200") == 0)
			loom_debug("admitted key=%s name=%s address=%s", z85, user, addr);
		else
			loom_warning("refused connection key=%s address=%s mechanism=%s reason=%s",
			    z85, addr[0] ? addr : "?", mech[0] ? mech : "?", loom_log_kv_quote(text));
		if (n >= 2) {
			send_str(b->zap, "1.0", 1);
			zmq_send(b->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
			send_str(b->zap, status, 1);
			send_str(b->zap, text, 1);
			send_str(b->zap, user, 1);
			zmq_send(b->zap, "", 0, 0);
		}
		for (int i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}

int broker_zap_start(broker_t *b, const char **error_r)
{
	const loom_deploy_t *cfg = loom_daemon_config(b->daemon);
	static char errbuf[512];
	char *err = NULL;
	if (loom_keyring_load(cfg->bus.keys_dir, &b->allowed, &err) < 0) {
		snprintf(errbuf, sizeof errbuf, "%s", err);
		free(err);
		*error_r = errbuf;
		return -1;
	}
	b->zap = zmq_socket(loom_daemon_zctx(b->daemon), ZMQ_REP);
	if (b->zap == NULL || zmq_bind(b->zap, ZAP_ENDPOINT) < 0) {
		snprintf(errbuf, sizeof errbuf, "cannot bind ZAP handler: %s", zmq_strerror(errno));
		*error_r = errbuf;
		return -1;
	}
	int linger = 0;
	zmq_setsockopt(b->zap, ZMQ_LINGER, &linger, sizeof linger);
	loom_loop_add_socket(loom_daemon_loop(b->daemon), b->zap, on_zap, b);
	loom_info("CURVE on allowed_keys=%zu keys_dir=%s", loom_keyring_count(b->allowed),
	    loom_log_kv_quote(cfg->bus.keys_dir));
	return 0;
}

void broker_zap_stop(broker_t *b)
{
	if (b->zap)
		zmq_close(b->zap);
	b->zap = NULL;
	loom_keyring_destroy(&b->allowed);
}
