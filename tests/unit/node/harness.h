/* harness.h — an in-process cluster of sisy_node instances for the node's
 * tests: each node has its own directory under a temporary root (and its
 * own file system: the real one, or a fault layer that can crash), and all
 * are driven by one test loop on this thread: process, deliver frames
 * (an in-memory transport that can cut links), stream snapshots, tick on
 * real time. The nodes' raft log writers and apply threads are real, so
 * tests wait for conditions with bounded polling (tc_wait), never sleeps.
 */
#ifndef SISY_NODE_HARNESS_H
#define SISY_NODE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "fs_fault.h"
#include "node.h"

#define TC_MAX	   6
#define TC_WAIT_MS 20000 /* generous: the machine is shared */

typedef struct tc tc;

typedef struct tnode {
	tc *c;
	int slot;
	uint64_t id;
	bool up;
	bool failed; /* sisy_node_process said SISY_E_FAILED */
	sisy_node *node;
	char dir[512];
	sisy_fs *fs;
	sisy_fs_fault *ff; /* when the node runs on the fault layer */
	uint8_t key[SISY_NODE_KEY];
	char addr[64];
	int user_events;
	char last_user_event[SISY_AUTH_MAX_USER + 1];
} tnode;

typedef struct tframe {
	struct tframe *next;
	int from;
	uint64_t to;
	uint8_t *data;
	size_t len;
} tframe;

struct tc {
	tnode n[TC_MAX];
	int nslots;
	char root[256];
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	tframe *head, *tail;
	bool cut[TC_MAX][TC_MAX]; /* drop frames from slot i to slot j */
	uint64_t last_tick_ms;
	unsigned tick_ms;
	sisy_node_opts opts; /* template for every node */
	bool fault_next;     /* the next new node runs on a fault layer */
	uint64_t refused;    /* frames a node refused (SISY_E_PERM) */
	uint64_t snapshots_streamed;
};

typedef struct twrite {
	bool done;
	sisy_err status;
	sisy_node_result res;
} twrite;

/* A fresh cluster root; opts defaults suited to tests. */
void tc_init(tc *c);
/* Bootstraps node 1 (slot 0) and joins n-1 more through tokens; waits for
 * a leader and every node to be a voter. */
void tc_start(tc *c, int n);
/* Closes every node and removes the root. */
void tc_free(tc *c);

/* One round of the test loop. */
void tc_pump(tc *c);
/* Pumps until pred(c, arg) holds or ms pass; returns whether it held. */
bool tc_wait(tc *c, bool (*pred)(tc *, void *), void *arg, unsigned ms);

/* The slot of the leader of group 1 (-1 when none, or not agreed). */
int tc_leader(tc *c);
int tc_wait_leader(tc *c);
int tc_slot_of(tc *c, uint64_t id);
/* Prints every node's status to stderr (when a wait fails). */
void tc_dump(tc *c);

/* Proposes on `slot` and waits for the answer. Returns the propose error,
 * or SISY_OK with *w filled in. */
sisy_err tc_propose(tc *c, int slot, const sisy_node_cmd *cmd, twrite *w);
/* PUT through the leader (retrying NOTLEADER/NOLEADER/BUSY briefly);
 * returns the result status. */
sisy_err tc_put(tc *c, const char *key, const char *val, uint64_t client,
		uint64_t seq, sisy_node_result *res);
/* A linearizable read barrier on `slot`, waited for. */
sisy_err tc_barrier(tc *c, int slot);
/* Value of key on slot's engine ("" and false when absent). */
bool tc_get(tc *c, int slot, const char *key, char *val, size_t cap,
	    uint64_t *version);

/* Node life cycle. */
void tc_open(tc *c, int slot);
void tc_close(tc *c, int slot);
/* Joins a new node (a fresh slot, optionally on a fault fs): token, claim,
 * learner; waits until it is a voter when `wait_voter`. Returns the slot. */
int tc_join(tc *c, bool wait_voter);

/* A verifier that passes the cost checks (not a real password's). */
void tc_verifier(sisy_auth_verifier *v, uint8_t seed);

#endif
