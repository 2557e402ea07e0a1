/* loom_testsvc.c - a service for the bus tests, built on the same daemon
 * skeleton as every Loom process: it registers under --service, answers
 * Ping (through the bus client, like every process), echoes any other
 * directed message back to its sender, and can publish and log events:
 *
 *   --publish TOPIC    publish a loom.Heartbeat under TOPIC every --every
 *   --subscribe PREFIX log every event whose topic starts with PREFIX
 */
#include "loom_alloc.h"
#include "loom_daemon.h"
#include "loom_log.h"
#include "loom_types.h"

#include <stdlib.h>
#include <string.h>

static const char *publish_topic;
static const char *subscribe_prefix;
static long long every_ms = 200;
static unsigned long long published;

static int set_publish(loom_daemon_t *d, const char *v, const char **e) { (void)d; (void)e; publish_topic = v; return 0; }
static int set_subscribe(loom_daemon_t *d, const char *v, const char **e) { (void)d; (void)e; subscribe_prefix = v; return 0; }
static int set_every(loom_daemon_t *d, const char *v, const char **e)
{
	(void)d;
	if (loom_config_parse_duration(v, &every_ms) < 0 || every_ms <= 0) {
		*e = "expected a duration such as 200ms";
		return -1;
	}
	return 0;
}

static void on_message(loom_daemon_t *d, Loom__Envelope *env)
{
	const char *err;
	if (env->correlation_id.len == 0) {
		/* Echo: same type, same body, back to the sender. */
		const ProtobufCMessageDescriptor *desc = loom_types_find(env->type);
		ProtobufCMessage *m = desc ? protobuf_c_message_unpack(desc, NULL, env->body.len, env->body.data) : NULL;
		if (m == NULL) {
			loom_warning("dropped message from=%s type=%s reason=%s", env->from, env->type,
			    desc ? "body does not decode" : "unknown type");
			(void)loom_bus_reply_error(loom_daemon_bus(d), env, desc ? LOOM__ERROR__CODE__MALFORMED
			    : LOOM__ERROR__CODE__UNKNOWN_TYPE, false, "cannot echo", &err);
		} else {
			if (loom_bus_reply(loom_daemon_bus(d), env, m, &err) < 0)
				loom_warning("cannot echo to from=%s: %s", env->from, err);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
	loom_envelope_free(&env);
}

static void on_event(loom_daemon_t *d, char *topic, Loom__Envelope *env)
{
	(void)d;
	loom_info("event topic=%s from=%s type=%s", topic, env->from, env->type);
	free(topic);
	loom_envelope_free(&env);
}

static int on_publish(loom_loop_t *loop, void *arg)
{
	(void)loop;
	loom_daemon_t *d = arg;
	Loom__Heartbeat hb = LOOM__HEARTBEAT__INIT;
	hb.seq = ++published;
	const char *err;
	if (loom_bus_publish(loom_daemon_bus(d), publish_topic, &hb.base, &err) < 0)
		loom_warning("cannot publish topic=%s: %s", publish_topic, err);
	return 0;
}

static int start(loom_daemon_t *d, const char **error_r)
{
	if (subscribe_prefix && loom_bus_subscribe(loom_daemon_bus(d), subscribe_prefix, error_r) < 0)
		return -1;
	if (publish_topic)
		loom_loop_add_timer(loom_daemon_loop(d), every_ms, 0, on_publish, d);
	return 0;
}

static const loom_flag_t flags[] = {
	{ "publish", "TOPIC", "publish a Heartbeat event under TOPIC every --every", set_publish },
	{ "subscribe", "PREFIX", "log events whose topic starts with PREFIX", set_subscribe },
	{ "every", "DURATION", "publishing interval (default 200ms)", set_every },
	{ NULL, NULL, NULL, NULL },
};

static loom_daemon_def_t def = {
	.process = "loom-testsvc",
	.summary = "Test service for the bus tests: echoes messages, publishes and logs events.",
	.default_service = "echo",
	.bus_client = true,
	.flags = flags,
	.start = start,
	.on_message = on_message,
	.on_event = on_event,
};

int main(int argc, char **argv)
{
	/* Subscribing needs the skeleton to open a SUB socket: it does so when
	 * on_event is set, which it always is here. */
	return loom_daemon_main(&def, argc, argv);
}
