/* wire.c — status mapping tables (wire.h). */
#include "wire.h"

#include <strings.h>

#include "client.h"

#include "sisy.pb-c.h"

sisy_err sisy_wire_status_err(int status)
{
	switch (status) {
	case SISY__STATUS__OK:
		return SISY_OK;
	case SISY__STATUS__INVALID:
	case SISY__STATUS__CROSS_SHARD:
		return SISY_E_INVAL;
	case SISY__STATUS__TOO_BIG:
		return SISY_E_TOOBIG;
	case SISY__STATUS__AUTH_FAILED:
		return SISY_E_AUTH;
	case SISY__STATUS__PERMISSION_DENIED:
		return SISY_E_PERM;
	case SISY__STATUS__CONFLICT:
		return SISY_E_CONFLICT;
	case SISY__STATUS__NOT_FOUND:
		return SISY_E_NOTFOUND;
	case SISY__STATUS__EXISTS:
		return SISY_E_EXISTS;
	case SISY__STATUS__BUSY:
		return SISY_E_BUSY;
	case SISY__STATUS__NO_LEADER:
		return SISY_E_NOLEADER;
	case SISY__STATUS__NOT_LEADER:
		return SISY_E_NOTLEADER;
	case SISY__STATUS__OUTCOME_UNKNOWN:
		return SISY_E_UNKNOWN_OUTCOME;
	case SISY__STATUS__TIMEOUT:
		return SISY_E_TIMEOUT;
	case SISY__STATUS__UNAVAILABLE:
		return SISY_E_FAILED;
	case SISY__STATUS__NO_SPACE:
		return SISY_E_NOSPC;
	case SISY__STATUS__UNSUPPORTED:
		return SISY_E_NOTSUP;
	case SISY__STATUS__SESSION_ENDED:
		return SISY_E_CLOSED;
	default:
		return SISY_E_INTERNAL;
	}
}

int sisy_wire_err_status(sisy_err e)
{
	switch (e) {
	case SISY_OK:
		return SISY__STATUS__OK;
	case SISY_E_INVAL:
	case SISY_E_RANGE:
		return SISY__STATUS__INVALID;
	case SISY_E_TOOBIG:
		return SISY__STATUS__TOO_BIG;
	case SISY_E_AUTH:
		return SISY__STATUS__AUTH_FAILED;
	case SISY_E_PERM:
		return SISY__STATUS__PERMISSION_DENIED;
	case SISY_E_CONFLICT:
		return SISY__STATUS__CONFLICT;
	case SISY_E_NOTFOUND:
		return SISY__STATUS__NOT_FOUND;
	case SISY_E_EXISTS:
		return SISY__STATUS__EXISTS;
	case SISY_E_BUSY:
	case SISY_E_AGAIN:
		return SISY__STATUS__BUSY;
	case SISY_E_NOLEADER:
		return SISY__STATUS__NO_LEADER;
	case SISY_E_NOTLEADER:
		return SISY__STATUS__NOT_LEADER;
	case SISY_E_UNKNOWN_OUTCOME:
		return SISY__STATUS__OUTCOME_UNKNOWN;
	case SISY_E_TIMEOUT:
		return SISY__STATUS__TIMEOUT;
	case SISY_E_FAILED:
	case SISY_E_CLOSED:
		return SISY__STATUS__UNAVAILABLE;
	case SISY_E_NOSPC:
		return SISY__STATUS__NO_SPACE;
	case SISY_E_NOTSUP:
	case SISY_E_VERSION:
		return SISY__STATUS__UNSUPPORTED;
	default:
		return SISY__STATUS__INTERNAL;
	}
}

sisy_role sisy_role_parse(const char *name)
{
	if (strcasecmp(name, "readonly") == 0)
		return SISY_ROLE_READONLY;
	if (strcasecmp(name, "readwrite") == 0)
		return SISY_ROLE_READWRITE;
	if (strcasecmp(name, "admin") == 0)
		return SISY_ROLE_ADMIN;
	return SISY_ROLE_NONE;
}

const char *sisy_role_name(sisy_role r)
{
	switch (r) {
	case SISY_ROLE_READONLY:
		return "readonly";
	case SISY_ROLE_READWRITE:
		return "readwrite";
	case SISY_ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}
