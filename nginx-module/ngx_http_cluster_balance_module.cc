// nginx glue of cluster_balance: the directives, the checks of an upstream block
// that uses it, and the module's tables. The parts of the glue
// (ngx_http_cluster_balance_glue.h) only convert between nginx's structures and
// shared/: cb::Balancer (shared/balancer.h) and cb::RequestPolicy
// (shared/request_policy.h) make every decision.

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nginx-module/ngx_http_cluster_balance_glue.h"
#include "shared/balancer_options.h"
#include "shared/route_codec.h"
#include "shared/socket_address.h"
#include "shared/sticky_cookie.h"

namespace cb::nginx {
namespace {

void DeleteUpstream(void* data) noexcept { delete static_cast<Upstream*>(data); }

// Runs after the upstream blocks were initialized: a balancing method written
// after cluster_balance (nginx only warns "load balancing method redefined") would
// leave the module half active, so it is refused.
ngx_int_t PostConfiguration(ngx_conf_t* cf) noexcept {
  auto* main_conf = static_cast<ngx_http_upstream_main_conf_t*>(
      ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module));
  auto** upstreams = static_cast<ngx_http_upstream_srv_conf_t**>(main_conf->upstreams.elts);
  bool inserts_cookies = false;
  for (ngx_uint_t i = 0; i < main_conf->upstreams.nelts; ++i) {
    const Upstream* upstream = UpstreamOf(upstreams[i]);
    if (upstream != nullptr && upstream->options.mode == cb::StickyMode::kInsert) {
      inserts_cookies = true;
    }
    if (upstream != nullptr && !upstream->initialized) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                    "cluster_balance: upstream \"%V\": another balancing method (hash, "
                    "ip_hash, least_conn, random) follows cluster_balance; use one of them",
                    &upstreams[i]->host);
      return NGX_ERROR;
    }
  }
  // Every response of the server passes a header filter: only when it is needed.
  if (inserts_cookies) InstallHeaderFilter();
  return NGX_OK;
}

// ---------------------------------------------------------------------------------
// Directives

std::vector<std::string_view> Arguments(ngx_conf_t* cf) {
  auto* values = static_cast<ngx_str_t*>(cf->args->elts);
  std::vector<std::string_view> words;
  for (ngx_uint_t i = 1; i < cf->args->nelts; ++i) words.push_back(View(values[i]));
  return words;
}

char* Refuse(ngx_conf_t* cf, std::string_view message) {
  ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%*s", message.size(), message.data());
  return static_cast<char*>(NGX_CONF_ERROR);
}

ngx_int_t InitUpstream(ngx_conf_t* cf, ngx_http_upstream_srv_conf_t* uscf) noexcept;

char* BalanceDirective(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
  try {
    auto* own = static_cast<SrvConf*>(conf);
    if (own->upstream != nullptr) return const_cast<char*>("is duplicate");
    auto* uscf = static_cast<ngx_http_upstream_srv_conf_t*>(
        ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module));
    if (uscf->peer.init_upstream != nullptr) {
      return Refuse(cf,
                    "\"cluster_balance\" must come before \"keepalive\" and any other balancing "
                    "method (hash, ip_hash, least_conn, random) in the upstream block; it "
                    "replaces them");
    }
    auto upstream = std::make_unique<Upstream>();
    std::vector<std::string_view> words = Arguments(cf);
    // A relative view path is taken relative to nginx's prefix, as nginx's own paths.
    ngx_str_t view_path = static_cast<ngx_str_t*>(cf->args->elts)[1];
    if (ngx_conf_full_name(cf->cycle, &view_path, 0) != NGX_OK) {
      return static_cast<char*>(NGX_CONF_ERROR);
    }
    words[0] = View(view_path);
    if (cb::Status parsed = cb::ParseBalancerWords(words, upstream->options); !parsed.ok()) {
      return Refuse(cf, "cluster_balance: " + parsed.message());
    }
    upstream->name = std::string(View(uscf->host));
    ngx_pool_cleanup_t* cleanup = ngx_pool_cleanup_add(cf->pool, 0);
    if (cleanup == nullptr) return static_cast<char*>(NGX_CONF_ERROR);
    cleanup->handler = DeleteUpstream;
    cleanup->data = upstream.get();
    own->upstream = upstream.release();
    // The cluster chooses backups: no "backup" server lines; max_conns is not kept.
    uscf->flags = NGX_HTTP_UPSTREAM_CREATE | NGX_HTTP_UPSTREAM_WEIGHT |
                  NGX_HTTP_UPSTREAM_MAX_FAILS | NGX_HTTP_UPSTREAM_FAIL_TIMEOUT |
                  NGX_HTTP_UPSTREAM_DOWN;
    uscf->peer.init_upstream = InitUpstream;
    return NGX_CONF_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance");
    return static_cast<char*>(NGX_CONF_ERROR);
  }
}

char* CookieDirective(ngx_conf_t* cf, ngx_command_t*, void* conf) noexcept {
  try {
    auto* own = static_cast<SrvConf*>(conf);
    if (own->upstream == nullptr) {
      return Refuse(cf,
                    "\"cluster_balance_cookie\" must follow \"cluster_balance ... mode=insert\"");
    }
    if (own->upstream->cookie_configured) return const_cast<char*>("is duplicate");
    const std::vector<std::string_view> words = Arguments(cf);
    cb::StickyCookie cookie;
    if (cb::Status parsed = cb::ParseStickyCookieWords(words, cookie); !parsed.ok()) {
      return Refuse(cf, "cluster_balance_cookie: " + parsed.message());
    }
    own->upstream->options.insert_cookie = std::move(cookie);
    own->upstream->cookie_configured = true;
    return NGX_CONF_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance_cookie");
    return static_cast<char*>(NGX_CONF_ERROR);
  }
}

// Each server line is one server of the cluster, in cluster order: line i is the
// server with route character i.
ngx_int_t InitUpstream(ngx_conf_t* cf, ngx_http_upstream_srv_conf_t* uscf) noexcept {
  try {
    Upstream* upstream = UpstreamOf(uscf);
    if (upstream == nullptr) return NGX_ERROR;
    const auto refuse = [&](std::string_view message) {
      ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "cluster_balance: upstream \"%V\": %*s", &uscf->host,
                    message.size(), message.data());
      return NGX_ERROR;
    };
    if (upstream->cookie_configured && upstream->options.mode != cb::StickyMode::kInsert) {
      return refuse("cluster_balance_cookie is for mode=insert only");
    }
    if (uscf->servers == nullptr || uscf->servers->nelts == 0) {
      return refuse("no server lines: list the cluster's static servers in cluster order");
    }
    auto* servers = static_cast<ngx_http_upstream_server_t*>(uscf->servers->elts);
    if (uscf->servers->nelts > static_cast<ngx_uint_t>(cb::kMaxServers)) {
      return refuse("more than 64 server lines (one per route character)");
    }
    upstream->configured.clear();
    for (ngx_uint_t i = 0; i < uscf->servers->nelts; ++i) {
      const ngx_http_upstream_server_t& server = servers[i];
      const std::string line = "server " + std::string(View(server.name)) + " (line " +
                               std::to_string(i + 1) + " of the upstream)";
      if (server.backup) {
        return refuse(line +
                      " is a backup: the cluster computes each session's backup; "
                      "list every server without \"backup\"");
      }
      if (server.max_conns != 0) {
        return refuse(line + " has max_conns, which cluster_balance does not keep; remove it");
      }
      if (server.naddrs != 1) {
        return refuse(line + " resolves to " + std::to_string(server.naddrs) +
                      " addresses; each server line must be one server of the cluster");
      }
      cb::SocketAddress address;
      std::memcpy(&address.storage, server.addrs[0].sockaddr,
                  std::min<std::size_t>(server.addrs[0].socklen, sizeof(address.storage)));
      address.length = server.addrs[0].socklen;
      address.text = std::string(View(server.addrs[0].name));
      upstream->configured.push_back(std::move(address));
    }
    if (ngx_http_upstream_init_round_robin(cf, uscf) != NGX_OK) return NGX_ERROR;
    uscf->peer.init = InitPeer;
    upstream->initialized = true;
    return NGX_OK;
  } catch (...) {
    LogException(cf->log, "cluster_balance");
    return NGX_ERROR;
  }
}

void* CreateSrvConf(ngx_conf_t* cf) noexcept {
  return ngx_pcalloc(cf->pool, sizeof(SrvConf));  // upstream = null
}

ngx_command_t kCommands[] = {
    {ngx_string("cluster_balance"), NGX_HTTP_UPS_CONF | NGX_CONF_1MORE, BalanceDirective,
     NGX_HTTP_SRV_CONF_OFFSET, 0, nullptr},
    {ngx_string("cluster_balance_cookie"), NGX_HTTP_UPS_CONF | NGX_CONF_1MORE, CookieDirective,
     NGX_HTTP_SRV_CONF_OFFSET, 0, nullptr},
    ngx_null_command,
};

ngx_http_module_t kModuleContext = {
    AddVariables,       // preconfiguration
    PostConfiguration,  // postconfiguration
    nullptr,            // create main configuration
    nullptr,            // init main configuration
    CreateSrvConf,      // create server configuration
    nullptr,            // merge server configuration
    nullptr,            // create location configuration
    nullptr,            // merge location configuration
};

}  // namespace
}  // namespace cb::nginx

extern "C" {
ngx_module_t ngx_http_cluster_balance_module = {
    NGX_MODULE_V1,
    &cb::nginx::kModuleContext,
    cb::nginx::kCommands,
    NGX_HTTP_MODULE,
    nullptr,  // init master
    nullptr,  // init module
    nullptr,  // init process
    nullptr,  // init thread
    nullptr,  // exit thread
    nullptr,  // exit process
    nullptr,  // exit master
    NGX_MODULE_V1_PADDING,
};
}
