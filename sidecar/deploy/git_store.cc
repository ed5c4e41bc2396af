#include "sidecar/deploy/git_store.h"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

namespace cb::deploy {

namespace {

template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Freer<T, Free>>;

using CommitPtr = Owned<git_commit, git_commit_free>;
using TreePtr = Owned<git_tree, git_tree_free>;
using BlobPtr = Owned<git_blob, git_blob_free>;
using SignaturePtr = Owned<git_signature, git_signature_free>;
using TreeBuilderPtr = Owned<git_treebuilder, git_treebuilder_free>;
using RevwalkPtr = Owned<git_revwalk, git_revwalk_free>;
using PackBuilderPtr = Owned<git_packbuilder, git_packbuilder_free>;
using IndexerPtr = Owned<git_indexer, git_indexer_free>;
using OdbPtr = Owned<git_odb, git_odb_free>;
using ReferencePtr = Owned<git_reference, git_reference_free>;
using ObjectPtr = Owned<git_object, git_object_free>;
using RefIteratorPtr = Owned<git_reference_iterator, git_reference_iterator_free>;

void InitLibgit2() {
  static std::once_flag once;
  // Never shut down: other GitStores may live until exit.
  std::call_once(once, [] {
    git_libgit2_init();
    // The deploy repository is the sidecar's own: no user's or machine's Git
    // configuration may change it, and an unreadable HOME (the sidecar started
    // by a tool that kept root's) must not stop the sidecar. So libgit2 looks
    // for no global, XDG, system or program-data configuration file.
    for (const int level : {GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_SYSTEM,
                            GIT_CONFIG_LEVEL_PROGRAMDATA}) {
      git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
    }
  });
}

std::string LastGitError() {
  const git_error* error = git_error_last();
  return error != nullptr && error->message != nullptr ? error->message : "unknown libgit2 error";
}

// OS failures (disk full, permissions) are I/O errors; anything libgit2 itself
// refuses is a bad input.
Status GitError(const std::string& what) {
  const git_error* error = git_error_last();
  const std::string message = what + ": " + LastGitError();
  if (error != nullptr && error->klass == GIT_ERROR_OS) return Status::IoError(message);
  return Status::InvalidArgument(message);
}

Status IoGitError(const std::string& what) { return Status::IoError(what + ": " + LastGitError()); }

Status ParseId(const std::string& hex, git_oid* out) {
  const bool well_formed =
      hex.size() == GIT_OID_HEXSZ && std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      });
  if (!well_formed || git_oid_fromstrn(out, hex.data(), hex.size()) != 0) {
    return Status::InvalidArgument("not a commit id (40 lower-case hex digits): \"" + hex + "\"");
  }
  return Status::Ok();
}

std::string Hex(const git_oid* oid) {
  char buffer[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buffer, sizeof buffer, oid);
  return buffer;
}

Result<CommitPtr> LookupCommit(git_repository* repository, const CommitId& id) {
  git_oid oid;
  if (Status s = ParseId(id, &oid); !s.ok()) return s;
  git_commit* commit = nullptr;
  if (git_commit_lookup(&commit, repository, &oid) != 0) {
    return Status::NotFound("commit " + id + ": " + LastGitError());
  }
  return CommitPtr(commit);
}

// The directory structure of a DeployTree, before it becomes Git trees.
struct Node {
  bool is_leaf = false;
  git_oid oid{};
  git_filemode_t mode = GIT_FILEMODE_BLOB;
  std::map<std::string, Node> children;
};

Status InsertPath(Node* root, const TreeEntry& entry, const git_oid& oid, git_filemode_t mode) {
  Node* node = root;
  std::string_view rest = entry.path;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") {
      return Status::InvalidArgument(entry.path + ": empty, \".\" or \"..\" path component");
    }
    Node& child = node->children[std::string(part)];
    if (slash == std::string_view::npos) {
      if (child.is_leaf || !child.children.empty()) {
        return Status::InvalidArgument(entry.path + ": the same path twice");
      }
      child.is_leaf = true;
      child.oid = oid;
      child.mode = mode;
      return Status::Ok();
    }
    if (child.is_leaf) {
      return Status::InvalidArgument(entry.path + ": under a path that is a file or symlink");
    }
    node = &child;
    rest = rest.substr(slash + 1);
  }
}

Status WriteTree(git_repository* repository, const Node& node, const std::string& path,
                 git_oid* out) {
  git_treebuilder* raw = nullptr;
  if (git_treebuilder_new(&raw, repository, nullptr) != 0) return IoGitError("tree builder");
  TreeBuilderPtr builder(raw);
  for (const auto& [name, child] : node.children) {
    const std::string child_path = path.empty() ? name : path + "/" + name;
    git_oid oid = child.oid;
    git_filemode_t mode = child.mode;
    if (!child.is_leaf) {
      if (Status s = WriteTree(repository, child, child_path, &oid); !s.ok()) return s;
      mode = GIT_FILEMODE_TREE;
    }
    // libgit2 refuses names Git cannot hold (".git" among them).
    if (git_treebuilder_insert(nullptr, builder.get(), name.c_str(), &oid, mode) != 0) {
      return GitError(child_path);
    }
  }
  if (git_treebuilder_write(out, builder.get()) != 0) {
    return IoGitError("writing tree \"" + path + "\"");
  }
  return Status::Ok();
}

std::string FormatSignature(const git_signature* signature) {
  return std::string(signature->name) + " <" + signature->email + ">";
}

CommitInfo InfoOf(const git_commit* commit) {
  CommitInfo info;
  info.commit = Hex(git_commit_id(commit));
  info.tree = Hex(git_commit_tree_id(commit));
  if (git_commit_parentcount(commit) > 0) info.parent = Hex(git_commit_parent_id(commit, 0));
  info.author = FormatSignature(git_commit_author(commit));
  info.time_unix_s = git_commit_author(commit)->when.time;
  const char* message = git_commit_message(commit);
  info.message = message != nullptr ? message : "";
  return info;
}

// The commit a ref names, through symbolic refs and annotated tags.
Result<std::optional<CommitId>> PeelToCommit(git_reference* reference) {
  git_object* raw = nullptr;
  if (git_reference_peel(&raw, reference, GIT_OBJECT_COMMIT) != 0) {
    if (git_error_last() != nullptr && git_error_last()->klass == GIT_ERROR_OS) {
      return IoGitError(git_reference_name(reference));
    }
    return std::optional<CommitId>();
  }
  ObjectPtr object(raw);
  return std::optional<CommitId>(Hex(git_object_id(object.get())));
}

// Glob metacharacters in a prefix match themselves.
std::string GlobEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

Status ValidEntryName(const char* name, const std::string& path) {
  const std::string_view view(name);
  if (view.empty() || view == "." || view == ".." || view.find('/') != std::string_view::npos) {
    return Status::InvalidArgument("tree entry \"" + path + "\": a name a checkout cannot hold");
  }
  return Status::Ok();
}

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(path + ": write: " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status CheckoutTree(git_repository* repository, const git_tree* tree, const std::string& directory,
                    const std::string& relative) {
  const size_t count = git_tree_entrycount(tree);
  for (size_t i = 0; i < count; ++i) {
    const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
    const char* name = git_tree_entry_name(entry);
    const std::string entry_path = relative.empty() ? name : relative + "/" + name;
    if (Status s = ValidEntryName(name, entry_path); !s.ok()) return s;
    const std::string target = directory + "/" + entry_path;
    const git_filemode_t mode = git_tree_entry_filemode(entry);
    if (mode == GIT_FILEMODE_TREE) {
      if (::mkdir(target.c_str(), 0755) != 0) {
        return Status::IoError(target + ": mkdir: " + std::strerror(errno));
      }
      git_object* raw = nullptr;
      if (git_tree_entry_to_object(&raw, repository, entry) != 0) return GitError(entry_path);
      ObjectPtr subtree(raw);
      if (Status s = CheckoutTree(repository, reinterpret_cast<const git_tree*>(subtree.get()),
                                  directory, entry_path);
          !s.ok()) {
        return s;
      }
      continue;
    }
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
        mode != GIT_FILEMODE_LINK) {
      return Status::InvalidArgument("tree entry \"" + entry_path + "\": unsupported mode " +
                                     std::to_string(static_cast<int>(mode)));
    }
    git_blob* raw = nullptr;
    if (git_blob_lookup(&raw, repository, git_tree_entry_id(entry)) != 0) {
      return GitError(entry_path);
    }
    BlobPtr blob(raw);
    const char* content = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    const auto size = static_cast<size_t>(git_blob_rawsize(blob.get()));
    if (mode == GIT_FILEMODE_LINK) {
      const std::string link_target(content, size);
      if (link_target.empty() || link_target.find('\0') != std::string::npos) {
        return Status::InvalidArgument("tree entry \"" + entry_path + "\": bad symlink target");
      }
      if (::symlink(link_target.c_str(), target.c_str()) != 0) {
        return Status::IoError(target + ": symlink: " + std::strerror(errno));
      }
      continue;
    }
    const mode_t file_mode = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
    // O_EXCL and O_NOFOLLOW: a crafted tree naming a path twice fails here
    // instead of writing through what the first one made.
    const int fd =
        ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file_mode);
    if (fd < 0) return Status::IoError(target + ": open: " + std::strerror(errno));
    Status s = WriteAll(fd, content, size, target);
    // The umask must not change the committed mode.
    if (s.ok() && ::fchmod(fd, file_mode) != 0) {
      s = Status::IoError(target + ": chmod: " + std::strerror(errno));
    }
    if (::close(fd) != 0 && s.ok()) {
      s = Status::IoError(target + ": close: " + std::strerror(errno));
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status SyncDirectory(const std::string& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(directory + ": open: " + std::strerror(errno));
  Status s;
  if (::fsync(fd) != 0) s = Status::IoError(directory + ": fsync: " + std::strerror(errno));
  ::close(fd);
  return s;
}

}  // namespace

Result<std::unique_ptr<GitStore>> GitStore::Open(const std::string& path) {
  InitLibgit2();
  std::error_code error;
  const bool exists = std::filesystem::exists(path, error);
  if (error) return Status::IoError(path + ": " + error.message());
  git_repository* repository = nullptr;
  if (exists) {
    if (git_repository_open_bare(&repository, path.c_str()) != 0) {
      return IoGitError("opening Git repository " + path);
    }
  } else {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, error);
    if (error) return Status::IoError(parent.string() + ": " + error.message());
    if (git_repository_init(&repository, path.c_str(), /*is_bare=*/1) != 0) {
      return IoGitError("creating Git repository " + path);
    }
  }
  return std::unique_ptr<GitStore>(new GitStore(path, repository));
}

GitStore::GitStore(std::string path, git_repository* repository)
    : path_(std::move(path)), repository_(repository) {}

GitStore::~GitStore() { git_repository_free(repository_); }

namespace {

// A commit of `tree_id` on `parent`, or the parent itself when its tree is the same.
Result<CommitResult> CommitTree(git_repository* repository, const git_oid& tree_id,
                                const CommitId& parent, std::string_view author_name,
                                std::string_view author_email, std::string_view message) {
  CommitPtr parent_commit;
  if (!parent.empty()) {
    Result<CommitPtr> found = LookupCommit(repository, parent);
    if (!found.ok()) return found.status();
    parent_commit = std::move(found.value());
    if (git_oid_equal(git_commit_tree_id(parent_commit.get()), &tree_id)) {
      return CommitResult{parent, Hex(&tree_id), /*unchanged=*/true};
    }
  }
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, repository, &tree_id) != 0) return IoGitError("tree");
  TreePtr tree(raw_tree);
  git_signature* raw_signature = nullptr;
  if (git_signature_now(&raw_signature, std::string(author_name).c_str(),
                        std::string(author_email).c_str()) != 0) {
    return Status::InvalidArgument("author \"" + std::string(author_name) + " <" +
                                   std::string(author_email) + ">\": " + LastGitError());
  }
  SignaturePtr signature(raw_signature);
  const git_commit* parents[1] = {parent_commit.get()};
  git_oid commit_id;
  if (git_commit_create(&commit_id, repository, /*update_ref=*/nullptr, signature.get(),
                        signature.get(), /*message_encoding=*/nullptr, std::string(message).c_str(),
                        tree.get(), parent_commit ? 1 : 0, parents) != 0) {
    return IoGitError("writing commit");
  }
  return CommitResult{Hex(&commit_id), Hex(&tree_id), /*unchanged=*/false};
}

}  // namespace

Result<CommitResult> GitStore::Commit(const DeployTree& tree, const CommitId& parent,
                                      std::string_view author_name, std::string_view author_email,
                                      std::string_view message) {
  Node root;
  for (const TreeEntry& entry : tree.entries) {
    git_oid blob_id;
    if (git_blob_create_from_buffer(&blob_id, repository_, entry.bytes.data(),
                                    entry.bytes.size()) != 0) {
      return IoGitError(entry.path + ": writing blob");
    }
    git_filemode_t mode = GIT_FILEMODE_BLOB;
    if (entry.kind == EntryKind::kExecutable) mode = GIT_FILEMODE_BLOB_EXECUTABLE;
    if (entry.kind == EntryKind::kSymlink) mode = GIT_FILEMODE_LINK;
    if (Status s = InsertPath(&root, entry, blob_id, mode); !s.ok()) return s;
  }
  git_oid tree_id;
  if (Status s = WriteTree(repository_, root, "", &tree_id); !s.ok()) return s;
  return CommitTree(repository_, tree_id, parent, author_name, author_email, message);
}

Result<CommitResult> GitStore::CommitTreeOf(const CommitId& source, const CommitId& parent,
                                            std::string_view author_name,
                                            std::string_view author_email,
                                            std::string_view message) {
  Result<CommitPtr> found = LookupCommit(repository_, source);
  if (!found.ok()) return found.status();
  const git_oid tree_id = *git_commit_tree_id(found->get());
  return CommitTree(repository_, tree_id, parent, author_name, author_email, message);
}

bool GitStore::HasCommit(const CommitId& commit) const {
  Result<CommitPtr> found = LookupCommit(repository_, commit);
  if (!found.ok()) return false;
  // Packs arrive whole, so a readable commit and root tree mean the rest is there.
  git_tree* tree = nullptr;
  if (git_commit_tree(&tree, found->get()) != 0) return false;
  git_tree_free(tree);
  return true;
}

Result<CommitInfo> GitStore::Describe(const CommitId& commit) const {
  Result<CommitPtr> found = LookupCommit(repository_, commit);
  if (!found.ok()) return found.status();
  return InfoOf(found->get());
}

Result<std::vector<CommitInfo>> GitStore::History(const CommitId& commit, size_t limit) const {
  std::vector<CommitInfo> history;
  CommitId next = commit;
  while (!next.empty() && history.size() < limit) {
    Result<CommitPtr> found = LookupCommit(repository_, next);
    if (!found.ok()) return found.status();
    history.push_back(InfoOf(found->get()));
    next = history.back().parent;
  }
  return history;
}

Result<std::optional<CommitId>> GitStore::ReadRef(const std::string& name) const {
  git_reference* raw = nullptr;
  const int rc = git_reference_lookup(&raw, repository_, name.c_str());
  if (rc == GIT_ENOTFOUND) return std::optional<CommitId>();
  if (rc != 0) return GitError("ref " + name);
  ReferencePtr reference(raw);
  Result<std::optional<CommitId>> commit = PeelToCommit(reference.get());
  if (commit.ok() && !commit->has_value()) {
    return Status::InvalidArgument("ref " + name + " does not name a commit");
  }
  return commit;
}

Status GitStore::SetRef(const std::string& name, const CommitId& commit) {
  int valid = 0;
  if (git_reference_name_is_valid(&valid, name.c_str()) != 0 || !valid ||
      name.rfind("refs/", 0) != 0) {
    return Status::InvalidArgument("not a valid ref name: \"" + name + "\"");
  }
  if (!HasCommit(commit)) return Status::NotFound("ref " + name + ": no commit " + commit);
  git_oid oid;
  if (Status s = ParseId(commit, &oid); !s.ok()) return s;
  git_reference* raw = nullptr;
  if (git_reference_create(&raw, repository_, name.c_str(), &oid, /*force=*/1,
                           "cluster-sidecar deploy") != 0) {
    return IoGitError("ref " + name);
  }
  git_reference_free(raw);
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, CommitId>>> GitStore::ListRefs(
    const std::string& prefix) const {
  git_reference_iterator* raw_iterator = nullptr;
  const std::string glob = GlobEscape(prefix) + "*";
  if (git_reference_iterator_glob_new(&raw_iterator, repository_, glob.c_str()) != 0) {
    return IoGitError("listing refs " + prefix);
  }
  RefIteratorPtr iterator(raw_iterator);
  std::vector<std::pair<std::string, CommitId>> refs;
  while (true) {
    git_reference* raw = nullptr;
    const int rc = git_reference_next(&raw, iterator.get());
    if (rc == GIT_ITEROVER) break;
    if (rc != 0) return IoGitError("listing refs " + prefix);
    ReferencePtr reference(raw);
    const std::string name = git_reference_name(reference.get());
    if (name.rfind(prefix, 0) != 0) continue;
    Result<std::optional<CommitId>> commit = PeelToCommit(reference.get());
    if (!commit.ok()) return commit.status();
    // A ref that names no commit is none of ours: left out, not fatal.
    if (commit->has_value()) refs.emplace_back(name, **commit);
  }
  std::sort(refs.begin(), refs.end());
  return refs;
}

Result<std::string> GitStore::MakePack(const CommitId& want,
                                       const std::vector<CommitId>& haves) const {
  git_oid want_id;
  if (Status s = ParseId(want, &want_id); !s.ok()) return s;
  if (!HasCommit(want)) return Status::NotFound("no commit " + want);
  git_revwalk* raw_walk = nullptr;
  if (git_revwalk_new(&raw_walk, repository_) != 0) return IoGitError("revwalk");
  RevwalkPtr walk(raw_walk);
  if (git_revwalk_push(walk.get(), &want_id) != 0) return IoGitError("revwalk " + want);
  for (const CommitId& have : haves) {
    git_oid have_id;
    if (Status s = ParseId(have, &have_id); !s.ok()) return s;
    if (!HasCommit(have)) continue;
    if (git_revwalk_hide(walk.get(), &have_id) != 0) return IoGitError("revwalk " + have);
  }
  git_packbuilder* raw_builder = nullptr;
  if (git_packbuilder_new(&raw_builder, repository_) != 0) return IoGitError("pack builder");
  PackBuilderPtr builder(raw_builder);
  // Also marks the trees of the hidden commits as known, so only what changed goes.
  if (git_packbuilder_insert_walk(builder.get(), walk.get()) != 0) {
    return IoGitError("packing " + want);
  }
  git_buf buffer = GIT_BUF_INIT;
  if (git_packbuilder_write_buf(&buffer, builder.get()) != 0) {
    return IoGitError("packing " + want);
  }
  std::string pack(buffer.ptr, buffer.size);
  git_buf_dispose(&buffer);
  return pack;
}

Status GitStore::AddPack(std::string_view pack) {
  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repository_) != 0) return IoGitError("object database");
  OdbPtr odb(raw_odb);
  const std::string pack_directory = std::string(git_repository_path(repository_)) + "objects/pack";
  git_indexer_options options;
  git_indexer_options_init(&options, GIT_INDEXER_OPTIONS_VERSION);
  // Every object the pack's trees and commits name must be in it or already here.
  options.verify = 1;
  git_indexer* raw_indexer = nullptr;
  if (git_indexer_new(&raw_indexer, pack_directory.c_str(), 0, odb.get(), &options) != 0) {
    return IoGitError("pack indexer in " + pack_directory);
  }
  // The indexer writes into a temporary file, and removes it when freed
  // uncommitted: a bad pack leaves nothing behind.
  IndexerPtr indexer(raw_indexer);
  git_indexer_progress progress{};
  if (git_indexer_append(indexer.get(), pack.data(), pack.size(), &progress) != 0 ||
      git_indexer_commit(indexer.get(), &progress) != 0) {
    return GitError("pack of " + std::to_string(pack.size()) + " bytes");
  }
  indexer.reset();
  if (git_odb_refresh(odb.get()) != 0) return IoGitError("object database");
  return Status::Ok();
}

Status GitStore::CheckoutTo(const CommitId& commit, const std::string& directory) const {
  Result<CommitPtr> found = LookupCommit(repository_, commit);
  if (!found.ok()) return found.status();
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, found->get()) != 0) return GitError("tree of " + commit);
  TreePtr tree(raw_tree);
  if (::mkdir(directory.c_str(), 0755) != 0) {
    return Status::IoError(directory + ": mkdir: " + std::strerror(errno));
  }
  Status s = CheckoutTree(repository_, tree.get(), directory, "");
  if (s.ok()) s = SyncDirectory(directory);
  if (!s.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory, ignored);
  }
  return s;
}

std::string DeploymentName(std::string_view stage, std::string_view host, std::string_view webapp) {
  std::string name;
  name.reserve(stage.size() + host.size() + webapp.size() + 9);
  name.append(stage).append("/webapp/").append(host).append("/").append(webapp);
  return name;
}

std::string VersionTagName(std::string_view deployment_name, std::string_view version) {
  return std::string(deployment_name) + "-" + std::string(version);
}

bool IsValidTagPart(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (name.front() == '.' || name.front() == '-') return false;
  if (name.find("..") != std::string_view::npos) return false;
  // Git refuses a ref ending in '.' or a component ending in ".lock".
  if (name.back() == '.') return false;
  if (name.size() >= 5 && name.substr(name.size() - 5) == ".lock") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace cb::deploy
