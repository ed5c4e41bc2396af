#include "sidecar/memcache/info_replies.h"

#include <string_view>

#include "sidecar/memcache/version.h"

namespace cb::memcache {
namespace {

constexpr std::string_view kProduct = "cluster-balance-";

void AppendStat(std::string& out, std::string_view name, std::string_view value) {
  out += "STAT ";
  out += name;
  out += ' ';
  out += value;
  out += "\r\n";
}

std::string StatsLines(const ServerStats& stats) {
  std::string out;
  const auto number = [&out](std::string_view name, auto value) {
    AppendStat(out, name, std::to_string(value));
  };
  number("pid", stats.pid);
  number("uptime", stats.uptime_s);
  number("time", stats.unix_time_s);
  AppendStat(out, "version", std::string(kProduct) + std::string(kProjectVersion));
  number("curr_items", stats.curr_items);
  number("bytes", stats.bytes);
  number("cmd_get", stats.cmd_get);
  number("cmd_set", stats.cmd_set);
  number("get_hits", stats.get_hits);
  number("get_misses", stats.get_misses);
  out += "END\r\n";
  return out;
}

std::string StatsReply(const Request& request, const std::function<ServerStats()>& stats) {
  if (request.keys.empty()) return StatsLines(stats());
  if (request.keys.size() == 1) {
    const std::string& what = request.keys[0];
    if (what == "reset") return "RESET\r\n";
    if (what == "settings" || what == "items" || what == "slabs" || what == "sizes" ||
        what == "conns") {
      return "END\r\n";
    }
  }
  return "ERROR\r\n";
}

}  // namespace

std::string VersionReply() {
  return "VERSION " + std::string(kProduct) + std::string(kProjectVersion) + "\r\n";
}

bool IsInfoCommand(Command command) {
  return command == Command::kVersion || command == Command::kVerbosity ||
         command == Command::kStats;
}

std::string InfoReply(const Request& request, const std::function<ServerStats()>& stats) {
  switch (request.command) {
    case Command::kVersion:
      return VersionReply();
    case Command::kVerbosity:
      return request.noreply ? "" : "OK\r\n";
    case Command::kStats:
      return StatsReply(request, stats);
    default:
      return "ERROR\r\n";
  }
}

}  // namespace cb::memcache
