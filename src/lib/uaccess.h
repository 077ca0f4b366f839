/*
 * uaccess.h - copies to and from "user" memory that may fault.
 *
 * The caller's buffer is user memory: it may be unmapped, PROT_NONE, or a
 * view of the cache whose fault must be served by a handler.  These helpers
 * copy with a fault guard: a SIGSEGV/SIGBUS raised inside a guarded copy
 * ends the copy, and the helper returns how many bytes it could NOT copy,
 * as the kernel's copy_from_user() does.  Progress is exact to the byte
 * because every copy is cut at the source and destination page boundaries:
 * a fault means the whole current piece was not copied.
 *
 * Faults outside a guarded copy go on to the SIGSEGV/SIGBUS handler the
 * application had installed when pcache installed its own (or to the
 * default action).  The guard costs no system call: it is a sigsetjmp()
 * that does not save the signal mask, with the handler installed
 * SA_NODEFER so a longjmp out of it leaves the signal unblocked.
 */
#ifndef PCACHE_UACCESS_H
#define PCACHE_UACCESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Install the fault handlers once per process (idempotent, thread-safe).
 * Returns 0 or a negative errno from sigaction().
 */
int uaccess_init(void);

/* Copy @n bytes; return the number of bytes NOT copied (0 on success). */
size_t copy_from_user(void *to, const void *from, size_t n);
size_t copy_to_user(void *to, const void *from, size_t n);

/* Zero @n bytes of user memory; return the bytes NOT zeroed. */
size_t clear_user(void *to, size_t n);

/*
 * Touch (read) every page of [uaddr, uaddr+size) so later copies find it
 * present; return the number of bytes from the first page that could not
 * be read to the end (0: everything is readable).
 */
size_t fault_in_readable(const void *uaddr, size_t size);

/* Same for writing: touched with a read-then-write of the same byte. */
size_t fault_in_writeable(void *uaddr, size_t size);

/*
 * Copy a NUL-terminated string of at most @count bytes (NUL included).
 * Returns its length (without the NUL), @count if no NUL was found within
 * @count bytes (dst is then not terminated), or -EFAULT.
 */
long strncpy_from_user(char *dst, const char *src, size_t count);

/*
 * The no-fault copy ("page faults disabled", BRIEF §3): like
 * copy_from_user, but a fault on a view that the fault handler refuses
 * (uaccess_refuse_fault) ends the copy instead of being served.  Returns
 * the bytes NOT copied.  Faults the kernel serves itself (anonymous memory,
 * other files) are not affected.
 */
size_t copy_from_user_nofault(void *to, const void *from, size_t n);

/*
 * For the view fault handler: if thread @tid is inside a no-fault copy,
 * count it in *@counter (if not NULL), interrupt that copy (it stops short)
 * and return true; the fault must then not be served.  False: serve it.
 */
bool uaccess_refuse_fault(int tid, uint64_t *counter);

/* The signal that interrupts a refused no-fault copy (see uaccess.c). */
#define PCACHE_NOFAULT_SIGNAL	SIGBUS

#endif /* PCACHE_UACCESS_H */
