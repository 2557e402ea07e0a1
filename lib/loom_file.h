/* loom_file.h - replacing a file safely (Redis rdb.c): write a temporary
 * beside it, fsync, rename over the old one, fsync the directory. A crash at
 * any point leaves either the old file or the new one, never a mix.
 *
 *   loom_atomic_t af;
 *   if (loom_atomic_open(&af, path, 0644, &err) < 0) ...
 *   write(af.fd, ...) ...
 *   if (loom_atomic_commit(&af, &err) < 0) ...   (or loom_atomic_abort(&af))
 */
#ifndef LOOM_FILE_H
#define LOOM_FILE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct loom_atomic {
	int fd;          /* write the new content here */
	char *path;      /* the file being replaced */
	char *tmp;       /* the temporary beside it */
	mode_t mode;     /* mode of the new file */
} loom_atomic_t;

/* Creates the temporary. Returns 0, or -1 with *ret_error (malloc'd). */
int loom_atomic_open(loom_atomic_t *af, const char *path, mode_t mode, char **ret_error);
/* fsync, rename over path, fsync the directory; releases af. */
int loom_atomic_commit(loom_atomic_t *af, char **ret_error);
/* Removes the temporary; releases af. */
void loom_atomic_abort(loom_atomic_t *af);
/* Writes all len bytes (retrying short writes). Returns 0 or -1 (errno). */
int loom_write_all(int fd, const void *data, size_t len);
/* Writes data to path atomically. */
int loom_file_replace(const char *path, const void *data, size_t len, mode_t mode, char **ret_error);

#endif
