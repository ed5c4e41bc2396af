// clusterctl: the operator's command line. Glue only: parses arguments, calls the
// core library, prints reports.cc's renderings. Exit status: 0 success, 1 the input
// (a cluster file, a view file) is bad or unreadable, other non-zero values are
// usage errors as CLI11 reports them.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>

#include "shared/cluster_config.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/view_file.h"
#include "sidecar/clusterctl/admin_client.h"
#include "sidecar/clusterctl/cache_client.h"
#include "sidecar/clusterctl/passwd_command.h"
#include "sidecar/clusterctl/reports.h"

namespace {

constexpr int kBadInput = 1;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Fail(const cb::Status& status) {
  std::cerr << "clusterctl: " << status.message() << "\n";
  return kBadInput;
}

int CheckConfig(const std::string& path) {
  cb::Result<cb::ClusterConfig> config = cb::LoadClusterConfig(path);
  if (!config.ok()) return Fail(config.status());
  std::cout << cb::RenderConfigReport(*config);
  return 0;
}

cb::Result<cb::ClusterView> ReadView(const std::string& path) {
  cb::Result<std::unique_ptr<cb::ViewReader>> reader = cb::ViewReader::Open(path);
  if (!reader.ok()) return reader.status();
  cb::Result<const cb::ClusterView*> view = (*reader)->Current();
  if (!view.ok()) return view.status();
  return **view;
}

int ShowView(const std::string& path) {
  cb::Result<cb::ClusterView> view = ReadView(path);
  if (!view.ok()) return Fail(view.status());
  std::cout << cb::RenderViewTable(*view, NowUnixMs());
  return 0;
}

struct RouteArguments {
  std::string view_path;
  std::string cookie_header;
  std::string request_path;
  std::string cookie_name{cb::kDefaultSessionCookie};
};

int Route(const RouteArguments& arguments) {
  cb::Result<cb::ClusterView> view = ReadView(arguments.view_path);
  if (!view.ok()) return Fail(view.status());
  std::string_view session =
      cb::SessionIdFromCookieHeader(arguments.cookie_header, arguments.cookie_name);
  if (session.empty()) session = cb::SessionIdFromPath(arguments.request_path);

  cb::RouteRequest request;
  request.session_id = session;
  request.now_unix_ms = NowUnixMs();
  request.random = std::random_device{}();
  const cb::RouteChoice choice = cb::ChooseServer(*view, request);

  std::cout << "session: " << (session.empty() ? "(none)" : std::string(session)) << "\n";
  switch (choice.reason) {
    case cb::RouteReason::kSticky:
      std::cout << "sticky to ";
      break;
    case cb::RouteReason::kBackup:
      std::cout << "its own server is down, excluded or unknown; backup ";
      break;
    case cb::RouteReason::kBalanced:
      std::cout << "no session; balanced (random among up servers) to ";
      break;
    case cb::RouteReason::kNoServer:
      std::cout << "no eligible server: the module falls back to its configured servers\n";
      return 0;
  }
  const cb::ViewServer& server = view->server(choice.index);
  std::cout << server.id_view() << " (index " << choice.index << ", route "
            << cb::RouteCharForIndex(choice.index) << ", " << server.http_address_view() << ")\n";
  return 0;
}

// The admin endpoint named on the command line.
cb::Result<cb::HostPort> AdminAddress(const std::string& text) {
  cb::Result<cb::HostPort> address = cb::ParseHostPort(text);
  if (!address.ok()) return cb::Status::InvalidArgument("--admin: " + address.status().message());
  return address;
}

int ShowStatus(const std::string& admin) {
  cb::Result<cb::HostPort> address = AdminAddress(admin);
  if (!address.ok()) return Fail(address.status());
  cb::Result<cb::AdminReply> reply = cb::CallAdmin(*address, "GET", "/status");
  if (!reply.ok()) return Fail(reply.status());
  const nlohmann::json status = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 200 || status.is_discarded()) {
    return Fail(cb::Status::IoError("admin " + admin + ": GET /status answered " +
                                    std::to_string(reply->status)));
  }
  std::cout << cb::RenderStatusTable(status, NowUnixMs());
  return 0;
}

int SetDraining(const std::string& admin, const std::string& server_id, bool draining) {
  cb::Result<cb::HostPort> address = AdminAddress(admin);
  if (!address.ok()) return Fail(address.status());
  const std::string target = "/servers/" + server_id + (draining ? "/drain" : "/enable");
  cb::Result<cb::AdminReply> reply = cb::CallAdmin(*address, "POST", target);
  if (!reply.ok()) return Fail(reply.status());
  if (reply->status != 200) {
    const nlohmann::json error = nlohmann::json::parse(reply->body, nullptr, false);
    const std::string why =
        error.is_object() && error.contains("error") && error["error"].is_string()
            ? error["error"].get<std::string>()
            : "HTTP " + std::to_string(reply->status);
    return Fail(cb::Status::InvalidArgument(server_id + ": " + why));
  }
  std::cout << server_id << ": " << (draining ? "draining" : "enabled") << "\n";
  return 0;
}

struct CacheArguments {
  std::string memcached = "127.0.0.1:11211";
  std::string cache;
  std::string key;
  std::string value;
  int64_t ttl_seconds = 0;
};

int CacheCommand(cb::CacheVerb verb, const CacheArguments& arguments) {
  cb::Result<cb::HostPort> address = cb::ParseHostPort(arguments.memcached);
  if (!address.ok()) {
    return Fail(cb::Status::InvalidArgument("--memcached: " + address.status().message()));
  }
  cb::Result<std::string> request = cb::BuildCacheRequest(verb, arguments.cache, arguments.key,
                                                          arguments.value, arguments.ttl_seconds);
  if (!request.ok()) return Fail(request.status());
  cb::Result<std::string> reply = cb::CallMemcache(*address, verb, *request);
  if (!reply.ok()) return Fail(reply.status());
  cb::Result<std::optional<std::string>> answer = cb::ParseCacheReply(verb, *reply);
  if (!answer.ok()) return Fail(answer.status());
  if (verb == cb::CacheVerb::kGet) {
    if (!answer->has_value()) return Fail(cb::Status::NotFound("no such key"));
    std::cout << **answer;
  } else {
    std::cout << (verb == cb::CacheVerb::kSet ? "stored" : "deleted") << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clusterctl: inspect and operate a cluster-balance cluster"};
  app.require_subcommand(1);

  std::string config_path;
  CLI::App* check = app.add_subcommand(
      "check-config", "Validate a cluster file and print its servers, caches and digest");
  check->add_option("file", config_path, "the cluster file (TOML)")->required();

  std::string view_path;
  CLI::App* view = app.add_subcommand("view", "Print the cluster view a sidecar published");
  view->add_option("file", view_path, "the view file")->required();

  RouteArguments route_arguments;
  CLI::App* route = app.add_subcommand(
      "route", "Show which server a request goes to, as the nginx and httpd modules decide");
  route->add_option("--view", route_arguments.view_path, "the view file")->required();
  route->add_option("--cookie", route_arguments.cookie_header,
                    "the request's Cookie header, e.g. 'JSESSIONID=Cabc'");
  route->add_option("--path", route_arguments.request_path,
                    "the request path, e.g. '/cart;jsessionid=Cabc'");
  route->add_option("--cookie-name", route_arguments.cookie_name, "the session cookie's name")
      ->capture_default_str();

  std::string admin = "127.0.0.1:6880";
  app.add_option("--admin", admin, "a sidecar's admin address (for status, drain, enable)")
      ->capture_default_str();
  CLI::App* status = app.add_subcommand("status", "Print the view of a running sidecar");
  std::string server_id;
  CLI::App* drain = app.add_subcommand(
      "drain", "Stop sending new sessions to a server; its existing sessions stay");
  drain->add_option("id", server_id, "the server's id")->required();
  CLI::App* enable = app.add_subcommand("enable", "Let a drained server take new sessions again");
  enable->add_option("id", server_id, "the server's id")->required();

  CacheArguments cache_arguments;
  CLI::App* cache = app.add_subcommand(
      "cache", "Read or write one key of a named cache through a sidecar's memcached port");
  cache->require_subcommand(1);
  cache->add_option("--memcached", cache_arguments.memcached, "the sidecar's memcached address")
      ->capture_default_str();
  CLI::App* cache_get = cache->add_subcommand("get", "Print a key's value (exit 1 on a miss)");
  CLI::App* cache_set =
      cache->add_subcommand("set", "Store a value (replicated before it says so)");
  CLI::App* cache_delete = cache->add_subcommand("delete", "Delete a key");
  for (CLI::App* verb : {cache_get, cache_set, cache_delete}) {
    verb->add_option("cache", cache_arguments.cache, "the cache, e.g. session")->required();
    verb->add_option("key", cache_arguments.key, "the key within the cache")->required();
  }
  cache_set->add_option("value", cache_arguments.value, "the value")->required();
  cache_set->add_option("--ttl", cache_arguments.ttl_seconds,
                        "seconds to live (0: the cache's rule)");

  cb::PasswdArguments passwd_arguments;
  CLI::App* passwd = cb::AddPasswdSubcommand(app, passwd_arguments);

  CLI11_PARSE(app, argc, argv);
  if (passwd->parsed()) {
    return cb::RunPasswd(passwd_arguments.user, passwd_arguments.password_stdin, std::cin,
                         std::cout, std::cerr);
  }
  if (cache_get->parsed()) return CacheCommand(cb::CacheVerb::kGet, cache_arguments);
  if (cache_set->parsed()) return CacheCommand(cb::CacheVerb::kSet, cache_arguments);
  if (cache_delete->parsed()) return CacheCommand(cb::CacheVerb::kDelete, cache_arguments);
  if (status->parsed()) return ShowStatus(admin);
  if (drain->parsed()) return SetDraining(admin, server_id, true);
  if (enable->parsed()) return SetDraining(admin, server_id, false);
  if (check->parsed()) return CheckConfig(config_path);
  if (view->parsed()) return ShowView(view_path);
  return Route(route_arguments);
}
