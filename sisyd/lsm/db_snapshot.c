/* db_snapshot.c — explicit snapshots and the last sequence.
 *
 * A snapshot is a sequence number in a list (oldest first, since each new
 * one takes the latest sequence). Compactions keep every version some
 * snapshot can still see (db_compact.c reads the oldest one). */
#include <assert.h>
#include <stdlib.h>

#include "db.h"

const sisy_lsm_snapshot *sisy_lsm_snapshot_new(sisy_lsm *db)
{
	sisy_lsm_snapshot *s = malloc(sizeof *s);
	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&db->mu);
	s->seq = db->last_seq;
	s->next = &db->snaps;
	s->prev = db->snaps.prev;
	s->prev->next = s;
	db->snaps.prev = s;
	pthread_mutex_unlock(&db->mu);
	return s;
}

void sisy_lsm_snapshot_release(sisy_lsm *db, const sisy_lsm_snapshot *cs)
{
	if (cs == NULL)
		return;
	sisy_lsm_snapshot *s = (sisy_lsm_snapshot *)cs;
	pthread_mutex_lock(&db->mu);
	assert(s->prev->next == s && s->next->prev == s);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	pthread_mutex_unlock(&db->mu);
	free(s);
}

uint64_t sisy_lsm_snapshot_seq(const sisy_lsm_snapshot *s)
{
	return s->seq;
}

uint64_t sisy_lsm_last_seq(sisy_lsm *db)
{
	pthread_mutex_lock(&db->mu);
	uint64_t s = db->last_seq;
	pthread_mutex_unlock(&db->mu);
	return s;
}
