/* loom_types.h - the registry of every bus message type.
 *
 * Built from proto/ at compile time (cmake/LoomProto.cmake), so a message
 * added to a .proto file is known here without further code: the envelope
 * code checks types against it and loom-tap decodes bodies with it.
 */
#ifndef LOOM_TYPES_H
#define LOOM_TYPES_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* The descriptor for a full type name such as "loom.Ping", or NULL. */
const ProtobufCMessageDescriptor *loom_types_find(const char *name);
/* The NULL-terminated list of every known top-level message. */
const ProtobufCMessageDescriptor *const *loom_types_all(void);
/* True when the descriptor is loom.Sealed: fields of that type are secrets. */
bool loom_types_is_sealed(const ProtobufCMessageDescriptor *desc);

#endif
