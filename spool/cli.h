#ifndef TG_SPOOL_CLI_H
#define TG_SPOOL_CLI_H

/* The operator's commands on a spool, beside a running gateway or without one (WAL lets both
 * use the file):
 *   tracegate spool list [--state S] [--route R] [--limit N] -c FILE
 *   tracegate spool show ID -c FILE
 *   tracegate spool replay (ID | --all-dead [--route R]) [--reason TEXT] -c FILE
 *   tracegate spool purge ID --reason TEXT -c FILE
 * Metadata only, one JSON object per record on stdout; no body is ever shown (the CLI holds no
 * key). Each command leaves an audit row in the spool and a log line on stderr. argv[0] is
 * "spool". Returns the exit status: 0, 1 (failed, or nothing to act on), 2 (usage). Main
 * thread, before any other thread. */
int tg_spool_cli(int argc, char **argv);

#endif
