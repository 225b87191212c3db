/* wire.h — glue between sisy.proto's enums and the C side: wire status <->
 * sisy_err, wire role <-> sisy_role. One table each, used by both the client
 * library and the server, so the two can never disagree.
 */
#ifndef SISY_WIRE_H
#define SISY_WIRE_H

#include "err.h"

/* Status (sisy.proto) -> sisy_err. Unknown statuses map to
 * SISY_E_INTERNAL. */
sisy_err sisy_wire_status_err(int status);
/* sisy_err -> the Status a server answers with. */
int sisy_wire_err_status(sisy_err e);

#endif
