// cluster-sidecar: the daemon. Glue only: parses the command line, checks
// everything an operator can get wrong before it starts (each problem is one line
// and a non-zero exit), then runs Sidecar on a single-threaded io_context until
// SIGTERM or SIGINT. Under systemd (Type=notify) it reports READY=1 once its ports
// are bound and sends WATCHDOG=1 at half the watchdog interval.
//
// A dynamic server (--join) names itself on the command line. On its first start
// a Joiner gets it an index from the triad, kept in its data dir; every later
// start reuses that index. Should a triad server move it to another index, the
// Sidecar is stopped and started again at the new one, in this same process.
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "shared/cluster_config.h"
#include "sidecar/auth/cluster_key.h"
#include "sidecar/daemon/joiner.h"
#include "sidecar/daemon/node_state.h"
#include "sidecar/daemon/sidecar.h"
#include "sidecar/membership/admission.h"

namespace {

constexpr int kStartupError = 1;

int StartupError(const std::string& message) {
  std::cerr << "cluster-sidecar: " << message << "\n";
  return kStartupError;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Where the view goes when the cluster file does not say: /run/cluster-balance/
// (systemd's RuntimeDirectory) when writable, else the data dir.
std::string DefaultViewPath(const std::string& data_dir) {
  const char* run_dir = "/run/cluster-balance";
  if (access(run_dir, W_OK) == 0) return std::string(run_dir) + "/view";
  return data_dir + "/view";
}

// Sends WATCHDOG=1 every `interval` for as long as the io_context runs.
void KeepWatchdogFed(boost::asio::steady_timer& timer, std::chrono::microseconds interval) {
  sd_notify(0, "WATCHDOG=1");
  timer.expires_after(interval);
  timer.async_wait([&timer, interval](const boost::system::error_code& error) {
    if (!error) KeepWatchdogFed(timer, interval);
  });
}

constexpr const char* kLogPattern = "%Y-%m-%d %H:%M:%S.%e %^%l%$ %v";

// Sends the log to `path` (appending), replacing the current logger only once the
// file is open: after logrotate moved the old file away, SIGHUP lands here.
cb::Status OpenLogFile(const std::string& path) {
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
    auto logger = std::make_shared<spdlog::logger>("cluster-sidecar", std::move(sink));
    logger->set_pattern(kLogPattern);
    logger->set_level(spdlog::get_level());
    logger->flush_on(spdlog::level::trace);  // a few lines a minute: lose none in a crash
    spdlog::set_default_logger(std::move(logger));
    return cb::Status::Ok();
  } catch (const spdlog::spdlog_ex& error) {
    return cb::Status::IoError("log file " + path + ": " + error.what());
  }
}

// What the command line says about this server.
struct CommandLine {
  std::string config_path;
  std::string server_id;
  std::string view_path;
  bool verbose = false;
  std::string log_file;
  bool join = false;
  std::string cluster_address;
  std::string http_address;
  uint32_t weight = 100;
  std::string data_dir;
  std::string admin_listen;
  std::string memcached_listen;
};

// A dynamic server's ServerConfig from its command line; a one-line error naming
// the option at fault.
cb::Result<cb::ServerConfig> DynamicServer(const CommandLine& line,
                                           const cb::ClusterConfig& config) {
  if (config.FindServer(line.server_id) != nullptr) {
    return cb::Status::InvalidArgument("\"" + line.server_id + "\" is a static server of " +
                                       line.config_path + "; start it without --join");
  }
  if (!cb::IsValidServerId(line.server_id)) {
    return cb::Status::InvalidArgument("--server \"" + line.server_id + "\": 1.." +
                                       std::to_string(cb::kMaxIdLength) +
                                       " letters, digits, '.', '-', '_', starting with a letter "
                                       "or digit");
  }
  cb::ServerConfig self;
  self.index = -1;
  self.id = line.server_id;
  self.weight = line.weight;
  self.node = config.node_defaults;
  for (const auto& [option, text, target] :
       {std::tuple{"--cluster-address", &line.cluster_address, &self.cluster_address},
        std::tuple{"--http-address", &line.http_address, &self.http_address},
        std::tuple{"--admin-listen", &line.admin_listen, &self.node.admin_listen},
        std::tuple{"--memcached-listen", &line.memcached_listen, &self.node.memcached_listen}}) {
    if (text->empty()) continue;  // the two addresses are required by CLI11
    cb::Result<cb::HostPort> address = cb::ParseHostPort(*text);
    if (!address.ok()) {
      return cb::Status::InvalidArgument(std::string(option) + ": " + address.status().message());
    }
    *target = *address;
  }
  if (!line.data_dir.empty()) self.node.data_dir = line.data_dir;
  if (cb::Status checked =
          cb::membership::CheckJoinRequest(cb::membership::MakeJoinRequest(self, -1), config);
      !checked.ok()) {
    return checked;
  }
  return self;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cluster-sidecar: the cluster-balance daemon of one server"};
  CommandLine line;
  app.add_option("--config", line.config_path, "the cluster file (TOML)")->required();
  app.add_option("--server", line.server_id,
                 "this server's id: in the cluster file, or a new one with --join")
      ->required();
  app.add_option("--view-file", line.view_path, "where to publish the view (overrides the file)");
  app.add_flag("--verbose", line.verbose, "log connection attempts too");
  app.add_option("--log-file", line.log_file,
                 "append the log to this file instead of stderr; SIGHUP reopens it (logrotate)");
  CLI::Option* join =
      app.add_flag("--join", line.join,
                   "a dynamic server, not in the cluster file: the triad admits it at runtime");
  CLI::Option_group* dynamic = app.add_option_group("dynamic server (--join)");
  auto* cluster_address = dynamic->add_option("--cluster-address", line.cluster_address,
                                              "HOST:PORT of this sidecar's cluster port");
  auto* http_address =
      dynamic->add_option("--http-address", line.http_address, "HOST:PORT of the application");
  auto* weight = dynamic->add_option("--weight", line.weight, "share of new sessions (100)")
                     ->check(CLI::Range(0, static_cast<int>(cb::kMaxWeight)));
  auto* data_dir_option =
      dynamic->add_option("--data-dir", line.data_dir, "overrides [node] data_dir");
  auto* admin_listen =
      dynamic->add_option("--admin-listen", line.admin_listen, "overrides [node] admin_listen");
  auto* memcached_listen = dynamic->add_option("--memcached-listen", line.memcached_listen,
                                               "overrides [node] memcached_listen");
  for (CLI::Option* option :
       {cluster_address, http_address, weight, data_dir_option, admin_listen, memcached_listen}) {
    option->needs(join);
  }
  CLI11_PARSE(app, argc, argv);
  if (line.join && (line.cluster_address.empty() || line.http_address.empty())) {
    return StartupError("--join needs --cluster-address and --http-address");
  }

  if (!line.log_file.empty()) {
    if (cb::Status opened = OpenLogFile(line.log_file); !opened.ok()) {
      return StartupError(opened.message());
    }
  }
  spdlog::set_pattern(kLogPattern);
  if (line.verbose) spdlog::set_level(spdlog::level::debug);

  cb::Result<cb::ClusterConfig> config = cb::LoadClusterConfig(line.config_path);
  if (!config.ok()) return StartupError(config.status().message());
  cb::ServerConfig self;
  if (line.join) {
    cb::Result<cb::ServerConfig> dynamic_self = DynamicServer(line, *config);
    if (!dynamic_self.ok()) return StartupError(dynamic_self.status().message());
    self = std::move(dynamic_self).value();
  } else if (const cb::ServerConfig* found = config->FindServer(line.server_id)) {
    self = *found;
  } else {
    return StartupError("unknown server id \"" + line.server_id + "\": " + line.config_path +
                        " has no [[server]] with that id (a dynamic server starts with --join)");
  }
  const std::string data_dir = config->ResolvePath(self.node.data_dir);
  if (cb::Status prepared = cb::daemon::PrepareDataDir(data_dir); !prepared.ok()) {
    return StartupError(prepared.message());
  }
  cb::Result<cb::auth::ClusterKey> key =
      cb::auth::LoadClusterKey(config->ResolvePath(config->key_file));
  if (!key.ok()) return StartupError(key.status().message());
  cb::Result<uint64_t> incarnation = cb::daemon::NextIncarnation(data_dir, NowUnixMs());
  if (!incarnation.ok()) return StartupError(incarnation.status().message());
  int index = self.index;
  if (line.join) {
    cb::Result<int> joined = cb::daemon::LoadJoinedIndex(data_dir, config->name, self.id);
    if (!joined.ok()) return StartupError(joined.status().message());
    index = *joined;
    const int first_dynamic =
        cb::membership::FirstDynamicIndex(static_cast<int>(config->servers.size()));
    if (index >= 0 && index < first_dynamic) {
      // The cluster file gained static servers since: that index is one of theirs.
      spdlog::warn("index {} kept in {} now belongs to static server {}; asking for a new one",
                   index, data_dir, config->servers[static_cast<std::size_t>(index)].id);
      index = -1;
    }
  }

  std::string view_path = line.view_path;
  if (view_path.empty()) {
    view_path = self.node.view_file.empty() ? DefaultViewPath(data_dir)
                                            : config->ResolvePath(self.node.view_file);
  }

  boost::asio::io_context io(1);
  boost::asio::steady_timer watchdog(io);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  uint64_t watchdog_usec = 0;
  const bool watchdog_enabled = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  bool stopping = false;
  bool ready = false;
  int exit_code = 0;
  // Whatever runs now (the Joiner, then the Sidecar) stops through this.
  std::function<void()> stop_current;

  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int number) {
        if (error) return;
        if (number == SIGHUP) {
          if (line.log_file.empty()) {
            spdlog::info("SIGHUP: nothing to reopen, the log goes to stderr");
          } else if (cb::Status reopened = OpenLogFile(line.log_file); reopened.ok()) {
            spdlog::info("SIGHUP: log file reopened");
          } else {
            spdlog::error("SIGHUP: {}; still logging to the old file", reopened.message());
          }
          signals.async_wait(on_signal);
          return;
        }
        spdlog::info("{}: leaving the cluster", number == SIGTERM ? "SIGTERM" : "SIGINT");
        sd_notify(0, "STOPPING=1");
        stopping = true;
        if (stop_current) stop_current();
      };
  // Ends one run of the io_context: every pending operation finishes first.
  const auto end_run = [&] {
    watchdog.cancel();
    signals.cancel();
  };
  const auto arm = [&] {
    signals.async_wait(on_signal);
    if (watchdog_enabled) KeepWatchdogFed(watchdog, std::chrono::microseconds(watchdog_usec / 2));
  };

  while (!stopping) {
    if (index < 0) {
      // Ready already: waiting for the triad is the cluster's state, not a failed
      // start (a static server waits for its peers the same way), and a join may
      // take longer than systemd's start timeout.
      sd_notify(0, "READY=1\nSTATUS=asking the triad for an index");
      ready = true;
      cb::daemon::Joiner joiner(io, *config, self, *key, *incarnation, [&](int admitted) {
        if (cb::Status saved =
                cb::daemon::SaveJoinedIndex(data_dir, config->name, self.id, admitted);
            !saved.ok()) {
          // Without it the next start would ask again and take a second index.
          spdlog::error("{}", saved.message());
          stopping = true;
          exit_code = kStartupError;
        }
        index = admitted;
        end_run();
      });
      stop_current = [&] {
        joiner.Stop();
        end_run();
      };
      arm();
      joiner.Start();
      io.run();
      io.restart();
      stop_current = nullptr;
      if (stopping || index < 0) break;
    }

    cb::daemon::SidecarOptions options{*config,      self,     line.join, *key,
                                       *incarnation, data_dir, view_path, nullptr};
    options.self.index = index;
    std::optional<int> moved_to;
    options.on_index_moved = [&](int new_index) {
      moved_to = new_index;
      boost::asio::post(io, [&] { stop_current(); });
    };
    cb::Result<std::unique_ptr<cb::daemon::Sidecar>> sidecar =
        cb::daemon::Sidecar::Start(io, std::move(options));
    if (!sidecar.ok()) return StartupError(sidecar.status().message());
    stop_current = [&] {
      (*sidecar)->Stop();
      end_run();
    };
    arm();
    if (!ready) {
      sd_notify(0, "READY=1\nSTATUS=running");
      ready = true;
    }
    // Runs until Stop() has closed everything: every pending operation ends.
    io.run();
    io.restart();
    stop_current = nullptr;
    if (!moved_to) break;
    index = *moved_to;
    if (cb::Status saved = cb::daemon::SaveJoinedIndex(data_dir, config->name, self.id, index);
        !saved.ok()) {
      spdlog::error("{}", saved.message());
      exit_code = kStartupError;
      break;
    }
  }
  return exit_code;
}
