/* db_meta.c — reading the metadata stored with batches (see db.h for the
 * three values kept and when each moves). */
#include "db.h"

sisy_err sisy_lsm_meta(sisy_lsm *db, int which, sisy_buf *out)
{
	if (which != SISY_LSM_META_LATEST && which != SISY_LSM_META_DURABLE)
		return sisy_errf(SISY_E_INVAL,
				 "lsm: sisy_lsm_meta: which must be "
				 "SISY_LSM_META_LATEST or _DURABLE, not %d",
				 which);
	pthread_mutex_lock(&db->mu);
	const db_meta *m =
	    which == SISY_LSM_META_LATEST ? &db->meta : &db->durable;
	sisy_err rc = sisy_buf_set(out, m->data.data, m->data.len);
	pthread_mutex_unlock(&db->mu);
	return rc;
}
