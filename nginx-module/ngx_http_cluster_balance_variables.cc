// nginx glue: what a request tells about its choice. The variables $cluster_route
// (the chosen server's route character) and $cluster_route_reason (sticky, backup,
// balanced or fallback) report RequestPolicy::Reported(); the insert mode's header
// filter sets RequestPolicy::InsertCookie's cookie.

#include <string>

#include "nginx-module/ngx_http_cluster_balance_glue.h"
#include "shared/route_codec.h"

namespace cb::nginx {
namespace {

ngx_int_t SetVariable(ngx_http_variable_value_t* v, std::string_view value) {
  if (value.empty()) {
    v->not_found = 1;
    return NGX_OK;
  }
  v->data = reinterpret_cast<u_char*>(const_cast<char*>(value.data()));
  v->len = static_cast<unsigned>(value.size());
  v->valid = 1;
  v->no_cacheable = 1;
  v->not_found = 0;
  return NGX_OK;
}

// What the request reports; index -1 when the module made no choice.
cb::RouteChoice ReportedChoice(ngx_http_request_t* r) {
  RequestContext* ctx = DecidedContext(r);
  return ctx == nullptr ? cb::RouteChoice{} : ctx->policy.Reported();
}

ngx_int_t RouteVariable(ngx_http_request_t* r, ngx_http_variable_value_t* v, uintptr_t) noexcept {
  try {
    return SetVariable(v, cb::RouteCharTextForIndex(ReportedChoice(r).index));
  } catch (...) {
    LogException(r->connection->log, "$cluster_route");
    return SetVariable(v, {});
  }
}

ngx_int_t ReasonVariable(ngx_http_request_t* r, ngx_http_variable_value_t* v, uintptr_t) noexcept {
  try {
    const cb::RouteChoice reported = ReportedChoice(r);
    return SetVariable(v,
                       reported.index < 0 ? std::string_view{} : cb::ReasonName(reported.reason));
  } catch (...) {
    LogException(r->connection->log, "$cluster_route_reason");
    return SetVariable(v, {});
  }
}

ngx_http_variable_t kVariables[] = {
    {ngx_string("cluster_route"), nullptr, RouteVariable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
    {ngx_string("cluster_route_reason"), nullptr, ReasonVariable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0},
};

// ---------------------------------------------------------------------------------
// Insert mode: pin the client to the server that answered.

ngx_http_output_header_filter_pt next_header_filter;

bool AddSetCookie(ngx_http_request_t* r, std::string_view value) {
  auto* header = static_cast<ngx_table_elt_t*>(ngx_list_push(&r->headers_out.headers));
  if (header == nullptr) return false;
  header->hash = 1;
  ngx_str_set(&header->key, "Set-Cookie");
#if defined(nginx_version) && nginx_version >= 1023000
  header->next = nullptr;
#endif
  if (!CopyToPool(r->pool, value, header->value)) {
    header->hash = 0;  // nginx skips headers with hash 0
    return false;
  }
  return true;
}

ngx_int_t HeaderFilter(ngx_http_request_t* r) noexcept {
  try {
    auto* ctx =
        static_cast<RequestContext*>(ngx_http_get_module_ctx(r, ngx_http_cluster_balance_module));
    // Only a response that a server of the cluster sent (not nginx's own 502 after
    // every try failed, nor one from nginx's cache) pins the client.
    if (ctx != nullptr && r == r->main && r->upstream != nullptr &&
        r->upstream->headers_in.status_n != 0 && r->err_status == 0 && !r->cached) {
      const std::string header =
          ctx->policy.InsertCookie(ctx->upstream->WorkerBalancer(), View(ctx->session));
      if (!header.empty() && !AddSetCookie(r, header)) {
        LogWhat(NGX_LOG_WARN, r->connection->log, "insert mode", "no memory for the cookie");
      }
    }
  } catch (...) {
    LogException(r->connection->log, "setting the insert cookie");
  }
  return next_header_filter(r);
}

}  // namespace

ngx_int_t AddVariables(ngx_conf_t* cf) noexcept {
  for (ngx_http_variable_t& definition : kVariables) {
    ngx_http_variable_t* variable = ngx_http_add_variable(cf, &definition.name, definition.flags);
    if (variable == nullptr) return NGX_ERROR;
    variable->get_handler = definition.get_handler;
    variable->data = definition.data;
  }
  return NGX_OK;
}

void InstallHeaderFilter() {
  next_header_filter = ngx_http_top_header_filter;
  ngx_http_top_header_filter = HeaderFilter;
}

}  // namespace cb::nginx
