/* cluster.c — what a node tells about itself and the cluster: its role
 * (login, WHOAMI, the shell's prompt), INFO, CLUSTER INFO and CLUSTER
 * NODES (srv_int.h). All answered from this node's own view, on the loop:
 * itself from its Raft status, the other members from the NodeReports
 * they send every SRV_REPORT_MS (peer.c); a member not heard from for
 * SRV_REPORT_STALE ms shows as "unreachable" with its last known figures.
 */
#include "srv_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sisy.pb-c.h"

#define MAX_ROWS                                  \
	(sizeof((sisy_node_status *)0)->members / \
	 sizeof((sisy_node_status *)0)->members[0])

static const char *raft_role(uint8_t role, bool learner)
{
	if (learner)
		return "learner";
	switch (role) {
	case 3:
		return "leader";
	case 1:
	case 2:
		return "candidate";
	default:
		return "follower";
	}
}

static bool self_learner(sisy_server *s, const sisy_node_status *st)
{
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i].id == s->id.node_id)
			return !st->members[i].voter;
	return false;
}

void cluster_refresh_role(sisy_server *s)
{
	sisy_node_status st;
	const char *r = "follower";
	if (s->node && sisy_node_status_get(s->node, SRV_GROUP, &st) == SISY_OK)
		r = st.removed ? "removed"
			       : raft_role(st.role, self_learner(s, &st));
	snprintf(s->role_name, sizeof s->role_name, "%s", r);
}

/* ------------------------------------------------------------- INFO */

typedef struct info_rows {
	Sisy__InfoEntry e[48];
	Sisy__InfoEntry *p[64];
	char v[64][80];
	size_t n;
	const char *section; /* "" : all */
} info_rows;

static void row(info_rows *t, const char *sec, const char *name,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void row(info_rows *t, const char *sec, const char *name,
		const char *fmt, ...)
{
	if (t->n == sizeof t->e / sizeof t->e[0] ||
	    (t->section[0] && strcmp(t->section, sec) != 0))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->v[t->n], sizeof t->v[0], fmt, ap);
	va_end(ap);
	sisy__info_entry__init(&t->e[t->n]);
	t->e[t->n].section = (char *)sec;
	t->e[t->n].name = (char *)name;
	t->e[t->n].value = t->v[t->n];
	t->p[t->n] = &t->e[t->n];
	t->n++;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void pack_info(srv_req *r, info_rows *t, bool cluster)
{
	Sisy__InfoResult ir = SISY__INFO_RESULT__INIT;
	ir.n_entries = t->n;
	ir.entries = t->p;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	if (cluster) {
		resp.result_case = SISY__RESPONSE__RESULT_CLUSTER_INFO;
		resp.cluster_info = &ir;
	} else {
		resp.result_case = SISY__RESPONSE__RESULT_INFO;
		resp.info = &ir;
	}
	handler_pack(r, &resp);
}

static void raft_rows(sisy_server *s, info_rows *t, const char *sec)
{
	sisy_node_status st;
	if (sisy_node_status_get(s->node, SRV_GROUP, &st) != SISY_OK)
		return;
	char leader_addr[SISY_NODE_MAX_ADDR + 1] = "";
	if (st.leader)
		sisy_node_leader(s->node, SRV_GROUP, leader_addr,
				 sizeof leader_addr);
	size_t voters = 0;
	for (size_t i = 0; i < st.n_members; i++)
		voters += st.members[i].voter;
	row(t, sec, "role", "%s", s->role_name);
	row(t, sec, "term", "%" PRIu64, st.term);
	row(t, sec, "leader_id", "%" PRIu64, st.leader);
	row(t, sec, "leader_address", "%s", leader_addr);
	row(t, sec, "members", "%zu", st.n_members);
	row(t, sec, "voters", "%zu", voters);
	row(t, sec, "learners", "%zu", st.n_members - voters);
	row(t, sec, "commit_index", "%" PRIu64, st.commit);
	row(t, sec, "applied_index", "%" PRIu64, st.applied);
	row(t, sec, "durable_applied_index", "%" PRIu64, st.durable_applied);
	row(t, sec, "log_first_index", "%" PRIu64, st.first_index);
	row(t, sec, "log_last_index", "%" PRIu64, st.last_index);
	row(t, sec, "snapshot_index", "%" PRIu64, st.snapshot_index);
	row(t, sec, "snapshots_sent", "%" PRIu64, st.snapshots_sent);
	row(t, sec, "snapshots_installed", "%" PRIu64, st.snapshots_installed);
	row(t, sec, "apply_queue_bytes", "%zu", st.apply_queue_bytes);
	row(t, sec, "apply_jobs_on_loop", "%" PRIu64, st.apply_jobs_on_loop);
	row(t, sec, "apply_jobs_on_thread", "%" PRIu64,
	    st.apply_jobs_on_thread);
}

/* What an operator needs to see a write stall coming: L0 files, stall time,
 * flushes and compactions, memory of the memtables and the block cache. */
static void engine_rows(sisy_server *s, info_rows *t, const char *sec)
{
	sisy_lsm_stats st;
	if (sisy_node_engine_stats(s->node, SRV_GROUP, &st) != SISY_OK)
		return;
	char files[64];
	size_t off = 0;
	for (int l = 0; l < 7 && off < sizeof files; l++)
		off += (size_t)snprintf(files + off, sizeof files - off, "%s%d",
					l ? "," : "", st.files_per_level[l]);
	row(t, sec, "files_per_level", "%s", files);
	row(t, sec, "memtable_bytes", "%" PRIu64, st.memtable_bytes);
	row(t, sec, "block_cache_bytes", "%" PRIu64, st.cache_bytes);
	row(t, sec, "write_batches", "%" PRIu64, st.batches);
	row(t, sec, "flushes", "%" PRIu64, st.flushes);
	row(t, sec, "compactions", "%" PRIu64, st.compactions);
	row(t, sec, "compaction_bytes_read", "%" PRIu64,
	    st.compaction_bytes_read);
	row(t, sec, "compaction_bytes_written", "%" PRIu64,
	    st.compaction_bytes_written);
	row(t, sec, "write_stalls", "%" PRIu64, st.stalls);
	row(t, sec, "write_stall_ms", "%" PRIu64, st.stall_micros / 1000);
	row(t, sec, "cache_hits", "%" PRIu64, st.cache_hits);
	row(t, sec, "cache_misses", "%" PRIu64, st.cache_misses);
}

void cluster_server_info(sisy_server *s, srv_req *r)
{
	info_rows t;
	t.n = 0;
	t.section = r->msg->info->section;
	row(&t, "server", "version", "%s", "0.1.0");
	row(&t, "server", "protocol", "%u",
	    r->conn ? r->conn->sess.version : 0);
	row(&t, "server", "node_id", "%" PRIu64, s->id.node_id);
	row(&t, "server", "role", "%s", s->role_name);
	row(&t, "server", "address", "%s", sisy_config_advertise(&s->cfg));
	row(&t, "server", "uptime_s", "%" PRIu64,
	    (sisy_now_ms() - s->started_ms) / 1000);
	row(&t, "clients", "connections", "%zu", s->nconns - s->ndead);
	row(&t, "clients", "unauthenticated", "%zu", s->nunauth);
	row(&t, "clients", "accepted", "%" PRIu64, s->n_accepted);
	row(&t, "clients", "logins", "%" PRIu64, s->n_logins);
	row(&t, "clients", "login_failures", "%" PRIu64, s->n_login_failures);
	row(&t, "clients", "timeouts", "%" PRIu64, s->n_timeouts);
	row(&t, "clients", "evicted", "%" PRIu64, s->n_evicted);
	row(&t, "clients", "protocol_errors", "%" PRIu64, s->n_proto_errors);
	row(&t, "store", "requests", "%" PRIu64, s->n_requests);
	row(&t, "store", "reads_on_loop", "%" PRIu64, s->n_loop_reads);
	row(&t, "store", "forwarded", "%" PRIu64, s->n_forwarded);
	row(&t, "store", "forwards_served", "%" PRIu64, s->n_forwards_in);
	row(&t, "store", "waiting_for_leader", "%zu", s->nparked);
	row(&t, "store", "peers_refused", "%" PRIu64, s->n_peer_refused);
	raft_rows(s, &t, "raft");
	engine_rows(s, &t, "engine");
	pack_info(r, &t, false);
}

void cluster_info(sisy_server *s, srv_req *r)
{
	info_rows t;
	char id[2 * SISY_CLUSTER_ID + 1], fpr[64];
	t.n = 0;
	t.section = "";
	hex(s->id.cluster_id, SISY_CLUSTER_ID, id);
	sisy_trust_fingerprint(s->id.cluster_pk, fpr);
	row(&t, "cluster", "cluster_id", "%s", id);
	row(&t, "cluster", "cluster_key", "%s", fpr);
	row(&t, "cluster", "node_id", "%" PRIu64, s->id.node_id);
	row(&t, "cluster", "address", "%s", sisy_config_advertise(&s->cfg));
	raft_rows(s, &t, "cluster");
	pack_info(r, &t, true);
}

/* ------------------------------------------------------ CLUSTER NODES */

void cluster_nodes(sisy_server *s, srv_req *r)
{
	sisy_node_status st;
	if (sisy_node_status_get(s->node, SRV_GROUP, &st) != SISY_OK) {
		handler_fail(r, SISY_E_INTERNAL, sisy_errmsg());
		return;
	}
	uint64_t now = sisy_now_ms();
	/* The leader's commit index as best known here: lag is measured
	 * against it. */
	uint64_t commit = st.commit;
	srv_peer *lp = st.leader ? peer_get(s, st.leader, false) : NULL;
	if (lp && lp->has_report && lp->commit > commit)
		commit = lp->commit;
	Sisy__ClusterNode nodes[MAX_ROWS];
	Sisy__ClusterNode *ptrs[MAX_ROWS];
	char addrs[MAX_ROWS][SISY_NODE_MAX_ADDR + 1];
	size_t n = 0;
	for (size_t i = 0; i < st.n_members && n < MAX_ROWS; i++) {
		const sisy_node_member *m = &st.members[i];
		Sisy__ClusterNode *o = &nodes[n];
		sisy__cluster_node__init(o);
		o->id = m->id;
		o->voter = m->voter;
		snprintf(addrs[n], sizeof addrs[n], "%s", m->address);
		o->address = addrs[n];
		if (m->id == s->id.node_id) {
			o->role = s->role_name;
			o->term = st.term;
			o->commit_index = st.commit;
			o->applied_index = st.applied;
		} else {
			srv_peer *p = peer_get(s, m->id, false);
			/* Heard from lately, over a connection still up,
			 * and not claiming a leadership we know is over. */
			bool fresh = p && p->has_report &&
				     now - p->report_ms <= SRV_REPORT_STALE &&
				     p->out && p->out->state == CONN_READY &&
				     !(p->role == 3 && st.leader != m->id);
			if (p && p->has_report) {
				o->term = p->term;
				o->commit_index = p->commit;
				o->applied_index = p->applied;
			}
			o->role = fresh ? (char *)raft_role(p->role, !m->voter)
					: "unreachable";
		}
		o->lag =
		    commit > o->applied_index ? commit - o->applied_index : 0;
		ptrs[n] = o;
		n++;
	}
	Sisy__ClusterNodesResult res = SISY__CLUSTER_NODES_RESULT__INIT;
	res.n_nodes = n;
	res.nodes = ptrs;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_CLUSTER_NODES;
	resp.cluster_nodes = &res;
	handler_pack(r, &resp);
}
