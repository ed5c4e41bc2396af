#include "sidecar/daemon/node_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "shared/cluster_view.h"

namespace cb::daemon {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `text` to `path` so that a crash leaves either the old or the new content.
Status WriteDurably(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Status::IoError(Errno("creating " + temporary));
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  const int saved_errno = errno;
  close(fd);
  if (!written) {
    errno = saved_errno;
    return Status::IoError(Errno("writing " + temporary));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    return Status::IoError(Errno("renaming " + temporary));
  }
  return Status::Ok();
}

// The whole file, or nothing when it does not exist.
Result<std::optional<std::string>> ReadIfExists(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Status::IoError(Errno(path));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::IoError(Errno("reading " + path));
  std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  if (file.bad()) return Status::IoError("reading " + path + " failed");
  return std::optional<std::string>(std::move(text));
}

Status Malformed(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what + "; remove it to start over");
}

}  // namespace

Status PrepareDataDir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
    return Status::IoError(Errno("data dir " + path));
  }
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return Status::IoError(Errno("data dir " + path));
  if (!S_ISDIR(info.st_mode)) return Status::IoError("data dir " + path + ": not a directory");
  const std::string probe = path + "/.write-probe";
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(Errno("data dir " + path + " is not writable"));
  close(fd);
  unlink(probe.c_str());
  return Status::Ok();
}

Result<uint64_t> NextIncarnation(const std::string& data_dir, int64_t now_unix_ms) {
  const std::string path = data_dir + "/incarnation";
  uint64_t stored = 0;
  std::ifstream file(path);
  if (file) {
    std::ostringstream text;
    text << file.rdbuf();
    std::string value = text.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), stored);
    if (error != std::errc() || end != value.data() + value.size() || value.empty()) {
      return Status::InvalidArgument(path + ": not a number (\"" + value.substr(0, 40) +
                                     "\"); remove it to start over");
    }
  }
  const uint64_t next = std::max<uint64_t>(stored + 1, static_cast<uint64_t>(now_unix_ms));
  if (Status written = WriteDurably(path, std::to_string(next) + "\n"); !written.ok()) {
    return written;
  }
  return next;
}

Result<int> LoadJoinedIndex(const std::string& data_dir, const std::string& cluster_name,
                            const std::string& server_id) {
  const std::string path = data_dir + "/dynamic-index";
  Result<std::optional<std::string>> text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return -1;
  const nlohmann::json json = nlohmann::json::parse(**text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("cluster") || !json["cluster"].is_string() ||
      !json.contains("id") || !json["id"].is_string() || !json.contains("index") ||
      !json["index"].is_number_integer()) {
    return Malformed(path, "not {\"cluster\", \"id\", \"index\"}");
  }
  if (json["cluster"] != cluster_name || json["id"] != server_id) {
    return Status::InvalidArgument(path + ": this data dir belongs to server \"" +
                                   json["id"].get<std::string>() + "\" of cluster \"" +
                                   json["cluster"].get<std::string>() +
                                   "\"; give each server a data dir of its own");
  }
  const int64_t index = json["index"].get<int64_t>();
  if (index < 0 || index >= kMaxServers) return Malformed(path, "index out of range");
  return static_cast<int>(index);
}

Status SaveJoinedIndex(const std::string& data_dir, const std::string& cluster_name,
                       const std::string& server_id, int index) {
  const nlohmann::json json = {{"cluster", cluster_name}, {"id", server_id}, {"index", index}};
  return WriteDurably(data_dir + "/dynamic-index", json.dump() + "\n");
}

Result<std::vector<protocol::ServerRecord>> LoadDynamicIdentities(const std::string& data_dir) {
  const std::string path = data_dir + "/dynamic-servers";
  Result<std::optional<std::string>> text = ReadIfExists(path);
  if (!text.ok()) return text.status();
  std::vector<protocol::ServerRecord> identities;
  if (!text->has_value()) return identities;
  const nlohmann::json json = nlohmann::json::parse(**text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_array()) return Malformed(path, "not a JSON array");
  for (const nlohmann::json& entry : json) {
    protocol::ServerRecord record;
    try {
      record.index = entry.at("index").get<int32_t>();
      record.id = entry.at("id").get<std::string>();
      record.cluster_address = entry.at("cluster_address").get<std::string>();
      record.http_address = entry.at("http_address").get<std::string>();
      record.weight = entry.at("weight").get<uint32_t>();
      record.admission = entry.at("admission").get<uint64_t>();
      record.admin_version = entry.at("admin_version").get<uint64_t>();
      record.draining = entry.at("draining").get<bool>();
    } catch (const nlohmann::json::exception& error) {
      return Malformed(path, std::string("an entry is malformed (") + error.what() + ")");
    }
    record.dynamic = true;
    identities.push_back(std::move(record));
  }
  return identities;
}

Status SaveDynamicIdentities(const std::string& data_dir,
                             const std::vector<protocol::ServerRecord>& identities) {
  nlohmann::json json = nlohmann::json::array();
  for (const protocol::ServerRecord& record : identities) {
    json.push_back({{"index", record.index},
                    {"id", record.id},
                    {"cluster_address", record.cluster_address},
                    {"http_address", record.http_address},
                    {"weight", record.weight},
                    {"admission", record.admission},
                    {"admin_version", record.admin_version},
                    {"draining", record.draining}});
  }
  return WriteDurably(data_dir + "/dynamic-servers", json.dump(1) + "\n");
}

}  // namespace cb::daemon
