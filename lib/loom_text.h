/* loom_text.h - small text helpers shared by the configuration loader and the
 * expression compiler. */
#ifndef LOOM_TEXT_H
#define LOOM_TEXT_H

#include <stddef.h>

/* Edit distance between a and b (ASCII case-insensitive), counting an
 * insertion, deletion, substitution or swap of two neighbours as one: the
 * measure behind "did you mean '...'?" suggestions. */
size_t loom_edit_distance(const char *a, size_t la, const char *b, size_t lb);

#endif
