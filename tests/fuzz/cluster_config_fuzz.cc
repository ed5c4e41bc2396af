// libFuzzer target: the cluster file parser (shared/cluster_config.h) on arbitrary
// text. The input is the whole file.
//
// Invariants (a violation traps): parsing never throws; an error lists problems,
// each line "fuzz.toml:<line>: ..." (or the "(N more problems)" line); a model that
// parses satisfies every rule cluster_config.h promises: 1..64 servers in index
// order with valid, unique ids and addresses, weights in range, sane heartbeat and
// frame settings, caches sorted with "session" and "default" present and every
// entry fitting into a frame, a valid deploy section.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "shared/cluster_config.h"
#include "shared/route_codec.h"
#include "shared/status.h"

namespace {

#define FUZZ_CHECK(condition)           \
  do {                                  \
    if (!(condition)) __builtin_trap(); \
  } while (0)

constexpr std::string_view kSource = "fuzz.toml";

bool IsValidName(std::string_view name, std::size_t max_length) {
  if (name.empty() || name.size() > max_length) return false;
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

void CheckAddress(const cb::HostPort& address) {
  FUZZ_CHECK(address.port != 0);
  FUZZ_CHECK(!address.host.empty());
  FUZZ_CHECK(address.ToString().size() <= cb::kMaxAddressLength + 2);
}

void CheckError(const cb::Status& status) {
  FUZZ_CHECK(status.code() == cb::Status::Code::kInvalidArgument);
  const std::string& message = status.message();
  FUZZ_CHECK(!message.empty());
  const std::string prefix = std::string(kSource) + ":";
  // The first problem always names the file and a line.
  FUZZ_CHECK(message.compare(0, prefix.size(), prefix) == 0);
}

void CheckConfig(const cb::ClusterConfig& config) {
  FUZZ_CHECK(config.source == kSource);
  FUZZ_CHECK(IsValidName(config.name, cb::kMaxIdLength));
  FUZZ_CHECK(!config.key_file.empty());
  FUZZ_CHECK(config.heartbeat_interval.count() >= 10);
  FUZZ_CHECK(config.heartbeat_timeout > config.heartbeat_interval);
  FUZZ_CHECK(config.dynamic_server_timeout >= config.heartbeat_timeout);
  FUZZ_CHECK(config.slow_start.count() >= 0 && config.slow_start.count() <= 24 * 60 * 60 * 1000);
  FUZZ_CHECK(config.max_frame_bytes >= 64 * 1024 && config.max_frame_bytes <= (uint64_t{1} << 30));
  FUZZ_CHECK(!config.node_defaults.data_dir.empty());
  CheckAddress(config.node_defaults.admin_listen);
  CheckAddress(config.node_defaults.memcached_listen);

  FUZZ_CHECK(!config.servers.empty());
  FUZZ_CHECK(config.servers.size() <= static_cast<std::size_t>(cb::kMaxServers));
  std::set<std::string, std::less<>> ids;
  std::set<std::string, std::less<>> addresses;
  for (std::size_t i = 0; i < config.servers.size(); ++i) {
    const cb::ServerConfig& server = config.servers[i];
    FUZZ_CHECK(server.index == static_cast<int>(i));
    FUZZ_CHECK(server.is_triad() == (i < 3));
    FUZZ_CHECK(IsValidName(server.id, cb::kMaxIdLength));
    FUZZ_CHECK(ids.insert(server.id).second);
    FUZZ_CHECK(config.FindServer(server.id) == &server);
    FUZZ_CHECK(server.line >= 1);
    FUZZ_CHECK(server.weight <= 1'000'000);
    CheckAddress(server.cluster_address);
    CheckAddress(server.http_address);
    FUZZ_CHECK(addresses.insert(server.cluster_address.ToString()).second);
    FUZZ_CHECK(addresses.insert(server.http_address.ToString()).second);
    FUZZ_CHECK(!server.node.data_dir.empty());
    CheckAddress(server.node.admin_listen);
    CheckAddress(server.node.memcached_listen);
  }

  FUZZ_CHECK(config.FindCache(cb::kSessionCache) != nullptr);
  FUZZ_CHECK(config.FindCache(cb::kDefaultCache) != nullptr);
  for (std::size_t i = 0; i < config.caches.size(); ++i) {
    const cb::CacheConfig& cache = config.caches[i];
    if (i > 0) FUZZ_CHECK(config.caches[i - 1].name < cache.name);
    FUZZ_CHECK(IsValidName(cache.name, cb::kMaxCacheNameLength));
    FUZZ_CHECK(cache.name.find('.') == std::string::npos);
    FUZZ_CHECK(config.FindCache(cache.name) == &cache);
    FUZZ_CHECK(cache.idle_timeout.count() == 0 || cache.ttl.count() == 0);
    FUZZ_CHECK(cache.idle_timeout.count() >= 0 && cache.ttl.count() >= 0);
    // An entry of the largest allowed size, with room for its framing, fits a frame.
    FUZZ_CHECK(cache.max_entry_bytes >= 1);
    FUZZ_CHECK(cache.max_entry_bytes <= config.max_frame_bytes);
    FUZZ_CHECK(config.max_frame_bytes - cache.max_entry_bytes >= 64 * 1024);
  }

  FUZZ_CHECK(IsValidName(config.deploy.stage, cb::kMaxIdLength));
  FUZZ_CHECK(IsValidName(config.deploy.host, cb::kMaxIdLength));
  FUZZ_CHECK(config.deploy.keep_versions >= 1 && config.deploy.keep_versions <= 100);

  (void)config.ResolvePath(config.key_file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cb::Result<cb::ClusterConfig> parsed = cb::ParseClusterConfig(text, kSource);
  if (!parsed.ok()) {
    CheckError(parsed.status());
    return 0;
  }
  CheckConfig(*parsed);
  return 0;
}
