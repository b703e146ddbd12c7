/* Evidence for the SIGCHLD design in shim/spawn.c. A host with a saslauthd-like SIGCHLD handler
 * (reaps every child with waitpid(-1, WNOHANG)) or with SIGCHLD set to SIG_IGN starts a child with
 * the raw clone syscall, no flags and exit signal 0, and the child either
 *   exec   - calls execve (/bin/sh -c "exit 3"), or
 *   noexec - just _exit(3)s, or
 *   super  - is a supervisor like the shim's: it never execs, resets its own SIGCHLD and forks
 *            the real child (which execs), waits for it and passes the status back on a pipe.
 * Output: "host_sigchld=N host_reaped=N status=S" where S is the exit status the starter got
 * (-1 when it was lost).   usage: clone_probe reaper|ign exec|noexec|super */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sigchld, reaped;

static void reaper(int sig)
{
	int st;
	(void)sig;
	sigchld++;
	while (waitpid(-1, &st, WNOHANG) > 0)
		reaped++;
}

static void run_sh(void)
{
	char *a[] = { "/bin/sh", "-c", "exit 3", NULL };
	char *e[] = { NULL };
	execve(a[0], a, e);
	_exit(99);
}

int main(int argc, char **argv)
{
	int p[2], st = -1, status = -1;
	long pid;
	struct timespec pause = { 0, 200000000 };

	if (argc != 3)
		return 2;
	if (strcmp(argv[1], "ign") == 0) {
		signal(SIGCHLD, SIG_IGN);
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = reaper;
		sigaction(SIGCHLD, &sa, NULL);
	}
	if (pipe(p) != 0)
		return 2;
	pid = syscall(SYS_clone, 0UL, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		if (strcmp(argv[2], "exec") == 0)
			run_sh();
		if (strcmp(argv[2], "super") == 0) {
			struct sigaction dfl;
			long h;
			memset(&dfl, 0, sizeof dfl);
			dfl.sa_handler = SIG_DFL;
			sigaction(SIGCHLD, &dfl, NULL);
			h = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
			if (h == 0)
				run_sh();
			if (waitpid((pid_t)h, &st, 0) != h)
				st = -1;
			if (write(p[1], &st, sizeof st) < 0)
				_exit(98);
			_exit(0);
		}
		_exit(3);
	}
	nanosleep(&pause, NULL);    /* time for the host's handler to run, if it gets a signal */
	if (waitpid((pid_t)pid, &st, __WALL) == pid) {
		status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (strcmp(argv[2], "super") == 0) {
			int inner;
			status = read(p[0], &inner, sizeof inner) == sizeof inner && WIFEXITED(inner)
					 ? WEXITSTATUS(inner) : -1;
		}
	}
	printf("host_sigchld=%d host_reaped=%d status=%d\n", (int)sigchld, (int)reaped, status);
	return 0;
}
