/* pam_mapi: verify a user name and password against a Kopano/Zarafa server through the helper.
 * The three PAM entry points and nothing else are exported (exports.map). */
#include <string.h>
#include <syslog.h>
#include <security/pam_modules.h>

#include "args.h"
#include "auth.h"
#include "log.h"
#include "state.h"

#define PAM_MAPI_EXPORT __attribute__((visibility("default")))

PAM_MAPI_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL;
	int rc;

	(void)flags;  /* PAM_SILENT: the only message this module sends is the password prompt */
	rc = auth_run(pamh, argc, argv, &user);
	state_save(pamh, rc, user);
	return rc;
}

/* Replays this handle's last auth result (pam_mapi(8) MODULE TYPES PROVIDED): always-success
 * would wrongly approve a stack this module failed, always-ignore would break a stack where it is
 * the only module. */
PAM_MAPI_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct mapi_args a;
	char err[512];
	const char *user;
	int result;

	(void)flags;
	/* Same arguments as the auth line, whose run already logged any error in them. */
	if (args_parse(argc, argv, &a, err, sizeof err) < 0)
		a.debug = false;
	if (!state_get(pamh, &result, &user)) {
		if (a.debug)
			log_line(pamh, LOG_DEBUG, "debug: setcred: auth did not run; result=PAM_IGNORE");
		return PAM_IGNORE;
	}
	if (a.debug)
		log_line(pamh, LOG_DEBUG, "debug: setcred: replaying result=%s", pam_code_name(result));
	return result;
}

/* PAM_SUCCESS only for the user this module itself just authenticated in this handle; the module
 * knows nothing about accounts otherwise, so it stays out of the decision (PAM_IGNORE). */
PAM_MAPI_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct mapi_args a;
	char err[512];
	const void *item = NULL;
	const char *user, *auth_user = NULL;
	char shown[300];
	int result = PAM_IGNORE;

	(void)flags;
	if (args_parse(argc, argv, &a, err, sizeof err) < 0) {
		log_line(pamh, LOG_ERR, "%s; result=PAM_SERVICE_ERR", err);
		return PAM_SERVICE_ERR;
	}
	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS)
		item = NULL;
	user = item;
	log_value(shown, sizeof shown, user ? user : "", 64);
	if (state_get(pamh, &result, &auth_user) && result == PAM_SUCCESS && auth_user && user &&
	    strcmp(user, auth_user) == 0) {
		if (a.debug)
			log_line(pamh, LOG_DEBUG, "debug: account: user=%s was authenticated by this "
				 "module; result=PAM_SUCCESS", shown);
		return PAM_SUCCESS;
	}
	if (a.debug)
		log_line(pamh, LOG_DEBUG, "debug: account: user=%s was not authenticated by this module "
			 "in this PAM handle; result=PAM_IGNORE", shown);
	return PAM_IGNORE;
}
