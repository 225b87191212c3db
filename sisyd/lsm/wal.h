/* wal.h — the record log: the file format of both the write-ahead log
 * (NNNNNN.log, records = write batches) and the MANIFEST (records = version
 * edits). docs/format-wal-manifest.md has the same layout for readers.
 *
 * FILE LAYOUT (all integers little-endian)
 *   header, 32 bytes:
 *     0   8  magic     "SISYWAL\0" (WAL) or "SISYMAN\0" (MANIFEST)
 *     8   4  version   LSM_WAL_VERSION (2; version 1 files are still read)
 *     12  4  flags     0
 *     16  8  number    the file's number (000042.log -> 42)
 *     24  4  reserved  0
 *     28  4  checksum  sisy_checksum32 of bytes 0..27
 *   then records, back to back (version 2):
 *     0   4  checksum  sisy_checksum32 of (number u64, offset u64, length
 *                      u32, synced u64) || payload, where offset is this
 *                      record's position in the file
 *     4   4  length    payload bytes, 1 .. LSM_WAL_MAX_RECORD
 *     8   8  synced    the file's size at its last fdatasync before this
 *                      record was appended (0: never synced yet)
 *     16  4  hchecksum sisy_checksum32 of (number u64, offset u64, length
 *                      u32, synced u64) alone: rejects a wrong position
 *                      cheaply
 *     20  .. payload
 *   (version 1 records: checksum, length, hchecksum over number, offset,
 *   length only; a 12-byte header.)
 * Binding the file number and offset into the checksum means a record is
 * valid only where it was written: a stale record from a recycled file, or
 * a record-shaped value inside another record's payload, never passes.
 *
 * READING: records are returned in order. At the first record that does not
 * verify (at offset B), the reader scans every later offset for valid
 * records (the header checksum keeps that linear):
 *   - none: the bad bytes are a TORN TAIL (a write cut short by a crash);
 *     the reader reports the offset where the valid log ends;
 *   - some, and one of them says the file was synced past B: the bytes at
 *     B were durable, so the log is CORRUPT (SISY_E_CORRUPT, with file and
 *     offset); it is never skipped silently;
 *   - some, none vouching for B, and the bytes between B and the first of
 *     them hold a lost sector (a 512-byte-aligned run of zeros up to a
 *     sector's end): a disk that reorders unsynced writes lost a sector
 *     and kept later ones in a crash. That is a TORN TAIL too: the log
 *     ends at B (the later records were never durable; replaying them
 *     would break the prefix promise);
 *   - some, otherwise (damage that no crash of a sector-atomic disk
 *     leaves): CORRUPT. Version 1 files, which carry no synced sizes, call
 *     every bad record followed by a valid one corrupt.
 * A header that is short (the file was created but never synced) is a torn
 * tail at offset 0; a complete header that does not verify is a bad record
 * at offset 0 (as above); a wrong magic, version or number is corruption.
 */
#ifndef SISY_LSM_WAL_H
#define SISY_LSM_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "fs.h"

#define LSM_WAL_VERSION		 2u
#define LSM_WAL_HEADER		 32u
#define LSM_WAL_RECORD_HEADER	 20u /* version 2 */
#define LSM_WAL_RECORD_HEADER_V1 12u
/* The sector a lost unsynced write is recognised by (see READING). */
#define LSM_WAL_SECTOR	   512u
#define LSM_WAL_MAX_RECORD (128u * 1024 * 1024)

typedef enum lsm_wal_kind {
	LSM_WAL_LOG = 0,      /* write-ahead log of batches */
	LSM_WAL_MANIFEST = 1, /* version edits */
} lsm_wal_kind;

/* --- writing ------------------------------------------------------------- */

typedef struct lsm_wal_writer lsm_wal_writer;

/* Creates `path` (which must not exist) and writes the header; the caller
 * syncs the file and its directory when the name must be durable. */
sisy_err lsm_wal_create(sisy_fs *fs, const char *path, lsm_wal_kind kind,
			uint64_t number, lsm_wal_writer **out);
/* Appends one record. On error the file is cut back to where it was, so a
 * failed append (e.g. ENOSPC) leaves no partial record behind; if even that
 * fails, lsm_wal_broken() turns true and the caller must stop writing. */
sisy_err lsm_wal_add(lsm_wal_writer *w, sisy_slice payload);
/* fdatasync. Any failure is final: the caller must not trust the file.
 * Records appended after it carry the synced size (see READING). */
sisy_err lsm_wal_sync(lsm_wal_writer *w);
bool lsm_wal_broken(const lsm_wal_writer *w);
/* Bytes in the file (header included). */
uint64_t lsm_wal_size(const lsm_wal_writer *w);
uint64_t lsm_wal_number(const lsm_wal_writer *w);
/* Closes (without syncing) and frees; NULL is a no-op. */
sisy_err lsm_wal_close(lsm_wal_writer *w);

/* --- reading ------------------------------------------------------------- */

typedef struct lsm_wal_reader lsm_wal_reader;

/* Opens `path` for reading. A header error is reported by the first
 * lsm_wal_next (as a torn tail or corruption), not here, so a caller handles
 * every defect in one place. Errors here are I/O errors only. */
sisy_err lsm_wal_reader_open(sisy_fs *fs, const char *path, lsm_wal_kind kind,
			     uint64_t number, lsm_wal_reader **out);
/* The next record: SISY_OK with *payload (valid until the next call);
 * SISY_E_NOTFOUND at the end (check lsm_wal_reader_torn() then);
 * SISY_E_CORRUPT with "file at offset N" in sisy_errmsg(). */
sisy_err lsm_wal_next(lsm_wal_reader *r, sisy_slice *payload);
/* After SISY_E_NOTFOUND: true when the log ended in a torn tail. */
bool lsm_wal_reader_torn(const lsm_wal_reader *r);
/* Where the valid log ends (after SISY_E_NOTFOUND): the file can be cut
 * there. Equals the file size when nothing was torn. */
uint64_t lsm_wal_reader_valid_end(const lsm_wal_reader *r);
/* Offset of the record last returned (for error messages). */
uint64_t lsm_wal_reader_offset(const lsm_wal_reader *r);
void lsm_wal_reader_close(lsm_wal_reader *r);

#endif
