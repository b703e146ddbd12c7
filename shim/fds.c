/* See fds.h. */
#include "fds.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOOP_MAX 65536

/* Test builds force the fallback so that it is exercised on a kernel that has close_range. */
#ifdef PAM_MAPI_TEST_NO_CLOSE_RANGE
#undef SYS_close_range
#endif

int fds_loop_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < LOOP_MAX)
		return rl.rlim_cur < 1024 ? 1024 : (int)rl.rlim_cur;
	return LOOP_MAX;
}

void fds_close_span(unsigned lo, unsigned hi, int loop_max)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0U) == 0)
		return;
#endif
	for (unsigned fd = lo; fd <= hi && fd < (unsigned)loop_max; fd++)
		close((int)fd);
}
