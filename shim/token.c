/* Obtaining the password. The conversation's answer is copied into PAM_AUTHTOK by libpam and our
 * copy wiped at once; from then on only libpam's item (wiped by pam_end) holds it. */
#include "token.h"

#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <security/pam_ext.h>

#include "log.h"

int token_get(pam_handle_t *pamh, const struct mapi_args *a, const char *whom, const char **tok)
{
	const void *item = NULL;
	char *resp = NULL;
	int rc;

	*tok = NULL;
	if (a->try_first_pass || a->use_first_pass) {
		rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
		if (rc == PAM_SUCCESS && item) {
			if (a->debug)
				log_line(pamh, LOG_DEBUG, "debug: using the password of an earlier module");
			*tok = item;
			return PAM_SUCCESS;
		}
		if (a->use_first_pass) {
			log_line(pamh, LOG_ERR, "use_first_pass: no password from an earlier module; "
				 "%s result=PAM_AUTHTOK_RECOVERY_ERR", whom);
			return PAM_AUTHTOK_RECOVERY_ERR;
		}
	}
	if (a->debug)
		log_line(pamh, LOG_DEBUG, "debug: asking for the password");
	rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &resp, "%s", "Password: ");
	if (rc != PAM_SUCCESS || !resp) {
		if (resp) {
			explicit_bzero(resp, strlen(resp));
			free(resp);
		}
		log_line(pamh, LOG_ERR, "the conversation did not deliver a password (%s); "
			 "%s result=PAM_AUTHTOK_ERR", pam_code_name(rc), whom);
		return PAM_AUTHTOK_ERR;
	}
	rc = pam_set_item(pamh, PAM_AUTHTOK, resp);
	explicit_bzero(resp, strlen(resp));
	free(resp);
	if (rc == PAM_SUCCESS)
		rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
	if (rc != PAM_SUCCESS || !item) {
		log_line(pamh, LOG_ERR, "cannot store the password as PAM_AUTHTOK (%s); "
			 "%s result=PAM_AUTHTOK_ERR", pam_code_name(rc), whom);
		return PAM_AUTHTOK_ERR;
	}
	*tok = item;
	return PAM_SUCCESS;
}
