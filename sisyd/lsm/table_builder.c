/* table_builder.c — writes an SSTable (framing in table_format.h, blocks in
 * block.h, filter in bloom.h; docs/format-sstable.md has the whole file).
 *
 * BYTE LAYOUT, in file order
 *   data block 0 | trailer | data block 1 | trailer | ...
 *   filter block | trailer          (only with bloom bits > 0 and >= 1 key)
 *   index block  | trailer          (restart interval 1: whole keys)
 *   footer (56 bytes: handles, version, checksum, magic)
 *
 * HOW
 *   Entries go into the current data block until it reaches block_size; it is
 *   then sealed (optionally zlib-compressed when that saves at least 1/8),
 *   given its trailer and queued for the file. Its index entry waits for the
 *   next key, so the separator can be shortened LevelDB's way: a user key
 *   between the block's last key and the next block's first, one byte longer
 *   than their common prefix, with the largest trailer (the smallest internal
 *   key for that user key). When nothing shorter exists, the separator is the
 *   block's last key. The last block's index key is its last key.
 *   Filter: one hash per distinct user key, turned into the filter at finish.
 *   Output is buffered and appended in chunks of LSM_BUILDER_WRITE_CHUNK.
 *
 * INVARIANTS
 *   offset = bytes appended to the file + bytes waiting in `out`: the file
 *   offset the next block will have.
 *   Once an error occurs it is sticky: every later call returns it.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "block.h"
#include "bloom.h"
#include "dbformat.h"
#include "table.h"
#include "table_format.h"

#define LSM_BUILDER_WRITE_CHUNK (64 * 1024)

struct lsm_table_builder {
	lsm_table_options o;
	sisy_file *f;
	char *name;
	lsm_counters *counters;
	uint64_t offset;
	sisy_buf out;
	lsm_block_builder data;
	lsm_block_builder index;
	lsm_bloom_builder bloom;
	bool pending_index; /* a sealed block awaits its index entry */
	lsm_block_handle pending_handle;
	uint64_t entries;
	sisy_err status;
	z_stream zs;
	bool zs_ready;
	sisy_buf zbuf;	  /* compressed block */
	sisy_buf scratch; /* separators, the filter */
};

void lsm_table_options_init(lsm_table_options *o)
{
	o->block_size = 4096;
	o->restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->compression = false;
}

sisy_err lsm_table_builder_new(const lsm_table_options *o, sisy_file *f,
			       const char *name, lsm_counters *counters,
			       lsm_table_builder **out)
{
	assert(o != NULL && f != NULL && name != NULL);
	assert(o->block_size > 0 && o->restart_interval >= 1);
	assert(o->bloom_bits_per_key >= 0);
	lsm_table_builder *b = calloc(1, sizeof *b);
	char *nm = strdup(name);
	if (b == NULL || nm == NULL) {
		free(b);
		free(nm);
		return sisy_errf(SISY_E_NOMEM,
				 "table_builder.c: out of memory "
				 "building %s",
				 name);
	}
	b->o = *o;
	b->f = f;
	b->name = nm;
	b->counters = counters;
	lsm_block_builder_init(&b->data, o->restart_interval);
	lsm_block_builder_init(&b->index, 1);
	if (o->bloom_bits_per_key > 0)
		lsm_bloom_builder_init(&b->bloom, o->bloom_bits_per_key);
	*out = b;
	return SISY_OK;
}

void lsm_table_builder_abandon(lsm_table_builder *b)
{
	if (b == NULL)
		return;
	if (b->zs_ready)
		deflateEnd(&b->zs);
	lsm_block_builder_free(&b->data);
	lsm_block_builder_free(&b->index);
	lsm_bloom_builder_free(&b->bloom);
	sisy_buf_free(&b->out);
	sisy_buf_free(&b->zbuf);
	sisy_buf_free(&b->scratch);
	free(b->name);
	free(b);
}

static sisy_err builder_fail(lsm_table_builder *b, sisy_err rc)
{
	if (b->status == SISY_OK)
		b->status = rc;
	return b->status;
}

static sisy_err builder_flush_out(lsm_table_builder *b)
{
	if (b->out.len == 0)
		return SISY_OK;
	sisy_err rc = sisy_file_append(b->f, b->out.data, b->out.len);
	if (rc != SISY_OK)
		return builder_fail(b, rc);
	LSM_COUNT(b->counters, bytes_written, b->out.len);
	b->out.len = 0;
	return SISY_OK;
}

/* Deflates raw into zbuf as raw_len:varint32 || deflate stream. */
static sisy_err builder_compress(lsm_table_builder *b, sisy_slice raw)
{
	if (!b->zs_ready) {
		if (deflateInit2(&b->zs, Z_BEST_SPEED, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return sisy_errf(SISY_E_NOMEM,
					 "table_builder.c: zlib init failed");
		b->zs_ready = true;
	} else if (deflateReset(&b->zs) != Z_OK) {
		return sisy_errf(SISY_E_INTERNAL,
				 "table_builder.c: zlib reset failed");
	}
	size_t bound = deflateBound(&b->zs, (uLong)raw.len);
	b->zbuf.len = 0;
	sisy_err rc = sisy_buf_reserve(&b->zbuf, SISY_VARINT32_MAX + bound);
	if (rc != SISY_OK)
		return rc;
	b->zbuf.len = sisy_put_varint32(b->zbuf.data, (uint32_t)raw.len);
	b->zs.next_in = (Bytef *)raw.data;
	b->zs.avail_in = (uInt)raw.len;
	b->zs.next_out = b->zbuf.data + b->zbuf.len;
	b->zs.avail_out = (uInt)bound;
	if (deflate(&b->zs, Z_FINISH) != Z_STREAM_END)
		return sisy_errf(SISY_E_INTERNAL,
				 "table_builder.c: zlib deflate failed");
	b->zbuf.len += bound - b->zs.avail_out;
	return SISY_OK;
}

/* Queues a block with its trailer; *h says where it lands. */
static sisy_err builder_write_block(lsm_table_builder *b, sisy_slice contents,
				    bool compressible, lsm_block_handle *h)
{
	sisy_slice payload = contents;
	uint8_t type = LSM_BLOCK_RAW;
	if (compressible && b->o.compression) {
		sisy_err rc = builder_compress(b, contents);
		if (rc != SISY_OK)
			return builder_fail(b, rc);
		/* Decompressing costs time on every cache miss: only worth it
		 * when it saves at least an eighth. */
		if (b->zbuf.len < contents.len - contents.len / 8) {
			payload = sisy_buf_slice(&b->zbuf);
			type = LSM_BLOCK_ZLIB;
		}
	}
	sisy_err rc =
	    sisy_buf_reserve(&b->out, payload.len + LSM_BLOCK_TRAILER);
	if (rc != SISY_OK)
		return builder_fail(b, rc);
	uint8_t *p = b->out.data + b->out.len;
	memcpy(p, payload.data, payload.len);
	p[payload.len] = type;
	sisy_put_u32(p + payload.len + 1, lsm_block_checksum(p, payload.len));
	b->out.len += payload.len + LSM_BLOCK_TRAILER;
	h->offset = b->offset;
	h->size = payload.len;
	b->offset += payload.len + LSM_BLOCK_TRAILER;
	if (b->out.len >= LSM_BUILDER_WRITE_CHUNK)
		return builder_flush_out(b);
	return SISY_OK;
}

static sisy_err builder_seal_data_block(lsm_table_builder *b)
{
	assert(!lsm_block_builder_empty(&b->data) && !b->pending_index);
	sisy_slice contents;
	sisy_err rc = lsm_block_builder_finish(&b->data, &contents);
	if (rc != SISY_OK)
		return builder_fail(b, rc);
	rc = builder_write_block(b, contents, true, &b->pending_handle);
	if (rc != SISY_OK)
		return rc;
	lsm_block_builder_reset(&b->data);
	b->pending_index = true;
	return SISY_OK;
}

/* A short key k with last <= k < next in internal-key order (see top). */
static sisy_err builder_separator(lsm_table_builder *b, sisy_slice last,
				  sisy_slice next, sisy_slice *sep)
{
	sisy_slice ua = lsm_ikey_user(last), ub = lsm_ikey_user(next);
	size_t n = ua.len < ub.len ? ua.len : ub.len, i = 0;
	while (i < n && ua.data[i] == ub.data[i])
		i++;
	*sep = last;
	if (i >= n || i + 1 >= ua.len)
		return SISY_OK;
	uint8_t byte = ua.data[i];
	if (byte == 0xff || byte + 1 >= ub.data[i])
		return SISY_OK;
	sisy_err rc = sisy_buf_set(&b->scratch, ua.data, i + 1);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(
		    &b->scratch, lsm_trailer(LSM_MAX_SEQ, LSM_TYPE_SEEK));
	if (rc != SISY_OK)
		return rc;
	b->scratch.data[i] = (uint8_t)(byte + 1);
	*sep = sisy_buf_slice(&b->scratch);
	assert(lsm_ikey_cmp(last, *sep) < 0 && lsm_ikey_cmp(*sep, next) < 0);
	return SISY_OK;
}

static sisy_err builder_add_index(lsm_table_builder *b, sisy_slice key)
{
	uint8_t enc[LSM_HANDLE_MAX];
	size_t n = lsm_handle_encode(enc, b->pending_handle);
	sisy_err rc =
	    lsm_block_builder_add(&b->index, key, sisy_slice_make(enc, n));
	if (rc != SISY_OK)
		return builder_fail(b, rc);
	b->pending_index = false;
	return SISY_OK;
}

sisy_err lsm_table_builder_add(lsm_table_builder *b, sisy_slice ikey,
			       sisy_slice value)
{
	if (b->status != SISY_OK)
		return b->status;
	/* The last key lives in the data block builder (kept across blocks):
	 * one comparison gives both the order check and whether the user key
	 * is new (for the filter). */
	sisy_slice last = lsm_block_builder_last_key(&b->data);
	int c = 1;
	if (ikey.len >= 8 && b->entries > 0) {
		c = lsm_user_cmp(ikey.data, ikey.len - 8, last.data,
				 last.len - 8);
		if (c == 0 && lsm_ikey_trailer(ikey) >= lsm_ikey_trailer(last))
			c = -1; /* same user key: seq must decrease */
	}
	if (ikey.len < 8 || c < 0) {
		assert(!"table keys must be internal keys in strict order");
		return builder_fail(
		    b, sisy_errf(SISY_E_INVAL,
				 "table_builder.c: key out of order in %s",
				 b->name));
	}
	assert(b->entries == 0 || lsm_ikey_cmp(last, ikey) < 0);
	sisy_err rc;
	if (b->pending_index) {
		sisy_slice sep;
		if ((rc = builder_separator(b, last, ikey, &sep)) != SISY_OK ||
		    (rc = builder_add_index(b, sep)) != SISY_OK)
			return builder_fail(b, rc);
	}
	if (b->o.bloom_bits_per_key > 0 && c > 0) {
		rc = lsm_bloom_builder_add(&b->bloom, lsm_ikey_user(ikey));
		if (rc != SISY_OK)
			return builder_fail(b, rc);
	}
	if ((rc = lsm_block_builder_add(&b->data, ikey, value)) != SISY_OK)
		return builder_fail(b, rc);
	b->entries++;
	if (lsm_block_builder_estimate(&b->data) >= b->o.block_size)
		return builder_seal_data_block(b);
	return SISY_OK;
}

sisy_slice lsm_table_builder_last_key(const lsm_table_builder *b)
{
	assert(b->entries > 0);
	return lsm_block_builder_last_key(&b->data);
}

uint64_t lsm_table_builder_size(const lsm_table_builder *b)
{
	uint64_t pending = lsm_block_builder_empty(&b->data)
			       ? 0
			       : lsm_block_builder_estimate(&b->data);
	return b->offset + pending;
}

uint64_t lsm_table_builder_entries(const lsm_table_builder *b)
{
	return b->entries;
}

static sisy_err builder_write_tail(lsm_table_builder *b)
{
	sisy_err rc;
	if (!lsm_block_builder_empty(&b->data) &&
	    (rc = builder_seal_data_block(b)) != SISY_OK)
		return rc;
	if (b->pending_index &&
	    (rc = builder_add_index(b, lsm_block_builder_last_key(&b->data))) !=
		SISY_OK)
		return rc;
	lsm_footer ft = {{0, 0}, {0, 0}};
	if (b->o.bloom_bits_per_key > 0 && b->entries > 0) {
		b->scratch.len = 0;
		if ((rc = lsm_bloom_builder_finish(&b->bloom, &b->scratch)) !=
			SISY_OK ||
		    (rc = builder_write_block(b, sisy_buf_slice(&b->scratch),
					      false, &ft.filter)) != SISY_OK)
			return builder_fail(b, rc);
	}
	sisy_slice index;
	if ((rc = lsm_block_builder_finish(&b->index, &index)) != SISY_OK ||
	    (rc = builder_write_block(b, index, false, &ft.index)) != SISY_OK)
		return builder_fail(b, rc);
	uint8_t footer[LSM_FOOTER_SIZE];
	lsm_footer_encode(footer, &ft);
	if ((rc = sisy_buf_append(&b->out, footer, sizeof footer)) != SISY_OK)
		return builder_fail(b, rc);
	b->offset += sizeof footer;
	return builder_flush_out(b);
}

sisy_err lsm_table_builder_finish(lsm_table_builder *b, uint64_t *file_size)
{
	sisy_err rc = b->status;
	if (rc == SISY_OK)
		rc = builder_write_tail(b);
	if (rc == SISY_OK && file_size != NULL)
		*file_size = b->offset;
	lsm_table_builder_abandon(b);
	return rc;
}
