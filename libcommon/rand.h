/* rand.h — a small seeded PRNG (xoshiro256**) with explicit state.
 *
 * No hidden global state: the simulator, the fault layer and tests each own a
 * sisy_rand, so a seed replays exactly. Not for cryptography (use libsodium).
 */
#ifndef SISY_RAND_H
#define SISY_RAND_H

#include <stdint.h>

typedef struct sisy_rand {
	uint64_t s[4];
} sisy_rand;

void sisy_rand_seed(sisy_rand *r, uint64_t seed);
uint64_t sisy_rand_next(sisy_rand *r);
/* Uniform in [0, n); n > 0. */
uint64_t sisy_rand_below(sisy_rand *r, uint64_t n);
/* True with probability num/den. */
int sisy_rand_chance(sisy_rand *r, uint64_t num, uint64_t den);
/* Uniform double in [0, 1). */
double sisy_rand_double(sisy_rand *r);

#endif
