// An application tree to deploy, read from an upload (a tar, tar.gz or zip
// archive) or from a directory, and checked before anything of it is written.
//
// Checks (issue 13, item 5), on the exact bytes that would be committed, in the
// order the entries come; the first bad entry is named in the error
// (InvalidArgument "<entry name>: <why>"):
//  - absolute paths, ".." components, empty or "." components are refused; a zip
//    name with '\' or a drive letter ("C:") is refused (Windows separators count);
//  - names that are not valid UTF-8, or hold NUL or control characters;
//  - device files, FIFOs, sockets, hard links, and setuid/setgid/sticky bits;
//  - symlinks whose target is absolute or, resolved lexically from the link's
//    own directory, leaves the tree;
//  - an entry under a path that an earlier entry made a file or a symlink (no
//    write through a symlink), and the same path twice (duplicates);
//  - more than limits.max_files files or limits.max_bytes bytes in total (counted
//    as the data arrives, so a compression bomb stops at the limit).
// Directories are implied by their files (Git keeps no empty directories).
//
// Thread-safe: pure functions.
#ifndef CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_TREE_H_
#define CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_TREE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace cb::deploy {

enum class EntryKind { kFile, kExecutable, kSymlink };

struct TreeEntry {
  std::string path;  // relative, '/'-separated, no leading or trailing '/'
  EntryKind kind = EntryKind::kFile;
  std::string bytes;  // the file's content, or the symlink's target
};

struct TreeLimits {
  uint64_t max_bytes = 512 * 1024 * 1024;
  uint64_t max_files = 100'000;
};

struct DeployTree {
  std::vector<TreeEntry> entries;  // sorted by path, paths unique
  uint64_t total_bytes = 0;        // sum of the entries' bytes
};

// A tar (plain, gzip, bzip2, xz), or zip/war/jar archive, recognised by content.
Result<DeployTree> ReadArchive(std::string_view bytes, const TreeLimits& limits);

// A directory on disk, walked without following symlinks; the same checks.
Result<DeployTree> ReadDirectory(const std::string& directory, const TreeLimits& limits);

// The tree as a gzip-compressed tar (what clusterctl uploads for a directory).
Result<std::string> WriteTarGz(const DeployTree& tree);

}  // namespace cb::deploy

#endif  // CLUSTER_BALANCE_SIDECAR_DEPLOY_DEPLOY_TREE_H_
