/* loom_tapwire.h - what loom-broker's tap socket sends, for loom-tap.
 *
 * Every frame the broker moves is mirrored as two frames:
 *   [kind byte + detail] [the envelope frame, unchanged]
 * kind 'D': a directed message delivered (detail: the receiving instance)
 * kind 'U': a directed message the broker could not deliver (detail: reason)
 * kind 'E': an event (detail: its topic)
 * A tap subscriber may filter with ZMQ_SUBSCRIBE on "D", "E", "Erun." etc.
 */
#ifndef LOOM_TAPWIRE_H
#define LOOM_TAPWIRE_H

#define LOOM_TAP_DIRECT 'D'
#define LOOM_TAP_UNDELIVERED 'U'
#define LOOM_TAP_EVENT 'E'

#endif
