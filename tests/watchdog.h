/*
 * watchdog.h - a hung test case is named, then the test fails, instead of
 * hanging until the runner's timeout.  For the tests whose cases can
 * deadlock (views, faults).  watchdog_start() once, set_case() per case.
 */
#ifndef PCACHE_TEST_WATCHDOG_H
#define PCACHE_TEST_WATCHDOG_H

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const char *current_case = "startup";	/* atomic */

static inline void put_str(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

static void alarm_handler(int sig)
{
	put_str("FAIL: TIMEOUT: case '");
	put_str(__atomic_load_n(&current_case, __ATOMIC_ACQUIRE));
	put_str("' hung (deadlock?)\n");
	_exit(1);
}

static void *watchdog_thread(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

/*
 * SIGALRM is taken by a thread that does nothing but wait for it, so the
 * watchdog fires even when every other thread is stuck (and under
 * ThreadSanitizer, which defers asynchronous signals to the next
 * interceptor, it is taken inside pause()).
 */
static void watchdog_start(void)
{
	struct sigaction sa;
	pthread_t t;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alarm_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	if (pthread_create(&t, NULL, watchdog_thread, NULL) == 0)
		pthread_detach(t);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void set_case(const char *name, unsigned int secs)
{
	__atomic_store_n(&current_case, name, __ATOMIC_RELEASE);
	alarm(secs);
}

#endif /* PCACHE_TEST_WATCHDOG_H */
