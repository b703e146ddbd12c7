/* pam_set_data storage of the last auth result. If the new state cannot be stored, the old one is
 * removed, so that account can never replay an earlier success for a later, failed attempt. */
#include "state.h"

#include <stdlib.h>
#include <string.h>

#define STATE_KEY "pam_mapi:auth_state"

struct auth_state {
	int result;
	bool has_user;
	char user[];
};

static void state_cleanup(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	free(data);
}

void state_save(pam_handle_t *pamh, int result, const char *user)
{
	size_t n = user ? strlen(user) : 0;
	struct auth_state *s = malloc(sizeof *s + n + 1);

	if (s) {
		s->result = result;
		s->has_user = user != NULL;
		if (user)
			memcpy(s->user, user, n);
		s->user[n] = '\0';
		if (pam_set_data(pamh, STATE_KEY, s, state_cleanup) == PAM_SUCCESS)
			return;
		free(s);
	}
	pam_set_data(pamh, STATE_KEY, NULL, NULL);
}

bool state_get(pam_handle_t *pamh, int *result, const char **user)
{
	const void *data = NULL;
	const struct auth_state *s;

	if (pam_get_data(pamh, STATE_KEY, &data) != PAM_SUCCESS || !data)
		return false;
	s = data;
	*result = s->result;
	*user = s->has_user ? s->user : NULL;
	return true;
}
