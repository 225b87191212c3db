/* node.c — a node's life cycle (init, open, close), its identity file, the
 * address book of peers, and status (loop thread unless noted).
 *
 * Data directory (docs/node.md):
 *   DIR/NODE     identity, written last by init (a directory without it is
 *                not a node, and open refuses it):
 *                  sisy-node v1
 *                  cluster <32 hex>
 *                  id <decimal>
 *                  key <64 hex>
 *                  groups <id>[,<id>...]
 *   DIR/raftlog/ the node-wide Raft log (sisyd/raftlog), group 0 holding
 *                the durability markers (node_int.h)
 *   DIR/g<id>/   one directory per group (sm_snap.c)
 *
 * Who may talk: a peer is accepted when its id is in the membership of a
 * group this node hosts and its key is the one that membership recorded
 * (in the config entry's context). A node that lost its disk has a new key
 * (and can only be added under a new id), so its old id is refused. A node
 * that knows no membership at all yet (just joined) accepts any node of its
 * cluster: the server checked the certificate.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "node_int.h"

void sisy_node_opts_default(sisy_node_opts *o)
{
	memset(o, 0, sizeof *o);
	o->election_ticks = 10;
	o->heartbeat_ticks = 1;
	o->max_pending_writes = 65536;
	o->max_apply_lag_bytes = (size_t)64 << 20;
	o->max_apply_queue_bytes = (size_t)256 << 20;
	o->compact_entries = 10000;
	o->compact_keep = 1000;
	o->compact_bytes = (uint64_t)64 << 20;
	o->flush_ticks = 100;
	o->client_expire_entries = 1000000;
	o->client_window = 4096;
	o->max_clients = 100000;
	o->token_expire_entries = 1000000;
}

void node_fail(sisy_node *n, sisy_err rc, const char *what)
{
	if (n->failed)
		return;
	n->failed = true;
	snprintf(n->failmsg, sizeof n->failmsg, "%s: %s (%s)", what,
		 sisy_errmsg(), sisy_errname(rc));
	sisy_log(n->o.logger, SISY_LOG_ERROR, "node",
		 "node %" PRIu64 " stopped: %s", n->id, n->failmsg);
}

sisy_err node_path(char *out, size_t cap, const char *dir, const char *name)
{
	if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
		return sisy_errf(SISY_E_TOOBIG, "node: path too long: %s/%s",
				 dir, name);
	return SISY_OK;
}

node_group *node_group_find(sisy_node *n, uint64_t id)
{
	size_t lo = 0, hi = n->ngroups;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->groups[mid]->id == id)
			return n->groups[mid];
		if (n->groups[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

uint64_t sisy_node_id(const sisy_node *n)
{
	return n->id;
}

void sisy_node_cluster_id(const sisy_node *n, uint8_t out[SISY_NODE_CLUSTER_ID])
{
	memcpy(out, n->cluster_id, SISY_NODE_CLUSTER_ID);
}

int sisy_node_log_fd(sisy_node *n)
{
	return sisy_raftlog_event_fd(n->log);
}

int sisy_node_apply_fd(sisy_node *n)
{
	return n->cfd;
}

void sisy_node_token_random(uint8_t token[SISY_NODE_TOKEN])
{
	randombytes_buf(token, SISY_NODE_TOKEN);
}

/* ---- the address book
 * ---------------------------------------------------------- */

node_peer *node_book_find(sisy_node *n, uint64_t id)
{
	for (size_t i = 0; i < n->npeers; i++)
		if (n->peers[i].id == id)
			return &n->peers[i];
	return NULL;
}

void node_book_put(sisy_node *n, uint64_t id, const char *addr,
		   const uint8_t *key)
{
	node_peer *p = node_book_find(n, id);
	if (p == NULL) {
		if (n->npeers == n->cappeers) {
			size_t cap = n->cappeers ? n->cappeers * 2 : 8;
			node_peer *v = realloc(n->peers, cap * sizeof *v);
			if (v == NULL)
				return; /* an address we cannot keep: the
					   peer stays unreachable */
			n->peers = v;
			n->cappeers = cap;
		}
		p = &n->peers[n->npeers++];
		memset(p, 0, sizeof *p);
		p->id = id;
	}
	if (addr && addr[0])
		snprintf(p->address, sizeof p->address, "%s", addr);
	if (key) {
		p->has_key = true;
		memcpy(p->key, key, SISY_NODE_KEY);
	}
}

void node_book_conf(sisy_node *n, const sisy_raft_entry *e)
{
	sisy_raft_conf_change cc;
	char addr[SISY_NODE_MAX_ADDR + 1];
	uint8_t key[SISY_NODE_KEY];
	if (sisy_raft_conf_decode(sisy_slice_make(e->data, e->len), &cc,
				  NULL) != SISY_OK ||
	    cc.type == SISY_RAFT_CONF_REMOVE)
		return;
	if (node_conf_ctx_decode(cc.ctx, addr, sizeof addr, key))
		node_book_put(n, cc.node_id, addr, key);
}

void node_book_members(sisy_node *n, const node_members *m)
{
	for (size_t i = 0; i < m->n; i++) {
		const node_member_rec *r = &m->m[i];
		static const uint8_t zero[SISY_NODE_KEY];
		bool key = memcmp(r->key, zero, SISY_NODE_KEY) != 0;
		node_book_put(n, r->id, r->address, key ? r->key : NULL);
	}
}

bool sisy_node_peer_addr(sisy_node *n, uint64_t id, char *out, size_t cap)
{
	node_peer *p = node_book_find(n, id);
	if (p == NULL || p->address[0] == '\0')
		return false;
	snprintf(out, cap, "%s", p->address);
	return true;
}

bool sisy_node_peer_allowed(sisy_node *n, uint64_t id,
			    const uint8_t key[SISY_NODE_KEY])
{
	bool known = false, member = false;
	if (id == 0 || id == n->id)
		return false;
	for (size_t i = 0; i < n->ngroups; i++) {
		sisy_raft_status st;
		sisy_raft_get_status(n->groups[i]->raft, &st);
		if (st.membership.n_voters + st.membership.n_learners > 0)
			known = true;
		if (sisy_raft_membership_is_voter(&st.membership, id) ||
		    sisy_raft_membership_is_learner(&st.membership, id))
			member = true;
	}
	if (!known)
		return true;
	node_peer *p = node_book_find(n, id);
	return member && p != NULL && p->has_key &&
	       sodium_memcmp(p->key, key, SISY_NODE_KEY) == 0;
}

/* ---- the identity file
 * ------------------------------------------------------------ */

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;
		if (v < 0)
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return true;
}

sisy_err node_write_file(sisy_fs *fs, const char *dir, const char *name,
			 const void *data, size_t len)
{
	char path[NODE_PATH];
	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
		return sisy_errf(SISY_E_TOOBIG, "node: path too long: %s", dir);
	return sisy_fs_write_atomic(fs, dir, path, data, len);
}

typedef struct node_ident {
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint64_t id;
	uint8_t key[SISY_NODE_KEY];
	uint64_t groups[SISY_NODE_MAX_GROUPS];
	size_t ngroups;
} node_ident;

static sisy_err write_ident(sisy_fs *fs, const char *dir, const node_ident *ni)
{
	char c[2 * SISY_NODE_CLUSTER_ID + 1], k[2 * SISY_NODE_KEY + 1];
	char text[512];
	hex(ni->cluster_id, SISY_NODE_CLUSTER_ID, c);
	hex(ni->key, SISY_NODE_KEY, k);
	int len = snprintf(text, sizeof text,
			   "sisy-node v1\ncluster %s\nid %" PRIu64
			   "\nkey %s\ngroups ",
			   c, ni->id, k);
	for (size_t i = 0; i < ni->ngroups && len < (int)sizeof text; i++)
		len += snprintf(text + len, sizeof text - (size_t)len,
				"%s%" PRIu64, i ? "," : "", ni->groups[i]);
	if (len >= (int)sizeof text - 1)
		return sisy_errf(SISY_E_TOOBIG, "node: too many groups");
	text[len++] = '\n';
	return node_write_file(fs, dir, "NODE", text, (size_t)len);
}

static sisy_err read_ident(sisy_fs *fs, const char *dir, node_ident *ni)
{
	char path[NODE_PATH], c[64], k[80], groups[400];
	uint8_t *data = NULL;
	size_t len = 0;
	memset(ni, 0, sizeof *ni);
	snprintf(path, sizeof path, "%s/NODE", dir);
	sisy_err rc = sisy_fs_read_all(fs, path, 4096, &data, &len);
	if (rc == SISY_E_NOTFOUND)
		return sisy_errf(rc,
				 "node: %s is not an initialised node (no "
				 "NODE file): run `sisyd init` for a new "
				 "cluster, or join with a token (a node "
				 "that lost its data comes back only under "
				 "a new id)",
				 dir);
	if (rc != SISY_OK)
		return rc;
	char *text = calloc(1, len + 1);
	if (text == NULL) {
		free(data);
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	}
	memcpy(text, data, len);
	free(data);
	int got = sscanf(text,
			 "sisy-node v1 cluster %63s id %" SCNu64
			 " key %79s groups %399s",
			 c, &ni->id, k, groups);
	free(text);
	if (got != 4 || ni->id == 0 ||
	    !unhex(c, ni->cluster_id, SISY_NODE_CLUSTER_ID) ||
	    !unhex(k, ni->key, SISY_NODE_KEY))
		return sisy_errf(SISY_E_CORRUPT, "node: %s is malformed", path);
	char *save = NULL;
	for (char *t = strtok_r(groups, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		uint64_t g = strtoull(t, NULL, 10);
		if (g == 0 || ni->ngroups == SISY_NODE_MAX_GROUPS ||
		    (ni->ngroups && g <= ni->groups[ni->ngroups - 1]))
			return sisy_errf(SISY_E_CORRUPT,
					 "node: %s: bad group list", path);
		ni->groups[ni->ngroups++] = g;
	}
	return ni->ngroups
		   ? SISY_OK
		   : sisy_errf(SISY_E_CORRUPT, "node: %s: no groups", path);
}

/* Creates dir if needed, durably: its name lives in its parent. */
static sisy_err mkdir_durable(sisy_fs *fs, const char *dir)
{
	char parent[NODE_PATH];
	bool exists;
	sisy_err rc = sisy_fs_exists(fs, dir, &exists);
	if (rc != SISY_OK || exists)
		return rc;
	if ((rc = sisy_fs_mkdir(fs, dir)) != SISY_OK)
		return rc;
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	while (slash != NULL && slash > parent && slash[1] == '\0') {
		*slash = '\0'; /* "a/b/" */
		slash = strrchr(parent, '/');
	}
	if (slash == NULL)
		snprintf(parent, sizeof parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	return sisy_fs_sync_dir(fs, parent);
}

static sisy_err prepare_dir(sisy_fs *fs, const char *dir)
{
	char path[NODE_PATH];
	bool exists;
	snprintf(path, sizeof path, "%s/NODE", dir);
	sisy_err rc = mkdir_durable(fs, dir);
	if (rc == SISY_OK)
		rc = sisy_fs_exists(fs, path, &exists);
	if (rc == SISY_OK && exists)
		return sisy_errf(SISY_E_EXISTS, "node: %s holds a node already",
				 dir);
	snprintf(path, sizeof path, "%s/raftlog", dir);
	if (rc == SISY_OK)
		rc = sisy_fs_exists(fs, path, &exists);
	if (rc == SISY_OK && exists)
		return sisy_errf(SISY_E_EXISTS,
				 "node: %s holds an interrupted init (%s); "
				 "remove the directory and run init again",
				 dir, path);
	return rc;
}

static void ident_of(const sisy_node_init *in, node_ident *ni)
{
	memset(ni, 0, sizeof *ni);
	memcpy(ni->cluster_id, in->cluster_id, SISY_NODE_CLUSTER_ID);
	ni->id = in->node_id;
	memcpy(ni->key, in->node_key, SISY_NODE_KEY);
	ni->groups[0] = SISY_NODE_META_GROUP;
	ni->ngroups = 1;
}

/* The first two entries of group 1: membership, then the cluster record
 * and the first admin. Identical nowhere else: only this node has them. */
static sisy_err write_first_entries(sisy_fs *fs, const char *dir,
				    const sisy_node_init *in)
{
	char path[NODE_PATH];
	sisy_raftlog_opts lo;
	sisy_raftlog *lg = NULL;
	sisy_buf conf = {0}, ctx = {0}, cmd = {0};
	sisy_raft_membership m;
	memset(&m, 0, sizeof m);
	m.n_voters = 1;
	m.voters[0] = in->node_id;
	sisy_err rc = node_conf_ctx_encode(in->address, in->node_key, &ctx);
	sisy_raft_conf_change cc = {.type = SISY_RAFT_CONF_ADD_VOTER,
				    .node_id = in->node_id,
				    .ctx = sisy_buf_slice(&ctx)};
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(&conf, SISY_RAFT_ENTRY_CONFIG);
	if (rc == SISY_OK)
		rc = sisy_raft_conf_encode(&cc, &m, &conf);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(&cmd, SISY_RAFT_ENTRY_NORMAL);
	if (rc == SISY_OK)
		rc = node_cmd_encode_init(in, &cmd);
	sisy_raftlog_opts_default(&lo);
	snprintf(path, sizeof path, "%s/raftlog", dir);
	lo.fs = fs;
	lo.dir = path;
	if (rc == SISY_OK)
		rc = sisy_raftlog_open(&lo, &lg);
	sisy_raftlog_entry e[2] = {
	    {.index = 1, .term = 1, .data = conf.data, .len = conf.len},
	    {.index = 2, .term = 1, .data = cmd.data, .len = cmd.len},
	};
	sisy_raftlog_hardstate hs = {1, 0, 2};
	if (rc == SISY_OK)
		rc = sisy_raftlog_append(lg, SISY_NODE_META_GROUP, e, 2);
	if (rc == SISY_OK)
		rc = sisy_raftlog_set_hardstate(lg, SISY_NODE_META_GROUP, &hs);
	if (rc == SISY_OK)
		rc = sisy_raftlog_flush(lg);
	if (lg) {
		sisy_err c = sisy_raftlog_close(lg);
		if (rc == SISY_OK)
			rc = c;
	}
	sisy_buf_free(&conf);
	sisy_buf_free(&ctx);
	sisy_buf_free(&cmd);
	return rc;
}

sisy_err sisy_node_bootstrap(sisy_fs *fs, const char *dir,
			     const sisy_node_init *in)
{
	node_ident ni;
	if (fs == NULL)
		fs = sisy_fs_posix();
	if (in->node_id == 0 || in->admin_user == NULL)
		return sisy_errf(SISY_E_INVAL,
				 "node: bootstrap needs a node id and an "
				 "admin user");
	sisy_err rc = prepare_dir(fs, dir);
	if (rc == SISY_OK)
		rc = write_first_entries(fs, dir, in);
	ident_of(in, &ni);
	if (rc == SISY_OK)
		rc = write_ident(fs, dir, &ni);
	return rc;
}

sisy_err sisy_node_init_joined(sisy_fs *fs, const char *dir,
			       const sisy_node_init *in)
{
	node_ident ni;
	if (fs == NULL)
		fs = sisy_fs_posix();
	if (in->node_id == 0)
		return sisy_errf(SISY_E_INVAL, "node: a node id is needed");
	sisy_err rc = prepare_dir(fs, dir);
	ident_of(in, &ni);
	if (rc == SISY_OK)
		rc = write_ident(fs, dir, &ni);
	return rc;
}

/* ---- open / close
 * ---------------------------------------------------------------- */

static void free_node(sisy_node *n)
{
	while (n->job_spare) {
		node_job *j = n->job_spare;
		n->job_spare = j->next;
		node_job_free(j);
	}
	node_wq_free(n);
	node_outbox_free(n);
	free(n->peers);
	sisy_buf_free(&n->scratch);
	sisy_buf_free(&n->cmd_buf);
	node_users_free(n->users);
	if (n->cfd >= 0)
		close(n->cfd);
	pthread_mutex_destroy(&n->amu);
	pthread_cond_destroy(&n->acv);
	pthread_mutex_destroy(&n->cmu);
	free(n);
}

sisy_err sisy_node_open(const sisy_node_opts *o, sisy_node **out)
{
	node_ident ni;
	sisy_raftlog_opts lo;
	sisy_raftlog_state st;
	char path[NODE_PATH];
	if (o->dir == NULL || o->send == NULL || o->election_ticks <= 1 ||
	    o->heartbeat_ticks == 0 || o->heartbeat_ticks >= o->election_ticks)
		return sisy_errf(SISY_E_INVAL,
				 "node: dir, send and ticks (heartbeat < "
				 "election) are needed");
	sisy_node *n = calloc(1, sizeof *n);
	if (n == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	n->o = *o;
	n->fs = o->fs ? o->fs : sisy_fs_posix();
	n->cfd = -1;
	if (n->o.read_timeout_ticks == 0)
		n->o.read_timeout_ticks = 4 * o->election_ticks;
	snprintf(n->dir, sizeof n->dir, "%s", o->dir);
	n->o.dir = n->dir;
	pthread_mutex_init(&n->amu, NULL);
	pthread_cond_init(&n->acv, NULL);
	pthread_mutex_init(&n->cmu, NULL);
	sisy_err rc = read_ident(n->fs, o->dir, &ni);
	if (rc != SISY_OK)
		goto fail;
	n->id = ni.id;
	memcpy(n->cluster_id, ni.cluster_id, SISY_NODE_CLUSTER_ID);
	memcpy(n->key, ni.key, SISY_NODE_KEY);
	if ((n->users = node_users_new()) == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
		goto fail;
	}
	sisy_raftlog_opts_default(&lo);
	snprintf(path, sizeof path, "%s/raftlog", o->dir);
	lo.fs = n->fs;
	lo.dir = path;
	lo.logger = o->logger;
	lo.unsafe_no_fsync = o->unsafe_no_fsync;
	if ((rc = sisy_raftlog_open(&lo, &n->log)) != SISY_OK)
		goto fail;
	if (sisy_raftlog_state_of(n->log, NODE_MARK_GROUP, &st) == SISY_OK &&
	    st.has_hardstate)
		n->mark_durable = st.hs.term;
	n->mark_next = n->mark_durable + 1;
	for (size_t i = 0; i < ni.ngroups; i++) {
		if ((rc = node_group_open(n, ni.groups[i],
					  &n->groups[n->ngroups])) != SISY_OK)
			goto fail;
		n->ngroups++;
	}
	if ((rc = node_apply_start(n)) != SISY_OK)
		goto fail;
	sisy_log(o->logger, SISY_LOG_INFO, "node",
		 "node %" PRIu64 " opened %s: %zu group(s)", n->id, o->dir,
		 n->ngroups);
	*out = n;
	return SISY_OK;
fail:;
	char msg[512];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	node_apply_stop(n);
	for (size_t i = 0; i < n->ngroups; i++)
		node_group_close(n->groups[i]);
	if (n->log)
		sisy_raftlog_close(n->log);
	free_node(n);
	return sisy_errf(rc, "%s", msg);
}

static void fail_everything(sisy_node *n)
{
	for (size_t i = 0; i < n->ngroups; i++) {
		node_group *g = n->groups[i];
		node_waiters_fail(g, SISY_E_UNKNOWN_OUTCOME);
		node_reads_fail_all(g, SISY_E_CLOSED);
	}
}

sisy_err sisy_node_close(sisy_node *n)
{
	if (n == NULL)
		return SISY_OK;
	sisy_err rc = SISY_OK;
	n->closing = true;
	fail_everything(n);
	node_apply_stop(n);
	/* What the apply thread finished: keep the log consistent with it
	 * where cheap, free the rest. */
	node_job *j = node_apply_take(n);
	while (j) {
		node_job *next = j->next;
		if (j->kind == JOB_CHECKPOINT && j->err == SISY_OK)
			node_rmdir_all(n->fs, j->path);
		node_job_free(j);
		j = next;
	}
	node_snap_out_free_all(n);
	for (size_t i = 0; i < n->ngroups; i++) {
		node_group *g = n->groups[i];
		if (g->staged && g->installing)
			node_snap_in_free(
			    g->staged); /* may be the engine now */
		else if (g->staged)
			sisy_node_snap_in_abort(n, g->staged);
		g->staged = NULL;
	}
	node_wq_flush(n);
	fail_everything(n); /* callbacks may have asked for more */
	for (size_t i = 0; i < n->ngroups; i++)
		node_group_close(n->groups[i]);
	sisy_err c = sisy_raftlog_close(n->log);
	if (rc == SISY_OK && !n->failed)
		rc = c;
	if (n->failed)
		rc = sisy_errf(SISY_E_FAILED, "node: %s", n->failmsg);
	free_node(n);
	return rc;
}

/* ---- status
 * ------------------------------------------------------------------------- */

size_t sisy_node_groups(sisy_node *n, uint64_t *out, size_t cap)
{
	for (size_t i = 0; i < n->ngroups && i < cap; i++)
		out[i] = n->groups[i]->id;
	return n->ngroups;
}

static void add_member(sisy_node *n, sisy_node_status *st, uint64_t id,
		       bool voter, const sisy_raft_progress *pr, size_t npr,
		       uint64_t last)
{
	if (st->n_members >= SISY_RAFT_MAX_NODES)
		return;
	sisy_node_member *m = &st->members[st->n_members++];
	memset(m, 0, sizeof *m);
	m->id = id;
	m->voter = voter;
	m->leader = id == st->leader;
	sisy_node_peer_addr(n, id, m->address, sizeof m->address);
	if (id == n->id) {
		m->match = st->last_index;
		m->active = true;
	}
	for (size_t i = 0; i < npr; i++)
		if (pr[i].id == id) {
			m->match = pr[i].match;
			m->active = node_heard_from(n, &pr[i]);
		}
	if (st->role == SISY_RAFT_LEADER)
		m->lag = last > m->match ? last - m->match : 0;
}

sisy_err sisy_node_engine_stats(sisy_node *n, uint64_t group,
				sisy_lsm_stats *out)
{
	node_group *g = node_group_find(n, group);
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	/* the apply thread may swap the engine (a snapshot installed) */
	pthread_rwlock_rdlock(&g->sm.lock);
	sisy_lsm_get_stats(g->sm.db, out);
	pthread_rwlock_unlock(&g->sm.lock);
	return SISY_OK;
}

sisy_err sisy_node_status_get(sisy_node *n, uint64_t group,
			      sisy_node_status *st)
{
	node_group *g = node_group_find(n, group);
	sisy_raft_status rs;
	sisy_raft_progress pr[SISY_RAFT_MAX_NODES];
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	memset(st, 0, sizeof *st);
	sisy_raft_get_status(g->raft, &rs);
	size_t npr = sisy_raft_get_progress(g->raft, pr, SISY_RAFT_MAX_NODES);
	if (npr > SISY_RAFT_MAX_NODES)
		npr = SISY_RAFT_MAX_NODES;
	st->group = g->id;
	st->id = n->id;
	st->leader = rs.leader;
	st->term = rs.term;
	st->role = rs.role;
	st->commit = rs.commit;
	st->applied = g->applied;
	node_sm_durable_applied(&g->sm, &st->durable_applied);
	st->first_index = rs.first_index;
	st->last_index = rs.last_index;
	st->snapshot_index = rs.compaction.index;
	st->apply_queue_bytes = g->queued_bytes;
	st->apply_jobs_on_loop = g->jobs_on_loop;
	st->apply_jobs_on_thread = g->jobs_on_thread;
	st->snapshots_sent = g->snapshots_sent;
	st->snapshots_installed = g->snapshots_installed;
	const sisy_raft_membership *m = &rs.membership;
	st->removed = m->n_voters + m->n_learners > 0 &&
		      !sisy_raft_membership_is_voter(m, n->id) &&
		      !sisy_raft_membership_is_learner(m, n->id);
	for (uint32_t i = 0; i < m->n_voters; i++)
		add_member(n, st, m->voters[i], true, pr, npr, rs.last_index);
	for (uint32_t i = 0; i < m->n_learners; i++)
		add_member(n, st, m->learners[i], false, pr, npr,
			   rs.last_index);
	return SISY_OK;
}
