/* sisy_bench.h — the modes of sisy-bench. Each mode lives in its own file
 * (bench/sisy_bench_<mode>.c, picked up by bench/CMakeLists.txt's glob) and
 * is reached through main() in sisy_bench.c, which dispatches on the first
 * argument: `sisy-bench engine ...`, `sisy-bench kv ...`.
 * A mode gets argv with the mode name as argv[0] and returns the exit code.
 */
#ifndef SISY_BENCH_H
#define SISY_BENCH_H

/* db_bench-style benchmark of the storage engine (sisy_bench_engine.c). */
int sisy_bench_engine(int argc, char **argv);

/* sisy-bench kv's load generator against etcd (sisy_bench_etcd.c). */
int sisy_bench_etcd(int argc, char **argv);

#ifdef SISY_BENCH_KV
/* Network load generator against a cluster (sisy_bench_kv.c). */
int sisy_bench_kv(int argc, char **argv);
#endif

#endif
