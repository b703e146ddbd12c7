/* The authentication flow. Every path that is not an explicit, well-formed PAM_SUCCESS reply from
 * a helper that then exited 0 ends in a failure code; the shim's own failures are logged at
 * LOG_ERR with the user and rhost, and never with the password. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <security/pam_ext.h>

#include "args.h"
#include "daemon.h"
#include "log.h"
#include "path_check.h"
#include "protocol.h"
#include "spawn.h"
#include "token.h"

/* Longer user names and passwords never reach the helper (pam_mapi(8) RETURN VALUES). */
#define USER_MAX 256
#define AUTHTOK_MAX 512
#define STDERR_LINE_MAX 300

/* The helper file and every directory on the way to it belong to root (pam_mapi(8) helper=). */
static const struct path_owners root_only = { 0, 0, NULL };

static const char *item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;
	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || !v)
		return NULL;
	return v;
}

/* "user=alice rhost=192.0.2.1" (rhost only when known), encoded like the helper's log fields. */
static void who(char *buf, size_t len, const char *user, const char *rhost)
{
	char u[300], r[600];

	log_value(u, sizeof u, user, 64);
	if (rhost && *rhost) {
		log_value(r, sizeof r, rhost, 128);
		snprintf(buf, len, "user=%s rhost=%s", u, r);
	} else {
		snprintf(buf, len, "user=%s", u);
	}
}

/* "; stderr: <first line>" when the helper wrote anything to stderr, else "". */
static void stderr_note(char *buf, size_t len, const struct spawn_result *res)
{
	size_t n = 0;

	while (n < res->err_len && n < STDERR_LINE_MAX && res->err[n] != '\n')
		n++;
	if (n == 0)
		buf[0] = '\0';
	else
		snprintf(buf, len, "; stderr: %.*s", (int)n, res->err);
}

/* Passes the reply's log records on at their priority. */
static void relay_logs(pam_handle_t *pamh, const struct reply *reply)
{
	for (size_t i = 0; i < reply->nlogs; i++)
		log_bytes(pamh, reply->logs[i].priority, reply->logs[i].message,
			  reply->logs[i].message_len);
}

/* Turns what happened to the helper into the PAM result, logging every failure. */
static int judge(pam_handle_t *pamh, const struct mapi_args *a, const char *path,
		 const struct spawn_result *res, const char *whom)
{
	char note[STDERR_LINE_MAX + 16];
	struct reply reply;
	const char *why;

	stderr_note(note, sizeof note, res);
	switch (res->outcome) {
	case SPAWN_START_FAILED:
		log_line(pamh, LOG_ERR, "cannot start helper %s: %s; %s result=PAM_SERVICE_ERR",
			 path, res->why, whom);
		return PAM_SERVICE_ERR;
	case SPAWN_TIMEOUT:
		log_line(pamh, LOG_ERR, "helper %s (pid %d) did not finish within %d s and was killed; "
			 "%s result=PAM_SERVICE_ERR%s", path, (int)res->pid, args_deadline(a), whom, note);
		return PAM_SERVICE_ERR;
	case SPAWN_OVERSIZE:
		log_line(pamh, LOG_ERR, "helper %s (pid %d) wrote a reply larger than %d bytes and was "
			 "killed; %s result=PAM_SERVICE_ERR%s", path, (int)res->pid, PROTO_MAX_REPLY,
			 whom, note);
		return PAM_SERVICE_ERR;
	case SPAWN_WAIT_FAILED:
		log_line(pamh, LOG_ERR, "%s; %s result=PAM_SERVICE_ERR", res->why, whom);
		return PAM_SERVICE_ERR;
	case SPAWN_EXITED:
		break;
	}
	if (WIFSIGNALED(res->status)) {
		log_line(pamh, LOG_ERR, "helper %s (pid %d) was killed by signal %d; "
			 "%s result=PAM_SERVICE_ERR%s", path, (int)res->pid, WTERMSIG(res->status),
			 whom, note);
		return PAM_SERVICE_ERR;
	}
	if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0) {
		log_line(pamh, LOG_ERR, "helper %s (pid %d) exited with status %d; "
			 "%s result=PAM_SERVICE_ERR%s", path, (int)res->pid,
			 WIFEXITED(res->status) ? WEXITSTATUS(res->status) : -1, whom, note);
		return PAM_SERVICE_ERR;
	}
	if (reply_decode(res->reply, res->reply_len, &reply, &why) < 0) {
		log_line(pamh, LOG_ERR, "helper %s (pid %d) sent a malformed reply (%s); "
			 "%s result=PAM_SERVICE_ERR%s", path, (int)res->pid, why, whom, note);
		return PAM_SERVICE_ERR;
	}
	relay_logs(pamh, &reply);
	if (a->debug)
		log_line(pamh, LOG_DEBUG, "debug: helper pid %d exited with status 0 after %ld ms; "
			 "result=%s", (int)res->pid, res->elapsed_ms, reply.result_name);
	reply_free(&reply);
	return reply.pam_result;
}

/* What the resident helper's answer means (protocol.md 7.2). Returns -1 when it is not there and
 * the helper must be started instead; otherwise the PAM result, every failure logged. */
static int ask_daemon(pam_handle_t *pamh, const struct mapi_args *a, const unsigned char *req,
		      size_t req_len, const char *whom)
{
	struct daemon_result res;
	struct reply reply;
	const char *why;
	int rc = PAM_SERVICE_ERR;

	if (a->debug)
		log_line(pamh, LOG_DEBUG, "debug: asking the resident helper %s for %s (deadline %d s)",
			 a->daemon, whom, args_deadline(a));
	daemon_ask(a->daemon, req, req_len, args_deadline(a), &res);
	switch (res.outcome) {
	case DAEMON_ABSENT:
		if (a->debug)
			log_line(pamh, LOG_DEBUG, "debug: no resident helper at %s (%s); starting the "
				 "helper", a->daemon, res.why);
		rc = -1;
		break;
	case DAEMON_UNTRUSTED:
		log_line(pamh, LOG_ERR, "resident helper %s not trusted: %s; nothing sent; "
			 "%s result=PAM_SERVICE_ERR", a->daemon, res.why, whom);
		break;
	case DAEMON_FAILED:
		log_line(pamh, LOG_ERR, "resident helper %s (pid %ld): %s; %s result=PAM_SERVICE_ERR",
			 a->daemon, res.peer_pid, res.why, whom);
		break;
	case DAEMON_REPLIED:
		if (reply_decode(res.reply, res.reply_len, &reply, &why) < 0) {
			log_line(pamh, LOG_ERR, "resident helper %s (pid %ld) sent a malformed reply "
				 "(%s); %s result=PAM_SERVICE_ERR", a->daemon, res.peer_pid, why, whom);
			break;
		}
		relay_logs(pamh, &reply);
		if (a->debug)
			log_line(pamh, LOG_DEBUG, "debug: resident helper %s (pid %ld) answered after "
				 "%ld ms; result=%s", a->daemon, res.peer_pid, res.elapsed_ms,
				 reply.result_name);
		reply_free(&reply);
		rc = reply.pam_result;
		break;
	}
	free(res.reply);
	return rc;
}

int auth_run(pam_handle_t *pamh, int argc, const char **argv, const char **user_out)
{
	struct mapi_args a;
	struct request_fields f;
	struct spawn_result *res;
	char err[512], whom[1024];
	const char *user = NULL, *tok = NULL, *service, *rhost;
	unsigned char *req = NULL;
	size_t req_len = 0;
	char *path = NULL;
	int rc;

	*user_out = NULL;
	if (args_parse(argc, argv, &a, err, sizeof err) < 0) {
		log_line(pamh, LOG_ERR, "%s; result=PAM_SERVICE_ERR", err);
		return PAM_SERVICE_ERR;
	}
	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS || !user) {
		rc = rc != PAM_SUCCESS ? rc : PAM_SERVICE_ERR;
		if (a.debug)
			log_line(pamh, LOG_DEBUG, "debug: no user name obtained; result=%s",
				 pam_code_name(rc));
		return rc;
	}
	*user_out = user;
	service = item_str(pamh, PAM_SERVICE);
	rhost = item_str(pamh, PAM_RHOST);

	who(whom, sizeof whom, user, rhost);
	/* Same wording as the helper's own input checks (src/pam/input.ts), which these mirror. */
	if (strlen(user) > USER_MAX) {
		log_line(pamh, LOG_NOTICE, "authentication failure; %s result=PAM_AUTH_ERR "
			 "reason=\"invalid user name (longer than %d bytes)\"", whom, USER_MAX);
		return PAM_AUTH_ERR;
	}

	rc = token_get(pamh, &a, whom, &tok);
	if (rc != PAM_SUCCESS)
		return rc;
	if (strlen(tok) > AUTHTOK_MAX) {
		log_line(pamh, LOG_NOTICE, "authentication failure; %s result=PAM_AUTH_ERR "
			 "reason=\"invalid password (longer than %d bytes)\"", whom, AUTHTOK_MAX);
		return PAM_AUTH_ERR;
	}

	f.user = (struct bytes){ (const unsigned char *)user, strlen(user) };
	f.authtok = (struct bytes){ (const unsigned char *)tok, strlen(tok) };
	f.service = (struct bytes){ (const unsigned char *)(service ? service : ""),
				    service ? strlen(service) : 0 };
	f.rhost = (struct bytes){ (const unsigned char *)(rhost ? rhost : ""),
				  rhost ? strlen(rhost) : 0 };
	f.argc = argc;
	f.argv = argv;
	rc = request_encode(&f, &req, &req_len);
	if (rc < 0) {
		log_line(pamh, LOG_ERR, "cannot build the request: %s; %s result=PAM_SERVICE_ERR",
			 rc == -2 ? "larger than 65536 bytes" : "out of memory", whom);
		return PAM_SERVICE_ERR;
	}
	if (a.daemon) {
		rc = ask_daemon(pamh, &a, req, req_len, whom);
		if (rc >= 0)
			goto out;
	}
	if (path_check_file(a.helper, &root_only, PATH_CHECK_EXEC, &path, err, sizeof err) < 0) {
		log_line(pamh, LOG_ERR, "helper %s refused: %s; %s result=PAM_SERVICE_ERR",
			 a.helper, err, whom);
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	res = malloc(sizeof *res);
	if (!res) {
		log_line(pamh, LOG_ERR, "out of memory; %s result=PAM_SERVICE_ERR", whom);
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	if (a.debug)
		log_line(pamh, LOG_DEBUG, "debug: starting helper %s for %s (deadline %d s)", path,
			 whom, args_deadline(&a));
	spawn_helper(path, req, req_len, args_deadline(&a), res);
	/* The request holds the password: wipe it as soon as the helper has it. */
	explicit_bzero(req, req_len);
	free(req);
	req = NULL;
	rc = judge(pamh, &a, path, res, whom);
	free(res->reply);
	free(res);
out:
	if (req) {
		explicit_bzero(req, req_len);
		free(req);
	}
	free(path);
	return rc;
}
