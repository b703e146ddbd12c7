/* A stand-in for `pam_mapi_helper serve` in the shim tests (docs/protocol.md 7):
 *
 *   fake_daemon [--record FILE | --close-first] SOCKET HELPER
 *
 * Binds and listens on SOCKET (mode 0666), then goes to the background: the foreground process
 * prints the daemon's pid and exits, so tests need not keep a child of their own. The daemon
 * serves each connection in a child process: by default it runs HELPER (the fake helper) with the
 * connection as stdin and stdout and FAKE_DAEMON=1 in the environment, so every behaviour the fake
 * helper has in fork mode is there in daemon mode too. --record appends "bytes=N" (what the client
 * sent before end of stream, at most 2 s) to FILE and answers PAM_SUCCESS: a trap that only an
 * untrusting shim escapes. --close-first closes each connection unread. It exits after 30 s
 * without a connection, or on SIGTERM, removing SOCKET. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IDLE_EXIT_MS 30000

static const char *sock_path;

static void on_term(int sig)
{
	(void)sig;
	unlink(sock_path);
	_exit(0);
}

static void record(int conn, const char *file)
{
	static const char trap[] = "{\"v\":1,\"result\":\"PAM_SUCCESS\",\"log\":[]}";
	char buf[4096], line[64];
	long total = 0;
	int fd;

	for (;;) {
		struct pollfd p = { .fd = conn, .events = POLLIN };
		ssize_t n;
		if (poll(&p, 1, 2000) <= 0)
			break;
		n = read(conn, buf, sizeof buf);
		if (n <= 0)
			break;
		total += n;
	}
	fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		int len = snprintf(line, sizeof line, "bytes=%ld\n", total);
		if (write(fd, line, (size_t)len) < 0)
			perror("fake_daemon: record");
		close(fd);
	}
	if (send(conn, trap, sizeof trap - 1, MSG_NOSIGNAL) < 0) {
		/* the client went away */
	}
}

int main(int argc, char **argv)
{
	const char *record_file = NULL, *helper;
	int close_first = 0, lfd, i = 1;
	struct sockaddr_un sa;
	pid_t pid;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--record") == 0 && i + 1 < argc)
			record_file = argv[++i];
		else if (strcmp(argv[i], "--close-first") == 0)
			close_first = 1;
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: fake_daemon [--record FILE | --close-first] SOCKET HELPER\n");
		return 2;
	}
	sock_path = argv[i];
	helper = argv[i + 1];
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	unlink(sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 128) != 0 ||
	    chmod(sock_path, 0666) != 0) {
		perror("fake_daemon: listen");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fake_daemon: fork");
		return 1;
	}
	if (pid > 0) {
		printf("%d\n", (int)pid);
		return 0;
	}
	setsid();
	signal(SIGCHLD, SIG_IGN);  /* the kernel reaps the per-connection children */
	signal(SIGTERM, on_term);
	/* Nothing of ours may hold the caller's pipes open: it reads them to the end. */
	if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout) ||
	    !freopen("/dev/null", "w", stderr))
		_exit(1);
	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		int conn;
		if (poll(&p, 1, IDLE_EXIT_MS) == 0)
			on_term(0);
		conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		if (close_first) {
			close(conn);
			continue;
		}
		if (fork() == 0) {
			if (record_file) {
				record(conn, record_file);
				_exit(0);
			}
			if (dup2(conn, 0) != 0 || dup2(conn, 1) != 1)
				_exit(126);
			setenv("FAKE_DAEMON", "1", 1);
			execl(helper, helper, "--pam", (char *)NULL);
			_exit(127);
		}
		close(conn);
	}
}
