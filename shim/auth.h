/* One authentication, from the module arguments to the PAM result (pam_mapi(8) RETURN VALUES). */
#ifndef PAM_MAPI_AUTH_H
#define PAM_MAPI_AUTH_H

#include <security/pam_modules.h>

/* Returns the PAM result; *user is set to the user name (owned by libpam) once it is known. */
int auth_run(pam_handle_t *pamh, int argc, const char **argv, const char **user);

#endif
