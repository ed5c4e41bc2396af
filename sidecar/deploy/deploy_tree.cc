#include "sidecar/deploy/deploy_tree.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

namespace cb::deploy {
namespace {

enum class Kind { kFile, kDirectory, kSymlink, kHardlink, kSpecial };

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    uint32_t code = 0;
    if (byte < 0x80) {
      length = 1;
      code = byte;
    } else if ((byte & 0xe0) == 0xc0) {
      length = 2;
      code = byte & 0x1f;
    } else if ((byte & 0xf0) == 0xe0) {
      length = 3;
      code = byte & 0x0f;
    } else if ((byte & 0xf8) == 0xf0) {
      length = 4;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    // Overlong forms, surrogates and values past Unicode are not UTF-8.
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) {
      return false;
    }
    i += length;
  }
  return true;
}

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    parts.emplace_back(path.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t count) {
  std::string joined;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) joined += '/';
    joined += parts[i];
  }
  return joined;
}

// Takes entries one by one, in the order they would be written, and refuses the
// first that breaks a rule (deploy_tree.h).
class TreeBuilder {
 public:
  explicit TreeBuilder(const TreeLimits& limits) : limits_(limits) {}

  // Checks the entry's name, kind and mode; on success the normalised path (""
  // for an entry to skip: the archive's own "./").
  Result<std::string> Admit(std::string_view raw_name, Kind kind, unsigned mode) {
    const std::string shown(raw_name);
    const auto refuse = [&](const std::string& why) {
      return Status::InvalidArgument(shown + ": " + why);
    };
    if (raw_name.empty()) return refuse("empty name");
    if (!IsValidUtf8(raw_name)) return refuse("name is not valid UTF-8");
    for (const char c : raw_name) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return refuse("control character in the name");
      }
    }
    if (raw_name.find('\\') != std::string_view::npos) {
      return refuse("'\\' in the name (a Windows separator)");
    }
    if (raw_name.size() >= 2 && raw_name[1] == ':' &&
        ((raw_name[0] >= 'A' && raw_name[0] <= 'Z') ||
         (raw_name[0] >= 'a' && raw_name[0] <= 'z'))) {
      return refuse("drive letter in the name");
    }
    if (raw_name.front() == '/') return refuse("absolute path");
    std::string_view name = raw_name;
    while (name.starts_with("./")) name.remove_prefix(2);
    while (name.ends_with('/') && kind == Kind::kDirectory) name.remove_suffix(1);
    if (name.empty() || name == ".") {
      if (kind == Kind::kDirectory) return std::string();
      return refuse("not a path in the tree");
    }
    const std::vector<std::string> parts = Split(name);
    for (const std::string& part : parts) {
      if (part.empty()) return refuse("empty path component");
      if (part == "..") return refuse("'..' component");
      if (part == ".") return refuse("'.' component");
    }
    if (kind == Kind::kHardlink) return refuse("hard link");
    if (kind == Kind::kSpecial) return refuse("device, FIFO or socket");
    if ((mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0) return refuse("setuid, setgid or sticky bit");
    // No entry may be written through an earlier file or symlink.
    for (size_t count = 1; count < parts.size(); ++count) {
      const auto found = kinds_.find(Join(parts, count));
      if (found != kinds_.end() && found->second != Kind::kDirectory) {
        return refuse(std::string("under ") + Join(parts, count) + ", which is a " +
                      (found->second == Kind::kSymlink ? "symlink" : "file"));
      }
    }
    const std::string path(name);
    const auto same = kinds_.find(path);
    if (same != kinds_.end()) {
      if (kind == Kind::kDirectory && same->second == Kind::kDirectory) return std::string();
      return refuse("the same path twice");
    }
    for (size_t count = 1; count < parts.size(); ++count) {
      kinds_.emplace(Join(parts, count), Kind::kDirectory);
    }
    kinds_[path] = kind;
    if (kind == Kind::kDirectory) return std::string();
    if (++files_ > limits_.max_files) {
      return Status::TooLarge(shown + ": more than " + std::to_string(limits_.max_files) +
                              " files");
    }
    return path;
  }

  // Counts bytes as they arrive, so that a compression bomb stops at the limit.
  Status Count(const std::string& shown, size_t bytes) {
    total_ += bytes;
    if (total_ > limits_.max_bytes) {
      return Status::TooLarge(shown + ": the tree is larger than " +
                              std::to_string(limits_.max_bytes) + " bytes");
    }
    return Status::Ok();
  }

  void Add(TreeEntry entry) { tree_.entries.push_back(std::move(entry)); }

  // The symlinks, followed through the tree as the kernel would (links within
  // links included), must stay inside it.
  Result<DeployTree> Finish() {
    std::map<std::string, const TreeEntry*> links;
    for (const TreeEntry& entry : tree_.entries) {
      if (entry.kind == EntryKind::kSymlink) links[entry.path] = &entry;
    }
    for (const auto& [path, entry] : links) {
      if (Status inside = StaysInside(path, entry->bytes, links); !inside.ok()) return inside;
    }
    std::sort(tree_.entries.begin(), tree_.entries.end(),
              [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
    tree_.total_bytes = total_;
    return std::move(tree_);
  }

 private:
  static Status StaysInside(const std::string& path, const std::string& target,
                            const std::map<std::string, const TreeEntry*>& links) {
    const auto refuse = [&](const std::string& why) {
      return Status::InvalidArgument(path + ": symlink " + why);
    };
    if (target.empty()) return refuse("with an empty target");
    if (target.front() == '/') return refuse("to an absolute path (" + target + ")");
    std::vector<std::string> at = Split(path);
    at.pop_back();  // the link's own directory
    std::vector<std::string> pending = Split(target);
    std::reverse(pending.begin(), pending.end());
    int hops = 0;
    while (!pending.empty()) {
      const std::string part = pending.back();
      pending.pop_back();
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (at.empty()) return refuse("pointing outside the tree (" + target + ")");
        at.pop_back();
        continue;
      }
      at.push_back(part);
      const auto link = links.find(Join(at, at.size()));
      if (link == links.end()) continue;
      if (++hops > 40) return refuse("loop (" + target + ")");
      const std::string& next = link->second->bytes;
      if (next.empty() || next.front() == '/') {
        return refuse("through " + link->first + " to an absolute path");
      }
      at.pop_back();
      std::vector<std::string> parts = Split(next);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(*it);
    }
    return Status::Ok();
  }

  const TreeLimits& limits_;
  std::map<std::string, Kind> kinds_;
  uint64_t files_ = 0;
  uint64_t total_ = 0;
  DeployTree tree_;
};

Kind KindOfMode(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return Kind::kFile;
    case S_IFDIR:
      return Kind::kDirectory;
    case S_IFLNK:
      return Kind::kSymlink;
    default:
      return Kind::kSpecial;
  }
}

EntryKind EntryKindOf(Kind kind, unsigned mode) {
  if (kind == Kind::kSymlink) return EntryKind::kSymlink;
  return (mode & 0111) != 0 ? EntryKind::kExecutable : EntryKind::kFile;
}

struct ArchiveCloser {
  void operator()(archive* handle) const { archive_read_free(handle); }
};

}  // namespace

Result<DeployTree> ReadArchive(std::string_view bytes, const TreeLimits& limits) {
  std::unique_ptr<archive, ArchiveCloser> reader(archive_read_new());
  if (!reader) return Status::IoError("archive: out of memory");
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_gnutar(reader.get());
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_memory(reader.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    return Status::InvalidArgument(std::string("not a tar, tar.gz or zip archive: ") +
                                   archive_error_string(reader.get()));
  }
  TreeBuilder builder(limits);
  archive_entry* entry = nullptr;
  while (true) {
    const int read = archive_read_next_header(reader.get(), &entry);
    if (read == ARCHIVE_EOF) break;
    if (read != ARCHIVE_OK && read != ARCHIVE_WARN) {
      return Status::InvalidArgument(std::string("archive: ") + archive_error_string(reader.get()));
    }
    const char* raw = archive_entry_pathname(entry);
    const std::string name = raw ? raw : "";
    const auto mode = static_cast<unsigned>(archive_entry_mode(entry));
    Kind kind = archive_entry_hardlink(entry) != nullptr ? Kind::kHardlink : KindOfMode(mode);
    Result<std::string> path = builder.Admit(name, kind, mode);
    if (!path.ok()) return path.status();
    if (path->empty()) continue;
    TreeEntry out{*path, EntryKindOf(kind, mode), ""};
    if (kind == Kind::kSymlink) {
      const char* target = archive_entry_symlink(entry);
      out.bytes = target ? target : "";
      if (Status counted = builder.Count(name, out.bytes.size()); !counted.ok()) return counted;
    } else {
      char block[64 * 1024];
      while (true) {
        const la_ssize_t got = archive_read_data(reader.get(), block, sizeof(block));
        if (got == 0) break;
        if (got < 0) {
          return Status::InvalidArgument(name + ": " + archive_error_string(reader.get()));
        }
        if (Status counted = builder.Count(name, static_cast<size_t>(got)); !counted.ok()) {
          return counted;
        }
        out.bytes.append(block, static_cast<size_t>(got));
      }
    }
    builder.Add(std::move(out));
  }
  return builder.Finish();
}

Result<DeployTree> ReadDirectory(const std::string& directory, const TreeLimits& limits) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(fs::symlink_status(directory, error))) {
    return Status::InvalidArgument(directory + ": not a directory");
  }
  TreeBuilder builder(limits);
  fs::recursive_directory_iterator walk(directory, fs::directory_options::none, error);
  if (error) return Status::IoError(directory + ": " + error.message());
  for (; walk != fs::recursive_directory_iterator(); walk.increment(error)) {
    if (error) return Status::IoError(directory + ": " + error.message());
    const fs::path& full = walk->path();
    const std::string name = fs::relative(full, directory, error).generic_string();
    struct stat info {};
    if (::lstat(full.c_str(), &info) != 0) return Status::IoError(name + ": cannot stat");
    const auto mode = static_cast<unsigned>(info.st_mode);
    const Kind kind = KindOfMode(mode);
    Result<std::string> path = builder.Admit(name, kind, mode);
    if (!path.ok()) return path.status();
    if (path->empty()) continue;
    TreeEntry out{*path, EntryKindOf(kind, mode), ""};
    if (kind == Kind::kSymlink) {
      out.bytes = fs::read_symlink(full, error).string();
      if (error) return Status::IoError(name + ": " + error.message());
    } else {
      if (Status counted = builder.Count(name, static_cast<size_t>(info.st_size)); !counted.ok()) {
        return counted;
      }
      std::ifstream in(full, std::ios::binary);
      out.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) return Status::IoError(name + ": cannot read");
    }
    builder.Add(std::move(out));
  }
  return builder.Finish();
}

Result<std::string> WriteTarGz(const DeployTree& tree) {
  std::string out;
  struct WriterCloser {
    void operator()(archive* handle) const { archive_write_free(handle); }
  };
  std::unique_ptr<archive, WriterCloser> writer(archive_write_new());
  if (!writer) return Status::IoError("archive: out of memory");
  archive_write_add_filter_gzip(writer.get());
  archive_write_set_format_pax_restricted(writer.get());
  archive_write_set_bytes_in_last_block(writer.get(), 1);
  const auto append = [](archive*, void* data, const void* buffer, size_t length) -> la_ssize_t {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  };
  if (archive_write_open(writer.get(), &out, nullptr, append, nullptr) != ARCHIVE_OK) {
    return Status::IoError(std::string("archive: ") + archive_error_string(writer.get()));
  }
  for (const TreeEntry& item : tree.entries) {
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                   archive_entry_free);
    archive_entry_set_pathname(entry.get(), item.path.c_str());
    if (item.kind == EntryKind::kSymlink) {
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_perm(entry.get(), 0777);
      archive_entry_set_symlink(entry.get(), item.bytes.c_str());
      archive_entry_set_size(entry.get(), 0);
    } else {
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_perm(entry.get(), item.kind == EntryKind::kExecutable ? 0755 : 0644);
      archive_entry_set_size(entry.get(), static_cast<la_int64_t>(item.bytes.size()));
    }
    if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK) {
      return Status::IoError(item.path + ": " + archive_error_string(writer.get()));
    }
    if (item.kind != EntryKind::kSymlink && !item.bytes.empty() &&
        archive_write_data(writer.get(), item.bytes.data(), item.bytes.size()) < 0) {
      return Status::IoError(item.path + ": " + archive_error_string(writer.get()));
    }
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return Status::IoError(std::string("archive: ") + archive_error_string(writer.get()));
  }
  return out;
}

}  // namespace cb::deploy
