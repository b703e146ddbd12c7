/* Starting and supervising the helper (the process contract of docs/protocol.md section 1). Each
 * point answers a pitfall of a PAM module that runs a program inside someone else's process.
 *
 * Child status vs. the host's SIGCHLD handling: a supervisor process that never calls execve.
 *   The host must not be able to take the helper's exit status: saslauthd's SIGCHLD handler reaps
 *   every child with waitpid(-1, WNOHANG), and with SIGCHLD set to SIG_IGN the kernel reaps
 *   children itself. pam_unix sets SIGCHLD to SIG_DFL around fork/wait, but that is process-wide
 *   and races in threaded hosts (two threads can even restore each other's saved handler).
 *   A child made by the raw clone syscall with no flags and exit signal 0 sends no SIGCHLD, is
 *   never auto-reaped and is invisible to waitpid without __WCLONE/__WALL. Yet the kernel sets the
 *   exit signal back to SIGCHLD on execve (fs/exec.c de_thread: "we have changed execution
 *   domain"), which tests/shim/sigchld_test.ts shows: an exec'd clone child is reaped by the
 *   host's handler. So the shim clones a supervisor with exit signal 0 that never execs. The
 *   supervisor has its own copy of the signal table, so it can set SIGCHLD to SIG_DFL without
 *   touching the host; it forks the helper as its own child, waits for it, kills and reaps it, and
 *   writes the wait status to the shim on a pipe. The shim waits for the supervisor with
 *   waitpid(pid, __WALL). Nothing process-wide in the host changes, so threads cannot race.
 *   Raw clone skips glibc's atfork handlers; that is fine because the supervisor and the helper
 *   child make only async-signal-safe calls (no malloc, no stdio, no locks).
 *
 * Descriptors: the helper's stdin is one end of a UNIX socketpair, so the request is written
 *   with send(MSG_NOSIGNAL) (a helper that is gone cannot raise SIGPIPE in the host) and ended
 *   with shutdown(), which the helper sees as EOF even if another thread's fork holds a copy of our
 *   end. stdout and stderr are pipes. Every descriptor the shim opens is close-on-exec; the
 *   supervisor closes every descriptor it does not need (including the host's 0-2), and the helper
 *   child closes every fd above 2 with close_range (a bounded loop where that is missing: fds.c).
 *
 * Signals: the shim blocks all signals in the calling thread around clone, so no host handler can
 *   run in the supervisor, which keeps them blocked. The helper child resets every disposition to
 *   SIG_DFL (SIG_IGN would survive execve), libc-reserved ones included, unblocks everything and
 *   calls execve.
 *
 * Core files: the supervisor makes itself not dumpable and sets RLIMIT_CORE to 0/0 before it
 *   forks the helper, which inherits the limit through execve: both hold the password, which must
 *   never reach a file (pam_mapi(8) SECURITY), whatever `ulimit -c` the host runs with.
 *
 * Deadline: one CLOCK_MONOTONIC deadline, enforced by the supervisor with poll() on a pidfd (a
 *   10 ms WNOHANG|WNOWAIT check where pidfd_open is missing) - no alarm(), no handlers. On expiry:
 *   SIGTERM to the helper's process group, SIGKILL 200 ms later. The group always gets SIGKILL
 *   before its leader is reaped (the unreaped leader keeps the pgid from being reused), which also
 *   removes anything the helper left running. The shim reads the reply and stderr with poll()
 *   against the same deadline plus the supervisor's grace times, asks the supervisor to kill early
 *   (reply too large) by writing to a control pipe, and the supervisor also kills the helper when
 *   that pipe reaches EOF (the host went away). */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fds.h"
#include "protocol.h"

#define KILL_GRACE_MS 200       /* SIGTERM -> SIGKILL (protocol.md 1) */
#define REAP_AFTER_KILL_MS 2000 /* a SIGKILLed process still there after this is stuck in the kernel */
#define SHIM_MARGIN_MS 1000     /* the shim's own limit beyond the supervisor's */
#define FALLBACK_TICK_MS 10     /* exit check interval without pidfd */

#ifndef __WALL
#define __WALL 0x40000000
#endif

/* Test builds force the fallback so that it is exercised on a kernel that has pidfd_open (fds.c
 * does the same for close_range). */
#ifdef PAM_MAPI_TEST_NO_PIDFD
#undef SYS_pidfd_open
#endif

/* What the supervisor reports (one write, well below PIPE_BUF, so it arrives whole). */
enum sup_kind { SUP_EXITED = 1, SUP_TIMEOUT, SUP_KILLED, SUP_START_FAILED, SUP_UNKILLABLE };
enum { START_FORK, START_SETRLIMIT };  /* status of SUP_START_FAILED: what failed */
struct sup_report {
	int32_t kind;
	int32_t status;     /* wait status of the helper (SUP_EXITED, SUP_TIMEOUT, SUP_KILLED) */
	int32_t pid;        /* the helper's pid */
	int32_t err;        /* errno (SUP_START_FAILED) */
};

/* Everything the supervisor and the helper child need, prepared before clone: after clone only
 * async-signal-safe calls are allowed, and no memory is allocated. */
struct plan {
	const char *path;
	char *const *argv;
	char *const *envp;
	int in_fd, out_fd, err_fd;  /* the helper's stdin, stdout, stderr (all > 2) */
	int report_fd, ctl_fd;      /* supervisor -> shim, shim -> supervisor (all > 2) */
	int keep[5];                /* the five above, ascending */
	int close_max;
	long long deadline_ms;      /* CLOCK_MONOTONIC */
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- after clone: async-signal-safe code only ---- */

/* Sets sig to SIG_DFL with no flags and an empty mask, through the raw system call: glibc's
 * sigaction() refuses the signals it reserves for itself (32, 33), and a host that ignores those
 * must not pass that on either. SIG_DFL is 0, so an all-zero kernel struct sigaction is right
 * whatever the architecture's field order. */
static void set_default(int sig)
{
	static const unsigned long zero[8];

	syscall(SYS_rt_sigaction, sig, zero, NULL, (NSIG - 1) / 8);
}

/* Writes "pam_mapi: <what> failed: errno N\n" to fd 2 of the helper child (its stderr pipe). */
static void child_report(const char *what, int err)
{
	char buf[96], num[12];
	size_t n = 0, k = 0;
	const char *parts[] = { "pam_mapi: ", what, " failed: errno " };

	for (size_t i = 0; i < 3; i++)
		for (const char *s = parts[i]; *s && n < sizeof buf - 16; s++)
			buf[n++] = *s;
	do {
		num[k++] = (char)('0' + err % 10);
		err /= 10;
	} while (err > 0 && k < sizeof num);
	while (k > 0)
		buf[n++] = num[--k];
	buf[n++] = '\n';
	if (write(2, buf, n) < 0) {
		/* nowhere left to report to */
	}
}

/* The helper child: stdio onto our pipes, nothing else open, default signals, own group,
 * umask 077. */
static void __attribute__((noreturn)) helper_exec(const struct plan *p, pid_t supervisor)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			set_default(sig);

	if (dup2(p->in_fd, 0) != 0 || dup2(p->out_fd, 1) != 1 || dup2(p->err_fd, 2) != 2)
		_exit(126);
	fds_close_span(3, ~0U, p->close_max);
	/* Own process group, so a timeout can kill the helper and everything it started. */
	if (setpgid(0, 0) != 0) {
		child_report("setpgid", errno);
		_exit(126);
	}
	/* If the supervisor dies, so does the helper. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != supervisor)
		_exit(126);
	/* Whatever the helper (and Deno under it) creates is nobody else's: a host running with
	 * umask 000 must not leave Deno's code cache writable by others (README "Security notes"). */
	umask(077);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(p->path, p->argv, p->envp);
	child_report("execve", errno);
	_exit(127);
}

/* Non-reaping check whether the helper has exited. */
static bool sup_exited(pid_t helper, bool *exited)
{
	siginfo_t si;

	if (*exited)
		return true;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)helper, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == helper)
		*exited = true;
	return *exited;
}

/* Waits up to ms for the helper to exit, without reaping it. */
static bool sup_wait_exit(pid_t helper, int pidfd, bool *exited, long long ms)
{
	long long until = now_ms() + ms;

	while (!sup_exited(helper, exited)) {
		long long left = until - now_ms();
		struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
		if (left <= 0)
			return false;
		if (pidfd < 0 && left > FALLBACK_TICK_MS)
			left = FALLBACK_TICK_MS;
		poll(&pfd, pidfd >= 0 ? 1 : 0, (int)left);
	}
	return true;
}

static void __attribute__((noreturn)) sup_send(const struct plan *p, int kind, int status,
					       pid_t pid, int err)
{
	struct sup_report r = { kind, status, (int32_t)pid, err };
	if (write(p->report_fd, &r, sizeof r) != (ssize_t)sizeof r) {
		/* the shim sees EOF without a report */
	}
	_exit(0);
}

/* The supervisor: a clone child with exit signal 0 that never execs (see the top of the file). */
static void __attribute__((noreturn)) supervise_helper(const struct plan *p)
{
	static const struct rlimit no_core = { 0, 0 };
	unsigned lo = 0;
	int pidfd = -1, kind = SUP_EXITED, status = 0;
	bool exited = false;
	long pid;
	pid_t helper, self;

	/* We hold a copy of the host's memory, the request with the password included, and the
	 * helper will hold the password too (pam_mapi(8) SECURITY: never in a file): no core file
	 * from either of us. Not dumpable also keeps the host's other processes from reading our
	 * memory. Both are plain system calls. RLIMIT_CORE 0 is inherited by the helper and kept
	 * across execve (dumpable is not); the helper cannot raise it again: it has no ffi, run or sys
	 * permission. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (setrlimit(RLIMIT_CORE, &no_core) != 0)
		sup_send(p, SUP_START_FAILED, START_SETRLIMIT, 0, errno);
	/* Our own signal table: undo a host's SIG_IGN or SA_NOCLDWAIT, which would make the kernel
	 * reap the helper before we can read its status. Signals stay blocked in here. */
	set_default(SIGCHLD);
	/* Without this an administrator would see a second copy of the host (say "saslauthd") in ps. */
	prctl(PR_SET_NAME, "pam_mapi_sup", 0, 0, 0);

	/* Keep only our five descriptors; the host's (client sockets, listeners) are no business of
	 * ours, not even its 0-2. */
	for (int i = 0; i < 5; i++) {
		if ((unsigned)p->keep[i] > lo)
			fds_close_span(lo, (unsigned)p->keep[i] - 1, p->close_max);
		lo = (unsigned)p->keep[i] + 1;
	}
	fds_close_span(lo, ~0U, p->close_max);

	self = (pid_t)syscall(SYS_getpid);
	/* A plain fork of this single-threaded process: exit signal SIGCHLD, to us. */
	pid = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0)
		helper_exec(p, self);
	if (pid < 0)
		sup_send(p, SUP_START_FAILED, 0, 0, errno);
	helper = (pid_t)pid;
	/* Whichever of us runs first, the group exists before any kill(-helper). EACCES means the
	 * helper already called execve, after its own setpgid. */
	setpgid(helper, helper);
	close(p->in_fd);
	close(p->out_fd);
	close(p->err_fd);
#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, helper, 0);
#endif

	for (;;) {
		struct pollfd pfd[2] = { { .fd = p->ctl_fd, .events = POLLIN },
					 { .fd = pidfd, .events = POLLIN } };
		long long left = p->deadline_ms - now_ms();

		if (sup_exited(helper, &exited))
			break;
		if (left <= 0) {
			kind = SUP_TIMEOUT;
			break;
		}
		if (pidfd < 0 && left > FALLBACK_TICK_MS)
			left = FALLBACK_TICK_MS;
		if (poll(pfd, pidfd >= 0 ? 2 : 1, left > INT_MAX ? INT_MAX : (int)left) > 0 &&
		    pfd[0].revents) {
			/* A byte (reply too large) or EOF (the shim is gone): stop the helper. */
			kind = SUP_KILLED;
			break;
		}
	}
	if (!exited) {
		kill(-helper, SIGTERM);
		sup_wait_exit(helper, pidfd, &exited, KILL_GRACE_MS);
	}
	/* Whatever else is left in the group: the leader is unreaped, so the pgid is still ours. */
	kill(-helper, SIGKILL);
	if (!sup_wait_exit(helper, pidfd, &exited, REAP_AFTER_KILL_MS))
		sup_send(p, SUP_UNKILLABLE, 0, helper, 0);
	while (waitpid(helper, &status, 0) < 0) {
		if (errno != EINTR)
			sup_send(p, SUP_UNKILLABLE, 0, helper, errno);
	}
	sup_send(p, kind, status, helper, 0);
}

/* ---- the shim's side ---- */

/* Moves fd above 2 (a host that closed its stdio could hand us 0-2), keeping close-on-exec. */
static int above_stdio(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

struct run {
	int sock, out, err, report, ctl;   /* the shim's ends; -1 when closed */
	const unsigned char *req;
	size_t req_len, req_off;
	struct spawn_result *res;
	size_t reply_cap;
	bool oversize;
};

/* Reads what is available on stdout. Returns -1 once more than PROTO_MAX_REPLY bytes came. */
static int read_reply(struct run *r, int max_reads)
{
	for (int i = 0; i < max_reads && r->out >= 0; i++) {
		size_t room = r->reply_cap - r->res->reply_len;
		ssize_t n;
		if (room == 0)
			return -1;
		n = read(r->out, r->res->reply + r->res->reply_len, room);
		if (n > 0) {
			r->res->reply_len += (size_t)n;
			if (r->res->reply_len > PROTO_MAX_REPLY)
				return -1;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || errno != EAGAIN)
				close_fd(&r->out);
			break;
		}
	}
	return 0;
}

/* Reads what is available on stderr, keeping only the first SPAWN_STDERR_KEEP bytes. */
static void read_stderr(struct run *r, int max_reads)
{
	char sink[4096];

	for (int i = 0; i < max_reads && r->err >= 0; i++) {
		struct spawn_result *res = r->res;
		size_t room = SPAWN_STDERR_KEEP - res->err_len;
		ssize_t n = room ? read(r->err, res->err + res->err_len, room)
				 : read(r->err, sink, sizeof sink);
		if (n > 0) {
			if (room)
				res->err_len += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || errno != EAGAIN)
				close_fd(&r->err);
			break;
		}
	}
}

/* Sends more of the request; the socket never raises SIGPIPE (MSG_NOSIGNAL). */
static void write_request(struct run *r)
{
	while (r->req_off < r->req_len) {
		ssize_t n = send(r->sock, r->req + r->req_off, r->req_len - r->req_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			r->req_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* The helper closed its stdin early (EPIPE, ECONNRESET): its reply and exit status
		 * decide; nothing more to write. */
		break;
	}
	shutdown(r->sock, SHUT_WR);
	close_fd(&r->sock);
}

/* Runs until the supervisor reports (or the shim's own limit passes). Returns 0 with the report,
 * or -1 when none came. */
static int supervise(struct run *r, long long limit, struct sup_report *rep)
{
	for (;;) {
		struct pollfd pfd[4];
		int n = 0, i_sock = -1, i_out = -1, i_err = -1, i_rep = -1;
		long long left = limit - now_ms();

		if (left <= 0)
			return -1;
		if (r->sock >= 0) {
			i_sock = n;
			pfd[n++] = (struct pollfd){ .fd = r->sock, .events = POLLOUT };
		}
		if (r->out >= 0) {
			i_out = n;
			pfd[n++] = (struct pollfd){ .fd = r->out, .events = POLLIN };
		}
		if (r->err >= 0) {
			i_err = n;
			pfd[n++] = (struct pollfd){ .fd = r->err, .events = POLLIN };
		}
		i_rep = n;
		pfd[n++] = (struct pollfd){ .fd = r->report, .events = POLLIN };
		if (poll(pfd, (nfds_t)n, left > INT_MAX ? INT_MAX : (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (i_sock >= 0 && pfd[i_sock].revents)
			write_request(r);
		if (i_out >= 0 && pfd[i_out].revents && read_reply(r, 64) < 0 && !r->oversize) {
			/* Too much: ask the supervisor to kill the helper, stop reading. */
			r->oversize = true;
			if (write(r->ctl, "k", 1) < 0)
				close_fd(&r->ctl);
			close_fd(&r->out);
		}
		if (i_err >= 0 && pfd[i_err].revents)
			read_stderr(r, 16);
		if (pfd[i_rep].revents) {
			ssize_t got;
			do
				got = read(r->report, rep, sizeof *rep);
			while (got < 0 && errno == EINTR);
			return got == (ssize_t)sizeof *rep ? 0 : -1;
		}
	}
}

void spawn_helper(const char *path, const unsigned char *request, size_t request_len,
		  int deadline_s, struct spawn_result *res)
{
	static const char arg_pam[] = "--pam";
	static const char env_path[] = "PATH=/usr/bin:/bin";
	long long start = now_ms();
	char *argv[3] = { (char *)path, (char *)arg_pam, NULL };
	char *envp[2] = { (char *)env_path, NULL };
	int sv[2] = { -1, -1 }, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int prep[2] = { -1, -1 }, pctl[2] = { -1, -1 };
	struct plan plan;
	struct run r;
	struct sup_report rep;
	sigset_t all, old;
	int cancel_state, saved, st;
	long sup;

	memset(res, 0, sizeof *res);
	memset(&r, 0, sizeof r);
	memset(&plan, 0, sizeof plan);
	r.res = res;
	r.sock = r.out = r.err = r.report = r.ctl = -1;
	r.req = request;
	r.req_len = request_len;
	r.reply_cap = PROTO_MAX_REPLY + 1;
	res->outcome = SPAWN_START_FAILED;

	res->reply = malloc(r.reply_cap);
	if (!res->reply) {
		snprintf(res->why, sizeof res->why, "out of memory");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(res->why, sizeof res->why, "socketpair: %s", strerror(errno));
		goto out;
	}
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0 || pipe2(prep, O_CLOEXEC) != 0 ||
	    pipe2(pctl, O_CLOEXEC) != 0) {
		snprintf(res->why, sizeof res->why, "pipe: %s", strerror(errno));
		goto out;
	}
	sv[1] = above_stdio(sv[1]);
	po[1] = above_stdio(po[1]);
	pe[1] = above_stdio(pe[1]);
	prep[1] = above_stdio(prep[1]);
	pctl[0] = above_stdio(pctl[0]);
	if (sv[1] < 0 || po[1] < 0 || pe[1] < 0 || prep[1] < 0 || pctl[0] < 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(po[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(pe[0], F_SETFL, O_NONBLOCK) != 0) {
		snprintf(res->why, sizeof res->why, "fcntl: %s", strerror(errno));
		goto out;
	}

	plan.path = path;
	plan.argv = argv;
	plan.envp = envp;
	plan.in_fd = sv[1];
	plan.out_fd = po[1];
	plan.err_fd = pe[1];
	plan.report_fd = prep[1];
	plan.ctl_fd = pctl[0];
	plan.keep[0] = sv[1];
	plan.keep[1] = po[1];
	plan.keep[2] = pe[1];
	plan.keep[3] = prep[1];
	plan.keep[4] = pctl[0];
	for (int i = 1; i < 5; i++)        /* insertion sort: five distinct fds */
		for (int j = i; j > 0 && plan.keep[j - 1] > plan.keep[j]; j--) {
			int t = plan.keep[j];
			plan.keep[j] = plan.keep[j - 1];
			plan.keep[j - 1] = t;
		}
	plan.close_max = fds_loop_max();
	plan.deadline_ms = start + (long long)deadline_s * 1000;

	/* A cancelled thread would leave the supervisor unreaped and our fds open. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* Flags 0: nothing shared, exit signal 0. All other arguments are 0/NULL, so the
	 * architecture-specific order of clone's arguments does not matter. */
	sup = syscall(SYS_clone, 0UL, NULL, NULL, NULL, NULL);
	if (sup == 0)
		supervise_helper(&plan);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (sup < 0) {
		pthread_setcancelstate(cancel_state, NULL);
		snprintf(res->why, sizeof res->why, "clone: %s", strerror(saved));
		goto out;
	}
	close_fd(&sv[1]);
	close_fd(&po[1]);
	close_fd(&pe[1]);
	close_fd(&prep[1]);
	close_fd(&pctl[0]);
	r.sock = sv[0];
	r.out = po[0];
	r.err = pe[0];
	r.report = prep[0];
	r.ctl = pctl[1];
	sv[0] = po[0] = pe[0] = prep[0] = pctl[1] = -1;

	if (supervise(&r, plan.deadline_ms + KILL_GRACE_MS + REAP_AFTER_KILL_MS + SHIM_MARGIN_MS,
		      &rep) < 0) {
		/* No report: the supervisor died or hangs. Killing it makes the helper's parent-death
		 * signal kill the helper. */
		kill((pid_t)sup, SIGKILL);
		res->outcome = SPAWN_WAIT_FAILED;
		snprintf(res->why, sizeof res->why, "helper supervisor (pid %ld) ended without a report",
			 sup);
	} else {
		res->pid = rep.pid;
		res->status = rep.status;
		switch (rep.kind) {
		case SUP_EXITED:
			res->outcome = r.oversize ? SPAWN_OVERSIZE : SPAWN_EXITED;
			break;
		case SUP_TIMEOUT:
			res->outcome = SPAWN_TIMEOUT;
			break;
		case SUP_KILLED:
			res->outcome = r.oversize ? SPAWN_OVERSIZE : SPAWN_WAIT_FAILED;
			if (!r.oversize)
				snprintf(res->why, sizeof res->why, "helper pid %d stopped unexpectedly",
					 (int)rep.pid);
			break;
		case SUP_START_FAILED:
			res->outcome = SPAWN_START_FAILED;
			snprintf(res->why, sizeof res->why, "%s: %s",
				 rep.status == START_SETRLIMIT ? "setrlimit" : "fork", strerror(rep.err));
			break;
		default:
			res->outcome = SPAWN_WAIT_FAILED;
			snprintf(res->why, sizeof res->why,
				 "helper pid %d did not die after SIGKILL; left behind", (int)rep.pid);
			break;
		}
		/* The helper is gone: what it wrote is in the pipes. Take it without waiting for EOF
		 * (a process outside its group could hold the pipes open). */
		if (!r.oversize && read_reply(&r, 64) < 0)
			res->outcome = SPAWN_OVERSIZE;
		read_stderr(&r, 64);
	}
	/* The supervisor exits right after its report (or was just killed): reap exactly it. */
	while (waitpid((pid_t)sup, &st, __WALL) < 0 && errno == EINTR)
		;
	close_fd(&r.sock);
	close_fd(&r.out);
	close_fd(&r.err);
	close_fd(&r.report);
	close_fd(&r.ctl);
	pthread_setcancelstate(cancel_state, NULL);
	res->err[res->err_len] = '\0';
	res->elapsed_ms = (long)(now_ms() - start);
	return;
out:
	close_fd(&sv[0]);
	close_fd(&sv[1]);
	close_fd(&po[0]);
	close_fd(&po[1]);
	close_fd(&pe[0]);
	close_fd(&pe[1]);
	close_fd(&prep[0]);
	close_fd(&prep[1]);
	close_fd(&pctl[0]);
	close_fd(&pctl[1]);
	res->elapsed_ms = (long)(now_ms() - start);
}
