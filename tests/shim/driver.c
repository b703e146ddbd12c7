/* A PAM application for the shim tests: loads a private pam.d directory with pam_start_confdir
 * (no root, no preload needed) and can behave like the hosts pam_mapi lives in:
 *
 *   driver [options] CONFDIR SERVICE
 *     --user U           user name for pam_start (default alice)
 *     --password P       what the conversation answers to an echo-off prompt; without it the
 *                        conversation fails (PAM_CONV_ERR)
 *     --password-stdin   the same, read from the first line of stdin (keeps it out of our argv)
 *     --host-signals     like a daemon: SIG_IGN for SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGALRM,
 *                        SIGUSR2, and SIGTERM, SIGUSR2 and SIGQUIT blocked (nothing of it may
 *                        reach the helper)
 *     --rhost R          PAM_RHOST
 *     --ops LIST         comma-separated: auth, acct, setcred, user=NAME (pam_set_item PAM_USER)
 *     --sigchld MODE     default | ign (SIG_IGN, auto-reaping) | reaper (a handler that reaps
 *                        every child with waitpid(-1, WNOHANG), like saslauthd's)
 *     --subreaper        PR_SET_CHILD_SUBREAPER, so orphans of a killed helper come back here
 *     --eintr            another thread interrupts the authenticating thread with SIGUSR1 (no
 *                        SA_RESTART) every millisecond
 *     --threads N        N threads authenticate at once; thread t uses user U-t<t> and password
 *                        pw-<user> when t is even, bad-<user> when odd (see --iterations)
 *     --iterations N     per thread (default 1)
 *     --loops N          N sequential authentications (fresh handle each); prints resource use
 *     --show-env NAME    after the ops, print the PAM environment variable NAME (pam_get_items.so
 *                        puts items there)
 *   driver --dlopen MODULE   dlopen it like libpam does and look up the PAM entry points and a few
 *                            internal names; prints "symbol NAME=found|missing"
 *
 * Output, one "key=value" per line: auth=, acct=, setcred= (PAM code names), prompts=, and for
 * loops fds_before=, fds_after=, rss_before_kb=, rss_after_kb=; always children= and zombies= (of
 * this process, at the end) and reaped= (children the SIGCHLD handler took). */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <security/pam_appl.h>

static const char *confdir, *service, *user = "alice", *password, *rhost, *ops = "auth", *show_env;
static atomic_int reaped;
static atomic_int stop_storm;

static const char *code_name(int c)
{
	static const char *const names[] = {
		"PAM_SUCCESS", "PAM_OPEN_ERR", "PAM_SYMBOL_ERR", "PAM_SERVICE_ERR", "PAM_SYSTEM_ERR",
		"PAM_BUF_ERR", "PAM_PERM_DENIED", "PAM_AUTH_ERR", "PAM_CRED_INSUFFICIENT",
		"PAM_AUTHINFO_UNAVAIL", "PAM_USER_UNKNOWN", "PAM_MAXTRIES", "PAM_NEW_AUTHTOK_REQD",
		"PAM_ACCT_EXPIRED", "PAM_SESSION_ERR", "PAM_CRED_UNAVAIL", "PAM_CRED_EXPIRED",
		"PAM_CRED_ERR", "PAM_NO_MODULE_DATA", "PAM_CONV_ERR", "PAM_AUTHTOK_ERR",
		"PAM_AUTHTOK_RECOVERY_ERR", "PAM_AUTHTOK_LOCK_BUSY", "PAM_AUTHTOK_DISABLE_AGING",
		"PAM_TRY_AGAIN", "PAM_IGNORE", "PAM_ABORT", "PAM_AUTHTOK_EXPIRED",
		"PAM_MODULE_UNKNOWN", "PAM_BAD_ITEM", "PAM_CONV_AGAIN", "PAM_INCOMPLETE",
	};
	return c >= 0 && c < (int)(sizeof names / sizeof *names) ? names[c] : "PAM_(unknown)";
}

struct conv_data {
	const char *password;
	int prompts;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_data *cd = data;
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			cd->prompts++;
			if (!cd->password) {
				free(r);
				return PAM_CONV_ERR;
			}
			fprintf(stderr, "conv: prompt \"%s\"\n", msg[i]->msg);
			r[i].resp = strdup(cd->password);
			break;
		default:
			fprintf(stderr, "conv: message \"%s\"\n", msg[i]->msg);
			break;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* One PAM transaction running the ops list; results go to out (or stdout). */
static int transaction(const char *u, const char *pw, char *out, size_t cap)
{
	struct conv_data cd = { pw, 0 };
	struct pam_conv pc = { conv, &cd };
	pam_handle_t *pamh = NULL;
	char list[512], *save = NULL;
	int rc, last = PAM_SUCCESS, first_auth = -1;
	size_t used = 0;

	rc = pam_start_confdir(service, u, &pc, confdir, &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_start_confdir: %s\n", code_name(rc));
		exit(2);
	}
	if (rhost)
		pam_set_item(pamh, PAM_RHOST, rhost);
	snprintf(list, sizeof list, "%s", ops);
	for (char *op = strtok_r(list, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
		const char *key = op;
		if (strcmp(op, "auth") == 0) {
			/* Timed here, not by the test around the whole process: under load an ASan
			 * driver's own start-up and exit take seconds that are not the module's. */
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			rc = pam_authenticate(pamh, 0);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (!out && first_auth < 0)
				printf("auth_ms=%ld\n", (long)((t1.tv_sec - t0.tv_sec) * 1000 +
								 (t1.tv_nsec - t0.tv_nsec) / 1000000));
		}
		else if (strcmp(op, "acct") == 0)
			rc = pam_acct_mgmt(pamh, 0);
		else if (strcmp(op, "setcred") == 0)
			rc = pam_setcred(pamh, PAM_ESTABLISH_CRED);
		else if (strncmp(op, "user=", 5) == 0) {
			rc = pam_set_item(pamh, PAM_USER, op + 5);
			key = "set_user";
		} else {
			fprintf(stderr, "unknown op %s\n", op);
			exit(2);
		}
		if (strcmp(op, "auth") == 0 && first_auth < 0)
			first_auth = rc;
		last = rc;
		if (out)
			used += (size_t)snprintf(out + used, cap - used, "%s=%s ", key, code_name(rc));
		else
			printf("%s=%s\n", key, code_name(rc));
	}
	if (!out)
		printf("prompts=%d\n", cd.prompts);
	if (!out && show_env) {
		const char *v = pam_getenv(pamh, show_env);
		printf("env_%s=%s\n", show_env, v ? v : "(unset)");
	}
	pam_end(pamh, last);
	return first_auth;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n - 1;   /* the directory's own fd */
}

static long rss_kb(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Children of this process, and how many of them are zombies. */
static void count_children(int *children, int *zombies)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], buf[512];

	*children = *zombies = 0;
	while (d && (e = readdir(d))) {
		FILE *f;
		char *p;
		int ppid;
		char state;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof buf, f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (ppid == getpid()) {
			(*children)++;
			if (state == 'Z')
				(*zombies)++;
		}
	}
	if (d)
		closedir(d);
}

static void reaper(int sig)
{
	int saved = errno, st;
	(void)sig;
	while (waitpid(-1, &st, WNOHANG) > 0)
		reaped++;
	errno = saved;
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void *storm(void *arg)
{
	pthread_t target = *(pthread_t *)arg;
	struct timespec ms = { 0, 1000000 };
	while (!stop_storm) {
		pthread_kill(target, SIGUSR1);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

struct thread_arg {
	int t, iterations;
	char out[256 * 64];
};

static void *worker(void *p)
{
	struct thread_arg *ta = p;
	char u[128], pw[160], line[256];

	snprintf(u, sizeof u, "%s-t%d", user, ta->t);
	snprintf(pw, sizeof pw, "%s-%s", ta->t % 2 == 0 ? "pw" : "bad", u);
	ta->out[0] = '\0';
	for (int i = 0; i < ta->iterations; i++) {
		int rc = transaction(u, pw, line, sizeof line);
		snprintf(ta->out + strlen(ta->out), sizeof ta->out - strlen(ta->out),
			 "thread=%d iteration=%d user=%s auth=%s\n", ta->t, i, u, code_name(rc));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 0, iterations = 1, loops = 0, eintr = 0, host_signals = 0, i, children, zombies;
	int subreaper = 0;
	pthread_t storm_thread, self = pthread_self();

	if (argc == 3 && strcmp(argv[1], "--dlopen") == 0) {
		static const char *const names[] = { "pam_sm_authenticate", "pam_sm_setcred",
			"pam_sm_acct_mgmt", "pam_sm_open_session", "pam_sm_chauthtok", "args_parse",
			"auth_run", "spawn_helper", "reply_decode", "json_parse", "b64_encode" };
		void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			printf("dlopen=%s\n", dlerror());
			return 1;
		}
		for (size_t k = 0; k < sizeof names / sizeof *names; k++)
			printf("symbol %s=%s\n", names[k], dlsym(h, names[k]) ? "found" : "missing");
		dlclose(h);
		return 0;
	}
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--subreaper") == 0) {
			prctl(PR_SET_CHILD_SUBREAPER, 1);
			subreaper = 1;
			continue;
		}
		if (strcmp(o, "--eintr") == 0) {
			eintr = 1;
			continue;
		}
		if (strcmp(o, "--host-signals") == 0) {
			host_signals = 1;
			continue;
		}
		if (strcmp(o, "--password-stdin") == 0) {
			static char buf[1024];
			if (!fgets(buf, sizeof buf, stdin))
				buf[0] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			password = buf;
			continue;
		}
		if (!v) {
			fprintf(stderr, "%s needs a value\n", o);
			return 2;
		}
		i++;
		if (strcmp(o, "--user") == 0)
			user = v;
		else if (strcmp(o, "--password") == 0)
			password = v;
		else if (strcmp(o, "--show-env") == 0)
			show_env = v;
		else if (strcmp(o, "--rhost") == 0)
			rhost = v;
		else if (strcmp(o, "--ops") == 0)
			ops = v;
		else if (strcmp(o, "--threads") == 0)
			threads = atoi(v);
		else if (strcmp(o, "--iterations") == 0)
			iterations = atoi(v);
		else if (strcmp(o, "--loops") == 0)
			loops = atoi(v);
		else if (strcmp(o, "--sigchld") == 0) {
			if (strcmp(v, "ign") == 0) {
				signal(SIGCHLD, SIG_IGN);
			} else if (strcmp(v, "reaper") == 0) {
				struct sigaction sa;
				memset(&sa, 0, sizeof sa);
				sa.sa_handler = reaper;
				sigemptyset(&sa.sa_mask);
				sigaction(SIGCHLD, &sa, NULL);   /* no SA_RESTART: interrupts poll/waitpid */
			} else if (strcmp(v, "default") != 0) {
				fprintf(stderr, "bad --sigchld %s\n", v);
				return 2;
			}
		} else {
			fprintf(stderr, "unknown option %s\n", o);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: driver [options] CONFDIR SERVICE\n");
		return 2;
	}
	confdir = argv[i];
	service = argv[i + 1];
	/* Like saslauthd: SIGPIPE at its default (terminate), whatever our parent left us. */
	signal(SIGPIPE, SIG_DFL);
	if (host_signals) {
		const int ignored[] = { SIGPIPE, SIGTERM, SIGHUP, SIGINT, SIGALRM, SIGUSR2 };
		sigset_t block;
		for (size_t k = 0; k < sizeof ignored / sizeof *ignored; k++)
			signal(ignored[k], SIG_IGN);
		sigemptyset(&block);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGUSR2);
		sigaddset(&block, SIGQUIT);
		pthread_sigmask(SIG_BLOCK, &block, NULL);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (eintr) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_usr1;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		pthread_create(&storm_thread, NULL, storm, &self);
	}

	if (threads > 0) {
		struct thread_arg *ta = calloc((size_t)threads, sizeof *ta);
		pthread_t *tid = calloc((size_t)threads, sizeof *tid);
		for (int t = 0; t < threads; t++) {
			ta[t].t = t;
			ta[t].iterations = iterations;
			pthread_create(&tid[t], NULL, worker, &ta[t]);
		}
		for (int t = 0; t < threads; t++) {
			pthread_join(tid[t], NULL);
			fputs(ta[t].out, stdout);
		}
		free(ta);
		free(tid);
	} else if (loops > 0) {
		int fds_before = 0, ok = 0, other = 0;
		long rss_before = 0;
		const int warmup = loops < 50 ? 1 : 50;
		for (int n = 0; n < loops; n++) {
			char line[256];
			if (n == warmup) {
				fds_before = count_fds();
				rss_before = rss_kb();
			}
			if (transaction(user, password, line, sizeof line) == PAM_SUCCESS)
				ok++;
			else
				other++;
		}
		printf("loops=%d success=%d other=%d\n", loops, ok, other);
		printf("fds_before=%d\nfds_after=%d\n", fds_before, count_fds());
		printf("rss_before_kb=%ld\nrss_after_kb=%ld\n", rss_before, rss_kb());
	} else {
		transaction(user, password, NULL, 0);
	}
	if (eintr) {
		stop_storm = 1;
		pthread_join(storm_thread, NULL);
	}
	count_children(&children, &zombies);
	/* As a subreaper we inherit the killed helper's orphans; the group's SIGKILL has been sent,
	 * but an orphan may still be dying or waiting for our handler on a loaded machine. Give it
	 * up to 2 s: a child that is really left behind is still counted. */
	for (int tries = 0; subreaper && children > 0 && tries < 200; tries++) {
		usleep(10000);
		count_children(&children, &zombies);
	}
	printf("children=%d\nzombies=%d\nreaped=%d\n", children, zombies, (int)reaped);
	return 0;
}
