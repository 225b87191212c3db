/* kv.c — versions, conditions and group commit over the engine (kv.h).
 *
 * Within a group, a later command must see an earlier one's effect. The
 * group keeps a small overlay (key -> version or deleted) of the keys it has
 * written; lookups check it before the engine. The overlay is a linear list
 * bounded by the group size the caller passes (the apply thread caps it).
 */
#include "kv.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "lsm.h"

#define META_TAG "sisykv1"
#define META_LEN (7 + 8)

struct sisy_kv_store {
	sisy_lsm *db;
	uint64_t applied;
	bool sync;
	const sisy_logger *logger;
};

typedef struct overlay_ent {
	sisy_slice key;
	uint64_t version; /* 0: deleted */
} overlay_ent;

sisy_err sisy_kv_open(const sisy_kv_opts *o, sisy_kv_store **out)
{
	sisy_lsm_options lo;
	sisy_buf meta = {0};
	sisy_kv_store *kv = calloc(1, sizeof *kv);
	if (kv == NULL)
		return sisy_errf(SISY_E_NOMEM, "kv.c: out of memory");
	sisy_lsm_options_init(&lo);
	lo.dir = o->dir;
	lo.logger = o->logger;
	lo.sync = o->sync;
	lo.compression = o->compression;
	if (o->memtable_bytes)
		lo.memtable_bytes = o->memtable_bytes;
	if (o->block_cache_bytes)
		lo.block_cache_bytes = o->block_cache_bytes;
	if (o->bloom_bits_per_key >= 0)
		lo.bloom_bits_per_key = o->bloom_bits_per_key;
	kv->sync = o->sync;
	kv->logger = o->logger;
	sisy_err rc = sisy_lsm_open(&lo, &kv->db);
	if (rc != SISY_OK)
		goto fail;
	if ((rc = sisy_lsm_meta(kv->db, SISY_LSM_META_LATEST, &meta)) !=
	    SISY_OK)
		goto fail;
	if (meta.len == META_LEN && memcmp(meta.data, META_TAG, 7) == 0) {
		kv->applied = sisy_get_u64(meta.data + 7);
	} else if (meta.len != 0) {
		rc = sisy_errf(SISY_E_CORRUPT,
			       "kv.c: %s holds metadata this server does not "
			       "understand (%zu bytes)",
			       o->dir, meta.len);
		goto fail;
	}
	sisy_buf_free(&meta);
	*out = kv;
	return SISY_OK;
fail:
	sisy_buf_free(&meta);
	if (kv->db)
		sisy_lsm_close(kv->db);
	free(kv);
	return rc;
}

sisy_err sisy_kv_close(sisy_kv_store *kv)
{
	if (kv == NULL)
		return SISY_OK;
	sisy_err rc = sisy_lsm_close(kv->db);
	free(kv);
	return rc;
}

uint64_t sisy_kv_applied(sisy_kv_store *kv)
{
	return __atomic_load_n(&kv->applied, __ATOMIC_ACQUIRE);
}

sisy_lsm *sisy_kv_engine(sisy_kv_store *kv)
{
	return kv->db;
}

sisy_err sisy_kv_get(sisy_kv_store *kv, sisy_slice key, bool *found,
		     uint64_t *version, sisy_buf *val)
{
	sisy_buf raw = {0};
	*found = false;
	sisy_err rc = sisy_lsm_get(kv->db, NULL, key.data, key.len, &raw);
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
		goto done;
	}
	if (rc != SISY_OK)
		goto done;
	if (raw.len < 8) {
		rc = sisy_errf(SISY_E_CORRUPT,
			       "kv.c: stored value of %zu bytes has no version",
			       raw.len);
		goto done;
	}
	*found = true;
	if (version)
		*version = sisy_get_u64(raw.data);
	if (val)
		rc = sisy_buf_set(val, raw.data + 8, raw.len - 8);
done:
	sisy_buf_free(&raw);
	return rc;
}

sisy_err sisy_kv_scan(sisy_kv_store *kv, sisy_slice from, sisy_slice to,
		      sisy_slice after, sisy_kv_scan_fn fn, void *ctx)
{
	sisy_lsm_iter *it = sisy_lsm_iter_new(kv->db, NULL);
	if (it == NULL)
		return sisy_errf(SISY_E_NOMEM, "kv.c: out of memory");
	bool skip_after = false;
	if (after.len > 0 && sisy_slice_cmp(after, from) >= 0) {
		sisy_lsm_iter_seek(it, after.data, after.len);
		skip_after = true;
	} else if (from.len > 0) {
		sisy_lsm_iter_seek(it, from.data, from.len);
	} else {
		sisy_lsm_iter_seek_first(it);
	}
	sisy_err rc = SISY_OK;
	for (; sisy_lsm_iter_valid(it); sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		sisy_slice ks = sisy_slice_make(k, kl);
		if (skip_after && sisy_slice_eq(ks, after))
			continue;
		skip_after = false;
		if (to.len > 0 && sisy_slice_cmp(ks, to) >= 0)
			break;
		if (vl < 8) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "kv.c: stored value without version");
			break;
		}
		if (!fn(ctx, ks, sisy_slice_make(v + 8, vl - 8),
			sisy_get_u64(v)))
			break;
	}
	if (rc == SISY_OK)
		rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
	return rc;
}

/* Current version of key in the group's view (0: absent). */
static sisy_err current_version(sisy_kv_store *kv, const overlay_ent *ov,
				size_t nov, sisy_slice key, uint64_t *out)
{
	for (size_t i = nov; i-- > 0;)
		if (sisy_slice_eq(ov[i].key, key)) {
			*out = ov[i].version;
			return SISY_OK;
		}
	bool found;
	sisy_err rc = sisy_kv_get(kv, key, &found, out, NULL);
	if (rc == SISY_OK && !found)
		*out = 0;
	return rc;
}

static bool cond_holds(const sisy_kv_op *op, uint64_t cur)
{
	switch (op->cond) {
	case SISY_KV_COND_VERSION:
		return cur == op->cond_version;
	case SISY_KV_COND_ABSENT:
		return cur == 0;
	default:
		return true;
	}
}

sisy_err sisy_kv_apply(sisy_kv_store *kv, sisy_kv_cmd *cmds, size_t n)
{
	size_t total_ops = 0;
	for (size_t i = 0; i < n; i++)
		total_ops += cmds[i].nops;
	overlay_ent *ov = calloc(total_ops + 1, sizeof *ov);
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_buf val = {0};
	size_t nov = 0;
	uint64_t index = kv->applied;
	sisy_err rc = SISY_OK;
	if (ov == NULL || b == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "kv.c: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		sisy_kv_cmd *c = &cmds[i];
		c->index = ++index;
		c->result = SISY_OK;
		c->existed = false;
		/* Decide every condition first: all or nothing. */
		for (size_t j = 0; j < c->nops; j++) {
			const sisy_kv_op *op = &c->ops[j];
			uint64_t cur = 0;
			bool need = op->cond != SISY_KV_COND_NONE ||
				    (op->del && c->nops == 1);
			if (!need)
				continue;
			if ((rc = current_version(kv, ov, nov, op->key,
						  &cur)) != SISY_OK)
				goto fail;
			if (op->del && c->nops == 1)
				c->existed = cur != 0;
			if (!cond_holds(op, cur)) {
				c->result = SISY_E_CONFLICT;
				c->failed_op = (uint32_t)j;
				c->current_version = cur;
				break;
			}
		}
		if (c->result != SISY_OK)
			continue;
		for (size_t j = 0; j < c->nops; j++) {
			const sisy_kv_op *op = &c->ops[j];
			if (op->del) {
				rc = sisy_lsm_batch_delete(b, op->key.data,
							   op->key.len);
			} else {
				sisy_buf_clear(&val);
				if ((rc = sisy_buf_reserve(
					 &val, 8 + op->value.len)) != SISY_OK)
					goto fail;
				sisy_put_u64(val.data, c->index);
				if (op->value.len)
					memcpy(val.data + 8, op->value.data,
					       op->value.len);
				val.len = 8 + op->value.len;
				rc = sisy_lsm_batch_put(b, op->key.data,
							op->key.len, val.data,
							val.len);
			}
			if (rc != SISY_OK)
				goto fail;
			ov[nov].key = op->key;
			ov[nov].version = op->del ? 0 : c->index;
			nov++;
		}
	}
	uint8_t meta[META_LEN];
	memcpy(meta, META_TAG, 7);
	sisy_put_u64(meta + 7, index);
	if ((rc = sisy_lsm_batch_set_meta(b, meta, sizeof meta)) != SISY_OK)
		goto fail;
	/* A group whose commands all failed their conditions writes nothing:
	 * the indexes it consumed set no version, so forgetting them on a
	 * restart is harmless. */
	if (sisy_lsm_batch_count(b) > 0)
		rc = sisy_lsm_write(kv->db, b, kv->sync ? SISY_LSM_SYNC : 0);
	if (rc == SISY_OK)
		__atomic_store_n(&kv->applied, index, __ATOMIC_RELEASE);
fail:
	if (rc != SISY_OK)
		for (size_t i = 0; i < n; i++) {
			cmds[i].result = rc;
			cmds[i].index = 0;
		}
	sisy_buf_free(&val);
	free(ov);
	sisy_lsm_batch_free(b);
	return rc;
}
