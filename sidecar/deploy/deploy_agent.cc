#include "sidecar/deploy/deploy_agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "sidecar/deploy/deploy_tree.h"
#include "sidecar/deploy/git_store.h"
#include "sidecar/deploy/live_tree.h"

namespace cb::deploy {
namespace {

constexpr std::string_view kTagsPrefix = "refs/tags/";
constexpr size_t kHistoryShown = 50;

std::string Short(std::string_view commit) { return std::string(commit.substr(0, 12)); }

DeployAnswer Error(unsigned status, const std::string& message) {
  return DeployAnswer{status, nlohmann::json{{"error", message}}};
}

unsigned HttpStatusOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kTooLarge:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    default:
      return 503;
  }
}

// "stage/webapp/host/name" → its parts; nullopt for a name of another shape.
struct NameParts {
  std::string stage, host, webapp;
};
std::optional<NameParts> SplitName(std::string_view name) {
  std::vector<std::string> parts;
  std::stringstream in{std::string(name)};
  for (std::string part; std::getline(in, part, '/');) parts.push_back(part);
  if (parts.size() != 4 || parts[1] != "webapp") return std::nullopt;
  return NameParts{parts[0], parts[2], parts[3]};
}

// "name <email>", "user@host" or "user" → a Git signature's name and email.
std::pair<std::string, std::string> SignatureOf(std::string_view author) {
  std::string text(author.empty() ? "clusterctl" : author);
  const size_t open = text.find('<');
  const size_t close = text.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    std::string name = text.substr(0, open);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    return {name.empty() ? "clusterctl" : name, text.substr(open + 1, close - open - 1)};
  }
  return {text, text.find('@') != std::string::npos ? text : text + "@cluster"};
}

bool IsHexPrefix(std::string_view text) {
  return text.size() >= 4 && text.size() <= 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

struct DeployAgent::State : std::enable_shared_from_this<DeployAgent::State> {
  State(boost::asio::io_context& io_context, DeployAgentOptions agent_options,
        DeployLink& peer_link)
      : io(io_context),
        options(std::move(agent_options)),
        link(peer_link),
        worker(1),
        pump_timer(io_context) {}

  using MakeChunk =
      std::function<protocol::Message(uint64_t total, uint64_t offset, std::string chunk)>;

  // What this server knows of one deployment.
  struct App {
    std::string live;           // the commit live in its deploy root ("" none / not ours)
    std::string error;          // why the last try to reach the target failed
    std::string failed_commit;  // the target that try was for: not retried until it changes
    std::string stored;         // the target commit whose objects and refs are here
    bool busy = false;          // a step on the worker or a fetch in flight
    uint64_t fetch_id = 0;
    int fetch_from = -1;
    std::string fetched;                          // the pack arriving from fetch_from
    ServerSet refused_by;                         // triad servers that lacked the target commit
    bool waiting = false;                         // no triad server to fetch from: retried on Tick
    std::chrono::steady_clock::time_point heard;  // the fetch asked, or its latest chunk
  };

  struct Incoming {
    protocol::DeploymentTarget target;
    std::string pack;
  };

  struct Outgoing {
    int index = -1;
    std::string pack;
    size_t offset = 0;
    MakeChunk make;
  };

  struct Pending {
    protocol::DeploymentTarget target;
    std::string pack;
    ServerSet waiting_for;
    std::vector<std::string> stored_on;
    nlohmann::json body;
    DeployReply reply;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  // Runs `work` on the worker thread and `done` with its result on the io thread,
  // unless the agent stopped meanwhile.
  template <typename Work, typename Done>
  void OnWorker(Work work, Done done) {
    boost::asio::post(worker, [self = shared_from_this(), work = std::move(work),
                               done = std::move(done)]() mutable {
      auto result = work(*self->worker_store);
      boost::asio::post(self->io,
                        [self, result = std::move(result), done = std::move(done)]() mutable {
                          if (!self->stopped) done(std::move(result));
                        });
    });
  }

  bool Ours(std::string_view name) const {
    const std::optional<NameParts> parts = SplitName(name);
    return parts && parts->stage == options.config.stage && parts->host == options.config.host;
  }

  std::string WebappDirectory(std::string_view name) const {
    return options.deploy_root + "/" + SplitName(name)->webapp;
  }

  void Report() {
    std::vector<protocol::DeployedApp> deployed;
    for (const auto& [name, app] : apps) {
      if (!Ours(name) || (app.live.empty() && app.error.empty())) continue;
      deployed.push_back({name, app.live, app.error});
    }
    link.ReportDeployed(std::move(deployed));
  }

  void SaveTargets() {
    nlohmann::json json = nlohmann::json::array();
    for (const auto& [name, target] : link.Targets()) {
      json.push_back({{"name", target.name},
                      {"commit", target.commit},
                      {"version", target.version},
                      {"label", target.label}});
    }
    const std::string text = json.dump();
    if (text == saved_targets) return;
    const std::string path = options.repository + "/cluster-targets.json";
    const std::string temporary = path + ".tmp";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << text;
      if (!out.flush()) {
        spdlog::error("deploy: cannot write {}", temporary);
        return;
      }
    }
    std::error_code error;
    std::filesystem::rename(temporary, path, error);
    if (error) {
      spdlog::error("deploy: cannot replace {}: {}", path, error.message());
      return;
    }
    saved_targets = text;
  }

  void LoadTargets() {
    std::ifstream in(options.repository + "/cluster-targets.json");
    if (!in) return;
    const nlohmann::json json = nlohmann::json::parse(in, nullptr, false);
    if (!json.is_array()) {
      spdlog::warn(
          "deploy: {}/cluster-targets.json is not a JSON array; ignored (the triad's view "
          "has the targets)",
          options.repository);
      return;
    }
    for (const nlohmann::json& entry : json) {
      protocol::DeploymentTarget target;
      try {
        target.name = entry.at("name").get<std::string>();
        target.commit = entry.at("commit").get<std::string>();
        target.version = entry.at("version").get<uint64_t>();
        target.label = entry.at("label").get<std::string>();
      } catch (const std::exception&) {
        continue;
      }
      link.AcceptTarget(target);
    }
  }

  void ConvergeAll() {
    for (const auto& [name, target] : link.Targets()) Converge(name);
  }

  // One step towards the target of `name`: check out what is here, or fetch it.
  void Converge(const std::string& name) {
    const auto found = link.Targets().find(name);
    if (found == link.Targets().end() || stopped) return;
    const protocol::DeploymentTarget target = found->second;
    App& app = apps[name];
    if (app.busy) return;
    const bool ours = Ours(name);
    if ((ours ? app.live : app.stored) == target.commit && app.stored == target.commit) return;
    if (app.failed_commit == target.commit) return;
    app.busy = true;
    app.waiting = false;
    struct Step {
      bool missing = false;
      std::vector<std::string> haves;
      std::string live;
      Status status;
    };
    const std::string webapp = ours ? SplitName(name)->webapp : "";
    const std::string directory = ours ? WebappDirectory(name) : "";
    const std::string command = ours && options.config.activate.count(webapp)
                                    ? options.config.activate.find(webapp)->second
                                    : "";
    const auto timeout = options.config.activate_timeout;
    const size_t keep = options.config.keep_versions;
    OnWorker(
        [target, ours, webapp, directory, command, timeout, keep](GitStore& store) {
          Step step;
          if (!store.HasCommit(target.commit)) {
            step.missing = true;
            if (auto refs = store.ListRefs(std::string(kTagsPrefix)); refs.ok()) {
              for (const auto& [ref, commit] : *refs) step.haves.push_back(commit);
              std::sort(step.haves.begin(), step.haves.end());
              step.haves.erase(std::unique(step.haves.begin(), step.haves.end()), step.haves.end());
            }
            return step;
          }
          step.status = store.SetRef(std::string(kTagsPrefix) + target.name, target.commit);
          if (step.status.ok() && !target.label.empty()) {
            step.status =
                store.SetRef(std::string(kTagsPrefix) + VersionTagName(target.name, target.label),
                             target.commit);
          }
          if (!step.status.ok() || !ours) return step;
          Result<LiveTree> tree = LiveTree::Open(directory);
          if (!tree.ok()) {
            step.status = tree.status();
            return step;
          }
          const std::optional<CommitId> previous = tree->Current();
          step.live = previous.value_or("");
          if (previous == target.commit) return step;
          if (Status prepared = tree->Prepare(store, target.commit); !prepared.ok()) {
            step.status = Status::IoError("check-out of " + Short(target.commit) +
                                          " failed: " + prepared.message());
            return step;
          }
          if (Status switched = tree->Switch(target.commit); !switched.ok()) {
            step.status = Status::IoError("switch to " + Short(target.commit) +
                                          " failed: " + switched.message());
            return step;
          }
          if (!command.empty()) {
            Status activated = RunActivation(command, tree->VersionDirectory(target.commit), webapp,
                                             target.commit, timeout);
            if (!activated.ok()) {
              std::string why =
                  "activation of " + Short(target.commit) + " failed: " + activated.message();
              if (previous && tree->Switch(*previous).ok()) {
                (void)RunActivation(command, tree->VersionDirectory(*previous), webapp, *previous,
                                    timeout);
                why += "; " + Short(*previous) + " is live again";
              } else {
                step.live = target.commit;  // nothing to go back to
              }
              step.status = Status::IoError(why);
              return step;
            }
          }
          step.live = target.commit;
          tree->Prune(keep);
          return step;
        },
        [self = shared_from_this(), name, target](Step step) {
          App& done = self->apps[name];
          done.busy = false;
          if (step.missing) {
            self->StartFetch(name, target.commit, std::move(step.haves));
            return;
          }
          const bool changed_live = done.live != step.live;
          done.live = step.live;
          if (step.status.ok()) {
            done.stored = target.commit;
            done.error.clear();
            done.failed_commit.clear();
            if (changed_live) {
              spdlog::info("deploy: {} is live at {}", name, Short(target.commit));
            }
          } else {
            done.error = step.status.message();
            done.failed_commit = target.commit;
            spdlog::error("deploy: {}: {}", name, done.error);
          }
          self->Report();
          self->Converge(name);  // the target may have moved on meanwhile
        });
  }

  void StartFetch(const std::string& name, const std::string& commit,
                  std::vector<std::string> haves) {
    App& app = apps[name];
    int from = -1;
    link.ConnectedTriad().Without(app.refused_by).ForEach([&](int index) {
      if (from < 0) from = index;
    });
    if (from < 0) {
      app.waiting = true;  // Tick tries again
      return;
    }
    app.busy = true;
    app.fetch_id = next_id++;
    app.fetch_from = from;
    app.fetched.clear();
    app.heard = std::chrono::steady_clock::now();
    (void)link.Send(from, protocol::DeployFetch{app.fetch_id, commit, std::move(haves)});
  }

  void FetchEnded(const std::string& name, int from, const std::string& why) {
    App& app = apps[name];
    app.busy = false;
    app.fetch_from = -1;
    app.fetched.clear();
    if (!why.empty()) {
      spdlog::warn("deploy: fetching {} from {}: {}", name, link.ServerId(from), why);
      app.refused_by.Add(from);
    }
    Converge(name);
  }

  void OnPack(int index, const protocol::DeployPack& pack) {
    for (auto& [name, app] : apps) {
      if (app.fetch_id != pack.id || app.fetch_from != index || !app.busy) continue;
      if (!pack.ok) {
        FetchEnded(name, index, pack.error);
        return;
      }
      if (pack.offset != app.fetched.size() || pack.total > MaxPackBytes() ||
          pack.offset + pack.chunk.size() > pack.total) {
        FetchEnded(name, index, "pack chunks out of order");
        return;
      }
      counters.pack_bytes_received += pack.chunk.size();
      app.fetched += pack.chunk;
      app.heard = std::chrono::steady_clock::now();
      if (app.fetched.size() < pack.total) return;
      std::string bytes = std::move(app.fetched);
      app.fetched.clear();
      const std::string key = name;
      OnWorker([bytes = std::move(bytes)](GitStore& store) { return store.AddPack(bytes); },
               [self = shared_from_this(), key, index](Status added) {
                 self->FetchEnded(key, index, added.ok() ? "" : added.message());
               });
      return;
    }
  }

  uint64_t MaxPackBytes() const { return options.config.max_bytes * 2 + (64u << 20); }

  // Queues `pack` for `index`; Pump() feeds it to the connection in chunks.
  void SendPack(int index, std::string pack, MakeChunk make) {
    outgoing.push_back(Outgoing{index, std::move(pack), 0, std::move(make)});
    Pump();
  }

  // Sends chunks while the connection's queue is short (at most two chunks), so
  // that a heartbeat queued meanwhile goes out within a chunk's write; polls again
  // shortly while anything is left. A transfer to a peer that went away is dropped.
  void Pump() {
    for (auto it = outgoing.begin(); it != outgoing.end();) {
      bool done = false;
      while (!done) {
        const std::optional<size_t> queued = link.QueuedBytes(it->index);
        if (!queued) {
          done = true;
          break;
        }
        if (*queued > 2 * options.chunk_bytes) break;
        const size_t size = std::min<size_t>(options.chunk_bytes, it->pack.size() - it->offset);
        if (!link.Send(it->index,
                       it->make(it->pack.size(), it->offset, it->pack.substr(it->offset, size)))) {
          done = true;
          break;
        }
        counters.pack_bytes_sent += size;
        it->offset += size;
        done = it->offset >= it->pack.size();
      }
      it = done ? outgoing.erase(it) : std::next(it);
    }
    if (outgoing.empty() || pump_scheduled || stopped) return;
    pump_scheduled = true;
    pump_timer.expires_after(std::chrono::milliseconds(2));
    pump_timer.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      self->pump_scheduled = false;
      if (!error && !self->stopped) self->Pump();
    });
  }

  void OnFetch(int index, const protocol::DeployFetch& fetch) {
    OnWorker(
        [fetch](GitStore& store) -> Result<std::string> {
          if (!store.HasCommit(fetch.commit)) {
            return Status::NotFound("this server does not have " + Short(fetch.commit));
          }
          return store.MakePack(fetch.commit, fetch.haves);
        },
        [self = shared_from_this(), index, id = fetch.id](Result<std::string> pack) {
          if (!pack.ok()) {
            protocol::DeployPack refusal;
            refusal.id = id;
            refusal.error = pack.status().message();
            (void)self->link.Send(index, refusal);
            return;
          }
          self->SendPack(index, *pack, [id](uint64_t total, uint64_t offset, std::string chunk) {
            return protocol::DeployPack{id, true, "", total, offset, std::move(chunk)};
          });
        });
  }

  void OnPush(int index, const protocol::DeployPush& push) {
    Incoming& incoming = pushes[{index, push.id}];
    if (push.offset == 0) incoming = Incoming{push.target, ""};
    if (push.offset != incoming.pack.size() || push.total > MaxPackBytes() ||
        push.offset + push.chunk.size() > push.total) {
      pushes.erase({index, push.id});
      (void)link.Send(index, protocol::DeployPushAck{push.id, false, false, "chunks out of order"});
      return;
    }
    counters.pack_bytes_received += push.chunk.size();
    incoming.pack += push.chunk;
    if (incoming.pack.size() < push.total) return;
    Incoming whole = std::move(incoming);
    pushes.erase({index, push.id});
    const protocol::DeploymentTarget target = whole.target;
    OnWorker(
        [pack = std::move(whole.pack), commit = target.commit](GitStore& store) -> Status {
          if (!pack.empty()) {
            if (Status added = store.AddPack(pack); !added.ok()) return added;
          }
          return store.HasCommit(commit) ? Status::Ok() : Status::NotFound("missing objects");
        },
        [self = shared_from_this(), index, id = push.id, target](Status stored) {
          protocol::DeployPushAck ack{id, stored.ok(), stored.code() == Status::Code::kNotFound,
                                      stored.ok() ? "" : stored.message()};
          if (stored.ok()) {
            spdlog::info("deploy: stored {} {} from {}", target.name, Short(target.commit),
                         self->link.ServerId(index));
            self->link.AcceptTarget(target);
          }
          (void)self->link.Send(index, ack);
        });
  }

  void OnPushAck(int index, const protocol::DeployPushAck& ack) {
    const auto found = pending.find(ack.id);
    if (found == pending.end() || !found->second.waiting_for.Contains(index)) return;
    Pending& deploy = found->second;
    if (!ack.ok && ack.missing_objects) {
      // The triad server missed an earlier version: the whole history this time.
      const uint64_t id = ack.id;
      OnWorker(
          [commit = deploy.target.commit](GitStore& store) { return store.MakePack(commit, {}); },
          [self = shared_from_this(), id, index](Result<std::string> pack) {
            const auto again = self->pending.find(id);
            if (again == self->pending.end()) return;
            if (!pack.ok()) {
              self->Acked(id, index, false);
              return;
            }
            const protocol::DeploymentTarget target = again->second.target;
            self->SendPack(
                index, *pack, [id, target](uint64_t total, uint64_t offset, std::string chunk) {
                  return protocol::DeployPush{id, target, total, offset, std::move(chunk)};
                });
          });
      return;
    }
    if (!ack.ok) {
      spdlog::warn("deploy: {} did not store {}: {}", link.ServerId(index), deploy.target.name,
                   ack.error);
    }
    Acked(ack.id, index, ack.ok);
  }

  void Acked(uint64_t id, int index, bool ok) {
    const auto found = pending.find(id);
    if (found == pending.end()) return;
    found->second.waiting_for.Remove(index);
    if (ok) found->second.stored_on.push_back(link.ServerId(index));
    if (found->second.waiting_for.empty()) Finish(id);
  }

  // Sends a new version to the triad and answers once it is stored.
  void Distribute(protocol::DeploymentTarget target, std::string pack, nlohmann::json body,
                  DeployReply reply) {
    const uint64_t id = next_id++;
    Pending& deploy = pending[id];
    deploy.target = std::move(target);
    deploy.body = std::move(body);
    deploy.reply = std::move(reply);
    if (options.self_is_triad) deploy.stored_on.push_back(link.ServerId(options.self_index));
    deploy.waiting_for = link.ConnectedTriad();
    deploy.waiting_for.ForEach([&](int index) {
      SendPack(index, pack,
               [id, target = deploy.target](uint64_t total, uint64_t offset, std::string chunk) {
                 return protocol::DeployPush{id, target, total, offset, std::move(chunk)};
               });
    });
    if (deploy.waiting_for.empty()) {
      Finish(id);
      return;
    }
    deploy.timer = std::make_unique<boost::asio::steady_timer>(io, options.push_timeout);
    deploy.timer->async_wait(
        [self = shared_from_this(), id](const boost::system::error_code& error) {
          if (!error && !self->stopped) self->Finish(id);
        });
  }

  void Finish(uint64_t id) {
    const auto found = pending.find(id);
    if (found == pending.end()) return;
    Pending deploy = std::move(found->second);
    pending.erase(found);
    if (deploy.timer) deploy.timer->cancel();
    if (deploy.stored_on.empty()) {
      deploy.reply(Error(503, "no triad server stored " + deploy.target.name + " " +
                                  Short(deploy.target.commit) +
                                  " (none reachable): nothing changed; deploy again"));
      return;
    }
    link.AcceptTarget(deploy.target);
    spdlog::info("deploy: {} is now {} (stored on {})", deploy.target.name,
                 Short(deploy.target.commit), nlohmann::json(deploy.stored_on).dump());
    deploy.body["stored_on"] = deploy.stored_on;
    deploy.reply(DeployAnswer{200, std::move(deploy.body)});
  }

  // Resolves stage and host defaults and checks the names that go into tags.
  Result<std::string> DeploymentNameOf(const std::string& webapp, const std::string& stage,
                                       const std::string& host) const {
    const std::string resolved_stage = stage.empty() ? options.config.stage : stage;
    const std::string resolved_host = host.empty() ? options.config.host : host;
    for (const auto& [what, value] :
         {std::pair{"webapp", webapp}, std::pair{"stage", resolved_stage},
          std::pair{"host", resolved_host}}) {
      if (!IsValidTagPart(value)) {
        return Status::InvalidArgument(std::string(what) + " \"" + value +
                                       "\": 1..63 of letters, digits, '.', '-', '_', not "
                                       "starting with '.' or '-'");
      }
    }
    return DeploymentName(resolved_stage, resolved_host, webapp);
  }

  std::string CurrentCommit(const std::string& name) const {
    const auto found = link.Targets().find(name);
    return found == link.Targets().end() ? "" : found->second.commit;
  }

  boost::asio::io_context& io;
  DeployAgentOptions options;
  DeployLink& link;
  std::unique_ptr<GitStore> worker_store;  // the worker thread's
  std::unique_ptr<GitStore> reader_store;  // the io thread's (reads only)
  boost::asio::thread_pool worker;
  bool stopped = false;
  DeployCounters counters;
  uint64_t next_id = 1;
  std::map<std::string, App, std::less<>> apps;
  std::map<std::pair<int, uint64_t>, Incoming> pushes;
  std::map<uint64_t, Pending> pending;
  std::deque<Outgoing> outgoing;
  boost::asio::steady_timer pump_timer;
  bool pump_scheduled = false;
  std::string saved_targets;
};

Result<std::unique_ptr<DeployAgent>> DeployAgent::Open(boost::asio::io_context& io,
                                                       DeployAgentOptions options,
                                                       DeployLink& link) {
  auto state = std::make_unique<State>(io, std::move(options), link);
  Result<std::unique_ptr<GitStore>> worker_store = GitStore::Open(state->options.repository);
  if (!worker_store.ok()) return Status::IoError("deploy: " + worker_store.status().message());
  state->worker_store = std::move(worker_store).value();
  Result<std::unique_ptr<GitStore>> reader_store = GitStore::Open(state->options.repository);
  if (!reader_store.ok()) return Status::IoError("deploy: " + reader_store.status().message());
  state->reader_store = std::move(reader_store).value();
  std::error_code error;
  std::filesystem::create_directories(state->options.deploy_root, error);
  if (error) {
    return Status::IoError("deploy root " + state->options.deploy_root + ": " + error.message());
  }
  // What is live from before this start: reported until the cluster says otherwise.
  for (const auto& entry : std::filesystem::directory_iterator(state->options.deploy_root, error)) {
    const std::string webapp = entry.path().filename().string();
    if (!entry.is_directory() || !IsValidTagPart(webapp)) continue;
    Result<LiveTree> tree = LiveTree::Open(entry.path().string());
    if (!tree.ok()) continue;
    if (std::optional<CommitId> live = tree->Current()) {
      const std::string name =
          DeploymentName(state->options.config.stage, state->options.config.host, webapp);
      state->apps[name].live = *live;
    }
  }
  return std::unique_ptr<DeployAgent>(new DeployAgent(std::move(state)));
}

DeployAgent::DeployAgent(std::unique_ptr<State> state)
    : state_(std::move(state)), counters_(state_->counters) {}

DeployAgent::~DeployAgent() { Stop(); }

void DeployAgent::Start() {
  state_->LoadTargets();
  state_->Report();
  state_->ConvergeAll();
}

void DeployAgent::Stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  for (auto& [id, deploy] : state_->pending) {
    if (deploy.timer) deploy.timer->cancel();
    deploy.reply(Error(503, "the sidecar is stopping"));
  }
  state_->pending.clear();
  state_->outgoing.clear();
  state_->pump_timer.cancel();
  state_->worker.join();
}

void DeployAgent::OnTargetsChanged() {
  if (state_->stopped) return;
  state_->SaveTargets();
  for (auto& [name, app] : state_->apps) {
    // A new target gets a fresh chance everywhere.
    const std::string current = state_->CurrentCommit(name);
    if (!app.failed_commit.empty() && app.failed_commit != current) app.failed_commit.clear();
  }
  state_->ConvergeAll();
}

void DeployAgent::OnPeerMessage(int index, const protocol::Message& message) {
  if (state_->stopped) return;
  if (const auto* push = std::get_if<protocol::DeployPush>(&message)) {
    state_->OnPush(index, *push);
  } else if (const auto* ack = std::get_if<protocol::DeployPushAck>(&message)) {
    state_->OnPushAck(index, *ack);
  } else if (const auto* fetch = std::get_if<protocol::DeployFetch>(&message)) {
    state_->OnFetch(index, *fetch);
  } else if (const auto* pack = std::get_if<protocol::DeployPack>(&message)) {
    state_->OnPack(index, *pack);
  }
}

void DeployAgent::OnPeerDown(int index) {
  if (state_->stopped) return;
  std::erase_if(state_->pushes, [index](const auto& entry) { return entry.first.first == index; });
  std::vector<uint64_t> waiting;
  for (auto& [id, deploy] : state_->pending) {
    if (deploy.waiting_for.Contains(index)) waiting.push_back(id);
  }
  for (uint64_t id : waiting) state_->Acked(id, index, false);
  std::vector<std::string> fetching;
  for (auto& [name, app] : state_->apps) {
    if (app.busy && app.fetch_from == index) fetching.push_back(name);
  }
  for (const std::string& name : fetching) state_->FetchEnded(name, index, "");
}

void DeployAgent::Tick() {
  if (state_->stopped) return;
  // A fetch whose server went quiet (it answers, then feeds chunks steadily) is
  // asked of another.
  const auto quiet_since = std::chrono::steady_clock::now() - state_->options.push_timeout;
  std::vector<std::pair<std::string, int>> quiet;
  for (const auto& [name, app] : state_->apps) {
    if (app.busy && app.fetch_from >= 0 && app.heard < quiet_since) {
      quiet.emplace_back(name, app.fetch_from);
    }
  }
  for (const auto& [name, from] : quiet) state_->FetchEnded(name, from, "no answer in time");
  bool retry = false;
  for (auto& [name, app] : state_->apps) {
    if (app.waiting) {
      app.refused_by = ServerSet();
      retry = true;
    }
  }
  if (retry) state_->ConvergeAll();
  state_->SaveTargets();
}

void DeployAgent::Deploy(DeployOrder order, DeployReply reply) {
  State& state = *state_;
  if (state.stopped) return reply(Error(503, "the sidecar is stopping"));
  Result<std::string> name = state.DeploymentNameOf(order.webapp, order.stage, order.host);
  if (!name.ok()) return reply(Error(400, name.status().message()));
  if (!order.version.empty() && !IsValidTagPart(order.version)) {
    return reply(
        Error(400, "version \"" + order.version + "\": 1..63 of letters, digits, '.', '-', '_'"));
  }
  const std::string parent = state.CurrentCommit(*name);
  const std::pair<std::string, std::string> signature = SignatureOf(order.author);
  const std::string& author_name = signature.first;
  const std::string& author_email = signature.second;
  const std::string message =
      order.message.empty()
          ? "deploy " + order.webapp + (order.version.empty() ? "" : " " + order.version)
          : order.message;
  TreeLimits limits;
  limits.max_bytes = state.options.config.max_bytes;
  limits.max_files = state.options.config.max_files;
  struct Made {
    Status status;
    unsigned http = 200;
    CommitResult commit;
    std::string pack;
    uint64_t files = 0, bytes = 0;
  };
  state.OnWorker(
      [archive = std::move(order.archive), limits, parent, name = *name, label = order.version,
       author_name, author_email, message](GitStore& store) {
        Made made;
        Result<DeployTree> tree = ReadArchive(archive, limits);
        if (!tree.ok()) {
          made.status = tree.status();
          made.http = 400;
          return made;
        }
        made.files = tree->entries.size();
        made.bytes = tree->total_bytes;
        if (!parent.empty() && !store.HasCommit(parent)) {
          made.status = Status::IoError("this server has not fetched the current version " +
                                        Short(parent) + " yet; deploy again in a few seconds");
          made.http = 503;
          return made;
        }
        Result<CommitResult> commit =
            store.Commit(*tree, parent, author_name, author_email, message);
        if (!commit.ok()) {
          made.status = commit.status();
          made.http = 500;
          return made;
        }
        made.commit = *commit;
        if (!label.empty()) {
          Result<std::optional<CommitId>> existing =
              store.ReadRef(std::string(kTagsPrefix) + VersionTagName(name, label));
          if (existing.ok() && existing->has_value()) {
            Result<CommitInfo> info = store.Describe(**existing);
            if (info.ok() && info->tree != commit->tree) {
              made.status = Status::InvalidArgument("version " + label + " of " + name +
                                                    " exists already with other content (" +
                                                    Short(**existing) + ")");
              made.http = 409;
              return made;
            }
          }
        }
        Result<std::string> pack = store.MakePack(
            commit->commit, parent.empty() ? std::vector<CommitId>{} : std::vector{parent});
        if (!pack.ok()) {
          made.status = pack.status();
          made.http = 500;
          return made;
        }
        made.pack = std::move(pack).value();
        return made;
      },
      [self = state_, name = *name, label = order.version, parent,
       reply = std::move(reply)](Made made) mutable {
        if (!made.status.ok()) {
          spdlog::warn("deploy of {} refused: {}", name, made.status.message());
          reply(Error(made.http, made.status.message()));
          return;
        }
        nlohmann::json body = {
            {"deployment", name},
            {"commit", made.commit.commit},
            {"tree", made.commit.tree},
            {"unchanged", made.commit.unchanged},
            {"version", label.empty() ? nlohmann::json() : nlohmann::json(label)},
            {"files", made.files},
            {"bytes", made.bytes},
            {"pack_bytes", made.pack.size()}};
        if (made.commit.unchanged && made.commit.commit == parent) {
          spdlog::info("deploy of {}: unchanged (tree {})", name, Short(made.commit.tree));
          body["stored_on"] = nlohmann::json::array();
          reply(DeployAnswer{200, std::move(body)});
          return;
        }
        protocol::DeploymentTarget target{name, made.commit.commit, self->link.NextTargetVersion(),
                                          label};
        self->Distribute(std::move(target), std::move(made.pack), std::move(body),
                         std::move(reply));
      });
}

void DeployAgent::Rollback(RollbackOrder order, DeployReply reply) {
  State& state = *state_;
  if (state.stopped) return reply(Error(503, "the sidecar is stopping"));
  Result<std::string> name = state.DeploymentNameOf(order.webapp, order.stage, order.host);
  if (!name.ok()) return reply(Error(400, name.status().message()));
  const std::string current = state.CurrentCommit(*name);
  if (current.empty()) return reply(Error(404, "nothing is deployed as " + *name));
  if (order.to.empty()) return reply(Error(400, "--to: a version or a commit"));
  const std::pair<std::string, std::string> signature = SignatureOf(order.author);
  const std::string& author_name = signature.first;
  const std::string& author_email = signature.second;
  struct Made {
    Status status;
    CommitResult commit;
    std::string source;
    std::string pack;
  };
  state.OnWorker(
      [to = order.to, name = *name, current, author_name, author_email](GitStore& store) {
        Made made;
        if (!store.HasCommit(current)) {
          made.status = Status::IoError("this server has not fetched the current version " +
                                        Short(current) + " yet; try again in a few seconds");
          return made;
        }
        Result<std::optional<CommitId>> tagged =
            store.ReadRef(std::string(kTagsPrefix) + VersionTagName(name, to));
        if (tagged.ok() && tagged->has_value()) {
          made.source = **tagged;
        } else if (IsHexPrefix(to)) {
          Result<std::vector<CommitInfo>> history = store.History(current, 10'000);
          if (history.ok()) {
            for (const CommitInfo& info : *history) {
              if (info.commit.starts_with(to)) {
                made.source = info.commit;
                break;
              }
            }
          }
        }
        if (made.source.empty()) {
          made.status =
              Status::NotFound("no version or commit \"" + to + "\" in the history of " + name);
          return made;
        }
        Result<CommitResult> commit =
            store.CommitTreeOf(made.source, current, author_name, author_email,
                               "rollback to " + to + " (" + Short(made.source) + ")");
        if (!commit.ok()) {
          made.status = commit.status();
          return made;
        }
        made.commit = *commit;
        Result<std::string> pack = store.MakePack(commit->commit, {current});
        if (!pack.ok()) {
          made.status = pack.status();
          return made;
        }
        made.pack = std::move(pack).value();
        return made;
      },
      [self = state_, name = *name, current, reply = std::move(reply)](Made made) mutable {
        if (!made.status.ok()) {
          reply(Error(HttpStatusOf(made.status), made.status.message()));
          return;
        }
        nlohmann::json body = {{"deployment", name},
                               {"commit", made.commit.commit},
                               {"tree", made.commit.tree},
                               {"to", made.source},
                               {"unchanged", made.commit.unchanged}};
        if (made.commit.unchanged && made.commit.commit == current) {
          body["stored_on"] = nlohmann::json::array();
          reply(DeployAnswer{200, std::move(body)});
          return;
        }
        spdlog::info("rollback of {} to {}", name, Short(made.source));
        protocol::DeploymentTarget target{name, made.commit.commit, self->link.NextTargetVersion(),
                                          ""};
        self->Distribute(std::move(target), std::move(made.pack), std::move(body),
                         std::move(reply));
      });
}

DeployAnswer DeployAgent::Deployments(const std::string& webapp) const {
  const State& state = *state_;
  nlohmann::json deployments = nlohmann::json::array();
  for (const auto& [name, target] : state.link.Targets()) {
    const std::optional<NameParts> parts = SplitName(name);
    if (!parts) continue;
    if (!webapp.empty() && webapp != parts->webapp && webapp != name) continue;
    std::map<std::string, std::string> labels;  // commit → version
    const std::string label_prefix = std::string(kTagsPrefix) + name + "-";
    if (auto refs = state.reader_store->ListRefs(label_prefix); refs.ok()) {
      for (const auto& [ref, commit] : *refs) labels[commit] = ref.substr(label_prefix.size());
    }
    nlohmann::json versions = nlohmann::json::array();
    Result<std::vector<CommitInfo>> history =
        state.reader_store->History(target.commit, kHistoryShown);
    if (history.ok()) {
      for (const CommitInfo& info : *history) {
        const auto label = labels.find(info.commit);
        versions.push_back({{"commit", info.commit},
                            {"tree", info.tree},
                            {"author", info.author},
                            {"time_unix_s", info.time_unix_s},
                            {"message", info.message},
                            {"version", label == labels.end() ? nlohmann::json()
                                                              : nlohmann::json(label->second)}});
      }
    }
    deployments.push_back({{"name", name},
                           {"webapp", parts->webapp},
                           {"stage", parts->stage},
                           {"host", parts->host},
                           {"current", target.commit},
                           {"versions", versions}});
  }
  return DeployAnswer{200, nlohmann::json{{"deployments", deployments}}};
}

}  // namespace cb::deploy
