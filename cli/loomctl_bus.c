/* loomctl_bus.c - `loomctl ping` and `loomctl services`. */
#include "loomctl.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_envelope.h"
#include "loom_keys.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One Ping; returns 0 with the round trip in *ret_us, -1 on failure. */
static int ping_once(ctl_t *ctl, const char *service, bool probe, const uint8_t *pub,
    Loom__Pong **ret_pong, Loom__Envelope **ret_env, long long *ret_us, bool *ret_probe_ok,
    const char **error_r)
{
	Loom__Ping ping = LOOM__PING__INIT;
	Loom__Sealed sealed;
	uint8_t secret[32], digest[32];
	uint8_t stamp[8];
	randombytes_buf(stamp, sizeof stamp);
	ping.payload.data = stamp;
	ping.payload.len = sizeof stamp;
	if (probe) {
		randombytes_buf(secret, sizeof secret);
		crypto_generichash(digest, sizeof digest, secret, sizeof secret, NULL, 0);
		loom_seal(pub, service, secret, sizeof secret, &sealed);
		sodium_memzero(secret, sizeof secret);
		ping.probe = &sealed;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	Loom__Envelope *env = NULL;
	int rc = loom_bus_request(ctl->bus, service, &ping.base, ctl->timeout_ms, &env, error_r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (probe)
		loom_sealed_release(&sealed);
	if (rc < 0)
		return -1;
	const char *err;
	Loom__Pong *pong = (Loom__Pong *)loom_envelope_body(env, &loom__pong__descriptor, &err);
	if (pong == NULL) {
		*error_r = "reply is not a Pong";
		loom_envelope_free(&env);
		return -1;
	}
	if (pong->payload.len != sizeof stamp || memcmp(pong->payload.data, stamp, sizeof stamp) != 0) {
		*error_r = "Pong does not echo our payload";
		protobuf_c_message_free_unpacked(&pong->base, NULL);
		loom_envelope_free(&env);
		return -1;
	}
	*ret_probe_ok = probe && pong->probe_digest.len == sizeof digest &&
	    memcmp(pong->probe_digest.data, digest, sizeof digest) == 0;
	*ret_us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
	*ret_pong = pong;
	*ret_env = env;
	return 0;
}

int ctl_ping(ctl_t *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "interval", required_argument, NULL, 'i' },
		{ "wait", required_argument, NULL, 'w' },
		{ "probe", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	long count = 1;
	long long interval = 1000, wait_ms = 0;
	bool probe = false;
	int c;
	while ((c = getopt_long(argc, argv, "n:i:", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1 || count > 100000000) {
				fprintf(stderr, "loomctl ping: bad --count '%s': expected a number from 1\n", optarg);
				return 2;
			}
			break;
		case 'i': if (ctl_parse_duration("--interval", optarg, &interval) < 0) return 2; break;
		case 'w': if (ctl_parse_duration("--wait", optarg, &wait_ms) < 0) return 2; break;
		case 'p': probe = true; break;
		default: return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "loomctl ping: expected one SERVICE (see loomctl ping --help)\n");
		return 2;
	}
	const char *service = argv[optind];
	if (ctl_load_config(ctl) < 0)
		return 1;
	uint8_t pub[LOOM_KEY_LEN];
	if (probe) {
		size_t slen = loom_addr_service_len(service, strlen(service));
		char *path = loom_sprintf("%s/%.*s.pub", ctl->cfg.bus.keys_dir, (int)slen, service);
		char *err = NULL;
		int rc = loom_keys_read_public(path, pub, &err);
		free(path);
		if (rc < 0) {
			fprintf(stderr, "loomctl ping: cannot probe: %s\n", err);
			free(err);
			return 1;
		}
	}
	int64_t give_up = loom_mono_ms() + wait_ms;
	long long saved_timeout = ctl->timeout_ms;
	if (wait_ms > 0) {
		/* Retry connecting and pinging until the first pong or the deadline. */
		while (ctl_connect(ctl) < 0) {
			if (loom_mono_ms() >= give_up)
				return 1;
			ctl_sleep_ms(100);
		}
	} else if (ctl_connect(ctl) < 0) {
		return 1;
	}
	long sent = 0, received = 0, probes_ok = 0;
	long long min = -1, max = 0, sum = 0;
	for (long i = 0; i < count; i++) {
		if (i > 0)
			ctl_sleep_ms(interval);
		Loom__Pong *pong = NULL;
		Loom__Envelope *env = NULL;
		long long us = 0;
		bool probe_ok = false;
		const char *err = NULL;
		int rc;
		for (;;) {
			if (wait_ms > 0 && received == 0) {
				long long left = give_up - loom_mono_ms();
				ctl->timeout_ms = left < 200 ? (left > 0 ? left : 1) : (saved_timeout < left ? saved_timeout : left);
			}
			sent++;
			rc = ping_once(ctl, service, probe, pub, &pong, &env, &us, &probe_ok, &err);
			if (rc == 0 || wait_ms <= 0 || received > 0 || loom_mono_ms() >= give_up)
				break;
			sent--; /* attempts while waiting for the service do not count as losses */
			ctl_sleep_ms(100);
		}
		ctl->timeout_ms = saved_timeout;
		if (rc < 0) {
			if (ctl->json) {
				loom_buf_t b = LOOM_BUF_INIT;
				loom_buf_adds(&b, "{\"service\":");
				loom_buf_add_json_str(&b, service, strlen(service));
				loom_buf_adds(&b, ",\"error\":");
				loom_buf_add_json_str(&b, err, strlen(err));
				loom_buf_adds(&b, "}\n");
				fputs(b.data, stdout);
				loom_buf_release(&b);
			} else
				fprintf(stderr, "loomctl ping: %s\n", err);
			continue;
		}
		received++;
		probes_ok += probe_ok;
		sum += us;
		if (min < 0 || us < min)
			min = us;
		if (us > max)
			max = us;
		if (ctl->json) {
			loom_buf_t b = LOOM_BUF_INIT;
			loom_buf_adds(&b, "{\"service\":");
			loom_buf_add_json_str(&b, service, strlen(service));
			loom_buf_adds(&b, ",\"instance\":");
			loom_buf_add_json_str(&b, env->from, strlen(env->from));
			loom_buf_adds(&b, ",\"process\":");
			loom_buf_add_json_str(&b, pong->process, strlen(pong->process));
			loom_buf_printf(&b, ",\"pid\":%u,\"uptime_ms\":%lld,\"rtt_us\":%lld", pong->pid,
			    (long long)pong->uptime_ms, us);
			if (probe)
				loom_buf_printf(&b, ",\"probe\":\"%s\"", probe_ok ? "ok" : "failed");
			loom_buf_adds(&b, "}\n");
			fputs(b.data, stdout);
			loom_buf_release(&b);
		} else {
			printf("pong from %s (%s pid %u) time=%.3f ms", env->from, pong->process, pong->pid, us / 1000.0);
			if (probe)
				printf(" probe=%s%s%s", probe_ok ? "ok" : "FAILED",
				    pong->probe_error[0] ? ": " : "", pong->probe_error);
			printf("\n");
		}
		fflush(stdout);
		protobuf_c_message_free_unpacked(&pong->base, NULL);
		loom_envelope_free(&env);
	}
	if (count > 1) {
		double loss = sent ? 100.0 * (double)(sent - received) / (double)sent : 0;
		if (ctl->json)
			printf("{\"sent\":%ld,\"received\":%ld,\"loss_pct\":%.1f,\"min_us\":%lld,\"avg_us\":%lld,\"max_us\":%lld}\n",
			    sent, received, loss, min < 0 ? 0 : min, received ? sum / received : 0, max);
		else
			printf("%ld sent, %ld received, %.1f%% lost, rtt min/avg/max = %.3f/%.3f/%.3f ms\n", sent,
			    received, loss, (min < 0 ? 0 : min) / 1000.0, received ? (double)sum / received / 1000.0 : 0,
			    max / 1000.0);
	}
	if (received == 0)
		return 1;
	if (probe && probes_ok != received)
		return 1;
	return 0;
}

Loom__ServicesReply *ctl_list_services(ctl_t *ctl, const char *what, const char *service, Loom__Envelope **ret_env)
{
	Loom__ServicesRequest rq = LOOM__SERVICES_REQUEST__INIT;
	rq.service = (char *)service;
	const char *err;
	if (loom_bus_request(ctl->bus, LOOM_BROKER_ADDR, &rq.base, ctl->timeout_ms, ret_env, &err) < 0) {
		if (what != NULL)
			fprintf(stderr, "loomctl %s: %s\n", what, err);
		return NULL;
	}
	Loom__ServicesReply *r = (Loom__ServicesReply *)loom_envelope_body(*ret_env,
	    &loom__services_reply__descriptor, &err);
	if (r == NULL) {
		if (what != NULL)
			fprintf(stderr, "loomctl %s: broker reply: %s\n", what, err);
		loom_envelope_free(ret_env);
	}
	return r;
}

int ctl_services(ctl_t *ctl, int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "loomctl services: expected at most one SERVICE\n");
		return 2;
	}
	if (ctl_connect(ctl) < 0)
		return 1;
	Loom__Envelope *env = NULL;
	Loom__ServicesReply *r = ctl_list_services(ctl, "services", argc == 2 ? argv[1] : "", &env);
	if (r == NULL)
		return 1;
	const char *self = loom_bus_instance(ctl->bus);
	loom_buf_t b = LOOM_BUF_INIT;
	if (ctl->json) {
		loom_buf_adds(&b, "[");
		bool first = true;
		for (size_t i = 0; i < r->n_instances; i++) {
			Loom__ServiceInstance *s = r->instances[i];
			if (strcmp(s->instance, self) == 0)
				continue;
			loom_buf_adds(&b, first ? "\n" : ",\n");
			first = false;
			loom_buf_adds(&b, "  {\"service\":");
			loom_buf_add_json_str(&b, s->service, strlen(s->service));
			loom_buf_adds(&b, ",\"instance\":");
			loom_buf_add_json_str(&b, s->instance, strlen(s->instance));
			loom_buf_adds(&b, ",\"process\":");
			loom_buf_add_json_str(&b, s->process, strlen(s->process));
			loom_buf_printf(&b, ",\"pid\":%u,\"host\":", s->pid);
			loom_buf_add_json_str(&b, s->host, strlen(s->host));
			loom_buf_printf(&b, ",\"last_seen_ms\":%lld,\"msgs_in\":%llu,\"msgs_out\":%llu}",
			    (long long)s->last_seen_ms, (unsigned long long)s->msgs_in, (unsigned long long)s->msgs_out);
		}
		loom_buf_adds(&b, first ? "]\n" : "\n]\n");
	} else {
		loom_buf_printf(&b, "%-16s %-26s %-16s %7s %-16s %6s %9s %9s\n", "SERVICE", "INSTANCE", "PROCESS",
		    "PID", "HOST", "SEEN", "IN", "OUT");
		for (size_t i = 0; i < r->n_instances; i++) {
			Loom__ServiceInstance *s = r->instances[i];
			if (strcmp(s->instance, self) == 0)
				continue;
			loom_buf_printf(&b, "%-16s %-26s %-16s %7u %-16s %5.1fs %9llu %9llu\n", s->service, s->instance,
			    s->process, s->pid, s->host, s->last_seen_ms / 1000.0, (unsigned long long)s->msgs_in,
			    (unsigned long long)s->msgs_out);
		}
		loom_buf_printf(&b, "broker up %.1fs, routed %llu, events %llu, dropped %llu\n",
		    r->broker_uptime_ms / 1000.0, (unsigned long long)r->routed, (unsigned long long)r->events,
		    (unsigned long long)r->dropped);
	}
	fputs(loom_buf_cstr(&b), stdout);
	loom_buf_release(&b);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	loom_envelope_free(&env);
	return 0;
}
