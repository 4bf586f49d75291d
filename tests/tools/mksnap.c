/* SPDX-License-Identifier: MIT */
/*
 * mksnap - write a synthetic snapshot file (a valid stream of a plausible
 * VM) so restore's bad-input tests can make truncated, flipped and
 * foreign-version files without /dev/kvm.
 * Usage: mksnap FILE [--vcpus N] [--compress zstd|lz4] [--pages N]
 *                   [--name NAME] [--mem BYTES] [--bad-page N]
 *                   [--channels N --channel C --session S]
 * --bad-page puts page number N (outside RAM, say) in the first PAGES
 * entry, for the receivers' range checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers/streamgen.h"

int main(int argc, char **argv)
{
	struct streamgen_opts o;
	struct mio io;
	int fd, ret;

	streamgen_defaults(&o);
	if (argc < 2) {
		fprintf(stderr, "usage: mksnap FILE [--vcpus N] [--compress C] [--pages N] "
				"[--name NAME] [--mem BYTES] [--bad-page N] "
				"[--channels N --channel C --session S]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--vcpus"))
			o.vcpus = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--compress"))
			o.compress = argv[i + 1];
		else if (!strcmp(argv[i], "--pages"))
			o.pages = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--name"))
			o.name = argv[i + 1];
		else if (!strcmp(argv[i], "--mem"))
			o.mem_bytes = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--bad-page"))
			o.bad_page = strtoull(argv[i + 1], NULL, 0);
		else if (!strcmp(argv[i], "--channels"))
			o.channels = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--channel"))
			o.channel = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--session"))
			o.session = strtoull(argv[i + 1], NULL, 0);
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	ret = mio_file_open(&io, fd);
	if (!ret)
		ret = streamgen_write(&io, &o);
	mio_close(&io);
	close(fd);
	if (ret) {
		fprintf(stderr, "mksnap: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
