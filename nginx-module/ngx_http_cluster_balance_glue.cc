#include "nginx-module/ngx_http_cluster_balance_glue.h"

#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <random>
#include <utility>

namespace cb::nginx {

bool CopyToPool(ngx_pool_t* pool, std::string_view text, ngx_str_t& out) {
  out.len = text.size();
  out.data = static_cast<u_char*>(ngx_pnalloc(pool, text.size() == 0 ? 1 : text.size()));
  if (out.data == nullptr) return false;
  std::memcpy(out.data, text.data(), text.size());
  return true;
}

void LogWhat(ngx_uint_t level, ngx_log_t* log, std::string_view where, std::string_view what) {
  ngx_log_error(level, log, 0, "cluster_balance: %*s: %*s", where.size(), where.data(), what.size(),
                what.data());
}

void LogException(ngx_log_t* log, std::string_view where) noexcept {
  try {
    throw;
  } catch (const std::exception& error) {
    LogWhat(NGX_LOG_ALERT, log, where, error.what());
  } catch (...) {
    LogWhat(NGX_LOG_ALERT, log, where, "unknown exception");
  }
}

int64_t NowUnixMs() {
  ngx_time_t* now = ngx_timeofday();
  return static_cast<int64_t>(now->sec) * 1000 + static_cast<int64_t>(now->msec);
}

cb::Balancer& Upstream::WorkerBalancer() {
  if (!balancer) {
    std::random_device entropy;
    const uint64_t seed = (uint64_t{entropy()} << 32) ^ entropy() ^ static_cast<uint64_t>(ngx_pid) ^
                          static_cast<uint64_t>(ngx_current_msec);
    balancer = std::make_unique<cb::Balancer>(options, configured, seed);
  }
  return *balancer;
}

Upstream* UpstreamOf(ngx_http_upstream_srv_conf_t* uscf) {
  if (uscf == nullptr || uscf->srv_conf == nullptr) return nullptr;
  auto* conf =
      static_cast<SrvConf*>(ngx_http_conf_upstream_srv_conf(uscf, ngx_http_cluster_balance_module));
  return conf == nullptr ? nullptr : conf->upstream;
}

void LogNotices(cb::Balancer& balancer, const Upstream& upstream, ngx_log_t* log) {
  for (const cb::ViewNotice& notice : balancer.TakeNotices()) {
    LogWhat(notice.level == cb::ViewNotice::Level::kWarning ? NGX_LOG_WARN : NGX_LOG_NOTICE, log,
            "upstream \"" + upstream.name + "\"", notice.text);
  }
}

RequestContext* ContextOf(ngx_http_request_t* r, Upstream* upstream) {
  auto* ctx =
      static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
  if (ctx != nullptr) return ctx->upstream == upstream ? ctx : nullptr;
  void* memory = ngx_palloc(r->pool, sizeof(RequestContext));
  if (memory == nullptr) return nullptr;
  ctx = new (memory) RequestContext();
  ctx->upstream = upstream;
  ngx_http_set_ctx(r, ctx, ngx_http_cluster_balance_module);
  return ctx;
}

std::string_view SessionOf(ngx_http_request_t* r, RequestContext* ctx, cb::Balancer& balancer) {
  if (ctx->session_found) return View(ctx->session);
  ctx->session_found = true;
#if defined(nginx_version) && nginx_version >= 1023000
  ngx_table_elt_t* header = r->headers_in.cookie;
  const auto next_cookie_header = [&]() -> std::optional<std::string_view> {
    if (header == nullptr) return std::nullopt;
    return View(std::exchange(header, header->next)->value);
  };
#else
  auto** cookies = static_cast<ngx_table_elt_t**>(r->headers_in.cookies.elts);
  ngx_uint_t next = 0;
  const auto next_cookie_header = [&]() -> std::optional<std::string_view> {
    if (next == r->headers_in.cookies.nelts) return std::nullopt;
    return View(cookies[next++]->value);
  };
#endif
  const std::string_view session =
      balancer.SessionOfRequest(next_cookie_header, View(r->unparsed_uri));
  ctx->session.data = reinterpret_cast<u_char*>(const_cast<char*>(session.data()));
  ctx->session.len = session.size();
  return session;
}

cb::ServerSet ServerLinesHeldOut(ngx_http_upstream_rr_peers_t* peers,
                                 const cb::Balancer& balancer) {
  cb::ServerSet held_out;
  const time_t now = ngx_time();
  ngx_http_upstream_rr_peers_rlock(peers);
  int index = 0;
  for (ngx_http_upstream_rr_peer_t* peer = peers->peer; peer != nullptr;
       peer = peer->next, ++index) {
    if (peer->max_fails == 0 || peer->fails < peer->max_fails ||
        now - peer->checked > peer->fail_timeout) {
      continue;
    }
    if (cb::StaysHeldOut(balancer, index, static_cast<int64_t>(peer->checked) * 1000)) {
      held_out.Add(index);
    }
  }
  ngx_http_upstream_rr_peers_unlock(peers);
  return held_out;
}

// proxy_set_header values are evaluated before nginx connects, so when a variable
// is read before the first try it makes the choice then, and the first try honours
// it: the header names the server that gets the request. Only on a retry (the
// chosen server failed) does it name the one tried first.
RequestContext* DecidedContext(ngx_http_request_t* r) {
  auto* ctx =
      static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
  if (ctx != nullptr && ctx->policy.decided()) return ctx;
  // A choice is made here only before nginx starts connecting (InitPeer sets
  // peer.get), never after the fact for a response that no server gave.
  if (r->upstream == nullptr || r->upstream->conf == nullptr || r->upstream->peer.get != nullptr ||
      r->cached) {
    return ctx;
  }
  Upstream* upstream = UpstreamOf(r->upstream->conf->upstream);
  if (upstream == nullptr) return ctx;
  ctx = ContextOf(r, upstream);
  if (ctx == nullptr) return nullptr;
  cb::Balancer& balancer = upstream->WorkerBalancer();
  if (!balancer.Refresh(static_cast<int64_t>(ngx_current_msec))) return ctx;  // round robin
  auto* peers = static_cast<ngx_http_upstream_rr_peers_t*>(r->upstream->conf->upstream->peer.data);
  const std::string_view session = SessionOf(r, ctx, balancer);
  ctx->policy.Plan(
      balancer, session, kUnreachableServers,
      [&] { return peers == nullptr ? cb::ServerSet{} : ServerLinesHeldOut(peers, balancer); },
      NowUnixMs());
  return ctx;
}

}  // namespace cb::nginx
