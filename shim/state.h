/* What pam_sm_authenticate leaves in the PAM handle for setcred and account
 * (pam_mapi(8) MODULE TYPES PROVIDED). */
#ifndef PAM_MAPI_STATE_H
#define PAM_MAPI_STATE_H

#include <stdbool.h>
#include <security/pam_modules.h>

/* Records the result of this auth run and the user it was for (NULL if none was obtained). */
void state_save(pam_handle_t *pamh, int result, const char *user);

/* The last auth run in this handle: false if auth did not run (or its state could not be kept).
 * *user may be NULL. */
bool state_get(pam_handle_t *pamh, int *result, const char **user);

#endif
