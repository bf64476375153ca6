#ifndef TG_TESTS_SUPPORT_CLOCK_H
#define TG_TESTS_SUPPORT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in microseconds: the clock of every wait in the support code and of the
 * stub's records ("t_us"). Any thread. */
static inline uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
