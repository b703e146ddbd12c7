/* pam_bench: the load generator of `deno task bench` (scripts/bench.ts). A PAM application like
 * saslauthd's pre-forked workers: K client processes, each running whole PAM transactions
 * (pam_start_confdir, pam_authenticate, pam_end) back to back, through the real libpam and
 * whatever module the service file names (pam_mapi.so, or pam_exec.so for the baseline).
 *
 *   pam_bench [options] CONFDIR SERVICE          (the password is the first line of stdin)
 *     --user U         user name (default alice)
 *     --clients K      client processes (default 1)
 *     --count N        transactions per client (default 10), or
 *     --duration MS    each client starts transactions until MS milliseconds have passed since
 *                      the clients were released (at least one each)
 *     --warmup W       transactions run (and not recorded) in the parent before the clients start
 *
 * Output, one "key=value" per line:
 *   clients= transactions= wall_us=       (wall: from releasing the clients to the last one done)
 *   maxrss_kb=                            (largest RSS of any process reaped below us: with
 *                                          pam_mapi that is the helper, the supervisor's child;
 *                                          with pam_exec the script or curl)
 *   cpu_us=                               (user+system CPU of everything below us, warm-up excluded)
 *   result_<PAM code name>=COUNT          (one line per result seen)
 *   lat_us=V V V ...                      (one latency per transaction, microseconds)
 * The latency is the whole transaction as a host sees it, pam_start to pam_end. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <security/pam_appl.h>

#define MAX_CLIENTS 64
#define MAX_PER_CLIENT 20000

static const char *confdir, *service, *user = "alice";
static char password[1024];

struct slot {
	long lat_us;
	int rc;
};

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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
	return c >= 0 && c < (int)(sizeof names / sizeof *names) ? names[c] : "PAM_UNKNOWN";
}

/* Answers every prompt with the password (what saslauthd's conversation does). */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	(void)data;
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON) {
			r[i].resp = strdup(password);
			if (!r[i].resp) {
				for (int j = 0; j < i; j++)
					free(r[j].resp);
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static int transaction(void)
{
	struct pam_conv pc = { conv, NULL };
	pam_handle_t *pamh = NULL;
	int rc = pam_start_confdir(service, user, &pc, confdir, &pamh);

	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_bench: pam_start_confdir: %s\n", code_name(rc));
		exit(2);
	}
	rc = pam_authenticate(pamh, 0);
	pam_end(pamh, rc);
	return rc;
}

/* One client: waits for the start signal (EOF on go), then runs its transactions. */
static void client(int go, struct slot *slots, int *done, int count, int duration_ms)
{
	char c;
	int n = 0;
	long long until;

	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
	until = now_us() + (long long)duration_ms * 1000;
	for (; n < MAX_PER_CLIENT && (duration_ms ? n == 0 || now_us() < until : n < count); n++) {
		long long t0 = now_us();
		slots[n].rc = transaction();
		slots[n].lat_us = (long)(now_us() - t0);
	}
	*done = n;
	_exit(0);
}

static int num(const char *opt, const char *v, int lo, int hi)
{
	char *end;
	long n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
		fprintf(stderr, "pam_bench: %s needs a number from %d to %d\n", opt, lo, hi);
		exit(2);
	}
	return (int)n;
}

int main(int argc, char **argv)
{
	int clients = 1, count = 10, duration_ms = 0, warmup = 0, i, go[2];
	int *done;
	struct slot *slots;
	struct rusage before, after;
	pid_t pids[MAX_CLIENTS];
	long long start, end;
	int per;
	int seen[64] = { 0 }, other = 0, total = 0;

	for (i = 1; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (strcmp(o, "--user") == 0)
			user = v;
		else if (strcmp(o, "--clients") == 0)
			clients = num(o, v, 1, MAX_CLIENTS);
		else if (strcmp(o, "--count") == 0)
			count = num(o, v, 1, MAX_PER_CLIENT);
		else if (strcmp(o, "--duration") == 0)
			duration_ms = num(o, v, 1, 600000);
		else if (strcmp(o, "--warmup") == 0)
			warmup = num(o, v, 0, 1000);
		else {
			fprintf(stderr, "pam_bench: unknown option %s\n", o);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: pam_bench [--user U] [--clients K] [--count N | --duration MS] "
				"[--warmup W] CONFDIR SERVICE < password\n");
		return 2;
	}
	confdir = argv[i];
	service = argv[i + 1];
	if (!fgets(password, sizeof password, stdin))
		password[0] = '\0';
	password[strcspn(password, "\n")] = '\0';
	signal(SIGPIPE, SIG_DFL);

	for (i = 0; i < warmup; i++)
		transaction();

	per = duration_ms ? MAX_PER_CLIENT : count;
	slots = mmap(NULL, sizeof *slots * (size_t)per * (size_t)clients + sizeof(int) * MAX_CLIENTS,
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED) {
		perror("pam_bench: mmap");
		return 2;
	}
	done = (int *)(slots + (size_t)per * (size_t)clients);
	if (pipe(go) != 0) {
		perror("pam_bench: pipe");
		return 2;
	}
	getrusage(RUSAGE_CHILDREN, &before);
	for (int c = 0; c < clients; c++) {
		pids[c] = fork();
		if (pids[c] < 0) {
			perror("pam_bench: fork");
			return 2;
		}
		if (pids[c] == 0) {
			close(go[1]);
			client(go[0], slots + (size_t)c * (size_t)per, &done[c], count, duration_ms);
		}
	}
	close(go[0]);
	start = now_us();
	close(go[1]); /* EOF: all clients start */
	for (int c = 0; c < clients; c++)
		while (waitpid(pids[c], NULL, 0) < 0 && errno == EINTR)
			;
	end = now_us();
	getrusage(RUSAGE_CHILDREN, &after);

	printf("clients=%d\n", clients);
	for (int c = 0; c < clients; c++)
		total += done[c];
	printf("transactions=%d\n", total);
	printf("wall_us=%lld\n", end - start);
	printf("maxrss_kb=%ld\n", after.ru_maxrss);
	printf("cpu_us=%lld\n",
	       (long long)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000000 +
		       (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
		       (long long)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000000 +
		       (after.ru_stime.tv_usec - before.ru_stime.tv_usec));
	for (int c = 0; c < clients; c++)
		for (int n = 0; n < done[c]; n++) {
			int rc = slots[(size_t)c * (size_t)per + (size_t)n].rc;
			if (rc >= 0 && rc < 64)
				seen[rc]++;
			else
				other++;
		}
	for (int rc = 0; rc < 64; rc++)
		if (seen[rc])
			printf("result_%s=%d\n", code_name(rc), seen[rc]);
	if (other)
		printf("result_PAM_UNKNOWN=%d\n", other);
	printf("lat_us=");
	for (int c = 0; c < clients; c++)
		for (int n = 0; n < done[c]; n++)
			printf("%s%ld", c + n ? " " : "", slots[(size_t)c * (size_t)per + (size_t)n].lat_us);
	printf("\n");
	return 0;
}
