#include "shared/cluster_config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

// toml++ 3.3 asserts on some malformed documents (e.g. a table header "[)x]") at the
// point where it goes on to report a parse error; a bad cluster file must get that
// error, not abort a debug build. (Release builds, Debian's library among them,
// compile the check out.)
#ifndef TOML_ASSERT
#define TOML_ASSERT(expr) static_cast<void>(0)
#endif
#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace cb {
namespace {

constexpr std::size_t kMaxReportedProblems = 20;
constexpr uint64_t kMinFrameBytes = 64 * 1024;
constexpr uint64_t kMaxFrameBytes = uint64_t{1} << 30;
constexpr milliseconds kMinHeartbeatInterval{10};
constexpr milliseconds kMinRetryTimeout{10};
constexpr milliseconds kMaxRetryTimeout{60 * 1000};
// memcached's own line limit is 2048 bytes; nobody needs a get line of a GiB.
constexpr uint64_t kMinMemcachedLineBytes = 2048;
constexpr uint64_t kMaxMemcachedLineBytes = uint64_t{1} << 30;
constexpr int64_t kMaxDeployFiles = 100'000'000;
constexpr milliseconds kMinActivateTimeout{1000};
constexpr milliseconds kMaxActivateTimeout{24 * 60 * 60 * 1000};

// Every problem found, each as "<source>:<line>: <field>: <what>".
class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}

  void Add(int64_t line, std::string_view field, std::string_view what) {
    std::ostringstream text;
    text << source_ << ":" << line << ": " << field << ": " << what;
    list_.push_back(text.str());
  }
  bool empty() const { return list_.empty(); }

  Status ToStatus() const {
    std::string message;
    for (std::size_t i = 0; i < list_.size() && i < kMaxReportedProblems; ++i) {
      if (i > 0) message += "\n";
      message += list_[i];
    }
    if (list_.size() > kMaxReportedProblems) {
      message += "\n(" + std::to_string(list_.size() - kMaxReportedProblems) + " more problems)";
    }
    return Status::InvalidArgument(message);
  }

 private:
  std::string source_;
  std::vector<std::string> list_;
};

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

int64_t LineOf(const toml::node& node) { return static_cast<int64_t>(node.source().begin.line); }

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// A name as used in ids, tags and log lines: letters, digits, '.', '-', '_', not
// starting with a punctuation character.
bool IsValidName(std::string_view name, std::size_t max_length) {
  if (name.empty() || name.size() > max_length ||
      !std::isalnum(static_cast<unsigned char>(name[0])))
    return false;
  return std::all_of(name.begin(), name.end(), IsNameChar);
}

// Reads the keys of one TOML table, type-checking each, and remembers which keys
// were asked for so that every other key can be reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string field_prefix, Problems& problems)
      : table_(table), prefix_(std::move(field_prefix)), problems_(problems) {}

  std::string Field(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }
  int64_t Line(std::string_view key) const {
    const toml::node* node = table_.get(key);
    return node != nullptr ? LineOf(*node) : LineOf(table_);
  }
  void Problem(std::string_view key, std::string_view what) {
    problems_.Add(Line(key), Field(key), what);
  }

  const toml::node* Get(std::string_view key) {
    known_.emplace(key);
    return table_.get(key);
  }

  std::optional<std::string> String(std::string_view key) {
    const toml::node* node = Get(key);
    if (node == nullptr) return std::nullopt;
    if (!node->is_string()) {
      Problem(key, "expected a string");
      return std::nullopt;
    }
    return node->as_string()->get();
  }

  std::optional<std::string> RequiredString(std::string_view key) {
    std::optional<std::string> value = String(key);
    if (!value && table_.get(key) == nullptr) Problem(key, "missing (required)");
    return value;
  }

  void Integer(std::string_view key, int64_t min, int64_t max, auto& out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return;
    if (!node->is_integer()) {
      Problem(key, "expected a whole number");
      return;
    }
    const int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      Problem(key, std::to_string(value) + " is outside " + std::to_string(min) + ".." +
                       std::to_string(max));
      return;
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(value);
  }

  void Boolean(std::string_view key, bool& out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return;
    if (!node->is_boolean()) {
      Problem(key, "expected true or false");
      return;
    }
    out = node->as_boolean()->get();
  }

  // Returns whether the key was present (even if malformed).
  bool Duration(std::string_view key, milliseconds& out) {
    if (table_.get(key) == nullptr) {
      known_.emplace(key);
      return false;
    }
    std::optional<std::string> text = String(key);
    if (!text) return true;
    Result<milliseconds> parsed = ParseDuration(*text);
    if (parsed.ok()) {
      out = *parsed;
    } else {
      Problem(key, parsed.status().message());
    }
    return true;
  }

  void ByteSize(std::string_view key, uint64_t& out) {
    const toml::node* node = Get(key);
    if (node == nullptr) return;
    if (node->is_integer() && node->as_integer()->get() >= 0) {
      out = static_cast<uint64_t>(node->as_integer()->get());
      return;
    }
    if (!node->is_string()) {
      Problem(key, "expected a size such as \"1MiB\" or a whole number of bytes");
      return;
    }
    Result<uint64_t> parsed = ParseByteSize(node->as_string()->get());
    if (parsed.ok()) {
      out = *parsed;
    } else {
      Problem(key, parsed.status().message());
    }
  }

  void Address(std::string_view key, HostPort& out, bool required) {
    std::optional<std::string> text = required ? RequiredString(key) : String(key);
    if (!text) return;
    if (text->size() > kMaxAddressLength) {
      Problem(key, "longer than " + std::to_string(kMaxAddressLength) + " characters");
      return;
    }
    Result<HostPort> parsed = ParseHostPort(*text);
    if (parsed.ok()) {
      out = *parsed;
    } else {
      Problem(key, parsed.status().message());
    }
  }

  // Reports every key of the table that no getter asked for.
  void RejectUnknownKeys() {
    for (auto&& [key, node] : table_) {
      const std::string_view name = key.str();
      if (known_.count(std::string(name)) != 0) continue;
      std::string what = "unknown key";
      // The nearest known key, if it is a plausible typo (2 edits at most, and not
      // most of a short word).
      const std::string* nearest = nullptr;
      std::size_t nearest_distance = 3;
      for (const std::string& candidate : known_) {
        const std::size_t distance = EditDistance(name, candidate);
        if (distance < nearest_distance && distance < candidate.size()) {
          nearest = &candidate;
          nearest_distance = distance;
        }
      }
      if (nearest != nullptr) what += " (did you mean \"" + *nearest + "\"?)";
      problems_.Add(LineOf(node), Field(name), what);
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  Problems& problems_;
  std::set<std::string, std::less<>> known_;
};

// The sub-table `key` of `reader`'s table; nullptr (with a problem) when it is of
// another type, nullptr when absent.
const toml::table* SubTable(TableReader& reader, std::string_view key) {
  const toml::node* node = reader.Get(key);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) {
    reader.Problem(key, "expected a table ([" + std::string(key) + "])");
    return nullptr;
  }
  return node->as_table();
}

// Whether `host` (as ParseHostPort gives it) can only be reached from this machine:
// "localhost", 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z). Any other name may
// resolve to a public address, so it counts as remote.
bool IsLoopbackHost(std::string_view host) {
  std::string text(host);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (text == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

constexpr std::string_view kAdminSecurityKeys[] = {"admin_listen", "admin_tls_certificate",
                                                   "admin_tls_key", "admin_users"};

// Remote admin (a non-loopback admin_listen) carries deployments and drains: it
// must not be reachable without TLS and passwords.
void CheckRemoteAdmin(TableReader& reader, const NodeSettings& node) {
  if (node.admin_listen.port == 0 || IsLoopbackHost(node.admin_listen.host)) return;
  std::string missing;
  for (const auto& [key, value] : {std::pair{"admin_tls_certificate", &node.admin_tls_certificate},
                                   std::pair{"admin_tls_key", &node.admin_tls_key},
                                   std::pair{"admin_users", &node.admin_users}}) {
    if (!value->empty()) continue;
    if (!missing.empty()) missing += ", ";
    missing += key;
  }
  if (missing.empty()) return;
  reader.Problem("admin_listen",
                 "remote admin requires TLS and users: " + node.admin_listen.ToString() +
                     " is not a loopback address, and credentials and deployments must not "
                     "cross the network in clear text or without a password (set " +
                     missing + ")");
}

void ReadNodeSettings(TableReader& reader, NodeSettings& node) {
  reader.Address("admin_listen", node.admin_listen, false);
  reader.Address("memcached_listen", node.memcached_listen, false);
  if (auto data_dir = reader.String("data_dir")) {
    if (data_dir->empty()) reader.Problem("data_dir", "must not be empty");
    node.data_dir = *data_dir;
  }
  if (auto view_file = reader.String("view_file")) node.view_file = *view_file;
  reader.ByteSize("spoke_cache_size", node.spoke_cache_bytes);
  reader.ByteSize("memcached_max_line_size", node.memcached_max_line_bytes);
  if (node.memcached_max_line_bytes < kMinMemcachedLineBytes ||
      node.memcached_max_line_bytes > kMaxMemcachedLineBytes) {
    reader.Problem("memcached_max_line_size", "must be between 2KiB and 1GiB");
  }
  for (const auto& [key, target] : {std::pair{"deploy_root", &node.deploy_root},
                                    std::pair{"admin_tls_certificate", &node.admin_tls_certificate},
                                    std::pair{"admin_tls_key", &node.admin_tls_key},
                                    std::pair{"admin_users", &node.admin_users}}) {
    if (auto value = reader.String(key)) *target = *value;
  }
}

void ReadClusterSection(const toml::table* table, ClusterConfig& config, Problems& problems) {
  if (table == nullptr) {
    problems.Add(1, "cluster", "missing section [cluster] (with name and key_file)");
    return;
  }
  TableReader reader(*table, "cluster", problems);
  if (auto name = reader.RequiredString("name")) {
    if (!IsValidName(*name, kMaxIdLength)) {
      reader.Problem("name", "\"" + *name + "\" is not 1.." + std::to_string(kMaxIdLength) +
                                 " letters, digits, '.', '-' or '_'");
    }
    config.name = *name;
  }
  if (auto key_file = reader.RequiredString("key_file")) {
    if (key_file->empty()) reader.Problem("key_file", "must not be empty");
    config.key_file = *key_file;
  }
  reader.Duration("heartbeat_interval", config.heartbeat_interval);
  reader.Duration("heartbeat_timeout", config.heartbeat_timeout);
  reader.Duration("dynamic_server_timeout", config.dynamic_server_timeout);
  reader.Duration("slow_start", config.slow_start);
  reader.ByteSize("max_frame_size", config.max_frame_bytes);
  reader.Duration("retry_timeout", config.retry_timeout);
  if (auto durability = reader.String("durability")) {
    if (*durability == "replicated") {
      config.durability = ClusterConfig::Durability::kReplicated;
    } else if (*durability == "fsync") {
      config.durability = ClusterConfig::Durability::kFsync;
    } else {
      reader.Problem("durability", "must be \"replicated\" (the default) or \"fsync\"");
    }
  }
  reader.RejectUnknownKeys();

  if (config.heartbeat_interval < kMinHeartbeatInterval) {
    reader.Problem("heartbeat_interval", "must be at least 10ms");
  }
  if (config.heartbeat_timeout <= config.heartbeat_interval) {
    reader.Problem("heartbeat_timeout", "must be longer than heartbeat_interval (" +
                                            FormatDuration(config.heartbeat_interval) + ")");
  }
  if (config.dynamic_server_timeout < config.heartbeat_timeout) {
    reader.Problem("dynamic_server_timeout", "must not be shorter than heartbeat_timeout");
  }
  if (config.slow_start > kMaxSlowStart) reader.Problem("slow_start", "must be at most 24h");
  if (config.max_frame_bytes < kMinFrameBytes || config.max_frame_bytes > kMaxFrameBytes) {
    reader.Problem("max_frame_size", "must be between 64KiB and 1GiB");
  }
  if (config.retry_timeout < kMinRetryTimeout || config.retry_timeout > kMaxRetryTimeout) {
    reader.Problem("retry_timeout", "must be between 10ms and 1m");
  }
}

void ReadServers(const toml::node* node, ClusterConfig& config, Problems& problems) {
  if (node == nullptr) {
    problems.Add(1, "server", "no [[server]] entries: a cluster needs at least one server");
    return;
  }
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    problems.Add(LineOf(*node), "server", "expected [[server]] tables");
    return;
  }
  if (array->size() > static_cast<std::size_t>(kMaxServers)) {
    problems.Add(LineOf((*array)[kMaxServers]), "server",
                 "more than " + std::to_string(kMaxServers) +
                     " servers; a triad domain has one route character per server");
  }
  std::map<std::string, int64_t, std::less<>> first_id_line;
  std::map<std::string, std::pair<std::string, int64_t>, std::less<>> first_address;

  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::table& table = *(*array)[i].as_table();
    ServerConfig server;
    server.index = static_cast<int>(i);
    server.line = static_cast<int>(LineOf(table));
    server.node = config.node_defaults;
    TableReader reader(table, "server[" + std::to_string(i) + "]", problems);

    if (auto id = reader.RequiredString("id")) {
      server.id = *id;
      if (!IsValidName(*id, kMaxIdLength)) {
        reader.Problem("id", "\"" + *id + "\" is not 1.." + std::to_string(kMaxIdLength) +
                                 " letters, digits, '.', '-' or '_'");
      } else if (auto [it, inserted] = first_id_line.emplace(*id, reader.Line("id")); !inserted) {
        reader.Problem("id", "duplicate id \"" + *id + "\" (first at line " +
                                 std::to_string(it->second) + ")");
      }
    }
    reader.Address("cluster_address", server.cluster_address, true);
    reader.Address("http_address", server.http_address, true);
    for (const auto& [key, address] : {std::pair{"cluster_address", &server.cluster_address},
                                       std::pair{"http_address", &server.http_address}}) {
      if (address->port == 0) continue;  // missing or malformed: reported already
      const std::string text = address->ToString();
      const std::string field = reader.Field(key);
      auto [it, inserted] = first_address.emplace(text, std::pair{field, reader.Line(key)});
      if (!inserted) {
        reader.Problem(key, "address " + text + " is also " + it->second.first + " (line " +
                                std::to_string(it->second.second) + ")");
      }
    }
    reader.Integer("weight", 0, kMaxWeight, server.weight);
    ReadNodeSettings(reader, server.node);
    reader.RejectUnknownKeys();
    // Without an override of these keys the server's are [node]'s, checked there.
    if (std::any_of(std::begin(kAdminSecurityKeys), std::end(kAdminSecurityKeys),
                    [&](std::string_view key) { return table.contains(key); })) {
      CheckRemoteAdmin(reader, server.node);
    }
    config.servers.push_back(std::move(server));
  }
}

// Whether an entry of `entry_bytes` fits a frame of `frame_bytes` with 64KiB to spare
// (written so that no sum can overflow).
bool EntryFitsFrame(uint64_t entry_bytes, uint64_t frame_bytes) {
  return entry_bytes != 0 && entry_bytes <= frame_bytes &&
         frame_bytes - entry_bytes >= kMinFrameBytes;
}

CacheConfig DefaultCache(std::string_view name) {
  CacheConfig cache;
  cache.name = std::string(name);
  if (name == kSessionCache) cache.idle_timeout = milliseconds(30 * 60 * 1000);
  return cache;
}

// `frame_size_line`: where cluster.max_frame_size is set (or [cluster] starts), for
// a frame limit too small for a cache that keeps its default max_entry_size.
void ReadCaches(const toml::table* caches, int64_t frame_size_line, ClusterConfig& config,
                Problems& problems) {
  std::map<std::string, CacheConfig, std::less<>> by_name;
  std::set<std::string, std::less<>> configured;
  for (std::string_view name : {kSessionCache, kDefaultCache}) {
    by_name.emplace(name, DefaultCache(name));
  }
  if (caches != nullptr) {
    for (auto&& [key, node] : *caches) {
      const std::string name(key.str());
      const std::string field = "cache." + name;
      if (!IsValidName(name, kMaxCacheNameLength) || name.find_first_of(".") != std::string::npos) {
        problems.Add(LineOf(node), field,
                     "cache names are letters, digits, '-' or '_' (they prefix memcached keys "
                     "as <cache>:<key>)");
        continue;
      }
      if (!node.is_table()) {
        problems.Add(LineOf(node), field, "expected a table ([cache." + name + "])");
        continue;
      }
      configured.insert(name);
      TableReader reader(*node.as_table(), field, problems);
      CacheConfig cache = by_name.count(name) ? by_name[name] : DefaultCache(name);
      milliseconds idle{0};
      milliseconds ttl{0};
      const bool has_idle = reader.Duration("idle_timeout", idle);
      const bool has_ttl = reader.Duration("ttl", ttl);
      if (has_idle && has_ttl) {
        reader.Problem("ttl", "set idle_timeout or ttl, not both");
      } else if (has_idle || has_ttl) {
        cache.idle_timeout = idle;
        cache.ttl = ttl;
      }
      reader.ByteSize("max_entry_size", cache.max_entry_bytes);
      reader.RejectUnknownKeys();
      if (!EntryFitsFrame(cache.max_entry_bytes, config.max_frame_bytes)) {
        reader.Problem("max_entry_size",
                       "must be at least 1 byte and 64KiB below cluster.max_frame_size");
      }
      by_name[name] = std::move(cache);
    }
  }
  const bool frame_size_valid =
      config.max_frame_bytes >= kMinFrameBytes && config.max_frame_bytes <= kMaxFrameBytes;
  for (auto& [name, cache] : by_name) {
    if (frame_size_valid && configured.count(name) == 0 &&
        !EntryFitsFrame(cache.max_entry_bytes, config.max_frame_bytes)) {
      problems.Add(frame_size_line, "cluster.max_frame_size",
                   "must be at least 64KiB above the max_entry_size of cache \"" + name + "\" (" +
                       std::to_string(cache.max_entry_bytes) +
                       " bytes by default; set it in [cache." + name + "])");
    }
    config.caches.push_back(std::move(cache));
  }
}

void ReadDeploy(const toml::table* table, ClusterConfig& config, Problems& problems) {
  if (table == nullptr) return;
  TableReader reader(*table, "deploy", problems);
  reader.Boolean("remote", config.deploy.remote);
  for (const auto& [key, target] :
       {std::pair{"stage", &config.deploy.stage}, std::pair{"host", &config.deploy.host}}) {
    if (auto value = reader.String(key)) {
      if (!IsValidName(*value, kMaxIdLength)) {
        reader.Problem(key, "\"" + *value +
                                "\" is not letters, digits, '.', '-' or '_' (it is part of "
                                "deployment tag names)");
      }
      *target = *value;
    }
  }
  reader.Integer("keep_versions", 1, 100, config.deploy.keep_versions);
  reader.ByteSize("max_size", config.deploy.max_bytes);
  if (config.deploy.max_bytes == 0) reader.Problem("max_size", "must be at least 1 byte");
  reader.Integer("max_files", 1, kMaxDeployFiles, config.deploy.max_files);
  if (reader.Duration("activate_timeout", config.deploy.activate_timeout) &&
      (config.deploy.activate_timeout < kMinActivateTimeout ||
       config.deploy.activate_timeout > kMaxActivateTimeout)) {
    reader.Problem("activate_timeout", "must be between 1s and 24h");
  }
  if (const toml::table* activate = SubTable(reader, "activate")) {
    for (auto&& [key, node] : *activate) {
      const std::string webapp(key.str());
      const std::string field = "deploy.activate." + webapp;
      if (!IsValidName(webapp, kMaxIdLength) || webapp.find("..") != std::string::npos) {
        problems.Add(LineOf(node), field,
                     "webapp names are 1.." + std::to_string(kMaxIdLength) +
                         " letters, digits, '.', '-' or '_' (no \"..\"; they are part of "
                         "deployment tag names)");
        continue;
      }
      if (!node.is_string() || node.as_string()->get().empty()) {
        problems.Add(LineOf(node), field, "expected a command (a non-empty string for /bin/sh -c)");
        continue;
      }
      config.deploy.activate.emplace(webapp, node.as_string()->get());
    }
  }
  reader.RejectUnknownKeys();
}

}  // namespace

const ServerConfig* ClusterConfig::FindServer(std::string_view id) const {
  for (const ServerConfig& server : servers) {
    if (server.id == id) return &server;
  }
  return nullptr;
}

const CacheConfig* ClusterConfig::FindCache(std::string_view cache_name) const {
  for (const CacheConfig& cache : caches) {
    if (cache.name == cache_name) return &cache;
  }
  return nullptr;
}

std::string ClusterConfig::ResolvePath(std::string_view path) const {
  const std::filesystem::path given(path);
  if (given.is_absolute() || source.empty()) return given.string();
  return (std::filesystem::path(source).parent_path() / given).lexically_normal().string();
}

bool IsValidServerId(std::string_view id) { return IsValidName(id, kMaxIdLength); }

Result<ClusterConfig> ParseClusterConfig(std::string_view toml_text, std::string_view source_name) {
  const std::string source(source_name);
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& error) {
    return Status::InvalidArgument(source + ":" + std::to_string(error.source().begin.line) + ": " +
                                   std::string(error.description()));
  }

  ClusterConfig config;
  config.source = source;
  Problems problems(source);
  TableReader top(root, "", problems);
  // Order matters: [cluster] sets the frame limit caches are checked against, and
  // [node] the defaults that servers override.
  // A [cluster] of the wrong type is reported by SubTable, not again as missing.
  if (const toml::table* cluster = SubTable(top, "cluster");
      cluster != nullptr || root.get("cluster") == nullptr) {
    ReadClusterSection(cluster, config, problems);
  }
  if (const toml::table* node = SubTable(top, "node")) {
    TableReader reader(*node, "node", problems);
    ReadNodeSettings(reader, config.node_defaults);
    reader.RejectUnknownKeys();
  }
  // Dynamic (--join) servers run with the [node] settings, so they must be safe even
  // when every static server overrides them.
  {
    const toml::table* node = root["node"].as_table();
    const toml::table empty;
    TableReader reader(node != nullptr ? *node : empty, "node", problems);
    CheckRemoteAdmin(reader, config.node_defaults);
  }
  ReadServers(top.Get("server"), config, problems);
  const toml::node_view<const toml::node> cluster_node = std::as_const(root)["cluster"];
  const toml::node* frame_size_node = cluster_node["max_frame_size"].node();
  if (frame_size_node == nullptr) frame_size_node = cluster_node.node();
  ReadCaches(SubTable(top, "cache"), frame_size_node != nullptr ? LineOf(*frame_size_node) : 1,
             config, problems);
  ReadDeploy(SubTable(top, "deploy"), config, problems);
  for (auto&& [key, node] : root) {
    const std::string_view name = key.str();
    if (name != "cluster" && name != "node" && name != "server" && name != "cache" &&
        name != "deploy") {
      problems.Add(LineOf(node), name,
                   "unknown section (expected cluster, node, server, cache or deploy)");
    }
  }
  if (!problems.empty()) return problems.ToStatus();
  return config;
}

Result<ClusterConfig> LoadClusterConfig(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound(path + ": cannot open the cluster file");
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) return Status::IoError(path + ": cannot read the cluster file");
  return ParseClusterConfig(text.str(), path);
}

}  // namespace cb
