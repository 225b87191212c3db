/* ratelimit.c — delays for failed logins, per source address and per user
 * name, in a fixed-size table (bounded memory whatever an attacker sends:
 * a new key takes over a slot; losing an old one only forgets a penalty).
 *
 * Each key counts its recent failures (forgotten after a quiet minute);
 * past `free` failures, the answer to a failure is delayed by
 * delay * 2^(failures - free - 1), at most max. Only failures are delayed:
 * a right password is answered at once (conn.c never asks here then).
 */
#include "srv_int.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define SLOTS	 4096
#define QUIET_MS 60000

typedef struct slot {
	uint64_t key;
	uint32_t failures;
	uint64_t last_ms;
} slot;

struct ratelimit {
	uint32_t free_failures, delay_ms, max_ms;
	slot slots[SLOTS];
};

ratelimit *ratelimit_new(uint32_t free_failures, uint32_t delay_ms,
			 uint32_t max_ms)
{
	ratelimit *rl = calloc(1, sizeof *rl);
	if (rl) {
		rl->free_failures = free_failures;
		rl->delay_ms = delay_ms;
		rl->max_ms = max_ms;
	}
	return rl;
}

void ratelimit_free(ratelimit *rl)
{
	free(rl);
}

static uint32_t bump(ratelimit *rl, const char *kind, const char *name,
		     uint64_t now)
{
	uint64_t h = sisy_hash64(name, strlen(name),
				 sisy_hash64(kind, strlen(kind), 0x5157));
	if (h == 0)
		h = 1;
	slot *sl = &rl->slots[h % SLOTS];
	if (sl->key != h || now - sl->last_ms > QUIET_MS) {
		sl->key = h;
		sl->failures = 0;
	}
	sl->failures++;
	sl->last_ms = now;
	return sl->failures;
}

static uint32_t delay_for(const ratelimit *rl, uint32_t failures)
{
	if (failures <= rl->free_failures)
		return 0;
	uint32_t shift = failures - rl->free_failures - 1;
	uint64_t d = shift >= 32 ? rl->max_ms : (uint64_t)rl->delay_ms << shift;
	return d > rl->max_ms ? rl->max_ms : (uint32_t)d;
}

uint32_t ratelimit_fail(ratelimit *rl, const char *addr, const char *user,
			uint64_t now_ms)
{
	uint32_t a = bump(rl, "addr", addr, now_ms);
	uint32_t u = bump(rl, "user", user, now_ms);
	return delay_for(rl, a > u ? a : u);
}
