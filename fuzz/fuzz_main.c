/* fuzz_main.c - the replay driver of the fuzz targets when they are built
 * without libFuzzer (the normal gcc build and the ASan build): every file
 * named on the command line, or found directly in a directory named there,
 * goes once through LLVMFuzzerTestOneInput. The ctest fuzz.<target> runs it
 * over fuzz/regress/<target>/ (inputs that once crashed) and
 * fuzz/seeds/<target>/ (a small seed subset). A crash is a crash of this
 * program; it prints how many inputs it ran. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz replay: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	int err = ferror(f);
	fclose(f);
	if (buf == NULL || err) {
		fprintf(stderr, "fuzz replay: cannot read '%s'\n", path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, so that ASan sees a read one byte past the input. */
	uint8_t *exact = malloc(n ? n : 1);
	if (exact == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
		    "usage: %s FILE|DIR...\n"
		    "Runs every FILE, and every file directly in each DIR, once through this fuzz target\n"
		    "(the replay build of a libFuzzer target; scripts/fuzz.sh runs the fuzzer itself).\n",
		    argv[0]);
		return argc < 2 ? 2 : 0;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	unsigned ran = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz replay: '%s': %s\n", argv[i], strerror(errno));
			return 2;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 2;
			ran++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (d == NULL) {
			fprintf(stderr, "fuzz replay: cannot open directory '%s': %s\n", argv[i], strerror(errno));
			return 2;
		}
		char **names = NULL;
		size_t n = 0;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			names = realloc(names, (n + 1) * sizeof *names);
			names[n++] = strdup(e->d_name);
		}
		closedir(d);
		qsort(names, n, sizeof *names, cmp_str);
		for (size_t k = 0; k < n; k++) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(path) < 0)
					return 2;
				ran++;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("fuzz replay: %u inputs ran without a crash\n", ran);
	return 0;
}
