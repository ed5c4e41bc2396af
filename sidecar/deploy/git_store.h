// A server's Git repository of deployed versions (libgit2), in its data dir.
//
// A bare repository. A deployment is a commit whose tree is the application
// tree and whose parent is the previous current commit of that deployment (so
// the history of a webapp is its first-parent chain). Refs, with Resin's names:
//   refs/tags/<stage>/webapp/<host>/<webapp>            the current version
//   refs/tags/<stage>/webapp/<host>/<webapp>-<version>  a named version
// Objects travel between servers as packs: MakePack(want, haves) holds the
// objects reachable from `want` but not from any of `haves`, so a one-file
// change sends that file's blob, the trees on its path and the commit.
//
// Thread-compatible: one GitStore per thread, or calls serialised by the caller
// (the daemon runs them on its one deploy worker thread).
#ifndef CLUSTER_BALANCE_SIDECAR_DEPLOY_GIT_STORE_H_
#define CLUSTER_BALANCE_SIDECAR_DEPLOY_GIT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"
#include "sidecar/deploy/deploy_tree.h"

struct git_repository;

namespace cb::deploy {

// A commit id as 40 lower-case hex digits.
using CommitId = std::string;

struct CommitInfo {
  CommitId commit;
  std::string tree;    // the tree id, hex
  std::string parent;  // first parent, "" for the first version
  std::string author;  // "name <email>"
  int64_t time_unix_s = 0;
  std::string message;
};

struct CommitResult {
  CommitId commit;
  std::string tree;
  bool unchanged = false;  // the tree equals the parent's: no new commit was made
};

class GitStore {
 public:
  // Opens (creating it, and its parents, when missing) the bare repository at `path`.
  static Result<std::unique_ptr<GitStore>> Open(const std::string& path);

  GitStore(const GitStore&) = delete;
  GitStore& operator=(const GitStore&) = delete;
  ~GitStore();

  // Writes the tree's blobs and trees and a commit on top of `parent` ("" for
  // none). When the tree equals the parent's tree, writes nothing more and
  // answers the parent with unchanged = true.
  Result<CommitResult> Commit(const DeployTree& tree, const CommitId& parent,
                              std::string_view author_name, std::string_view author_email,
                              std::string_view message);
  // A commit on top of `parent` with the tree of `source` (a rollback).
  Result<CommitResult> CommitTreeOf(const CommitId& source, const CommitId& parent,
                                    std::string_view author_name, std::string_view author_email,
                                    std::string_view message);

  bool HasCommit(const CommitId& commit) const;  // with every object it reaches
  Result<CommitInfo> Describe(const CommitId& commit) const;
  // The first-parent chain from `commit`, newest first, at most `limit` long.
  Result<std::vector<CommitInfo>> History(const CommitId& commit, size_t limit) const;

  // Refs: full names ("refs/tags/production/webapp/default/shop").
  Result<std::optional<CommitId>> ReadRef(const std::string& name) const;
  // Creates or moves; NotFound unless the commit is here.
  Status SetRef(const std::string& name, const CommitId& commit);
  // Every ref under `prefix` ("refs/tags/") with its commit, sorted by name
  // (refs that name no commit are left out).
  Result<std::vector<std::pair<std::string, CommitId>>> ListRefs(const std::string& prefix) const;

  // A pack (Git's pack format) of the objects reachable from `want` and not from
  // any of `haves` (unknown haves are ignored; malformed ids are InvalidArgument).
  // NotFound when `want` is not here.
  Result<std::string> MakePack(const CommitId& want, const std::vector<CommitId>& haves) const;
  // Indexes a pack into the repository; InvalidArgument for a corrupt one or one
  // whose objects name objects neither in it nor here (nothing of it is kept).
  Status AddPack(std::string_view pack);

  // Writes the commit's tree into `directory` (which must not exist; created),
  // files with their modes, symlinks as symlinks. On error the partial directory
  // is removed.
  Status CheckoutTo(const CommitId& commit, const std::string& directory) const;

  const std::string& path() const { return path_; }

 private:
  GitStore(std::string path, git_repository* repository);
  std::string path_;
  git_repository* repository_;
};

// Resin's tag name, without "refs/tags/": "<stage>/webapp/<host>/<webapp>" and,
// with a version, "...<webapp>-<version>".
std::string DeploymentName(std::string_view stage, std::string_view host, std::string_view webapp);
std::string VersionTagName(std::string_view deployment_name, std::string_view version);
// Whether `name` may be a webapp or version in a tag: 1..63 of [A-Za-z0-9._-],
// not starting with '.' or '-', no "..", not ending in '.' or ".lock" (which
// Git refuses in a ref name).
bool IsValidTagPart(std::string_view name);

}  // namespace cb::deploy

#endif  // CLUSTER_BALANCE_SIDECAR_DEPLOY_GIT_STORE_H_
