/*
 * errseq.h - report an error once to each observer, after the kernel's
 * lib/errseq.c (the PostgreSQL fsync lesson).
 *
 * A mapping keeps one errseq_t: the last writeback error plus a counter
 * that changes each time a new error is recorded after one was seen.  Each
 * open file samples it at open and later asks "anything new since my
 * sample?".  An error that nobody has seen yet is reported to the next
 * opener too: errseq_sample() returns 0 for an unseen error.
 *
 * Layout: bits 0-11 the errno, bit 12 SEEN, bits 13-31 the counter.
 */
#ifndef PCACHE_ERRSEQ_H
#define PCACHE_ERRSEQ_H

#include <stdint.h>

typedef uint32_t errseq_t;

/* Record @err (negative errno); 0 is ignored.  Returns the new value. */
errseq_t errseq_set(errseq_t *eseq, int err);

/* A sample to compare against later: 0 if the current error is unseen. */
errseq_t errseq_sample(errseq_t *eseq);

/* The error recorded since @since, or 0. Does not advance. */
int errseq_check(errseq_t *eseq, errseq_t since);

/*
 * The error recorded since *@since, or 0; moves *@since to now and marks
 * the error seen.
 */
int errseq_check_and_advance(errseq_t *eseq, errseq_t *since);

#endif /* PCACHE_ERRSEQ_H */
