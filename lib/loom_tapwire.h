/* loom_tapwire.h - what loom-broker's tap socket sends, for loom-tap.
 *
 * The broker mirrors every frame it moves. Mirrored frames are batched: one
 * tap message is one ZeroMQ frame holding a version byte and then records
 *
 *   [kind: 1 byte][detail length: 2 bytes BE][detail][envelope length: 4 bytes BE][envelope]
 *
 * kind 'D': a directed message delivered (detail: the receiving instance)
 * kind 'U': a directed message the broker could not deliver (detail: reason)
 * kind 'E': an event (detail: its topic)
 *
 * A batch is sent when the broker has handled the frames waiting on a socket
 * (or at 64 KiB), so a quiet bus shows each message at once and a busy one
 * pays one tap delivery per batch instead of per message. Filtering happens
 * in loom-tap, not in ZeroMQ subscriptions.
 */
#ifndef LOOM_TAPWIRE_H
#define LOOM_TAPWIRE_H

#include <stddef.h>
#include <stdint.h>

#define LOOM_TAP_DIRECT 'D'
#define LOOM_TAP_UNDELIVERED 'U'
#define LOOM_TAP_EVENT 'E'
#define LOOM_TAP_VERSION 1
#define LOOM_TAP_BATCH_MAX (64 * 1024)

typedef struct loom_tap_record {
	char kind;                     /* LOOM_TAP_DIRECT / UNDELIVERED / EVENT */
	const char *detail;            /* not NUL-terminated */
	size_t detail_len;
	const uint8_t *env;            /* the envelope frame */
	size_t env_len;
} loom_tap_record_t;

/* Reads the record at *pos in a batch of len bytes (start *pos at 1, after
 * the version byte). Returns 1 with *ret and *pos advanced, 0 at the end,
 * -1 for a malformed batch. */
static inline int loom_tapwire_next(const uint8_t *batch, size_t len, size_t *pos, loom_tap_record_t *ret)
{
	size_t p = *pos;
	if (p >= len)
		return 0;
	if (len - p < 3)
		return -1;
	ret->kind = (char)batch[p];
	size_t dlen = ((size_t)batch[p + 1] << 8) | batch[p + 2];
	p += 3;
	if (len - p < dlen + 4)
		return -1;
	ret->detail = (const char *)batch + p;
	ret->detail_len = dlen;
	p += dlen;
	size_t elen = ((size_t)batch[p] << 24) | ((size_t)batch[p + 1] << 16) | ((size_t)batch[p + 2] << 8) | batch[p + 3];
	p += 4;
	if (len - p < elen)
		return -1;
	ret->env = batch + p;
	ret->env_len = elen;
	*pos = p + elen;
	return 1;
}

#endif
