/* workflow_mail.c - e-mail of workflows through the SMTP relay of
 * loom.yaml `mail:` (docs/workflows.md, "E-mail").
 *
 * A message is a row of the mail family (MailMessage), written in the
 * batch of the workflow step that sends it: a step that did not happen
 * sends nothing, and one that did has its mail in the outbox even after a
 * kill -9. One sender thread speaks SMTP to the relay (blocking, with the
 * configured timeout), one message at a time; every store access stays on
 * the service's thread, which hands messages over and takes results back
 * under a mutex: a message sent is deleted; one that failed is tried again
 * after mail.retry until mail.give_up has passed since it was queued, then
 * dropped with an error in the log. Without mail.relay, messages are
 * logged, not stored. Delivery is at least once: a kill -9 between the
 * relay's 250 and the row's deletion sends it again.
 *
 * No TLS and no authentication: the relay is a trusted local MTA (as a
 * Postfix null client would be). */
#include "workflow_run.h"
#include "loom_alloc.h"
#include "loom_buf.h"
#include "loom_log.h"
#include "loom_envelope.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct mail_state {
	uint64_t next_seq;             /* the next message's key */
	Loom__MailMessage **staged;    /* queued in a batch not written yet */
	size_t nstaged;
	Loom__MailMessage **out;       /* the outbox, in memory */
	size_t nout;
	/* the sender thread */
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	Loom__MailMessage *job;        /* handed to the thread (borrowed from out), or NULL */
	bool busy;                     /* the thread works on job */
	bool done;                     /* a result waits */
	bool ok;                       /* ... it was sent */
	char *error;                   /* ... or why not */
	bool stop;                     /* the thread ends */
	/* settings (copied: the thread reads them) */
	char *relay, *from, *helo;
	long long timeout_ms, retry_ms, give_up_ms;
} mail_state_t;

static mail_state_t M;

/* ---- SMTP (the sender thread) ---- */

typedef struct conn {
	int fd;
	char buf[4096];
	size_t len;
} conn_t;

/* Reads one reply (all its lines); returns its code, or -1 with *err. */
static int smtp_reply(conn_t *c, char **err)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		while (nl) {
			size_t ll = (size_t)(nl - c->buf) + 1;
			char line[4096];
			memcpy(line, c->buf, ll);
			line[ll] = '\0';
			memmove(c->buf, c->buf + ll, c->len - ll);
			c->len -= ll;
			if (ll >= 4 && line[3] == '-') {
				nl = memchr(c->buf, '\n', c->len);
				continue; /* more lines of this reply */
			}
			if (ll < 4 || line[0] < '1' || line[0] > '5') {
				*err = loom_sprintf("the relay said '%.*s', which is no SMTP reply", (int)strcspn(line, "\r\n"), line);
				return -1;
			}
			int code = atoi(line);
			if (code >= 400) {
				*err = loom_sprintf("the relay said '%.*s'", (int)strcspn(line, "\r\n"), line);
				return -code;
			}
			return code;
		}
		if (c->len == sizeof c->buf) {
			*err = loom_strdup("the relay's reply line is too long");
			return -1;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
		if (n <= 0) {
			*err = loom_sprintf("the relay %s", n == 0 ? "closed the connection" : errno == EAGAIN ||
			    errno == EWOULDBLOCK ? "did not answer in time" : strerror(errno));
			return -1;
		}
		c->len += (size_t)n;
	}
}

static int smtp_send_all(conn_t *c, const char *s, size_t n, char **err)
{
	while (n) {
		ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
		if (k <= 0) {
			*err = loom_sprintf("cannot write to the relay: %s", strerror(errno));
			return -1;
		}
		s += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Sends a command and wants a reply code in [lo, hi]. */
static int smtp_cmd(conn_t *c, const char *cmd, int lo, int hi, char **err)
{
	if (cmd && smtp_send_all(c, cmd, strlen(cmd), err) < 0)
		return -1;
	int code = smtp_reply(c, err);
	if (code < 0)
		return -1;
	if (code < lo || code > hi) {
		*err = loom_sprintf("the relay answered %d to %.*s", code, cmd ? (int)strcspn(cmd, "\r\n") : 8,
		    cmd ? cmd : "greeting");
		return -1;
	}
	return code;
}

static int smtp_connect(const char *relay, long long timeout_ms, char **err)
{
	char *host, *port;
	if (relay[0] == '[') {
		const char *e = strchr(relay, ']');
		if (e == NULL || e[1] != ':') {
			*err = loom_sprintf("mail.relay '%s': expected HOST:PORT or [IPV6]:PORT", relay);
			return -1;
		}
		host = loom_strndup(relay + 1, (size_t)(e - relay - 1));
		port = loom_strdup(e + 2);
	} else {
		const char *e = strrchr(relay, ':');
		host = e ? loom_strndup(relay, (size_t)(e - relay)) : loom_strdup(relay);
		port = loom_strdup(e ? e + 1 : "25");
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int g = getaddrinfo(host, port, &hints, &res);
	free(host);
	free(port);
	if (g != 0) {
		*err = loom_sprintf("mail.relay '%s': %s", relay, gai_strerror(g));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
			*err = loom_sprintf("cannot connect to the relay %s: %s", relay, strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		free(*err);
		*err = NULL;
	}
	return fd;
}

/* One line for a header: no CR or LF (no header injection). */
static void header(loom_buf_t *b, const char *name, const char *value)
{
	loom_buf_printf(b, "%s: ", name);
	for (const char *p = value; *p; p++)
		loom_buf_addc(b, *p == '\r' || *p == '\n' ? ' ' : *p);
	loom_buf_adds(b, "\r\n");
}

static int smtp_send(const Loom__MailMessage *m, char **err)
{
	*err = NULL;
	int fd = smtp_connect(M.relay, M.timeout_ms, err);
	if (fd < 0)
		return -1;
	conn_t c = { .fd = fd };
	char *cmd = NULL;
	int rc = -1;
	if (smtp_cmd(&c, NULL, 220, 220, err) < 0)
		goto out;
	cmd = loom_sprintf("EHLO %s\r\n", M.helo);
	if (smtp_cmd(&c, cmd, 250, 250, err) < 0) {
		free(*err);
		*err = NULL;
		free(cmd);
		cmd = loom_sprintf("HELO %s\r\n", M.helo);
		if (smtp_cmd(&c, cmd, 250, 250, err) < 0)
			goto out;
	}
	free(cmd);
	cmd = loom_sprintf("MAIL FROM:<%s>\r\n", M.from);
	if (smtp_cmd(&c, cmd, 250, 250, err) < 0)
		goto out;
	for (size_t i = 0; i < m->n_to; i++) {
		free(cmd);
		cmd = loom_sprintf("RCPT TO:<%s>\r\n", m->to[i]);
		if (smtp_cmd(&c, cmd, 250, 251, err) < 0)
			goto out;
	}
	if (smtp_cmd(&c, "DATA\r\n", 354, 354, err) < 0)
		goto out;
	loom_buf_t b = LOOM_BUF_INIT;
	header(&b, "From", M.from);
	loom_buf_t to = LOOM_BUF_INIT;
	for (size_t i = 0; i < m->n_to; i++)
		loom_buf_printf(&to, "%s%s", i ? ", " : "", m->to[i]);
	header(&b, "To", loom_buf_cstr(&to));
	loom_buf_release(&to);
	header(&b, "Subject", m->subject);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	header(&b, "Date", date);
	char mid[128];
	snprintf(mid, sizeof mid, "<loom.%llu.%lld@%s>", (unsigned long long)m->seq, (long long)m->created_at, M.helo);
	header(&b, "Message-ID", mid);
	header(&b, "MIME-Version", "1.0");
	header(&b, "Content-Type", "text/plain; charset=UTF-8");
	header(&b, "Content-Transfer-Encoding", "8bit");
	if (m->request_id[0])
		header(&b, "X-Loom-Request", m->request_id);
	loom_buf_adds(&b, "\r\n");
	/* the body: CRLF line ends, a leading dot doubled */
	const char *p = m->body;
	bool bol = true;
	for (; *p; p++) {
		if (bol && *p == '.')
			loom_buf_addc(&b, '.');
		if (*p == '\n') {
			loom_buf_adds(&b, "\r\n");
			bol = true;
			continue;
		}
		if (*p == '\r')
			continue;
		loom_buf_addc(&b, *p);
		bol = false;
	}
	if (!bol)
		loom_buf_adds(&b, "\r\n");
	loom_buf_adds(&b, ".\r\n");
	int s = smtp_send_all(&c, b.data, b.len, err);
	loom_buf_release(&b);
	if (s < 0 || smtp_cmd(&c, NULL, 250, 250, err) < 0)
		goto out;
	rc = 0;
	(void)smtp_send_all(&c, "QUIT\r\n", 6, &cmd); /* the message is taken: a QUIT that fails does not matter */
out:
	free(cmd);
	close(fd);
	return rc;
}

static void *sender(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&M.mu);
	for (;;) {
		while (!M.stop && (M.job == NULL || M.done))
			pthread_cond_wait(&M.cv, &M.mu);
		if (M.stop)
			break;
		const Loom__MailMessage *m = M.job;
		M.busy = true;
		pthread_mutex_unlock(&M.mu);
		char *err = NULL;
		int rc = smtp_send(m, &err);
		pthread_mutex_lock(&M.mu);
		M.busy = false;
		M.done = true;
		M.ok = rc == 0;
		free(M.error);
		M.error = err;
	}
	pthread_mutex_unlock(&M.mu);
	return NULL;
}

/* ---- the outbox (the service's thread) ---- */

static void put_row(wf_t *w, loom_batch_t *b, const Loom__MailMessage *m)
{
	unsigned char k[8];
	loom_store_put_u64be(k, m->seq);
	size_t len = loom__mail_message__get_packed_size(m);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__mail_message__pack(m, buf);
	loom_batch_put(b, w->cf_mail, k, 8, buf, len);
	free(buf);
}

static Loom__MailMessage *dup_msg(const Loom__MailMessage *m)
{
	size_t len = loom__mail_message__get_packed_size(m);
	uint8_t *buf = loom_malloc(len ? len : 1);
	loom__mail_message__pack(m, buf);
	Loom__MailMessage *c = loom__mail_message__unpack(NULL, len, buf);
	free(buf);
	return c;
}

void wf_mail_queue(wf_t *w, loom_batch_t *b, char **to, size_t nto, const char *subject, const char *body,
    const char *request_id)
{
	if (M.relay == NULL) {
		loom_buf_t t = LOOM_BUF_INIT;
		for (size_t i = 0; i < nto; i++)
			loom_buf_printf(&t, "%s%s", i ? "," : "", to[i]);
		loom_info("mail not sent (no mail.relay in loom.yaml) to=%s subject=\"%s\" request=%s", loom_buf_cstr(&t),
		    subject, request_id);
		loom_buf_release(&t);
		return;
	}
	Loom__MailMessage m = LOOM__MAIL_MESSAGE__INIT;
	m.seq = M.next_seq++;
	m.to = to;
	m.n_to = nto;
	m.subject = (char *)subject;
	m.body = (char *)body;
	m.request_id = (char *)request_id;
	m.created_at = loom_now_us();
	m.next_at = m.created_at;
	put_row(w, b, &m);
	M.staged = loom_realloc(M.staged, (M.nstaged + 1) * sizeof *M.staged);
	M.staged[M.nstaged++] = dup_msg(&m);
}

static void pump(wf_t *w);

void wf_mail_commit(wf_t *w)
{
	if (M.nstaged == 0)
		return;
	M.out = loom_realloc(M.out, (M.nout + M.nstaged) * sizeof *M.out);
	memcpy(M.out + M.nout, M.staged, M.nstaged * sizeof *M.staged);
	M.nout += M.nstaged;
	M.nstaged = 0;
	pump(w);
}

void wf_mail_abort(wf_t *w)
{
	(void)w;
	for (size_t i = 0; i < M.nstaged; i++)
		protobuf_c_message_free_unpacked(&M.staged[i]->base, NULL);
	M.nstaged = 0;
}

/* Hands the next due message to the thread when it is idle. */
static void pump(wf_t *w)
{
	(void)w;
	if (!M.started)
		return;
	pthread_mutex_lock(&M.mu);
	if (M.job == NULL) {
		int64_t now = loom_now_us();
		for (size_t i = 0; i < M.nout; i++)
			if (M.out[i]->next_at <= now) {
				M.job = M.out[i];
				M.done = false;
				pthread_cond_signal(&M.cv);
				break;
			}
	}
	pthread_mutex_unlock(&M.mu);
}

static void out_remove(Loom__MailMessage *m)
{
	for (size_t i = 0; i < M.nout; i++)
		if (M.out[i] == m) {
			memmove(&M.out[i], &M.out[i + 1], (M.nout - i - 1) * sizeof *M.out);
			M.nout--;
			break;
		}
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

void wf_mail_tick(wf_t *w)
{
	if (!M.started)
		return;
	pthread_mutex_lock(&M.mu);
	Loom__MailMessage *m = M.done ? M.job : NULL;
	bool ok = M.ok;
	char *err = M.error;
	M.error = NULL;
	if (m) {
		M.job = NULL;
		M.done = false;
	}
	pthread_mutex_unlock(&M.mu);
	if (m) {
		loom_batch_t *b = loom_batch_new(w->store);
		unsigned char k[8];
		loom_store_put_u64be(k, m->seq);
		loom_buf_t to = LOOM_BUF_INIT;
		for (size_t i = 0; i < m->n_to; i++)
			loom_buf_printf(&to, "%s%s", i ? "," : "", m->to[i]);
		int64_t now = loom_now_us();
		if (ok) {
			loom_info("mail sent seq=%llu to=%s subject=\"%s\" request=%s", (unsigned long long)m->seq,
			    loom_buf_cstr(&to), m->subject, m->request_id);
			loom_batch_delete(b, w->cf_mail, k, 8);
			out_remove(m);
		} else if (now - m->created_at >= M.give_up_ms * 1000) {
			loom_error("mail dropped after %u attempts seq=%llu to=%s request=%s: %s", m->attempts + 1,
			    (unsigned long long)m->seq, loom_buf_cstr(&to), m->request_id, err ? err : "?");
			loom_batch_delete(b, w->cf_mail, k, 8);
			out_remove(m);
		} else {
			m->attempts++;
			m->next_at = now + M.retry_ms * 1000;
			wf_str_set(&m->last_error, err ? err : "?");
			loom_warning("mail not sent, trying again in %lld ms seq=%llu to=%s: %s", M.retry_ms,
			    (unsigned long long)m->seq, loom_buf_cstr(&to), m->last_error);
			put_row(w, b, m);
		}
		loom_buf_release(&to);
		const char *e;
		if (wf_store_write(w, b, &e) < 0)
			loom_error("cannot store the mail outbox: %s", e);
		loom_batch_destroy(&b);
	}
	free(err);
	pump(w);
}

int wf_mail_open(wf_t *w, char **ret_error)
{
	memset(&M, 0, sizeof M);
	M.next_seq = 1;
	const loom_deploy_mail_t *mc = w->daemon ? &loom_daemon_config(w->daemon)->mail : NULL;
	loom_iter_t *it = loom_iter_new(w->store, w->cf_mail);
	for (loom_iter_seek_first(it); loom_iter_valid(it); loom_iter_next(it)) {
		size_t kl, len;
		const unsigned char *k = loom_iter_key(it, &kl);
		const void *v = loom_iter_value(it, &len);
		if (kl == 8 && loom_store_get_u64be(k) >= M.next_seq)
			M.next_seq = loom_store_get_u64be(k) + 1;
		Loom__MailMessage *m = loom__mail_message__unpack(NULL, len, v);
		if (m == NULL)
			continue;
		M.out = loom_realloc(M.out, (M.nout + 1) * sizeof *M.out);
		M.out[M.nout++] = m;
	}
	const char *err;
	int rc = loom_iter_status(it, &err);
	loom_iter_destroy(&it);
	if (rc < 0) {
		*ret_error = loom_sprintf("cannot read the mail outbox: %s", err);
		return -1;
	}
	if (mc == NULL || mc->relay == NULL || mc->relay[0] == '\0') {
		if (M.nout)
			loom_warning("mail outbox holds %zu messages but loom.yaml has no mail.relay: they wait", M.nout);
		return 0;
	}
	M.relay = loom_strdup(mc->relay);
	M.from = loom_strdup(mc->from);
	M.helo = loom_strdup(mc->helo);
	M.timeout_ms = mc->timeout_ms;
	M.retry_ms = mc->retry_ms;
	M.give_up_ms = mc->give_up_ms;
	pthread_mutex_init(&M.mu, NULL);
	pthread_cond_init(&M.cv, NULL);
	if (pthread_create(&M.th, NULL, sender, NULL) != 0) {
		*ret_error = loom_strdup("cannot start the mail sender thread");
		return -1;
	}
	M.started = true;
	loom_info("mail through relay=%s from=%s outbox=%zu", M.relay, M.from, M.nout);
	pump(w);
	return 0;
}

void wf_mail_close(wf_t *w)
{
	(void)w;
	if (M.started) {
		pthread_mutex_lock(&M.mu);
		M.stop = true;
		pthread_cond_signal(&M.cv);
		pthread_mutex_unlock(&M.mu);
		pthread_join(M.th, NULL);
		pthread_mutex_destroy(&M.mu);
		pthread_cond_destroy(&M.cv);
	}
	wf_mail_abort(w);
	free(M.staged);
	for (size_t i = 0; i < M.nout; i++)
		protobuf_c_message_free_unpacked(&M.out[i]->base, NULL);
	free(M.out);
	free(M.error);
	free(M.relay);
	free(M.from);
	free(M.helo);
	memset(&M, 0, sizeof M);
}
