#include "httpd-module/mod_cluster_balance_glue.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <strings.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

APLOG_USE_MODULE(cluster_balance);

namespace cb::httpd {

void LogWhat(int level, const request_rec* r, std::string_view where, std::string_view what) {
  const auto where_length = static_cast<int>(where.size());
  const auto what_length = static_cast<int>(what.size());
  if (r != nullptr) {
    ap_log_rerror(APLOG_MARK, level, 0, r, "cluster_balance: %.*s: %.*s", where_length,
                  where.data(), what_length, what.data());
  } else {
    ap_log_error(APLOG_MARK, level, 0, nullptr, "cluster_balance: %.*s: %.*s", where_length,
                 where.data(), what_length, what.data());
  }
}

void LogException(const request_rec* r, std::string_view where) noexcept {
  try {
    throw;
  } catch (const std::exception& error) {
    LogWhat(APLOG_ALERT, r, where, error.what());
  } catch (...) {
    LogWhat(APLOG_ALERT, r, where, "unknown exception");
  }
}

int64_t NowUnixMs() { return static_cast<int64_t>(apr_time_as_msec(apr_time_now())); }

int64_t NowMonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Section::LogNotices(cb::Balancer& balancer, const request_rec* r) const {
  std::vector<cb::ViewNotice> notices = balancer.TakeNotices();
  if (notices.empty()) return;
  // Held only to compare and log; never across anything that waits.
  std::lock_guard<std::mutex> lock(notices_mutex_);
  for (cb::ViewNotice& notice : notices) {
    if (notice.text == last_notice_) continue;
    LogWhat(notice.level == cb::ViewNotice::Level::kWarning ? APLOG_WARNING : APLOG_NOTICE, r, name,
            notice.text);
    last_notice_ = std::move(notice.text);
  }
}

std::vector<Section*>& LoadedSections() {
  static std::vector<Section*> sections;
  return sections;
}

const Section* SectionOf(const proxy_balancer* balancer) {
  if (balancer == nullptr || balancer->s == nullptr) return nullptr;
  for (const Section* section : LoadedSections()) {
    if (strcasecmp(section->name.c_str(), balancer->s->name) == 0) return section;
  }
  return nullptr;
}

cb::Balancer& ThreadBalancer(const Section& section) {
  // A handful of sections at most: a list beats a map.
  thread_local std::vector<std::pair<uint64_t, std::unique_ptr<cb::Balancer>>> balancers;
  for (auto& [id, balancer] : balancers) {
    if (id == section.id) return *balancer;
  }
  std::random_device entropy;
  const uint64_t seed = (uint64_t{entropy()} << 32) ^ entropy() ^ static_cast<uint64_t>(getpid()) ^
                        std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
                        static_cast<uint64_t>(NowMonotonicMs());
  // The view's addresses are not used: httpd sends to its members' own.
  balancers.emplace_back(section.id, std::make_unique<cb::Balancer>(
                                         section.options, std::vector<cb::SocketAddress>{}, seed));
  return *balancers.back().second;
}

int IndexOfRoute(std::string_view route, const cb::Balancer& balancer) {
  if (route.size() == 1) {
    if (const int index = cb::IndexForRouteChar(route.front()); index >= 0) return index;
  }
  return balancer.IndexOfServerId(route);
}

Members::Members(const proxy_balancer* balancer, const cb::Balancer& view) {
  for (int i = 0; i < balancer->workers->nelts; ++i) {
    proxy_worker* worker = APR_ARRAY_IDX(balancer->workers, i, proxy_worker*);
    const int index = IndexOfRoute(worker->s->route, view);
    // The first member of a server counts; a second is httpd's alone.
    if (index >= 0 && by_index_[static_cast<std::size_t>(index)] == nullptr) {
      by_index_[static_cast<std::size_t>(index)] = worker;
    }
  }
}

proxy_worker* Members::WorkerOf(int index) const {
  if (index < 0 || index >= cb::kMaxServers) return nullptr;
  return by_index_[static_cast<std::size_t>(index)];
}

int Members::IndexOf(const proxy_worker* worker) const {
  for (int index = 0; index < cb::kMaxServers; ++index) {
    if (worker != nullptr && by_index_[static_cast<std::size_t>(index)] == worker) return index;
  }
  return -1;
}

cb::ServerSet Members::Unreachable(const cb::Balancer& view) const {
  cb::ServerSet unreachable;
  view.Candidates().ForEach([&](int index) {
    const proxy_worker* worker = by_index_[static_cast<std::size_t>(index)];
    // A member not initialized yet (one balancer-manager added) is reachable:
    // mod_proxy initializes it before its first request.
    if (worker == nullptr || PROXY_WORKER_IS(worker, PROXY_WORKER_DISABLED | PROXY_WORKER_STOPPED |
                                                         PROXY_WORKER_IN_SHUTDOWN)) {
      unreachable.Add(index);
    }
  });
  return unreachable;
}

cb::ServerSet Members::HeldOut(const cb::Balancer& view) const {
  cb::ServerSet held_out;
  const apr_time_t now = apr_time_now();
  for (int index = 0; index < cb::kMaxServers; ++index) {
    const proxy_worker* worker = by_index_[static_cast<std::size_t>(index)];
    if (worker == nullptr) continue;
    if (PROXY_WORKER_IS_HCFAILED(worker)) {
      held_out.Add(index);  // httpd's health check says so, now
    } else if (PROXY_WORKER_IS_ERROR(worker) && now < worker->s->error_time + worker->s->retry &&
               cb::StaysHeldOut(view, index,
                                static_cast<int64_t>(apr_time_as_msec(worker->s->error_time)))) {
      // After retry= httpd tries the member again, as its own balancing would.
      held_out.Add(index);
    }
  }
  return held_out;
}

RequestState* ExistingStateOf(const request_rec* r) {
  return static_cast<RequestState*>(
      ap_get_module_config(r->request_config, &cluster_balance_module));
}

RequestState* StateOf(request_rec* r, const proxy_balancer* balancer, const Section* section) {
  if (RequestState* state = ExistingStateOf(r); state != nullptr) {
    return state->balancer == balancer ? state : nullptr;
  }
  void* memory = apr_palloc(r->pool, sizeof(RequestState));
  auto* state = new (memory) RequestState();
  state->balancer = balancer;
  state->section = section;
  ap_set_module_config(r->request_config, &cluster_balance_module, state);
  return state;
}

std::string_view SessionOf(request_rec* r, RequestState& state, const cb::Balancer& balancer) {
  if (state.session != nullptr) return {state.session, state.session_length};
  // httpd merges a request's Cookie headers into one, joined by ", " (a comma is no
  // cookie-octet, RFC 6265): split it again, so that the session is the one nginx
  // finds in the same Cookie headers.
  const apr_array_header_t* headers = apr_table_elts(r->headers_in);
  const auto* entries = reinterpret_cast<const apr_table_entry_t*>(headers->elts);
  int next_entry = 0;
  std::optional<std::string_view> rest;  // of the Cookie header being split
  const auto next_cookie_header = [&]() -> std::optional<std::string_view> {
    while (!rest) {
      if (next_entry >= headers->nelts) return std::nullopt;
      const apr_table_entry_t& entry = entries[next_entry++];
      if (entry.key != nullptr && entry.val != nullptr && strcasecmp(entry.key, "Cookie") == 0) {
        rest = entry.val;
      }
    }
    const std::size_t comma = rest->find(',');
    const std::string_view piece = rest->substr(0, comma);
    if (comma == std::string_view::npos) {
      rest.reset();
    } else {
      rest->remove_prefix(comma + 1);
    }
    return piece;
  };
  const std::string_view session = balancer.SessionOfRequest(
      next_cookie_header,
      r->unparsed_uri == nullptr ? std::string_view{} : std::string_view(r->unparsed_uri));
  // A copy: mod_proxy or another module may change the request's headers later.
  state.session = session.empty() ? "" : apr_pstrmemdup(r->pool, session.data(), session.size());
  state.session_length = session.size();
  return {state.session, state.session_length};
}

}  // namespace cb::httpd
