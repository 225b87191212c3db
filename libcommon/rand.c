/* rand.c — xoshiro256** seeded through splitmix64 (see rand.h). */
#include "rand.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void sisy_rand_seed(sisy_rand *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t sisy_rand_next(sisy_rand *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t sisy_rand_below(sisy_rand *r, uint64_t n)
{
	/* Rejection sampling keeps the distribution exactly uniform. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = sisy_rand_next(r);
	while (x >= limit);
	return x % n;
}

int sisy_rand_chance(sisy_rand *r, uint64_t num, uint64_t den)
{
	return sisy_rand_below(r, den) < num;
}

double sisy_rand_double(sisy_rand *r)
{
	return (double)(sisy_rand_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
