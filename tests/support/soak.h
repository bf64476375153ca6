#ifndef TG_TESTS_SUPPORT_SOAK_H
#define TG_TESTS_SUPPORT_SOAK_H

/* The crash harness of the durable suites: clients that submit with retries under the same key
 * until told the submission is accepted (2xx or 202), while the gateway is killed (SIGKILL at
 * random moments) or dies at a named crash point of the test build; then a last gateway drains
 * the spool and the stub's ledger says, per key, how often it was stored. Nothing acknowledged
 * may be missing, nothing may be stored twice. Test thread (cr_assert). */

#include <stdbool.h>

struct fixture;

struct soak_opts {
    int clients; /* threads, each its own patient, submitting one key after another */
    int keys;    /* keys each client submits at most */
    int kills;   /* SIGKILLs (random moments, 150..600 ms apart); 0 in crash-point runs */
    const char *crash_point; /* NULL, or runs the test build dying at this point (random 1..3rd
                              * pass), crash_hits times */
    int crash_hits;
    bool ack_before_commit; /* the test build's negative control */
    int max_s;              /* the kills or crashes end after this many seconds in any case */
};

struct soak_result {
    int submissions;    /* requests sent, retries included */
    int keys;           /* keys started */
    int acked;          /* keys told 2xx or 202 */
    int lost;           /* acked, and not stored */
    int twice;          /* stored more than once */
    int unacked_stored; /* never acked (the run ended), stored once anyway */
    int out_of_order;   /* a patient's keys stored in another order than acknowledged */
    long arrivals;      /* at the backend, resends included */
    int kills;          /* SIGKILLs, or crash-point deaths seen */
};

/* Runs one soak against fx (its stub, its conf file; fx->gw is restarted as needed and left
 * running the gateway itself) and fills r. Prints the figures. */
void soak_run(struct fixture *fx, const struct soak_opts *o, struct soak_result *r);

#endif
