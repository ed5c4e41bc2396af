// A server's checked-out versions of one webapp, and the atomic switch between
// them (issue 13, item 2):
//
//   <deploy_root>/<webapp>/versions/<commit>   one checked-out version
//   <deploy_root>/<webapp>/current -> versions/<commit>   the live one
//
// A version is checked out into "versions/.<commit>.tmp-<random>" and renamed into
// place only when whole, so a directory named by a commit is always complete; the
// switch makes a new symlink beside "current" and renames it over "current"
// (rename(2) replaces atomically: at every moment "current" names a whole tree).
// Leftover temporaries of a killed sidecar are removed by Open. Old versions beyond
// `keep` (never the live one) are removed after a switch.
//
// Thread-compatible.
#ifndef CLUSTER_BALANCE_SIDECAR_DEPLOY_LIVE_TREE_H_
#define CLUSTER_BALANCE_SIDECAR_DEPLOY_LIVE_TREE_H_

#include <chrono>
#include <optional>
#include <string>

#include "shared/status.h"
#include "sidecar/deploy/git_store.h"

namespace cb::deploy {

class LiveTree {
 public:
  // `directory`: <deploy_root>/<webapp> (created when missing).
  static Result<LiveTree> Open(const std::string& directory);

  // The commit "current" names; nullopt when there is none (or it is broken).
  std::optional<CommitId> Current() const;
  // Checks `commit` out of `store` into versions/<commit> unless it is there.
  Status Prepare(const GitStore& store, const CommitId& commit);
  // Points "current" at versions/<commit> (which Prepare made; NotFound
  // otherwise), atomically, and marks that version used now (its mtime).
  Status Switch(const CommitId& commit);
  // Removes versions other than the live one beyond the `keep` most recently
  // used (by mtime: checked out or switched to). Best effort: what cannot be
  // removed now is tried again next time.
  void Prune(size_t keep);

  const std::string& directory() const { return directory_; }
  std::string current_link() const { return directory_ + "/current"; }
  std::string VersionDirectory(const CommitId& commit) const;

 private:
  explicit LiveTree(std::string directory) : directory_(std::move(directory)) {}
  std::string directory_;
};

// Runs `command` with /bin/sh -c in `directory`, with CLUSTER_WEBAPP, CLUSTER_COMMIT
// in its environment, stdin from /dev/null, in a process group of its own; kills
// that group after `timeout`. OK on exit status 0; otherwise IoError naming the
// status, signal or timeout and the last 2 KB of its output (stdout and stderr).
// Returns when the shell exits: a background child it leaves is not waited for.
// Blocks the calling thread (the deploy worker); leaves no zombie.
Status RunActivation(const std::string& command, const std::string& directory,
                     const std::string& webapp, const CommitId& commit,
                     std::chrono::milliseconds timeout);

}  // namespace cb::deploy

#endif  // CLUSTER_BALANCE_SIDECAR_DEPLOY_LIVE_TREE_H_
