/* format.h — the Raft log's on-disk format (docs/raftlog.md says the same
 * for readers who never open the code). Pure encoding and decoding.
 *
 * A log directory holds LOCK and segment files named "%016llx.rlog" after
 * their sequence number (hex, from 1). The segments present always form one
 * run of consecutive numbers: only the oldest are ever deleted.
 *
 * Segment header, 48 bytes, integers little-endian:
 *    0  magic        8   "SISYRLOG"
 *    8  version      u32 RAFTLOG_VERSION (1)
 *   12  flags        u32 0
 *   16  seq          u64 the segment's number (matches the file name)
 *   24  torn_window  u64 the writer never had more than this many bytes
 *                        written and unsynced in this segment at once
 *   32  reserved     u64 0
 *   40  checksum     u32 sisy_checksum32 of bytes [0, 40)
 *   44  reserved     u32 0
 *
 * Records follow the header back to back (no alignment, never split across
 * segments):
 *    0  crc   u32 sisy_checksum32 of bytes [4, 9 + len): len, type, body
 *    4  len   u32 body length
 *    8  type  u8  one of RAFTLOG_REC_* (never 0)
 *    9  body  len bytes; integers are LEB128 varints:
 *         ENTRY      group, index, term, then the payload (the rest)
 *         HARDSTATE  group, term, vote, commit
 *         BASE       group, index, term   (snapshot/compaction point)
 *         SEAL       seq                  (the segment ends here)
 * Nine zero bytes (the preallocated space after the tail) are never a valid
 * record: type 0 does not exist.
 */
#ifndef SISY_RAFTLOG_FORMAT_H
#define SISY_RAFTLOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define RAFTLOG_MAGIC	 "SISYRLOG"
#define RAFTLOG_VERSION	 1u
#define RAFTLOG_HDR_SIZE 48
#define RAFTLOG_REC_HDR	 9
/* Body bound for the decoder, whatever a past configuration allowed. */
#define RAFTLOG_BODY_MAX ((size_t)256 << 20)
/* Largest possible varint overhead of an ENTRY body before the payload. */
#define RAFTLOG_ENTRY_OVERHEAD (RAFTLOG_REC_HDR + 3 * 10)
#define RAFTLOG_SEAL_MAX       (RAFTLOG_REC_HDR + 10)
#define RAFTLOG_SEG_SUFFIX     ".rlog"
#define RAFTLOG_SEG_NAME_LEN   (16 + 5)

enum {
	RAFTLOG_REC_ENTRY = 1,
	RAFTLOG_REC_HARDSTATE = 2,
	RAFTLOG_REC_BASE = 3,
	RAFTLOG_REC_SEAL = 4,
};

typedef struct raftlog_seghdr {
	uint32_t version;
	uint64_t seq;
	uint64_t torn_window;
} raftlog_seghdr;

void raftlog_seghdr_encode(uint8_t out[RAFTLOG_HDR_SIZE], uint64_t seq,
			   uint64_t torn_window);
/* SISY_E_CORRUPT (bad magic or checksum) or SISY_E_VERSION; the message
 * names `path`. */
sisy_err raftlog_seghdr_decode(const uint8_t *p, const char *path,
			       raftlog_seghdr *h);

/* A decoded record; pointers borrow the input. */
typedef struct raftlog_rec {
	uint8_t type;
	size_t size; /* header + body */
	uint64_t group, index, term, vote, commit, seq;
	const uint8_t *payload;
	size_t plen;
} raftlog_rec;

typedef enum raftlog_parse {
	RAFTLOG_PARSE_OK,
	RAFTLOG_PARSE_SHORT, /* the record would run past `avail` bytes */
	RAFTLOG_PARSE_BAD,   /* zeros, bad checksum, type or body */
} raftlog_parse;

/* Decodes the record at p. `avail` bytes are readable; when the header says
 * the record is longer, returns SHORT with *need set to its size. */
raftlog_parse raftlog_rec_decode(const uint8_t *p, size_t avail, raftlog_rec *r,
				 size_t *need);

/* sisy_checksum32 (the checksum of headers and records), inlined here:
 * equal to it for every input. */
uint32_t raftlog_checksum32(const void *data, size_t len);

/* Each appends one whole record to b. */
sisy_err raftlog_put_entry(sisy_buf *b, uint64_t group, uint64_t index,
			   uint64_t term, const uint8_t *data, size_t len);
sisy_err raftlog_put_hardstate(sisy_buf *b, uint64_t group, uint64_t term,
			       uint64_t vote, uint64_t commit);
sisy_err raftlog_put_base(sisy_buf *b, uint64_t group, uint64_t index,
			  uint64_t term);
sisy_err raftlog_put_seal(sisy_buf *b, uint64_t seq);

/* "<dir>/<seq as %016llx>.rlog" into out (cap bytes). */
sisy_err raftlog_seg_path(char *out, size_t cap, const char *dir, uint64_t seq);
/* Parses a directory entry name; 0 if it is not a segment name. */
uint64_t raftlog_seg_parse_name(const char *name);

#endif
