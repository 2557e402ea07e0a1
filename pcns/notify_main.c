/* notify_main.c - loom-pcns-notify, the domain controller's side of
 * password change notification (DESIGN.md §6, docs/pcns.md).
 *
 *   loom-pcns-notify [-c loom.yaml] [--notify-config FILE]        the daemon
 *   loom-pcns-notify --samba-script [-c ...] [--notify-config ...] a Samba hook run
 *   loom-pcns-notify --submit --account NAME [--dn DN] [--anchor A] [--id HEX]
 *                                                                 any other hook
 *
 * The spool is a directory: one file per change (PcnsSpoolEntry, the
 * password sealed to each target listener's key), written atomically with
 * fsync by whichever hook took the change, deleted when a listener has
 * acknowledged it. The daemon watches it (inotify, and a rescan every
 * RESCAN_MS in case an event was lost) and delivers each file to the
 * targets of pcns-targets.yaml in order: the first that is not known to be
 * down and for which the file holds a sealed box. A listener acknowledges
 * only what it has stored; until then the file stays.
 *
 * A spooled change (this block and the code change together):
 *
 *   spooled --due, a target up--> in flight to that target (PcnsNotify sent)
 *   spooled --due, every target down--> waits for the first target's retry time
 *   in flight --PcnsAck ok (or duplicate)--> delivered: file deleted
 *   in flight --ack timeout, or the target cannot take it now--> spooled,
 *           the target marked down; the next target is tried at once
 *   in flight --PcnsAck refused for good (cannot-open: sealed to another key)-->
 *           spooled, never again to that target; when no target is left:
 *           moved to SPOOL/failed, error logged
 *   spooled --older than max_age--> deleted, error logged
 *
 * A target: up --send not possible (no connection, ZMQ_IMMEDIATE), ack
 * timeout, refusal of our key, store failure--> down for retry_initial,
 * doubling up to retry_max while it keeps failing --an ack--> up.
 */
#include "notify.h"
#include "loom_alloc.h"
#include "loom_envelope.h"
#include "loom_file.h"
#include "loom_log.h"
#include "loom_map.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define TICK_MS 100
#define RESCAN_MS 10000
#define STATUS_MS 1000
#define MAX_TARGETS 64

typedef struct spool_file {
	char *name;                    /* in the spool */
	size_t left;                   /* its changes not delivered yet */
} spool_file_t;

typedef struct entry {
	char *name;                    /* "<changed_at>-<id>": the queue's order */
	spool_file_t *file;            /* the file it is in (with others, for .chgs) */
	Loom__PcnsSpoolEntry *e;       /* its content */
	int target;                    /* in flight to this target (index), -1: not in flight */
	int64_t sent_ms;               /* monotonic */
	int64_t next_ms;               /* monotonic: not before */
	uint64_t refused;              /* bit per target index that refused it for good */
	uint32_t attempts;             /* sends */
} entry_t;

typedef struct tgt {
	const pcns_target_t *cfg;      /* in n->targets */
	void *sock;                    /* DEALER, CURVE client */
	void *mon;                     /* its monitor (PAIR) */
	int64_t down_until;            /* monotonic; 0: up */
	long long backoff;             /* the next wait when it fails */
	bool down;                     /* as last logged */
	uint64_t sent, acked, failures;
	char *last_error;
} tgt_t;

/* A change taken by the slapd hook, on its way to the spool. */
typedef struct job {
	char *name;                    /* its file name */
	uint8_t *data;                 /* its content (sealed) */
	size_t len;
	char *dn;                      /* for the log */
	char *error;                   /* set by the writer when it failed */
	char *batch;                   /* set by the writer: the file it went into */
	int64_t held_ms;               /* slapd's request to its result */
	int64_t queued_ms;             /* monotonic: handed to the writer */
	struct job *next;
} job_t;

/* The writer thread: spool files written and fsynced off the loop, so that
 * the slapd hook's CONTINUE never waits for a disk (group commit: several
 * files, one fsync of the directory). */
typedef struct writer {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job_t *in, **in_tail;          /* to write, in order */
	job_t *done, **done_tail;      /* written (durable) or failed: for the loop */
	bool stop;
	bool started;
	int efd;                       /* eventfd: the loop's wake-up when done has jobs */
	const char *spool;
	char **busy;                   /* batch files written but not yet taken by the loop */
	size_t nbusy;
} writer_t;

typedef struct notifier {
	loom_daemon_t *d;
	char *cfg_path;                /* --notify-config, or NULL */
	pcns_notify_cfg_t cfg;
	pcns_targets_t *targets;       /* the current targets file */
	struct timespec targets_mtime; /* its mtime when loaded (0: absent) */
	loom_keypair_t kp;
	char *spool;
	tgt_t *tgts;
	size_t ntgts;
	entry_t **entries;             /* by name: oldest first */
	size_t nentries;
	loom_map_t *files;             /* spool file name -> spool_file_t */
	loom_map_t *by_id;             /* change id -> entry */
	size_t inflight;
	int ino;                       /* inotify fd, -1 */
	notify_slapd_t *slapd;
	writer_t w;                    /* the slapd hook's writer */
	bool over_warning;
	uint64_t delivered, expired, failed;
	int64_t status_ms, rescan_ms;
	int timer;
	unsigned mon_seq;
} notifier_t;

static notifier_t the_notifier = { .ino = -1 };

/* ---- entries ---------------------------------------------------------------------------- */

/* "<changed_at>-<id>.chg" (one change, written by a hook process) or
 * ".chgs" (several, written by the daemon's writer thread in one go). */
static bool spool_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n < 16 + 1 + 32 + 4 || name[16] != '-')
		return false;
	return strcmp(name + 16 + 1 + 32, ".chg") == 0 || strcmp(name + 16 + 1 + 32, ".chgs") == 0;
}

static void entry_free(entry_t *en)
{
	if (en->e)
		loom__pcns_spool_entry__free_unpacked(en->e, NULL);
	free(en->name);
	free(en);
}

/* A spool file loses one of its changes; the last one deletes it. */
static void file_release(notifier_t *n, spool_file_t *f)
{
	if (f == NULL || --f->left > 0)
		return;
	char *p = loom_sprintf("%s/%s", n->spool, f->name);
	if (unlink(p) < 0 && errno != ENOENT)
		loom_error("cannot delete the spool file '%s': %s", p, strerror(errno));
	free(p);
	loom_map_removes(n->files, f->name);
	free(f->name);
	free(f);
}

/* Keeps one change in SPOOL/failed (its own file) and says why. */
static void keep_failed(notifier_t *n, const char *key, const Loom__PcnsSpoolEntry *e, const uint8_t *raw, size_t rawlen,
    const char *why)
{
	char *dir = loom_sprintf("%s/failed", n->spool);
	(void)mkdir(dir, 0700);
	char *path = loom_sprintf("%s/%s%s", dir, key, e ? ".chg" : "");
	uint8_t *buf = NULL;
	size_t len = rawlen;
	if (e) {
		len = protobuf_c_message_get_packed_size(&e->base);
		buf = loom_malloc(len ? len : 1);
		protobuf_c_message_pack(&e->base, buf);
	}
	char *err = NULL;
	if (loom_file_replace(path, e ? buf : raw, len, 0600, &err) < 0) {
		loom_error("cannot keep an undeliverable change in '%s': %s", path, err);
		free(err);
	}
	loom_error("password change undeliverable account=%s: %s (kept in %s)", e ? loom_log_kv_quote(e->account) : "?", why,
	    path);
	n->failed++;
	free(buf);
	free(path);
	free(dir);
}

static void entry_add(notifier_t *n, spool_file_t *f, Loom__PcnsSpoolEntry *e)
{
	if (e->change_id.len != PCNS_ID_LEN) {
		loom__pcns_spool_entry__free_unpacked(e, NULL);
		return;
	}
	if (loom_map_get(n->by_id, e->change_id.data, PCNS_ID_LEN)) {
		/* the same change spooled twice (Samba offered it again): one is enough */
		loom__pcns_spool_entry__free_unpacked(e, NULL);
		return;
	}
	entry_t *en = loom_calloc(1, sizeof *en);
	en->name = pcns_spool_name(e->changed_at, e->change_id.data);
	en->e = e;
	en->target = -1;
	en->file = f;
	f->left++;
	size_t lo = 0, hi = n->nentries;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(n->entries[mid]->name, en->name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	n->entries = loom_realloc(n->entries, (n->nentries + 1) * sizeof *n->entries);
	memmove(&n->entries[lo + 1], &n->entries[lo], (n->nentries - lo) * sizeof *n->entries);
	n->entries[lo] = en;
	n->nentries++;
	loom_map_put(n->by_id, e->change_id.data, PCNS_ID_LEN, en);
}

/* Loads a spool file's changes (once). */
static void file_load(notifier_t *n, const char *name)
{
	if (!spool_name_ok(name) || loom_map_gets(n->files, name))
		return;
	if (n->w.started) {
		/* a batch the writer has not finished (its directory not fsynced) */
		bool busy = false;
		pthread_mutex_lock(&n->w.mu);
		for (size_t i = 0; i < n->w.nbusy && !busy; i++)
			busy = strcmp(n->w.busy[i], name) == 0;
		pthread_mutex_unlock(&n->w.mu);
		if (busy)
			return;
	}
	char *path = loom_sprintf("%s/%s", n->spool, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return; /* gone meanwhile */
	struct stat st;
	uint8_t *buf = NULL;
	ssize_t got = -1;
	if (fstat(fd, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
		buf = loom_malloc((size_t)st.st_size + 1);
		got = read(fd, buf, (size_t)st.st_size);
	}
	close(fd);
	spool_file_t *f = loom_calloc(1, sizeof *f);
	f->name = loom_strdup(name);
	loom_map_puts(n->files, f->name, f);
	f->left = 1; /* held while loading */
	bool batch = name[strlen(name) - 1] == 's';
	if (got != st.st_size) {
		keep_failed(n, name, NULL, NULL, 0, "the file cannot be read");
	} else if (batch) {
		Loom__PcnsSpoolBatch *b = loom__pcns_spool_batch__unpack(NULL, (size_t)got, buf);
		if (b == NULL) {
			keep_failed(n, name, NULL, buf, (size_t)got, "the file does not decode");
		} else {
			for (size_t i = 0; i < b->n_entries; i++) {
				entry_add(n, f, b->entries[i]);
				b->entries[i] = NULL;
			}
			b->n_entries = 0;
			loom__pcns_spool_batch__free_unpacked(b, NULL);
		}
	} else {
		Loom__PcnsSpoolEntry *e = loom__pcns_spool_entry__unpack(NULL, (size_t)got, buf);
		if (e == NULL)
			keep_failed(n, name, NULL, buf, (size_t)got, "the file does not decode");
		else
			entry_add(n, f, e);
	}
	free(buf);
	file_release(n, f); /* deletes a file none of whose changes is new */
}

/* Takes the entry out of the queue; its file goes with its last change. */
static void entry_drop(notifier_t *n, entry_t *en)
{
	if (en->target >= 0)
		n->inflight--;
	loom_map_remove(n->by_id, en->e->change_id.data, PCNS_ID_LEN);
	for (size_t i = 0; i < n->nentries; i++)
		if (n->entries[i] == en) {
			memmove(&n->entries[i], &n->entries[i + 1], (n->nentries - i - 1) * sizeof *n->entries);
			n->nentries--;
			break;
		}
	spool_file_t *f = en->file;
	entry_free(en);
	file_release(n, f);
}

static void rescan(notifier_t *n)
{
	DIR *dir = opendir(n->spool);
	if (dir == NULL) {
		loom_error("cannot list the spool '%s': %s", n->spool, strerror(errno));
		return;
	}
	struct dirent *de;
	int64_t now = (int64_t)time(NULL);
	while ((de = readdir(dir)) != NULL) {
		if (spool_name_ok(de->d_name)) {
			file_load(n, de->d_name);
		} else if (strstr(de->d_name, ".tmp.")) {
			/* a hook that died while writing: its change was never acknowledged to the DC */
			char *p = loom_sprintf("%s/%s", n->spool, de->d_name);
			struct stat st;
			if (stat(p, &st) == 0 && now - st.st_mtime > 60)
				(void)unlink(p);
			free(p);
		}
	}
	closedir(dir);
}

/* ---- targets ------------------------------------------------------------------------------- */

static void mark_down(notifier_t *n, tgt_t *t, const char *why)
{
	int64_t now = loom_mono_ms();
	t->failures++;
	free(t->last_error);
	t->last_error = loom_strdup(why);
	if (t->down_until > now)
		return; /* already down: keep its time */
	if (!t->down)
		loom_warning("listener unavailable target=%s endpoint=%s retry_in_ms=%lld: %s", t->cfg->name,
		    loom_log_kv_quote(t->cfg->endpoint), t->backoff, loom_log_kv_quote(why));
	else
		loom_debug("listener still unavailable target=%s retry_in_ms=%lld: %s", t->cfg->name, t->backoff, why);
	t->down = true;
	t->down_until = now + t->backoff;
	t->backoff *= 2;
	if (t->backoff > n->cfg.retry_max_ms)
		t->backoff = n->cfg.retry_max_ms;
}

static void mark_up(notifier_t *n, tgt_t *t)
{
	if (t->down)
		loom_info("listener available target=%s endpoint=%s", t->cfg->name, loom_log_kv_quote(t->cfg->endpoint));
	t->down = false;
	t->down_until = 0;
	t->backoff = n->cfg.retry_initial_ms;
}

static int on_ack(loom_loop_t *loop, void *arg);
static int on_monitor(loom_loop_t *loop, void *arg);

static void tgts_close(notifier_t *n)
{
	loom_loop_t *loop = loom_daemon_loop(n->d);
	for (size_t i = 0; i < n->ntgts; i++) {
		tgt_t *t = &n->tgts[i];
		if (t->sock) {
			loom_loop_remove_socket(loop, t->sock);
			zmq_close(t->sock);
		}
		if (t->mon) {
			loom_loop_remove_socket(loop, t->mon);
			zmq_close(t->mon);
		}
		free(t->last_error);
	}
	free(n->tgts);
	n->tgts = NULL;
	n->ntgts = 0;
	/* what was in flight goes again (a listener drops a second copy) */
	for (size_t i = 0; i < n->nentries; i++) {
		n->entries[i]->target = -1;
		n->entries[i]->refused = 0;
	}
	n->inflight = 0;
}

static void tgts_open(notifier_t *n)
{
	loom_loop_t *loop = loom_daemon_loop(n->d);
	void *zctx = loom_daemon_zctx(n->d);
	size_t count = n->targets->targets.n;
	if (count > MAX_TARGETS) {
		loom_warning("%zu targets: only the first %d are used", count, MAX_TARGETS);
		count = MAX_TARGETS;
	}
	n->tgts = loom_calloc(count ? count : 1, sizeof *n->tgts);
	n->ntgts = count;
	const pcns_target_t *tv = n->targets->targets.v;
	for (size_t i = 0; i < count; i++) {
		tgt_t *t = &n->tgts[i];
		t->cfg = &tv[i];
		t->backoff = n->cfg.retry_initial_ms;
		if (tv[i].disabled)
			continue;
		t->sock = zmq_socket(zctx, ZMQ_DEALER);
		int one = 1, zero = 0, ivl = 100, ivlmax = 1000;
		zmq_setsockopt(t->sock, ZMQ_LINGER, &zero, sizeof zero);
		zmq_setsockopt(t->sock, ZMQ_IMMEDIATE, &one, sizeof one);
		zmq_setsockopt(t->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
		zmq_setsockopt(t->sock, ZMQ_RECONNECT_IVL_MAX, &ivlmax, sizeof ivlmax);
		zmq_setsockopt(t->sock, ZMQ_CURVE_SERVERKEY, tv[i].pub, LOOM_KEY_LEN);
		zmq_setsockopt(t->sock, ZMQ_CURVE_PUBLICKEY, n->kp.pub, LOOM_KEY_LEN);
		zmq_setsockopt(t->sock, ZMQ_CURVE_SECRETKEY, n->kp.sec, LOOM_KEY_LEN);
		char mon[64];
		snprintf(mon, sizeof mon, "inproc://pcns-notify-mon-%u", ++n->mon_seq);
		if (zmq_socket_monitor(t->sock, mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
			ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
			t->mon = zmq_socket(zctx, ZMQ_PAIR);
			zmq_setsockopt(t->mon, ZMQ_LINGER, &zero, sizeof zero);
			if (zmq_connect(t->mon, mon) == 0)
				loom_loop_add_socket(loop, t->mon, on_monitor, t);
		}
		if (zmq_connect(t->sock, tv[i].endpoint) < 0) {
			loom_error("cannot connect target=%s to '%s': %s", tv[i].name, tv[i].endpoint, zmq_strerror(errno));
			zmq_close(t->sock);
			t->sock = NULL;
			continue;
		}
		loom_loop_add_socket(loop, t->sock, on_ack, t);
	}
}

static void targets_reload(notifier_t *n, bool first)
{
	struct stat st;
	struct timespec mt = { 0, 0 };
	if (stat(n->cfg.targets, &st) == 0)
		mt = st.st_mtim;
	if (!first && mt.tv_sec == n->targets_mtime.tv_sec && mt.tv_nsec == n->targets_mtime.tv_nsec)
		return;
	pcns_targets_t *t = loom_calloc(1, sizeof *t);
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	if (pcns_targets_load(n->cfg.targets, t, &diags) < 0) {
		for (size_t i = 0; i < diags.n; i++)
			loom_error("%s", diags.v[i].text);
		loom_cfg_diags_release(&diags);
		pcns_targets_release(t);
		free(t);
		n->targets_mtime = mt; /* say it once; the next change is read again */
		return;
	}
	loom_cfg_diags_release(&diags);
	n->targets_mtime = mt;
	tgts_close(n);
	if (n->targets) {
		pcns_targets_release(n->targets);
		free(n->targets);
	}
	n->targets = t;
	tgts_open(n);
	loom_buf_t b = LOOM_BUF_INIT;
	const pcns_target_t *tv = t->targets.v;
	for (size_t i = 0; i < t->targets.n; i++)
		loom_buf_printf(&b, "%s%s%s", i ? "," : "", tv[i].name, tv[i].disabled ? "(disabled)" : "");
	loom_info("targets %s file=%s targets=%s", first ? "loaded" : "reloaded", loom_log_kv_quote(n->cfg.targets),
	    b.len ? loom_buf_cstr(&b) : "none");
	if (t->targets.n == 0)
		loom_warning("no target: changes stay in the spool until one is added (loomctl pcns target add)");
	loom_buf_release(&b);
}

static const Loom__Sealed *box_for(const entry_t *en, const char *target)
{
	for (size_t i = 0; i < en->e->n_boxes; i++)
		if (strcmp(en->e->boxes[i]->target, target) == 0)
			return en->e->boxes[i]->password;
	return NULL;
}

/* 1 sent, 0 not possible now, -1 the target cannot be used for this entry */
static int send_to(notifier_t *n, entry_t *en, size_t ti)
{
	tgt_t *t = &n->tgts[ti];
	const Loom__Sealed *box = box_for(en, t->cfg->name);
	if (box == NULL || t->sock == NULL || (en->refused & (1ULL << ti)))
		return -1;
	Loom__PcnsNotify m = LOOM__PCNS_NOTIFY__INIT;
	m.change_id = en->e->change_id;
	m.notifier = n->cfg.name;
	m.account = en->e->account;
	m.dn = en->e->dn;
	m.anchor = en->e->anchor;
	m.password = (Loom__Sealed *)box;
	m.changed_at = en->e->changed_at;
	m.hook = en->e->hook;
	m.groups = en->e->groups;
	m.n_groups = en->e->n_groups;
	size_t len = protobuf_c_message_get_packed_size(&m.base);
	uint8_t *buf = loom_malloc(len ? len : 1);
	protobuf_c_message_pack(&m.base, buf);
	int rc = zmq_send(t->sock, buf, len, ZMQ_DONTWAIT);
	free(buf);
	if (rc < 0) {
		mark_down(n, t, errno == EAGAIN ? "not connected" : zmq_strerror(errno));
		return 0;
	}
	en->target = (int)ti;
	en->sent_ms = loom_mono_ms();
	en->attempts++;
	t->sent++;
	n->inflight++;
	return 1;
}

static void pump(notifier_t *n)
{
	int64_t now = loom_mono_ms();
	int64_t wall = loom_now_us();
	for (size_t i = 0; i < n->nentries && n->inflight < (size_t)n->cfg.in_flight; i++) {
		entry_t *en = n->entries[i];
		if (en->target >= 0 || en->next_ms > now)
			continue;
		if (n->cfg.max_age_ms && wall - en->e->changed_at > n->cfg.max_age_ms * 1000) {
			loom_error("password change dropped account=%s change=%s: not delivered within max_age (%lld ms)",
			    loom_log_kv_quote(en->e->account), en->name, n->cfg.max_age_ms);
			n->expired++;
			entry_drop(n, en);
			i--;
			continue;
		}
		bool candidate = false, sent = false;
		int64_t earliest = 0;
		for (size_t ti = 0; ti < n->ntgts && !sent; ti++) {
			tgt_t *t = &n->tgts[ti];
			if (box_for(en, t->cfg->name) == NULL || (en->refused & (1ULL << ti)))
				continue;
			candidate = true;
			if (t->cfg->disabled || t->sock == NULL)
				continue;
			if (t->down_until > now) {
				if (earliest == 0 || t->down_until < earliest)
					earliest = t->down_until;
				continue;
			}
			int rc = send_to(n, en, ti);
			if (rc > 0)
				sent = true;
			else if (rc == 0 && (earliest == 0 || t->down_until < earliest))
				earliest = t->down_until;
		}
		if (sent)
			continue;
		if (!candidate) {
			keep_failed(n, en->name, en->e, NULL, 0,
			    "no configured target can take it (its listeners refused it, or were removed)");
			entry_drop(n, en);
			i--;
			continue;
		}
		en->next_ms = earliest ? earliest : now + n->cfg.retry_initial_ms;
	}
}

static int on_ack(loom_loop_t *loop, void *arg)
{
	(void)loop;
	tgt_t *t = arg;
	notifier_t *n = &the_notifier;
	size_t ti = (size_t)(t - n->tgts);
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, t->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			break;
		}
		Loom__PcnsAck *ack = loom__pcns_ack__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
		zmq_msg_close(&m);
		if (ack == NULL) {
			loom_warning("an acknowledgement from target=%s does not decode", t->cfg->name);
			continue;
		}
		entry_t *en = ack->change_id.len == PCNS_ID_LEN ? loom_map_get(n->by_id, ack->change_id.data, PCNS_ID_LEN)
								: NULL;
		if (ack->ok) {
			t->acked++;
			mark_up(n, t);
			if (en) {
				loom_info("password change delivered account=%s target=%s attempts=%u%s",
				    loom_log_kv_quote(en->e->account), t->cfg->name, en->attempts,
				    ack->duplicate ? " (the listener had it)" : "");
				n->delivered++;
				entry_drop(n, en);
			}
		} else if (en && en->target == (int)ti) {
			en->target = -1;
			n->inflight--;
			if (ack->retryable) {
				char *why = loom_sprintf("%s: %s", ack->code, ack->message);
				mark_down(n, t, why);
				free(why);
			} else {
				en->refused |= 1ULL << ti;
				loom_warning("listener refused a change target=%s account=%s: %s: %s", t->cfg->name,
				    loom_log_kv_quote(en->e->account), ack->code, ack->message);
			}
		}
		loom__pcns_ack__free_unpacked(ack, NULL);
	}
	pump(n);
	return 0;
}

static int on_monitor(loom_loop_t *loop, void *arg)
{
	(void)loop;
	tgt_t *t = arg;
	notifier_t *n = &the_notifier;
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, t->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return 0;
		}
		uint16_t ev = 0;
		uint32_t val = 0;
		if (zmq_msg_size(&m) >= 6) {
			memcpy(&ev, zmq_msg_data(&m), 2);
			memcpy(&val, (uint8_t *)zmq_msg_data(&m) + 2, 4);
		}
		bool more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, t->mon, 0) < 0) {
				zmq_msg_close(&m);
				break;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
		if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
			char *why = loom_sprintf("the listener refused this notifier's key (ZAP status %u): list it under "
						 "notifiers in its pcns.yaml", val);
			/* Said once per down period, but also when the target was already
			 * down for another reason (a send that timed out before the
			 * handshake failed, as on a slow machine): the operator must learn
			 * that the key is refused, not only "not connected". */
			if (!t->down || t->last_error == NULL || strcmp(t->last_error, why) != 0)
				loom_error("target=%s: %s", t->cfg->name, why);
			mark_down(n, t, why);
			free(why);
		} else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
			mark_down(n, t, "CURVE handshake failed (is the target's key right?)");
		} else if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			loom_debug("connected target=%s", t->cfg->name);
		}
	}
}

/* ---- spool watching, status ------------------------------------------------------------------ */

static int on_inotify(loom_loop_t *loop, void *arg)
{
	(void)loop;
	notifier_t *n = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t len = read(n->ino, buf, sizeof buf);
		if (len <= 0)
			break;
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				rescan(n);
			else if (ev->len)
				file_load(n, ev->name);
			p += sizeof *ev + ev->len;
		}
	}
	pump(n);
	return 0;
}

/* ---- the writer thread ------------------------------------------------------------------ */

static void add_varint(loom_buf_t *b, size_t v)
{
	while (v >= 0x80) {
		loom_buf_addc(b, (char)(v | 0x80));
		v >>= 7;
	}
	loom_buf_addc(b, (char)v);
}

/* Writes the jobs of list as one PcnsSpoolBatch file: one fsync of the
 * file and one of the directory for all of them (group commit). */
static void write_batch(writer_t *w, job_t *list)
{
	loom_buf_t b = LOOM_BUF_INIT;
	for (job_t *j = list; j; j = j->next) {
		loom_buf_addc(&b, 0x0a); /* PcnsSpoolBatch.entries, field 1, length-delimited */
		add_varint(&b, j->len);
		loom_buf_add(&b, j->data, j->len);
	}
	char *name = loom_sprintf("%ss", list->name);
	pthread_mutex_lock(&w->mu);
	w->busy = loom_realloc(w->busy, (w->nbusy + 1) * sizeof *w->busy);
	w->busy[w->nbusy++] = loom_strdup(name);
	pthread_mutex_unlock(&w->mu);
	char *path = loom_sprintf("%s/%s", w->spool, name);
	char *tmp = loom_sprintf("%s.tmp.w", path);
	char *error = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		error = loom_sprintf("cannot create '%s': %s", tmp, strerror(errno));
	} else if (loom_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
		error = loom_sprintf("cannot write '%s': %s", tmp, strerror(errno));
		close(fd);
		(void)unlink(tmp);
	} else if (close(fd) < 0 || rename(tmp, path) < 0) {
		error = loom_sprintf("cannot put '%s' in place: %s", path, strerror(errno));
		(void)unlink(tmp);
	} else {
		/* the rename is durable once the directory is */
		int dfd = open(w->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			error = loom_sprintf("cannot fsync the spool '%s': %s", w->spool, strerror(errno));
		if (dfd >= 0)
			close(dfd);
	}
	for (job_t *j = list; j; j = j->next) {
		j->batch = loom_strdup(name);
		j->error = error ? loom_strdup(error) : NULL;
	}
	free(error);
	free(tmp);
	free(path);
	free(name);
	loom_buf_release(&b);
}

static void *writer_main(void *arg)
{
	writer_t *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->in == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		job_t *list = w->in;
		w->in = NULL;
		w->in_tail = &w->in;
		bool stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		if (list == NULL && stop)
			return NULL;
		write_batch(w, list);
		pthread_mutex_lock(&w->mu);
		*w->done_tail = list;
		while (*w->done_tail)
			w->done_tail = &(*w->done_tail)->next;
		pthread_mutex_unlock(&w->mu);
		uint64_t one = 1;
		if (write(w->efd, &one, sizeof one) < 0) {
			/* the loop rescans anyway */
		}
	}
}

/* The loop has taken batch: the writer forgets it. */
static void writer_unbusy(writer_t *w, const char *batch)
{
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->nbusy; i++)
		if (strcmp(w->busy[i], batch) == 0) {
			free(w->busy[i]);
			w->busy[i] = w->busy[--w->nbusy];
			break;
		}
	pthread_mutex_unlock(&w->mu);
}

static void job_free(job_t *j)
{
	free(j->name);
	free(j->data);
	free(j->dn);
	free(j->error);
	free(j->batch);
	free(j);
}

/* Takes what the writer finished: durable changes join the queue. */
static int on_written(loom_loop_t *loop, void *arg)
{
	(void)loop;
	notifier_t *n = arg;
	uint64_t v;
	if (read(n->w.efd, &v, sizeof v) < 0) {
		/* nothing, or already taken */
	}
	pthread_mutex_lock(&n->w.mu);
	job_t *list = n->w.done;
	n->w.done = NULL;
	n->w.done_tail = &n->w.done;
	pthread_mutex_unlock(&n->w.mu);
	while (list) {
		job_t *j = list;
		list = j->next;
		if (j->batch)
			writer_unbusy(&n->w, j->batch);
		if (j->error) {
			loom_error("cannot spool the password change of dn=%s: %s", loom_log_kv_quote(j->dn), j->error);
		} else {
			loom_info("password change spooled change=%.32s dn=%s held_ms=%lld write_ms=%lld", j->name + 17,
			    loom_log_kv_quote(j->dn), (long long)j->held_ms, (long long)(loom_mono_ms() - j->queued_ms));
			file_load(n, j->batch);
		}
		job_free(j);
	}
	pump(n);
	return 0;
}

static void spooled(void *arg, char *name, uint8_t *data, size_t len, const char *dn, int64_t held_ms)
{
	notifier_t *n = arg;
	job_t *j = loom_calloc(1, sizeof *j);
	j->held_ms = held_ms;
	j->queued_ms = loom_mono_ms();
	j->name = name;
	j->data = data;
	j->len = len;
	j->dn = loom_strdup(dn);
	pthread_mutex_lock(&n->w.mu);
	*n->w.in_tail = j;
	n->w.in_tail = &j->next;
	pthread_cond_signal(&n->w.cv);
	pthread_mutex_unlock(&n->w.mu);
}

static int writer_start(notifier_t *n, char **ret_error)
{
	writer_t *w = &n->w;
	w->spool = n->spool;
	w->in_tail = &w->in;
	w->done_tail = &w->done;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		*ret_error = loom_sprintf("cannot make an eventfd: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
		*ret_error = loom_strdup("cannot start the spool writer thread");
		return -1;
	}
	w->started = true;
	loom_loop_add_fd(loom_daemon_loop(n->d), w->efd, on_written, n);
	return 0;
}

/* Writes what is left, then stops the thread. */
static void writer_stop(notifier_t *n)
{
	writer_t *w = &n->w;
	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	w->started = false;
	loom_loop_remove_fd(loom_daemon_loop(n->d), w->efd);
	for (job_t *j = w->done; j;) {
		job_t *next = j->next;
		if (j->error)
			loom_error("cannot spool the password change of dn=%s: %s", loom_log_kv_quote(j->dn), j->error);
		job_free(j);
		j = next;
	}
	w->done = NULL;
	for (size_t i = 0; i < w->nbusy; i++)
		free(w->busy[i]);
	free(w->busy);
	w->busy = NULL;
	w->nbusy = 0;
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

static void write_status(notifier_t *n)
{
	loom_buf_t b = LOOM_BUF_INIT;
	int64_t oldest = n->nentries ? n->entries[0]->e->changed_at : 0;
	loom_buf_printf(&b, "notifier=%s pid=%d updated=%lld spooled=%zu in_flight=%zu oldest_changed_at=%lld delivered=%llu "
			    "expired=%llu failed=%llu\n",
	    n->cfg.name, (int)getpid(), (long long)loom_now_us(), n->nentries, n->inflight, (long long)oldest,
	    (unsigned long long)n->delivered, (unsigned long long)n->expired, (unsigned long long)n->failed);
	int64_t now = loom_mono_ms();
	for (size_t i = 0; i < n->ntgts; i++) {
		tgt_t *t = &n->tgts[i];
		const char *state = t->cfg->disabled ? "disabled" : t->down ? "down" : t->acked ? "up" : "unknown";
		loom_buf_printf(&b, "target=%s state=%s sent=%llu acked=%llu failures=%llu retry_in_ms=%lld last_error=%s\n",
		    t->cfg->name, state, (unsigned long long)t->sent, (unsigned long long)t->acked,
		    (unsigned long long)t->failures, (long long)(t->down_until > now ? t->down_until - now : 0),
		    loom_log_kv_quote(t->last_error ? t->last_error : ""));
	}
	/* not fsynced: it is a display, rewritten every second */
	char *path = loom_sprintf("%s/status", n->spool);
	char *tmp = loom_sprintf("%s/.status.tmp", n->spool);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (loom_write_all(fd, b.data, b.len) == 0 && close(fd) == 0)
			(void)rename(tmp, path);
		else
			close(fd);
	}
	free(tmp);
	free(path);
	loom_buf_release(&b);
}

static int on_tick(loom_loop_t *loop, void *arg)
{
	(void)loop;
	notifier_t *n = arg;
	int64_t now = loom_mono_ms();
	for (size_t i = 0; i < n->nentries; i++) {
		entry_t *en = n->entries[i];
		if (en->target >= 0 && now - en->sent_ms >= n->cfg.ack_timeout_ms) {
			tgt_t *t = &n->tgts[en->target];
			en->target = -1;
			n->inflight--;
			char *why = loom_sprintf("no acknowledgement in %lld ms", n->cfg.ack_timeout_ms);
			mark_down(n, t, why);
			free(why);
		}
	}
	targets_reload(n, false);
	notify_slapd_tick(n->slapd);
	if (now - n->rescan_ms >= RESCAN_MS) {
		n->rescan_ms = now;
		rescan(n);
	}
	pump(n);
	if (n->cfg.queue_warning && !n->over_warning && n->nentries > (size_t)n->cfg.queue_warning) {
		n->over_warning = true;
		loom_warning("the spool holds %zu changes, over queue_warning (%lld): are the listeners reachable?", n->nentries,
		    n->cfg.queue_warning);
	} else if (n->over_warning && n->nentries <= (size_t)n->cfg.queue_warning) {
		n->over_warning = false;
		loom_info("the spool is back under queue_warning spooled=%zu", n->nentries);
	}
	if (now - n->status_ms >= STATUS_MS) {
		n->status_ms = now;
		write_status(n);
	}
	return 0;
}

/* ---- the daemon ---------------------------------------------------------------------------- */

static char *notify_cfg_path(const char *given, const char *deploy_path)
{
	return given ? loom_strdup(given) : pcns_cfg_beside(deploy_path, "pcns-notify.yaml");
}

static int notify_check(loom_daemon_t *d, const char **error_r)
{
	(void)error_r;
	char *path = notify_cfg_path(the_notifier.cfg_path, loom_daemon_config(d)->path);
	pcns_notify_cfg_t cfg;
	pcns_targets_t t;
	memset(&cfg, 0, sizeof cfg);
	memset(&t, 0, sizeof t);
	int rc = notify_load("loom-pcns-notify", path, &cfg, &t);
	pcns_targets_release(&t);
	pcns_notify_cfg_release(&cfg);
	free(path);
	*error_r = "";
	return rc;
}

static int notify_start(loom_daemon_t *d, const char **error_r)
{
	static char *msg;
	notifier_t *n = &the_notifier;
	n->d = d;
	loom_daemon_set_user(d, n);
	const loom_deploy_t *dc = loom_daemon_config(d);
	char *path = notify_cfg_path(n->cfg_path, dc->path);
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	int rc = pcns_notify_cfg_load(path, &n->cfg, &diags);
	free(path);
	if (rc < 0) {
		msg = loom_cfg_diags_join(&diags, "\n");
		loom_cfg_diags_release(&diags);
		*error_r = msg;
		return -1;
	}
	loom_cfg_diags_release(&diags);
	char *kerr = NULL;
	bool have = false;
	if (loom_daemon_load_keys(dc, n->cfg.name, true, &n->kp, &have, NULL, &kerr) < 0 || !have) {
		msg = loom_sprintf("the notifier needs its key pair: %s (loomctl keys gen %s)", kerr ? kerr : "none",
		    n->cfg.name);
		free(kerr);
		*error_r = msg;
		return -1;
	}
	n->spool = notify_spool_dir(&n->cfg, dc);
	(void)mkdir(dc->state_dir, 0755);
	if (mkdir(n->spool, 0700) < 0 && errno != EEXIST) {
		msg = loom_sprintf("cannot make the spool '%s': %s", n->spool, strerror(errno));
		*error_r = msg;
		return -1;
	}
	n->files = loom_map_new();
	n->by_id = loom_map_new();
	targets_reload(n, true);
	loom_loop_t *loop = loom_daemon_loop(d);
	n->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (n->ino < 0 || inotify_add_watch(n->ino, n->spool, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		msg = loom_sprintf("cannot watch the spool '%s': %s", n->spool, strerror(errno));
		*error_r = msg;
		return -1;
	}
	loom_loop_add_fd(loop, n->ino, on_inotify, n);
	if (n->cfg.slapd.socket) {
		char *err = NULL;
		if (writer_start(n, &err) < 0) {
			msg = err;
			*error_r = msg;
			return -1;
		}
		if (notify_slapd_start(loop, &n->cfg, n->spool, (const pcns_targets_t *const *)&n->targets, spooled, n,
			&n->slapd, &err) < 0) {
			msg = err;
			*error_r = msg;
			return -1;
		}
	}
	rescan(n);
	n->rescan_ms = loom_mono_ms();
	n->timer = loom_loop_add_timer(loop, TICK_MS, 0, on_tick, n);
	char z85[LOOM_Z85_KEY_LEN + 1];
	loom_keys_z85(n->kp.pub, z85);
	loom_info("notifier ready name=%s key=%s spool=%s spooled=%zu slapd_socket=%s", n->cfg.name, z85,
	    loom_log_kv_quote(n->spool), n->nentries, n->cfg.slapd.socket ? loom_log_kv_quote(n->cfg.slapd.socket) : "-");
	write_status(n);
	pump(n);
	return 0;
}

static void notify_stop(loom_daemon_t *d)
{
	notifier_t *n = loom_daemon_user(d);
	if (n == NULL)
		return;
	loom_loop_t *loop = loom_daemon_loop(d);
	if (n->timer)
		loom_loop_cancel_timer(loop, n->timer);
	notify_slapd_stop(&n->slapd);
	writer_stop(n);
	if (n->ino >= 0) {
		loom_loop_remove_fd(loop, n->ino);
		close(n->ino);
	}
	if (n->tgts)
		write_status(n);
	tgts_close(n);
	while (n->nentries)
		entry_drop(n, n->entries[0]);
	free(n->entries);
	loom_map_destroy(&n->files);
	loom_map_destroy(&n->by_id);
	if (n->targets) {
		pcns_targets_release(n->targets);
		free(n->targets);
	}
	pcns_notify_cfg_release(&n->cfg);
	free(n->spool);
	loom_keypair_wipe(&n->kp);
}

static int set_cfg(loom_daemon_t *d, const char *v, const char **error_r)
{
	(void)d;
	(void)error_r;
	free(the_notifier.cfg_path);
	the_notifier.cfg_path = loom_strdup(v);
	return 0;
}

static const loom_flag_t flags[] = {
	{ "notify-config", "FILE", "the notifier's file (default: pcns-notify.yaml beside loom.yaml)", set_cfg },
	{ NULL, NULL, NULL, NULL },
};

static const loom_daemon_def_t def = {
	.process = "loom-pcns-notify",
	.summary = "Loom's password change notifier for a domain controller: takes changes from the directory's hook "
		   "(slapd's sock overlay here; Samba's syncpasswords through --samba-script; anything through --submit), "
		   "spools them sealed and delivers them to the listeners. See docs/pcns.md.",
	.bus_client = false,
	.flags = flags,
	.start = notify_start,
	.stop = notify_stop,
	.check = notify_check,
	.own_config = &pcns_notify_cfg_table,
	.own_config_what = "notifier file pcns-notify.yaml (--notify-config); pcns-targets.yaml is written by "
			   "loomctl pcns target",
};

/* The hook modes: short-lived, no loop, no bus. */
static int hook_main(const char *mode, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "notify-config", required_argument, NULL, 'n' },
		{ "account", required_argument, NULL, 'a' },
		{ "dn", required_argument, NULL, 'd' },
		{ "anchor", required_argument, NULL, 'g' },
		{ "id", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = loom_deploy_default_path(), *ncfg = NULL, *account = NULL, *dn = NULL, *anchor = NULL,
		   *id = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'n': ncfg = optarg; break;
		case 'a': account = optarg; break;
		case 'd': dn = optarg; break;
		case 'g': anchor = optarg; break;
		case 'i': id = optarg; break;
		default: return 2;
		}
	}
	bool samba = strcmp(mode, "--samba-script") == 0;
	if (!samba && (account == NULL || account[0] == '\0') && (dn == NULL || dn[0] == '\0')) {
		fprintf(stderr, "loom-pcns-notify --submit: give the account as --account NAME and/or --dn DN\n");
		return 2;
	}
	loom_deploy_t deploy;
	memset(&deploy, 0, sizeof deploy);
	loom_cfg_diags_t diags;
	memset(&diags, 0, sizeof diags);
	if (loom_deploy_load(config, &deploy, &diags) < 0) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "loom-pcns-notify: %s\n", diags.v[i].text);
		loom_cfg_diags_release(&diags);
		loom_deploy_release(&deploy);
		return 1;
	}
	loom_cfg_diags_release(&diags);
	loom_log_set_level((loom_log_level_t)deploy.log.level);
	char *path = notify_cfg_path(ncfg, deploy.path);
	pcns_notify_cfg_t cfg;
	pcns_targets_t t;
	memset(&cfg, 0, sizeof cfg);
	memset(&t, 0, sizeof t);
	int rc = 1;
	if (notify_load("loom-pcns-notify", path, &cfg, &t) == 0)
		rc = samba ? notify_samba_script(&deploy, &cfg, &t) : notify_submit(&deploy, &cfg, &t, account, dn, anchor, id);
	pcns_targets_release(&t);
	pcns_notify_cfg_release(&cfg);
	free(path);
	loom_deploy_release(&deploy);
	return rc;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "loom-pcns-notify: cannot start: libsodium does not initialise\n");
		return 1;
	}
	if (argc > 1 && (strcmp(argv[1], "--samba-script") == 0 || strcmp(argv[1], "--submit") == 0)) {
		loom_log_init("loom-pcns-notify");
		return hook_main(argv[1], argc - 1, argv + 1);
	}
	int rc = loom_daemon_main(&def, argc, argv);
	free(the_notifier.cfg_path);
	return rc;
}
