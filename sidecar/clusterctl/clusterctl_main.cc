// clusterctl: the operator's command line. Glue only: parses arguments, calls the
// core library, prints reports.cc's renderings. Exit status: 0 success, 1 the input
// (a cluster file, a view file) is bad or unreadable, other non-zero values are
// usage errors as CLI11 reports them.
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "shared/cluster_config.h"
#include "shared/config_values.h"
#include "shared/route_codec.h"
#include "shared/routing.h"
#include "shared/view_file.h"
#include "sidecar/clusterctl/admin_client.h"
#include "sidecar/clusterctl/cache_client.h"
#include "sidecar/clusterctl/deploy_command.h"
#include "sidecar/clusterctl/drain_wait.h"
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

// How to reach the admin endpoint: --admin, --ca-file, --user.
struct AdminArguments {
  std::string admin = "127.0.0.1:6880";
  std::string ca_file;
  std::string user;
};

cb::Result<cb::AdminAccess> Access(const AdminArguments& arguments) {
  return cb::MakeAdminAccess(arguments.admin, arguments.ca_file, arguments.user);
}

int ShowStatus(const AdminArguments& arguments) {
  cb::Result<cb::AdminAccess> access = Access(arguments);
  if (!access.ok()) return Fail(access.status());
  cb::Result<cb::AdminReply> reply =
      cb::CallAdmin(access->endpoint, "GET", "/status", access->Options(std::chrono::seconds(5)));
  if (!reply.ok()) return Fail(reply.status());
  if (reply->status != 200) {
    return Fail(cb::AdminReplyError(access->endpoint, "GET", "/status", *reply));
  }
  const nlohmann::json status = nlohmann::json::parse(reply->body, nullptr, false);
  if (status.is_discarded()) {
    return Fail(cb::Status::IoError("admin " + access->endpoint.ToString() +
                                    ": GET /status answered with something not JSON"));
  }
  std::cout << cb::RenderStatusTable(status, NowUnixMs());
  return 0;
}

int SetDraining(const AdminArguments& arguments, const std::string& server_id, bool draining) {
  cb::Result<cb::AdminAccess> access = Access(arguments);
  if (!access.ok()) return Fail(access.status());
  const std::string target = "/servers/" + server_id + (draining ? "/drain" : "/enable");
  cb::Result<cb::AdminReply> reply =
      cb::CallAdmin(access->endpoint, "POST", target, access->Options(std::chrono::seconds(5)));
  if (!reply.ok()) return Fail(reply.status());
  if (reply->status == 401 || reply->status == 429) {
    return Fail(cb::AdminReplyError(access->endpoint, "POST", target, *reply));
  }
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

// `drain --wait`: the drain, then the wait until no live session is left.
int DrainAndWait(const AdminArguments& arguments, const std::string& server_id,
                 const std::string& timeout_text) {
  cb::Result<std::chrono::milliseconds> timeout = cb::ParseDuration(timeout_text);
  if (!timeout.ok())
    return Fail(cb::Status::InvalidArgument("--timeout: " + timeout.status().message()));
  cb::Result<cb::AdminAccess> access = Access(arguments);
  if (!access.ok()) return Fail(access.status());
  if (int drained = SetDraining(arguments, server_id, true); drained != 0) return drained;
  cb::DrainWaitHooks hooks;
  hooks.fetch_status = [&]() -> cb::Result<nlohmann::json> {
    cb::Result<cb::AdminReply> reply =
        cb::CallAdmin(access->endpoint, "GET", "/status", access->Options(std::chrono::seconds(5)));
    if (!reply.ok()) return reply.status();
    if (reply->status != 200) {
      return cb::AdminReplyError(access->endpoint, "GET", "/status", *reply);
    }
    nlohmann::json status = nlohmann::json::parse(reply->body, nullptr, false);
    if (status.is_discarded()) return cb::Status::IoError("GET /status: not JSON");
    return status;
  };
  hooks.now = [] { return std::chrono::steady_clock::now(); };
  hooks.sleep = [](std::chrono::milliseconds step) { std::this_thread::sleep_for(step); };
  return cb::WaitForDrain(server_id, *timeout, std::chrono::milliseconds(100), hooks, std::cout,
                          std::cerr);
}

// The deployment commands' options as typed, before they are checked.
struct DeployCommandLine {
  cb::DeployArguments deploy;
  cb::RollbackArguments rollback;
  std::string webapp_filter;  // deployments --webapp
  std::string timeout = "120s";
  std::string max_size;
  uint64_t max_files = 0;
  std::string config_path;
  bool json = false;
};

// Fills in what the deploy and rollback commands share: the wait, the output mode,
// the limits (from --max-size/--max-files, else the cluster file, else the
// defaults) and the author.
cb::Status FinishDeployArguments(DeployCommandLine& line) {
  cb::Result<std::chrono::milliseconds> timeout = cb::ParseDuration(line.timeout);
  if (!timeout.ok()) return cb::Status::InvalidArgument("--timeout: " + timeout.status().message());
  cb::FollowOptions follow;
  follow.timeout = *timeout;
  follow.live = !line.json && isatty(STDOUT_FILENO) == 1;
  line.deploy.follow = follow;
  line.rollback.follow = follow;
  if (!line.config_path.empty()) {
    cb::Result<cb::ClusterConfig> config = cb::LoadClusterConfig(line.config_path);
    if (!config.ok()) return config.status();
    line.deploy.limits.max_bytes = config->deploy.max_bytes;
    line.deploy.limits.max_files = config->deploy.max_files;
  }
  if (!line.max_size.empty()) {
    cb::Result<uint64_t> bytes = cb::ParseByteSize(line.max_size);
    if (!bytes.ok()) return cb::Status::InvalidArgument("--max-size: " + bytes.status().message());
    line.deploy.limits.max_bytes = *bytes;
  }
  if (line.max_files > 0) line.deploy.limits.max_files = line.max_files;
  if (line.deploy.author.empty()) line.deploy.author = cb::DefaultAuthor();
  if (line.rollback.author.empty()) line.rollback.author = cb::DefaultAuthor();
  return cb::Status::Ok();
}

int DeployCommand(const AdminArguments& admin, DeployCommandLine& line, bool rollback) {
  if (cb::Status finished = FinishDeployArguments(line); !finished.ok()) return Fail(finished);
  cb::Result<cb::AdminAccess> access = Access(admin);
  if (!access.ok()) return Fail(access.status());
  return rollback ? cb::RunRollback(*access, line.rollback, std::cout, std::cerr)
                  : cb::RunDeploy(*access, line.deploy, std::cout, std::cerr);
}

int DeploymentsCommand(const AdminArguments& admin, const DeployCommandLine& line) {
  cb::Result<cb::AdminAccess> access = Access(admin);
  if (!access.ok()) return Fail(access.status());
  return cb::ShowDeployments(*access, line.webapp_filter, line.json, std::cout, std::cerr);
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

  AdminArguments admin;
  app.add_option("--admin", admin.admin,
                 "a sidecar's admin endpoint: host:port or http://host:port, or "
                 "https://host:port for TLS")
      ->capture_default_str();
  app.add_option("--ca-file", admin.ca_file,
                 "TLS: trust the CAs in this PEM file instead of the system's");
  app.add_option("--user", admin.user,
                 "authenticate as this admin user (password from CLUSTERCTL_PASSWORD or asked)");
  CLI::App* status = app.add_subcommand("status", "Print the view of a running sidecar");
  std::string server_id;
  CLI::App* drain = app.add_subcommand(
      "drain", "Stop sending new sessions to a server; its existing sessions stay");
  drain->add_option("id", server_id, "the server's id")->required();
  bool drain_wait = false;
  std::string drain_timeout = "1h";
  drain->add_flag("--wait", drain_wait,
                  "then wait until it holds no live session (exit 2 if the timeout passes first)");
  drain->add_option("--timeout", drain_timeout, "with --wait: how long to wait at most")
      ->capture_default_str();
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

  DeployCommandLine deploy_line;
  CLI::App* deploy = app.add_subcommand(
      "deploy",
      "Store a directory or archive as a webapp's new version and wait until every "
      "server runs it (exit 2 if some do not)");
  deploy
      ->add_option("source", deploy_line.deploy.source,
                   "a directory, or a .tar, .tar.gz, .tgz, .zip, .war or .jar file")
      ->required();
  deploy->add_option("--webapp", deploy_line.deploy.webapp, "the webapp's name")->required();
  deploy->add_option("--stage", deploy_line.deploy.stage,
                     "the stage (default: the sidecar's, production)");
  deploy->add_option("--host", deploy_line.deploy.host,
                     "the virtual host (default: the sidecar's, default)");
  deploy->add_option("--version", deploy_line.deploy.version,
                     "a version name for the tag, e.g. 1.2");
  deploy->add_option("--message", deploy_line.deploy.message, "the commit message");
  deploy->add_option("--author", deploy_line.deploy.author, "the author (default: $USER@hostname)");
  deploy->add_option("--max-size", deploy_line.max_size,
                     "refuse a tree larger than this, e.g. 512MiB (default: the cluster file's "
                     "with --config, else 512MiB)");
  deploy->add_option("--max-files", deploy_line.max_files,
                     "refuse a tree with more files (default: the cluster file's, else 100000)");
  deploy->add_option("--config", deploy_line.config_path,
                     "the cluster file, for its deploy limits");
  CLI::App* rollback = app.add_subcommand(
      "rollback", "Make an older version of a webapp current everywhere and wait for it");
  rollback->add_option("--webapp", deploy_line.rollback.webapp, "the webapp's name")->required();
  rollback->add_option("--to", deploy_line.rollback.to, "a version or a commit")->required();
  rollback->add_option("--stage", deploy_line.rollback.stage, "the stage");
  rollback->add_option("--host", deploy_line.rollback.host, "the virtual host");
  rollback->add_option("--author", deploy_line.rollback.author,
                       "the author (default: $USER@hostname)");
  for (CLI::App* command : {deploy, rollback}) {
    command->add_flag("--json", deploy_line.json, "one JSON event per line, even on a terminal");
    command->add_option("--timeout", deploy_line.timeout, "how long to wait for every server")
        ->capture_default_str();
  }
  CLI::App* deployments =
      app.add_subcommand("deployments", "List the stored versions of each webapp");
  deployments->add_option("--webapp", deploy_line.webapp_filter, "only this webapp");
  deployments->add_flag("--json", deploy_line.json, "the sidecar's JSON answer");

  CLI11_PARSE(app, argc, argv);
  if (passwd->parsed()) {
    return cb::RunPasswd(passwd_arguments.user, passwd_arguments.password_stdin, std::cin,
                         std::cout, std::cerr);
  }
  if (deploy->parsed()) return DeployCommand(admin, deploy_line, false);
  if (rollback->parsed()) return DeployCommand(admin, deploy_line, true);
  if (deployments->parsed()) return DeploymentsCommand(admin, deploy_line);
  if (cache_get->parsed()) return CacheCommand(cb::CacheVerb::kGet, cache_arguments);
  if (cache_set->parsed()) return CacheCommand(cb::CacheVerb::kSet, cache_arguments);
  if (cache_delete->parsed()) return CacheCommand(cb::CacheVerb::kDelete, cache_arguments);
  if (status->parsed()) return ShowStatus(admin);
  if (drain->parsed()) {
    return drain_wait ? DrainAndWait(admin, server_id, drain_timeout)
                      : SetDraining(admin, server_id, true);
  }
  if (enable->parsed()) return SetDraining(admin, server_id, false);
  if (check->parsed()) return CheckConfig(config_path);
  if (view->parsed()) return ShowView(view_path);
  return Route(route_arguments);
}
