/* SPDX-License-Identifier: MIT */
/*
 * prng.h - the tests' one pseudo-random generator (xorshift64*, header
 * only: each test program owns its state) and the seed rule every random
 * test follows: KVMIG_SEED=N in the environment, or `--seed N` as the
 * program's only arguments, repeats a run; otherwise the seed is the given
 * default (fixed, so a plain run is repeatable) and is printed.
 */
#ifndef KVMIG_TESTS_PRNG_H
#define KVMIG_TESTS_PRNG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prng {
	uint64_t s;
};

static inline void prng_init(struct prng *r, uint64_t seed)
{
	r->s = seed ? seed : 1;	/* xorshift's one forbidden state is 0 */
}

static inline uint64_t prng_next(struct prng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* A number in [0, n), n >= 1. */
static inline uint64_t prng_below(struct prng *r, uint64_t n)
{
	return prng_next(r) % n;
}

/* The run's seed (see the top of this file), printed as "NAME: seed N". */
static inline uint64_t prng_seed(const char *name, int argc, char **argv, uint64_t dflt)
{
	const char *env = getenv("KVMIG_SEED");
	uint64_t seed = dflt;

	if (argc == 3 && !strcmp(argv[1], "--seed"))
		env = argv[2];
	if (env)
		seed = strtoull(env, NULL, 0);
	printf("%s: seed %llu (KVMIG_SEED=%llu repeats it)\n", name, (unsigned long long)seed,
	       (unsigned long long)seed);
	return seed;
}

#endif
