/* The password, obtained exactly as pam_unix does it (pam_mapi(8): try_first_pass,
 * use_first_pass, RETURN VALUES). */
#ifndef PAM_MAPI_TOKEN_H
#define PAM_MAPI_TOKEN_H

#include <security/pam_modules.h>

#include "args.h"

/* try_first_pass / use_first_pass: the PAM_AUTHTOK of an earlier module if there is one;
 * use_first_pass without one: PAM_AUTHTOK_RECOVERY_ERR. Otherwise one "Password: " prompt
 * (echo off); a conversation that delivers nothing: PAM_AUTHTOK_ERR. A prompted password is
 * stored as PAM_AUTHTOK for the modules after this one. *tok is owned by libpam. whom is the
 * "user=... rhost=..." text for log lines. */
int token_get(pam_handle_t *pamh, const struct mapi_args *a, const char *whom, const char **tok);

#endif
