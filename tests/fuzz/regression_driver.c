/* SPDX-License-Identifier: MIT */
/*
 * regression_driver.c - replay fuzz inputs without a fuzzing engine.
 *
 * Linked with one fuzz target (LLVMFuzzerTestOneInput) into
 * <target>-replay, so `tests/run.sh` replays tests/fuzz/corpus/<target>/
 * with the normal compiler and sanitizers. Arguments are directories (every
 * regular file in them, dot files skipped) or files. Each input is copied
 * into a buffer of exactly its size, so a target that reads past its input
 * trips ASan. Fails when an argument is missing, when nothing was replayed,
 * or when a target aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	int ret = -1;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "replay: %s: cannot size\n", path);
		goto out;
	}
	buf = malloc(size ? (size_t)size : 1);
	if (!buf || (size && fread(buf, 1, (size_t)size, f) != (size_t)size)) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	ret = 0;
out:
	free(buf);
	fclose(f);
	return ret;
}

static int replay_dir(const char *dir, unsigned long *count)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), ret = 0;

	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		if (names[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
		    !stat(path, &st) && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0)
				ret = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned long count = 0;
	int ret = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode))
			ret |= replay_dir(argv[i], &count);
		else if (replay_file(argv[i]) < 0)
			ret = -1;
		else
			count++;
	}
	printf("replayed %lu input(s)\n", count);
	if (!count) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	return ret ? 1 : 0;
}
