/* membership.c — voters, learners, config entries and which config is in
 * force.
 *
 * A config entry's data is the whole membership that results from one
 * single-server change plus the change itself (layout in raft.h, version 1),
 * so the configuration in force is simply the last config entry in the log
 * (or the compaction point's membership when none is left): taking effect
 * at append, and reverting when an entry is truncated away, both fall out
 * of that. With SISY_RAFT_BUG_CONFIG_AT_COMMIT the last *committed* config
 * entry rules instead (the deliberate bug).
 */
#include <string.h>

#include "coding.h"
#include "raft_int.h"

#define CONF_VERSION 1

static int contains(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t k = 0; k < n; k++)
		if (ids[k] == id)
			return 1;
	return 0;
}

static void remove_id(uint64_t *ids, uint32_t *n, uint64_t id)
{
	for (uint32_t k = 0; k < *n; k++) {
		if (ids[k] == id) {
			ids[k] = ids[*n - 1];
			(*n)--;
			return;
		}
	}
}

int sisy_raft_membership_is_voter(const sisy_raft_membership *m, uint64_t id)
{
	return contains(m->voters, m->n_voters, id);
}

int sisy_raft_membership_is_learner(const sisy_raft_membership *m, uint64_t id)
{
	return contains(m->learners, m->n_learners, id);
}

int raft_is_member(const sisy_raft_membership *m, uint64_t id)
{
	return sisy_raft_membership_is_voter(m, id) ||
	       sisy_raft_membership_is_learner(m, id);
}

sisy_err raft_membership_change(const sisy_raft_membership *m,
				const sisy_raft_conf_change *cc,
				sisy_raft_membership *out)
{
	uint64_t id = cc->node_id;
	*out = *m;
	if (id == SISY_RAFT_NONE)
		return sisy_errf(SISY_E_INVAL, "raft: node id 0 is reserved");
	if (cc->ctx.len > SISY_RAFT_MAX_CONF_CTX)
		return sisy_errf(SISY_E_INVAL,
				 "raft: change context over %d "
				 "bytes",
				 SISY_RAFT_MAX_CONF_CTX);
	int voter = sisy_raft_membership_is_voter(m, id);
	int learner = sisy_raft_membership_is_learner(m, id);
	switch (cc->type) {
	case SISY_RAFT_CONF_ADD_VOTER:
		if (voter)
			return sisy_errf(SISY_E_INVAL,
					 "raft: node %llu is already a voter",
					 (unsigned long long)id);
		remove_id(out->learners, &out->n_learners, id);
		out->voters[out->n_voters++] = id;
		break;
	case SISY_RAFT_CONF_ADD_LEARNER:
		if (learner)
			return sisy_errf(SISY_E_INVAL,
					 "raft: node %llu is already a learner",
					 (unsigned long long)id);
		remove_id(out->voters, &out->n_voters, id);
		out->learners[out->n_learners++] = id;
		break;
	case SISY_RAFT_CONF_REMOVE:
		if (!voter && !learner)
			return sisy_errf(SISY_E_INVAL,
					 "raft: node %llu is not a member",
					 (unsigned long long)id);
		remove_id(out->voters, &out->n_voters, id);
		remove_id(out->learners, &out->n_learners, id);
		break;
	default:
		return sisy_errf(SISY_E_INVAL, "raft: unknown change type %d",
				 cc->type);
	}
	if (out->n_voters == 0)
		return sisy_errf(SISY_E_INVAL, "raft: cannot remove the last "
					       "voter");
	if (out->n_voters + out->n_learners > SISY_RAFT_MAX_NODES)
		return sisy_errf(SISY_E_INVAL, "raft: more than %d members",
				 SISY_RAFT_MAX_NODES);
	return SISY_OK;
}

sisy_err sisy_raft_conf_encode(const sisy_raft_conf_change *cc,
			       const sisy_raft_membership *after, sisy_buf *out)
{
	sisy_err rc;
	if (after->n_voters + after->n_learners > SISY_RAFT_MAX_NODES ||
	    cc->ctx.len > SISY_RAFT_MAX_CONF_CTX)
		return sisy_errf(SISY_E_INVAL, "raft: config entry too large");
	if ((rc = sisy_buf_append_u8(out, CONF_VERSION)) != SISY_OK ||
	    (rc = sisy_buf_append_u8(out, cc->type)) != SISY_OK ||
	    (rc = sisy_buf_append_u64(out, cc->node_id)) != SISY_OK ||
	    (rc = sisy_buf_append_u8(out, (uint8_t)after->n_voters)) != SISY_OK)
		return rc;
	for (uint32_t k = 0; k < after->n_voters; k++)
		if ((rc = sisy_buf_append_u64(out, after->voters[k])) !=
		    SISY_OK)
			return rc;
	if ((rc = sisy_buf_append_u8(out, (uint8_t)after->n_learners)) !=
	    SISY_OK)
		return rc;
	for (uint32_t k = 0; k < after->n_learners; k++)
		if ((rc = sisy_buf_append_u64(out, after->learners[k])) !=
		    SISY_OK)
			return rc;
	if ((rc = sisy_buf_append_u32(out, (uint32_t)cc->ctx.len)) != SISY_OK)
		return rc;
	return sisy_buf_append(out, cc->ctx.data, cc->ctx.len);
}

static sisy_err corrupt(const char *what)
{
	return sisy_errf(SISY_E_CORRUPT, "raft: bad config entry: %s", what);
}

static int read_ids(const uint8_t **p, const uint8_t *end, uint64_t *ids,
		    uint32_t *n, uint32_t room)
{
	if (*p >= end)
		return 0;
	uint32_t cnt = *(*p)++;
	if (cnt > room || (size_t)(end - *p) < (size_t)cnt * 8)
		return 0;
	for (uint32_t k = 0; k < cnt; k++, *p += 8) {
		ids[k] = sisy_get_u64(*p);
		if (ids[k] == SISY_RAFT_NONE || contains(ids, k, ids[k]))
			return 0;
	}
	*n = cnt;
	return 1;
}

sisy_err sisy_raft_conf_decode(sisy_slice data, sisy_raft_conf_change *cc,
			       sisy_raft_membership *after)
{
	const uint8_t *p = data.data, *end = data.data + data.len;
	sisy_raft_conf_change c;
	sisy_raft_membership m;
	memset(&m, 0, sizeof m);
	if (data.len < 10 || p[0] != CONF_VERSION)
		return corrupt("short or unknown version");
	c.type = p[1];
	c.node_id = sisy_get_u64(p + 2);
	p += 10;
	if (c.type < SISY_RAFT_CONF_ADD_VOTER || c.type > SISY_RAFT_CONF_REMOVE)
		return corrupt("unknown change type");
	if (!read_ids(&p, end, m.voters, &m.n_voters, SISY_RAFT_MAX_NODES))
		return corrupt("voters");
	if (!read_ids(&p, end, m.learners, &m.n_learners,
		      SISY_RAFT_MAX_NODES - m.n_voters))
		return corrupt("learners");
	for (uint32_t k = 0; k < m.n_learners; k++)
		if (contains(m.voters, m.n_voters, m.learners[k]))
			return corrupt("a node is both voter and learner");
	if (end - p < 4)
		return corrupt("context length");
	uint32_t clen = sisy_get_u32(p);
	p += 4;
	if (clen > SISY_RAFT_MAX_CONF_CTX || (size_t)(end - p) != clen)
		return corrupt("context");
	c.ctx = sisy_slice_make(p, clen);
	if (cc)
		*cc = c;
	if (after)
		*after = m;
	return SISY_OK;
}

/* The membership an entry carries; a corrupt one (never written by a core)
 * leaves `out` alone. */
static int entry_conf(const sisy_raft_entry *e, sisy_raft_membership *out)
{
	if (e->type != SISY_RAFT_ENTRY_CONFIG)
		return 0;
	return sisy_raft_conf_decode(sisy_slice_make(e->data, e->len), NULL,
				     out) == SISY_OK;
}

/* The last config entry at or below `hi`: its index (0 if none is left
 * in memory; then the compaction point's membership applies). */
static uint64_t conf_scan(const sisy_raft *r, uint64_t hi,
			  sisy_raft_membership *out)
{
	const struct raft_log *l = &r->log;
	for (uint64_t i = raft_min(hi, raft_log_last(l)); i > l->snap.index;
	     i--)
		if (entry_conf(raft_log_at(l, i), out))
			return i;
	*out = l->snap.membership;
	return 0;
}

void raft_conf_at(const sisy_raft *r, uint64_t i, sisy_raft_membership *out)
{
	conf_scan(r, i, out);
}

static uint64_t conf_horizon(const sisy_raft *r)
{
#ifdef SISY_RAFT_BUG_CONFIG_AT_COMMIT
	return r->commit;
#else
	return raft_log_last(&r->log);
#endif
}

void raft_conf_refresh(sisy_raft *r)
{
	r->conf_index = conf_scan(r, conf_horizon(r), &r->conf);
	if (r->role == SISY_RAFT_LEADER)
		raft_progress_sync(r);
}

void raft_conf_on_append(sisy_raft *r, uint64_t from)
{
	uint64_t last = raft_log_last(&r->log);
	int changed = r->conf_index >= from; /* its entry was cut away */
	for (uint64_t i = from; i <= last && !changed; i++)
		changed =
		    raft_log_at(&r->log, i)->type == SISY_RAFT_ENTRY_CONFIG;
	if (changed)
		raft_conf_refresh(r);
}

void raft_conf_on_commit(sisy_raft *r, uint64_t old_commit)
{
#ifdef SISY_RAFT_BUG_CONFIG_AT_COMMIT
	raft_conf_on_append(r, old_commit + 1);
#else
	(void)r;
	(void)old_commit;
#endif
}
