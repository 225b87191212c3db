/* clock.h — monotonic and wall time for binaries. Libraries that must run
 * under the simulator (Raft core, node) take time as an argument instead. */
#ifndef SISY_CLOCK_H
#define SISY_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t sisy_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
static inline uint64_t sisy_now_us(void)
{
	return sisy_now_ns() / 1000;
}
static inline uint64_t sisy_now_ms(void)
{
	return sisy_now_ns() / 1000000;
}

#endif
