/* trust.c — cluster and node keys, certificates, key files, known_servers
 * (layouts in trust.h). Secrets are written 0600 and wiped from the stack
 * after use where they pass through temporaries.
 */
#include "trust.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "coding.h"

#define CERT_TAG	"sisy-cert-v1"
#define KNOWN_MAX_BYTES (4u * 1024 * 1024)
#define KNOWN_MAX_LINES 10000
#define KEYFILE_MAX	8192

static void cert_message(const uint8_t cluster_id[SISY_CLUSTER_ID],
			 uint64_t node_id, const uint8_t node_pk[SISY_SIGN_PK],
			 uint8_t out[12 + SISY_CLUSTER_ID + 8 + SISY_SIGN_PK])
{
	memcpy(out, CERT_TAG, 12);
	memcpy(out + 12, cluster_id, SISY_CLUSTER_ID);
	for (int i = 0; i < 8; i++)
		out[12 + SISY_CLUSTER_ID + i] =
		    (uint8_t)(node_id >> (56 - 8 * i));
	memcpy(out + 12 + SISY_CLUSTER_ID + 8, node_pk, SISY_SIGN_PK);
}

sisy_err sisy_trust_cluster_new(sisy_cluster_key *out)
{
	crypto_sign_keypair(out->pk, out->sk);
	randombytes_buf(out->cluster_id, sizeof out->cluster_id);
	return SISY_OK;
}

sisy_err sisy_trust_node_new(const sisy_cluster_key *ck, uint64_t node_id,
			     sisy_node_identity *out)
{
	uint8_t msg[12 + SISY_CLUSTER_ID + 8 + SISY_SIGN_PK];
	memset(out, 0, sizeof *out);
	crypto_sign_keypair(out->node_pk, out->node_sk);
	memcpy(out->cluster_id, ck->cluster_id, SISY_CLUSTER_ID);
	memcpy(out->cluster_pk, ck->pk, SISY_SIGN_PK);
	out->node_id = node_id;
	cert_message(out->cluster_id, node_id, out->node_pk, msg);
	crypto_sign_detached(out->cert_sig, NULL, msg, sizeof msg, ck->sk);
	return SISY_OK;
}

void sisy_trust_cert_sign(const sisy_cluster_key *ck, uint64_t node_id,
			  const uint8_t node_pk[SISY_SIGN_PK],
			  uint8_t sig[SISY_SIGN_BYTES])
{
	uint8_t msg[12 + SISY_CLUSTER_ID + 8 + SISY_SIGN_PK];
	cert_message(ck->cluster_id, node_id, node_pk, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof msg, ck->sk);
}

bool sisy_trust_cert_valid(const uint8_t cluster_pk[SISY_SIGN_PK],
			   const uint8_t cluster_id[SISY_CLUSTER_ID],
			   uint64_t node_id,
			   const uint8_t node_pk[SISY_SIGN_PK],
			   const uint8_t sig[SISY_SIGN_BYTES])
{
	uint8_t msg[12 + SISY_CLUSTER_ID + 8 + SISY_SIGN_PK];
	cert_message(cluster_id, node_id, node_pk, msg);
	return crypto_sign_verify_detached(sig, msg, sizeof msg, cluster_pk) ==
	       0;
}

/* ---------------------------------------------------------------- text */

void sisy_trust_b64(const uint8_t *bin, size_t len, char *out, size_t outcap)
{
	assert(outcap >=
	       sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL));
	sodium_bin2base64(out, outcap, bin, len,
			  sodium_base64_VARIANT_ORIGINAL);
}

bool sisy_trust_unb64(const char *b64, uint8_t *bin, size_t len)
{
	size_t got = 0;
	const char *end = NULL;
	while (*b64 == ' ' || *b64 == '\t')
		b64++;
	size_t n = strcspn(b64, " \t\r\n");
	if (sodium_base642bin(bin, len, b64, n, NULL, &got, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return got == len && end == b64 + n;
}

void sisy_trust_fingerprint(const uint8_t pk[SISY_SIGN_PK], char out[64])
{
	uint8_t h[32];
	char b64[SISY_KEY_B64_LEN];
	crypto_generichash(h, sizeof h, pk, SISY_SIGN_PK, NULL, 0);
	sisy_trust_b64(h, sizeof h, b64, sizeof b64);
	/* Padding adds nothing a human compares. */
	char *eq = strchr(b64, '=');
	if (eq)
		*eq = '\0';
	snprintf(out, 64, "BLAKE2b:%s", b64);
}

sisy_err sisy_trust_parse_key(const char *text, uint8_t pk[SISY_SIGN_PK])
{
	const char *p = text;
	if (strncmp(p, "sisy-ed25519", 12) == 0 &&
	    (p[12] == ' ' || p[12] == '\t'))
		p += 13;
	if (sisy_trust_unb64(p, pk, SISY_SIGN_PK))
		return SISY_OK;
	/* Not a key: maybe a file holding one (cluster.pub). */
	char *data = NULL;
	size_t len;
	sisy_err rc = sisy_trust_read_file(text, KEYFILE_MAX, &data, &len);
	if (rc != SISY_OK)
		return sisy_errf(SISY_E_INVAL,
				 "trust.c: server key '%.60s' is neither a "
				 "base64 key nor a readable key file",
				 text);
	rc = SISY_E_INVAL;
	for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#')
			continue;
		char *k = strstr(line, "sisy-ed25519");
		const char *b = k ? k + 12 : line;
		if (sisy_trust_unb64(b, pk, SISY_SIGN_PK)) {
			rc = SISY_OK;
			break;
		}
	}
	free(data);
	if (rc != SISY_OK)
		return sisy_errf(rc, "trust.c: no key in %s", text);
	return rc;
}

/* ---------------------------------------------------------------- files */

sisy_err sisy_trust_write_file(const char *path, const void *data, size_t len,
			       unsigned mode)
{
	char tmp[4096], dir[4096];
	int fd = -1;
	sisy_err rc = SISY_OK;
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof tmp)
		return sisy_errf(SISY_E_TOOBIG, "trust.c: path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return sisy_errf(sisy_err_from_errno(errno),
				 "trust.c: cannot create %s: %s", tmp,
				 strerror(errno));
	const uint8_t *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = sisy_errf(sisy_err_from_errno(errno),
				       "trust.c: writing %s: %s", tmp,
				       strerror(errno));
			goto fail;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
		rc = sisy_errf(sisy_err_from_errno(errno),
			       "trust.c: syncing %s: %s", tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = sisy_errf(sisy_err_from_errno(errno),
			       "trust.c: renaming to %s: %s", path,
			       strerror(errno));
		goto fail;
	}
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return SISY_OK;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

sisy_err sisy_trust_read_file(const char *path, size_t max, char **out,
			      size_t *len)
{
	FILE *f = fopen(path, "rbe");
	if (f == NULL)
		return sisy_errf(errno == ENOENT ? SISY_E_NOTFOUND
						 : sisy_err_from_errno(errno),
				 "trust.c: cannot open %s: %s", path,
				 strerror(errno));
	char *buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		return sisy_errf(SISY_E_NOMEM, "trust.c: out of memory");
	}
	size_t n = fread(buf, 1, max + 1, f);
	int err = ferror(f);
	fclose(f);
	if (err || n > max) {
		free(buf);
		return sisy_errf(err ? SISY_E_IO : SISY_E_TOOBIG,
				 "trust.c: cannot read %s (error, or more "
				 "than %zu bytes)",
				 path, max);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return SISY_OK;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

/* Finds "name value" in a key file; returns the value (in place) or NULL. */
static char *field(char *data, const char *name)
{
	size_t n = strlen(name);
	for (char *line = data; line && *line;) {
		char *next = strchr(line, '\n');
		if (strncmp(line, name, n) == 0 && line[n] == ' ') {
			char *v = line + n + 1;
			size_t vl = next ? (size_t)(next - v) : strlen(v);
			/* Copy out so callers can keep scanning `data`. */
			char *copy = malloc(vl + 1);
			if (copy == NULL)
				return NULL;
			memcpy(copy, v, vl);
			copy[vl] = '\0';
			return copy;
		}
		line = next ? next + 1 : NULL;
	}
	return NULL;
}

static bool field_bin(char *data, const char *name, uint8_t *bin, size_t len)
{
	char *v = field(data, name);
	bool ok = v && sisy_trust_unb64(v, bin, len);
	free(v);
	return ok;
}

sisy_err sisy_trust_save_cluster(const char *dir, const sisy_cluster_key *k)
{
	char path[4096], text[1024], b_sk[128], b_pk[SISY_KEY_B64_LEN],
	    b_id[64];
	sisy_trust_b64(k->sk, SISY_SIGN_SK, b_sk, sizeof b_sk);
	sisy_trust_b64(k->pk, SISY_SIGN_PK, b_pk, sizeof b_pk);
	sisy_trust_b64(k->cluster_id, SISY_CLUSTER_ID, b_id, sizeof b_id);
	int n = snprintf(text, sizeof text,
			 "# SisyphusDB cluster signing key: SECRET, keep 0600\n"
			 "version 1\ncluster_id %s\nsk %s\npk %s\n",
			 b_id, b_sk, b_pk);
	join(path, sizeof path, dir, "cluster.key");
	sisy_err rc = sisy_trust_write_file(path, text, (size_t)n, 0600);
	sodium_memzero(text, sizeof text);
	sodium_memzero(b_sk, sizeof b_sk);
	if (rc != SISY_OK)
		return rc;
	n = snprintf(text, sizeof text, "sisy-ed25519 %s\n", b_pk);
	join(path, sizeof path, dir, "cluster.pub");
	return sisy_trust_write_file(path, text, (size_t)n, 0644);
}

sisy_err sisy_trust_load_cluster(const char *dir, sisy_cluster_key *k)
{
	char path[4096];
	char *data = NULL;
	join(path, sizeof path, dir, "cluster.key");
	sisy_err rc = sisy_trust_read_file(path, KEYFILE_MAX, &data, NULL);
	if (rc != SISY_OK)
		return rc;
	bool ok =
	    field_bin(data, "cluster_id", k->cluster_id, SISY_CLUSTER_ID) &&
	    field_bin(data, "sk", k->sk, SISY_SIGN_SK) &&
	    field_bin(data, "pk", k->pk, SISY_SIGN_PK);
	sodium_memzero(data, strlen(data));
	free(data);
	if (!ok)
		return sisy_errf(SISY_E_CORRUPT, "trust.c: %s is malformed",
				 path);
	return SISY_OK;
}

sisy_err sisy_trust_save_node(const char *dir, const sisy_node_identity *id)
{
	char path[4096], text[2048], b_sk[128], b_pk[SISY_KEY_B64_LEN],
	    b_id[64], b_sig[128];
	sisy_trust_b64(id->node_sk, SISY_SIGN_SK, b_sk, sizeof b_sk);
	sisy_trust_b64(id->cluster_pk, SISY_SIGN_PK, b_pk, sizeof b_pk);
	sisy_trust_b64(id->cluster_id, SISY_CLUSTER_ID, b_id, sizeof b_id);
	sisy_trust_b64(id->cert_sig, SISY_SIGN_BYTES, b_sig, sizeof b_sig);
	int n =
	    snprintf(text, sizeof text,
		     "# SisyphusDB node identity: SECRET, keep 0600\n"
		     "version 1\ncluster_id %s\nnode_id %llu\nnode_sk "
		     "%s\ncluster_pk %s\ncert_sig %s\n",
		     b_id, (unsigned long long)id->node_id, b_sk, b_pk, b_sig);
	join(path, sizeof path, dir, "node.identity");
	sisy_err rc = sisy_trust_write_file(path, text, (size_t)n, 0600);
	sodium_memzero(text, sizeof text);
	sodium_memzero(b_sk, sizeof b_sk);
	return rc;
}

sisy_err sisy_trust_load_node(const char *dir, sisy_node_identity *id)
{
	char path[4096];
	char *data = NULL;
	join(path, sizeof path, dir, "node.identity");
	sisy_err rc = sisy_trust_read_file(path, KEYFILE_MAX, &data, NULL);
	if (rc != SISY_OK)
		return rc;
	memset(id, 0, sizeof *id);
	char *nid = field(data, "node_id");
	char *endp = NULL;
	id->node_id = nid ? strtoull(nid, &endp, 10) : 0;
	bool ok =
	    nid && endp && *endp == '\0' && id->node_id > 0 &&
	    field_bin(data, "cluster_id", id->cluster_id, SISY_CLUSTER_ID) &&
	    field_bin(data, "node_sk", id->node_sk, SISY_SIGN_SK) &&
	    field_bin(data, "cluster_pk", id->cluster_pk, SISY_SIGN_PK) &&
	    field_bin(data, "cert_sig", id->cert_sig, SISY_SIGN_BYTES);
	free(nid);
	sodium_memzero(data, strlen(data));
	free(data);
	if (!ok)
		return sisy_errf(SISY_E_CORRUPT, "trust.c: %s is malformed",
				 path);
	crypto_sign_ed25519_sk_to_pk(id->node_pk, id->node_sk);
	if (!sisy_trust_cert_valid(id->cluster_pk, id->cluster_id, id->node_id,
				   id->node_pk, id->cert_sig))
		return sisy_errf(SISY_E_CORRUPT,
				 "trust.c: %s: the certificate does not match "
				 "the node key",
				 path);
	return SISY_OK;
}

/* -------------------------------------------------------- known_servers */

static bool host_listed(const char *hosts, const char *host)
{
	size_t hl = strlen(host);
	for (const char *p = hosts; *p;) {
		size_t n = strcspn(p, ",");
		if (n == hl && strncmp(p, host, n) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

sisy_err sisy_trust_known_check(const char *path, const char *host,
				const uint8_t pk[SISY_SIGN_PK], sisy_known *out)
{
	char *data = NULL;
	*out = SISY_KNOWN_UNKNOWN;
	sisy_err rc = sisy_trust_read_file(path, KNOWN_MAX_BYTES, &data, NULL);
	if (rc == SISY_E_NOTFOUND)
		return SISY_OK;
	if (rc != SISY_OK)
		return rc;
	bool changed = false;
	int lines = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save);
	     line && lines < KNOWN_MAX_LINES;
	     line = strtok_r(NULL, "\n", &save), lines++) {
		char hosts[1024], type[32], b64[128];
		if (line[0] == '#' ||
		    sscanf(line, "%1023s %31s %127s", hosts, type, b64) != 3 ||
		    strcmp(type, "sisy-ed25519") != 0)
			continue;
		uint8_t k[SISY_SIGN_PK];
		if (!sisy_trust_unb64(b64, k, sizeof k))
			continue;
		if (sodium_memcmp(k, pk, SISY_SIGN_PK) == 0) {
			*out = SISY_KNOWN_TRUSTED;
			break;
		}
		if (host_listed(hosts, host))
			changed = true;
	}
	free(data);
	if (*out != SISY_KNOWN_TRUSTED && changed)
		*out = SISY_KNOWN_CHANGED;
	return SISY_OK;
}

static sisy_err mkdir_parent(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return SISY_OK;
	*slash = '\0';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sisy_errf(sisy_err_from_errno(errno),
				 "trust.c: cannot create %s: %s", dir,
				 strerror(errno));
	return SISY_OK;
}

sisy_err sisy_trust_known_add(const char *path, const char *host,
			      const uint8_t pk[SISY_SIGN_PK])
{
	char b64[SISY_KEY_B64_LEN], line[1200];
	sisy_err rc = mkdir_parent(path);
	if (rc != SISY_OK)
		return rc;
	sisy_trust_b64(pk, SISY_SIGN_PK, b64, sizeof b64);
	int n = snprintf(line, sizeof line, "%s sisy-ed25519 %s\n", host, b64);
	if (n < 0 || (size_t)n >= sizeof line || strpbrk(host, " \t\n"))
		return sisy_errf(SISY_E_INVAL, "trust.c: bad host name");
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return sisy_errf(sisy_err_from_errno(errno),
				 "trust.c: cannot open %s: %s", path,
				 strerror(errno));
	ssize_t w = write(fd, line, (size_t)n);
	int err = errno;
	close(fd);
	if (w != n)
		return sisy_errf(SISY_E_IO, "trust.c: writing %s: %s", path,
				 strerror(err));
	return SISY_OK;
}
