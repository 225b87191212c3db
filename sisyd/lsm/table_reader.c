/* table_reader.c — reads SSTables (format in table_format.h): open, point
 * lookups, iterators, verification.
 *
 * DESIGN
 *   At open the footer, the index block and the filter are read and checked
 *   (checksums always, whatever verify_checksums says) and kept for the
 *   table's lifetime; the index is decoded into an array of (separator key,
 *   block offset, size) so a lookup binary-searches it without decoding.
 *   The whole block layout is validated there too: data blocks must tile
 *   the file from offset 0 up to the filter/index, so no later read can run
 *   past the end of the file.
 *
 *   Data blocks come from one of two places:
 *   - the file mapping (sisy_file_map; the real file system), for blocks
 *     stored RAW: used in place, no copy and no block cache (the page cache
 *     already holds them, as LevelDB does with mmap). Each block's checksum
 *     is verified the first time it is used; an atomic bitmap remembers the
 *     blocks known to be RAW and verified, so later reads neither re-hash
 *     a block nor touch its trailer.
 *   - otherwise (no mapping, or a ZLIB block) the block cache, keyed by
 *     (the table's cache id, block offset) and holding uncompressed blocks
 *     that were verified when read. Without a block cache the block lives
 *     only for the current lookup. On a table without a mapping the bitmap
 *     remembers the blocks verified once, so a block read again after it
 *     left the cache is not hashed again (the same once-per-open promise
 *     as a mapped block's).
 *
 *   A table maps its file only when the map budget (table.h) has room for
 *   the whole file; otherwise it reads with pread. Touched pages of a
 *   mapping count in the process's resident set, and the budget is what
 *   bounds them: the file size is reserved at open and given back at close,
 *   after the mapping is gone, so mapped bytes never exceed the budget
 *   whatever pages are touched. (Dropping cold pages of a larger set of
 *   mappings with madvise was measured to cost far more on refault than a
 *   pread: docs/engine.md, "Memory".)
 *   With verify_checksums false, data blocks are not checksummed on read
 *   (lsm_table_verify still checks them); every decoded length is still
 *   bounds-checked, so a damaged block gives SISY_E_CORRUPT or garbage, never
 *   a crash.
 *
 *   lsm_table_get allocates nothing on the mapped path (keys up to
 *   LSM_BLOCK_INLINE_KEY bytes).
 *
 *   LSM_READ_NO_IO (sisy_lsm_get_cached): a lookup that would read the
 *   file answers SISY_E_AGAIN instead. Memory is: a block in the block
 *   cache, and a mapped block whose bit is set (used since the table
 *   opened, so its page was faulted in then; the kernel may have dropped
 *   it since under memory pressure, which the map budget makes unlikely:
 *   docs/engine.md). A mapped block never used is treated as on the disk.
 *
 * ERRORS name the file and the offset of the block at fault:
 *   "table_reader.c: bad block checksum in 000042.sst at offset 4096 ..."
 *
 * THREADS: after open, a table is read-only except for the verified bitmap
 *   (atomic) and the counters (atomic), so readers need no lock.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "block.h"
#include "bloom.h"
#include "dbformat.h"
#include "table.h"
#include "table_format.h"

typedef struct table_index_entry {
	const uint8_t *key; /* the separator, inside the index block */
	uint32_t klen;
	uint32_t size; /* stored bytes, without the trailer */
	uint64_t offset;
} table_index_entry;

struct lsm_table {
	sisy_file *f;
	uint64_t size;
	char *name;
	lsm_cache *cache;
	uint64_t cache_id;
	lsm_counters *counters;
	bool verify;
	lsm_map_budget *budget; /* NULL: mapping is not bounded */
	const uint8_t *map;	/* the whole file, or NULL */
	bool map_failed;	/* the file system could not map the file */
	bool map_starved;	/* a budget > 0 had no room for the file */
	uint8_t *index_buf;	/* owned copies when not mapped */
	uint8_t *filter_buf;	/* (trailer included) */
	const uint8_t *filter;
	size_t filter_len; /* 0: no filter */
	uint32_t nblocks;
	table_index_entry *idx;
	/* bit i, mapped: data block i is RAW and, when verify is on, passed
	 * its checksum; not mapped: block i passed its checksum */
	_Atomic uint64_t *verified;
};

/* An uncompressed block read from the file (cache value or owned). */
typedef struct table_cblock {
	size_t size;
	uint8_t data[];
} table_cblock;

/* A data block ready to be read, and what keeps its bytes alive. */
typedef struct table_block {
	lsm_block blk;
	lsm_cache_handle *h;
	table_cblock *owned;
} table_block;

static sisy_err table_corrupt(const lsm_table *t, uint64_t off,
			      const char *what)
{
	return sisy_errf(SISY_E_CORRUPT,
			 "table_reader.c: %s in %s at offset %llu; the table "
			 "is corrupt",
			 what, t->name, (unsigned long long)off);
}

/* n bytes at off: a pointer into the mapping, or a malloc'd copy in *own. */
static sisy_err table_read_raw(lsm_table *t, uint64_t off, size_t n,
			       const uint8_t **p, uint8_t **own)
{
	*own = NULL;
	if (t->map != NULL) {
		*p = t->map + off;
		return SISY_OK;
	}
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: out of memory reading %zu "
				 "bytes of %s",
				 n, t->name);
	size_t got;
	sisy_err rc = sisy_file_pread(t->f, buf, n, off, &got);
	if (rc == SISY_OK && got != n)
		rc = table_corrupt(t, off, "truncated file");
	if (rc != SISY_OK) {
		free(buf);
		return rc;
	}
	*p = buf;
	*own = buf;
	return SISY_OK;
}

/* Checks a stored block's trailer (p holds size + LSM_BLOCK_TRAILER). */
static sisy_err table_check_trailer(const lsm_table *t, uint64_t off,
				    const uint8_t *p, size_t size)
{
	if (sisy_get_u32(p + size + 1) != lsm_block_checksum(p, size))
		return table_corrupt(t, off, "bad block checksum");
	if (p[size] != LSM_BLOCK_RAW && p[size] != LSM_BLOCK_ZLIB)
		return table_corrupt(t, off, "unknown block type");
	return SISY_OK;
}

static sisy_err table_inflate(const lsm_table *t, uint64_t off,
			      const uint8_t *p, size_t n, table_cblock **out)
{
	uint32_t raw_len;
	const uint8_t *q = sisy_get_varint32(p, p + n, &raw_len);
	if (q == NULL || raw_len < 8 || raw_len > LSM_BLOCK_MAX_SIZE)
		return table_corrupt(t, off, "bad compressed block header");
	table_cblock *cb = malloc(sizeof *cb + raw_len);
	if (cb == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: out of memory inflating a "
				 "block of %s",
				 t->name);
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, -15) != Z_OK) {
		free(cb);
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: zlib init failed for %s",
				 t->name);
	}
	zs.next_in = (Bytef *)q;
	zs.avail_in = (uInt)(p + n - q);
	zs.next_out = cb->data;
	zs.avail_out = raw_len;
	int zr = inflate(&zs, Z_FINISH);
	bool ok = zr == Z_STREAM_END && zs.avail_out == 0 && zs.avail_in == 0;
	inflateEnd(&zs);
	if (!ok) {
		free(cb);
		return table_corrupt(t, off,
				     "compressed block does not inflate");
	}
	cb->size = raw_len;
	*out = cb;
	return SISY_OK;
}

/* Reads data block e into a fresh uncompressed copy, checking its trailer
 * when verify is set. */
static sisy_err table_read_cblock(lsm_table *t, const table_index_entry *e,
				  bool verify, table_cblock **out)
{
	size_t n = (size_t)e->size + LSM_BLOCK_TRAILER;
	const uint8_t *p;
	table_cblock *cb = NULL;
	sisy_err rc;
	if (t->map != NULL) {
		p = t->map + e->offset;
	} else {
		/* Read straight into a cblock: a RAW block needs no copy. */
		cb = malloc(sizeof *cb + n);
		if (cb == NULL)
			return sisy_errf(
			    SISY_E_NOMEM,
			    "table_reader.c: out of memory reading "
			    "%s",
			    t->name);
		size_t got;
		rc = sisy_file_pread(t->f, cb->data, n, e->offset, &got);
		if (rc == SISY_OK && got != n)
			rc = table_corrupt(t, e->offset, "truncated file");
		if (rc != SISY_OK)
			goto fail;
		p = cb->data;
	}
	LSM_COUNT(t->counters, bytes_read, n);
	if (verify) {
		if ((rc = table_check_trailer(t, e->offset, p, e->size)) !=
		    SISY_OK)
			goto fail;
	}
	if (p[e->size] == LSM_BLOCK_ZLIB) {
		table_cblock *raw = NULL;
		if ((rc = table_inflate(t, e->offset, p, e->size, &raw)) !=
		    SISY_OK)
			goto fail;
		free(cb);
		cb = raw;
	} else if (p[e->size] != LSM_BLOCK_RAW) {
		rc = table_corrupt(t, e->offset, "unknown block type");
		goto fail;
	} else if (cb == NULL) { /* RAW from the mapping: copy */
		cb = malloc(sizeof *cb + e->size);
		if (cb == NULL) {
			rc = sisy_errf(SISY_E_NOMEM,
				       "table_reader.c: out of memory");
			goto fail;
		}
		memcpy(cb->data, p, e->size);
		cb->size = e->size;
	} else {
		cb->size = e->size;
	}
	*out = cb;
	return SISY_OK;
fail:
	free(cb);
	return rc;
}

static void table_cblock_deleter(const void *key, size_t klen, void *value)
{
	(void)key;
	(void)klen;
	free(value);
}

static sisy_err table_parse_block(lsm_table *t, const table_index_entry *e,
				  const uint8_t *data, size_t size,
				  lsm_block *out)
{
	if (lsm_block_parse(out, data, size) != SISY_OK)
		return table_corrupt(t, e->offset, "malformed block");
	return SISY_OK;
}

static void table_block_release(lsm_table *t, table_block *b)
{
	if (b->h != NULL)
		lsm_cache_release(t->cache, b->h);
	free(b->owned);
	b->h = NULL;
	b->owned = NULL;
}

static bool table_verified(lsm_table *t, uint32_t bi)
{
	uint64_t w =
	    atomic_load_explicit(&t->verified[bi / 64], memory_order_relaxed);
	return (w >> (bi % 64)) & 1;
}

static void table_mark_verified(lsm_table *t, uint32_t bi)
{
	atomic_fetch_or_explicit(&t->verified[bi / 64],
				 UINT64_C(1) << (bi % 64),
				 memory_order_relaxed);
}

/* Makes data block bi readable (see DESIGN for where it comes from).
 * With no_io, a block that would need the file is not read: SISY_E_AGAIN
 * (no message). Only a mapped block used before (its bit set) or a cached
 * block qualifies, so the first touch of a mapped block, which may fault
 * its page in from the disk, also waits for a normal read. */
static sisy_err table_load_block(lsm_table *t, uint32_t bi, bool fill_cache,
				 bool no_io, table_block *out)
{
	assert(bi < t->nblocks);
	const table_index_entry *e = &t->idx[bi];
	sisy_err rc;
	out->h = NULL;
	out->owned = NULL;
	/* The bitmap saves reading the trailer (another cache line, maybe a
	 * page fault) and hashing the block again on later reads. */
	if (t->map != NULL &&
	    (table_verified(t, bi) ||
	     (!no_io && t->map[e->offset + e->size] == LSM_BLOCK_RAW))) {
		const uint8_t *p = t->map + e->offset;
		if (!table_verified(t, bi)) {
			if (t->verify &&
			    (rc = table_check_trailer(t, e->offset, p,
						      e->size)) != SISY_OK)
				return rc;
			table_mark_verified(t, bi);
			/* Counted once: later reads hit memory, not the file.
			 */
			LSM_COUNT(t->counters, bytes_read,
				  e->size + LSM_BLOCK_TRAILER);
		}
		return table_parse_block(t, e, p, e->size, &out->blk);
	}
	uint8_t key[16] = {0};
	if (t->cache != NULL) {
		sisy_put_u64(key, t->cache_id);
		sisy_put_u64(key + 8, e->offset);
		lsm_cache_handle *h = lsm_cache_lookup(t->cache, key, 16);
		if (h != NULL) {
			LSM_COUNT(t->counters, cache_hits, 1);
			table_cblock *cb = lsm_cache_value(h);
			out->h = h;
			rc = table_parse_block(t, e, cb->data, cb->size,
					       &out->blk);
			goto done;
		}
		if (!no_io) /* counted by the read that follows */
			LSM_COUNT(t->counters, cache_misses, 1);
	}
	if (no_io)
		return SISY_E_AGAIN;
	/* A block read with pread is checked once per open table, as a
	 * mapped one is, so a cache miss costs no hashing after the first.
	 * (On a mapped table a bit means "RAW": never set for a ZLIB block.) */
	bool pread_path = t->map == NULL;
	bool check = t->verify && !(pread_path && table_verified(t, bi));
	table_cblock *cb;
	if ((rc = table_read_cblock(t, e, check, &cb)) != SISY_OK)
		return rc;
	if (check && pread_path)
		table_mark_verified(t, bi);
	if (t->cache != NULL && fill_cache) {
		out->h = lsm_cache_insert(t->cache, key, 16, cb,
					  sizeof *cb + cb->size,
					  table_cblock_deleter);
		if (out->h == NULL)
			return sisy_errf(
			    SISY_E_NOMEM,
			    "table_reader.c: out of memory caching "
			    "a block of %s",
			    t->name);
	} else {
		out->owned = cb;
	}
	rc = table_parse_block(t, e, cb->data, cb->size, &out->blk);
done:
	if (rc != SISY_OK)
		table_block_release(t, out);
	return rc;
}

/* --- open ---------------------------------------------------------------- */

/* Reads a meta block (index, filter) whole, trailer checked, into *p. */
static sisy_err table_read_meta(lsm_table *t, lsm_block_handle h,
				const uint8_t **p, uint8_t **own)
{
	sisy_err rc =
	    table_read_raw(t, h.offset, h.size + LSM_BLOCK_TRAILER, p, own);
	if (rc != SISY_OK)
		return rc;
	rc = table_check_trailer(t, h.offset, *p, h.size);
	if (rc == SISY_OK && (*p)[h.size] != LSM_BLOCK_RAW)
		rc = table_corrupt(t, h.offset, "compressed meta block");
	return rc;
}

/* Decodes the index block into t->idx and checks that the data blocks tile
 * [0, data_end) in order, with strictly increasing separators. */
static sisy_err table_load_index(lsm_table *t, const uint8_t *data, size_t size,
				 uint64_t index_off, uint64_t data_end)
{
	lsm_block blk;
	if (lsm_block_parse(&blk, data, size) != SISY_OK)
		return table_corrupt(t, index_off, "malformed index block");
	/* Each entry takes at least 3 header + 8 key + 2 handle bytes. */
	size_t cap = blk.data_end / 13 + 1;
	t->idx = malloc(cap * sizeof *t->idx);
	if (t->idx == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: out of memory "
				 "opening %s",
				 t->name);
	const uint8_t *p = data, *end = data + blk.data_end;
	uint64_t expect = 0;
	uint32_t n = 0;
	while (p < end) {
		uint32_t shared, unshared, vlen;
		lsm_block_handle h;
		if ((p = sisy_get_varint32(p, end, &shared)) == NULL ||
		    (p = sisy_get_varint32(p, end, &unshared)) == NULL ||
		    (p = sisy_get_varint32(p, end, &vlen)) == NULL ||
		    shared != 0 || unshared < 8 ||
		    unshared > (size_t)(end - p) ||
		    vlen > (size_t)(end - p) - unshared || n >= cap)
			return table_corrupt(t, index_off, "malformed index");
		const uint8_t *key = p, *v = p + unshared;
		p = v + vlen;
		if (lsm_handle_decode(v, p, &h) != p || h.offset != expect ||
		    h.size > LSM_BLOCK_MAX_SIZE ||
		    h.size + LSM_BLOCK_TRAILER > data_end - h.offset)
			return table_corrupt(t, index_off,
					     "bad block handle in index");
		sisy_slice k = sisy_slice_make(key, unshared);
		if (n > 0 && lsm_ikey_cmp(sisy_slice_make(t->idx[n - 1].key,
							  t->idx[n - 1].klen),
					  k) >= 0)
			return table_corrupt(t, index_off,
					     "index keys out of order");
		t->idx[n].key = key;
		t->idx[n].klen = unshared;
		t->idx[n].offset = h.offset;
		t->idx[n].size = (uint32_t)h.size;
		expect = h.offset + h.size + LSM_BLOCK_TRAILER;
		n++;
	}
	if (expect != data_end)
		return table_corrupt(t, index_off,
				     "data blocks do not fill the table");
	t->nblocks = n;
	return SISY_OK;
}

/* A handle must lie inside [0, limit) with its trailer. */
static bool table_handle_fits(lsm_block_handle h, uint64_t limit)
{
	return h.size <= LSM_BLOCK_MAX_SIZE && h.offset <= limit &&
	       h.size + LSM_BLOCK_TRAILER <= limit - h.offset;
}

static sisy_err table_open_meta(lsm_table *t)
{
	const uint8_t *fp = NULL;
	uint8_t *fown = NULL;
	uint64_t foff = t->size - LSM_FOOTER_SIZE;
	sisy_err rc = table_read_raw(t, foff, LSM_FOOTER_SIZE, &fp, &fown);
	if (rc != SISY_OK)
		return rc;
	lsm_footer ft;
	rc = lsm_footer_decode(fp, &ft);
	free(fown);
	if (rc == SISY_E_VERSION)
		return sisy_errf(rc,
				 "table_reader.c: %s has an unsupported "
				 "format version",
				 t->name);
	if (rc != SISY_OK)
		return table_corrupt(t, foff, "bad footer");
	/* Layout: data blocks | filter (optional) | index | footer. */
	if (!table_handle_fits(ft.index, foff) ||
	    ft.index.offset + ft.index.size + LSM_BLOCK_TRAILER != foff)
		return table_corrupt(t, foff, "bad index handle in footer");
	uint64_t data_end = ft.index.offset;
	if (ft.filter.size > 0) {
		if (!table_handle_fits(ft.filter, ft.index.offset) ||
		    ft.filter.offset + ft.filter.size + LSM_BLOCK_TRAILER !=
			ft.index.offset)
			return table_corrupt(t, foff,
					     "bad filter handle in footer");
		data_end = ft.filter.offset;
	}
	const uint8_t *ip;
	if ((rc = table_read_meta(t, ft.index, &ip, &t->index_buf)) !=
		SISY_OK ||
	    (rc = table_load_index(t, ip, ft.index.size, ft.index.offset,
				   data_end)) != SISY_OK)
		return rc;
	if (ft.filter.size > 0) {
		const uint8_t *flt;
		rc = table_read_meta(t, ft.filter, &flt, &t->filter_buf);
		if (rc != SISY_OK)
			return rc;
		if (!lsm_bloom_valid(flt, ft.filter.size))
			return table_corrupt(t, ft.filter.offset,
					     "malformed filter");
		t->filter = flt;
		t->filter_len = ft.filter.size;
	}
	size_t words = (t->nblocks + 63) / 64;
	t->verified = calloc(words > 0 ? words : 1, sizeof *t->verified);
	if (t->verified == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: out of memory "
				 "opening %s",
				 t->name);
	return SISY_OK;
}

/* --- the map budget ------------------------------------------------------ */

void lsm_map_budget_init(lsm_map_budget *b, uint64_t limit)
{
	atomic_init(&b->used, 0);
	b->limit = limit;
}

bool lsm_map_budget_take(lsm_map_budget *b, uint64_t n)
{
	uint64_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
	do {
		if (n > b->limit || used > b->limit - n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
	    &b->used, &used, used + n, memory_order_relaxed,
	    memory_order_relaxed));
	return true;
}

void lsm_map_budget_give(lsm_map_budget *b, uint64_t n)
{
	uint64_t was =
	    atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
	assert(was >= n);
	(void)was;
}

uint64_t lsm_map_budget_used(lsm_map_budget *b)
{
	return atomic_load_explicit(&b->used, memory_order_relaxed);
}

/* Maps t's file when the budget allows; a file system that cannot map is
 * read with pread instead. */
static sisy_err table_map(lsm_table *t)
{
	if (t->budget != NULL && !lsm_map_budget_take(t->budget, t->size)) {
		t->map_starved = t->budget->limit > 0;
		return SISY_OK;
	}
	const uint8_t *m;
	size_t mlen;
	if (sisy_file_map(t->f, &m, &mlen) != SISY_OK) {
		sisy_errclear();
		t->map_failed = true;
		if (t->budget != NULL)
			lsm_map_budget_give(t->budget, t->size);
		return SISY_OK;
	}
	t->map = m; /* from here on the charge is returned by close */
	if (mlen < t->size)
		return table_corrupt(t, mlen, "truncated file");
	return SISY_OK;
}

sisy_err lsm_table_open(sisy_file *f, uint64_t file_size, const char *name,
			lsm_cache *block_cache, lsm_map_budget *map_budget,
			lsm_counters *counters, bool verify_checksums,
			lsm_table **out)
{
	assert(f != NULL && name != NULL && out != NULL);
	sisy_err rc;
	lsm_table *t = calloc(1, sizeof *t);
	if (t == NULL || (t->name = strdup(name)) == NULL) {
		free(t);
		sisy_file_close(f);
		return sisy_errf(SISY_E_NOMEM,
				 "table_reader.c: out of memory opening %s",
				 name);
	}
	t->f = f;
	t->size = file_size;
	t->cache = block_cache;
	t->counters = counters;
	t->verify = verify_checksums;
	t->budget = map_budget;
	if (file_size < LSM_FOOTER_SIZE) {
		rc = table_corrupt(t, 0, "file too short for a table");
		goto fail;
	}
	if ((rc = table_map(t)) != SISY_OK ||
	    (rc = table_open_meta(t)) != SISY_OK)
		goto fail;
	if (block_cache != NULL)
		t->cache_id = lsm_cache_new_id(block_cache);
	*out = t;
	return SISY_OK;
fail:
	lsm_table_close(t);
	return rc;
}

void lsm_table_close(lsm_table *t)
{
	if (t == NULL)
		return;
	/* The table's cached blocks are keyed by a cache id that is never
	 * reused: they age out of the LRU on their own. */
	if (t->f != NULL)
		(void)sisy_file_close(t->f); /* read-only: nothing to lose */
	/* Returned only now that closing the file has dropped the mapping. */
	if (t->map != NULL && t->budget != NULL)
		lsm_map_budget_give(t->budget, t->size);
	free(t->idx);
	free(t->index_buf);
	free(t->filter_buf);
	free((void *)t->verified);
	free(t->name);
	free(t);
}

bool lsm_table_mapped(const lsm_table *t)
{
	return t->map != NULL;
}

bool lsm_table_map_failed(const lsm_table *t)
{
	return t->map_failed;
}

bool lsm_table_map_starved(const lsm_table *t)
{
	return t->map_starved;
}

/* --- lookups ------------------------------------------------------------- */

/* The first data block whose separator is >= key; nblocks when none. */
static uint32_t table_find_block(const lsm_table *t, sisy_slice key)
{
	uint32_t lo = 0, hi = t->nblocks;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const table_index_entry *e = &t->idx[mid];
		if (lsm_ikey_cmp(sisy_slice_make(e->key, e->klen), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

sisy_err lsm_table_get(lsm_table *t, sisy_slice lookup, lsm_table_get_fn fn,
		       void *ctx, bool *found)
{
	return lsm_table_get_flags(t, lookup, 0, fn, ctx, found);
}

sisy_err lsm_table_get_flags(lsm_table *t, sisy_slice lookup, int flags,
			     lsm_table_get_fn fn, void *ctx, bool *found)
{
	assert(lookup.len >= 8 && fn != NULL && found != NULL);
	*found = false;
	if (t->filter != NULL) {
		uint64_t h = lsm_bloom_hash(lsm_ikey_user(lookup));
		if (!lsm_bloom_may_match(t->filter, t->filter_len, h)) {
			LSM_COUNT(t->counters, bloom_negatives, 1);
			return SISY_OK;
		}
		LSM_COUNT(t->counters, bloom_positives, 1);
	}
	/* Separators are >= every key of their block, so if the block runs
	 * out before reaching lookup, the next block starts with a larger
	 * user key (see table_builder.c): the key is not in the table. */
	uint32_t bi = table_find_block(t, lookup);
	if (bi == t->nblocks)
		return SISY_OK;
	table_block b;
	sisy_err rc =
	    table_load_block(t, bi, true, (flags & LSM_READ_NO_IO) != 0, &b);
	if (rc != SISY_OK)
		return rc;
	lsm_block_cursor c;
	lsm_block_cursor_init(&c, &b.blk);
	lsm_block_cursor_seek(&c, lookup);
	if (lsm_block_cursor_valid(&c)) {
		sisy_slice k = lsm_block_cursor_key(&c);
		if (sisy_slice_eq(lsm_ikey_user(k), lsm_ikey_user(lookup))) {
			fn(ctx, k, lsm_block_cursor_value(&c));
			*found = true;
		}
	} else if (lsm_block_cursor_status(&c) != SISY_OK) {
		rc = lsm_block_cursor_status(&c) == SISY_E_NOMEM
			 ? sisy_errf(SISY_E_NOMEM, "table_reader.c: out "
						   "of memory")
			 : table_corrupt(t, t->idx[bi].offset,
					 "malformed block");
	}
	lsm_block_cursor_free(&c);
	table_block_release(t, &b);
	return rc;
}

/* --- iteration ----------------------------------------------------------- */

typedef struct table_iter {
	lsm_iter base;
	lsm_table *t;
	bool fill_cache;
	bool loaded; /* blk and cur hold block bi */
	uint32_t bi;
	table_block blk;
	lsm_block_cursor cur;
	sisy_err status;
	lsm_table_cache *tc; /* with ref: the pin released on destroy */
	lsm_table_ref *ref;
	char msg[256];
} table_iter;

static void titer_fail(table_iter *it, sisy_err rc)
{
	if (it->status == SISY_OK) {
		it->status = rc;
		snprintf(it->msg, sizeof it->msg, "%s", sisy_errmsg());
	}
}

static void titer_unload(table_iter *it)
{
	if (it->loaded) {
		lsm_block_cursor_free(&it->cur);
		table_block_release(it->t, &it->blk);
		it->loaded = false;
	}
}

static bool titer_load(table_iter *it, uint32_t bi)
{
	titer_unload(it);
	it->bi = bi;
	if (bi >= it->t->nblocks)
		return false;
	sisy_err rc =
	    table_load_block(it->t, bi, it->fill_cache, false, &it->blk);
	if (rc != SISY_OK) {
		titer_fail(it, rc);
		return false;
	}
	lsm_block_cursor_init(&it->cur, &it->blk.blk);
	it->loaded = true;
	return true;
}

/* Moves past exhausted blocks (an empty block is malformed but harmless). */
static void titer_settle(table_iter *it)
{
	while (it->loaded && !lsm_block_cursor_valid(&it->cur)) {
		sisy_err rc = lsm_block_cursor_status(&it->cur);
		if (rc != SISY_OK) {
			titer_fail(
			    it, rc == SISY_E_NOMEM
				    ? sisy_errf(rc, "table_reader.c: "
						    "out of memory")
				    : table_corrupt(it->t,
						    it->t->idx[it->bi].offset,
						    "malformed block"));
			titer_unload(it);
			return;
		}
		if (titer_load(it, it->bi + 1))
			lsm_block_cursor_seek_first(&it->cur);
	}
}

static bool titer_valid(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	return it->status == SISY_OK && it->loaded &&
	       lsm_block_cursor_valid(&it->cur);
}

static void titer_seek_first(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	if (it->status != SISY_OK)
		return;
	if (titer_load(it, 0))
		lsm_block_cursor_seek_first(&it->cur);
	titer_settle(it);
}

static void titer_seek(lsm_iter *base, sisy_slice target)
{
	table_iter *it = (table_iter *)base;
	if (it->status != SISY_OK)
		return;
	if (titer_load(it, table_find_block(it->t, target)))
		lsm_block_cursor_seek(&it->cur, target);
	titer_settle(it);
}

static void titer_next(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	assert(titer_valid(base));
	lsm_block_cursor_next(&it->cur);
	titer_settle(it);
}

static sisy_slice titer_key(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	assert(titer_valid(base));
	return lsm_block_cursor_key(&it->cur);
}

static sisy_slice titer_value(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	assert(titer_valid(base));
	return lsm_block_cursor_value(&it->cur);
}

static sisy_err titer_status(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	if (it->status != SISY_OK)
		return sisy_errf(it->status, "%s", it->msg);
	return SISY_OK;
}

static void titer_destroy(lsm_iter *base)
{
	table_iter *it = (table_iter *)base;
	titer_unload(it);
	if (it->ref != NULL)
		lsm_table_cache_release(it->tc, it->ref); /* t may close now */
	free(it);
}

static const lsm_iter_ops table_iter_ops = {
    .valid = titer_valid,
    .seek_first = titer_seek_first,
    .seek = titer_seek,
    .next = titer_next,
    .key = titer_key,
    .value = titer_value,
    .status = titer_status,
    .destroy = titer_destroy,
};

lsm_iter *lsm_table_iter_new(lsm_table *t, bool fill_cache)
{
	table_iter *it = calloc(1, sizeof *it);
	if (it == NULL)
		return NULL;
	it->base.ops = &table_iter_ops;
	it->t = t;
	it->fill_cache = fill_cache;
	return &it->base;
}

lsm_iter *lsm_table_iter_new_pinned(lsm_table *t, bool fill_cache,
				    lsm_table_cache *tc, lsm_table_ref *ref)
{
	assert(tc != NULL && ref != NULL);
	lsm_iter *base = lsm_table_iter_new(t, fill_cache);
	if (base != NULL) {
		((table_iter *)base)->tc = tc;
		((table_iter *)base)->ref = ref;
	}
	return base;
}

/* --- verification -------------------------------------------------------- */

sisy_err lsm_table_verify(lsm_table *t)
{
	sisy_err rc = SISY_OK;
	sisy_buf prev = {0};
	for (uint32_t bi = 0; bi < t->nblocks && rc == SISY_OK; bi++) {
		const table_index_entry *e = &t->idx[bi];
		table_cblock *cb;
		if ((rc = table_read_cblock(t, e, true, &cb)) != SISY_OK)
			break;
		lsm_block blk = {NULL, 0, 0};
		rc = table_parse_block(t, e, cb->data, cb->size, &blk);
		lsm_block_cursor c;
		lsm_block_cursor_init(&c, &blk);
		if (rc == SISY_OK)
			lsm_block_cursor_seek_first(&c);
		sisy_slice sep = sisy_slice_make(e->key, e->klen);
		for (; rc == SISY_OK && lsm_block_cursor_valid(&c);
		     lsm_block_cursor_next(&c)) {
			sisy_slice k = lsm_block_cursor_key(&c);
			if ((prev.len > 0 &&
			     lsm_ikey_cmp(sisy_buf_slice(&prev), k) >= 0) ||
			    lsm_ikey_cmp(k, sep) > 0)
				rc = table_corrupt(t, e->offset,
						   "keys out of order");
			else
				rc = sisy_buf_set(&prev, k.data, k.len);
		}
		if (rc == SISY_OK && lsm_block_cursor_status(&c) != SISY_OK)
			rc = table_corrupt(t, e->offset, "malformed block");
		lsm_block_cursor_free(&c);
		free(cb);
	}
	sisy_buf_free(&prev);
	return rc;
}
