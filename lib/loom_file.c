/* loom_file.c - atomic file replacement. */
#include "loom_file.h"
#include "loom_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int loom_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int loom_atomic_open(loom_atomic_t *af, const char *path, mode_t mode, char **ret_error)
{
	af->path = loom_strdup(path);
	af->tmp = loom_sprintf("%s.tmp.%d", path, (int)getpid());
	af->mode = mode;
	af->fd = open(af->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (af->fd < 0) {
		*ret_error = loom_sprintf("cannot create '%s': %s", af->tmp, strerror(errno));
		free(af->path);
		free(af->tmp);
		af->path = af->tmp = NULL;
		return -1;
	}
	return 0;
}

void loom_atomic_abort(loom_atomic_t *af)
{
	if (af->fd >= 0)
		close(af->fd);
	if (af->tmp)
		unlink(af->tmp);
	free(af->path);
	free(af->tmp);
	af->path = af->tmp = NULL;
	af->fd = -1;
}

int loom_atomic_commit(loom_atomic_t *af, char **ret_error)
{
	const char *step = "fsync";
	if (fchmod(af->fd, af->mode) < 0 || fsync(af->fd) < 0)
		goto fail;
	step = "close";
	int rc = close(af->fd);
	af->fd = -1;
	if (rc < 0)
		goto fail;
	step = "rename";
	if (rename(af->tmp, af->path) < 0)
		goto fail;
	char *dir = loom_strdup(af->path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd); /* best effort: some filesystems refuse directory fsync */
		close(dfd);
	}
	free(dir);
	free(af->path);
	free(af->tmp);
	af->path = af->tmp = NULL;
	return 0;
fail:
	*ret_error = loom_sprintf("cannot write '%s' (%s): %s", af->path, step, strerror(errno));
	loom_atomic_abort(af);
	return -1;
}

int loom_file_replace(const char *path, const void *data, size_t len, mode_t mode, char **ret_error)
{
	loom_atomic_t af;
	if (loom_atomic_open(&af, path, mode, ret_error) < 0)
		return -1;
	if (loom_write_all(af.fd, data, len) < 0) {
		*ret_error = loom_sprintf("cannot write '%s': %s", af.tmp, strerror(errno));
		loom_atomic_abort(&af);
		return -1;
	}
	return loom_atomic_commit(&af, ret_error);
}
