// A LevelDB Env that keeps LevelDB's background work (memtable flushes and
// compactions) out of the way of the writes that wait for the disk.
//
// Why: with durability = "fsync" every acknowledged write waits for the
// fdatasync of LevelDB's log. A flush or a compaction writes megabytes of table
// into the page cache and syncs them at the end; the disk then has that burst
// queued in front of the log's next sync, which waits for all of it (tens of
// milliseconds), and the background thread competes for the CPU with the
// event loop that answers. bench/RESULTS.md "Where the fsync tail came from"
// has the measurements. So:
//  - table files (".ldb", and the ".sst" of old LevelDB versions) are written
//    back a step at a time while LevelDB writes them, each step waited for
//    (sync_file_range), so the disk holds at most one step of table data ahead
//    of a log sync; the background thread pays, waiting for the disk per step.
//    sync_file_range makes nothing durable: a table's Sync still fdatasyncs it.
//  - the functions LevelDB schedules run at a lower CPU priority (nice
//    `background_nice`, set on the thread that runs them), so the event loop
//    wins the CPU and the background work uses what is left. Under sustained
//    full CPU, LevelDB's own back-pressure (it slows writes while level 0 is
//    deep) still makes room for it.
// The log, the manifest and every other file go to the wrapped Env unchanged.
//
// Thread-safety: as leveldb::Env (any thread). A file it makes is used by one
// thread at a time, as LevelDB does.
#ifndef CLUSTER_BALANCE_SIDECAR_STORE_QUIET_BACKGROUND_ENV_H_
#define CLUSTER_BALANCE_SIDECAR_STORE_QUIET_BACKGROUND_ENV_H_

#include <leveldb/env.h>

#include <cstddef>
#include <string>

namespace cb::store {

struct QuietBackgroundOptions {
  // Table bytes written back and waited for at a time (at least 4096). 64 KiB
  // measured best on the development machine's disk; 1 MiB kept most of the tail.
  std::size_t writeback_step_bytes = 64 * 1024;
  // The nice value of the thread running scheduled work (0 = unchanged).
  int background_nice = 10;
};

class QuietBackgroundEnv : public leveldb::EnvWrapper {
 public:
  // `base` must outlive this Env.
  QuietBackgroundEnv(leveldb::Env* base, const QuietBackgroundOptions& options);

  QuietBackgroundEnv(const QuietBackgroundEnv&) = delete;
  QuietBackgroundEnv& operator=(const QuietBackgroundEnv&) = delete;

  // The one every RecordStore uses: LevelDB's default Env with the default
  // options. Never destroyed (as Env::Default), so a store may close at any
  // point of the process's exit.
  static leveldb::Env* Shared();

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override;
  void Schedule(void (*function)(void*), void* arg) override;

 private:
  const QuietBackgroundOptions options_;
};

}  // namespace cb::store

#endif  // CLUSTER_BALANCE_SIDECAR_STORE_QUIET_BACKGROUND_ENV_H_
