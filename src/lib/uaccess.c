/*
 * uaccess.c - copies to and from user memory that may fault.
 *
 * THE GUARD
 *
 * A guarded operation keeps a struct fault_guard on its own stack - a
 * sigjmp_buf, the user range being touched and a progress counter - and
 * publishes it in a thread-local pointer (initial-exec TLS, so the signal
 * handler reaches it without calling into the dynamic linker):
 *
 *	prev = current; progress = 0; record the user range [ulo, uhi)
 *	if (sigsetjmp(guard.env, 0)) {	-- no mask saved: no system call
 *		current = prev;		-- came back from fault_handler()
 *		return n - progress;
 *	}
 *	current = &guard
 *	for each piece:			-- cut at every source AND destination
 *		progress = done		   page boundary
 *		copy the piece
 *	current = prev
 *
 * The guards of one thread form a stack, so a signal handler that runs in
 * the middle of a guarded copy may make guarded copies of its own (an
 * application's handler calling write(2) through the LD_PRELOAD shim).
 *
 * One sigsetjmp() per call, not per piece: the copy runs in a separate
 * non-inlined function (guarded_run) so nothing the guarded frame keeps in
 * registers changes between sigsetjmp() and a siglongjmp(); the only state
 * read after the jump is the volatile progress counter in the guard.
 * Compiler signal fences order the counter's stores against the piece
 * copies (a fence is free: it only forbids the compiler to move memory
 * accesses across it, which is exactly what a same-thread signal needs).
 *
 * EXACTNESS
 *
 * A piece lies inside one source page and one destination page, and memory
 * protection is per page: if any byte of a piece faults, its first access
 * to that page faults, before memcpy() stored anything of the piece.  So a
 * fault in piece k means pieces 0..k-1 were copied fully and nothing of
 * piece k was: n - progress is exact, and the destination past the
 * returned count is untouched.  (The one exception is a mapping changed by
 * another thread in the middle of a piece, e.g. a hole punched under a view
 * mid-copy: some bytes of piece k may then have been stored.  Callers must
 * treat the destination past the copied count as undefined, which is the
 * kernel's raw_copy_from_user() contract too.)  Unlike the 2.6.20 kernel's
 * copy_from_user(), nothing here zero-fills the rest of the destination:
 * that is the seed's corruption, and the "naive" strategy does it itself.
 *
 * THE HANDLER AND SA_NODEFER
 *
 * SIGSEGV and SIGBUS are installed with SA_SIGINFO | SA_NODEFER | SA_ONSTACK
 * and an empty sa_mask.  The kernel blocks the delivered signal while its
 * handler runs and unblocks it at sigreturn; we never return through
 * sigreturn but siglongjmp() out, and because sigsetjmp(env, 0) saved no
 * mask, siglongjmp() restores none: without SA_NODEFER SIGSEGV would stay
 * blocked, and the thread's next fault - guarded or not - would kill the
 * process (the kernel force-kills on a blocked synchronous fault).  With
 * SA_NODEFER the mask during the handler equals the mask at the fault, so
 * jumping out leaves it right at no cost.
 *
 * A fault is the guard's if the thread is inside a guarded operation and
 * either the faulting address is inside the user range, or the signal was
 * sent rather than raised by the CPU (si_code <= 0: an interrupt of a
 * no-fault copy, see BRIEF §3), or si_code is SI_KERNEL (an x86 general
 * protection fault on a non-canonical address reports si_addr 0).  A fault
 * anywhere else - on the library's side of a copy - is a bug and is not
 * swallowed, as the kernel oopses on a fault in kernel memory.
 *
 * CHAINING
 *
 * A fault that is not the guard's goes to the action the application had
 * installed before uaccess_init() (saved per signal), emulating the
 * kernel's delivery: the saved sa_mask (plus the signal itself unless that
 * action had SA_NODEFER) is blocked around the call, SA_RESETHAND is
 * honoured, SA_SIGINFO handlers get (sig, info, ctx).  If the saved action
 * is SIG_DFL - or SIG_IGN, which the kernel overrides for a real fault - the
 * disposition is reset to SIG_DFL and the handler returns: the faulting
 * instruction runs again, faults again and the process dies of the right
 * signal, with the right core dump and wait status.  A sent (not raised)
 * signal is re-raised under SIG_DFL instead, or dropped under SIG_IGN.
 * An action the application installs after uaccess_init() replaces ours,
 * and the guard with it.
 *
 * LIMITS
 *
 * A thread that blocks SIGSEGV/SIGBUS (a worker that blocked "all
 * signals", a handler whose sa_mask is full) cannot have a guarded fault:
 * the kernel kills the process on a synchronous fault it cannot deliver.
 * Checking the mask would cost a system call per copy; an LD_PRELOAD shim
 * could instead keep SIGSEGV/SIGBUS out of the masks it is asked to set.
 * A siglongjmp() by the application out of a signal handler that
 * interrupted a guarded copy leaves current_guard at the dead frame; the
 * user-range check makes a later stray fault unlikely to match it.
 *
 * SANITIZERS (all checked by tests/test_uaccess.c, GCC 12 and clang 14)
 *
 * - UBSan: memcpy()/memset() are declared nonnull and the guard is asked to
 *   copy from NULL, so the guarded body is built without UB checks.
 * - ASan and TSan intercept sigaction(); with allow_user_segv_handler (on
 *   by default in these runtimes) the handler installed here is the one
 *   they run for SIGSEGV/SIGBUS, and the "previous action" saved for
 *   chaining is ASan's (so a stray fault still gets its report).  Their
 *   memcpy interceptors check or record the range, then the real memcpy
 *   faults; jumping out of the interceptor is fine, both intercept
 *   siglongjmp() to unwind their shadow state.
 * - ASan gives every thread a sigaltstack, and its siglongjmp() interceptor,
 *   when called on the alternate stack, asks pthread_getattr_np() for the
 *   thread's normal stack - which reads /proc/self/maps: ~170 us per
 *   guarded fault instead of ~2 us.  Under ASan the handler is installed
 *   without SA_ONSTACK (a stack-overflow fault then kills the process
 *   without ASan's report; nothing else changes).
 * - TSan runs the user's handler from its own, which it installs with
 *   sa_mask full: jumping out would leave the thread with every signal
 *   blocked (seen: mask 0xfffffffffffbfeff), and its next fault - the
 *   kernel force-kills on a blocked synchronous fault - would kill the
 *   process.  Under TSan only, the handler first restores the mask of the
 *   interrupted context (uc_sigmask) with pthread_sigmask(): one system
 *   call, on the fault path only.  TSan also defers asynchronous signals
 *   and runs their handlers with every signal blocked, so under TSan a
 *   guarded copy that faults inside such a handler kills the process (see
 *   LIMITS; the nesting test is skipped under TSan).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../base/compiler.h"
#include "../base/lockdep.h"
#include "uaccess.h"

#if defined(__SANITIZE_THREAD__)
#define UACCESS_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UACCESS_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UACCESS_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define UACCESS_ASAN 1
#endif
#endif

/* UBSan: guarded copies legitimately hand NULL and wild pointers to memcpy. */
#if defined(__clang__) || __GNUC__ >= 8
#define no_ub_checks	__attribute__((no_sanitize("undefined")))
#else
#define no_ub_checks
#endif

enum uaccess_op {
	UOP_COPY,		/* memcpy(to, from, n), either side user */
	UOP_CLEAR,		/* memset(to, 0, n), to is user */
	UOP_TOUCH_READ,		/* load one byte per page of from */
	UOP_TOUCH_WRITE,	/* locked add of 0 to one byte per page of to */
	UOP_STRCPY,		/* copy bytes of from up to and with a NUL */
};

struct fault_guard {
	sigjmp_buf env;
	volatile size_t progress;	/* bytes surely done when a fault hits */
	uintptr_t ulo, uhi;		/* the user range: faults elsewhere are bugs */
	unsigned int nofault_gen;	/* odd: a no-fault copy, this generation */
};

/* This thread's innermost guarded operation, NULL outside any. */
static __thread struct fault_guard *volatile current_guard
	__attribute__((tls_model("initial-exec")));

/* The actions installed before ours: [0] SIGSEGV, [1] SIGBUS. */
static struct sigaction prev_action[2];
static pthread_once_t uaccess_once = PTHREAD_ONCE_INIT;
static int uaccess_error;		/* negative errno from the install */
static int uaccess_ready;		/* handlers are in place */

static inline struct sigaction *prev_for(int sig)
{
	return &prev_action[sig == SIGBUS];
}

/* User space ends below the canonical-address hole (x86-64, LA57 too). */
#define USER_ADDR_LIMIT	((uintptr_t)1 << 56)

/* Bytes to copy before the next source or destination page boundary. */
static inline size_t piece_len(uintptr_t to, uintptr_t from, size_t left)
{
	size_t to_room = PAGE_SIZE - (to & ~PAGE_MASK);
	size_t from_room = PAGE_SIZE - (from & ~PAGE_MASK);

	return min(left, min(to_room, from_room));
}

/*
 * Fault a byte in for writing without changing it.  A locked add of 0
 * needs write access (so it breaks COW, fills a uffd-missing page, trips
 * uffd-wp) yet cannot lose a store another thread makes to the same byte,
 * as a load + store would.  Not __atomic_fetch_add(p, 0): clang lowers an
 * idempotent read-modify-write, volatile or not, to mfence + plain load,
 * which never faults for writing.
 */
static inline void touch_for_write(char *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("lock addb $0, %0" : "+m"(*p) : : "memory");
#else
	/* LL/SC: the store-conditional needs write access, value unchanged. */
	char v = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(p, &v, v, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
#endif
}

/*
 * Knowing len <= PAGE_SIZE, GCC open-codes memcpy() as "rep movsq", which
 * costs ~5 ns more than the library's copy on a 64-byte piece: hide the
 * bound so the call stays a call.
 */
#define hide_bound(len)	__asm__("" : "+r"(len))

/*
 * The guarded body.  Not inlined: the guarded frame must not keep anything
 * in registers that changes between its sigsetjmp() and a fault.
 * progress is stored before each piece and fenced on both sides, so the
 * handler sees exactly the bytes of the pieces that completed.
 */
static __attribute__((noinline)) no_ub_checks void
guarded_run(struct fault_guard *g, enum uaccess_op op, char *to,
	    const char *from, size_t n)
{
	size_t done = 0, len;
	uintptr_t page, end;

	switch (op) {
	case UOP_COPY:
		while (done < n) {
			len = piece_len((uintptr_t)to + done,
					(uintptr_t)from + done, n - done);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			g->progress = done;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			hide_bound(len);
			memcpy(to + done, from + done, len);
			done += len;
		}
		break;
	case UOP_CLEAR:
		while (done < n) {
			len = piece_len((uintptr_t)to + done, (uintptr_t)to + done,
					n - done);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			g->progress = done;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			hide_bound(len);
			memset(to + done, 0, len);
			done += len;
		}
		break;
	case UOP_TOUCH_READ:
		/* The first byte, then every later page start (progress 0 first). */
		(void)*(const volatile char *)from;
		end = (uintptr_t)from + n;
		for (page = ((uintptr_t)from & PAGE_MASK) + PAGE_SIZE; page < end;
		     page += PAGE_SIZE) {
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			g->progress = page - (uintptr_t)from;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			(void)*(const volatile char *)page;
		}
		break;
	case UOP_STRCPY:
		/*
		 * A byte at a time: reading past the NUL (as the kernel's
		 * word-at-a-time copy does) would touch bytes that are not
		 * the caller's to give, and AddressSanitizer says so.
		 */
		while (done < n) {
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			g->progress = done;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			if (!(to[done] = from[done]))
				break;
			done++;
		}
		break;
	case UOP_TOUCH_WRITE:
		touch_for_write(to);
		end = (uintptr_t)to + n;
		for (page = ((uintptr_t)to & PAGE_MASK) + PAGE_SIZE; page < end;
		     page += PAGE_SIZE) {
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			g->progress = page - (uintptr_t)to;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			touch_for_write((char *)page);
		}
		break;
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/*
 * Run one guarded operation over @n bytes whose user side is @user.
 * Returns the bytes not done (0: all of them).
 */
static size_t __guarded(enum uaccess_op op, char *to, const char *from,
			size_t n, const char *user, unsigned int nofault_gen)
{
	struct fault_guard guard, *prev;

	if (unlikely(n == 0))
		return 0;
	/*
	 * access_ok(): a range that wraps, or reaches into the kernel's half
	 * of the address space, is never the caller's to give.
	 */
	if (unlikely((uintptr_t)user + n < (uintptr_t)user ||
		     (uintptr_t)user + n > USER_ADDR_LIMIT))
		return n;
	if (unlikely(!__atomic_load_n(&uaccess_ready, __ATOMIC_ACQUIRE)) &&
	    uaccess_init() < 0)
		return n;	/* unguarded would mean a crash: refuse instead */

	lockdep_user_copy(1);
	prev = current_guard;
	guard.nofault_gen = nofault_gen;
	guard.ulo = (uintptr_t)user;
	guard.uhi = (uintptr_t)user + n;
	guard.progress = 0;
	if (sigsetjmp(guard.env, 0)) {
		/* Back from fault_handler(); prev and n were not changed since. */
		current_guard = prev;
		lockdep_user_copy(-1);
		return n - guard.progress;
	}
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	current_guard = &guard;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guarded_run(&guard, op, to, from, n);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	current_guard = prev;
	lockdep_user_copy(-1);
	return 0;
}

static inline size_t guarded(enum uaccess_op op, char *to, const char *from,
			     size_t n, const char *user)
{
	return __guarded(op, to, from, n, user, 0);
}

/* The kernel's delivery of @sig to the action saved before ours. */
static void chain(int sig, siginfo_t *info, void *ctx)
{
	struct sigaction *prev = prev_for(sig);
	struct sigaction act = *prev;
	bool sent = info && info->si_code <= 0;
	sigset_t mask, saved;

	if (!(act.sa_flags & SA_SIGINFO) &&
	    (act.sa_handler == SIG_DFL || act.sa_handler == SIG_IGN)) {
		struct sigaction dfl;

		if (sent && act.sa_handler == SIG_IGN)
			return;		/* a sent signal may be ignored */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigemptyset(&dfl.sa_mask);
		sigaction(sig, &dfl, NULL);
		if (sent)
			raise(sig);
		/* A real fault: returning re-executes the instruction, now fatal. */
		return;
	}

	if (act.sa_flags & SA_RESETHAND) {
		/* One-shot action: the next delivery gets the default. */
		memset(prev, 0, sizeof(*prev));
		prev->sa_handler = SIG_DFL;
		sigemptyset(&prev->sa_mask);
	}

	mask = act.sa_mask;
	if (!(act.sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &saved);
	if (act.sa_flags & SA_SIGINFO)
		act.sa_sigaction(sig, info, ctx);
	else
		act.sa_handler(sig);
	/* The handler returned (it did not jump away): sigreturn's mask. */
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/*
 * NO-FAULT COPIES
 *
 * copy_from_user_nofault() is the user-space "pagefault_disable()": a
 * fault on a view that would need a page lock must not be served but
 * refused, so that the copy stops short (BRIEF §3).  The view fault
 * handler runs in another thread and only knows the faulting thread's id,
 * so each thread publishes a slot {tid, gen} in a process-wide table; gen
 * is odd while the thread is inside a no-fault copy.  The handler calls
 * uaccess_refuse_fault(tid): if the slot says "inside", it queues
 * PCACHE_NOFAULT_SIGNAL (SIGBUS, sigqueue()d with a tagged payload carrying
 * the generation) to the thread.  The thread is blocked in that very fault,
 * so it is still inside the copy; the signal interrupts the fault, and
 * fault_handler() siglongjmp()s out of the copy if the generation still
 * matches.  A late or stray refusal (the fault got served by another thread
 * in between, and the copy went on and finished) finds no matching guard and
 * is ignored, so it can never kill the process or cut short a later copy.
 * SIGBUS and not a real-time signal: ThreadSanitizer delivers SIGSEGV and
 * SIGBUS at once but defers other signals to its next interceptor, and a
 * thread re-faulting in a loop never reaches one.
 */
#define NOFAULT_SLOTS	1024

/* A line each: gen is stored twice per no-fault copy, by its thread only. */
struct nofault_slot {
	int tid;		/* atomic: 0 free */
	unsigned int gen;	/* atomic: odd while in a no-fault copy */
} __attribute__((aligned(64)));

static struct nofault_slot nofault_slots[NOFAULT_SLOTS];
static __thread struct nofault_slot *my_nofault_slot
	__attribute__((tls_model("initial-exec")));
static pthread_key_t nofault_key;

static void nofault_slot_release(void *slot)
{
	struct nofault_slot *s = slot;

	__atomic_store_n(&s->tid, 0, __ATOMIC_RELEASE);
}

static struct nofault_slot *nofault_slot_get(void)
{
	struct nofault_slot *s = my_nofault_slot;
	int tid, i, zero;

	if (likely(s))
		return s;
	tid = (int)syscall(SYS_gettid);
	for (i = 0; i < NOFAULT_SLOTS; i++) {
		s = &nofault_slots[(tid + i) % NOFAULT_SLOTS];
		zero = 0;
		if (__atomic_compare_exchange_n(&s->tid, &zero, tid, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			my_nofault_slot = s;
			pthread_setspecific(nofault_key, s);
			return s;
		}
	}
	return NULL;
}

/* The payload of a refusal: a tag, so it is never taken for anything else. */
#define NOFAULT_TAG	0x70636e66ull	/* "pcnf" */

static bool is_refusal(const siginfo_t *info)
{
	return info->si_code == SI_QUEUE && info->si_pid == getpid() &&
	       ((uintptr_t)info->si_value.sival_ptr >> 32) == NOFAULT_TAG;
}

static bool fault_is_guarded(const struct fault_guard *g, const siginfo_t *info)
{
	uintptr_t addr;

	if (!g)
		return false;
	if (info->si_code <= 0 || info->si_code == SI_KERNEL)
		return true;
	addr = (uintptr_t)info->si_addr;
	return addr >= g->ulo && addr < g->uhi;
}

static void fault_handler(int sig, siginfo_t *info, void *ctx)
{
	struct fault_guard *g = current_guard;

	if (unlikely(is_refusal(info))) {
		/* Only the no-fault copy it was sent for may be cut short. */
		if (!g || g->nofault_gen !=
		    (unsigned int)(uintptr_t)info->si_value.sival_ptr)
			return;
	} else if (!fault_is_guarded(g, info)) {
		chain(sig, info, ctx);
		return;
	}
#ifdef UACCESS_TSAN
	/* TSan ran us with all signals blocked: put the fault's mask back. */
	pthread_sigmask(SIG_SETMASK, &((ucontext_t *)ctx)->uc_sigmask, NULL);
#endif
	siglongjmp(g->env, 1);
}

size_t copy_from_user_nofault(void *to, const void *from, size_t n)
{
	struct nofault_slot *s = nofault_slot_get();
	unsigned int gen;
	size_t left;

	if (unlikely(!s))
		return n;	/* table full: refuse to copy rather than deadlock */
	/*
	 * Only this thread writes its gen, so a plain store will do: no locked
	 * instruction on the write path.  The handler reads gen only after it
	 * read the message of a fault this copy raised, and the fault comes
	 * after the store in program order; the kernel's queueing of the
	 * message orders them (x86-TSO; other machines would need a fence).
	 */
	gen = __atomic_load_n(&s->gen, __ATOMIC_RELAXED) + 1;
	__atomic_store_n(&s->gen, gen, __ATOMIC_RELEASE);
#if defined(__x86_64__) || defined(__i386__)
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
	left = __guarded(UOP_COPY, to, from, n, from, gen);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&s->gen, gen + 1, __ATOMIC_RELEASE);
	return left;
}

bool uaccess_refuse_fault(int tid, uint64_t *counter)
{
	union sigval val;
	siginfo_t info;
	unsigned int gen;
	int i;

	for (i = 0; i < NOFAULT_SLOTS; i++) {
		struct nofault_slot *s = &nofault_slots[(tid + i) % NOFAULT_SLOTS];
		int t = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);

		if (!t)
			return false;	/* slots fill from tid % N on: not here */
		if (t != tid)
			continue;
		gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
		if (!(gen & 1))
			return false;
		memset(&info, 0, sizeof(info));
		val.sival_ptr = (void *)(uintptr_t)(NOFAULT_TAG << 32 | gen);
		info.si_signo = PCACHE_NOFAULT_SIGNAL;
		info.si_code = SI_QUEUE;
		info.si_pid = getpid();
		info.si_uid = getuid();
		info.si_value = val;
		/* Counted before the signal: the woken copy may read the count. */
		if (counter)
			__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
		syscall(SYS_rt_tgsigqueueinfo, getpid(), tid,
			PCACHE_NOFAULT_SIGNAL, &info);
		return true;
	}
	return false;
}

static void uaccess_install(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS };
	struct sigaction act;

	if (pthread_key_create(&nofault_key, nofault_slot_release)) {
		uaccess_error = -EAGAIN;
		return;
	}

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = fault_handler;
	act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
#ifdef UACCESS_ASAN
	/* ASan's siglongjmp() from its sigaltstack costs ~170 us: see the top. */
	act.sa_flags &= ~SA_ONSTACK;
#endif
	sigemptyset(&act.sa_mask);

	for (size_t k = 0; k < ARRAY_SIZE(sigs); k++) {
		if (sigaction(sigs[k], &act, prev_for(sigs[k])) < 0) {
			uaccess_error = -errno;
			/* Put back what we replaced; nothing is half-installed. */
			while (k-- > 0)
				sigaction(sigs[k], prev_for(sigs[k]), NULL);
			return;
		}
	}
	__atomic_store_n(&uaccess_ready, 1, __ATOMIC_RELEASE);
}

int uaccess_init(void)
{
	pthread_once(&uaccess_once, uaccess_install);
	return uaccess_error;
}

size_t copy_from_user(void *to, const void *from, size_t n)
{
	return guarded(UOP_COPY, to, from, n, from);
}

size_t copy_to_user(void *to, const void *from, size_t n)
{
	return guarded(UOP_COPY, to, from, n, to);
}

size_t clear_user(void *to, size_t n)
{
	return guarded(UOP_CLEAR, to, NULL, n, to);
}

size_t fault_in_readable(const void *uaddr, size_t size)
{
	return guarded(UOP_TOUCH_READ, NULL, uaddr, size, uaddr);
}

size_t fault_in_writeable(void *uaddr, size_t size)
{
	return guarded(UOP_TOUCH_WRITE, uaddr, NULL, size, uaddr);
}

long strncpy_from_user(char *dst, const char *src, size_t count)
{
	if (!count)
		return 0;
	if (guarded(UOP_STRCPY, dst, src, count, src))
		return -EFAULT;
	return (long)strnlen(dst, count);
}
