// httpd glue: the end of each try, and the insert mode's cookie on the response a
// member sent (RequestPolicy::InsertCookie). A try lasts from the finder's answer
// to mod_proxy's post_request hook; the response a member sends passes the
// output filters inside it, the error page httpd makes after every try failed
// comes after it and gets no cookie.

#include <dlfcn.h>

#include <string>

#include "httpd-module/mod_cluster_balance_glue.h"

APLOG_USE_MODULE(cluster_balance);

namespace cb::httpd {
namespace {

ap_filter_rec_t* cookie_filter = nullptr;

apr_status_t InsertCookie(ap_filter_t* f, apr_bucket_brigade* brigade) noexcept {
  request_rec* r = f->r;
  try {
    auto* state = static_cast<RequestState*>(f->ctx);
    if (state != nullptr && state->in_try && state->section != nullptr) {
      cb::Balancer& view = ThreadBalancer(*state->section);
      const std::string cookie = state->policy.InsertCookie(view, SessionOf(r, *state, view));
      if (!cookie.empty()) apr_table_add(r->headers_out, "Set-Cookie", cookie.c_str());
    }
  } catch (...) {
    LogException(r, "the insert cookie");
  }
  // Once per response: the headers go with its first brigade.
  ap_remove_output_filter(f);
  return ap_pass_brigade(f->next, brigade);
}

int EndTry(proxy_worker*, proxy_balancer*, request_rec* r, proxy_server_conf*) noexcept {
  if (RequestState* state = ExistingStateOf(r); state != nullptr) state->in_try = false;
  return DECLINED;  // mod_proxy_balancer's own post_request runs next
}

}  // namespace

void AddCookieFilter(request_rec* r, RequestState& state) {
  if (state.filter_added || cookie_filter == nullptr) return;
  state.filter_added = true;
  ap_add_output_filter_handle(cookie_filter, &state, r, r->connection);
}

void RegisterCookieFilter() {
  // Before HTTP_HEADER (a protocol filter) writes the response's headers.
  cookie_filter = ap_register_output_filter("CLUSTER_BALANCE_COOKIE", InsertCookie, nullptr,
                                            AP_FTYPE_CONTENT_SET);
}

bool HookEndOfTry() {
  // mod_proxy's hook by name, not by link: Debian loads modules in the order of
  // their file names, and this one may come before mod_proxy (as the lbmethod_*
  // modules do). Called from pre_config, when every LoadModule has run and before
  // httpd sorts the hooks.
  using RegisterPostRequest =
      void (*)(proxy_HOOK_post_request_t*, const char* const*, const char* const*, int);
  auto* hook =
      reinterpret_cast<RegisterPostRequest>(dlsym(RTLD_DEFAULT, "proxy_hook_post_request"));
  if (hook == nullptr) return false;
  hook(EndTry, nullptr, nullptr, APR_HOOK_FIRST);
  return true;
}

}  // namespace cb::httpd
