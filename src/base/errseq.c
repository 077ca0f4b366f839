/*
 * errseq.c - see errseq.h for the semantics.
 *
 * All updates are compare-and-swap loops on one 32-bit word, so setters
 * (writeback) and checkers (fsync) need no lock.
 */
#include "errseq.h"

#define ERRNO_BITS	12
#define ERRNO_MASK	((1u << ERRNO_BITS) - 1)
#define ERRSEQ_SEEN	(1u << ERRNO_BITS)
#define ERRSEQ_CTR_INC	(1u << (ERRNO_BITS + 1))

errseq_t errseq_set(errseq_t *eseq, int err)
{
	errseq_t old, new;

	if (err >= 0 || -err > (int)ERRNO_MASK)
		return __atomic_load_n(eseq, __ATOMIC_ACQUIRE);
	old = __atomic_load_n(eseq, __ATOMIC_ACQUIRE);
	for (;;) {
		new = (old & ~(ERRNO_MASK | ERRSEQ_SEEN)) | (unsigned)-err;
		/* Only bump the counter if someone saw the previous error. */
		if (old & ERRSEQ_SEEN)
			new += ERRSEQ_CTR_INC;
		if (new == old)
			return new;
		if (__atomic_compare_exchange_n(eseq, &old, new, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return new;
	}
}

errseq_t errseq_sample(errseq_t *eseq)
{
	errseq_t old = __atomic_load_n(eseq, __ATOMIC_ACQUIRE);

	/* An unseen error must be reported to this new observer. */
	if (!(old & ERRSEQ_SEEN))
		return 0;
	return old;
}

int errseq_check(errseq_t *eseq, errseq_t since)
{
	errseq_t cur = __atomic_load_n(eseq, __ATOMIC_ACQUIRE);

	if ((cur | ERRSEQ_SEEN) == (since | ERRSEQ_SEEN))
		return 0;
	return -(int)(cur & ERRNO_MASK);
}

int errseq_check_and_advance(errseq_t *eseq, errseq_t *since)
{
	errseq_t old = __atomic_load_n(eseq, __ATOMIC_ACQUIRE), new;

	if (old == *since)
		return 0;
	/*
	 * Mark what we saw as seen.  If a setter got in first, leave its new
	 * error unseen: it must still reach the next observer, and ours is
	 * the value we report.  (A blind OR here would mark an error seen
	 * that nobody was told about.)
	 */
	new = old | ERRSEQ_SEEN;
	if (new != old)
		__atomic_compare_exchange_n(eseq, &old, new, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
	*since = new;
	return -(int)(new & ERRNO_MASK);
}
