/* token.c — the join token CLUSTER ADD NODE answers and `sisyd init
 * --join` takes (srv_int.h, docs/operations.md).
 *
 * Text: "sisy-join-1." then base64url (no padding) of
 *   | u8 version 1 | secret [32] | cluster key fingerprint [32] |
 *   | node id u64 LE | u8 alen | the new node's address [alen] |
 *   | u8 n (1..16) | n x ( u8 len | a member's address [len] ) |
 * The fingerprint is BLAKE2b-256 of the cluster's public key: the joiner
 * refuses a node that does not present that key, so whoever holds a
 * token talks to the right cluster. The secret is what the cluster checks
 * (it stores only its hash, once, through the log). The token is a
 * credential: whoever holds it can join a node; it works once and expires
 * after token_expire_entries log entries.
 */
#include "srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"

#define PREFIX	   "sisy-join-1."
#define TOKEN_BIN  (1 + 32 + 32 + 8 + 1 + 255 + 1 + 16 * 256)
#define TOKEN_TEXT (sizeof PREFIX + TOKEN_BIN * 4 / 3 + 8)

void token_cluster_fpr(const uint8_t cluster_pk[SISY_SIGN_PK], uint8_t out[32])
{
	crypto_generichash(out, 32, cluster_pk, SISY_SIGN_PK, NULL, 0);
}

static bool put_str(uint8_t *b, size_t *n, const char *s)
{
	size_t l = strlen(s);
	if (l == 0 || l > 255)
		return false;
	b[(*n)++] = (uint8_t)l;
	memcpy(b + *n, s, l);
	*n += l;
	return true;
}

sisy_err token_encode(const srv_token *t, sisy_buf *out)
{
	uint8_t bin[TOKEN_BIN];
	size_t n = 0;
	if (t->naddrs == 0 || t->naddrs > TOKEN_MAX_ADDRS)
		return sisy_errf(SISY_E_INVAL, "token.c: 1 to %d addresses",
				 TOKEN_MAX_ADDRS);
	bin[n++] = 1;
	memcpy(bin + n, t->secret, 32);
	n += 32;
	memcpy(bin + n, t->cluster_fpr, 32);
	n += 32;
	sisy_put_u64(bin + n, t->node_id);
	n += 8;
	bool ok = put_str(bin, &n, t->address);
	bin[n++] = (uint8_t)t->naddrs;
	for (size_t i = 0; ok && i < t->naddrs; i++)
		ok = put_str(bin, &n, t->addrs[i]);
	if (!ok) {
		sodium_memzero(bin, sizeof bin);
		return sisy_errf(SISY_E_INVAL,
				 "token.c: an address is empty or longer "
				 "than 255 bytes");
	}
	size_t cap = sodium_base64_encoded_len(
	    n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sisy_err rc = sisy_buf_reserve(out, sizeof PREFIX + cap);
	if (rc == SISY_OK) {
		sisy_buf_clear(out);
		memcpy(out->data, PREFIX, sizeof PREFIX - 1);
		sodium_bin2base64((char *)out->data + sizeof PREFIX - 1, cap,
				  bin, n,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		out->len = strlen((char *)out->data);
	}
	sodium_memzero(bin, sizeof bin);
	return rc;
}

static bool get_str(const uint8_t *b, size_t len, size_t *off, char *out,
		    size_t cap)
{
	if (*off >= len)
		return false;
	size_t l = b[(*off)++];
	if (l == 0 || l >= cap || len - *off < l)
		return false;
	memcpy(out, b + *off, l);
	out[l] = '\0';
	for (size_t i = 0; i < l; i++)
		if (out[i] <= ' ' || out[i] > '~' || out[i] == ',')
			return false;
	*off += l;
	return true;
}

sisy_err token_decode(const char *text, srv_token *t)
{
	uint8_t bin[TOKEN_BIN];
	size_t len = 0, off = 0;
	memset(t, 0, sizeof t[0]);
	while (*text == ' ' || *text == '\t')
		text++;
	size_t tl = strcspn(text, " \t\r\n");
	bool ok =
	    tl > sizeof PREFIX - 1 && tl < TOKEN_TEXT &&
	    strncmp(text, PREFIX, sizeof PREFIX - 1) == 0 &&
	    sodium_base642bin(bin, sizeof bin, text + sizeof PREFIX - 1,
			      tl - (sizeof PREFIX - 1), NULL, &len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
	    len >= 1 + 32 + 32 + 8 + 2 + 2 && bin[0] == 1;
	if (ok) {
		off = 1;
		memcpy(t->secret, bin + off, 32);
		off += 32;
		memcpy(t->cluster_fpr, bin + off, 32);
		off += 32;
		t->node_id = sisy_get_u64(bin + off);
		off += 8;
		ok = get_str(bin, len, &off, t->address, sizeof t->address) &&
		     off < len;
	}
	if (ok) {
		t->naddrs = bin[off++];
		ok = t->naddrs >= 1 && t->naddrs <= TOKEN_MAX_ADDRS;
		for (size_t i = 0; ok && i < t->naddrs; i++)
			ok = get_str(bin, len, &off, t->addrs[i],
				     sizeof t->addrs[i]);
		ok = ok && off == len;
	}
	sodium_memzero(bin, sizeof bin);
	if (!ok) {
		sodium_memzero(t, sizeof t[0]);
		return sisy_errf(SISY_E_INVAL,
				 "not a join token (it starts with %s; copy "
				 "it whole from CLUSTER ADD NODE)",
				 PREFIX);
	}
	return SISY_OK;
}
