#ifndef TG_GATEWAY_TESTHOOK_H
#define TG_GATEWAY_TESTHOOK_H

#include <stdbool.h>

/* Test hooks: named crash points and injected faults for the crash tests. They act only in the
 * test build (tracegate-hooks and the unit tests compile gateway/testhook.c with TG_TEST_HOOKS);
 * in the gateway itself every call is a no-op, whatever the environment says. */

/* Reads the hooks' settings from the environment (test build only): call once, before any
 * thread starts.
 *   TRACEGATE_TEST_CRASH_AT=NAME[:N]     SIGKILL the process the Nth time (default 1) the crash
 *                                        point NAME is passed
 *   TRACEGATE_TEST_FAIL_FSYNC_AT=N       the Nth fsync of the spool, and every later one, fails
 *   TRACEGATE_TEST_ACK_BEFORE_COMMIT=1   the spool tells a waiting request that its submission
 *                                        is stored before it commits, and pauses 100 ms there (a
 *                                        negative control: the crash tests must see this lose
 *                                        submissions)
 * The crash points: before_accept_commit, after_accept_commit (spool writer), before_reply
 * (worker), after_upstream_send (delivery, an answer came), before_mark_delivered (spool
 * writer, a delivered outcome about to commit). */
void tg_testhook_init(void);

/* A named point where the test build may die (see TRACEGATE_TEST_CRASH_AT). Any thread. */
void tg_testhook_crash_point(const char *name);

/* True when this fsync must fail (see TRACEGATE_TEST_FAIL_FSYNC_AT). Any thread. */
bool tg_testhook_fail_fsync(void);

/* True when TRACEGATE_TEST_ACK_BEFORE_COMMIT=1 (test build only). Any thread. */
bool tg_testhook_ack_before_commit(void);

#endif
